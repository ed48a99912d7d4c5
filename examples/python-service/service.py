#!/usr/bin/env python3
"""An example booking service that overbook tests as a black box.

Written from the service contract alone: GET /health, POST /bookings,
DELETE /bookings/ID and GET /bookings, served on $OVERBOOK_LISTEN, storing
bookings in Postgres ($DATABASE_URL) and locking rooms in Redis: one Redis
($REDIS_URL), Sentinel ($REDIS_SENTINEL_URL and $REDIS_MASTER_NAME: ask the
sentinel for the primary, ask again when it cannot be reached) or Redlock over
every node of $REDIS_URLS (a lease is a majority of grants within its validity),
whichever overbook gave (`--lock-service`).
Stays are half-open: [12-01, 12-03) and [12-03, 12-05) of one room do not
overlap. Only the standard library plus Debian's python3-psycopg2 and
python3-redis.

BOOKING_MODE picks the design.

buggy (the default) is the seed story's lock-only design: take the room's Redis
lease, check for an overlapping stay, insert, commit, release. Only the lease
keeps two bookings of one night apart, and a lease is a promise for
OVERBOOK_LOCK_TTL_MS only. When the holder is slower than that (a slow write, a
pause, or BOOKING_WORK_MS of its own work), the next user gets the lease while
the first still acts on its check:

  A  SET lock:room:3 NX PX 500 -> OK   SELECT overlap: none   ...600 ms of work...
  B        (A's lease expires at 500 ms)   SET lock:room:3 NX -> OK   SELECT: none
  B                                        INSERT, COMMIT -> 201
  A                                        INSERT, COMMIT -> 201   room 3 booked twice

fixed: Postgres enforces one stay per room-night with an exclusion constraint,
so in the same timeline A's INSERT fails with 23P01 and A answers 409, whatever
the lease did. The lease is still taken, as an optimisation (users of one room
queue in Redis instead of colliding in Postgres), but nothing depends on it:
when Redis is down or the lease stays busy, the booking goes ahead without it.

Telling the guest. When OVERBOOK_NOTIFY_URL is set, every booking also e-mails
its guest "confirmed" (every cancel "cancelled"), by POSTing {"kind":
"confirmed", "booking": ID, "request": KEY} there (docs/service.md, "Telling the guest"). Without the
variable nothing is sent and nothing below changes.

buggy sends it from the request path as soon as the INSERT returns an id, before
COMMIT: should the COMMIT then fail (a conflict found at commit time, a crash,
a lost connection), the guest holds a confirmation of a booking that does not
exist, a phantom. It also sends it again whenever it answers "booked" to a
retry of a request that already booked (two e-mails for one booking), and it
sends "cancelled" before the cancel's COMMIT.

fixed writes an outbox row in the booking's own transaction, so the row exists
exactly when the booking does, and a worker thread per replica delivers it
after the commit: it claims unsent rows (FOR UPDATE SKIP LOCKED, so two
replicas never send one row at once), POSTs each and marks it sent in the same
transaction. Delivery is at least once: a worker that dies between the POST
and its COMMIT sends that row again, under the same message id (its
idempotency key), so the guest still gets one message.
"""

import datetime
import json
import os
import random
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import redis
from urllib.parse import urlparse

# Attempts of one booking transaction when Postgres aborts it as a deadlock
# (40P01: two simultaneous inserts checking the exclusion constraint) or a
# serialisation failure (40001). Both mean "try again", not "taken"; after the
# last one we answer 409.
ATTEMPTS = 3

# How often a waiter asks Redis for a busy lease again, and after how many lease
# lengths it gives up: longer than one lease, so a holder that died hands the
# room over instead of every other user failing "room busy".
LEASE_RETRY_S = 0.010
LEASE_WAIT_LEASES = 2

# Serialises the schema DDL of replicas that start at the same moment against
# one empty database: without it two CREATE TABLE IF NOT EXISTS (or two CREATE
# EXTENSION IF NOT EXISTS) can both see nothing and one fails on a duplicate
# key. The key is "overbook" in ASCII.
SCHEMA_LOCK = 0x6F76_6572_626F_6F6B

SCHEMA = """
CREATE TABLE IF NOT EXISTS bookings (
    id bigserial PRIMARY KEY,
    room bigint NOT NULL,
    check_in date NOT NULL,
    check_out date NOT NULL,
    request text NOT NULL,
    CHECK (check_in < check_out));
CREATE INDEX IF NOT EXISTS bookings_by_room ON bookings (room, check_in);
CREATE INDEX IF NOT EXISTS bookings_by_request ON bookings (request);
"""

# The fixed design's guard. Added by name if missing, not through CREATE TABLE,
# so a table created by a buggy replica gets it too (or the start fails loudly,
# if that table already holds a double booking).
SCHEMA_FIXED = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'bookings'::regclass AND conname = 'bookings_no_overlap') THEN
        ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
            EXCLUDE USING gist (room WITH =, daterange(check_in, check_out) WITH &&);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'bookings'::regclass AND conname = 'bookings_request_key') THEN
        ALTER TABLE bookings ADD CONSTRAINT bookings_request_key UNIQUE (request);
    END IF;
END $$;
"""

# The fixed design's outbox: one row per message owed to a guest, written in
# the transaction that makes it true.
SCHEMA_OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    booking bigint NOT NULL,
    request text NOT NULL,
    sent boolean NOT NULL DEFAULT false,
    UNIQUE (kind, booking));
"""

OUTBOX_ADD = """
INSERT INTO outbox (kind, booking, request) VALUES (%s, %s, %s)
ON CONFLICT (kind, booking) DO NOTHING"""

# Unsent rows no other worker holds, oldest first.
OUTBOX_CLAIM = """
SELECT id, kind, booking, request FROM outbox WHERE NOT sent
ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED"""

# How long the outbox worker sleeps when nothing is owed, and how long one
# delivery may take before it is tried again later.
OUTBOX_IDLE_S = 0.020
NOTIFY_TIMEOUT_S = 2.0

FIND_REQUEST = "SELECT id, room, check_in, check_out FROM bookings WHERE request = %s LIMIT 1"

# Half-open stays overlap when each starts before the other ends.
FIND_OVERLAP = """
SELECT id FROM bookings WHERE room = %s AND check_in < %s AND check_out > %s LIMIT 1"""

INSERT_BUGGY = """
INSERT INTO bookings (room, check_in, check_out, request)
VALUES (%s, %s, %s, %s) RETURNING id"""

# A concurrent retry of the same request waits for the first insert to commit,
# then inserts nothing; the caller then returns the first one's booking.
INSERT_FIXED = """
INSERT INTO bookings (room, check_in, check_out, request)
VALUES (%s, %s, %s, %s)
ON CONFLICT (request) DO NOTHING RETURNING id"""

LIST = "SELECT id, room, check_in, check_out, request FROM bookings ORDER BY id"

# Deletes the lease only while it is still ours: after it expired, someone else
# may hold it, and a plain DEL would free the room under them.
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0"""

ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BOOKING_PATH = re.compile(r"/bookings/([0-9]+)")
BIGINT_MAX = 2**63 - 1


class BadRequest(Exception):
    """The body of POST /bookings is not a booking: 400."""


# How one booking attempt ended.
BOOKED, TAKEN, RETRY, INTERNAL = "booked", "taken", "retry", "internal"


def now_ns():
    """Nanoseconds since the Unix epoch (CLOCK_REALTIME), the trace's clock."""
    return time.time_ns()


def env_millis(name, default):
    value = os.environ.get(name)
    if value is None:
        return default / 1000.0
    try:
        return int(value.strip()) / 1000.0
    except ValueError:
        sys.exit(f"service.py: {name}={value!r} is not a number of milliseconds")


def classify(err):
    """The one place a Postgres error becomes an answer.

    A constraint violation means the room is taken; a deadlock or serialisation
    failure is worth a retry; anything else, a broken connection during COMMIT
    included, leaves the outcome unknown, so the user must get a 5xx, never a
    409.
    """
    code = getattr(err, "pgcode", None)
    if code == "23P01":  # exclusion_violation
        return TAKEN, "the room is already booked for some of these nights"
    # 23505 on UNIQUE(request): a concurrent attempt of the same request
    # committed first; the next attempt finds its booking and returns it.
    if code in ("23505", "40P01", "40001"):
        return RETRY, str(err).strip()
    return INTERNAL, f"postgres: {str(err).strip() or type(err).__name__}"


def parse_stay(body):
    """The body of POST /bookings as (room, from, to, request), or BadRequest."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"bad body: {err}") from err
    if not isinstance(data, dict):
        raise BadRequest("bad body: expected a JSON object")
    room, start, end, request = (data.get(k) for k in ("room", "from", "to", "request"))
    # bool is an int in Python; true is not room 1.
    if not isinstance(room, int) or isinstance(room, bool) or abs(room) > BIGINT_MAX:
        raise BadRequest("room must be an integer (a bigint)")
    if not isinstance(request, str):
        raise BadRequest("request must be a string")
    days = []
    for text in (start, end):
        if not isinstance(text, str) or not ISO_DAY.fullmatch(text):
            raise BadRequest("from and to must be dates as YYYY-MM-DD")
        try:
            days.append(datetime.date.fromisoformat(text))
        except ValueError as err:
            raise BadRequest(f"from and to must be days that exist: {err}") from err
    if days[0] >= days[1]:
        raise BadRequest("from must be before to (to is the check-out day)")
    return room, days[0], days[1], request


class SingleLock:
    """One Redis: SET key value NX PX ttl on it."""

    def __init__(self, url, ttl):
        # Thread-safe: a pool of sockets shared by every handler thread. A reply
        # slower than a second counts as Redis failing.
        self.redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.ttl = ttl

    def try_set(self, key, value):
        """True if granted, False if held by someone else; raises RedisError."""
        return bool(self.redis.set(key, value, nx=True, px=max(1, round(self.ttl * 1000))))

    def unlock(self, key, value):
        self.redis.eval(RELEASE, 1, key, value)

    # Whether a failing Redis is asked again until the deadline (Sentinel: the
    # next primary may be a failover away) or fails the booking at once.
    reasks = False

    def acquire(self, key, value, deadline):
        """(validity in seconds) once granted, None once the deadline passed."""
        while True:
            try:
                if self.try_set(key, value):
                    return self.ttl
            except redis.RedisError:
                if not self.reasks or time.monotonic() >= deadline:
                    raise
            if time.monotonic() >= deadline:
                return None
            time.sleep(LEASE_RETRY_S)


class SentinelLock(SingleLock):
    """Sentinel: the lease is taken on the primary the sentinel names. A primary
    that cannot be reached (killed, failed over, demoted to a read-only replica)
    is forgotten and the sentinel asked again, until the wait for the lease ends:
    a failover then hands the waiters to the promoted replica."""

    reasks = True

    def __init__(self, sentinel_url, master_name, ttl):
        self.sentinel = redis.Redis.from_url(
            sentinel_url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        # Every server of overbook's topology shares the run's one password.
        self.password = urlparse(sentinel_url).password
        self.master_name = master_name
        self.ttl = ttl
        self.primary = None
        self.primary_lock = threading.Lock()

    def node(self):
        with self.primary_lock:
            if self.primary is None:
                host, port = self.sentinel.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
                )
                self.primary = redis.Redis(
                    host=host.decode() if isinstance(host, bytes) else host,
                    port=int(port),
                    password=self.password,
                    socket_timeout=1.0,
                    socket_connect_timeout=1.0,
                )
            return self.primary

    def forget(self, client):
        with self.primary_lock:
            if self.primary is client:
                self.primary = None

    def try_set(self, key, value):
        client = self.node()
        try:
            return bool(client.set(key, value, nx=True, px=max(1, round(self.ttl * 1000))))
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
            self.forget(client)
            raise

    def unlock(self, key, value):
        client = self.node()
        try:
            client.eval(RELEASE, 1, key, value)
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
            self.forget(client)
            raise

class RedlockLock:
    """Redlock, from redis.io's "Distributed Locks with Redis": SET NX PX on every
    node, each with a timeout small against the lease (a fifth of it, 5 ms to
    1 s); held iff a majority granted it and validity = ttl - elapsed - (1% of
    ttl + 2 ms) is left; otherwise unlock on every node (a grant whose reply was
    lost still holds) and retry after a random delay. The five requests go out
    at once: sent one after another, behind a node that times out, the users of
    one room split the nodes between them round after round and nobody holds a
    majority."""

    def __init__(self, urls, ttl):
        timeout = min(max(ttl / 5, 0.005), 1.0)
        self.nodes = [
            redis.Redis.from_url(u, socket_timeout=timeout, socket_connect_timeout=timeout)
            for u in urls
        ]
        self.quorum = len(self.nodes) // 2 + 1
        self.ttl = ttl
        # Enough threads for every user's five requests at once.
        self.pool = ThreadPoolExecutor(max_workers=16 * len(self.nodes))

    @staticmethod
    def set_nx(node, key, value, px):
        """True granted, False refused, None failed."""
        try:
            return bool(node.set(key, value, nx=True, px=px))
        except redis.RedisError:
            return None

    @staticmethod
    def unlock_on(node, key, value):
        try:
            node.eval(RELEASE, 1, key, value)
        except redis.RedisError:
            pass  # a node that cannot be reached expires the key by itself

    def unlock(self, key, value):
        list(self.pool.map(lambda node: self.unlock_on(node, key, value), self.nodes))

    def acquire(self, key, value, deadline):
        px = max(1, round(self.ttl * 1000))
        while True:
            began = time.monotonic()
            answers = list(
                self.pool.map(lambda node: self.set_nx(node, key, value, px), self.nodes)
            )
            granted, failed = answers.count(True), answers.count(None)
            validity = self.ttl - (time.monotonic() - began) - (self.ttl / 100 + 0.002)
            if granted >= self.quorum and validity > 0:
                return validity
            self.unlock(key, value)
            if time.monotonic() >= deadline:
                if failed > len(self.nodes) - self.quorum:
                    raise redis.ConnectionError(
                        f"{failed} of {len(self.nodes)} Redlock nodes failed"
                    )
                return None
            time.sleep(random.uniform(0, 2 * LEASE_RETRY_S))


def lock_service(ttl):
    """The lock service overbook gave: Redlock over REDIS_URLS, Sentinel at
    REDIS_SENTINEL_URL, else the one Redis at REDIS_URL (None: no Redis)."""
    urls = [u for u in os.environ.get("REDIS_URLS", "").split(",") if u]
    if urls:
        return RedlockLock(urls, ttl)
    sentinel = os.environ.get("REDIS_SENTINEL_URL")
    if sentinel:
        return SentinelLock(sentinel, os.environ.get("REDIS_MASTER_NAME", "mymaster"), ttl)
    url = os.environ.get("REDIS_URL")
    return SingleLock(url, ttl) if url else None


class Service:
    def __init__(self, mode, database_url, lock, ttl, work, notify_url=None):
        self.mode = mode
        self.notify_url = notify_url
        self.database_url = database_url
        self.ttl = ttl
        self.work = work
        self.local = threading.local()
        # A lock service failing: buggy mode answers 503, fixed mode books
        # without the lease.
        self.lock = lock

    # -- Postgres ---------------------------------------------------------

    def pg(self):
        """This thread's connection. ThreadingHTTPServer runs one thread per
        HTTP connection, so each keep-alive user has its own Postgres session;
        autocommit stays off, so a transaction begins at the first statement."""
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg2.connect(self.database_url)
            self.local.conn = conn
        return conn

    def abandon(self):
        """Rolls back after a failure; a connection that cannot even do that is
        dropped and the next request opens a new one."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            return
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

    def create_schema(self):
        conn = psycopg2.connect(self.database_url)
        try:
            with conn.cursor() as cur:
                # Held until COMMIT (or until a failure rolls back): a replica
                # starting at the same moment waits here, then finds everything.
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                cur.execute(SCHEMA)
                if self.mode == "fixed":
                    cur.execute(SCHEMA_FIXED)
                    if self.notify_url:
                        cur.execute(SCHEMA_OUTBOX)
            conn.commit()
        finally:
            conn.close()

    # -- Redis lease ------------------------------------------------------

    def take_lease(self, room, trace):
        """Buggy mode: the lease is the only guard, so no lease, no booking
        (busy -> 409, Redis failing -> 503). Fixed mode: the lease only saves
        work, so without one the booking goes ahead and the database decides.

        A waiter asks again every 10 ms for LEASE_WAIT_LEASES leases.
        Returns (lease or None, refusal or None)."""
        if self.lock is None:
            return None, None
        key, value = f"lock:room:{room}", uuid.uuid4().hex
        deadline = time.monotonic() + self.ttl * LEASE_WAIT_LEASES
        try:
            validity = self.lock.acquire(key, value, deadline)
        except redis.RedisError as err:
            if self.mode == "buggy":
                return None, (INTERNAL, f"redis: {err}")
            return None, None
        if validity is None:
            if self.mode == "buggy":
                return None, (TAKEN, f"room {room} is being booked by someone else")
            return None, None
        trace["lock_key"] = f"room:{room}"
        trace["lock_acquired"] = now_ns()
        trace["lock_ttl_ms"] = max(1, round(validity * 1000))
        return (key, value), None

    def release(self, lease, trace):
        """lock_released is when we stop believing we hold the lease, taken
        before the release is sent: the next holder can get the lease as soon
        as the delete runs, before our reply comes back. A failed release only
        leaves the lease to expire."""
        trace["lock_released"] = now_ns()
        key, value = lease
        try:
            self.lock.unlock(key, value)
        except redis.RedisError as err:
            print(f"releasing {key}: {err}", file=sys.stderr)

    # -- Booking ----------------------------------------------------------

    def book(self, stay, trace):
        """Returns (BOOKED, id) or (TAKEN | INTERNAL, why)."""
        lease, refusal = self.take_lease(stay[0], trace)
        if refusal is not None:
            return refusal
        try:
            for _ in range(ATTEMPTS):
                try:
                    verdict = self.transact(stay, trace)
                except psycopg2.Error as err:
                    self.abandon()
                    verdict = classify(err)
                if verdict[0] != RETRY:
                    return verdict
            return TAKEN, f"gave up after {ATTEMPTS} attempts: {verdict[1]}"
        finally:
            if lease is not None:
                self.release(lease, trace)

    def transact(self, stay, trace):
        """One booking transaction; raises psycopg2.Error for classify()."""
        room, start, end, request = stay
        conn = self.pg()
        trace["db_begin"] = now_ns()
        with conn.cursor() as cur:
            # A retry of a request that was already booked gets that booking
            # back instead of a second one. In buggy mode this lookup is as racy
            # as the overlap check below: only the lease keeps two attempts of
            # one request apart.
            verdict = self.replay(cur, stay)
            if verdict is not None:
                conn.rollback()
                if self.notify_url and self.mode == "buggy" and verdict[0] == BOOKED:
                    # The second bug: the request path e-mails whenever it answers
                    # "booked", so a retry (its first answer lost) is a second
                    # e-mail for one booking. The outbox sends one per booking.
                    send_notice(self.notify_url, "confirmed", verdict[1], request)
                return verdict
            if self.mode == "buggy":
                # The check the lease is trusted to keep true until COMMIT.
                # Nothing stops another user from inserting an overlapping stay
                # once the lease expires.
                cur.execute(FIND_OVERLAP, (room, end, start))
                if cur.fetchone() is not None:
                    conn.rollback()
                    return TAKEN, f"room {room} is already booked for some of these nights"
            if self.work > 0:
                # Pricing, payment pre-authorisation: inside the critical
                # section, holding the lease (and an open transaction).
                time.sleep(self.work)
            cur.execute(INSERT_BUGGY if self.mode == "buggy" else INSERT_FIXED, stay)
            row = cur.fetchone()
            if row is not None:
                verdict = BOOKED, row[0]
                if self.notify_url and self.mode == "buggy":
                    # The bug: the guest is told before COMMIT. If the COMMIT
                    # below fails, this e-mail confirms a booking that never was.
                    send_notice(self.notify_url, "confirmed", row[0], request)
                elif self.notify_url:
                    # Owed exactly when this transaction commits.
                    cur.execute(OUTBOX_ADD, ("confirmed", row[0], request))
            else:
                # ON CONFLICT (request) DO NOTHING: the same request committed
                # meanwhile.
                verdict = self.replay(cur, stay) or (RETRY, "the request's booking vanished")
        conn.commit()
        trace["db_commit"] = now_ns()
        return verdict

    @staticmethod
    def replay(cur, stay):
        """The answer already given to this request key, if it booked: the same
        booking for the same stay, TAKEN for a different stay under a reused key."""
        room, start, end, request = stay
        cur.execute(FIND_REQUEST, (request,))
        row = cur.fetchone()
        if row is None:
            return None
        if tuple(row[1:]) == (room, start, end):
            return BOOKED, row[0]
        return TAKEN, f"request {request} already booked room {row[1]} {row[2]}..{row[3]}"

    def cancel(self, booking_id):
        """True when a booking was deleted (its nights are free again). With
        notifications, its guest is told "cancelled": buggy from the request path
        before COMMIT (so a COMMIT that fails leaves a guest told "cancelled" who
        still holds the room), fixed through the outbox, in the same transaction."""
        conn = self.pg()
        with conn.cursor() as cur:
            cur.execute("DELETE FROM bookings WHERE id = %s RETURNING request", (booking_id,))
            row = cur.fetchone()
            if row is not None and self.notify_url and self.mode == "buggy":
                send_notice(self.notify_url, "cancelled", booking_id, row[0])
            elif row is not None and self.notify_url:
                cur.execute(OUTBOX_ADD, ("cancelled", booking_id, row[0]))
        conn.commit()
        return row is not None

    def bookings(self):
        conn = self.pg()
        with conn.cursor() as cur:
            cur.execute(LIST)
            rows = cur.fetchall()
        conn.rollback()
        return [
            {"id": i, "room": r, "from": f.isoformat(), "to": t.isoformat(), "request": q}
            for (i, r, f, t, q) in rows
        ]


def send_notice(url, kind, booking, request, message_id=None):
    """POSTs one message to the guest; True when it was accepted (2xx). A
    message_id is the message's idempotency key: sent again after a crash, it
    is still one message."""
    message = {"kind": kind, "booking": booking, "request": request}
    if message_id is not None:
        message["id"] = message_id
    data = json.dumps(message).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=NOTIFY_TIMEOUT_S) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError) as err:
        print(f"notify {kind} {request}: {err}", file=sys.stderr)
        return False


def outbox_worker(database_url, notify_url):
    """Delivers the outbox after the commits that wrote it, forever. A row is
    marked sent in the transaction that claimed it, so a failure anywhere
    before that COMMIT leaves it owed and it is sent again later."""
    conn = None
    while True:
        try:
            if conn is None or conn.closed:
                conn = psycopg2.connect(database_url)
            with conn.cursor() as cur:
                cur.execute(OUTBOX_CLAIM)
                rows = cur.fetchall()
                owed = 0
                for row_id, kind, booking, request in rows:
                    if send_notice(notify_url, kind, booking, request, f"outbox-{row_id}"):
                        cur.execute("UPDATE outbox SET sent = true WHERE id = %s", (row_id,))
                    else:
                        owed += 1
            if rows:
                conn.commit()
            else:
                conn.rollback()  # read nothing, wrote nothing: no COMMIT to send
            # Idle, or the sink refused: wait before asking again.
            if not rows or owed:
                time.sleep(OUTBOX_IDLE_S)
        except psycopg2.Error as err:
            print(f"outbox: {str(err).strip()}", file=sys.stderr)
            try:
                conn.close()
            except (psycopg2.Error, AttributeError):
                pass
            conn = None
            time.sleep(OUTBOX_IDLE_S)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive: overbook's users reuse theirs, so a
    # request costs no new thread and no new Postgres connection.
    protocol_version = "HTTP/1.1"
    service = None  # set in main()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # one line per request would drown service.log; errors are logged

    def finish(self):
        super().finish()
        self.service.close()

    def answer(self, status, body=None):
        self.send_response(status)
        if status == 204:
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

    def route(self):
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def do_GET(self):
        self.body()
        path = self.route()
        if path == "/health":
            self.answer(200, {"ok": True})
        elif path == "/bookings":
            try:
                self.answer(200, self.service.bookings())
            except psycopg2.Error as err:
                self.service.abandon()
                print(f"GET /bookings: {err}", file=sys.stderr)
                self.answer(503, {"error": f"postgres: {err}"})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        body = self.body()
        if self.route() != "/bookings":
            self.answer(404, {"error": "not found"})
            return
        try:
            stay = parse_stay(body)
        except BadRequest as err:
            self.answer(400, {"error": str(err)})
            return
        trace = {}
        try:
            outcome, detail = self.service.book(stay, trace)
        except Exception as err:  # unknown outcome: never a 409
            outcome, detail = INTERNAL, f"{type(err).__name__}: {err}"
        if outcome == BOOKED:
            # Only now, after COMMIT, may the user be told "confirmed".
            trace["confirmed"] = now_ns()
            self.answer(201, {"id": detail, "trace": trace})
        elif outcome == TAKEN:
            self.answer(409, {"error": detail, "trace": trace})
        else:
            print(f"POST /bookings {stay[3]}: {detail}", file=sys.stderr)
            self.answer(503, {"error": detail, "trace": trace})

    def do_DELETE(self):
        self.body()
        path = self.route()
        match = BOOKING_PATH.fullmatch(path)
        # An id that is not a number (or too large for one) names no booking.
        if match is None or int(match[1]) > BIGINT_MAX:
            self.answer(404, {"error": "no such booking"})
            return
        try:
            deleted = self.service.cancel(int(match[1]))
        except psycopg2.Error as err:
            self.service.abandon()
            print(f"DELETE {path}: {err}", file=sys.stderr)
            self.answer(503, {"error": f"postgres: {err}"})
            return
        if deleted:
            self.answer(204)
        else:
            self.answer(404, {"error": "no such booking"})


class Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when 16 users connect at once.
    request_queue_size = 128
    daemon_threads = True


def main():
    mode = os.environ.get("BOOKING_MODE", "buggy")
    if mode not in ("buggy", "fixed"):
        sys.exit(f"service.py: BOOKING_MODE={mode!r}: expected buggy or fixed")
    database_url = os.environ.get("DATABASE_URL") or sys.exit("service.py: DATABASE_URL is not set")
    ttl = env_millis("OVERBOOK_LOCK_TTL_MS", 500)
    work = env_millis("BOOKING_WORK_MS", 0)
    if ttl <= 0:
        sys.exit("service.py: OVERBOOK_LOCK_TTL_MS must be above zero")
    lock = lock_service(ttl)
    if lock is None and mode == "buggy":
        sys.exit("service.py: REDIS_URL is not set (buggy mode locks in Redis)")
    host, _, port = os.environ.get("OVERBOOK_LISTEN", "127.0.0.1:8080").rpartition(":")

    notify_url = os.environ.get("OVERBOOK_NOTIFY_URL") or None
    service = Service(mode, database_url, lock, ttl, work, notify_url)
    try:
        service.create_schema()
    except psycopg2.Error as err:
        sys.exit(f"service.py: schema: {str(err).strip()}")
    if notify_url and mode == "fixed":
        threading.Thread(
            target=outbox_worker, args=(database_url, notify_url), daemon=True
        ).start()
    Handler.service = service
    server = Server((host, int(port)), Handler)
    # No draining: a booking in flight either committed or rolls back when its
    # connection closes, and its user sees a broken connection ("unknown"),
    # which is the truth.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(
        f"service.py: {mode} mode on {host}:{port}, {type(lock).__name__}, "
        f"lease {round(ttl * 1000)} ms, "
        f"work {round(work * 1000)} ms",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
