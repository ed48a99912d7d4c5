//! Placeholders in a mapping's calls, headers and bodies, and how each is filled.
//!
//! A mapping writes what a request looks like with `{room}`, `{from}`, `{to}`,
//! `{request}`, `{user}`, `{id}` (cancel only) and `{env.NAME}` in it. Where the text
//! goes decides the escaping: a path segment is percent-encoded, a header value is
//! plain text, and in a JSON body a string that is exactly one placeholder becomes the
//! value with its natural JSON type (an integer room stays a number) while a
//! placeholder inside a longer string is replaced as text (and the JSON writer escapes
//! it). A name that is no placeholder, `{id}` outside `[cancel]`, or an `{env.NAME}`
//! missing from overbook's environment is refused when the mapping is read.

use serde_json::Value;

/// One placeholder a template may contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The room (or room type) booked.
    Room,
    /// Check-in date or first slot's start.
    From,
    /// Check-out date or last slot's end.
    To,
    /// The request's idempotency key (a retry reuses it).
    Request,
    /// The simulated user's number.
    User,
    /// The id the book answer gave, verbatim (cancel only).
    Id,
}

/// A piece of a template: literal text, or a placeholder to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Slot),
}

/// Text with placeholders, parsed once when the mapping is read. `{env.NAME}` is
/// resolved then (it does not change during a run), so a template holds only text and
/// per-request slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(Vec<Piece>);

/// What fills the slots of one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fill {
    /// `{room}`, as its JSON value (number or string).
    pub(crate) room: Value,
    /// `{from}`, `{to}` as text (dates or RFC 3339 instants).
    pub(crate) from: String,
    pub(crate) to: String,
    /// `{request}`.
    pub(crate) request: String,
    /// `{user}`.
    pub(crate) user: u64,
    /// `{id}`: the book answer's id, verbatim (`Value::Null` when none).
    pub(crate) id: Value,
}

/// Where a template may be used, for what `{id}` means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// `[service]`, `[book]`, `[read]`: no `{id}`.
    NoId,
    /// `[cancel]`: `{id}` allowed.
    Cancel,
}

impl Template {
    /// Parses `text`, resolving `{env.NAME}` through `env`. The error says what is wrong
    /// (the caller names the key).
    pub(crate) fn parse(
        text: &str,
        section: Section,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text_buf = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            text_buf.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                text_buf.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let name = &after[..close];
            // Braces around something that is not a name (`{}`, `{"a": 1}` inside a
            // string) are text: only `{word}` and `{env.WORD}` are placeholders.
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
            if !is_name {
                text_buf.push('{');
                rest = after;
                continue;
            }
            let slot = match name {
                "room" => Some(Slot::Room),
                "from" => Some(Slot::From),
                "to" => Some(Slot::To),
                "request" => Some(Slot::Request),
                "user" => Some(Slot::User),
                "id" if section == Section::Cancel => Some(Slot::Id),
                "id" => {
                    return Err(
                        "`{id}` is only known in [cancel] (the id the book answer gave)".into(),
                    )
                }
                n if n.starts_with("env.") && n.len() > 4 => {
                    let var = &n[4..];
                    let v = env(var).ok_or_else(|| {
                        format!("`{{env.{var}}}`: {var} is not set in overbook's environment")
                    })?;
                    text_buf.push_str(&v);
                    None
                }
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}` (known: {{room}} {{from}} {{to}} {{request}} {{user}} {{id}} {{env.NAME}})"
                    ))
                }
            };
            if let Some(slot) = slot {
                if !text_buf.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text_buf)));
                }
                pieces.push(Piece::Slot(slot));
            }
            rest = &after[close + 1..];
        }
        text_buf.push_str(rest);
        if !text_buf.is_empty() {
            pieces.push(Piece::Text(text_buf));
        }
        Ok(Template(pieces))
    }

    /// The one slot this template is, when it is exactly one placeholder.
    fn single(&self) -> Option<&Slot> {
        match self.0.as_slice() {
            [Piece::Slot(s)] => Some(s),
            _ => None,
        }
    }

    /// Filled as plain text (headers, JSON strings), each slot through `text`.
    fn render_with(&self, fill: &Fill, text: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot(s) => out.push_str(&text(&slot_text(s, fill))),
            }
        }
        out
    }

    /// Filled as plain text: header values, and placeholders inside longer strings.
    pub(crate) fn render_text(&self, fill: &Fill) -> String {
        self.render_with(fill, str::to_string)
    }

    /// Filled for a URL path: each slot's text percent-encoded as one path segment or
    /// query value.
    pub(crate) fn render_path(&self, fill: &Fill) -> String {
        use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
        // RFC 3986 unreserved characters stay as they are.
        const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        self.render_with(fill, |t| utf8_percent_encode(t, SEGMENT).to_string())
    }
}

/// A slot's value as text: a number room as its digits, a string id as its text.
fn slot_text(s: &Slot, fill: &Fill) -> String {
    let json_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match s {
        Slot::Room => json_text(&fill.room),
        Slot::From => fill.from.clone(),
        Slot::To => fill.to.clone(),
        Slot::Request => fill.request.clone(),
        Slot::User => fill.user.to_string(),
        Slot::Id => json_text(&fill.id),
    }
}

/// A slot's value with its natural JSON type.
fn slot_json(s: &Slot, fill: &Fill) -> Value {
    match s {
        Slot::Room => fill.room.clone(),
        Slot::User => Value::from(fill.user),
        Slot::Id => fill.id.clone(),
        other => Value::String(slot_text(other, fill)),
    }
}

/// A JSON body template: the body as JSON with a template in every string (keys too).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BodyTemplate {
    /// A string (or key) with placeholders.
    Text(Template),
    /// An array of templates.
    Array(Vec<BodyTemplate>),
    /// An object: templated keys and values, in the file's order.
    Object(Vec<(Template, BodyTemplate)>),
    /// A number, boolean or null, as written.
    Plain(Value),
}

impl BodyTemplate {
    /// Parses a body written as JSON text with placeholders in its strings.
    pub(crate) fn parse(
        text: &str,
        section: Section,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BodyTemplate, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("the body is not JSON: {e}"))?;
        BodyTemplate::of(&v, section, env)
    }

    fn of(
        v: &Value,
        section: Section,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BodyTemplate, String> {
        Ok(match v {
            Value::String(s) => BodyTemplate::Text(Template::parse(s, section, env)?),
            Value::Array(items) => BodyTemplate::Array(
                items
                    .iter()
                    .map(|i| BodyTemplate::of(i, section, env))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => BodyTemplate::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((
                            Template::parse(k, section, env)?,
                            BodyTemplate::of(v, section, env)?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            other => BodyTemplate::Plain(other.clone()),
        })
    }

    /// The body filled for one request.
    pub(crate) fn render(&self, fill: &Fill) -> Value {
        match self {
            BodyTemplate::Text(t) => match t.single() {
                Some(s) => slot_json(s, fill),
                None => Value::String(t.render_text(fill)),
            },
            BodyTemplate::Array(items) => {
                Value::Array(items.iter().map(|i| i.render(fill)).collect())
            }
            BodyTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.render_text(fill), v.render(fill)))
                    .collect(),
            ),
            BodyTemplate::Plain(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cr\"t".to_string())
    }

    fn fill() -> Fill {
        Fill {
            room: json!(101),
            from: "2027-01-01".into(),
            to: "2027-01-03".into(),
            request: "r 1/2".into(),
            user: 7,
            id: json!("b/9"),
        }
    }

    #[test]
    fn a_lone_placeholder_keeps_its_type_and_a_longer_string_is_text() {
        let body = BodyTemplate::parse(
            r#"{"roomType": "{room}", "label": "room {room} for {request} ({env.KEY})", "n": 2, "user": "{user}", "{request}": true}"#,
            Section::NoId,
            &env,
        )
        .unwrap();
        let v = body.render(&fill());
        assert_eq!(
            v,
            json!({"roomType": 101, "label": "room 101 for r 1/2 (s3cr\"t)", "n": 2, "user": 7, "r 1/2": true})
        );
        // The JSON writer escapes the quote that came from the environment.
        assert!(v.to_string().contains(r#"(s3cr\"t)"#));
    }

    #[test]
    fn paths_are_percent_encoded_and_headers_plain() {
        let t = Template::parse("/r/{id}/cancel?by={user}", Section::Cancel, &env).unwrap();
        assert_eq!(t.render_path(&fill()), "/r/b%2F9/cancel?by=7");
        let h = Template::parse("Bearer {env.KEY} {request}", Section::NoId, &env).unwrap();
        assert_eq!(h.render_text(&fill()), "Bearer s3cr\"t r 1/2");
        let braces = Template::parse("a {} b {\"x\"}", Section::NoId, &env).unwrap();
        assert_eq!(braces.render_text(&fill()), "a {} b {\"x\"}");
    }

    #[test]
    fn bad_placeholders_are_refused_with_the_reason() {
        let e = Template::parse("/x/{id}", Section::NoId, &env).unwrap_err();
        assert!(e.contains("only known in [cancel]"), "{e}");
        let e = Template::parse("{rooom}", Section::NoId, &env).unwrap_err();
        assert!(e.contains("unknown placeholder `{rooom}`"), "{e}");
        let e = Template::parse("{env.NOPE}", Section::NoId, &env).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
        let e = BodyTemplate::parse("{nope", Section::NoId, &env).unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
    }
}
