//! The mechanism of aimed faults: the proxy follows the Postgres or Redis protocol on every
//! connection and, while an [`Aim`] is set, asks it about single messages; the aim may
//! hold a statement (and what follows it) on its way to the server, swallow an answer and
//! cut the connection, replace a Redis command, or hold the reply that granted a lease.
//! Each time it acts it reports a [`Firing`].
//!
//! What to act on is each fault's own decision, in its module beside it
//! (`crate::nemesis::faults`): this module only follows, asks, and turns the answers
//! into the pieces the relay sends.
//!
//! Following is always on (neither protocol can be picked up in the middle of a stream, and
//! connections outlive fault windows), but with no aim set it only reads: a chunk is
//! relayed whole, as before ([`Plan::Pass`]), with no copy and no allocation. The protocol
//! readers are the `wire` crate's; this module only decides what to do with what they saw.
//!
//! Firings go to the nemesis through a bounded channel with `try_send`: the relay never
//! waits for the recorder, and a firing that finds the channel full is counted as dropped
//! rather than delaying the traffic it describes.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use wire::pg::{Backend, BackendFollower, Frontend, FrontendFollower, StatementKind};
use wire::resp::{self, Command, CommandFollower, LockOp, Pairing, ReplyFollower, Scripts};

/// Which protocol a proxy follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// None: bytes are relayed unread, and no aimed fault can be set.
    Raw,
    /// The Postgres frontend/backend protocol.
    Postgres,
    /// RESP, Redis's protocol.
    Redis,
}

/// An aimed fault, as the proxy applies it: asked about each message of its protocol,
/// it answers what to do with it. Every answer but "nothing" comes with the [`Hit`] to
/// report. The answers are the proxy's verbs: hold (a statement or a lease grant), cut
/// after a completion, replace a command.
pub trait Aim: fmt::Debug + Send + Sync {
    /// The protocol whose messages it acts on.
    fn protocol(&self) -> Protocol;

    /// Postgres, client to server: a statement about to run (a simple query, or the
    /// execution of a prepared one). `Some`: hold it, and everything after it on the
    /// connection (bytes of one stream keep their order), that long.
    fn statement(&self, _sql: &str) -> Option<(Duration, Hit)> {
        None
    }

    /// Postgres, server to client: a command completed, by its tag's kind. `Some`:
    /// deliver what came before the completion, swallow it and cut the connection.
    fn completion(&self, _kind: StatementKind) -> Option<Hit> {
        None
    }

    /// Redis: whether the aim may replace commands ([`Aim::command`]), so a command
    /// still arriving is kept back until it is whole.
    fn replaces_commands(&self) -> bool {
        false
    }

    /// Redis, client to server: a command and what it does to a lease. `Some`: send
    /// these bytes in its place (the server sees no lease operation).
    fn command(&self, _command: &Command<'_>, _op: &LockOp) -> Option<(Vec<u8>, Hit)> {
        None
    }

    /// Redis, server to client: a reply granting the lease on `key`. `Some`: hold it
    /// that long at most; it goes earlier if the lease is granted to another client
    /// meanwhile (it had expired under its holder).
    fn grant(&self, _key: &[u8]) -> Option<(Duration, Hit)> {
        None
    }
}

/// What an aim reports when it acts on a message: a [`Firing`] without the server and
/// connection, which the proxy fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// What the proxy did: `held`, `swallowed` or `dropped`.
    pub action: &'static str,
    /// The statement's first word or the Redis command.
    pub command: String,
    /// What kind of statement or lease operation.
    pub kind: &'static str,
    /// The table written, or the lease's key, when known.
    pub target: Option<String>,
    /// How long it was held at most, for holds.
    pub held_ms: Option<u64>,
}

/// One time an aimed fault acted on a message: what it did and what it hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firing {
    /// The server whose traffic it acted on: `postgres` or `redis`.
    pub server: &'static str,
    /// What the proxy did: `held`, `swallowed` or `dropped`.
    pub action: &'static str,
    /// The statement's first word (`INSERT`, `COMMIT`) or the Redis command (`SET`,
    /// `EVALSHA`).
    pub command: String,
    /// What kind of statement (`write`, `commit`, `matched`) or lease operation
    /// (`acquire`, `renew`).
    pub kind: &'static str,
    /// The table written, or the lease's key, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How long it was held at most, for holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<u64>,
    /// The proxy's number for the client connection.
    pub connection: u64,
}

/// The aim in force on a proxy, with where its firings go.
#[derive(Debug, Clone)]
pub(crate) struct Armed {
    pub(crate) aim: Arc<dyn Aim>,
    server: &'static str,
    firings: mpsc::Sender<Firing>,
    dropped: Arc<AtomicU64>,
}

/// How many firings may wait for the nemesis before new ones are counted as dropped.
const FIRING_QUEUE: usize = 4096;

/// Where aimed faults report their firings: made by whoever sets the aims (the nemesis),
/// handed to [`super::proxy::FaultProxy::aim`] (one `Firings` may serve several proxies),
/// and drained while the fault is in force.
#[derive(Debug)]
pub struct Firings {
    tx: mpsc::Sender<Firing>,
    rx: mpsc::Receiver<Firing>,
    dropped: Arc<AtomicU64>,
}

impl Default for Firings {
    fn default() -> Firings {
        Firings::new()
    }
}

impl Firings {
    /// An empty queue.
    pub fn new() -> Firings {
        let (tx, rx) = mpsc::channel(FIRING_QUEUE);
        Firings {
            tx,
            rx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The next firing; `None` once the aim was lifted and every firing was taken.
    pub async fn next(&mut self) -> Option<Firing> {
        self.rx.recv().await
    }

    /// A firing already waiting, if any.
    pub fn try_next(&mut self) -> Option<Firing> {
        self.rx.try_recv().ok()
    }

    /// How many firings found the queue full and were not reported.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Armed {
    pub(crate) fn new(aim: Arc<dyn Aim>, firings: &Firings) -> Armed {
        let server = match aim.protocol() {
            Protocol::Postgres => "postgres",
            Protocol::Redis => "redis",
            Protocol::Raw => "",
        };
        Armed {
            aim,
            server,
            firings: firings.tx.clone(),
            dropped: firings.dropped.clone(),
        }
    }

    fn report(&self, hit: Hit, connection: u64) {
        let firing = Firing {
            server: self.server,
            action: hit.action,
            command: hit.command,
            kind: hit.kind,
            target: hit.target,
            held_ms: hit.held_ms,
            connection,
        };
        // Never wait: the relay must not stall behind the recorder.
        if self.firings.try_send(firing).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What one proxy shares between its connections: the Redis scripts seen (Redis's script
/// cache is server-wide, and a client sends EVALSHA on one connection for a script it
/// loaded on another), and the lease grants being held, by key.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// A std Mutex: held only while one command is classified, never across an await.
    scripts: Mutex<Scripts>,
    /// Grants held now, by key: releasing one early is sending on its channel.
    held_grants: Mutex<BTreeMap<Vec<u8>, HeldGrant>>,
}

/// A grant being held: until when at most, and the signal that lets it go earlier.
type HeldGrant = (std::time::Instant, oneshot::Sender<()>);

/// A run of bytes in the output of one chunk, and when it may go.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes of the chunk, by stream offsets: sent after `hold` (zero: now), or earlier
    /// when `early` fires.
    Bytes {
        range: Range<u64>,
        hold: Duration,
        early: Option<oneshot::Receiver<()>>,
    },
    /// Bytes the proxy writes in place of a message.
    Insert(Vec<u8>),
}

/// What to do with one chunk.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Relay the chunk as it is, now: the fast path.
    Pass,
    /// Relay these pieces in order (which may include bytes carried over from earlier
    /// chunks), then cut the connection if `cut`.
    Act { pieces: Vec<Piece>, cut: bool },
}

/// One direction of one connection, followed.
pub(crate) struct Follow {
    side: Side,
    connection: u64,
    shared: Arc<Shared>,
    /// Output bytes kept back because the message they start was incomplete (only while
    /// an aim may need to replace that message), and the stream offset of the first.
    carry: Vec<u8>,
    carry_start: u64,
}

enum Side {
    Raw,
    PgUp(Box<FrontendFollower>),
    PgDown(Box<BackendFollower>),
    RedisUp {
        commands: Box<CommandFollower>,
        pairing: Arc<Mutex<Pairing>>,
    },
    RedisDown {
        replies: Box<ReplyFollower>,
        pairing: Arc<Mutex<Pairing>>,
    },
}

/// The two followers of a new connection: client -> server, server -> client.
pub(crate) fn follow_connection(
    protocol: Protocol,
    connection: u64,
    shared: &Arc<Shared>,
) -> (Follow, Follow) {
    let (up, down) = match protocol {
        Protocol::Raw => (Side::Raw, Side::Raw),
        Protocol::Postgres => (Side::PgUp(Box::default()), Side::PgDown(Box::default())),
        Protocol::Redis => {
            let pairing = Arc::new(Mutex::new(Pairing::new()));
            (
                Side::RedisUp {
                    commands: Box::default(),
                    pairing: pairing.clone(),
                },
                Side::RedisDown {
                    replies: Box::default(),
                    pairing,
                },
            )
        }
    };
    let make = |side| Follow {
        side,
        connection,
        shared: shared.clone(),
        carry: Vec::new(),
        carry_start: 0,
    };
    (make(up), make(down))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A key or table name for the history: lossy UTF-8, at most 80 characters.
pub fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(80).collect()
}

impl Follow {
    /// Reads one chunk (the bytes at the follower's next stream offsets) and decides what
    /// to do with it under `armed`.
    pub(crate) fn feed(&mut self, chunk: &[u8], armed: Option<&Armed>) -> Plan {
        let connection = self.connection;
        match &mut self.side {
            Side::Raw => Plan::Pass,
            Side::PgUp(front) => pg_up(front, chunk, armed, connection),
            Side::PgDown(back) => pg_down(back, chunk, armed, connection),
            Side::RedisUp { commands, pairing } => {
                let start = commands.position();
                let replaced = redis_up(commands, pairing, &self.shared, chunk, armed);
                let replacing = armed.filter(|a| a.aim.replaces_commands());
                if replacing.is_none() && self.carry.is_empty() {
                    return Plan::Pass;
                }
                let end = start + chunk.len() as u64;
                // While commands may be replaced, keep back one still arriving: it may be one.
                let keep_from = match replacing {
                    Some(_) => commands.partial_start().unwrap_or(end),
                    None => end,
                };
                self.rebuild(start..keep_from, chunk, replaced, replacing, connection)
            }
            Side::RedisDown { replies, pairing } => {
                redis_down(replies, pairing, &self.shared, chunk, armed, connection)
            }
        }
    }

    /// The output of a Redis command chunk (at stream offset `start`) rebuilt: carried
    /// bytes, then the chunk, with each replaced command swapped for its stand-in; bytes
    /// from `keep_from` on are carried to the next chunk.
    fn rebuild(
        &mut self,
        Range {
            start,
            end: keep_from,
        }: Range<u64>,
        chunk: &[u8],
        replaced: Vec<Replaced>,
        armed: Option<&Armed>,
        connection: u64,
    ) -> Plan {
        let end = start + chunk.len() as u64;
        let base = if self.carry.is_empty() {
            start
        } else {
            self.carry_start
        };
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(input.len());
        let mut at = base;
        for (range, insert, hit) in replaced {
            // A command begun in bytes already relayed (before the aim was set) cannot
            // be taken back.
            if range.start < at {
                continue;
            }
            if let Some(armed) = armed {
                armed.report(hit, connection);
            }
            out.extend_from_slice(&input[(at - base) as usize..(range.start - base) as usize]);
            out.extend_from_slice(&insert);
            at = range.end;
        }
        let keep_from = keep_from.clamp(at, end);
        out.extend_from_slice(&input[(at - base) as usize..(keep_from - base) as usize]);
        if keep_from < end {
            self.carry = input[(keep_from - base) as usize..].to_vec();
            self.carry_start = keep_from;
        }
        Plan::Act {
            pieces: vec![Piece::Insert(out)],
            cut: false,
        }
    }
}

/// A command an aim replaced: where it was, what goes in its place, what to report.
type Replaced = (Range<u64>, Vec<u8>, Hit);

/// Postgres, client to server: the aim may hold a statement, and everything after it.
fn pg_up(
    front: &mut FrontendFollower,
    chunk: &[u8],
    armed: Option<&Armed>,
    connection: u64,
) -> Plan {
    let start = front.position();
    let Some(armed) = armed.filter(|_| !front.is_lost()) else {
        // Following only: the prepared statements' SQL is kept for later.
        let _ = front.feed(chunk, |_| {});
        return Plan::Pass;
    };
    // Hold from the first message to hold: everything after it waits too, as bytes of
    // one stream must.
    let mut hold_from: Option<(u64, Duration)> = None;
    let _ = front.feed(chunk, |event| {
        let sql = match &event.message {
            Frontend::Query { sql } => sql.as_ref(),
            Frontend::Execute { sql: Some(sql), .. } => sql,
            _ => return,
        };
        let Some((held, hit)) = armed.aim.statement(sql) else {
            return;
        };
        armed.report(hit, connection);
        if hold_from.is_none() {
            hold_from = Some((event.range.start.max(start), held));
        }
    });
    held_from(
        start,
        start + chunk.len() as u64,
        hold_from.map(|(at, d)| (at, d, None)),
    )
}

/// The pieces of a chunk `start..end` held from `at` on (sent at once before it).
fn held_from(
    start: u64,
    end: u64,
    hold: Option<(u64, Duration, Option<oneshot::Receiver<()>>)>,
) -> Plan {
    match hold {
        None => Plan::Pass,
        Some((at, held, early)) => {
            let mut pieces = Vec::with_capacity(2);
            if at > start {
                pieces.push(bytes(start..at, Duration::ZERO, None));
            }
            pieces.push(bytes(at..end, held, early));
            Plan::Act { pieces, cut: false }
        }
    }
}

/// Postgres, server to client: the aim may swallow a completion and cut the connection.
fn pg_down(
    back: &mut BackendFollower,
    chunk: &[u8],
    armed: Option<&Armed>,
    connection: u64,
) -> Plan {
    let start = back.position();
    let Some(armed) = armed.filter(|_| !back.is_lost()) else {
        let _ = back.feed(chunk, |_| {});
        return Plan::Pass;
    };
    let mut cut_at = None;
    let _ = back.feed(chunk, |event| {
        if cut_at.is_some() {
            return;
        }
        if let Backend::CommandComplete { tag } = event.message {
            if let Some(hit) = armed.aim.completion(StatementKind::of_tag(tag)) {
                cut_at = Some(event.range.start.max(start));
                armed.report(hit, connection);
            }
        }
    });
    match cut_at {
        None => Plan::Pass,
        Some(at) => Plan::Act {
            pieces: vec![bytes(start..at, Duration::ZERO, None)],
            cut: true,
        },
    }
}

/// Redis, client to server: every command is classified and paired with the reply to
/// come; the commands the aim replaces are returned, for [`Follow::rebuild`].
fn redis_up(
    commands: &mut CommandFollower,
    pairing: &Mutex<Pairing>,
    shared: &Shared,
    chunk: &[u8],
    armed: Option<&Armed>,
) -> Vec<Replaced> {
    let mut replaced = Vec::new();
    let mut pairing = lock(pairing);
    let _ = commands.feed(chunk, |command| {
        // Only scripts need the proxy-wide script cache.
        let name = command.name.as_bytes();
        let op = if name.starts_with(b"EVAL") || name == b"SCRIPT" {
            lock(&shared.scripts).classify(&command)
        } else {
            resp::classify(&command)
        };
        if let Some((insert, hit)) = armed.and_then(|a| a.aim.command(&command, &op)) {
            replaced.push((command.range.clone(), insert, hit));
            // The server sees the stand-in, which is no lease operation.
            pairing.expect(&command, LockOp::Other);
            return;
        }
        pairing.expect(&command, op);
    });
    replaced
}

/// Redis, server to client: every reply is paired with its command; a grant of a lease
/// whose previous grant is still held releases that one, and the aim may hold a grant.
fn redis_down(
    replies: &mut ReplyFollower,
    pairing: &Mutex<Pairing>,
    shared: &Shared,
    chunk: &[u8],
    armed: Option<&Armed>,
    connection: u64,
) -> Plan {
    let start = replies.position();
    let mut hold_from: Option<(u64, Duration, Option<oneshot::Receiver<()>>)> = None;
    let mut pairing = lock(pairing);
    let _ = replies.feed(chunk, |reply| {
        let answer = pairing.reply(&reply);
        if !answer.grants() {
            return;
        }
        let Some(key) = answer
            .outcomes()
            .iter()
            .find(|o| o.is_grant())
            .and_then(|o| o.op.key().map(<[u8]>::to_vec))
        else {
            return;
        };
        let now = std::time::Instant::now();
        let mut held = lock(&shared.held_grants);
        // A grant of a key whose previous grant is still held: the lease expired under
        // its first holder and went to this one. Both now believe they hold it: let the
        // first go on, and this one too.
        if let Some((until, first)) = held.remove(&key) {
            if until > now {
                let _ = first.send(());
                return;
            }
        }
        let Some(armed) = armed.filter(|_| hold_from.is_none()) else {
            return;
        };
        let Some((hold, hit)) = armed.aim.grant(&key) else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        held.insert(key, (now + hold, tx));
        armed.report(hit, connection);
        hold_from = Some((reply.range.start.max(start), hold, Some(rx)));
    });
    drop(pairing);
    held_from(start, start + chunk.len() as u64, hold_from)
}

fn bytes(range: Range<u64>, hold: Duration, early: Option<oneshot::Receiver<()>>) -> Piece {
    Piece::Bytes { range, hold, early }
}
