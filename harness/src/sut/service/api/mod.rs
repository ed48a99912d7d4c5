//! `--api FILE`: testing a booking service as it is, through a mapping file (the
//! contract of docs/api.md), instead of the small API of docs/service.md.
//!
//! - `file`: the TOML read and validated before any server starts (exit 2 naming the
//!   key and line).
//! - `template`: placeholders and how each is filled in paths, headers and bodies.
//! - [`probe`]: `overbook api check`, one booking through every call, printed.
//! - `outcome`: an answer to ok / fail / info by the mapping's statuses, pointers and
//!   conditions; the read's rows.
//!
//! The generator still thinks in numbered rooms and nights; [`ApiMapping::room`] and
//! [`ApiMapping::bound`] name them as the service does (room `101` is the first room of
//! `inventory.rooms`, night `d` is the `d`-th slot under a slot unit), and the history
//! records the service's names, so `overbook check` and the report speak them too.

mod file;
pub(crate) mod outcome;
pub mod probe;
pub(crate) mod template;

use std::path::Path;

use checkers::{Bound, Date, Instant, OpValue, Room, RoomCapacity, RunHeader};
use serde_json::Value;
use workloads::{BookRequest, Request as UserRequest};

use super::http::{Answer, Meaning};
use super::replica::HealthProbe;
use super::trace::IdTable;

pub use file::MappingError;
use template::{BodyTemplate, Template};

/// A validated mapping file.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiMapping {
    /// When a replica is ready (`[service] health`, default `GET /health`).
    pub(crate) health: Call,
    /// Sent with every call (`[service] headers`).
    pub(crate) headers: Vec<(String, Template)>,
    /// What the users book.
    pub inventory: Inventory,
    /// `[book]`.
    pub(crate) book: Request,
    /// Where an ok book answer has the booking's id.
    pub(crate) book_id: Pointer,
    /// `[book] confirmed`: an ok status is only `ok` when this holds.
    pub(crate) confirmed: Option<Condition>,
    /// `[cancel]`, when the service can cancel (else the users never cancel).
    pub(crate) cancel: Option<Request>,
    /// `[read]`.
    pub(crate) read: ReadCall,
    /// `[notify]`: what the service POSTs to `OVERBOOK_NOTIFY_URL`, in its own shape.
    pub(crate) notify: Option<super::notify::NotifyMap>,
}

/// A method and a path template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) method: hyper::Method,
    pub(crate) path: Template,
}

impl Call {
    fn get(path: &str) -> Call {
        Call {
            method: hyper::Method::GET,
            path: Template::parse(path, template::Section::NoId, &|_| None)
                .expect("a literal path has no placeholder"),
        }
    }
}

/// `[book]` or `[cancel]`: the call, its headers and body, and its statuses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub(crate) call: Call,
    pub(crate) headers: Vec<(String, Template)>,
    pub(crate) body: Option<BodyTemplate>,
    pub(crate) ok: Vec<u16>,
    /// `None`: every 4xx.
    pub(crate) fail: Option<Vec<u16>>,
}

/// `[read]`: where the bookings are in the answer and where each field is in a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadCall {
    pub(crate) call: Call,
    pub(crate) headers: Vec<(String, Template)>,
    pub(crate) list: Pointer,
    pub(crate) room: Pointer,
    pub(crate) from: Pointer,
    pub(crate) to: Pointer,
    pub(crate) request: Option<Pointer>,
    pub(crate) keep: Option<Condition>,
}

/// A JSON pointer (RFC 6901): `""` is the whole value, else it starts with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer(pub(crate) String);

impl Pointer {
    /// The value it points at in `v`.
    pub(crate) fn find<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.pointer(&self.0)
    }
}

impl std::fmt::Display for Pointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// `{ at = "/status", is = ["CONFIRMED"] }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    pub(crate) at: Pointer,
    pub(crate) is: Vec<Value>,
}

impl Condition {
    /// Whether the value at `at` is one of `is` (a missing value is not).
    pub(crate) fn holds(&self, v: &Value) -> bool {
        self.at.find(v).is_some_and(|x| self.is.contains(x))
    }
}

/// `[inventory]`: the rooms, their capacities and the unit sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The rooms users book; empty: numbered rooms as `--rooms` says.
    pub rooms: Vec<Room>,
    /// The capacity of every room not in `room_capacity`.
    pub capacity: u64,
    /// Rooms with their own capacity.
    pub room_capacity: Vec<(Room, u64)>,
    /// Nights or slots.
    pub unit: Unit,
}

/// What one stay counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Calendar nights (ISO dates).
    Night,
    /// Time slots of this many minutes (RFC 3339 instants).
    Slot(i64),
}

impl ApiMapping {
    /// Reads and validates `path` against overbook's own environment.
    pub fn load(path: &Path) -> Result<ApiMapping, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError {
            key: "(file)".into(),
            line: None,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        ApiMapping::parse(&text, &|name| std::env::var(name).ok())
    }

    /// Validates a mapping's text; `env` resolves `{env.NAME}`.
    pub fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ApiMapping, MappingError> {
        file::parse(text, env)
    }

    /// How a replica's readiness is asked: `[service] health` with the service's
    /// headers, any 2xx.
    pub(crate) fn health_probe(&self) -> HealthProbe {
        let fill = template::Fill::default();
        HealthProbe {
            method: self.health.method.clone(),
            path: self.health.path.render_path(&fill),
            headers: render_headers(&self.headers, &[], &fill),
            any_2xx: true,
        }
    }

    /// The history's value for a booking's invocation, in the service's names.
    pub fn book_value(&self, b: &BookRequest) -> OpValue {
        OpValue {
            room: Some(self.room(b.room)),
            from: Some(self.bound(b.from)),
            to: Some(self.bound(b.to)),
            request: Some(b.request.clone()),
            ..OpValue::default()
        }
    }

    /// What fills the placeholders of `request` for simulated user `user`.
    fn fill(&self, request: &UserRequest, user: u64, ids: &IdTable) -> template::Fill {
        match request {
            UserRequest::Book(b) => template::Fill {
                room: self.room(b.room).to_json(),
                from: self.bound(b.from).to_string(),
                to: self.bound(b.to).to_string(),
                request: b.request.clone(),
                user,
                id: Value::Null,
            },
            UserRequest::Cancel { booking, request } => template::Fill {
                request: request.clone(),
                user,
                id: ids.id(*booking),
                ..template::Fill::default()
            },
        }
    }

    /// The HTTP request for a user's book or cancel, by the mapping.
    pub(crate) fn http_request(
        &self,
        request: &UserRequest,
        user: u64,
        ids: &IdTable,
    ) -> HttpRequest {
        let fill = self.fill(request, user, ids);
        let r = match request {
            UserRequest::Book(_) => &self.book,
            // The generator never cancels without [cancel] (see `can_cancel`); should it,
            // the book call is not sent: an empty request path fails to build and the
            // op is recorded as not sent.
            UserRequest::Cancel { .. } => match &self.cancel {
                Some(c) => c,
                None => {
                    return (hyper::Method::POST, String::new(), Vec::new(), None);
                }
            },
        };
        (
            r.call.method.clone(),
            r.call.path.render_path(&fill),
            render_headers(&self.headers, &r.headers, &fill),
            r.body
                .as_ref()
                .map(|b| b.render(&fill).to_string().into_bytes()),
        )
    }

    /// The `[read]` request.
    pub(crate) fn read_request(&self) -> HttpRequest {
        let fill = template::Fill::default();
        let r = &self.read;
        (
            r.call.method.clone(),
            r.call.path.render_path(&fill),
            render_headers(&self.headers, &r.headers, &fill),
            None,
        )
    }

    /// What an answer to `request` means, by the mapping.
    pub(crate) fn meaning(&self, request: &UserRequest, answer: &Answer) -> Meaning {
        match (request, &self.cancel) {
            (UserRequest::Book(_), _) => outcome::book_meaning(self, answer),
            (UserRequest::Cancel { .. }, Some(c)) => outcome::cancel_meaning(c, answer),
            (UserRequest::Cancel { .. }, None) => {
                Meaning::Fail("the mapping has no [cancel]".into())
            }
        }
    }

    /// How many rooms the users book: the inventory's, else `None` (`--rooms`).
    pub fn rooms(&self) -> Option<u64> {
        (!self.inventory.rooms.is_empty()).then_some(self.inventory.rooms.len() as u64)
    }

    /// Whether the users may cancel (the mapping has `[cancel]`).
    pub fn can_cancel(&self) -> bool {
        self.cancel.is_some()
    }

    /// The service's name for the generator's room `n` (101 is the first room).
    pub fn room(&self, n: u64) -> Room {
        let rooms = &self.inventory.rooms;
        if rooms.is_empty() {
            return Room::Number(n);
        }
        let i = n.saturating_sub(workloads::FIRST_ROOM) % rooms.len() as u64;
        rooms[i as usize].clone()
    }

    /// The service's bound for the generator's night `d`: the date, or under a slot
    /// unit the `d`-th slot counted from midnight UTC of the default window start.
    pub fn bound(&self, d: Date) -> Bound {
        match self.inventory.unit {
            Unit::Night => Bound::Night(d),
            Unit::Slot(minutes) => {
                let origin = workloads::default_window_start();
                let k = i64::from(d.0 - origin.0);
                Bound::At(Instant::midnight(origin).add_minutes(k * minutes))
            }
        }
    }

    /// The capacity of the generator's busiest room: how many users a night can take.
    pub fn max_capacity(&self) -> u64 {
        self.inventory
            .room_capacity
            .iter()
            .map(|(_, c)| *c)
            .chain([self.inventory.capacity])
            .max()
            .unwrap_or(1)
    }

    /// Adds the capacities and the unit to a run header, so `overbook check` of the
    /// history alone judges the same.
    pub fn annotate(&self, header: &mut RunHeader) {
        let inv = &self.inventory;
        header.capacity = (inv.capacity != 1).then_some(inv.capacity);
        header.room_capacity = inv
            .room_capacity
            .iter()
            .filter(|(_, c)| *c != inv.capacity)
            .map(|(room, capacity)| RoomCapacity {
                room: room.clone(),
                capacity: *capacity,
            })
            .collect();
        header.unit = match inv.unit {
            Unit::Night => None,
            Unit::Slot(m) if m % 60 == 0 => Some(format!("{}h", m / 60)),
            Unit::Slot(m) => Some(format!("{m}m")),
        };
    }
}

/// Method, path, headers and body of one HTTP request.
pub(crate) type HttpRequest = (
    hyper::Method,
    String,
    Vec<(String, String)>,
    Option<Vec<u8>>,
);

/// `[service]` headers then the section's own (which win on the same name).
fn render_headers(
    service: &[(String, Template)],
    own: &[(String, Template)],
    fill: &template::Fill,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, t) in service.iter().chain(own) {
        out.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        out.push((name.clone(), t.render_text(fill)));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
