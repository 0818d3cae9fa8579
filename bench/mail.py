#!/usr/bin/env python3
"""Mail, measured in one run against a real SMTP server (tests/support/smtp_sink.py, aiosmtpd):

    python3 bench/mail.py            # needs `cargo build --release` and `pip install aiosmtpd`

1. "Forgot your password?" for a known and an unknown address, 30 of each, interleaved: the
   median answer time of each and their difference (the page must not tell them apart).
2. Outbox throughput: MESSAGES reset links queued at once (one per user), then the time until
   the local server has all of them: messages/s through one instance's sender.
3. kill -9 mid-delivery: another MESSAGES queued, the server killed while delivering, started
   again; every message must arrive (duplicates are counted: delivery is at least once).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from drills import Server, expect, free_port, request

ROOT = Path(__file__).resolve().parent.parent
SINK = ROOT / "tests" / "support" / "smtp_sink.py"
MESSAGES = 500
SAMPLES = 30


def start_sink(port, directory):
    sink = subprocess.Popen([sys.executable, str(SINK), "--port", str(port), "--dir", str(directory)],
                            stdout=subprocess.PIPE, text=True)
    expect(sink.stdout.readline().strip() == "ready", "the SMTP sink did not start (pip install aiosmtpd)")
    return sink


def recipients(directory):
    found = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            found.extend(json.loads((directory / name).read_text())["rcpt_tos"])
    return found


def forgot(port, address):
    body = urllib.parse.urlencode({"email": address})
    started = time.perf_counter()
    status, _, page = request(port, "POST", "/login/forgot", body, {"Content-Type": "application/x-www-form-urlencoded"})
    elapsed = time.perf_counter() - started
    expect(status == 200 and "Check your inbox" in page, f"forgot answered {status}")
    return elapsed


def wait_for(directory, wanted, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = recipients(directory)
        if wanted <= set(got):
            return got
        time.sleep(0.05)
    raise SystemExit(f"FAILED: {len(wanted - set(recipients(directory)))} message(s) never arrived")


def main():
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        mail_dir = work / "mail"
        mail_dir.mkdir()
        smtp_port = free_port()
        sink = start_sink(smtp_port, mail_dir)
        server = Server(work, f"sqlite://{work / 'mail.db'}",
                        PORTCULLIS_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}?tls=none",
                        PORTCULLIS_MAIL_FROM="Portcullis <login@bench.test>",
                        PORTCULLIS_PUBLIC_URL="http://bench.test")
        users = work / "users.csv"
        total = 2 * MESSAGES + SAMPLES
        users.write_text("username,email,display_name,role\n" + "".join(
            f"user{n:05},user{n:05}@example.com,User {n},user\n" for n in range(total)))
        server.run("user", "import", str(users))
        server.start()
        try:
            # 1. Known versus unknown address, interleaved.
            known, unknown = [], []
            for n in range(SAMPLES):
                known.append(forgot(server.port, f"user{2 * MESSAGES + n:05}@example.com"))
                unknown.append(forgot(server.port, f"nobody{n:05}@example.com"))
            k, u = statistics.median(known) * 1000, statistics.median(unknown) * 1000
            print(f"forgot password, median of {SAMPLES} each (interleaved): known {k:.2f} ms, "
                  f"unknown {u:.2f} ms, difference {k - u:+.2f} ms")
            wait_for(mail_dir, {f"user{2 * MESSAGES + n:05}@example.com" for n in range(SAMPLES)}, 60)
            expect(not any(r.startswith("nobody") for r in recipients(mail_dir)), "an unknown address got mail")

            # 2. Throughput.
            batch = {f"user{n:05}@example.com" for n in range(MESSAGES)}
            started = time.perf_counter()
            for address in sorted(batch):
                forgot(server.port, address)
            queued = time.perf_counter() - started
            wait_for(mail_dir, batch, 300)
            elapsed = time.perf_counter() - started
            print(f"outbox: {MESSAGES} messages queued in {queued:.1f} s, all delivered after {elapsed:.1f} s: "
                  f"{MESSAGES / elapsed:.0f} messages/s through one instance's sender")

            # 3. kill -9 while delivering.
            batch = {f"user{n:05}@example.com" for n in range(MESSAGES, 2 * MESSAGES)}
            for address in sorted(batch):
                forgot(server.port, address)
            before = len(set(recipients(mail_dir)) & batch)
            server.kill9()
            at_kill = len(set(recipients(mail_dir)) & batch)
            server.start()
            got = wait_for(mail_dir, batch, 300)
            duplicates = sum(1 for r in got if r in batch) - len(batch)
            print(f"kill -9 with {MESSAGES - at_kill} of {MESSAGES} messages undelivered ({before} delivered when the "
                  f"kill was sent): after the restart all {MESSAGES} arrived, 0 lost, {duplicates} sent twice")
        finally:
            server.stop()
            sink.terminate()


if __name__ == "__main__":
    main()
