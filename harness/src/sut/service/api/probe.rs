//! `overbook api check`: one booking, read, cancelled and read again through a mapping,
//! each request and answer printed with what the history would record, so a user sees
//! where a mapping and their service disagree before running anything under faults.

use std::io::Write;
use std::net::SocketAddr;

use checkers::{BookingRow, OpValue};
use workloads::{BookRequest, Request};

use super::super::http::{self, Answer, Connection, Meaning};
use super::super::trace::IdTable;
use super::{ApiMapping, HttpRequest};

/// The longest answer shown.
const SHOWN: usize = 300;

/// Runs the four steps against the service at `addr`, printing to `out`. `Ok(())` when
/// each recorded what a correct service would, else the step that did not, in words.
pub async fn check_steps(
    m: &ApiMapping,
    addr: SocketAddr,
    out: &mut dyn Write,
) -> Result<(), String> {
    let ids = IdTable::default();
    let origin = workloads::default_window_start();
    let book = BookRequest {
        room: workloads::FIRST_ROOM,
        from: origin,
        to: origin.add_days(1),
        request: format!("api-check-{}", rand::random::<u32>()),
    };
    let value = m.book_value(&book);
    let request = Request::Book(book);
    let mut conn = Connection::open(addr).await?;

    say(out, "step 1: book");
    let answer = send(&mut conn, m.http_request(&request, 1, &ids), out).await;
    let id = match m.meaning(&request, &answer) {
        Meaning::Ok { id: Some(id), .. } => {
            say(out, &format!("  recorded: ok, booking id {id}"));
            id
        }
        other => return Err(format!("step 1 (book): {}", recorded(&other))),
    };

    say(out, "step 2: read");
    let rows = read(m, &mut conn, out)
        .await
        .map_err(|e| format!("step 2 (read): {e}"))?;
    if !holds(&rows, &value) {
        return Err(format!(
            "step 2 (read): the booking just confirmed is not in the read ({} rows)",
            rows.len()
        ));
    }
    say(out, "  recorded: the booking is in the read");

    let Some(_) = &m.cancel else {
        say(out, "steps 3 and 4 skipped: the mapping has no [cancel]");
        return Ok(());
    };
    say(out, "step 3: cancel");
    let (number, _) = ids.number(&id);
    let cancel = Request::Cancel {
        booking: number,
        request: value.request.clone().unwrap_or_default(),
    };
    let answer = send(&mut conn, m.http_request(&cancel, 1, &ids), out).await;
    match m.meaning(&cancel, &answer) {
        Meaning::Ok { .. } => say(out, "  recorded: ok"),
        other => return Err(format!("step 3 (cancel): {}", recorded(&other))),
    }

    say(out, "step 4: read");
    let rows = read(m, &mut conn, out)
        .await
        .map_err(|e| format!("step 4 (read): {e}"))?;
    if holds(&rows, &value) {
        return Err(
            "step 4 (read): the cancelled booking still holds its nights (is `keep` right?)".into(),
        );
    }
    say(out, "  recorded: the booking is gone");
    Ok(())
}

fn say(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{}", checkers::text::for_terminal(line));
}

fn recorded(m: &Meaning) -> String {
    match m {
        Meaning::Ok { .. } => "recorded ok without an id".into(),
        Meaning::Fail(e) => format!("recorded fail ({e})"),
        Meaning::Info(e) => format!("recorded info ({e})"),
        Meaning::Malformed(e) => format!("recorded info, malformed answer ({e})"),
    }
}

/// Whether the read holds the stay of `value` (and its request, when rows carry one).
fn holds(rows: &[BookingRow], value: &OpValue) -> bool {
    let Some(stay) = value.stay() else {
        return false;
    };
    rows.iter().any(|r| {
        r.stay() == stay && (r.request.is_empty() || Some(&r.request) == value.request.as_ref())
    })
}

async fn read(
    m: &ApiMapping,
    conn: &mut Connection,
    out: &mut dyn Write,
) -> Result<Vec<BookingRow>, String> {
    match send(conn, m.read_request(), out).await {
        Answer::Http(200..=299, body) => {
            let rows = super::outcome::read_rows(m, &body)?;
            say(out, &format!("  {} rows hold nights", rows.len()));
            Ok(rows)
        }
        Answer::Http(status, body) => Err(format!("answered {status}: {}", http::snippet(&body))),
        Answer::Broken(e) => Err(e),
    }
}

/// Sends one request, printing it (header values left out: they may hold a key) and
/// the answer, truncated.
async fn send(conn: &mut Connection, req: HttpRequest, out: &mut dyn Write) -> Answer {
    let (method, path, headers, body) = req;
    say(out, &format!("  > {method} {path}"));
    for (name, _) in &headers {
        say(out, &format!("  > {name}: ..."));
    }
    if let Some(b) = &body {
        say(out, &format!("  > {}", String::from_utf8_lossy(b)));
    }
    let answer = conn
        .send_with(method, &path, &headers, body, http::MAX_READ_ANSWER)
        .await;
    match &answer {
        Answer::Http(status, b) => {
            let text = String::from_utf8_lossy(&b[..b.len().min(SHOWN)]);
            let more = if b.len() > SHOWN { " ..." } else { "" };
            say(out, &format!("  < {status} {text}{more}"));
        }
        Answer::Broken(e) => say(out, &format!("  < no answer: {e}")),
    }
    answer
}
