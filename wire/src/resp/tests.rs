//! The RESP followers, classifier and pairing on captured traffic and crafted input.

use super::*;

pub(super) const RS_UP: &[u8] = include_bytes!("../../captures/redis-rs.up.bin");
pub(super) const RS_DOWN: &[u8] = include_bytes!("../../captures/redis-rs.down.bin");
pub(super) const RESP3_UP: &[u8] = include_bytes!("../../captures/redis-resp3.up.bin");
pub(super) const RESP3_DOWN: &[u8] = include_bytes!("../../captures/redis-resp3.down.bin");
pub(super) const TX_UP: &[u8] = include_bytes!("../../captures/redis-resp2-tx.up.bin");
pub(super) const TX_DOWN: &[u8] = include_bytes!("../../captures/redis-resp2-tx.down.bin");
pub(super) const INLINE_UP: &[u8] = include_bytes!("../../captures/redis-inline.up.bin");
pub(super) const INLINE_DOWN: &[u8] = include_bytes!("../../captures/redis-inline.down.bin");

pub(super) const UPS: &[&[u8]] = &[RS_UP, RESP3_UP, TX_UP, INLINE_UP];
pub(super) const DOWNS: &[&[u8]] = &[RS_DOWN, RESP3_DOWN, TX_DOWN, INLINE_DOWN];

/// What a follower reported: each event's Debug form, then the error if one came.
pub(super) type Trace = (Vec<String>, Option<WireError>);

pub(super) fn commands<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> Trace {
    let mut follower = CommandFollower::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = follower.feed(chunk, |c| events.push(format!("{c:?}"))) {
            assert!(follower.is_lost());
            assert_eq!(follower.feed(b"x", |_| {}), Err(WireError::Lost));
            return (events, Some(e));
        }
    }
    (events, None)
}

pub(super) fn replies<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> Trace {
    let mut follower = ReplyFollower::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = follower.feed(chunk, |r| events.push(format!("{r:?}"))) {
            assert!(follower.is_lost());
            assert_eq!(follower.feed(b"x", |_| {}), Err(WireError::Lost));
            return (events, Some(e));
        }
    }
    (events, None)
}

/// `stream` cut at each of `cuts` (sorted, deduplicated, clamped).
pub(super) fn cut<'s>(stream: &'s [u8], cuts: &[usize]) -> Vec<&'s [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::new();
    let mut from = 0;
    for p in points {
        pieces.push(&stream[from..p]);
        from = p;
    }
    pieces.push(&stream[from..]);
    pieces
}

/// Classifies and expects every command of `up`, then answers every reply of `down`.
pub(super) fn answers(up: &[u8], down: &[u8]) -> Vec<Answer> {
    let mut scripts = Scripts::new();
    let mut pairing = Pairing::new();
    CommandFollower::new()
        .feed(up, |c| {
            let op = scripts.classify(&c);
            pairing.expect(&c, op);
        })
        .unwrap();
    let mut out = Vec::new();
    ReplyFollower::new()
        .feed(down, |r| out.push(pairing.reply(&r)))
        .unwrap();
    assert_eq!(pairing.outstanding(), 0);
    out
}

pub(super) fn key(k: &str) -> Vec<u8> {
    k.as_bytes().to_vec()
}

pub(super) fn one(op: LockOp, effect: Effect) -> Answer {
    Answer::One(Outcome { op, effect })
}

/// The lease answers among `answers` (leaving out those of commands that are no lease
/// operation).
pub(super) fn lease_answers(answers: Vec<Answer>) -> Vec<Answer> {
    answers
        .into_iter()
        .filter(|a| !matches!(a, Answer::One(o) if o.op == LockOp::Other))
        .collect()
}

#[test]
pub(super) fn redis_rs_lease_traffic_is_paired() {
    use Effect::*;
    let room1 = || key("lock:room:1");
    let room2 = || key("lock:room:2");
    let got = lease_answers(answers(RS_UP, RS_DOWN));
    assert_eq!(
        got,
        [
            one(LockOp::Acquire { key: room1() }, Applied),
            one(LockOp::Acquire { key: room1() }, NotApplied),
            // The renew script's first EVALSHA came before anyone loaded it (NOSCRIPT,
            // unknown to us too); after SCRIPT LOAD it is recognised.
            one(LockOp::Renew { key: room1() }, Applied),
            one(LockOp::Renew { key: room1() }, Applied),
            one(LockOp::Renew { key: room1() }, Applied),
            Answer::Queued(LockOp::Acquire { key: room2() }),
            Answer::Queued(LockOp::Renew { key: room1() }),
            Answer::Exec(vec![
                Outcome {
                    op: LockOp::Acquire { key: room2() },
                    effect: Applied
                },
                Outcome {
                    op: LockOp::Renew { key: room1() },
                    effect: Applied
                },
            ]),
            one(LockOp::Release { key: room1() }, Applied),
            one(LockOp::Release { key: room2() }, Applied),
        ]
    );
    let grants: Vec<bool> = answers(RS_UP, RS_DOWN).iter().map(Answer::grants).collect();
    assert_eq!(
        grants.iter().filter(|&&g| g).count(),
        2,
        "the SET NX and the EXEC"
    );
}

#[test]
pub(super) fn resp3_pushes_and_attributes_are_followed() {
    let mut follower = ReplyFollower::new();
    let mut seen = Vec::new();
    follower
        .feed(RESP3_DOWN, |r| {
            seen.push((r.range, r.value.clone(), r.push))
        })
        .unwrap();
    let pushes: Vec<_> = seen.iter().filter(|s| s.2).map(|s| s.0.clone()).collect();
    assert_eq!(pushes.len(), 3, "two invalidations and DEBUG PROTOCOL push");
    // The invalidation of foo comes between the replies to SET foo and HSET.
    assert_eq!(seen[3].1, Value::Ok);
    assert!(seen[4].2);
    assert_eq!(seen[5].1, Value::Integer(1));
    // The attribute is part of the reply after it.
    let attributed = seen
        .iter()
        .find(|s| s.1 == Value::Bulk { len: 39 })
        .unwrap();
    assert_eq!(&RESP3_DOWN[attributed.0.start as usize..][..2], b"|1");
    let kinds: Vec<u8> = seen
        .iter()
        .filter_map(|s| match s.1 {
            Value::Other(k) => Some(k),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, b"%>%~,(~%>=##>");
    assert_eq!(seen.last().unwrap().0.end, RESP3_DOWN.len() as u64);
    let got = lease_answers(answers(RESP3_UP, RESP3_DOWN));
    let pushes = got.iter().filter(|a| **a == Answer::Push).count();
    assert_eq!(pushes, 3);
    let leases: Vec<Answer> = got.into_iter().filter(|a| *a != Answer::Push).collect();
    assert_eq!(
        leases,
        [
            one(LockOp::Acquire { key: key("k") }, Effect::Applied),
            one(LockOp::Renew { key: key("k") }, Effect::Applied),
            one(LockOp::Release { key: key("h") }, Effect::Applied),
        ]
    );
}

#[test]
pub(super) fn transactions_inline_commands_and_unanswered_commands_are_paired() {
    use Effect::*;
    let got = lease_answers(answers(TX_UP, TX_DOWN));
    assert_eq!(
        got,
        [
            Answer::Queued(LockOp::Acquire { key: key("lock:w") }),
            // WATCHed key changed: EXEC answered *-1, nothing ran.
            Answer::Exec(vec![Outcome {
                op: LockOp::Acquire { key: key("lock:w") },
                effect: NotApplied
            }]),
            Answer::Queued(LockOp::Acquire { key: key("lock:x") }),
            // SETX was refused while queuing: EXECABORT.
            Answer::Exec(vec![Outcome {
                op: LockOp::Acquire { key: key("lock:x") },
                effect: NotApplied
            }]),
            Answer::Queued(LockOp::Acquire { key: key("lock:y") }),
            Answer::Queued(LockOp::Renew { key: key("lock:y") }),
            Answer::Exec(vec![
                Outcome {
                    op: LockOp::Acquire { key: key("lock:y") },
                    effect: Applied
                },
                Outcome {
                    op: LockOp::Renew { key: key("lock:y") },
                    effect: Applied
                },
            ]),
            // SET NX GET answers nil when it set.
            one(LockOp::Acquire { key: key("lock:z") }, Applied),
            one(LockOp::Acquire { key: key("lock:z") }, NotApplied),
            one(LockOp::Release { key: key("lock:z") }, Applied),
            one(LockOp::Release { key: key("lock:y") }, Applied),
            // `*0` and an empty line get no reply and make no command; the quoted
            // inline SET is the last command and gets the last reply.
            one(LockOp::Acquire { key: key("lock:q") }, Applied),
        ]
    );
}

#[test]
pub(super) fn inline_commands_are_split_like_redis() {
    let (events, error) = commands([INLINE_UP]);
    assert_eq!(error, None);
    assert_eq!(
        events[0],
        "Command { name: \"SET\", args: [\"lock:inline\", \"my id\", \"NX\", \"PX\", \"3000\"], range: 0..36 }"
    );
    let split = |line: &str| {
        let mut spans = Vec::new();
        let mut scratch = Vec::new();
        let result = split_inline(line.as_bytes(), &mut spans, &mut scratch);
        result.map(|quoted| {
            let arena = if quoted {
                &scratch[..]
            } else {
                line.as_bytes()
            };
            spans
                .iter()
                .map(|s| String::from_utf8_lossy(&arena[s.clone()]).into_owned())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(split("  set  a\tb  ").unwrap(), ["set", "a", "b"]);
    assert_eq!(split(r#"set "a b" 'c d'"#).unwrap(), ["set", "a b", "c d"]);
    assert_eq!(
        split(r#"set "\x41\n" 'it\'s'"#).unwrap(),
        ["set", "A\n", "it's"]
    );
    assert_eq!(split(r#"set ab"c d" e"#).unwrap(), ["set", "abc d", "e"]);
    assert_eq!(split(r#"set "" x"#).unwrap(), ["set", "", "x"]);
    assert!(split(r#"set "a"b"#).is_err());
    assert!(split(r#"set "abc"#).is_err());
    assert!(split("set 'abc").is_err());
}

#[test]
pub(super) fn every_two_way_cut_of_every_capture_gives_the_same_events() {
    for &stream in UPS {
        let whole = commands([stream]);
        assert_eq!(whole.1, None);
        for k in 0..=stream.len() {
            assert_eq!(commands(cut(stream, &[k])), whole, "cut at {k}");
        }
        assert_eq!(commands(stream.chunks(1)), whole, "byte by byte");
    }
    for &stream in DOWNS {
        let whole = replies([stream]);
        assert_eq!(whole.1, None);
        for k in 0..=stream.len() {
            assert_eq!(replies(cut(stream, &[k])), whole, "cut at {k}");
        }
        assert_eq!(replies(stream.chunks(1)), whole, "byte by byte");
    }
}

/// Found by the reply proptest (a test bug then, pinned now): an empty attribute
/// before an array leaves the array's elements recorded and in the reply's range.
#[test]
pub(super) fn an_empty_attribute_before_an_array_belongs_to_it() {
    let mut seen = Vec::new();
    ReplyFollower::new()
        .feed(b"|0\r\n*1\r\n+OK\r\n", |r| {
            seen.push((r.range, r.value.clone(), r.elements.to_vec()))
        })
        .unwrap();
    assert_eq!(seen, [(0..13, Value::Array { len: 1 }, vec![Value::Ok])]);
}

#[test]
pub(super) fn bulk_payloads_are_counted_past_not_kept() {
    let mut stream = b"$100000\r\n".to_vec();
    stream.extend(std::iter::repeat_n(b'x', 100_000));
    stream.extend_from_slice(b"\r\n+OK\r\n");
    let mut follower = ReplyFollower::new();
    let mut seen = Vec::new();
    for chunk in stream.chunks(1000) {
        follower
            .feed(chunk, |r| seen.push((r.range, r.value.clone())))
            .unwrap();
        assert!(follower.line.capacity() < 100 && follower.text.capacity() < 100);
    }
    assert_eq!(
        seen,
        [
            (0..100_011, Value::Bulk { len: 100_000 }),
            (100_011..100_016, Value::Ok)
        ]
    );
}

#[test]
pub(super) fn a_command_whole_in_a_chunk_is_not_copied_and_a_cut_one_is() {
    let mut follower = CommandFollower::new();
    follower.feed(&RS_UP[..120], |_| {}).unwrap();
    assert_eq!(follower.partial_start(), Some(110));
    assert_eq!(follower.buf.len(), 10);
    follower.feed(&RS_UP[120..], |_| {}).unwrap();
    assert_eq!(follower.partial_start(), None);
    assert!(follower.buf.is_empty(), "the last command came whole");
}

#[test]
pub(super) fn limits_end_the_following_whatever_the_chunking() {
    let long = vec![b'a'; INLINE_LIMIT + 10];
    let error = Some(WireError::TooLong {
        at: 0,
        limit: INLINE_LIMIT,
    });
    assert_eq!(commands([&long[..]]).1, error);
    assert_eq!(commands(long.chunks(1000)).1, error);
    let mut line = long.clone();
    line.extend_from_slice(b"\r\n");
    assert_eq!(commands([&line[..]]).1, error);
    assert_eq!(commands(line.chunks(1000)).1, error);
}

#[test]
pub(super) fn garbage_is_refused_with_a_typed_error() {
    assert_eq!(
        commands([&b"*2\r\n:1\r\n"[..]]).1,
        Some(WireError::Malformed {
            at: 4,
            reason: "expected '$' in a command"
        })
    );
    assert_eq!(
        commands([&b"*1\r\n$-5\r\n"[..]]).1,
        Some(WireError::Malformed {
            at: 8,
            reason: "negative bulk length"
        })
    );
    assert_eq!(
        replies([&b"+OK\r\n?x\r\n"[..]]).1,
        Some(WireError::Malformed {
            at: 5,
            reason: "unknown reply type"
        })
    );
    assert_eq!(
        replies([&b"*1\r\n$3\r\nabcd\r\n"[..]]).1,
        Some(WireError::Malformed {
            at: 11,
            reason: "expected \\r after a payload"
        })
    );
    assert_eq!(
        replies([&b"$?\r\n;3\r\nabc\r\n;0\r\n"[..]]).1,
        Some(WireError::Malformed {
            at: 0,
            reason: "bad integer"
        }),
        "RESP3 streamed strings are not followed"
    );
}

/// The lease operation of one inline command line.
pub(super) fn op_of(line: &str) -> LockOp {
    let mut op = None;
    CommandFollower::new()
        .feed(format!("{line}\r\n").as_bytes(), |c| {
            op = Some(classify(&c))
        })
        .unwrap();
    op.unwrap()
}

#[test]
pub(super) fn lease_operations_are_classified() {
    let acquire = |k: &str| LockOp::Acquire { key: key(k) };
    let renew = |k: &str| LockOp::Renew { key: key(k) };
    let release = |k: &str| LockOp::Release { key: key(k) };
    let cases = [
        ("SET k v NX PX 500", acquire("k")),
        ("SET k v PX 500 NX", acquire("k")),
        ("set k v nx ex 5", acquire("k")),
        ("SET k NX", LockOp::Other), // NX is the value: a plain SET
        ("SET k v NX GET", acquire("k")),
        ("SET k v NX KEEPTTL", acquire("k")),
        ("SET k v NX PX", LockOp::Other), // PX without its argument: refused
        ("SET k v NX XX", LockOp::Other), // refused by Redis
        ("SET k v NX BOGUS", LockOp::Other),
        ("SET k v PX 500", LockOp::Other),
        ("SET k v", LockOp::Other),
        ("SETNX k v", acquire("k")),
        ("set k v xx px 10", renew("k")),
        ("SET k v XX", renew("k")),
        ("SET k v PXAT 123 XX", renew("k")),
        ("PEXPIRE k 500", renew("k")),
        ("expire k 5", renew("k")),
        ("PEXPIREAT k 123", renew("k")),
        ("EXPIREAT k 123", renew("k")),
        ("PEXPIRE k", LockOp::Other),
        ("GETEX k PX 100", renew("k")),
        ("GETEX k", LockOp::Other),
        ("DEL k", release("k")),
        ("del a b c", release("a")),
        ("UNLINK k", release("k")),
        ("GET k", LockOp::Other),
        ("PING", LockOp::Other),
        (
            "EVAL \"return redis.call('pexpire', KEYS[1], ARGV[1])\" 1 k 500",
            renew("k"),
        ),
        (
            "EVAL \"if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) end\" 1 k v",
            release("k"),
        ),
        (
            "EVAL \"redis.call('pexpire',KEYS[1],1); return redis.call('del',KEYS[1])\" 1 k",
            release("k"),
        ),
        (
            "EVAL \"return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])\" 1 k v 500",
            acquire("k"),
        ),
        (
            "EVAL \"return redis.call('set', KEYS[1], ARGV[1], 'XX', 'PX', ARGV[2])\" 1 k v 500",
            renew("k"),
        ),
        ("EVAL \"return redis.call('model')\" 1 k", LockOp::Other),
        ("EVAL \"return redis.call('del', KEYS[1])\" 0", LockOp::Other),
        ("EVALSHA ffffffffffffffffffffffffffffffffffffffff 1 k", LockOp::Other),
    ];
    for (line, expected) in cases {
        assert_eq!(op_of(line), expected, "{line}");
    }
}

#[test]
pub(super) fn evalsha_is_resolved_from_scripts_seen_on_any_connection() {
    let renew = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
    let mut scripts = Scripts::new();
    let sha = script_sha1(renew.as_bytes());
    let hex: String = sha.iter().map(|b| format!("{b:02X}")).collect();
    let mut ops = Vec::new();
    let mut classify_all = |scripts: &mut Scripts, text: &str| {
        CommandFollower::new()
            .feed(text.as_bytes(), |c| ops.push(scripts.classify(&c)))
            .unwrap();
    };
    let evalsha = format!("EVALSHA {hex} 1 lease v 500\r\n");
    classify_all(&mut scripts, &evalsha);
    // Another connection loads it; the cache is shared.
    classify_all(&mut scripts, &format!("SCRIPT LOAD \"{renew}\"\r\n"));
    classify_all(&mut scripts, &evalsha);
    assert_eq!(
        ops,
        [
            LockOp::Other,
            LockOp::Other,
            LockOp::Renew { key: key("lease") }
        ]
    );
    assert_eq!(scripts.len(), 1);
    // EVAL teaches it too, and the SHA is the one Redis computes (captured above).
    let mut scripts = Scripts::new();
    let capture_script = "\nif redis.call('get', KEYS[1]) == ARGV[1] then\n  return redis.call('pexpire', KEYS[1], ARGV[2])\nend\nreturn 0";
    let sha = scripts.learn(capture_script.as_bytes());
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "a6bef22718d857fa7677fbb848d26d88079f824c");
}

/// The answers to `replies` after the inline `commands` (one per line).
pub(super) fn pair(commands: &[&str], replies: &[u8]) -> Vec<Answer> {
    let mut pairing = Pairing::new();
    for line in commands {
        CommandFollower::new()
            .feed(format!("{line}\r\n").as_bytes(), |c| {
                let op = classify(&c);
                pairing.expect(&c, op)
            })
            .unwrap();
    }
    let mut out = Vec::new();
    ReplyFollower::new()
        .feed(replies, |r| out.push(pairing.reply(&r)))
        .unwrap();
    out
}

#[test]
pub(super) fn client_reply_off_and_skip_silence_commands() {
    let got = pair(
        &[
            "CLIENT REPLY OFF",
            "SET a 1",
            "CLIENT REPLY ON",
            "CLIENT REPLY SKIP",
            "GET a",
            "SET k v NX PX 10",
        ],
        b"+OK\r\n+OK\r\n",
    );
    assert_eq!(
        got,
        [
            one(LockOp::Other, Effect::Unknown),
            one(LockOp::Acquire { key: key("k") }, Effect::Applied),
        ]
    );
}

#[test]
pub(super) fn subscribing_on_resp2_gives_up_and_on_resp3_does_not() {
    let got = pair(
        &["SUBSCRIBE ch", "SET k v NX"],
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n+OK\r\n",
    );
    assert_eq!(got, [Answer::Unpaired, Answer::Unpaired]);
    let got = pair(
        &["HELLO 3", "SUBSCRIBE ch", "SET k v NX"],
        b"%1\r\n$5\r\nproto\r\n:3\r\n>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n+OK\r\n",
    );
    assert_eq!(
        got,
        [
            one(LockOp::Other, Effect::Unknown),
            Answer::Push,
            one(LockOp::Acquire { key: key("k") }, Effect::Applied),
        ]
    );
    assert_eq!(pair(&[], b"+OK\r\n"), [Answer::Unpaired]);
}

#[test]
pub(super) fn discard_forgets_the_queued_commands() {
    let got = pair(
        &["MULTI", "SET a v NX", "DISCARD", "MULTI", "DEL a", "EXEC"],
        b"+OK\r\n+QUEUED\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n:1\r\n",
    );
    assert_eq!(
        got.last().unwrap(),
        &Answer::Exec(vec![Outcome {
            op: LockOp::Release { key: key("a") },
            effect: Effect::Applied
        }])
    );
    // A script error after a write leaves its effect unknown; NOSCRIPT means not run.
    assert_eq!(
        effect(Form::Script, &Value::Error("ERR user_script:1".into())),
        Effect::Unknown
    );
    assert_eq!(
        effect(Form::Script, &Value::Error("NOSCRIPT No matching".into())),
        Effect::NotApplied
    );
}

#[test]
pub(super) fn names_are_uppercased_and_long_ones_kept_whole() {
    assert_eq!(Name::new(b"pexpire").as_bytes(), b"PEXPIRE");
    assert!(Name::new(b"Set").is("SET"));
    let long = b"a.very.long.module.command.name";
    assert_eq!(Name::new(long).as_bytes(), long.to_ascii_uppercase());
    assert_eq!(
        format!(
            "{:?}",
            LockOp::Acquire {
                key: b"lock:\x01".to_vec()
            }
        ),
        "Acquire { key: \"lock:\\x01\" }"
    );
}
