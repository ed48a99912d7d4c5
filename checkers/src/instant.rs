//! Instants of time slots: RFC 3339 timestamps as microseconds since the Unix epoch.
//!
//! Stays sold by the slot (a clinic's 30-minute appointments, a meeting room by the
//! hour) begin and end at instants rather than on calendar nights. A history writes them
//! in UTC (`2027-01-01T09:30:00Z`); a service's read may answer with any RFC 3339 offset
//! (`2027-01-01T10:30:00+01:00` is the same instant), so parsing normalises to UTC and
//! two spellings of one instant compare equal.

use std::fmt;

use crate::date::Date;

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// A UTC instant, in microseconds since 1970-01-01T00:00:00Z. Microseconds keep the
/// range of four-digit years (an `i64` of them spans ±292,000 years) while holding any
/// fraction a service is likely to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub i64);

/// Why a string is not an RFC 3339 instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 instant (YYYY-MM-DDTHH:MM:SSZ or with an offset): {0:?}")]
pub struct InstantError(pub String);

impl Instant {
    /// Parses an RFC 3339 date-time (`T`, `t` or a space between date and time; `Z`,
    /// `z` or `±HH:MM` offset; an optional fraction of a second, kept to microseconds).
    pub fn parse(s: &str) -> Result<Instant, InstantError> {
        Instant::from_bytes(s.as_bytes()).ok_or_else(|| InstantError(s.to_string()))
    }

    /// [`Instant::parse`] on raw bytes (for the history scanner).
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Instant> {
        if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let date = Date::from_iso_bytes(&b[..10])?;
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            b.get(r)?.iter().try_fold(0i64, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
            })
        };
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        // 60 is a leap second, which RFC 3339 allows; it reads as the next minute's 0.
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        let mut i = 19;
        let mut micros = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 6 {
                    micros = micros * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..6 {
                micros *= 10;
            }
        }
        let offset_s = match b.get(i..)? {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let d = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
                let (oh, om) = (d(h1)? * 10 + d(h2)?, d(m1)? * 10 + d(m2)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'-' {
                    -o
                } else {
                    o
                }
            }
            _ => return None,
        };
        let secs = i64::from(date.0) * 86_400 + h * 3600 + m * 60 + sec - offset_s;
        Some(Instant(secs * 1_000_000 + micros))
    }

    /// The instant `minutes` later (negative: earlier).
    pub fn add_minutes(self, minutes: i64) -> Instant {
        Instant(self.0 + minutes * 60_000_000)
    }

    /// Midnight UTC starting `date`.
    pub fn midnight(date: Date) -> Instant {
        Instant(i64::from(date.0) * DAY_US)
    }
}

impl fmt::Display for Instant {
    /// RFC 3339 in UTC, `Z`, with a fraction only when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = self.0.div_euclid(DAY_US);
        let rest = self.0.rem_euclid(DAY_US);
        let (y, mo, d) = Date(day as i32).ymd();
        let secs = rest / 1_000_000;
        let micros = rest % 1_000_000;
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )?;
        if micros != 0 {
            let frac = format!("{micros:06}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_normalise_to_utc() {
        let z = Instant::parse("2027-01-01T09:30:00Z").unwrap();
        assert_eq!(Instant::parse("2027-01-01T10:30:00+01:00").unwrap(), z);
        assert_eq!(Instant::parse("2027-01-01t04:30:00-05:00").unwrap(), z);
        assert_eq!(Instant::parse("2027-01-01 09:30:00.000z").unwrap(), z);
        assert_eq!(z.to_string(), "2027-01-01T09:30:00Z");
        assert_eq!(
            Instant::parse("2026-12-31T23:30:00-01:00")
                .unwrap()
                .to_string(),
            "2027-01-01T00:30:00Z"
        );
        let frac = Instant::parse("1969-12-31T23:59:59.25Z").unwrap();
        assert_eq!(frac.0, -750_000);
        assert_eq!(frac.to_string(), "1969-12-31T23:59:59.25Z");
        assert_eq!(z.add_minutes(30).to_string(), "2027-01-01T10:00:00Z");
    }

    #[test]
    fn rejects_what_is_not_rfc_3339() {
        for s in [
            "2027-01-01",
            "2027-01-01T09:30:00",
            "2027-01-01T24:00:00Z",
            "2027-01-01T09:30Z",
            "2027-01-01T09:30:00+0100",
            "2027-02-30T09:30:00Z",
            "2027-01-01T09:30:00.Z",
            "2027-01-01T09:30:00Zjunk",
        ] {
            assert!(Instant::parse(s).is_err(), "{s} should be rejected");
        }
    }
}
