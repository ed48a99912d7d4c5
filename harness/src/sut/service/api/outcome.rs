//! From an answer to what the history records, by the mapping: a status in `ok` (and,
//! with `confirmed`, the pointed value in its list) is `ok`; a status in `fail`, or an
//! ok status whose `confirmed` value is not in its list, is `fail`; anything else (5xx,
//! another status, a timeout, a broken connection, an ok answer without the id) is
//! `info`, counted. And the read: the rows the mapping's pointers find.

use checkers::{BookingRow, Bound, Room};
use serde_json::Value;

use super::super::http::{json_body, snippet, Answer, Meaning};
use super::{ApiMapping, Request};

/// What a status means for `req`, before the body is looked at.
enum Class {
    Ok,
    Fail,
    Other,
}

fn class(req: &Request, status: u16) -> Class {
    if req.ok.contains(&status) {
        Class::Ok
    } else if match &req.fail {
        Some(list) => list.contains(&status),
        None => (400..=499).contains(&status),
    } {
        Class::Fail
    } else {
        Class::Other
    }
}

fn not_named(status: u16, body: &[u8]) -> Meaning {
    let text = format!("HTTP {status}: {}", snippet(body));
    if (500..=599).contains(&status) {
        Meaning::Info(text)
    } else {
        // A status the mapping names neither ok nor fail: unknown, and counted.
        Meaning::Malformed(format!(
            "{text} (a status the mapping names neither ok nor fail)"
        ))
    }
}

/// A `[book]` answer.
pub(crate) fn book_meaning(m: &ApiMapping, answer: &Answer) -> Meaning {
    let (status, body) = match answer {
        Answer::Broken(e) => return Meaning::Info(e.clone()),
        Answer::Http(s, b) => (*s, b),
    };
    match class(&m.book, status) {
        Class::Fail => Meaning::Fail(format!("HTTP {status}: {}", snippet(body))),
        Class::Other => not_named(status, body),
        Class::Ok => {
            let v = match json_body(status, body) {
                Ok(v) => v,
                Err(m) => return m,
            };
            if let Some(c) = &m.confirmed {
                if !c.holds(&v) {
                    let got =
                        c.at.find(&v)
                            .map_or("nothing".to_string(), Value::to_string);
                    return Meaning::Fail(format!(
                        "HTTP {status} with {got} at {} (confirmed is {})",
                        c.at,
                        Value::Array(c.is.clone())
                    ));
                }
            }
            match m.book_id.find(&v) {
                Some(id @ (Value::Number(_) | Value::String(_))) => Meaning::Ok {
                    id: Some(id.clone()),
                    trace: None,
                },
                Some(other) => Meaning::Malformed(format!(
                    "HTTP {status} with an id at {} that is neither a number nor a string: {other}",
                    m.book_id
                )),
                None => Meaning::Malformed(format!(
                    "HTTP {status} without the id at {}: {:?}",
                    m.book_id,
                    snippet(body)
                )),
            }
        }
    }
}

/// A `[cancel]` answer.
pub(crate) fn cancel_meaning(req: &Request, answer: &Answer) -> Meaning {
    match answer {
        Answer::Broken(e) => Meaning::Info(e.clone()),
        Answer::Http(status, body) => match class(req, *status) {
            Class::Ok => Meaning::Ok {
                id: None,
                trace: None,
            },
            Class::Fail => Meaning::Fail(format!("HTTP {status}: {}", snippet(body))),
            Class::Other => not_named(*status, body),
        },
    }
}

/// The rows of a `[read]` answer that hold nights (those `keep` accepts). A list
/// pointer that finds no array, or a row without a room or a bound, is a finding about
/// the service: the read fails with that reason and the run's verdict is unknown. A
/// row whose end is not after its start is kept: db-state names it.
pub(crate) fn read_rows(m: &ApiMapping, body: &[u8]) -> Result<Vec<BookingRow>, String> {
    let r = &m.read;
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = match r.list.find(&v) {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "the list at {} is not an array: {}",
                r.list,
                snippet(other.to_string().as_bytes())
            ))
        }
        None => {
            return Err(format!(
                "the answer has nothing at the list pointer {}",
                r.list
            ))
        }
    };
    let mut rows = Vec::new();
    for (i, row) in list.iter().enumerate() {
        if r.keep.as_ref().is_some_and(|k| !k.holds(row)) {
            continue;
        }
        let short = || snippet(row.to_string().as_bytes());
        let room = match r.room.find(row) {
            Some(Value::Number(n)) if n.as_u64().is_some() => Room::Number(n.as_u64().unwrap_or(0)),
            Some(Value::String(s)) if !s.is_empty() => Room::Name(s.clone()),
            _ => {
                return Err(format!(
                    "booking {i} has no room at {}: {}",
                    r.room,
                    short()
                ))
            }
        };
        let bound = |p: &super::Pointer| -> Result<Bound, String> {
            let s = p
                .find(row)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("booking {i} has no date or instant at {p}: {}", short()))?;
            Bound::parse(s).map_err(|e| format!("booking {i}: {e}"))
        };
        let request = match &r.request {
            Some(p) => match p.find(row) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(format!("booking {i} has no request at {p}: {}", short())),
            },
            None => String::new(),
        };
        rows.push(BookingRow {
            room,
            from: bound(&r.from)?,
            to: bound(&r.to)?,
            request,
            booking: None,
        });
    }
    Ok(rows)
}
