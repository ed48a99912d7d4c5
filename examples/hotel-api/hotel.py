#!/usr/bin/env python3
"""A hotel reservations API that overbook tests as it is, through a mapping file.

It was not written for overbook: its API is its own (docs/api.md shows how
overbook is told about it, hotel.toml is the mapping):

  GET  /healthz                              ready
  POST /api/v2/reservations                  {"roomType": "DLX", "checkIn": "2027-01-01",
                                              "checkOut": "2027-01-03", "guest": {"ref": "..."}}
       201 {"reservation": {"id": "R-7", "status": "CONFIRMED"}}
       200 {"reservation": {"id": null, "status": "WAITLISTED"}}   no availability
  POST /api/v2/reservations/{id}/cancel      204, 404 unknown, 409 already cancelled
  GET  /api/v2/reservations?status=CONFIRMED {"data": {"items": [{"id", "roomType",
                                              "stay": {"checkIn", "checkOut"},
                                              "guest": {"ref"}, "status"}]}}

Every call but /healthz needs the header X-Api-Key equal to $HOTEL_API_KEY
(when set). The guest's ref is the idempotency key: booking it again answers
the first booking. Cancels are soft (status CANCELLED).

The hotel sells room *types*, each HOTEL_ROOMS times a night
("DLX:3,STE:1" by default): DLX may hold three confirmed stays on any night.
Stays are half-open, check-out free. checkIn/checkOut are ISO dates (nights)
or RFC 3339 instants (a meeting room sold by the slot); instants are answered
in +01:00, the hotel's own offset, which is the same instant.

HOTEL_MODE picks the design:

buggy (default): count the confirmed stays overlapping the request, and if
fewer than the capacity, insert. Nothing orders two bookings of one room type:

  A  SELECT count -> 2 (capacity 3)        INSERT ...(slow)...    COMMIT -> 201
  B        SELECT count -> 2               INSERT ...(slow)...    COMMIT -> 201
                                           DLX now holds 4 stays on a night of 3

fixed: the room type's row is locked first (SELECT ... FOR UPDATE), so B's
count waits until A committed and sees A's stay: B is waitlisted.

Only the standard library plus Debian's python3-psycopg2.
"""

import datetime
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg2

SCHEMA = """
CREATE TABLE IF NOT EXISTS room_types (code text PRIMARY KEY, capacity integer NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    id bigserial PRIMARY KEY,
    room_type text NOT NULL REFERENCES room_types (code),
    check_in timestamptz NOT NULL,
    check_out timestamptz NOT NULL,
    by_night boolean NOT NULL,
    guest_ref text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'CONFIRMED'
);
"""
CANCEL_PATH = re.compile(r"/api/v2/reservations/R-([0-9]{1,18})/cancel")
HOTEL_TZ = datetime.timezone(datetime.timedelta(hours=1))


class BadRequest(Exception):
    pass


def parse_bound(text):
    """A date (midnight UTC, by night) or an RFC 3339 instant."""
    if not isinstance(text, str):
        raise BadRequest(f"not a date: {text!r}")
    try:
        if len(text) == 10:
            d = datetime.date.fromisoformat(text)
            return datetime.datetime(d.year, d.month, d.day, tzinfo=datetime.timezone.utc), True
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if t.tzinfo is None:
            raise BadRequest(f"no offset: {text!r}")
        return t, False
    except ValueError as err:
        raise BadRequest(str(err)) from None


def show(t, by_night):
    return t.date().isoformat() if by_night else t.astimezone(HOTEL_TZ).isoformat()


class Hotel:
    def __init__(self, mode, database_url, rooms):
        self.mode = mode
        self.database_url = database_url
        self.local = threading.local()
        conn = psycopg2.connect(database_url)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(4207)")
            cur.execute(SCHEMA)
            for code, capacity in rooms.items():
                cur.execute(
                    "INSERT INTO room_types VALUES (%s, %s) ON CONFLICT (code) DO NOTHING",
                    (code, capacity),
                )
        conn.commit()
        conn.close()

    def pg(self):
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg2.connect(self.database_url)
            self.local.conn = conn
        return conn

    def abandon(self):
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            try:
                conn.rollback()
            except psycopg2.Error:
                conn.close()
                self.local.conn = None

    def close(self):
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.conn = None

    def book(self, room_type, check_in, check_out, by_night, ref):
        """(status, reservation) for the answer."""
        conn = self.pg()
        with conn.cursor() as cur:
            cur.execute("SELECT id, status FROM reservations WHERE guest_ref = %s", (ref,))
            row = cur.fetchone()
            if row is not None:  # a retry: the first answer again
                conn.rollback()
                return 201, {"id": f"R-{row[0]}", "status": row[1]}
            # fixed: the room type's row orders every booking of it; the count
            # below then sees each earlier booking's stay. buggy skips this.
            lock = " FOR UPDATE" if self.mode == "fixed" else ""
            cur.execute(f"SELECT capacity FROM room_types WHERE code = %s{lock}", (room_type,))
            cap = cur.fetchone()
            if cap is None:
                conn.rollback()
                return 422, {"error": f"no room type {room_type}"}
            # Stays overlapping the request: more than any one night holds, so
            # this refuses a little early, never late.
            cur.execute(
                "SELECT count(*) FROM reservations WHERE room_type = %s AND status = 'CONFIRMED'"
                " AND check_in < %s AND check_out > %s",
                (room_type, check_out, check_in),
            )
            if cur.fetchone()[0] >= cap[0]:
                conn.rollback()
                return 200, {"id": None, "status": "WAITLISTED"}
            try:
                cur.execute(
                    "INSERT INTO reservations (room_type, check_in, check_out, by_night, guest_ref)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (room_type, check_in, check_out, by_night, ref),
                )
                rid = cur.fetchone()[0]
                conn.commit()
            except psycopg2.errors.UniqueViolation:
                conn.rollback()
                return self.book(room_type, check_in, check_out, by_night, ref)
        return 201, {"id": f"R-{rid}", "status": "CONFIRMED"}

    def cancel(self, rid):
        conn = self.pg()
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE reservations SET status = 'CANCELLED' WHERE id = %s AND status = 'CONFIRMED'",
                (rid,),
            )
            done = cur.rowcount == 1
            cur.execute("SELECT 1 FROM reservations WHERE id = %s", (rid,))
            exists = cur.fetchone() is not None
        conn.commit()
        return 204 if done else (409 if exists else 404)

    def list(self, status):
        conn = self.pg()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id, room_type, check_in, check_out, by_night, guest_ref, status"
                " FROM reservations WHERE %s IS NULL OR status = %s ORDER BY id",
                (status, status),
            )
            rows = cur.fetchall()
        conn.commit()
        return [
            {
                "id": f"R-{r[0]}",
                "roomType": r[1],
                "stay": {"checkIn": show(r[2], r[4]), "checkOut": show(r[3], r[4])},
                "guest": {"ref": r[5]},
                "status": r[6],
            }
            for r in rows
        ]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hotel = None
    api_key = None

    def log_message(self, format, *args):  # noqa: A002
        pass

    def finish(self):
        super().finish()
        self.hotel.close()

    def answer(self, status, body=None):
        self.send_response(status)
        if status == 204:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(body if body is not None else {}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def allowed(self):
        if self.api_key and self.headers.get("X-Api-Key") != self.api_key:
            self.answer(401, {"error": "bad or missing X-Api-Key"})
            return False
        return True

    def guarded(self, work):
        try:
            status, body = work()
        except psycopg2.Error as err:
            self.hotel.abandon()
            print(f"{self.command} {self.path}: {err}", file=sys.stderr)
            status, body = 503, {"error": f"postgres: {err}"}
        self.answer(status, body)

    def do_GET(self):
        self.body()
        url = urlparse(self.path)
        if url.path == "/healthz":
            self.answer(200, {"ok": True})
        elif url.path == "/api/v2/reservations":
            if self.allowed():
                status = (parse_qs(url.query).get("status") or [None])[0]
                self.guarded(lambda: (200, {"data": {"items": self.hotel.list(status)}}))
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        raw = self.body()
        path = urlparse(self.path).path
        if not self.allowed():
            return
        match = CANCEL_PATH.fullmatch(path)
        if match:
            self.guarded(lambda: (self.hotel.cancel(int(match[1])), None))
            return
        if path != "/api/v2/reservations":
            self.answer(404, {"error": "not found"})
            return
        try:
            req = json.loads(raw)
            check_in, by_night = parse_bound(req["checkIn"])
            check_out, _ = parse_bound(req["checkOut"])
            room_type, ref = str(req["roomType"]), str(req["guest"]["ref"])
            if check_out <= check_in:
                raise BadRequest("checkOut must be after checkIn")
        except (BadRequest, ValueError, KeyError, TypeError) as err:
            self.answer(422, {"error": f"bad reservation: {err}"})
            return

        def work():
            status, reservation = self.hotel.book(room_type, check_in, check_out, by_night, ref)
            return status, {"reservation": reservation} if status in (200, 201) else reservation

        self.guarded(work)


class Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def main():
    mode = os.environ.get("HOTEL_MODE", "buggy")
    if mode not in ("buggy", "fixed"):
        sys.exit(f"hotel.py: HOTEL_MODE={mode!r}: expected buggy or fixed")
    database_url = os.environ.get("DATABASE_URL") or sys.exit("hotel.py: DATABASE_URL is not set")
    rooms = {}
    for part in os.environ.get("HOTEL_ROOMS", "DLX:3,STE:1").split(","):
        code, _, capacity = part.partition(":")
        rooms[code.strip()] = int(capacity or 1)
    host, _, port = os.environ.get("OVERBOOK_LISTEN", "127.0.0.1:8080").rpartition(":")
    try:
        Handler.hotel = Hotel(mode, database_url, rooms)
    except psycopg2.Error as err:
        sys.exit(f"hotel.py: schema: {str(err).strip()}")
    Handler.api_key = os.environ.get("HOTEL_API_KEY") or None
    server = Server((host, int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"hotel.py: {mode} mode on {host}:{port}, rooms {rooms}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
