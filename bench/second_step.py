#!/usr/bin/env python3
"""Sign-ins per second with and without the second step, measured in one run.

    python3 bench/second_step.py            # needs `cargo build --release`

Starts the release binary on a scratch SQLite database with USERS users, half of them with an
authenticator app (set up over HTTP, the key read off the setup page like a person would).
Then, with CONCURRENCY client threads, signs every user in through the API: password-only
users with `POST /api/token`; the others with `POST /api/token` (answered 401
`mfa_required`) then `POST /api/token/mfa` with the app's code. A code is accepted once, for a
later 30-second step than the last one used, so each user signs in three times, with the codes
of three consecutive steps. Prints sign-ins/s for both kinds, and the time of one two-step
sign-in end to end.
"""
import base64
import hashlib
import hmac
import json
import re
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from drills import PASSWORD, Browser, Server, expect, request

USERS = 100
CONCURRENCY = 8
ROUNDS = 3


def totp(key_base32, step):
    key = base64.b32decode(key_base32 + "=" * (-len(key_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 15
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def enrol(port, username):
    browser = Browser(port).sign_in(username)
    token = browser.csrf("/account/security")
    status, _, _ = browser.send("POST", "/account/security/authenticator", {"csrf_token": token})
    expect(status == 303, f"starting the setup answered {status}")
    status, _, page = browser.send("GET", "/account/security/authenticator")
    key = re.search(r'id="totp-key">([^<]+)<', page).group(1).replace(" ", "")
    step = int(time.time()) // 30
    status, _, page = browser.send("POST", "/account/security/authenticator/confirm",
                                   {"csrf_token": token, "code": totp(key, step)})
    expect(status == 200 and "Two-step sign-in is on" in page, f"confirming answered {status}")
    return key, step


def json_post(port, path, body, conn=None):
    return request(port, "POST", path, json.dumps(body), {"Content-Type": "application/json"}, conn=conn)


def sign_in_once(port, username, key, step, conn):
    started = time.perf_counter()
    status, _, body = json_post(port, "/api/token", {"username": username, "password": PASSWORD}, conn)
    if key is None:
        expect(status == 200, f"sign-in answered {status}: {body}")
        return time.perf_counter() - started
    expect(status == 401 and json.loads(body)["error"] == "mfa_required", f"first step answered {status}: {body}")
    mfa_token = json.loads(body)["mfa_token"]
    status, _, body = json_post(port, "/api/token/mfa", {"mfa_token": mfa_token, "code": totp(key, step)}, conn)
    expect(status == 200, f"second step answered {status}: {body}")
    return time.perf_counter() - started


def run(port, jobs):
    """Runs every (username, key, step) job on CONCURRENCY threads; returns (seconds, latencies)."""
    import http.client
    queue = list(jobs)
    lock = threading.Lock()
    latencies = []
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    return
                job = queue.pop(0)
            try:
                took = sign_in_once(port, *job, conn)
                with lock:
                    latencies.append(took)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
                return

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expect(not errors, f"sign-ins failed: {errors[:3]}")
    return time.perf_counter() - started, sorted(latencies)


def main():
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        server = Server(work, f"sqlite://{work}/second-step.db", PORTCULLIS_MFA_REQUIRED="off")
        server.start()
        try:
            names = [f"user{n:03d}" for n in range(USERS)]
            for name in names:
                server.run("user", "create", "--username", name, "--email", f"{name}@example.com",
                           "--password-stdin", stdin=PASSWORD + "\n")
            keys = {name: enrol(server.port, name) for name in names[: USERS // 2]}
            # Every setup used up its step: start two steps later, so that the steps now-1,
            # now and now+1 are all unused and all accepted during step `now`.
            now = max(step for _, step in keys.values()) + 2
            time.sleep(max(0.0, now * 30 - time.time()) + 0.2)
            password_jobs = [(name, None, 0) for name in names[USERS // 2:] for _ in range(ROUNDS)]
            # Steps now-1, now, now+1: accepted while the clock is within one step of each.
            two_step_jobs = [(name, keys[name][0], now - 1 + r) for r in range(ROUNDS) for name in names[: USERS // 2]]
            pw_seconds, pw_latencies = run(server.port, password_jobs)
            mfa_seconds, mfa_latencies = run(server.port, two_step_jobs)
            median = lambda values: values[len(values) // 2] * 1000  # noqa: E731
            print(f"{len(password_jobs)} password-only sign-ins: {len(password_jobs) / pw_seconds:.1f}/s, "
                  f"median {median(pw_latencies):.1f} ms ({CONCURRENCY} clients)")
            print(f"{len(two_step_jobs)} two-step sign-ins (password, then an authenticator code): "
                  f"{len(two_step_jobs) / mfa_seconds:.1f}/s, median {median(mfa_latencies):.1f} ms end to end")
            print(f"two-step ÷ password-only sign-ins/s: {(len(two_step_jobs) / mfa_seconds) / (len(password_jobs) / pw_seconds):.0%}")
        finally:
            server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
