//! overbook's history model and checkers. Pure: no async runtime, no database, no I/O
//! beyond reading a history.
//!
//! - [`date`]: calendar dates as day numbers; [`instant`]: RFC 3339 instants of time
//!   slots; [`bound`]: one end of a stay, a night or an instant ([`Bound`]).
//! - [`room`]: rooms by number or name ([`Room`]).
//! - [`harm`]: what the findings cost the guests, counted by the checkers ([`Harm`]) and
//!   worded once as the business headline ([`harm::headline`]).
//! - [`header`]: the run header that opens a run's history ([`RunHeader`], [`Guard`]).
//! - [`history`]: the events of a history ([`Op`]) and the domain types they carry
//!   ([`Stay`], [`Trace`]).
//! - [`lease`]: the lease-hold model every reader of a lock trace shares ([`LeaseHold`]).
//! - [`read`]: the streaming JSONL reader ([`read_history`], [`HistoryReader`]) and
//!   [`HistoryWriter`], with errors naming line and field.
//! - [`pairing`]: [`History`], a validated history with invokes paired to completions.
//! - [`checks`]: the [`Checker`]s and [`check_all`].
//! - [`stats`]: counts, latency quantiles, rates, [`fault_windows`].
//! - [`result`]: [`Validity`], [`Anomaly`], [`CheckResult`], [`Results`]; each checker's
//!   [`Role`], and [`verdict`], which turns roles into the run's verdict and [`Headline`].
//! - [`synth`]: synthetic histories from a serial hotel model (property tests, benchmarks).
//! - [`text`]: history text made safe to show ([`text::for_terminal`]): controls and
//!   bidirectional overrides escaped.

pub mod bound;
pub mod checks;
pub mod date;
mod error;
pub mod harm;
mod hash;
pub mod header;
pub mod history;
pub mod instant;
pub mod lease;
pub mod pairing;
pub mod read;
pub mod result;
pub mod room;
mod scan;
pub mod stats;
pub mod synth;
pub mod text;

pub use bound::{Bound, BoundError};
pub use checks::margin::{lease_holds, Alert, Hold, Margin, WarnFraction, WarnFractionError};
pub use checks::told::NOTIFY;
pub use checks::{check_all, CheckOptions, Checker};
pub use date::{Date, DateError};
pub use harm::{Harm, Oversold};
pub use header::{Guard, RoomCapacity, RunHeader};
pub use history::{BookingRow, Op, OpType, OpValue, Process, Stay, Trace, F};
pub use instant::{Instant, InstantError};
pub use lease::{CommitAgainstLease, Handover, LeaseHold, ReleaseAgainstLease, SectionEnd};
pub use pairing::{BookOp, History};
pub use read::{read_history, HistoryReader, HistoryWriter, ReadError};
pub use result::{
    verdict, Anomaly, CheckResult, Headline, Results, Role, UnknownReason, Validity, Verdict,
};
pub use room::Room;
pub use stats::{fault_windows, FaultStats, FaultWindow, Stats};
