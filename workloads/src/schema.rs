//! The database schema of each design, created fresh for a run, and the final read.
//!
//! Every design stores its bookings in `bookings` (what the final read returns); the
//! designs differ in what else guards them: a constraint on `bookings`, per-night rows,
//! inventory rows, a fence. Dates travel as day numbers (`Date.0`, days since
//! 1970-01-01) and become SQL dates with `'1970-01-01'::date + n`, so no date crate is
//! needed on either side.

use checkers::{BookingRow, Date};

use crate::config::{room_numbers, Config};
use crate::design::DesignName;
use crate::error::WorkloadError;

/// Creates the tables and constraints `design` needs, in the connection's `search_path`:
/// the harness gives each run a fresh schema of its own, so nothing is dropped first and
/// nothing of anyone else's can be touched (a user's own `inventory` table included).
/// Run once per run, before any client connects (clients prepare their statements
/// against this schema).
pub async fn setup(
    design: DesignName,
    pg: &tokio_postgres::Client,
    cfg: &Config,
) -> Result<(), WorkloadError> {
    if cfg.rooms == 0 || cfg.window_days == 0 {
        return Err(WorkloadError::InvalidConfig(format!(
            "need at least one room and one night, got {} rooms and {} nights",
            cfg.rooms, cfg.window_days
        )));
    }
    pg.batch_execute(
        "CREATE TABLE bookings (
             id bigserial PRIMARY KEY,
             room bigint NOT NULL,
             check_in date NOT NULL,
             check_out date NOT NULL,
             request text NOT NULL,
             CHECK (check_in < check_out));
         CREATE INDEX bookings_by_room ON bookings (room, check_in);
         CREATE TABLE booking_requests (
             key text PRIMARY KEY,
             request_hash text NOT NULL,
             outcome text NOT NULL DEFAULT 'pending',
             booking bigint,
             error text);
         CREATE TABLE room_fence (room bigint PRIMARY KEY, token bigint NOT NULL);",
    )
    .await?;
    let schema = design.design().schema();
    if !schema.sql.is_empty() {
        pg.batch_execute(schema.sql).await?;
    }
    if schema.inventory {
        let rooms = room_numbers(cfg.rooms);
        pg.execute(
            "INSERT INTO inventory (room, night)
             SELECT r, '1970-01-01'::date + d
             FROM generate_series($1::int8, $2::int8) r,
                  generate_series($3::int4, $4::int4) d",
            &[
                &(*rooms.start() as i64),
                &(*rooms.end() as i64),
                &cfg.window_start.0,
                &(cfg.window_start.0 + cfg.window_days as i32 - 1),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Every booking the database holds, ordered by room, check-in and id: the final read.
/// The same for every design, since every design records its bookings in `bookings`.
pub async fn read_all(
    _design: DesignName,
    pg: &tokio_postgres::Client,
) -> Result<Vec<BookingRow>, WorkloadError> {
    let rows = pg
        .query(
            "SELECT id, room, check_in - '1970-01-01'::date, check_out - '1970-01-01'::date, request
             FROM bookings ORDER BY room, check_in, id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            let room: i64 = r.try_get(1)?;
            Ok(BookingRow {
                booking: Some(non_negative(id, "booking id")?),
                room: non_negative(room, "room")?.into(),
                from: Date(r.try_get(2)?).into(),
                to: Date(r.try_get(3)?).into(),
                request: r.try_get(4)?,
            })
        })
        .collect()
}

/// A database integer as the unsigned number the history uses.
pub(crate) fn non_negative(v: i64, what: &str) -> Result<u64, WorkloadError> {
    u64::try_from(v).map_err(|_| WorkloadError::BadRow(format!("negative {what} {v}")))
}
