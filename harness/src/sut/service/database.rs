//! The run's own database for a service: created empty for the run (a
//! [`Scratch`](crate::nodes::scratch::Scratch): marked, registered with the reaper) and
//! owned by the role the service logs in as, given the user's `--schema`, read by
//! `--read-sql`, and dropped at the end. Every statement here goes straight to the server: set-up and the
//! final read are not what the faults test.

use std::time::Duration;

use checkers::{BookingRow, Bound, Room};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Connects to the config string `url`, bounded by `timeout`.
pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Client, String> {
    let (client, conn) = tokio::time::timeout(timeout, tokio_postgres::connect(url, NoTls))
        .await
        .map_err(|_| format!("connecting to postgres timed out after {timeout:?}"))?
        .map_err(|e| format!("connecting to postgres: {}", pg_error(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The server's own words for a Postgres error (its message, detail and position).
pub(crate) fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            if let Some(p) = db.position() {
                s.push_str(&format!(" at {p:?}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// Applies the user's schema file to the run's database.
pub(crate) async fn apply_schema(db: &Client, file: &str, sql: &str) -> Result<(), String> {
    db.batch_execute(sql)
        .await
        .map_err(|e| format!("--schema {file}: {}", pg_error(&e)))
}

/// Checks that `sql` returns the columns the final read needs: room (an integer), from
/// and to (dates), request (text), in that order.
pub(crate) async fn check_read_sql(db: &Client, sql: &str) -> Result<(), String> {
    let stmt = db
        .prepare(sql)
        .await
        .map_err(|e| format!("--read-sql: {}", pg_error(&e)))?;
    let cols = stmt.columns();
    let described = cols
        .iter()
        .map(|c| format!("{} {}", c.name(), c.type_()))
        .collect::<Vec<_>>()
        .join(", ");
    let wrong = |why: String| {
        format!(
            "--read-sql must return the columns room (integer), from (date), to (date), \
             request (text), in that order; {why}; it returns: {described}"
        )
    };
    if cols.len() != 4 {
        return Err(wrong(format!("it returns {} columns", cols.len())));
    }
    let integer = [Type::INT2, Type::INT4, Type::INT8];
    let text = [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UUID,
    ];
    if !integer.contains(cols[0].type_()) {
        return Err(wrong("column 1 (room) is not an integer".into()));
    }
    for (i, name) in [(1, "from"), (2, "to")] {
        if cols[i].type_() != &Type::DATE {
            return Err(wrong(format!("column {} ({name}) is not a date", i + 1)));
        }
    }
    if !text.contains(cols[3].type_()) {
        return Err(wrong("column 4 (request) is not text".into()));
    }
    Ok(())
}

/// The final read by `--read-sql`: every row, as the history's booking rows.
pub(crate) async fn read(db: &Client, sql: &str) -> Result<Vec<BookingRow>, String> {
    // The simple protocol returns every value as text: no type mapping to get wrong.
    let messages = db
        .simple_query(sql)
        .await
        .map_err(|e| format!("--read-sql: {}", pg_error(&e)))?;
    let mut rows = Vec::new();
    for m in messages {
        let SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        let n = rows.len() + 1;
        let get = |i: usize| {
            r.try_get(i)
                .ok()
                .flatten()
                .ok_or_else(|| format!("--read-sql row {n}: column {} is missing or NULL", i + 1))
        };
        // The simple protocol gives text: digits are a numbered room, anything else a
        // named one (a room type code).
        let room = get(0)?;
        let room = match room.parse::<u64>() {
            Ok(n) => Room::Number(n),
            Err(_) if !room.is_empty() => Room::Name(room.to_string()),
            Err(_) => return Err(format!("--read-sql row {n}: room is empty")),
        };
        let date = |i: usize| {
            get(i).and_then(|s| Bound::parse(s).map_err(|e| format!("--read-sql row {n}: {e}")))
        };
        rows.push(BookingRow {
            room,
            from: date(1)?,
            to: date(2)?,
            request: get(3)?.to_string(),
            booking: None,
        });
    }
    Ok(rows)
}
