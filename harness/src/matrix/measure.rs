//! What a run measured beyond its verdict, for the matrix's diff and trend: when the
//! first double booking happened, how many bookings a second were confirmed, and how
//! much of its lease the closest critical section used. Computed once, by the run that
//! has its history in hand, and carried to the matrix in the outcome file.

use checkers::{History, OpType, Process, Results, F};
use reports::matrix::CellMeasures;

/// The run's measures from its history and results.
pub fn measures(history: &History, results: &Results) -> CellMeasures {
    let confirmed = history
        .ops()
        .iter()
        .filter(|o| {
            matches!(o.process, Process::Client(_)) && o.kind == OpType::Ok && o.f == F::Book
        })
        .count();
    let secs = results.stats.duration_ns as f64 / 1e9;
    CellMeasures {
        first_anomaly_ms: first_double_booking_ns(history, results).map(|ns| ns / 1_000_000),
        throughput: (secs > 0.0).then(|| confirmed as f64 / secs),
        margin_max: results
            .checks
            .iter()
            .find_map(|c| c.margin.as_ref())
            .filter(|m| m.holds > 0)
            .map(|m| m.max),
    }
}

/// When the first double booking happened, ns after the first fault window opened (or
/// after the run started, with no fault window): the later of the two confirmations of
/// the earliest anomaly no-double-booking found. `None` when it found none.
pub fn first_double_booking_ns(history: &History, results: &Results) -> Option<u64> {
    let opened = checkers::fault_windows(history)
        .first()
        .map_or(0, |w| w.start);
    results
        .checks
        .iter()
        .filter(|c| c.checker == "no-double-booking")
        .flat_map(|c| &c.anomalies)
        .filter_map(|a| {
            a.ops
                .iter()
                .filter_map(|&i| history.ops().get(i as usize))
                .map(|o| o.time)
                .max()
        })
        .min()
        .map(|t| t.saturating_sub(opened))
}
