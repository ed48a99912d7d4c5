//! Rendering tests on fixed histories, judged by the real checkers: anomaly present and
//! absent, the lock failing while the database holds, no traces, many processes, hostile
//! strings, and a large history that must be down-sampled.

use checkers::{check_all, CheckOptions, OpType, Trace, Validity};
use fixtures::{big_run, ms, seed_race, Builder};
use reports::{render_index, render_run, RunMeta, RunSummary};

fn artifact(name: &str, html: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(name), html);
}

fn render(b: Builder, meta: &RunMeta) -> (String, checkers::Results) {
    let h = b.history();
    let results = check_all(&h, &CheckOptions::default());
    (render_run(&h, &results, meta), results)
}

/// The text of every `class="caption"` paragraph.
fn captions(html: &str) -> Vec<&str> {
    html.split("<p class=\"caption\">")
        .skip(1)
        .map(|s| &s[..s.find("</p>").unwrap_or(s.len())])
        .collect()
}

#[test]
fn double_booking_gets_a_zoomed_timeline_and_a_caption_telling_the_race() {
    let meta = RunMeta {
        design: "lock-only".into(),
        faults: vec!["db-latency".into()],
        seed: Some(7),
        duration_ms: 3400,
        command: "overbook run --design lock-only --faults db-latency --seed 7".into(),
        ..RunMeta::default()
    };
    let (html, results) = render(seed_race(false), &meta);
    artifact("reports-double-booking.html", &html);
    assert_eq!(results.validity, Validity::Invalid);
    let n = results.anomalies().count();
    assert!(
        n >= 2,
        "expected the double booking and the lock finding, got {n}"
    );
    for i in 1..=n {
        assert!(html.contains(&format!("id=\"anomaly-{i}\"")));
    }
    let dbl = captions(&html)
        .into_iter()
        .find(|c| c.contains("Both committed"))
        .expect("a caption ends with what both users saw");
    assert!(
        dbl.contains("B acquired room:101 at 1.520 s, 20 ms after A&#39;s lease expired while A&#39;s write was still running"),
        "{dbl}"
    );
    assert!(dbl.contains("Both committed; both confirmed."), "{dbl}");
    assert!(dbl.contains("during db-latency"), "{dbl}");
    // The business headline first, then the technical line.
    let harm = html
        .find("<b class=\"harm\">2 room-nights were confirmed to two guests.</b>")
        .expect("the business headline");
    let technical = html.find("The data is wrong").expect("the technical line");
    assert!(harm < technical);
    assert!(html.contains("overbook run --design lock-only --faults db-latency --seed 7"));
    // A timeline per anomaly, plus timeline, latency, throughput, lease and margin plots
    // and the closest call's timeline.
    assert_eq!(html.matches("<svg").count(), n + 6);
}

#[test]
fn lock_failure_with_valid_data_says_the_database_held() {
    // The race's loser hit the exclusion constraint: a database guards the invariant.
    let h = seed_race(true).history();
    let opts = CheckOptions {
        guard: Some(checkers::Guard::Database),
        ..CheckOptions::default()
    };
    let results = check_all(&h, &opts);
    let html = render_run(&h, &results, &RunMeta::default());
    artifact("reports-db-held.html", &html);
    assert_eq!(results.validity, Validity::Valid, "{:#?}", results.checks);
    assert!(results.anomalies().any(|a| a.checker == "lock-exclusion"));
    assert!(html.contains("The lock failed, the database held."));
    let lock = captions(&html)
        .into_iter()
        .find(|c| c.contains("database held"))
        .expect("lock caption");
    assert!(
        lock.contains("it failed at 1.580 s (23P01 exclusion_violation)"),
        "{lock}"
    );
}

#[test]
fn valid_history_without_traces_or_faults_renders_every_section() {
    let mut b = Builder::default();
    let mut rows = Vec::new();
    for i in 0..50u64 {
        let p = i % 4;
        b.book(ms(i * 10), p, i, &format!("r-{i}"));
        b.done(ms(i * 10 + 7), p, OpType::Ok, None, None);
        rows.push((i, format!("r-{i}")));
    }
    let rows: Vec<(u64, &str)> = rows.iter().map(|(r, q)| (*r, q.as_str())).collect();
    b.final_read(ms(600), 4, &rows);
    let (html, results) = render(b, &RunMeta::default());
    assert_eq!(results.validity, Validity::Valid);
    assert!(html.contains("Anomalies (0)"));
    assert!(html.contains("No anomalies"));
    assert!(html.contains("No trace in this history records a lock"));
    assert!(html.contains("No faults were logged"));
    assert!(html.contains("unknown (foreign history)"));
    assert_eq!(html.matches("<svg").count(), 3);
}

#[test]
fn many_processes_share_lanes_once_retired() {
    // 300 processes, each retired after one timed-out op: ten at a time in flight.
    let mut b = Builder::default();
    for i in 0..300u64 {
        b.book(ms(i * 10), i, i, &format!("r-{i}"));
        b.done(ms(i * 10 + 95), i, OpType::Info, None, Some("timeout"));
    }
    let (html, _) = render(b, &RunMeta::default());
    assert!(html.contains("300 processes on 10 client lanes."));
}

#[test]
fn hostile_strings_from_the_history_are_escaped_everywhere() {
    let evil = "<script>alert(1)</script>\"'&";
    let mut b = Builder::default();
    b.nemesis(0, &format!("start-{evil}"));
    b.book(ms(10), 0, 101, evil);
    let t = checkers::Trace {
        lock_key: Some(evil.into()),
        ..fixtures::lock_trace(10, 5, 11, Some(30), 31)
    };
    b.done(ms(40), 0, OpType::Ok, Some(t), Some(evil));
    b.book(ms(12), 1, 101, evil);
    b.done(ms(41), 1, OpType::Ok, None, Some(evil));
    b.final_read(ms(50), 2, &[(101, evil), (101, evil)]);
    let meta = RunMeta {
        design: evil.into(),
        command: evil.into(),
        faults: vec![evil.into()],
        started_at: evil.into(),
        ..RunMeta::default()
    };
    let (html, results) = render(b, &meta);
    artifact("reports-hostile.html", &html);
    assert!(
        results.anomalies().count() > 0,
        "the fixture must put the request id in an anomaly"
    );
    assert!(
        !html.contains("<script"),
        "unescaped script tag in the page"
    );
    assert!(html.contains("&lt;script&gt;"));

    let index = render_index(&[RunSummary {
        dir: evil.into(),
        design: evil.into(),
        faults: vec![evil.into()],
        verdict: Validity::Invalid,
        time: evil.into(),
        link: format!("{evil}/report.html"),
        harm: Some(evil.into()),
    }]);
    assert!(!index.contains("<script"));
}

#[test]
fn index_lists_runs_newest_first_with_links() {
    let run = |dir: &str, time: &str, v| RunSummary {
        dir: dir.into(),
        design: "lock-only".into(),
        faults: vec!["db-latency".into()],
        verdict: v,
        time: time.into(),
        link: format!("{dir}/report.html"),
        harm: None,
    };
    let html = render_index(&[
        run("a", "2026-11-23T10:00:00Z", Validity::Valid),
        run("c", "2026-11-23T12:00:00Z", Validity::Invalid),
        run("b", "2026-11-23T11:00:00Z", Validity::Unknown),
    ]);
    let pos = |s: &str| html.find(s).expect(s);
    assert!(pos("c/report.html") < pos("b/report.html"));
    assert!(pos("b/report.html") < pos("a/report.html"));
    assert!(html.contains("3 runs, newest first"));
    assert!(render_index(&[]).contains("No runs yet"));
}

#[test]
fn a_large_history_is_down_sampled_in_the_whole_run_plots_only() {
    let b = big_run(40_000);
    let (html, _) = render(b, &RunMeta::default());
    artifact("reports-large.html", &html);
    assert!(html.contains("time buckets per lane"));
    assert!(
        html.contains("Showing 4,000 of 19,9"),
        "the scatter says how much it shows"
    );
    assert!(
        html.matches("<circle").count() <= 4_000 + 2_000 + 4_000 + 10,
        "scatter plots are capped"
    );
    assert!(html.len() < 3_000_000, "page is {} bytes", html.len());
}

#[test]
fn anomaly_views_stay_complete_in_a_large_history() {
    let (html, results) = render(
        fixtures::big_run_with(20_000, Some(1_000)),
        &RunMeta::default(),
    );
    let doubles = results
        .check("no-double-booking")
        .map_or(0, |c| c.anomalies.len());
    assert!(doubles >= 9, "{:#?}", results.checks);
    // Every anomaly has its own timeline even though the run plots are down-sampled.
    assert!(html.contains("time buckets per lane"));
    let n = results.anomalies().count();
    assert_eq!(html.matches("<svg").count(), n + 6);
}

/// Regression: the anomaly view padded its time range with unchecked `t1 + pad`, which
/// overflowed (a panic in debug builds) for ops near the end of the u64 clock.
#[test]
fn times_near_the_end_of_the_clock_render_without_overflow() {
    let end = u64::MAX - ms(100);
    let mut b = Builder::default();
    b.book(end, 0, 101, "r-1");
    b.book(end + ms(1), 1, 101, "r-2");
    b.done(end + ms(2), 0, OpType::Ok, None, None);
    b.done(end + ms(3), 1, OpType::Ok, None, None);
    b.final_read(end + ms(4), 2, &[(101, "r-1"), (101, "r-2")]);
    let meta = RunMeta {
        duration_ms: u64::MAX,
        ..RunMeta::default()
    };
    let (html, results) = render(b, &meta);
    assert_eq!(results.validity, Validity::Invalid);
    assert!(html.contains("id=\"anomaly-1\""));
}

/// Regression: request ids went into the page (text and SVG labels) with only HTML
/// escaped, so a terminal escape or a right-to-left override (U+202E) reached the
/// reader raw and could reorder what an anomaly appears to say.
#[test]
fn controls_and_bidi_overrides_from_the_history_are_shown_escaped() {
    let clear = "r-\x1b[2J";
    let flip = "r-\u{202e}2-r";
    let mut b = Builder::default();
    b.nemesis(0, "start-\u{202e}latency");
    b.book(ms(10), 0, 101, clear);
    b.done(
        ms(40),
        0,
        OpType::Ok,
        Some(fixtures::lock_trace(10, 500, 11, Some(30), 31)),
        Some("\u{9b}31m"),
    );
    b.book(ms(12), 1, 101, flip);
    b.done(ms(41), 1, OpType::Ok, None, None);
    b.final_read(ms(50), 2, &[(101, clear), (101, flip)]);
    let (html, results) = render(b, &RunMeta::default());
    artifact("reports-controls.html", &html);
    assert!(results.anomalies().any(|a| a.message.contains(flip)));
    for raw in ['\x1b', '\u{202e}', '\u{9b}'] {
        assert!(!html.contains(raw), "raw {raw:?} in the page");
    }
    assert!(html.contains("r-\\x1b[2J"));
    assert!(html.contains("r-\\u{202e}2-r"));
    assert!(
        html.contains("\\u{9b}31m"),
        "the error string, in the op table"
    );
}

/// The section between two `<h2>`s that starts with `id="{id}"`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<h2 id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let rest = &html[start + 4..];
    &rest[..rest.find("<h2").unwrap_or(rest.len())]
}

#[test]
fn how_close_it_came_shows_quantiles_counts_the_closest_call_and_a_plot() {
    let (html, results) = render(seed_race(false), &RunMeta::default());
    let m = results
        .checks
        .iter()
        .find_map(|c| c.margin.as_ref())
        .expect("the seed race has lock traces");
    let s = section(&html, "margin");
    assert!(s.contains("How close it came"));
    // A's write took 620 ms of its 500 ms lease; B's 50 ms, the background's 20 ms.
    assert_eq!((m.holds, m.above_warn, m.outlived), (32, 1, 1));
    let closest = format!(
        "1 critical section used more than 80% of its lease and outlived it; closest: op {} used 124%.",
        m.closest.op
    );
    assert!(s.contains(&closest), "{s}");
    assert!(
        s.contains(&format!(
            "Op {} on room:101 held its lease for 500 ms (renewals included); its critical section took 620 ms, from acquiring the lock to its commit."
        , m.closest.op)),
        "{s}"
    );
    // Quantiles and counts.
    assert!(
        s.contains(
            "<td>32</td><td>0</td><td>4.0%</td><td>124.0%</td><td>124.0%</td><td>1</td><td>1</td>"
        ),
        "{s}"
    );
    // The plot: the warning line, the 100% line, the fault window shaded.
    // Two drawings: every hold, then the closest call zoomed in beside the next holder.
    assert_eq!(s.matches("<svg").count(), 2);
    assert!(
        s.contains(&format!("The closest call was no near miss: A (op {}) finished its critical section 120 ms after its lease on room:101 expired (124% of it). The next holder, B (op ", m.closest.op)),
        "{s}"
    );
    assert!(s.contains("acquired the lock 100 ms before that."), "{s}");
    assert!(s.contains("warning: 80% of the lease"));
    assert!(s.contains("100%: the lease expired before the commit"));
    assert!(s.contains("fault window"));
    // Latency outside and inside the db-latency window.
    assert!(
        s.contains("<td>outside fault windows</td><td>—</td><td>—</td><td>30</td>"),
        "{s}"
    );
    assert!(s.contains("<td>db-latency</td><td>0.500 s</td><td>2.000 s</td><td>2</td><td>50.0 ms</td><td>620.0 ms</td><td>620.0 ms</td><td>620.0 ms</td>"), "{s}");
}

/// A valid run whose closest call is a near miss: A's write lands with 15 ms of its
/// 500 ms lease left, B takes the lock 10 ms after that and finds the room taken.
#[test]
fn a_valid_runs_closest_call_is_zoomed_in_and_captioned_a_near_miss() {
    let mut b = Builder::default();
    b.nemesis(ms(900), "start-db-latency");
    b.book(ms(1000), 0, 101, "r-1");
    b.book(ms(1200), 1, 101, "r-2");
    b.done(
        ms(1490),
        0,
        OpType::Ok,
        Some(fixtures::lock_trace(1000, 500, 1005, Some(1485), 1488)),
        None,
    );
    let refused = Trace {
        db_commit: None,
        confirmed: None,
        ..fixtures::lock_trace(1495, 500, 1496, None, 1500)
    };
    b.done(ms(1502), 1, OpType::Fail, Some(refused), Some("room taken"));
    b.nemesis(ms(1600), "stop-db-latency");
    b.final_read(ms(1700), 2, &[(101, "r-1")]);
    let (html, results) = render(b, &RunMeta::default());
    artifact("reports-near-miss.html", &html);
    assert_eq!(results.validity, Validity::Valid);
    let s = section(&html, "margin");
    assert!(s.contains("<h3>The closest call</h3>"), "{s}");
    let caption = captions(s)
        .into_iter()
        .find(|c| c.starts_with("Near miss"))
        .unwrap_or_else(|| panic!("no near-miss caption in {s}"));
    assert!(
        caption.contains("finished its critical section 15 ms before its lease on room:101 expired, using 97% of it."),
        "{caption}"
    );
    assert!(
        caption.contains("The next holder, B (op ")
            && caption.ends_with("acquired the lock 10 ms after that."),
        "{caption}"
    );
    // The zoomed timeline has a lane for each holder.
    assert_eq!(s.matches("<svg").count(), 2);
    assert!(s.contains("A: op ") && s.contains("B: op "), "{s}");
}

#[test]
fn how_close_it_came_says_why_without_lock_traces() {
    let mut b = Builder::default();
    b.book(ms(10), 0, 101, "r-1");
    b.done(ms(20), 0, OpType::Ok, None, None);
    b.final_read(ms(30), 1, &[(101, "r-1")]);
    let (html, _) = render(b, &RunMeta::default());
    let s = section(&html, "margin");
    assert!(
        s.contains("No lease hold to measure: no lock traces (not applicable)."),
        "{s}"
    );
    assert!(!s.contains("<svg"));
}

#[test]
fn renewed_holds_and_runaway_holds_are_plotted_within_reach() {
    let mut b = Builder::default();
    // Renewed twice: 900 ms of a 300 ms lease renewed to 1,100 ms is 81%, above 80%.
    b.book(ms(0), 0, 101, "r-1");
    let renewed = Trace {
        lock_renewed: vec![ms(300), ms(800)],
        ..fixtures::lock_trace(0, 300, 1, Some(900), 901)
    };
    b.done(ms(950), 0, OpType::Ok, Some(renewed), None);
    // A runaway: 10 s of a 10 ms lease, far above the plot's top.
    b.book(ms(1000), 1, 102, "r-2");
    let runaway = Trace {
        lock_key: Some("room:102".into()),
        ..fixtures::lock_trace(1000, 10, 1001, Some(11_000), 11_001)
    };
    b.done(ms(11_100), 1, OpType::Ok, Some(runaway), None);
    b.final_read(ms(11_200), 2, &[(101, "r-1"), (102, "r-2")]);
    let (html, results) = render(b, &RunMeta::default());
    artifact("reports-margin.html", &html);
    let m = results
        .checks
        .iter()
        .find_map(|c| c.margin.as_ref())
        .unwrap();
    assert_eq!((m.above_warn, m.outlived), (2, 1));
    let s = section(&html, "margin");
    assert!(s.contains("used 100000%"), "{s}");
    assert!(
        s.contains("1 hold above 330% drawn as triangles on the top edge."),
        "{s}"
    );
    assert!(
        s.contains("<polygon") || s.contains("<path"),
        "a triangle marker"
    );
}

/// An aimed fault's firings (lone `fire-<fault>` nemesis infos) are counted in the fault
/// table and marked on the plots, inside the window they belong to.
#[test]
fn aimed_fault_firings_are_marked_and_counted() {
    let mut b = Builder::default();
    b.nemesis(ms(100), "start-slow-writes");
    for (i, t) in [150, 160, 400].into_iter().enumerate() {
        b.push(
            ms(t),
            checkers::Process::Nemesis,
            OpType::Info,
            "fire-slow-writes",
            checkers::OpValue {
                detail: Some(serde_json::json!({
                    "server": "postgres", "action": "held", "command": "INSERT",
                    "kind": "write", "target": "bookings", "held_ms": 600, "connection": i
                })),
                ..checkers::OpValue::default()
            },
            None,
        );
    }
    b.book(ms(420), 1, 101, "r-1");
    b.done(ms(900), 1, OpType::Ok, None, None);
    b.nemesis(ms(1000), "stop-slow-writes");
    b.final_read(ms(1100), 2, &[(101, "r-1")]);
    let (html, results) = render(b, &RunMeta::default());
    artifact("aimed.html", &html);
    assert_eq!(results.validity, Validity::Valid);
    assert!(
        html.contains("aimed fault fired"),
        "the plots' legend names the marks"
    );
    let table = &html[html.find("id=\"faults\"").unwrap()..];
    assert!(table.contains("<th>fired</th>"), "{table}");
    assert!(table.contains("<td>3</td>"), "{table}");
}

/// Issue 28: the strikes that hit A's and B's own connections are drawn on their lanes,
/// named by what was held; the history pins them down by time (A alone was writing at
/// both firings of connection 4; connection 9 is then B's, as A owns 4). A foreign
/// history (no run header saying each session owns its connection) attributes nothing.
#[test]
fn strikes_on_the_two_ops_own_connections_are_drawn_on_their_lanes() {
    let strike = |b: &mut Builder, at: u64, held: u64, connection: u64| {
        let value = checkers::OpValue {
            detail: Some(serde_json::json!({"server": "postgres", "action": "held",
                "command": "INSERT", "kind": "write", "target": "bookings",
                "held_ms": held, "connection": connection})),
            ..checkers::OpValue::default()
        };
        b.push(
            ms(at),
            checkers::Process::Nemesis,
            OpType::Info,
            "fire-db-latency",
            value,
            None,
        );
    };
    let build = |header: bool| {
        let mut b = seed_race(false);
        strike(&mut b, 1100, 400, 4);
        strike(&mut b, 1300, 250, 4);
        strike(&mut b, 1540, 10, 9);
        if header {
            let h = checkers::RunHeader {
                subject: Some("lock-only".into()),
                ..checkers::RunHeader::default()
            };
            b.ops.insert(0, h.to_op());
        }
        b
    };
    let (html, _) = render(build(true), &RunMeta::default());
    artifact("reports-strikes.html", &html);
    let first = &html[..html.find("id=\"anomaly-2\"").expect("two anomalies")];
    for label in [
        "INSERT held 400 ms",
        "INSERT held 250 ms",
        "INSERT held 10 ms",
    ] {
        assert!(first.contains(label), "{label} on its lane");
    }
    let (foreign, _) = render(build(false), &RunMeta::default());
    assert!(!foreign.contains("INSERT held"), "nothing attributed");
}

/// Issue 26: what the guest was told is drawn on the race timeline (a phantom
/// confirmation as a red dot on the lane of the booking it names) and counted in the
/// summary; the business headline says it first. Without notifications, neither appears.
#[test]
fn notifications_are_drawn_on_their_booking_and_counted_in_the_summary() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../checkers/testdata/invalid/told-is-true--confirmed-before-a-commit-that-failed.jsonl",
    );
    let h = checkers::read_history(std::io::BufReader::new(std::fs::File::open(file).unwrap()))
        .unwrap();
    let results = check_all(&h, &CheckOptions::default());
    let html = render_run(&h, &results, &RunMeta::default());
    artifact("reports-told.html", &html);
    assert!(
        html.contains("<b class=\"harm\">1 guest was told they had a room they do not have.</b>")
    );
    assert!(html.contains(
        "<td>notifications</td><td>1 received: 1 confirmed, 0 cancelled; 1 guest was told they had a room they do not have</td>"
    ));
    // The phantom's red dot on the anomaly's timeline (the fault colour, filled).
    let anomaly = &html[html.find("id=\"anomaly-1\"").unwrap()..];
    let svg = &anomaly[..anomaly.find("</svg>").unwrap()];
    assert!(
        svg.contains("<circle") && svg.contains("fill=\"#D62728\""),
        "{svg}"
    );

    let (plain, _) = render(seed_race(false), &RunMeta::default());
    assert!(!plain.contains("<td>notifications</td>"));
    let anomaly = &plain[plain.find("id=\"anomaly-1\"").unwrap()..];
    assert!(!anomaly[..anomaly.find("</svg>").unwrap()].contains("<circle"));
}
