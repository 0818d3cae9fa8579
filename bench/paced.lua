-- wrk script: each connection waits 2 ms between requests, so the probe sends a steady ~1,800
-- requests/s instead of saturating the CPU it shares with the server. Latency under other load
-- is then the server's, not the load generator's competition for the same two cores.
function delay()
  return 2
end
