//! Aimed faults: the proxy follows the Postgres or Redis protocol on every connection and,
//! while an [`Aim`] is set, acts on single messages: it holds a write on its way to the
//! server, swallows the answer to a COMMIT, holds the reply that granted a lease, or keeps
//! a lease renewal from reaching Redis. Each time it acts it reports a [`Firing`].
//!
//! Following is always on (neither protocol can be picked up in the middle of a stream, and
//! connections outlive fault windows), but with no aim set it only reads: a chunk is
//! relayed whole, as before ([`Plan::Pass`]), with no copy and no allocation. The protocol
//! readers are `crate::wire`'s; this module only decides what to do with what they saw.
//!
//! Firings go to the nemesis through a bounded channel with `try_send`: the relay never
//! waits for the recorder, and a firing that finds the channel full is counted as dropped
//! rather than delaying the traffic it describes.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::wire::pg::{self, Backend, BackendFollower, Frontend, FrontendFollower, StatementKind};
use crate::wire::resp::{self, CommandFollower, LockOp, Pairing, ReplyFollower, Scripts};

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

/// Extra statements `slow-writes` holds: `--slow-sql REGEX`, matched against each
/// statement's SQL text.
#[derive(Clone)]
pub struct SlowSql(Arc<regex::Regex>);

impl SlowSql {
    /// Whether `sql` matches.
    pub fn matches(&self, sql: &str) -> bool {
        self.0.is_match(sql)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for SlowSql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlowSql({:?})", self.as_str())
    }
}

impl PartialEq for SlowSql {
    fn eq(&self, other: &SlowSql) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SlowSql {}

impl FromStr for SlowSql {
    type Err = regex::Error;
    fn from_str(s: &str) -> Result<SlowSql, regex::Error> {
        regex::RegexBuilder::new(s)
            .case_insensitive(true)
            // A user's pattern must not make the proxy build an unbounded automaton.
            .size_limit(1 << 20)
            .build()
            .map(|r| SlowSql(Arc::new(r)))
    }
}

/// An aimed fault, as the proxy applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aim {
    /// Postgres: every statement that writes (INSERT, UPDATE, DELETE, MERGE, ...), every
    /// COMMIT, and every statement matching `also`, is held for `hold` (plus up to
    /// `jitter`) on its way to the server. Reads and BEGIN pass at full speed.
    SlowWrites {
        /// How long each write is held.
        hold: Duration,
        /// A uniform random extra in `[0, jitter]`.
        jitter: Duration,
        /// Statements held besides the writes.
        also: Option<SlowSql>,
    },
    /// Postgres: every INSERT (a booking being written; a cancel's DELETE and every
    /// COMMIT pass) is held for `hold` on its way to the server: a lease holder at work,
    /// for the faults that strike during its critical section.
    SlowInserts {
        /// How long each INSERT is held.
        hold: Duration,
    },
    /// Postgres: the server's answer to a COMMIT that committed is swallowed and the
    /// connection cut, so the client cannot know whether it committed.
    LostCommitAck,
    /// Redis: the reply that granted a lease is held until the lease was granted to
    /// someone else (it had expired), or for `hold` at most.
    SlowLockGrant {
        /// The longest a grant is held: the lease plus a margin.
        hold: Duration,
    },
    /// Redis: a lease renewal is replaced by a command that changes nothing, so the
    /// lease is not extended; the client hears "not renewed".
    LostRenewal,
}

impl Aim {
    /// The protocol the aim needs its proxy to follow.
    pub fn protocol(&self) -> Protocol {
        match self {
            Aim::SlowWrites { .. } | Aim::SlowInserts { .. } | Aim::LostCommitAck => {
                Protocol::Postgres
            }
            Aim::SlowLockGrant { .. } | Aim::LostRenewal => Protocol::Redis,
        }
    }
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
    pub(crate) aim: Aim,
    server: &'static str,
    firings: mpsc::Sender<Firing>,
    dropped: Arc<AtomicU64>,
}

impl PartialEq for Armed {
    fn eq(&self, other: &Armed) -> bool {
        self.aim == other.aim && self.firings.same_channel(&other.firings)
    }
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
    pub(crate) fn new(aim: Aim, firings: &Firings) -> Armed {
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

    fn report(&self, firing: Firing) {
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

/// The first word of a statement, uppercased, for the history (`INSERT`, `COMMIT`).
fn first_word(sql: &str) -> String {
    sql.split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// A key or table name for the history: lossy UTF-8, at most 80 characters.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(80).collect()
}

/// What slow-writes does with a statement: hold it (and why), or not.
fn slow_writes_kind(sql: &str, also: Option<&SlowSql>) -> Option<(&'static str, Option<String>)> {
    let statement = pg::classify(sql);
    match statement.kind {
        StatementKind::Write => return Some(("write", statement.table)),
        StatementKind::Commit => return Some(("commit", None)),
        _ => {}
    }
    also.filter(|re| re.matches(sql))
        .map(|_| ("matched", statement.table))
}

/// A command standing in for a lost renewal: it changes nothing and answers like a
/// renewal that did not renew (`:0` for counts and scripts, nil for SET XX and GETEX).
fn stand_in(command_name: &[u8]) -> Vec<u8> {
    const KEY: &str = "overbook:lost-renewal";
    let integer =
        !(command_name.eq_ignore_ascii_case(b"SET") || command_name.eq_ignore_ascii_case(b"GETEX"));
    let verb = if integer { "EXISTS" } else { "GET" };
    format!(
        "*2\r\n${}\r\n{verb}\r\n${}\r\n{KEY}\r\n",
        verb.len(),
        KEY.len()
    )
    .into_bytes()
}

impl Follow {
    /// Reads one chunk (the bytes at the follower's next stream offsets) and decides what
    /// to do with it under `armed`.
    pub(crate) fn feed(&mut self, chunk: &[u8], armed: Option<&Armed>) -> Plan {
        let Follow {
            side,
            connection,
            shared,
            carry,
            carry_start,
        } = self;
        let connection = *connection;
        match side {
            Side::Raw => Plan::Pass,
            Side::PgUp(front) => {
                let start = front.position();
                let aim = armed
                    .filter(|_| !front.is_lost())
                    .and_then(|a| match &a.aim {
                        Aim::SlowWrites { hold, jitter, also } => {
                            Some((a, *hold, *jitter, also, false))
                        }
                        Aim::SlowInserts { hold } => Some((a, *hold, Duration::ZERO, &None, true)),
                        _ => None,
                    });
                let Some((armed, hold, jitter, also, inserts_only)) = aim else {
                    // Following only: the prepared statements' SQL is kept for later.
                    let _ = front.feed(chunk, |_| {});
                    return Plan::Pass;
                };
                // Hold from the first message to hold: everything after it waits too, as
                // bytes of one stream must.
                let mut hold_from: Option<(u64, Duration)> = None;
                let _ = front.feed(chunk, |event| {
                    let sql = match &event.message {
                        Frontend::Query { sql } => sql.as_ref(),
                        Frontend::Execute { sql: Some(sql), .. } => sql,
                        _ => return,
                    };
                    let Some((kind, table)) = slow_writes_kind(sql, also.as_ref()) else {
                        return;
                    };
                    if inserts_only && first_word(sql) != "INSERT" {
                        return;
                    }
                    let mut held = hold;
                    if !jitter.is_zero() {
                        let extra = rand::rng().random_range(0..=jitter.as_micros() as u64);
                        held += Duration::from_micros(extra);
                    }
                    armed.report(Firing {
                        server: armed.server,
                        action: "held",
                        command: first_word(sql),
                        kind,
                        target: table,
                        held_ms: Some(held.as_millis() as u64),
                        connection,
                    });
                    if hold_from.is_none() {
                        hold_from = Some((event.range.start.max(start), held));
                    }
                });
                let end = start + chunk.len() as u64;
                match hold_from {
                    None => Plan::Pass,
                    Some((at, held)) => {
                        let mut pieces = Vec::with_capacity(2);
                        if at > start {
                            pieces.push(bytes(start..at, Duration::ZERO, None));
                        }
                        pieces.push(bytes(at..end, held, None));
                        Plan::Act { pieces, cut: false }
                    }
                }
            }
            Side::PgDown(back) => {
                let start = back.position();
                let lost_ack = armed.filter(|a| a.aim == Aim::LostCommitAck);
                let Some(armed) = lost_ack.filter(|_| !back.is_lost()) else {
                    let _ = back.feed(chunk, |_| {});
                    return Plan::Pass;
                };
                let mut cut_at = None;
                let _ = back.feed(chunk, |event| {
                    if cut_at.is_some() {
                        return;
                    }
                    // Only `COMMIT` answers a COMMIT that committed (a failed transaction's
                    // COMMIT is answered `ROLLBACK`).
                    if let Backend::CommandComplete { tag } = event.message {
                        if StatementKind::of_tag(tag) == StatementKind::Commit {
                            cut_at = Some(event.range.start.max(start));
                            armed.report(Firing {
                                server: armed.server,
                                action: "swallowed",
                                command: "COMMIT".into(),
                                kind: "commit",
                                target: None,
                                held_ms: None,
                                connection,
                            });
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
            Side::RedisUp { commands, pairing } => {
                let start = commands.position();
                let renewals_lost = armed.filter(|a| a.aim == Aim::LostRenewal);
                let mut stand_ins: Vec<(Range<u64>, Vec<u8>, String, String)> = Vec::new();
                {
                    let mut pairing = lock(pairing);
                    let _ = commands.feed(chunk, |command| {
                        // Only scripts need the proxy-wide script cache.
                        let name = command.name.as_bytes();
                        let op = if name.starts_with(b"EVAL") || name == b"SCRIPT" {
                            lock(&shared.scripts).classify(&command)
                        } else {
                            resp::classify(&command)
                        };
                        if let (Some(_), LockOp::Renew { key }) = (renewals_lost, &op) {
                            stand_ins.push((
                                command.range.clone(),
                                stand_in(name),
                                command.name.to_string(),
                                printable(key),
                            ));
                            // The server sees the stand-in, which is no lease operation.
                            pairing.expect(&command, LockOp::Other);
                            return;
                        }
                        pairing.expect(&command, op);
                    });
                }
                if renewals_lost.is_none() && carry.is_empty() {
                    return Plan::Pass;
                }
                // The output is rebuilt: carried bytes, then the chunk, with each renewal
                // replaced by its stand-in.
                let end = start + chunk.len() as u64;
                let base = if carry.is_empty() {
                    start
                } else {
                    *carry_start
                };
                let mut input = std::mem::take(carry);
                input.extend_from_slice(chunk);
                let mut out = Vec::with_capacity(input.len());
                let mut at = base;
                for (range, insert, command, key) in stand_ins {
                    // A renewal begun in bytes already relayed (before the aim was set)
                    // cannot be taken back.
                    if range.start < at {
                        continue;
                    }
                    if let Some(armed) = renewals_lost {
                        armed.report(Firing {
                            server: armed.server,
                            action: "dropped",
                            command,
                            kind: "renew",
                            target: Some(key),
                            held_ms: None,
                            connection,
                        });
                    }
                    out.extend_from_slice(
                        &input[(at - base) as usize..(range.start - base) as usize],
                    );
                    out.extend_from_slice(&insert);
                    at = range.end;
                }
                // While renewals are lost, keep back a command still arriving: it may be one.
                let keep_from = match renewals_lost {
                    Some(_) => commands.partial_start().unwrap_or(end).clamp(at, end),
                    None => end,
                };
                out.extend_from_slice(&input[(at - base) as usize..(keep_from - base) as usize]);
                if keep_from < end {
                    *carry = input[(keep_from - base) as usize..].to_vec();
                    *carry_start = keep_from;
                }
                Plan::Act {
                    pieces: vec![Piece::Insert(out)],
                    cut: false,
                }
            }
            Side::RedisDown { replies, pairing } => {
                let start = replies.position();
                let grants_held = armed.and_then(|a| match a.aim {
                    Aim::SlowLockGrant { hold } => Some((a, hold)),
                    _ => None,
                });
                let mut hold_from: Option<(u64, Duration, oneshot::Receiver<()>)> = None;
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
                    // A grant of a key whose previous grant is still held: the lease
                    // expired under its first holder and went to this one. Both now
                    // believe they hold it: let the first go on, and this one too.
                    if let Some((until, first)) = held.remove(&key) {
                        if until > now {
                            let _ = first.send(());
                            return;
                        }
                    }
                    let Some((armed, hold)) = grants_held else {
                        return;
                    };
                    if hold_from.is_some() {
                        return;
                    }
                    let (tx, rx) = oneshot::channel();
                    held.insert(key.clone(), (now + hold, tx));
                    armed.report(Firing {
                        server: armed.server,
                        action: "held",
                        command: "lease grant".into(),
                        kind: "acquire",
                        target: Some(printable(&key)),
                        held_ms: Some(hold.as_millis() as u64),
                        connection,
                    });
                    hold_from = Some((reply.range.start.max(start), hold, rx));
                });
                drop(pairing);
                let end = start + chunk.len() as u64;
                match hold_from {
                    None => Plan::Pass,
                    Some((at, hold, early)) => {
                        let mut pieces = Vec::with_capacity(2);
                        if at > start {
                            pieces.push(bytes(start..at, Duration::ZERO, None));
                        }
                        pieces.push(bytes(at..end, hold, Some(early)));
                        Plan::Act { pieces, cut: false }
                    }
                }
            }
        }
    }
}

fn bytes(range: Range<u64>, hold: Duration, early: Option<oneshot::Receiver<()>>) -> Piece {
    Piece::Bytes { range, hold, early }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_writes_holds_writes_and_commits_not_reads_or_begin() {
        let held = |sql: &str| slow_writes_kind(sql, None).map(|(k, _)| k);
        assert_eq!(held("INSERT INTO bookings VALUES (1)"), Some("write"));
        assert_eq!(
            slow_writes_kind("update inventory set booking = 1", None),
            Some(("write", Some("inventory".to_string())))
        );
        assert_eq!(held("DELETE FROM bookings WHERE id = 1"), Some("write"));
        assert_eq!(held("COMMIT"), Some("commit"));
        assert_eq!(held("BEGIN"), None);
        assert_eq!(held("START TRANSACTION ISOLATION LEVEL SERIALIZABLE"), None);
        assert_eq!(held("SELECT 1 FROM bookings WHERE room = $1"), None);
        let also: SlowSql = "pg_advisory_xact_lock".parse().unwrap();
        assert_eq!(
            slow_writes_kind("SELECT pg_advisory_xact_lock($1)", Some(&also)).map(|(k, _)| k),
            Some("matched")
        );
        assert!("(".parse::<SlowSql>().is_err());
    }

    #[test]
    fn a_lost_renewal_is_answered_like_one_that_did_not_renew() {
        assert_eq!(
            stand_in(b"EVALSHA"),
            b"*2\r\n$6\r\nEXISTS\r\n$21\r\noverbook:lost-renewal\r\n".to_vec()
        );
        assert!(stand_in(b"set").starts_with(b"*2\r\n$3\r\nGET\r\n"));
        assert_eq!(first_word("  insert into x"), "INSERT");
        assert_eq!(first_word("COMMIT"), "COMMIT");
    }
}
