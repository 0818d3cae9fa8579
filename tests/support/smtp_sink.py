#!/usr/bin/env python3
"""A real SMTP server for the tests (aiosmtpd): accepts every message on 127.0.0.1:PORT and
writes each one, decoded, as DIR/NNNNNN.json (envelope, headers, text and HTML parts, raw).

--slow SECONDS delays the answer to DATA for recipients whose address contains "slow", so a
test can kill a sender mid-delivery. Recipients whose address contains "bounce" are refused
for good (550), as a mailbox that does not exist. Prints "ready" once it accepts connections."""
import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, slow):
        self.directory = directory
        self.slow = slow
        existing = [int(name.split(".")[0]) for name in os.listdir(directory) if name.endswith(".json")]
        self.counter = itertools.count(max(existing, default=0) + 1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "bounce" in address:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.slow and any("slow" in rcpt for rcpt in envelope.rcpt_tos):
            await asyncio.sleep(self.slow)
        raw = envelope.content.decode("utf-8", errors="replace")
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {"text": "", "html": ""}
        for part in message.walk():
            kind = part.get_content_type()
            if kind == "text/plain" and not parts["text"]:
                parts["text"] = part.get_content()
            elif kind == "text/html" and not parts["html"]:
                parts["html"] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[key, str(value)] for key, value in message.items()],
            "subject": str(message.get("Subject", "")),
            "to": str(message.get("To", "")),
            "text": parts["text"],
            "html": parts["html"],
            "raw": raw,
            "received_at": time.time(),
        }
        number = next(self.counter)
        path = os.path.join(self.directory, f"{number:06}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.replace(path + ".tmp", path)
        return "250 2.0.0 stored as message %d" % number


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--slow", type=float, default=0)
    args = parser.parse_args()
    controller = Controller(Sink(args.dir, args.slow), hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
