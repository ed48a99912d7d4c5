//! Reading a mapping file (`--api FILE`, TOML) and refusing a bad one before any server
//! starts: every error names the key and, where TOML gives it, the line.

use std::collections::HashMap;

use checkers::Room;
use serde_json::{Map, Value};

use super::super::notify::NotifyMap;
use super::template::{BodyTemplate, Section, Template};
use super::{ApiMapping, Call, Condition, Inventory, Pointer, ReadCall, Request, Unit};

/// Why a mapping file cannot be used. Shown as `FILE: key `book.id` (line 12): ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
pub struct MappingError {
    /// The dotted key at fault (`book.id`), or the section.
    pub key: String,
    /// Its line in the file, when TOML gives one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// The TOML as JSON values, with the line of every dotted key.
struct Doc {
    root: Map<String, Value>,
    lines: HashMap<String, usize>,
}

impl Doc {
    fn parse(text: &str) -> Result<Doc, MappingError> {
        let doc = toml_edit::Document::parse(text.to_string()).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            MappingError {
                key: "(file)".into(),
                line,
                message: format!("not TOML: {}", e.message()),
            }
        })?;
        let mut lines = HashMap::new();
        let root = table_json(doc.as_table(), "", text, &mut lines);
        Ok(Doc { root, lines })
    }

    fn err(&self, key: &str, message: impl Into<String>) -> MappingError {
        MappingError {
            key: key.to_string(),
            line: self.lines.get(key).copied(),
            message: message.into(),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn table_json(
    t: &dyn toml_edit::TableLike,
    prefix: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, item) in t.iter() {
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        let span = t
            .get_key_value(k)
            .and_then(|(key, _)| key.span())
            .or_else(|| item.span());
        if let Some(s) = span {
            lines.insert(path.clone(), line_of(text, s.start));
        }
        out.insert(k.to_string(), item_json(item, &path, text, lines));
    }
    out
}

fn item_json(
    item: &toml_edit::Item,
    path: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) -> Value {
    if let Some(t) = item.as_table_like() {
        return Value::Object(table_json(t, path, text, lines));
    }
    match item.as_value() {
        Some(v) => value_json(v, path, text, lines),
        None => Value::Null,
    }
}

fn value_json(
    v: &toml_edit::Value,
    path: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) -> Value {
    use toml_edit::Value as T;
    match v {
        T::String(s) => Value::String(s.value().clone()),
        T::Integer(i) => Value::from(*i.value()),
        T::Float(f) => serde_json::Number::from_f64(*f.value()).map_or(Value::Null, Value::Number),
        T::Boolean(b) => Value::Bool(*b.value()),
        T::Datetime(d) => Value::String(d.value().to_string()),
        T::Array(a) => Value::Array(a.iter().map(|x| value_json(x, path, text, lines)).collect()),
        T::InlineTable(t) => Value::Object(table_json(t, path, text, lines)),
    }
}

/// Reads and validates a mapping. `env` looks up overbook's own environment for
/// `{env.NAME}`.
pub(crate) fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ApiMapping, MappingError> {
    let doc = Doc::parse(text)?;
    known_keys(
        &doc,
        "",
        &doc.root,
        &["service", "inventory", "book", "cancel", "read", "notify"],
    )?;
    let section = |name: &str| -> Result<Option<&Map<String, Value>>, MappingError> {
        match doc.root.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(doc.err(name, "must be a table")),
        }
    };
    let empty = Map::new();
    let service = section("service")?.unwrap_or(&empty);
    known_keys(&doc, "service", service, &["health", "headers"])?;
    let health = match service.get("health") {
        None => Call::get("/health"),
        Some(_) => call(&doc, "service.health", service, Section::NoId, env)?.0,
    };
    let headers = headers(&doc, "service.headers", service, Section::NoId, env)?;
    let inventory = inventory(&doc, section("inventory")?.unwrap_or(&empty))?;
    let book_t =
        section("book")?.ok_or_else(|| doc.err("book", "the [book] section is missing"))?;
    let book = request(&doc, "book", book_t, Section::NoId, env, &[200, 201])?;
    let book_id = pointer(&doc, "book.id", book_t.get("id"))?.ok_or_else(|| {
        doc.err(
            "book.id",
            "missing: the JSON pointer to the id in an ok answer",
        )
    })?;
    let confirmed = condition(&doc, "book.confirmed", book_t.get("confirmed"))?;
    let cancel = match section("cancel")? {
        Some(t) => Some(request(
            &doc,
            "cancel",
            t,
            Section::Cancel,
            env,
            &[200, 204],
        )?),
        None => None,
    };
    let read_t =
        section("read")?.ok_or_else(|| doc.err("read", "the [read] section is missing"))?;
    let read = read_call(&doc, read_t, env)?;
    let notify = match section("notify")? {
        Some(t) => Some(notify(&doc, t)?),
        None => None,
    };
    Ok(ApiMapping {
        health,
        headers,
        inventory,
        book,
        book_id,
        confirmed,
        cancel,
        read,
        notify,
    })
}

/// `[notify]`: `kind` (a pointer) with the values meaning `confirmed` (and `cancelled`),
/// and pointers to the booking and/or request, and to the message id.
fn notify(doc: &Doc, t: &Map<String, Value>) -> Result<NotifyMap, MappingError> {
    known_keys(
        doc,
        "notify",
        t,
        &["kind", "confirmed", "cancelled", "booking", "request", "id"],
    )?;
    let kind = pointer(doc, "notify.kind", t.get("kind"))?.ok_or_else(|| {
        doc.err(
            "notify.kind",
            "missing: the JSON pointer to what the message says (e.g. \"/event\")",
        )
    })?;
    let values = |key: &str, required: bool| -> Result<Vec<Value>, MappingError> {
        match t.get(key) {
            Some(Value::Array(items)) if !items.is_empty() => Ok(items.clone()),
            None if !required => Ok(Vec::new()),
            _ => Err(doc.err(
                &format!("notify.{key}"),
                "must be a non-empty list of the `kind` values that mean it",
            )),
        }
    };
    let confirmed = values("confirmed", true)?;
    let cancelled = values("cancelled", false)?;
    let booking = pointer(doc, "notify.booking", t.get("booking"))?;
    let request = pointer(doc, "notify.request", t.get("request"))?;
    if booking.is_none() && request.is_none() {
        return Err(doc.err(
            "notify",
            "needs `booking` or `request` (or both): the pointer to what the message is about",
        ));
    }
    let id = pointer(doc, "notify.id", t.get("id"))?;
    Ok(NotifyMap {
        kind: kind.0,
        confirmed,
        cancelled,
        booking: booking.map(|p| p.0),
        request: request.map(|p| p.0),
        id: id.map(|p| p.0),
    })
}

fn known_keys(
    doc: &Doc,
    section: &str,
    table: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), MappingError> {
    for k in table.keys() {
        if !allowed.contains(&k.as_str()) {
            let key = if section.is_empty() {
                k.clone()
            } else {
                format!("{section}.{k}")
            };
            return Err(doc.err(
                &key,
                format!("unknown key (expected one of: {})", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

/// `"METHOD /path?query"` with placeholders; the path must start with `/`.
fn call(
    doc: &Doc,
    key: &str,
    table: &Map<String, Value>,
    section: Section,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Call, String), MappingError> {
    let field = key.rsplit('.').next().unwrap_or(key);
    let text = match table.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(doc.err(key, "must be a string like \"POST /bookings\"")),
        None => return Err(doc.err(key, "missing (e.g. \"POST /bookings\")")),
    };
    let (method, path) = text
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| doc.err(key, format!("{text:?} is not \"METHOD /path\"")))?;
    let method = hyper::Method::from_bytes(method.as_bytes())
        .map_err(|_| doc.err(key, format!("{method:?} is not an HTTP method")))?;
    let path = path.trim();
    if !path.starts_with('/') {
        return Err(doc.err(key, format!("the path {path:?} must start with `/`")));
    }
    let template = Template::parse(path, section, env).map_err(|e| doc.err(key, e))?;
    Ok((
        Call {
            method,
            path: template,
        },
        text,
    ))
}

fn headers(
    doc: &Doc,
    key: &str,
    table: &Map<String, Value>,
    section: Section,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Template)>, MappingError> {
    let Some(v) = table.get("headers") else {
        return Ok(Vec::new());
    };
    let Value::Object(m) = v else {
        return Err(doc.err(key, "must be a table of header names to values"));
    };
    m.iter()
        .map(|(name, v)| {
            let k = format!("{key}.{name}");
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(doc.err(&k, format!("{name:?} is not a header name")));
            }
            let Value::String(text) = v else {
                return Err(doc.err(&k, "a header value must be a string"));
            };
            let t = Template::parse(text, section, env).map_err(|e| doc.err(&k, e))?;
            Ok((name.clone(), t))
        })
        .collect()
}

fn statuses(doc: &Doc, key: &str, v: Option<&Value>) -> Result<Option<Vec<u16>>, MappingError> {
    let Some(v) = v else { return Ok(None) };
    let Value::Array(items) = v else {
        return Err(doc.err(key, "must be a list of HTTP statuses, e.g. [200, 201]"));
    };
    items
        .iter()
        .map(|i| {
            i.as_u64()
                .filter(|s| (100..=599).contains(s))
                .map(|s| s as u16)
                .ok_or_else(|| doc.err(key, format!("{i} is not an HTTP status (100-599)")))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

fn pointer(doc: &Doc, key: &str, v: Option<&Value>) -> Result<Option<Pointer>, MappingError> {
    match v {
        None => Ok(None),
        Some(Value::String(p)) if p.is_empty() || p.starts_with('/') => Ok(Some(Pointer(p.clone()))),
        Some(Value::String(p)) => Err(doc.err(
            key,
            format!("the JSON pointer {p:?} must start with `/` (RFC 6901), or be \"\" for the whole value"),
        )),
        Some(_) => Err(doc.err(key, "must be a JSON pointer string such as \"/id\"")),
    }
}

fn condition(doc: &Doc, key: &str, v: Option<&Value>) -> Result<Option<Condition>, MappingError> {
    let Some(v) = v else { return Ok(None) };
    let Value::Object(m) = v else {
        return Err(doc.err(key, "must be { at = \"/pointer\", is = [values] }"));
    };
    known_keys(doc, key, m, &["at", "is"])?;
    let at = pointer(doc, &format!("{key}.at"), m.get("at"))?
        .ok_or_else(|| doc.err(key, "needs `at`, the JSON pointer to the value"))?;
    let is = match m.get("is") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        _ => return Err(doc.err(key, "needs `is`, a non-empty list of accepted values")),
    };
    Ok(Some(Condition { at, is }))
}

fn request(
    doc: &Doc,
    name: &str,
    t: &Map<String, Value>,
    section: Section,
    env: &dyn Fn(&str) -> Option<String>,
    default_ok: &[u16],
) -> Result<Request, MappingError> {
    let allowed: &[&str] = if name == "book" {
        &["call", "headers", "body", "ok", "fail", "id", "confirmed"]
    } else {
        &["call", "headers", "body", "ok", "fail"]
    };
    known_keys(doc, name, t, allowed)?;
    let (call, _) = call(doc, &format!("{name}.call"), t, section, env)?;
    let headers = headers(doc, &format!("{name}.headers"), t, section, env)?;
    let body = match t.get("body") {
        None => None,
        Some(Value::String(b)) => Some(
            BodyTemplate::parse(b, section, env)
                .map_err(|e| doc.err(&format!("{name}.body"), e))?,
        ),
        Some(_) => return Err(doc.err(&format!("{name}.body"), "must be a string of JSON")),
    };
    let ok =
        statuses(doc, &format!("{name}.ok"), t.get("ok"))?.unwrap_or_else(|| default_ok.to_vec());
    let fail = statuses(doc, &format!("{name}.fail"), t.get("fail"))?;
    Ok(Request {
        call,
        headers,
        body,
        ok,
        fail,
    })
}

fn read_call(
    doc: &Doc,
    t: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ReadCall, MappingError> {
    known_keys(
        doc,
        "read",
        t,
        &[
            "call", "headers", "list", "room", "from", "to", "request", "keep",
        ],
    )?;
    let (call, _) = call(doc, "read.call", t, Section::NoId, env)?;
    let headers = headers(doc, "read.headers", t, Section::NoId, env)?;
    let need = |k: &str| -> Result<Pointer, MappingError> {
        let key = format!("read.{k}");
        pointer(doc, &key, t.get(k))?
            .ok_or_else(|| doc.err(&key, "missing: a JSON pointer into each booking"))
    };
    Ok(ReadCall {
        call,
        headers,
        list: pointer(doc, "read.list", t.get("list"))?.unwrap_or(Pointer(String::new())),
        room: need("room")?,
        from: need("from")?,
        to: need("to")?,
        request: pointer(doc, "read.request", t.get("request"))?,
        keep: condition(doc, "read.keep", t.get("keep"))?,
    })
}

fn inventory(doc: &Doc, t: &Map<String, Value>) -> Result<Inventory, MappingError> {
    known_keys(doc, "inventory", t, &["rooms", "capacity", "unit"])?;
    let rooms: Vec<Room> = match t.get("rooms") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Number(n) if n.as_u64().is_some() => {
                    Ok(Room::Number(n.as_u64().unwrap_or(0)))
                }
                Value::String(s) if !s.is_empty() => Ok(Room::Name(s.clone())),
                other => Err(doc.err(
                    "inventory.rooms",
                    format!("{other} is not a room (a non-negative integer or a non-empty string)"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(doc.err("inventory.rooms", "must be a list of rooms")),
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = rooms.iter().find(|r| !seen.insert(*r)) {
        return Err(doc.err("inventory.rooms", format!("room {dup} is listed twice")));
    }
    let cap = |key: &str, v: &Value| -> Result<u64, MappingError> {
        match v.as_u64() {
            Some(0) => Err(doc.err(key, "a capacity of 0 sells nothing; it must be at least 1")),
            Some(n) => Ok(n),
            None => Err(doc.err(key, format!("{v} is not a capacity (a positive integer)"))),
        }
    };
    let (default, per_room) = match t.get("capacity") {
        None => (1, Vec::new()),
        Some(Value::Object(m)) => {
            let mut per = Vec::new();
            for (name, v) in m {
                let key = format!("inventory.capacity.{name}");
                let room = rooms
                    .iter()
                    .find(|r| r.to_string() == *name)
                    .ok_or_else(|| {
                        doc.err(&key, format!("room {name:?} is not in inventory.rooms"))
                    })?;
                per.push((room.clone(), cap(&key, v)?));
            }
            (1, per)
        }
        Some(v) => (cap("inventory.capacity", v)?, Vec::new()),
    };
    let unit = match t.get("unit") {
        None => Unit::Night,
        Some(Value::String(s)) if s == "night" => Unit::Night,
        Some(Value::String(s)) => {
            let minutes = checkers::header::slot_minutes(s).ok_or_else(|| {
                doc.err(
                    "inventory.unit",
                    format!("{s:?} is not \"night\" nor a slot length such as \"30m\" or \"1h\""),
                )
            })?;
            if 1440 % minutes != 0 {
                return Err(doc.err(
                    "inventory.unit",
                    format!("a slot of {s} does not divide a day (1440 minutes) into whole slots"),
                ));
            }
            Unit::Slot(minutes)
        }
        Some(_) => {
            return Err(doc.err(
                "inventory.unit",
                "must be \"night\" or a slot length string",
            ))
        }
    };
    Ok(Inventory {
        rooms,
        capacity: default,
        room_capacity: per_room,
        unit,
    })
}
