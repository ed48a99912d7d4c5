//! Room names: what users book, an integer (`101`) or a string (`"DLX"`).
//!
//! Our designs number their rooms; a hotel's API sells room types by code, a clinic
//! books named chairs. A history keeps each room as its JSON type so that a number
//! written back into a request stays a number (`101` and `"101"` are different rooms).

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// One room (or room type, chair, meeting room): whatever a stay occupies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Room {
    /// A numbered room, written as a JSON number.
    Number(u64),
    /// A named room, written as a JSON string.
    Name(String),
}

impl Room {
    /// The room as a JSON value of its own type.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Room::Number(n) => serde_json::Value::from(*n),
            Room::Name(s) => serde_json::Value::from(s.as_str()),
        }
    }

    /// The room's number, when it has one.
    pub fn number(&self) -> Option<u64> {
        match self {
            Room::Number(n) => Some(*n),
            Room::Name(_) => None,
        }
    }
}

impl From<u64> for Room {
    fn from(n: u64) -> Room {
        Room::Number(n)
    }
}

impl From<&str> for Room {
    fn from(s: &str) -> Room {
        Room::Name(s.to_string())
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Room::Number(n) => n.fmt(f),
            Room::Name(s) => f.write_str(s),
        }
    }
}

impl Serialize for Room {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Room::Number(n) => s.serialize_u64(*n),
            Room::Name(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for Room {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Room, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Room;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a room: a non-negative integer or a non-empty string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Room, E> {
                Ok(Room::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Room, E> {
                u64::try_from(v)
                    .map(Room::Number)
                    .map_err(|_| E::custom(format!("a room number must not be negative, got {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Room, E> {
                if v.is_empty() {
                    return Err(E::custom("a room name must not be empty"));
                }
                Ok(Room::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_keep_their_json_type() {
        for s in ["101", "\"DLX\"", "\"101\""] {
            let r: Room = serde_json::from_str(s).unwrap();
            assert_eq!(serde_json::to_string(&r).unwrap(), s);
        }
        assert_ne!(Room::Number(101), Room::Name("101".into()));
        assert!(serde_json::from_str::<Room>("-1").is_err());
        assert!(serde_json::from_str::<Room>("\"\"").is_err());
        assert!(serde_json::from_str::<Room>("1.5").is_err());
    }
}
