//! The mapping of docs/api.md read as written, and every bad input refused with its key.

use super::*;
use crate::sut::service::http::{Answer, Meaning};
use bytes::Bytes;
use serde_json::json;

/// The example of the contract, verbatim.
pub(crate) const HOTEL: &str = r#"
[service]
health = "GET /healthz"
headers = { "X-Api-Key" = "{env.HOTEL_API_KEY}" }

[inventory]
rooms = ["DLX", "STE"]
capacity = { DLX = 3, STE = 1 }
unit = "night"

[book]
call = "POST /api/v2/reservations"
headers = { "Idempotency-Key" = "{request}" }
body = '''{"roomType": "{room}", "checkIn": "{from}", "checkOut": "{to}",
           "guest": {"ref": "{request}"}}'''
ok = [200, 201]
fail = [409, 422]
id = "/reservation/id"
confirmed = { at = "/reservation/status", is = ["CONFIRMED"] }

[cancel]
call = "POST /api/v2/reservations/{id}/cancel"
ok = [200, 204]
fail = [404, 409]

[read]
call = "GET /api/v2/reservations?status=CONFIRMED"
list = "/data/items"
room = "/roomType"
from = "/stay/checkIn"
to = "/stay/checkOut"
request = "/guest/ref"
keep = { at = "/status", is = ["CONFIRMED"] }
"#;

fn env(name: &str) -> Option<String> {
    (name == "HOTEL_API_KEY").then(|| "k-1".to_string())
}

fn parse(text: &str) -> Result<ApiMapping, MappingError> {
    ApiMapping::parse(text, &env)
}

#[test]
fn the_contracts_example_reads_and_fills_a_request() {
    let m = parse(HOTEL).unwrap();
    let probe = m.health_probe();
    assert_eq!((probe.path.as_str(), probe.any_2xx), ("/healthz", true));
    assert_eq!(
        probe.headers,
        vec![("X-Api-Key".to_string(), "k-1".to_string())]
    );
    assert_eq!(m.rooms(), Some(2));
    assert_eq!(m.room(101), Room::Name("DLX".into()));
    assert_eq!(m.room(102), Room::Name("STE".into()));
    assert_eq!(m.max_capacity(), 3);
    let fill = template::Fill {
        room: json!("DLX"),
        from: "2027-01-01".into(),
        to: "2027-01-02".into(),
        request: "r-1".into(),
        user: 3,
        id: Value::Null,
    };
    assert_eq!(
        m.book.body.as_ref().unwrap().render(&fill),
        json!({"roomType": "DLX", "checkIn": "2027-01-01", "checkOut": "2027-01-02", "guest": {"ref": "r-1"}})
    );
    assert_eq!(m.headers[0].1.render_text(&fill), "k-1");
    let mut header = RunHeader::default();
    m.annotate(&mut header);
    assert_eq!(header.capacity_of(&Room::Name("DLX".into())), 3);
    assert_eq!(header.capacity_of(&Room::Name("STE".into())), 1);
}

#[test]
fn answers_map_to_ok_fail_and_info() {
    let m = parse(HOTEL).unwrap();
    let http = |s: u16, b: &str| Answer::Http(s, Bytes::from(b.to_string()));
    let ok = r#"{"reservation": {"id": "R-9", "status": "CONFIRMED"}}"#;
    assert_eq!(
        outcome::book_meaning(&m, &http(201, ok)),
        Meaning::Ok {
            id: Some(json!("R-9")),
            trace: None
        }
    );
    // "No availability" as 200 with a status: fail.
    let waitlisted = r#"{"reservation": {"id": "R-9", "status": "WAITLISTED"}}"#;
    assert!(matches!(
        outcome::book_meaning(&m, &http(200, waitlisted)),
        Meaning::Fail(_)
    ));
    assert!(matches!(
        outcome::book_meaning(&m, &http(409, "")),
        Meaning::Fail(_)
    ));
    // 400 is a 4xx the mapping does not call fail: unknown, counted.
    assert!(matches!(
        outcome::book_meaning(&m, &http(400, "")),
        Meaning::Malformed(_)
    ));
    assert!(matches!(
        outcome::book_meaning(&m, &http(503, "")),
        Meaning::Info(_)
    ));
    // An ok answer without the id is a finding about the service, never a harness bug.
    let no_id = r#"{"reservation": {"status": "CONFIRMED"}}"#;
    match outcome::book_meaning(&m, &http(201, no_id)) {
        Meaning::Malformed(e) => {
            assert!(e.contains("without the id at \"/reservation/id\""), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let cancel = m.cancel.as_ref().unwrap();
    assert!(matches!(
        outcome::cancel_meaning(cancel, &http(204, "")),
        Meaning::Ok { .. }
    ));
    assert!(matches!(
        outcome::cancel_meaning(cancel, &http(404, "")),
        Meaning::Fail(_)
    ));
}

#[test]
fn reads_keep_confirmed_rows_and_name_what_is_wrong() {
    let m = parse(HOTEL).unwrap();
    let body = json!({"data": {"items": [
        {"roomType": "DLX", "stay": {"checkIn": "2027-01-01", "checkOut": "2027-01-02"}, "guest": {"ref": "r-1"}, "status": "CONFIRMED"},
        {"roomType": "DLX", "stay": {"checkIn": "2027-01-01", "checkOut": "2027-01-02"}, "guest": {"ref": "r-2"}, "status": "CANCELLED"},
        {"roomType": "STE", "stay": {"checkIn": "2027-01-03", "checkOut": "2027-01-02"}, "guest": {"ref": "r-3"}, "status": "CONFIRMED"}
    ]}});
    let rows = outcome::read_rows(&m, body.to_string().as_bytes()).unwrap();
    assert_eq!(rows.len(), 2, "the cancelled row holds no night");
    assert_eq!(rows[0].room, Room::Name("DLX".into()));
    assert!(
        !rows[1].stay().is_well_formed(),
        "kept for db-state to name"
    );
    let e = outcome::read_rows(&m, br#"{"data": {"items": {"a": 1}}}"#).unwrap_err();
    assert!(e.contains("is not an array"), "{e}");
}

#[test]
fn slots_name_instants_and_must_divide_a_day() {
    let m = parse(&HOTEL.replace("unit = \"night\"", "unit = \"30m\"")).unwrap();
    let origin = workloads::default_window_start();
    assert_eq!(m.bound(origin).to_string(), format!("{origin}T00:00:00Z"));
    assert_eq!(
        m.bound(origin.add_days(3)).to_string(),
        format!("{origin}T01:30:00Z")
    );
    let mut header = RunHeader::default();
    m.annotate(&mut header);
    assert_eq!(header.unit.as_deref(), Some("30m"));
}

/// Each bad input of the issue: exit 2 naming the key (and line) before any server.
#[test]
fn every_bad_mapping_names_its_key_and_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "id = \"/reservation/id\"",
            "id = \"/reservation/id\"\nidd = 1",
            "book.idd",
            "unknown key",
        ),
        (
            "id = \"/reservation/id\"",
            "id = \"reservation/id\"",
            "book.id",
            "must start with `/`",
        ),
        (
            "list = \"/data/items\"",
            "list = \"data\"",
            "read.list",
            "must start with `/`",
        ),
        (
            "\"{request}\" }",
            "\"{requets}\" }",
            "book.headers.Idempotency-Key",
            "unknown placeholder `{requets}`",
        ),
        (
            "POST /api/v2/reservations\"",
            "POST /api/v2/reservations/{id}\"",
            "book.call",
            "only known in [cancel]",
        ),
        (
            "{env.HOTEL_API_KEY}",
            "{env.NO_SUCH_KEY}",
            "service.headers.X-Api-Key",
            "NO_SUCH_KEY is not set",
        ),
        (
            "DLX = 3, STE = 1",
            "DLX = 0, STE = 1",
            "inventory.capacity.DLX",
            "capacity of 0",
        ),
        (
            "DLX = 3, STE = 1",
            "DLX = 3, PH = 1",
            "inventory.capacity.PH",
            "not in inventory.rooms",
        ),
        (
            "unit = \"night\"",
            "unit = \"7m\"",
            "inventory.unit",
            "does not divide a day",
        ),
        (
            "unit = \"night\"",
            "unit = \"weekly\"",
            "inventory.unit",
            "not \"night\"",
        ),
        (
            "call = \"GET /api",
            "call = \"GET api",
            "read.call",
            "must start with `/`",
        ),
        ("[read]", "[reed]", "reed", "unknown key"),
    ];
    for (from, to, key, says) in cases {
        let text = HOTEL.replacen(from, to, 1);
        assert_ne!(text, HOTEL, "{from} not in the example");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, *key, "{e}");
        assert!(e.message.contains(says), "{key}: {e}");
        // The line the bad text is on (its last line, for an added key).
        let bad = to.lines().last().unwrap();
        let want = text.lines().position(|l| l.contains(bad)).unwrap() + 1;
        assert_eq!(e.line, Some(want), "{key}: {e}");
    }
    let e = parse("[book\n").unwrap_err();
    assert!(e.message.starts_with("not TOML"), "{e}");
    assert_eq!(e.line, Some(1));
}

/// A webhook in the service's own shape, for `[notify]`.
const NOTIFY: &str = r#"
[notify]
kind = "/event"
confirmed = ["reservation.confirmed"]
cancelled = ["reservation.cancelled"]
booking = "/data/reservationId"
request = "/data/guestRef"
id = "/eventId"
"#;

/// `[notify]` reads a service's own message into the sink's terms: the kinds it lists
/// become `confirmed` / `cancelled`, the pointers find booking, request and message id,
/// and the message as sent is kept.
#[test]
fn notifications_in_the_services_own_shape_read_through_notify() {
    let m = parse(&format!("{HOTEL}{NOTIFY}")).unwrap();
    let map = m.notify.expect("[notify] read");
    let sent = json!({"event": "reservation.confirmed", "eventId": 17,
                      "data": {"reservationId": "R-9", "guestRef": "r-3"}});
    let seen = map.normalise(&sent);
    assert_eq!(seen["kind"], "confirmed");
    assert_eq!(seen["booking"], "R-9");
    assert_eq!(seen["request"], "r-3");
    assert_eq!(seen["id"], 17);
    assert_eq!(seen["message"], sent);
    let other = map.normalise(&json!({"event": "reservation.reminder", "data": {}}));
    assert_eq!(other["kind"], "reservation.reminder");
    assert!(other.get("booking").is_none() && other.get("request").is_none());
    // Without [notify], none.
    assert!(parse(HOTEL).unwrap().notify.is_none());
}

#[test]
fn a_bad_notify_section_names_its_key() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("kind = \"/event\"\n", "", "notify.kind", "missing"),
        (
            "kind = \"/event\"",
            "kind = \"event\"",
            "notify.kind",
            "must start with `/`",
        ),
        (
            "confirmed = [\"reservation.confirmed\"]",
            "confirmed = []",
            "notify.confirmed",
            "non-empty list",
        ),
        (
            "id = \"/eventId\"",
            "idd = \"/eventId\"",
            "notify.idd",
            "unknown key",
        ),
        (
            "booking = \"/data/reservationId\"\nrequest = \"/data/guestRef\"\n",
            "",
            "notify",
            "needs `booking` or `request`",
        ),
    ];
    for (from, to, key, says) in cases {
        let text = format!("{HOTEL}{}", NOTIFY.replacen(from, to, 1));
        assert!(!text.ends_with(NOTIFY), "{from} not in the section");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, *key, "{e}");
        assert!(e.message.contains(says), "{key}: {e}");
    }
}
