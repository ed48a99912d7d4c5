//! What a run's findings cost the guests, counted by the checkers that found them and
//! worded once for people: the business headline ("17 room-nights were confirmed to two
//! guests and 3 to three; 43 guests were told they had a room they do not have") that
//! opens the report, the terminal summary, a matrix cell's tooltip and the markdown
//! summary, ahead of the technical line naming the checkers.
//!
//! Each checker fills the counts it knows in its result's [`Harm`] (no-double-booking
//! the oversold room-nights, told-is-true the phantom confirmations, ...); a report only
//! adds them up ([`Harm::of`]) and words them ([`headline`]), it never re-derives them
//! from anomalies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::result::{thousands, Results};

/// Room-nights confirmed to more guests than the room holds, for one (capacity, guests)
/// pair: "17 room-nights of capacity 1 were confirmed to 2 guests".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Oversold {
    /// How many guests the room holds a night.
    pub capacity: u32,
    /// How many guests held a confirmation for the night at once (the most seen).
    pub guests: u32,
    /// How many room-nights were so oversold.
    pub room_nights: u64,
}

/// The harm a checker's findings did, in counts of guests and room-nights. Every field
/// is filled by exactly one checker, so adding results up never counts a harm twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Harm {
    /// Room-nights sold over capacity, by capacity and guests (no-double-booking).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub oversold: Vec<Oversold>,
    /// Guests answered "booked" whose booking the database does not hold
    /// (confirmed-is-durable).
    #[serde(skip_serializing_if = "is_zero")]
    pub confirmed_lost: u64,
    /// Guests answered "not booked" who hold a booking (failed-is-absent).
    #[serde(skip_serializing_if = "is_zero")]
    pub failed_but_booked: u64,
    /// Room-nights the database itself holds more often than the room holds guests
    /// (db-state).
    #[serde(skip_serializing_if = "is_zero")]
    pub rows_overlapping: u64,
    /// Requests booked more than once (idempotency).
    #[serde(skip_serializing_if = "is_zero")]
    pub booked_twice: u64,
    /// Writes the database accepted under a stale fencing token (fencing).
    #[serde(skip_serializing_if = "is_zero")]
    pub stale_writes: u64,
    /// Guests told "confirmed" of a booking that never committed: phantom confirmations
    /// (told-is-true).
    #[serde(skip_serializing_if = "is_zero")]
    pub told_untrue: u64,
    /// Guests told "cancelled" whose booking still holds the room (told-is-true).
    #[serde(skip_serializing_if = "is_zero")]
    pub told_cancelled_falsely: u64,
    /// Guests told "confirmed" more than once (told-once).
    #[serde(skip_serializing_if = "is_zero")]
    pub told_twice: u64,
    /// Guests holding a booking who were never told (told-eventually).
    #[serde(skip_serializing_if = "is_zero")]
    pub never_told: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Harm {
    /// Whether nothing was harmed (or nothing was counted).
    pub fn is_empty(&self) -> bool {
        *self == Harm::default()
    }

    /// The harm of every checker's result added up (see [`Harm::add`]).
    pub fn of(results: &Results) -> Harm {
        let mut total = Harm::default();
        for c in &results.checks {
            total.add(&c.harm);
        }
        total
    }

    /// Adds `other`'s counts to these; oversold room-nights of the same capacity and
    /// guests are summed.
    pub fn add(&mut self, other: &Harm) {
        let mut oversold: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for o in self.oversold.iter().chain(&other.oversold) {
            *oversold.entry((o.capacity, o.guests)).or_default() += o.room_nights;
        }
        self.oversold = oversold
            .into_iter()
            .map(|((capacity, guests), room_nights)| Oversold {
                capacity,
                guests,
                room_nights,
            })
            .collect();
        self.confirmed_lost += other.confirmed_lost;
        self.failed_but_booked += other.failed_but_booked;
        self.rows_overlapping += other.rows_overlapping;
        self.booked_twice += other.booked_twice;
        self.stale_writes += other.stale_writes;
        self.told_untrue += other.told_untrue;
        self.told_cancelled_falsely += other.told_cancelled_falsely;
        self.told_twice += other.told_twice;
        self.never_told += other.never_told;
    }

    /// The room-nights sold over capacity counted by how many guests held each, from
    /// the most guests seen per room-night: `(room, night) -> guests` over `capacity`.
    pub fn oversold_from<K>(guests: &BTreeMap<K, u32>, capacity: impl Fn(&K) -> u32) -> Harm {
        let mut by: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for (k, &g) in guests {
            let c = capacity(k);
            if g > c {
                *by.entry((c, g)).or_default() += 1;
            }
        }
        Harm {
            oversold: by
                .into_iter()
                .map(|((capacity, guests), room_nights)| Oversold {
                    capacity,
                    guests,
                    room_nights,
                })
                .collect(),
            ..Harm::default()
        }
    }

    /// The harm in words, most serious first, each part opening with its count, or
    /// `None` when nothing was harmed:
    /// "17 room-nights were confirmed to two guests and 3 to three; 43 guests were told
    /// they had a room they do not have". Rooms of capacity 1 are "confirmed to two
    /// guests"; rooms sold N times a night are "sold over capacity".
    pub fn sentence(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.oversold_words());
        parts.extend(self.told_untrue_words());
        if self.told_cancelled_falsely > 0 {
            parts.push(format!(
                "{} told \"cancelled\" while their booking still holds the room",
                guests_were(self.told_cancelled_falsely)
            ));
        }
        if self.confirmed_lost > 0 {
            parts.push(format!(
                "{} answered \"booked\" for a booking the database does not hold",
                guests_were(self.confirmed_lost)
            ));
        }
        if self.failed_but_booked > 0 {
            parts.push(format!(
                "{} answered \"not booked\" yet hold a booking",
                guests_were(self.failed_but_booked)
            ));
        }
        // The database's own double rows mostly repeat the oversold room-nights; they
        // are said only when no confirmation shows them (e.g. a history without oks).
        if self.oversold.is_empty() && self.rows_overlapping > 0 {
            let n = self.rows_overlapping;
            parts.push(format!(
                "{} {} held over capacity in the database",
                plural(n, "room-night", "room-nights"),
                if n == 1 { "is" } else { "are" }
            ));
        }
        if self.booked_twice > 0 {
            parts.push(format!(
                "{} booked more than once",
                were(self.booked_twice, "request", "requests")
            ));
        }
        if self.told_twice > 0 {
            parts.push(format!(
                "{} told \"confirmed\" more than once",
                guests_were(self.told_twice)
            ));
        }
        if self.never_told > 0 {
            let n = self.never_told;
            parts.push(format!(
                "{} holding a booking {} never told",
                plural(n, "guest", "guests"),
                if n == 1 { "was" } else { "were" }
            ));
        }
        if self.stale_writes > 0 {
            parts.push(format!(
                "{} accepted under an expired lock",
                were(self.stale_writes, "write", "writes")
            ));
        }
        if parts.is_empty() {
            return None;
        }
        Some(parts.join("; "))
    }

    /// "43 guests were told they had a room they do not have" (phantom confirmations),
    /// also the report's count beside the notifications it received.
    pub fn told_untrue_words(&self) -> Option<String> {
        (self.told_untrue > 0).then(|| {
            format!(
                "{} told they had a room they do not have",
                guests_were(self.told_untrue)
            )
        })
    }

    /// "17 room-nights were confirmed to two guests and 3 to three" (capacity 1), or
    /// "17 room-nights were sold over capacity (up to 5 guests for 3)".
    fn oversold_words(&self) -> Option<String> {
        if self.oversold.is_empty() {
            return None;
        }
        if self.oversold.iter().all(|o| o.capacity == 1) {
            let mut by_guests: BTreeMap<u32, u64> = BTreeMap::new();
            for o in &self.oversold {
                *by_guests.entry(o.guests).or_default() += o.room_nights;
            }
            let words: Vec<String> = by_guests
                .iter()
                .enumerate()
                .map(|(i, (&g, &n))| match i {
                    0 => format!(
                        "{} confirmed to {} guests",
                        were(n, "room-night", "room-nights"),
                        number(g)
                    ),
                    _ => format!("{} to {}", thousands(n), number(g)),
                })
                .collect();
            return Some(and_list(&words));
        }
        let total: u64 = self.oversold.iter().map(|o| o.room_nights).sum();
        let worst = self
            .oversold
            .iter()
            .max_by_key(|o| (o.guests - o.capacity, o.guests))
            .expect("not empty");
        Some(format!(
            "{} sold over capacity (up to {} guests for {})",
            were(total, "room-night", "room-nights"),
            thousands(u64::from(worst.guests)),
            thousands(u64::from(worst.capacity))
        ))
    }
}

/// The business headline of a run: what its findings cost the guests, in words, or
/// `None` when its checkers counted no harm. The one wording the report, the terminal
/// summary, the matrix and the markdown summary share.
pub fn headline(results: &Results) -> Option<String> {
    Harm::of(results).sentence()
}

/// "1 room-night" / "17 room-nights".
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// "1 room-night was" / "17 room-nights were".
fn were(n: u64, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        plural(n, one, many),
        if n == 1 { "was" } else { "were" }
    )
}

fn guests_were(n: u64) -> String {
    were(n, "guest", "guests")
}

/// Small counts of guests as words ("two", "three"), larger ones as digits.
fn number(n: u32) -> String {
    const WORDS: [&str; 11] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    WORDS
        .get(n as usize)
        .map_or_else(|| thousands(u64::from(n)), |w| w.to_string())
}

/// "a", "a and b", "a, b and c".
fn and_list(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oversold(capacity: u32, guests: u32, room_nights: u64) -> Oversold {
        Oversold {
            capacity,
            guests,
            room_nights,
        }
    }

    #[test]
    fn capacity_one_counts_guests_per_room_night_in_words() {
        let h = Harm {
            oversold: vec![oversold(1, 2, 17), oversold(1, 3, 3)],
            told_untrue: 43,
            ..Harm::default()
        };
        assert_eq!(
            h.sentence().unwrap(),
            "17 room-nights were confirmed to two guests and 3 to three; 43 guests were told they had a room they do not have"
        );
        let one = Harm {
            oversold: vec![oversold(1, 2, 1)],
            ..Harm::default()
        };
        assert_eq!(
            one.sentence().unwrap(),
            "1 room-night was confirmed to two guests"
        );
        let many = Harm {
            oversold: vec![oversold(1, 2, 1), oversold(1, 4, 2), oversold(1, 12, 1)],
            ..Harm::default()
        };
        assert_eq!(
            many.sentence().unwrap(),
            "1 room-night was confirmed to two guests, 2 to four and 1 to 12"
        );
    }

    #[test]
    fn capacity_n_is_sold_over_capacity_with_the_worst_case() {
        let h = Harm {
            oversold: vec![oversold(3, 4, 15), oversold(3, 5, 2), oversold(1, 2, 1)],
            ..Harm::default()
        };
        assert_eq!(
            h.sentence().unwrap(),
            "18 room-nights were sold over capacity (up to 5 guests for 3)"
        );
    }

    #[test]
    fn every_harm_is_worded_and_nothing_is_none() {
        assert_eq!(Harm::default().sentence(), None);
        let h = Harm {
            confirmed_lost: 1,
            failed_but_booked: 2,
            rows_overlapping: 3,
            booked_twice: 1,
            stale_writes: 4,
            told_twice: 5,
            never_told: 1,
            ..Harm::default()
        };
        assert_eq!(
            h.sentence().unwrap(),
            "1 guest was answered \"booked\" for a booking the database does not hold; \
             2 guests were answered \"not booked\" yet hold a booking; \
             3 room-nights are held over capacity in the database; \
             1 request was booked more than once; \
             5 guests were told \"confirmed\" more than once; \
             1 guest holding a booking was never told; \
             4 writes were accepted under an expired lock"
        );
    }

    #[test]
    fn adding_sums_each_count_and_merges_oversold_rows() {
        let mut a = Harm {
            oversold: vec![oversold(1, 2, 5)],
            told_untrue: 1,
            ..Harm::default()
        };
        a.add(&Harm {
            oversold: vec![oversold(1, 2, 2), oversold(1, 3, 1)],
            told_untrue: 2,
            ..Harm::default()
        });
        assert_eq!(a.oversold, vec![oversold(1, 2, 7), oversold(1, 3, 1)]);
        assert_eq!(a.told_untrue, 3);
    }

    #[test]
    fn oversold_counts_only_room_nights_over_their_capacity() {
        let mut guests = BTreeMap::new();
        guests.insert((101u64, 1), 2u32);
        guests.insert((101, 2), 3);
        guests.insert((7, 1), 2);
        let h = Harm::oversold_from(&guests, |(room, _)| if *room == 7 { 2 } else { 1 });
        assert_eq!(h.oversold, vec![oversold(1, 2, 1), oversold(1, 3, 1)]);
    }
}
