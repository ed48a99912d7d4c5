//! Where stays of one room outnumber its capacity: the sweep behind no-double-booking
//! and db-state for rooms that hold more than one stay a night (a room type sold N
//! times, a chair booked by the slot).
//!
//! With capacity 1 the checkers compare stays in pairs ("room 101 nights ... confirmed
//! to ops 14 and 19"); with capacity N no pair is wrong by itself, only the N+1st stay
//! on one night is, so the question becomes "on which nights (or slots) do more than N
//! stays hold the room, and which are they".

use std::collections::BTreeSet;

use crate::bound::Bound;

/// A stretch `[from, to)` over which the same set of stays holds the room, more of
/// them than its capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crowd {
    /// Start of the stretch (inclusive).
    pub from: Bound,
    /// End of the stretch (exclusive).
    pub to: Bound,
    /// The stays holding the room over it, as indexes into the input, ascending.
    pub members: Vec<usize>,
}

/// The maximal stretches where more than `capacity` of `stays` (each `[from, to)`)
/// hold the room at once, with the stays over each. Stays with no night (`to <= from`)
/// hold nothing. A stretch ends where the set of stays over it changes, so each crowd
/// names exactly the stays that are there throughout.
pub fn crowds(stays: &[(Bound, Bound)], capacity: u64) -> Vec<Crowd> {
    // Each stay enters at its start and leaves at its end; at one point ends are
    // applied before starts (half-open: the check-out day is free).
    let mut events: Vec<(Bound, bool, usize)> = Vec::with_capacity(stays.len() * 2);
    for (i, &(from, to)) in stays.iter().enumerate() {
        if from < to {
            events.push((from, true, i));
            events.push((to, false, i));
        }
    }
    events.sort_unstable();
    let mut active: BTreeSet<usize> = BTreeSet::new();
    let mut out: Vec<Crowd> = Vec::new();
    let mut k = 0;
    while k < events.len() {
        let at = events[k].0;
        while k < events.len() && events[k].0 == at {
            let (_, starts, i) = events[k];
            if starts {
                active.insert(i);
            } else {
                active.remove(&i);
            }
            k += 1;
        }
        let Some(&(next, _, _)) = events.get(k) else {
            break;
        };
        if active.len() as u64 <= capacity {
            continue;
        }
        let members: Vec<usize> = active.iter().copied().collect();
        match out.last_mut() {
            Some(last) if last.to == at && last.members == members => last.to = next,
            _ => out.push(Crowd {
                from: at,
                to: next,
                members,
            }),
        }
    }
    out
}

/// A stretch in words: "night 2027-01-01", "nights 2027-01-01..2027-01-03",
/// "slot 2027-01-01T09:00:00Z" (when it is exactly one slot of `slot_micros`) or
/// "slots 2027-01-01T09:00:00Z..2027-01-01T10:00:00Z".
pub fn stretch(from: Bound, to: Bound, slot_micros: Option<i64>) -> String {
    let single = match (from, to) {
        (Bound::Night(a), Bound::Night(b)) => b.0 - a.0 == 1,
        (Bound::At(a), Bound::At(b)) => slot_micros == Some(b.0 - a.0),
        _ => false,
    };
    let word = if from.is_night() { "night" } else { "slot" };
    if single {
        format!("{word} {from}")
    } else {
        format!("{word}s {from}..{to}")
    }
}

/// The nights (day numbers) or slots (start instants, in microseconds) of a stretch,
/// for counting room-nights. Without a known slot length a stretch of instants counts
/// as one.
pub fn units(from: Bound, to: Bound, slot_micros: Option<i64>) -> Vec<i64> {
    let (a, b) = (from.key(), to.key());
    match (from, slot_micros) {
        (Bound::Night(_), _) => (a..b).collect(),
        (Bound::At(_), Some(len)) if len > 0 => (a..b).step_by(len as usize).collect(),
        (Bound::At(_), _) => vec![a],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Bound {
        Bound::parse(s).unwrap()
    }

    #[test]
    fn finds_the_nights_over_capacity_and_who_is_there() {
        let stays = [
            (d("2027-01-01"), d("2027-01-04")),
            (d("2027-01-02"), d("2027-01-03")),
            (d("2027-01-02"), d("2027-01-05")),
            (d("2027-01-04"), d("2027-01-06")),
        ];
        assert_eq!(
            crowds(&stays, 2),
            vec![Crowd {
                from: d("2027-01-02"),
                to: d("2027-01-03"),
                members: vec![0, 1, 2],
            }]
        );
        assert!(crowds(&stays, 3).is_empty());
        // Capacity 1: every shared night, split where the set changes.
        let c = crowds(&stays, 1);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(
            (c[2].from, c[2].to, &c[2].members[..]),
            (d("2027-01-04"), d("2027-01-05"), &[2, 3][..])
        );
    }

    #[test]
    fn checkout_day_and_empty_stays_hold_nothing() {
        let stays = [
            (d("2027-01-01"), d("2027-01-02")),
            (d("2027-01-02"), d("2027-01-03")),
            (d("2027-01-02"), d("2027-01-02")),
        ];
        assert!(crowds(&stays, 1).is_empty());
    }

    #[test]
    fn stretches_name_one_night_or_slot_alone() {
        assert_eq!(
            stretch(d("2027-01-01"), d("2027-01-02"), None),
            "night 2027-01-01"
        );
        assert_eq!(
            stretch(d("2027-01-01"), d("2027-01-03"), None),
            "nights 2027-01-01..2027-01-03"
        );
        let (a, b) = (d("2027-01-01T09:00:00Z"), d("2027-01-01T09:30:00Z"));
        assert_eq!(
            stretch(a, b, Some(30 * 60_000_000)),
            "slot 2027-01-01T09:00:00Z"
        );
        assert_eq!(
            stretch(a, b, None),
            "slots 2027-01-01T09:00:00Z..2027-01-01T09:30:00Z"
        );
    }
}
