//! overbook's history model and checkers. Pure: no async runtime, no database, no I/O
//! beyond reading a history.
//!
//! - [`date`]: calendar dates as day numbers.
//! - [`history`]: the events of a history ([`Op`]) and the domain types they carry
//!   ([`Stay`], [`RoomNight`], [`Trace`]).

pub mod date;
pub mod history;

pub use date::{Date, DateError};
pub use history::{BookingRow, Op, OpType, OpValue, Process, RoomNight, Stay, Trace, F};
pub mod result;
pub use result::{Anomaly, Validity};
