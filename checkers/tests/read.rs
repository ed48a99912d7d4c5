//! The reader: every unusable input is an error naming its line and field, never a panic.

mod common;

use checkers::{read_history, HistoryReader, HistoryWriter, OpType, ReadError};

fn err(text: &str) -> ReadError {
    read_history(text.as_bytes()).expect_err("input should be rejected")
}

const INV: &str = r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"book","value":{"room":101,"from":"2026-12-01","to":"2026-12-03","request":"r-1"}}"#;

fn lines(ls: &[&str]) -> String {
    ls.join("\n") + "\n"
}

#[test]
fn unknown_type_names_line_and_field() {
    let e = err(&lines(&[
        INV,
        r#"{"index":1,"time":20,"process":1,"type":"okay","f":"book"}"#,
    ]));
    assert_eq!(e.line(), 2);
    assert_eq!(e.field(), Some("type"));
    assert_eq!(
        e.to_string(),
        "line 2: field `type`: unknown op type \"okay\" (expected invoke, ok, fail or info)"
    );
}

#[test]
fn malformed_json_names_the_line() {
    let e = err(&lines(&[INV, r#"{"index":1,"time":20,"#]));
    assert!(matches!(e, ReadError::Json { line: 2, .. }), "{e}");
    assert!(e.to_string().starts_with("line 2: malformed JSON: "), "{e}");
    let e = err("[1,2]\n");
    assert_eq!(
        e.to_string(),
        "line 1: malformed JSON: expected a JSON object, got an array"
    );
}

#[test]
fn each_history_rule_is_enforced_with_its_field() {
    let cases: &[(&[&str], u64, &str, &str)] = &[
        (
            &[r#"{"index":0,"time":1,"process":1,"type":"ok","f":"book"}"#],
            1,
            "type",
            "`ok` completion for process 1, which has no op in flight",
        ),
        (
            &[INV, r#"{"index":1,"time":20,"process":1,"type":"invoke","f":"read"}"#],
            2,
            "process",
            "process 1 invoked a new op while its op 0 (line 1) is still in flight",
        ),
        (
            &[INV, r#"{"index":1,"time":5,"process":1,"type":"ok","f":"book"}"#],
            2,
            "time",
            "5 is before the previous op's time 10 (time must not decrease)",
        ),
        (
            &[INV, r#"{"index":2,"time":20,"process":1,"type":"ok","f":"book"}"#],
            2,
            "index",
            "expected 1 (indexes count up by 1 from 0), got 2",
        ),
        (
            &[INV, r#"{"index":1,"time":20,"process":1,"type":"ok","f":"cancel"}"#],
            2,
            "f",
            "completion `cancel` does not match its invocation's `book` (op 0)",
        ),
        (
            &[
                INV,
                r#"{"index":1,"time":20,"process":1,"type":"info","f":"book"}"#,
                r#"{"index":2,"time":30,"process":1,"type":"invoke","f":"read"}"#,
            ],
            3,
            "process",
            "process 1 issued an op after its op 1 ended in `info` (a process with an unknown outcome is retired)",
        ),
        (
            &[r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"book","value":{"from":"2026-12-01","to":"2026-12-03"}}"#],
            1,
            "value.room",
            "a `book` invocation needs a room",
        ),
        (
            &[r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"book","value":{"room":1,"from":"2026-12-03","to":"2026-12-03"}}"#],
            1,
            "value.to",
            "check-out 2026-12-03 is not after check-in 2026-12-03 (a stay has at least one night)",
        ),
        (
            &[r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"book","value":{"room":1,"from":"2026-02-30","to":"2026-12-03"}}"#],
            1,
            "value.from",
            "not an ISO date (YYYY-MM-DD): \"2026-02-30\"",
        ),
        (
            &[r#"{"index":0,"time":1,"process":-3,"type":"invoke","f":"read"}"#],
            1,
            "process",
            "process must not be negative, got -3",
        ),
        (
            &[r#"{"index":0,"time":1,"process":"chaos","type":"invoke","f":"read"}"#],
            1,
            "process",
            "process must be an integer or \"nemesis\", got \"chaos\"",
        ),
        (
            &[r#"{"index":0,"process":1,"type":"invoke","f":"read"}"#],
            1,
            "time",
            "missing",
        ),
        (
            &[r#"{"index":0,"time":1,"process":1,"type":"ok","f":"read","value":{"bookings":[{"room":1,"from":"2026-12-01"}]}}"#],
            1,
            "value.bookings[0]",
            "missing field `to`",
        ),
        (
            &[r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"book","value":{"room":1,"from":"2026-12-01","to":"2026-12-02","trace":{"token":"x"}}}"#],
            1,
            "value.trace.token",
            "invalid type: string \"x\", expected u64",
        ),
    ];
    for (input, line, field, message) in cases {
        let e = err(&lines(input));
        assert_eq!(
            (e.line(), e.field()),
            (*line, Some(*field)),
            "for {input:?}: {e}"
        );
        assert_eq!(
            e.to_string(),
            format!("line {line}: field `{field}`: {message}")
        );
    }
}

/// A final-read row whose check-out is not after its check-in is no stay: it was first
/// judged by db-state as if it were one (a false anomaly), then made the whole history
/// unusable, which let a buggy service's read abort its own run (issue 22). It reads, and
/// db-state names it as a finding about whoever wrote it.
#[test]
fn reversed_or_zero_night_read_rows_read_and_are_db_state_findings() {
    let read = r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read"}"#;
    for (row, message) in [
        (
            r#"{"room":1,"from":"2026-12-05","to":"2026-12-03","request":"r-2"}"#,
            "the final read (op 1) holds a row that is no stay: request r-2, room 1, check-out 2026-12-03 is not after check-in 2026-12-05",
        ),
        (
            r#"{"room":1,"from":"2026-12-03","to":"2026-12-03","request":"r-2"}"#,
            "the final read (op 1) holds a row that is no stay: request r-2, room 1, check-out 2026-12-03 is not after check-in 2026-12-03",
        ),
    ] {
        let done = format!(
            r#"{{"index":1,"time":2,"process":1,"type":"ok","f":"read","value":{{"bookings":[{{"room":1,"from":"2026-12-01","to":"2026-12-02","request":"r-1"}},{row}]}}}}"#
        );
        let h = read_history(lines(&[read, &done]).as_bytes()).unwrap();
        let r = checkers::check_all(&h, &checkers::CheckOptions::default());
        let db = r.check("db-state").unwrap();
        assert_eq!(db.validity, checkers::Validity::Invalid);
        let msgs: Vec<&str> = db.anomalies.iter().map(|a| a.message.as_str()).collect();
        assert_eq!(msgs, [message]);
    }
}

/// Regression: `Trace::lease_expiry` added `lock_ttl_ms * 1_000_000` unchecked, which
/// panics in debug builds and wraps in release (a lease "expiring" before it began). Then
/// such a trace made the history unusable, so a service's absurd trace aborted its run
/// (issue 22). It reads; the lock checkers leave that op out and say so.
#[test]
fn a_lease_ending_past_the_clock_is_left_out_of_the_lock_checks() {
    let done = r#"{"index":1,"time":20,"process":1,"type":"ok","f":"book","value":{"trace":{"lock_key":"room:101","lock_acquired":11,"lock_ttl_ms":18446744073709,"lock_renewed":[1000000]}}}"#;
    let h = read_history(lines(&[INV, done]).as_bytes()).unwrap();
    assert_eq!(h.bad_traces(), [1]);
    assert!(h.traced().is_empty());
    let r = checkers::check_all(&h, &checkers::CheckOptions::default());
    let lock = r.check("lock-exclusion").unwrap();
    assert_eq!(lock.validity, checkers::Validity::Unknown);
    assert!(
        lock.summary
            .contains("1 trace ignored (its lease ends past the clock's range: op 1)"),
        "{}",
        lock.summary
    );
    // The same lease from an earlier grant ends just inside the clock's range.
    let fits = done.replace("[1000000]", "[12]");
    let h = read_history(lines(&[INV, &fits]).as_bytes()).unwrap();
    assert_eq!(h.traced(), [1]);
    assert!(h.bad_traces().is_empty());
}

#[test]
fn blank_lines_are_skipped_but_counted() {
    let text = format!(
        "{INV}\n\n   \n{}\n",
        r#"{"index":1,"time":20,"process":1,"type":"okay","f":"book"}"#
    );
    assert_eq!(err(&text).line(), 4);
}

#[test]
fn the_nemesis_is_exempt_from_the_one_in_flight_rule() {
    let text = lines(&[
        r#"{"index":0,"time":1,"process":"nemesis","type":"invoke","f":"start-db-latency"}"#,
        r#"{"index":1,"time":2,"process":"nemesis","type":"invoke","f":"start-pause-redis"}"#,
        r#"{"index":2,"time":3,"process":"nemesis","type":"info","f":"stop-foo"}"#,
        r#"{"index":3,"time":4,"process":"nemesis","type":"info","f":"start-db-latency","value":null}"#,
    ]);
    let h = read_history(text.as_bytes()).unwrap();
    assert_eq!(h.partner(0), Some(3));
    assert_eq!(h.partner(2), None);
}

#[test]
fn writer_output_reads_back_identically() {
    let text = lines(&[
        INV,
        r#"{"index":1,"time":20,"process":1,"type":"ok","f":"book","value":{"room":101,"from":"2026-12-01","to":"2026-12-03","request":"r-1","booking":7,"trace":{"lock_key":"room:101","lock_acquired":11,"lock_ttl_ms":500,"lock_renewed":[12,13],"token":4}},"error":null}"#,
    ]);
    let ops: Vec<_> = HistoryReader::new(text.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let mut w = HistoryWriter::new(Vec::new());
    for op in &ops {
        w.append(op).unwrap();
    }
    let written = w.into_inner();
    let again = read_history(&written[..]).unwrap();
    assert_eq!(again.ops(), &ops[..]);
    assert_eq!(again.outcome(0), OpType::Ok);
    assert_eq!(
        again.ops()[1].value.trace.as_ref().unwrap().lease_expiry(),
        Some(13 + 500_000_000)
    );
}

#[test]
fn an_empty_input_is_an_empty_history() {
    let h = read_history(&b""[..]).unwrap();
    assert!(h.is_empty());
    assert_eq!(h.final_read(), None);
}

#[test]
fn lines_split_across_buffer_refills_read_the_same() {
    use checkers::synth::{serial_hotel, SynthConfig};
    let ops = serial_hotel(&SynthConfig {
        events: 300,
        ..SynthConfig::default()
    });
    let mut w = HistoryWriter::new(Vec::new());
    for op in &ops {
        w.append(op).unwrap();
    }
    let mut bytes = w.into_inner();
    // A blank line and a last line without its newline: both take the slow path.
    bytes.splice(0..0, b"\n".iter().copied());
    bytes.pop();
    for cap in [1, 7, 64, 300, 1 << 16] {
        let r = std::io::BufReader::with_capacity(cap, &bytes[..]);
        let h = read_history(r).unwrap_or_else(|e| panic!("capacity {cap}: {e}"));
        assert_eq!(h.ops(), &ops[..], "capacity {cap}");
    }
}
