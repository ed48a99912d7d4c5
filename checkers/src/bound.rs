//! Where a stay begins or ends: a calendar night, or an instant on a slot boundary.
//!
//! A hotel sells nights (`2026-12-20`), a clinic or meeting room sells time slots
//! (`2027-01-01T09:30:00Z`). The checkers only ever compare bounds and find the stretch
//! two stays share, so both units are one type and every checker works on either.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::date::Date;
use crate::instant::Instant;

/// One end of a half-open stay `[from, to)`.
///
/// A history uses one unit throughout; should a foreign one mix them, every night
/// orders before every instant, so a night stay and a slot stay never share anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bound {
    /// A calendar date: as check-in the first night, as check-out the day it is free.
    Night(Date),
    /// A UTC instant on a slot boundary.
    At(Instant),
}

/// Why a string is neither an ISO date nor an RFC 3339 instant. A string of a date's
/// length is told it is no date (the common case: a night that does not exist).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    /// Ten characters, so meant as a date, but not one.
    #[error("not an ISO date (YYYY-MM-DD): {0:?}")]
    Date(String),
    /// Neither form.
    #[error("not an ISO date (YYYY-MM-DD) nor an RFC 3339 instant: {0:?}")]
    Neither(String),
}

impl Bound {
    /// Parses a date (`2026-12-20`) or an RFC 3339 instant with any offset.
    pub fn parse(s: &str) -> Result<Bound, BoundError> {
        Bound::from_bytes(s.as_bytes()).ok_or_else(|| {
            if s.len() == 10 {
                BoundError::Date(s.to_string())
            } else {
                BoundError::Neither(s.to_string())
            }
        })
    }

    /// [`Bound::parse`] on raw bytes (for the history scanner).
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Bound> {
        if b.len() == 10 {
            Date::from_iso_bytes(b).map(Bound::Night)
        } else {
            Instant::from_bytes(b).map(Bound::At)
        }
    }

    /// A position on one integer axis: day numbers for nights, microseconds for
    /// instants. Only differences between bounds of one unit mean anything.
    pub fn key(self) -> i64 {
        match self {
            Bound::Night(d) => i64::from(d.0),
            Bound::At(t) => t.0,
        }
    }

    /// Whether this is a night (else a slot instant).
    pub fn is_night(self) -> bool {
        matches!(self, Bound::Night(_))
    }

    /// The date, when this is a night.
    pub fn date(self) -> Option<Date> {
        match self {
            Bound::Night(d) => Some(d),
            Bound::At(_) => None,
        }
    }
}

impl From<Date> for Bound {
    fn from(d: Date) -> Bound {
        Bound::Night(d)
    }
}

impl From<Instant> for Bound {
    fn from(t: Instant) -> Bound {
        Bound::At(t)
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Night(d) => d.fmt(f),
            Bound::At(t) => t.fmt(f),
        }
    }
}

impl std::str::FromStr for Bound {
    type Err = BoundError;
    fn from_str(s: &str) -> Result<Bound, BoundError> {
        Bound::parse(s)
    }
}

impl Serialize for Bound {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bound, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Bound;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO date YYYY-MM-DD or an RFC 3339 instant")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bound, E> {
                Bound::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants_parse_and_print_back() {
        for s in ["2026-12-20", "2027-01-01T09:30:00Z"] {
            assert_eq!(Bound::parse(s).unwrap().to_string(), s);
        }
        assert!(Bound::parse("2026-12-20").unwrap().is_night());
        assert!(Bound::parse("tomorrow").is_err());
        let night = Bound::parse("2099-01-01").unwrap();
        let slot = Bound::parse("1970-01-01T00:00:00Z").unwrap();
        assert!(night < slot, "nights order before instants");
    }
}
