#!/usr/bin/env python3
"""A real SMTP server for Souk's tests (aiosmtpd).

Usage: smtp-sink.py PORT DIRECTORY

Listens on 127.0.0.1:PORT. Every accepted message is stored twice in DIRECTORY: as
<n>.eml (the raw message) and <n>.json (envelope recipients, subject, sender and the
decoded text and HTML parts), so tests can assert on content without a MIME parser.
While the file DIRECTORY/refuse exists, recipients are refused with a 451 (a transient
failure, as a busy or greylisting server gives). While the file DIRECTORY/hold exists,
holding the seconds it says, every message's DATA is held that long before it is
accepted (a slow server), and DIRECTORY/peak holds the most messages ever held at once.
Prints "ready" once listening.
"""

import asyncio
import json
import os
import sys
import threading
import time
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = 0
        self.held = 0
        self.peak = 0

    def refusing(self):
        return os.path.exists(os.path.join(self.directory, "refuse"))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refusing():
            return "451 4.3.0 try again later (the test sink is refusing)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def hold_seconds(self):
        try:
            with open(os.path.join(self.directory, "hold")) as handle:
                return float(handle.read().strip() or "0")
        except FileNotFoundError:
            return 0.0

    async def handle_DATA(self, server, session, envelope):
        if self.refusing():
            return "451 4.3.0 try again later (the test sink is refusing)"
        hold = self.hold_seconds()
        if hold > 0:
            # Every session runs on the controller's one event loop: no lock needed.
            self.held += 1
            self.peak = max(self.peak, self.held)
            with open(os.path.join(self.directory, "peak"), "w") as handle:
                handle.write(str(self.peak))
            await asyncio.sleep(hold)
            self.held -= 1
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_to": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        with self.lock:
            self.count += 1
            name = f"{time.time_ns()}-{self.count}"
        # Written under a temporary name and renamed, so a reader never sees half a file.
        for suffix, body in ((".eml", raw), (".json", json.dumps(record).encode())):
            temporary = os.path.join(self.directory, f".{name}{suffix}.tmp")
            with open(temporary, "wb") as handle:
                handle.write(body)
            os.rename(temporary, os.path.join(self.directory, name + suffix))
        return "250 Message accepted for delivery"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: smtp-sink.py PORT DIRECTORY")
    port, directory = int(sys.argv[1]), sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        # The test kills this process when it is done; stdin closing also ends it.
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
