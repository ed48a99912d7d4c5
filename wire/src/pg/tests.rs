//! The Postgres followers and classifier on captured traffic and crafted input.

use super::*;

pub(super) const PSQL_SSL_UP: &[u8] = include_bytes!("../../captures/pg-psql-ssl.up.bin");
pub(super) const PSQL_SSL_DOWN: &[u8] = include_bytes!("../../captures/pg-psql-ssl.down.bin");
pub(super) const PSQL_MULTI_UP: &[u8] = include_bytes!("../../captures/pg-psql-multi.up.bin");
pub(super) const PSQL_MULTI_DOWN: &[u8] = include_bytes!("../../captures/pg-psql-multi.down.bin");
pub(super) const FAILED_COMMIT_UP: &[u8] =
    include_bytes!("../../captures/pg-psql-failed-commit.up.bin");
pub(super) const FAILED_COMMIT_DOWN: &[u8] =
    include_bytes!("../../captures/pg-psql-failed-commit.down.bin");
pub(super) const TOKIO_UP: &[u8] = include_bytes!("../../captures/pg-tokio-postgres.up.bin");
pub(super) const TOKIO_DOWN: &[u8] = include_bytes!("../../captures/pg-tokio-postgres.down.bin");

pub(super) const FRONTENDS: &[&[u8]] = &[PSQL_SSL_UP, PSQL_MULTI_UP, FAILED_COMMIT_UP, TOKIO_UP];
pub(super) const BACKENDS: &[&[u8]] = &[
    PSQL_SSL_DOWN,
    PSQL_MULTI_DOWN,
    FAILED_COMMIT_DOWN,
    TOKIO_DOWN,
];

/// What a follower reported: each event's Debug form, then the error if one came.
pub(super) type Trace = (Vec<String>, Option<WireError>);

pub(super) fn frontend<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> Trace {
    let mut follower = FrontendFollower::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = follower.feed(chunk, |e| events.push(format!("{e:?}"))) {
            assert!(follower.is_lost());
            assert_eq!(follower.feed(b"x", |_| {}), Err(WireError::Lost));
            return (events, Some(e));
        }
    }
    (events, None)
}

pub(super) fn backend<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> Trace {
    let mut follower = BackendFollower::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = follower.feed(chunk, |e| events.push(format!("{e:?}"))) {
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

pub(super) fn frontend_messages(stream: &[u8]) -> Vec<(Range<u64>, String)> {
    let mut follower = FrontendFollower::new();
    let mut out = Vec::new();
    follower
        .feed(stream, |e| out.push((e.range, format!("{:?}", e.message))))
        .unwrap();
    out
}

#[test]
pub(super) fn psql_with_ssl_request_is_followed_to_the_end() {
    let (events, error) = frontend([PSQL_SSL_UP]);
    assert_eq!(error, None);
    assert_eq!(events.len(), 11, "{events:#?}");
    let messages = frontend_messages(PSQL_SSL_UP);
    assert_eq!(messages[0], (0..8, "SslRequest".to_string()));
    assert_eq!(messages[1].1, "Startup");
    assert_eq!(messages.last().unwrap().1, "Terminate");
    let kinds: Vec<StatementKind> = statements_of_queries(PSQL_SSL_UP)
        .iter()
        .map(|sql| classify(sql).kind)
        .collect();
    use StatementKind::*;
    assert_eq!(
        kinds,
        [Other, Begin, Write, Read, Commit, Write, Write, Read],
        "CREATE, BEGIN, INSERT, SELECT FOR UPDATE, COMMIT, INSERT, WITH DELETE, SELECT"
    );
    // The ranges tile the stream.
    assert_eq!(messages.last().unwrap().0.end, PSQL_SSL_UP.len() as u64);
    for pair in messages.windows(2) {
        assert_eq!(pair[0].0.end, pair[1].0.start);
    }
}

pub(super) fn statements_of_queries(stream: &[u8]) -> Vec<String> {
    let mut follower = FrontendFollower::new();
    let mut sql = Vec::new();
    follower
        .feed(stream, |e| {
            if let Frontend::Query { sql: s } = e.message {
                sql.push(s.into_owned());
            }
        })
        .unwrap();
    sql
}

#[test]
pub(super) fn the_server_refuses_ssl_with_one_unframed_byte() {
    let mut follower = BackendFollower::new();
    let mut messages = Vec::new();
    follower
        .feed(PSQL_SSL_DOWN, |e| {
            messages.push((e.range, format!("{:?}", e.message)))
        })
        .unwrap();
    assert_eq!(messages[0], (0..1, "EncryptionAnswer(78)".to_string()));
    assert!(messages
        .iter()
        .any(|(_, m)| m == "ErrorResponse { code: Some(\"23505\") }"));
    let tags: Vec<&str> = messages
        .iter()
        .filter_map(|(_, m)| m.strip_prefix("CommandComplete { tag: \""))
        .map(|m| m.trim_end_matches("\" }"))
        .collect();
    assert_eq!(
        tags,
        [
            "CREATE TABLE",
            "BEGIN",
            "INSERT 0 1",
            "SELECT 1",
            "COMMIT",
            "SELECT 1",
            "SELECT 1"
        ]
    );
}

#[test]
pub(super) fn one_query_with_three_statements_is_a_write_answered_three_times() {
    let sql = statements_of_queries(PSQL_MULTI_UP);
    assert_eq!(
        sql,
        ["BEGIN; UPDATE bookings SET room = 102 WHERE id = 1; commit;"]
    );
    assert_eq!(
        classify(&sql[0]),
        Statement {
            kind: StatementKind::Write,
            table: Some("bookings".into())
        }
    );
    let (events, error) = backend([PSQL_MULTI_DOWN]);
    assert_eq!(error, None);
    let tail: Vec<&str> = events
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert!(tail[0].contains("tag: \"BEGIN\""), "{tail:?}");
    assert!(tail[1].contains("tag: \"UPDATE 1\""), "{tail:?}");
    assert!(tail[2].contains("tag: \"COMMIT\""), "{tail:?}");
    assert!(tail[3].contains("status: Idle"), "{tail:?}");
}

#[test]
pub(super) fn a_commit_of_a_failed_transaction_is_answered_rollback() {
    let sql = statements_of_queries(FAILED_COMMIT_UP);
    assert_eq!(classify(&sql[2]).kind, StatementKind::Commit);
    let mut follower = BackendFollower::new();
    let mut messages = Vec::new();
    follower
        .feed(FAILED_COMMIT_DOWN, |e| {
            messages.push(format!("{:?}", e.message))
        })
        .unwrap();
    let n = messages.len();
    assert_eq!(
        messages[n - 4..],
        [
            "ErrorResponse { code: Some(\"23505\") }",
            "ReadyForQuery { status: Failed }",
            "CommandComplete { tag: \"ROLLBACK\" }",
            "ReadyForQuery { status: Idle }",
        ]
    );
    assert_eq!(StatementKind::of_tag("ROLLBACK"), StatementKind::Rollback);
}

#[test]
pub(super) fn tokio_postgres_executes_resolve_to_their_sql() {
    let mut follower = FrontendFollower::new();
    let mut executed = Vec::new();
    let mut others = Vec::new();
    follower
        .feed(TOKIO_UP, |e| match e.message {
            Frontend::Execute { portal, sql } => {
                executed.push((portal.into_owned(), sql.map(str::to_owned)))
            }
            Frontend::Other(tag) => others.push(tag),
            _ => {}
        })
        .unwrap();
    let insert = "INSERT INTO bookings (room, night) VALUES ($1, DATE '2024-02-01' + $2::int)";
    let lock = "SELECT id FROM bookings WHERE room = $1 FOR UPDATE";
    assert_eq!(
        executed,
        [
            (String::new(), Some(insert.to_string())),
            (String::new(), Some(lock.to_string())),
            (String::new(), Some(insert.to_string())),
            (
                "p0".to_string(),
                Some("SELECT id FROM bookings".to_string())
            ),
        ]
    );
    assert!(classify(insert).is_write());
    assert!(!classify(lock).is_write());
    // SCRAM's two password messages and the Describes went by unread.
    assert_eq!(others.iter().filter(|&&t| t == b'p').count(), 2);
    assert_eq!(others.iter().filter(|&&t| t == b'D').count(), 3);
}

#[test]
pub(super) fn tokio_postgres_answers_are_followed() {
    let mut follower = BackendFollower::new();
    let mut tags = Vec::new();
    let mut codes = Vec::new();
    follower
        .feed(TOKIO_DOWN, |e| match e.message {
            Backend::CommandComplete { tag } => tags.push(tag.to_string()),
            Backend::ErrorResponse { code } => codes.push(code.map(str::to_string)),
            _ => {}
        })
        .unwrap();
    assert_eq!(
        tags,
        [
            "START TRANSACTION",
            "INSERT 0 1",
            "SELECT 1",
            "COMMIT",
            "START TRANSACTION",
            "ROLLBACK",
            "BEGIN",
            "DELETE 1",
            "COMMIT"
        ]
    );
    assert_eq!(codes, [Some("23505".to_string())]);
    assert_eq!(
        StatementKind::of_tag("START TRANSACTION"),
        StatementKind::Begin
    );
}

#[test]
pub(super) fn every_two_way_cut_of_every_capture_gives_the_same_events() {
    for &stream in FRONTENDS {
        let whole = frontend([stream]);
        assert_eq!(whole.1, None);
        for k in 0..=stream.len() {
            assert_eq!(frontend(cut(stream, &[k])), whole, "cut at {k}");
        }
        assert_eq!(frontend(stream.chunks(1)), whole, "byte by byte");
    }
    for &stream in BACKENDS {
        let whole = backend([stream]);
        assert_eq!(whole.1, None);
        for k in 0..=stream.len() {
            assert_eq!(backend(cut(stream, &[k])), whole, "cut at {k}");
        }
        assert_eq!(backend(stream.chunks(1)), whole, "byte by byte");
    }
}

#[test]
pub(super) fn a_message_in_one_chunk_is_not_buffered_and_a_cut_one_is() {
    let mut follower = FrontendFollower::new();
    follower.feed(&PSQL_SSL_UP[..100], |_| {}).unwrap();
    // The second Query began but did not end: its start is pending.
    let pending = follower.partial_start().unwrap();
    assert!(pending < 100);
    assert_eq!(follower.position(), 100);
    follower.feed(&PSQL_SSL_UP[100..], |_| {}).unwrap();
    assert_eq!(follower.partial_start(), None);
    assert_eq!(follower.framer.buf.len(), 0, "the last message came whole");
}

#[test]
pub(super) fn a_bind_cut_in_pieces_keeps_only_its_names() {
    let mut stream = startup();
    let mut bind = b"portal\0stmt\0".to_vec();
    bind.extend_from_slice(&[0u8; 5000]);
    stream.extend(typed(b'B', &bind));
    let mut follower = FrontendFollower::new();
    let mut seen = Vec::new();
    for chunk in stream.chunks(7) {
        follower
            .feed(chunk, |e| seen.push(format!("{:?}", e.message)))
            .unwrap();
        assert!(follower.framer.buf.len() <= "portal\0stmt\0".len());
    }
    assert_eq!(seen[1], "Bind { portal: \"portal\", statement: \"stmt\" }");
}

#[test]
pub(super) fn the_unnamed_statement_is_replaced_and_closed_statements_forgotten() {
    let mut stream = startup();
    stream.extend(typed(b'P', b"\0INSERT INTO a VALUES (1)\0\0\0"));
    stream.extend(typed(b'P', b"\0SELECT 1\0\0\0"));
    stream.extend(typed(b'B', b"\0\0\0\0\0\0\0\0"));
    stream.extend(typed(b'E', b"\0\0\0\0\0"));
    stream.extend(typed(b'P', b"named\0DELETE FROM b\0\0\0"));
    stream.extend(typed(b'C', b"Snamed\0"));
    stream.extend(typed(b'B', b"\0named\0\0\0\0\0\0\0"));
    stream.extend(typed(b'E', b"\0\0\0\0\0"));
    let mut executed = Vec::new();
    FrontendFollower::new()
        .feed(&stream, |e| {
            if let Frontend::Execute { sql, .. } = e.message {
                executed.push(sql.map(str::to_string));
            }
        })
        .unwrap();
    assert_eq!(executed, [Some("SELECT 1".to_string()), None]);
}

pub(super) fn startup() -> Vec<u8> {
    let params = b"user\0u\0\0";
    let mut out = ((8 + params.len()) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&196_608i32.to_be_bytes());
    out.extend_from_slice(params);
    out
}

pub(super) fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
pub(super) fn encryption_ends_the_following() {
    let mut ssl = 8i32.to_be_bytes().to_vec();
    ssl.extend_from_slice(&SSL_REQUEST.to_be_bytes());
    let mut client = ssl.clone();
    client.extend_from_slice(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]);
    let (events, error) = frontend([&client[..]]);
    assert_eq!(events.len(), 1);
    assert_eq!(error, Some(WireError::Encrypted { at: 8 }));
    // Direct TLS (sslnegotiation=direct) never sends the request.
    assert_eq!(
        frontend([&client[8..]]).1,
        Some(WireError::Encrypted { at: 0 })
    );
    let (events, error) = backend([&b"S\x16\x03\x03"[..]]);
    assert_eq!(
        events,
        ["BackendEvent { range: 0..1, message: EncryptionAnswer(83) }"]
    );
    assert_eq!(error, Some(WireError::Encrypted { at: 1 }));
    // Refused: the client starts in plain text, the server asks for a password.
    let mut down = b"N".to_vec();
    down.extend(typed(b'R', &3i32.to_be_bytes()));
    assert_eq!(backend([&down[..]]).0.len(), 2);
}

#[test]
pub(super) fn gssenc_and_cancel_requests_are_recognised() {
    let mut gss = 8i32.to_be_bytes().to_vec();
    gss.extend_from_slice(&GSSENC_REQUEST.to_be_bytes());
    let mut cancel = 16i32.to_be_bytes().to_vec();
    cancel.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
    cancel.extend_from_slice(&[0, 0, 1, 2, 3, 4, 5, 6]);
    let mut follower = FrontendFollower::new();
    let mut seen = Vec::new();
    follower
        .feed(&gss, |e| seen.push(format!("{:?}", e.message)))
        .unwrap();
    // Refused ('N'): the client goes on with a plain StartupMessage.
    follower
        .feed(&startup(), |e| seen.push(format!("{:?}", e.message)))
        .unwrap();
    assert_eq!(seen, ["GssEncRequest", "Startup"]);
    let (events, error) = frontend([&cancel[..]]);
    assert_eq!(error, None);
    assert!(events[0].contains("CancelRequest"));
}

#[test]
pub(super) fn garbage_is_refused_with_a_typed_error() {
    assert_eq!(
        frontend([&b"GET / HTTP/1.1\r\n\r\n"[..]]).1,
        Some(WireError::Malformed {
            at: 0,
            reason: "startup packet length out of range"
        })
    );
    let mut stream = startup();
    stream.extend_from_slice(b"Z\0\0\0\x05I");
    let at = startup().len() as u64;
    assert_eq!(
        frontend([&stream[..]]).1,
        Some(WireError::Malformed {
            at,
            reason: "unknown message type"
        })
    );
    assert_eq!(
        backend([&b"R\0\0\0\x02"[..]]).1,
        Some(WireError::Malformed {
            at: 0,
            reason: "message length below 4"
        })
    );
}

#[test]
pub(super) fn statements_are_classified() {
    use StatementKind::*;
    let table = |t: &str| Some(t.to_string());
    let cases: &[(&str, StatementKind, Option<String>)] = &[
        ("BEGIN", Begin, None),
        ("begin isolation level serializable", Begin, None),
        ("START TRANSACTION READ WRITE", Begin, None),
        ("commit;", Commit, None),
        ("END", Commit, None),
        ("end transaction", Commit, None),
        ("COMMIT AND CHAIN", Commit, None),
        ("COMMIT PREPARED 'tx1'", Other, None),
        ("PREPARE TRANSACTION 'tx1'", Other, None),
        ("ROLLBACK", Rollback, None),
        ("abort", Rollback, None),
        ("ROLLBACK TO SAVEPOINT a", Other, None),
        ("rollback work to a", Other, None),
        ("ROLLBACK PREPARED 'tx1'", Other, None),
        ("ROLLBACK AND CHAIN", Rollback, None),
        ("INSERT INTO bookings VALUES (1)", Write, table("bookings")),
        ("insert into Public.Bookings values (1)", Write, table("public.bookings")),
        ("INSERT INTO \"Odd \"\"Name\"\"\" VALUES (1)", Write, table("Odd \"Name\"")),
        ("insert into s.\"T\" as t values (1)", Write, table("s.T")),
        ("UPDATE ONLY rooms SET x = 1", Write, table("rooms")),
        ("update rooms set x = 1", Write, table("rooms")),
        ("DELETE FROM bookings WHERE id = $1", Write, table("bookings")),
        ("MERGE INTO stock s USING d ON true WHEN MATCHED THEN DELETE", Write, table("stock")),
        ("TRUNCATE TABLE bookings", Write, table("bookings")),
        ("COPY bookings FROM STDIN", Write, table("bookings")),
        ("COPY bookings (room) TO STDOUT", Read, None),
        ("COPY (SELECT 1) TO STDOUT", Read, None),
        ("-- lead\n  /* and /* nested */ block */ Insert Into x values (1)", Write, table("x")),
        ("WITH x AS (INSERT INTO b VALUES (1) RETURNING *) SELECT * FROM x", Write, table("b")),
        ("with recursive t(n) as (select 1 union all select n+1 from t) select * from t", Read, None),
        ("WITH a AS (SELECT 1), d AS MATERIALIZED (DELETE FROM old RETURNING *) SELECT 1", Write, table("old")),
        ("WITH a AS NOT MATERIALIZED (SELECT 1) UPDATE r SET x = 1", Write, table("r")),
        ("WITH a AS (WITH b AS (UPDATE q SET x=1 RETURNING *) SELECT * FROM b) SELECT 1", Write, table("q")),
        ("WITH a AS (SELECT 1) SELECT * FROM a FOR UPDATE", Read, None),
        ("SELECT * FROM rooms WHERE id = 1 FOR UPDATE", Read, None),
        ("select * from rooms for no key update skip locked", Read, None),
        ("SELECT 'INSERT INTO x' AS s", Read, None),
        ("SELECT $$ DELETE FROM x; $$", Read, None),
        ("SELECT $tag$ ; COMMIT; $tag$", Read, None),
        ("SELECT E'it\\'s; DELETE FROM x'", Read, None),
        ("SELECT \"delete\" FROM t", Read, None),
        ("SELECT * INTO new_table FROM t", Other, None),
        ("(SELECT 1) UNION (SELECT 2)", Read, None),
        ("VALUES (1), (2)", Read, None),
        ("TABLE rooms", Read, None),
        ("SHOW transaction_isolation", Read, None),
        ("FETCH 10 FROM c", Read, None),
        ("DECLARE c CURSOR FOR SELECT 1", Read, None),
        ("EXPLAIN INSERT INTO x VALUES (1)", Read, None),
        ("EXPLAIN ANALYZE INSERT INTO x VALUES (1)", Write, table("x")),
        ("EXPLAIN (ANALYZE, BUFFERS) DELETE FROM x", Write, table("x")),
        ("EXPLAIN (ANALYZE false) DELETE FROM x", Read, None),
        ("SET statement_timeout = 0", Other, None),
        ("CREATE TABLE t (id int)", Other, None),
        ("CALL book(1)", Other, None),
        ("DO $$ BEGIN INSERT INTO x VALUES (1); END $$", Other, None),
        ("SAVEPOINT a", Other, None),
        ("", Other, None),
        ("  -- only a comment", Other, None),
        (";;", Other, None),
        ("BEGIN; INSERT INTO a VALUES (1); COMMIT", Write, table("a")),
        ("SELECT 1; COMMIT", Commit, None),
        ("BEGIN; SELECT 1", Begin, None),
        ("INSERT INTO a VALUES (1); DELETE FROM b", Write, table("a")),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END",
            Other,
            None,
        ),
        ("SELECT 1 -- ; DELETE FROM x", Read, None),
        ("SELECT 1 /* ; COMMIT */", Read, None),
        ("SELECT U&'d\\0061t; DELETE'", Read, None),
    ];
    for (sql, kind, table) in cases {
        let got = classify(sql);
        assert_eq!((got.kind, &got.table), (*kind, table), "classify({sql:?})");
    }
}

#[test]
pub(super) fn statements_are_split_with_their_text() {
    let texts: Vec<&str> = statements("BEGIN; -- go\n INSERT INTO a VALUES (';'); COMMIT;")
        .map(|(text, _)| text)
        .collect();
    assert_eq!(texts, ["BEGIN", "INSERT INTO a VALUES (';')", "COMMIT"]);
    // A user rule (a --slow-sql regex) matches the text itself.
    let rule = |sql: &str| sql.contains("a VALUES");
    assert!(statements("SELECT 1; INSERT INTO a VALUES (1)").any(|(t, _)| rule(t)));
}

#[test]
pub(super) fn command_tags_say_what_finished() {
    use StatementKind::*;
    for (tag, kind) in [
        ("COMMIT", Commit),
        ("ROLLBACK", Rollback),
        ("BEGIN", Begin),
        ("INSERT 0 1", Write),
        ("UPDATE 3", Write),
        ("DELETE 0", Write),
        ("MERGE 1", Write),
        ("SELECT 5", Read),
        ("COMMIT PREPARED", Other),
        ("COPY 4", Other),
        ("CREATE TABLE", Other),
    ] {
        assert_eq!(StatementKind::of_tag(tag), kind, "{tag}");
    }
}
