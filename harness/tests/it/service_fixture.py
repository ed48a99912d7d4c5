#!/usr/bin/env python3
"""A deliberately broken booking service, for service mode's bad-input tests.

Standard library only. It answers GET /health with 200 on $OVERBOOK_LISTEN and
breaks the contract in the way FIXTURE_MODE names:

  hang         every other request is read and never answered
  no-read      POST /bookings books honestly in memory (409 when taken, 201
               {"id": "b-<n>"} otherwise); GET /bookings -> 500
  malformed    POST /bookings -> 200 "not json"; GET /bookings -> 200 []
  memory       books honestly in memory and never touches Postgres or Redis:
               GET /bookings lists what it holds (a service whose writes never
               cross overbook's proxy)
  zero-night   books as memory does, but its GET /bookings answers every row
               with check-out equal to check-in (a buggy read)
"""

import itertools
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("FIXTURE_MODE", "hang")
COUNTER = itertools.count(1)
LOCK = threading.Lock()
# room -> [(from, to)]: ISO dates compare as strings.
STAYS = {}
# id -> (room, from, to, request), in the memory modes.
BOOKINGS = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, "ok")
        if MODE == "hang":
            time.sleep(3600)
        if MODE == "no-read":
            return self.answer(500, "the read is broken on purpose")
        if MODE in ("memory", "zero-night"):
            with LOCK:
                rows = [
                    {"id": i, "room": room, "from": s,
                     "to": s if MODE == "zero-night" else e, "request": req}
                    for i, (room, s, e, req) in BOOKINGS.items()
                ]
            return self.answer(200, json.dumps(rows))
        return self.answer(200, "[]")

    def do_POST(self):
        body = self.body()
        if MODE == "hang":
            time.sleep(3600)
        if MODE in ("memory", "zero-night"):
            stay = json.loads(body)
            room, start, end = stay["room"], stay["from"], stay["to"]
            with LOCK:
                if any(r == room and s < end and start < e
                       for r, s, e, _ in BOOKINGS.values()):
                    return self.answer(409, "taken")
                n = next(COUNTER)
                BOOKINGS[n] = (room, start, end, stay["request"])
            return self.answer(201, '{"id": %d}' % n)
        if MODE == "no-read":
            stay = json.loads(body)
            room, start, end = stay["room"], stay["from"], stay["to"]
            with LOCK:
                held = STAYS.setdefault(room, [])
                if any(s < end and start < e for s, e in held):
                    return self.answer(409, "taken")
                held.append((start, end))
                n = next(COUNTER)
            return self.answer(201, '{"id": "b-%d"}' % n)
        return self.answer(200, "not json")

    def do_DELETE(self):
        if MODE == "hang":
            time.sleep(3600)
        if MODE in ("memory", "zero-night"):
            with LOCK:
                gone = BOOKINGS.pop(int(self.path.rsplit("/", 1)[-1]), None)
            return self.answer(204 if gone else 404, "")
        return self.answer(404, "")


host, port = os.environ["OVERBOOK_LISTEN"].rsplit(":", 1)
server = ThreadingHTTPServer((host, int(port)), Handler)
server.daemon_threads = True
print(f"fixture {MODE} on {host}:{port}", flush=True)
server.serve_forever()
