//! The notification sink: where a service tells overbook what it told its guests.
//!
//! What a guest is told is a side effect (an e-mail, a push, a webhook), often sent from a
//! worker or an outbox, and no database check sees it. In service mode overbook listens
//! on `127.0.0.1` (a free port) and passes `OVERBOOK_NOTIFY_URL=http://127.0.0.1:PORT/notify`
//! to every replica; the service POSTs each message it sends a guest,
//! `{"kind": "confirmed" | "cancelled", "booking": ID, "request": KEY}`, and the sink
//! records every arrival as a lone `info` event of the nemesis named `notify`, at its
//! receive time, whose `value.detail` is the message as received. The checkers in
//! `checkers::checks::told` judge them.
//!
//! Bad input never blocks or ends the run: a body that is not JSON, names no booking or
//! request, or is larger than [`MAX_NOTICE`] is recorded with an `error`, counted, and
//! answered 400 (413 for the size). The port is bound when the run is planned (so the URL
//! is in the replicas' environment), accepting starts with [`NotifySink::start`], and
//! [`NotifySink::stop`] ends every connection with the service.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use checkers::{OpType, OpValue, Process, F, NOTIFY};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::trace::IdTable;
use crate::store::recorder::Recorder;

/// The largest notification body read (64 KiB): a message is a few hundred bytes.
pub(crate) const MAX_NOTICE: usize = 64 << 10;

/// The most notifications judged for one request (or booking): a service that sends
/// more floods. The rest are still recorded, counted and shown, but small (no detail)
/// and with an error, so a runaway loop cannot grow the history without bound.
pub(crate) const FLOOD: u32 = 10;

/// The default `--notify-grace`: the most the sink waits, once the final read is taken,
/// for a "confirmed" to every booking that read holds (only when the service sends
/// notifications at all): an outbox worker gets that long to deliver what the last
/// bookings owe, however starved it is. The grace is in the run header, so
/// `told-eventually` judges a confirmation later than the final heal plus the grace as
/// late from the history alone.
pub(crate) const NOTIFY_GRACE: Duration = Duration::from_secs(5);

/// The `slow-notify` fault's hold on the sink: while a delay is set, every notification
/// is recorded when it arrives (the guest was told then) but answered that much later,
/// as a slow mail provider would; a sender that gives up waiting and sends again must
/// not tell the guest twice.
#[derive(Debug, Clone, Default)]
pub(crate) struct NotifyHold {
    /// The delay in ms; 0: none.
    delay_ms: Arc<AtomicU64>,
    /// Answers delayed, ever.
    delayed: Arc<AtomicU64>,
}

impl NotifyHold {
    /// Answers every notification `delay` late from now on.
    pub(crate) fn set(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Answers at once again.
    pub(crate) fn clear(&self) {
        self.delay_ms.store(0, Ordering::SeqCst);
    }

    /// How many answers were delayed since the sink started.
    pub(crate) fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::Relaxed)
    }

    /// Waits out the delay in force, if any, counting it.
    async fn wait(&self) {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            self.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

/// `--api`'s `[notify]`: where a notification, in the service's own shape, says what it
/// tells the guest (`kind`, a value listed in `confirmed` or `cancelled`), about which
/// booking and request, under which message id (JSON pointers). The sink reads each
/// arrival through it, so the told checkers judge a service's own webhooks unchanged.
/// It lives with the sink, not the mapping, so the sink needs nothing of `api`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyMap {
    pub(crate) kind: String,
    pub(crate) confirmed: Vec<Value>,
    pub(crate) cancelled: Vec<Value>,
    pub(crate) booking: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) id: Option<String>,
}

impl NotifyMap {
    /// The message in overbook's terms (docs/service.md): `kind` is `confirmed` or
    /// `cancelled` when the pointed value is listed (else the value itself), `booking`,
    /// `request` and `id` are what their pointers find, and `message` is the body as
    /// sent. A field whose pointer finds nothing is left out, so a message naming
    /// neither booking nor request is refused as bad input, as without a mapping.
    pub(crate) fn normalise(&self, message: &Value) -> Value {
        let mut out = serde_json::Map::new();
        if let Some(k) = message.pointer(&self.kind) {
            let kind = if self.confirmed.contains(k) {
                Value::from("confirmed")
            } else if self.cancelled.contains(k) {
                Value::from("cancelled")
            } else {
                k.clone()
            };
            out.insert("kind".into(), kind);
        }
        for (name, at) in [
            ("booking", &self.booking),
            ("request", &self.request),
            ("id", &self.id),
        ] {
            if let Some(v) = at.as_deref().and_then(|p| message.pointer(p)) {
                out.insert(name.into(), v.clone());
            }
        }
        out.insert("message".into(), message.clone());
        Value::Object(out)
    }
}

/// The run's notification sink.
pub(crate) struct NotifySink {
    addr: SocketAddr,
    /// Bound at planning, taken by [`NotifySink::start`].
    bound: Mutex<Option<std::net::TcpListener>>,
    inner: Arc<Inner>,
    /// Accepts and serves every connection; aborting it ends them all.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What each connection's handler shares.
struct Inner {
    ids: Arc<IdTable>,
    /// `--api`'s `[notify]`: the service's own message shape, read into ours.
    map: Option<NotifyMap>,
    /// Set once the run's history exists; arrivals before that are refused (503).
    recorder: OnceLock<Arc<Recorder>>,
    received: AtomicU64,
    rejected: AtomicU64,
    /// Request keys and booking handles some `confirmed` named.
    confirmed: Mutex<Confirmed>,
    /// What the final read holds, which the guests are owed a "confirmed" for.
    owed: Mutex<Vec<(String, Option<u64>)>>,
    /// Notifications received per request key (or booking id), for [`FLOOD`].
    per_key: Mutex<std::collections::HashMap<String, u32>>,
    /// The `slow-notify` fault's delay of every answer.
    hold: NotifyHold,
}

impl NotifySink {
    /// Binds a free port on 127.0.0.1; nothing is accepted until [`NotifySink::start`].
    pub(crate) fn bind(ids: Arc<IdTable>, map: Option<NotifyMap>) -> std::io::Result<NotifySink> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        Ok(NotifySink {
            addr: listener.local_addr()?,
            bound: Mutex::new(Some(listener)),
            inner: Arc::new(Inner {
                ids,
                map,
                recorder: OnceLock::new(),
                received: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                confirmed: Mutex::new(Confirmed::default()),
                owed: Mutex::new(Vec::new()),
                per_key: Mutex::new(std::collections::HashMap::new()),
                hold: NotifyHold::default(),
            }),
            task: Mutex::new(None),
        })
    }

    /// The `slow-notify` fault's hold on this sink's answers.
    pub(crate) fn hold(&self) -> NotifyHold {
        self.inner.hold.clone()
    }

    /// The URL the replicas get as `OVERBOOK_NOTIFY_URL`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/notify", self.addr)
    }

    /// Starts accepting (once; later calls do nothing).
    pub(crate) fn start(&self) -> std::io::Result<()> {
        let Some(std_listener) = self.bound.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection ends with the sink.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let inner = inner.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let inner = inner.clone();
                        async move { Ok::<_, Infallible>(inner.answer(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                // Reap finished connections so a long run does not keep their handles.
                while conns.try_join_next().is_some() {}
            }
        });
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(())
    }

    /// From now on every arrival is recorded in `recorder`'s history.
    pub(crate) fn record_into(&self, recorder: Arc<Recorder>) {
        let _ = self.inner.recorder.set(recorder);
    }

    /// Notes what the final read holds: each row's guest is owed a "confirmed".
    pub(crate) fn owe(&self, rows: &[checkers::BookingRow]) {
        *self.inner.owed.lock().unwrap_or_else(|p| p.into_inner()) = rows
            .iter()
            .map(|r| (r.request.clone(), r.booking))
            .collect();
    }

    /// Waits, when the service has sent anything, until every booking of the final read
    /// was confirmed or `grace` has passed, so an outbox delivers what the last bookings
    /// owe before the service stops. Not a quiet spell: a worker starved on a loaded
    /// machine can be silent for seconds and still deliver within the grace.
    pub(crate) async fn settle(&self, grace: Duration) {
        if self.inner.recorder.get().is_none() || self.received() == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.inner.all_told() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops accepting and ends every connection.
    pub(crate) fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }

    /// How many notifications arrived (bad ones included).
    pub(crate) fn received(&self) -> u64 {
        self.inner.received.load(Ordering::Relaxed)
    }

    /// How many were bad input (recorded with an error).
    pub(crate) fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }
}

/// The request keys and booking handles named by `confirmed` notifications so far.
#[derive(Default)]
struct Confirmed {
    requests: std::collections::HashSet<String>,
    bookings: std::collections::HashSet<u64>,
}

impl Drop for NotifySink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bad notification: what the history's `error` says, and the answer's status.
struct Refusal {
    status: StatusCode,
    error: String,
    detail: Value,
}

impl Inner {
    /// Whether every booking owed a "confirmed" has had one.
    fn all_told(&self) -> bool {
        let told = self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
        let owed = self.owed.lock().unwrap_or_else(|p| p.into_inner());
        owed.iter().all(|(request, booking)| {
            told.requests.contains(request) || booking.is_some_and(|b| told.bookings.contains(&b))
        })
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/notify" {
            return reply(StatusCode::NOT_FOUND, "POST notifications to /notify");
        }
        if req.method() != Method::POST {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST notifications to /notify",
            );
        }
        let Some(recorder) = self.recorder.get() else {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "overbook is not recording yet",
            );
        };
        let body = Limited::new(req.into_body(), MAX_NOTICE).collect().await;
        self.received.fetch_add(1, Ordering::Relaxed);
        let parsed = match body {
            Ok(b) => self.read(&b.to_bytes()),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                Err(Refusal {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    error: format!("notification larger than {MAX_NOTICE} bytes"),
                    detail: json!({ "limit": MAX_NOTICE }),
                })
            }
            Err(e) => Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                error: format!("notification body unreadable: {e}"),
                detail: Value::Null,
            }),
        };
        let parsed = parsed.and_then(|v| self.within_flood(v));
        let (value, error, status) = match parsed {
            Ok(value) => (value, None, StatusCode::OK),
            Err(r) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                let value = OpValue {
                    detail: (!r.detail.is_null()).then_some(r.detail),
                    ..OpValue::default()
                };
                (value, Some(r.error), r.status)
            }
        };
        let message = error.clone().unwrap_or_else(|| "recorded".into());
        if error.is_none() && is_confirmation(&value) {
            let mut told = self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
            told.requests.extend(value.request.clone());
            told.bookings.extend(value.booking);
        }
        recorder.record(
            Process::Nemesis,
            OpType::Info,
            F::from(NOTIFY),
            value,
            error,
        );
        // Recorded at its arrival; only the answer waits (slow-notify).
        self.hold.wait().await;
        reply(status, &message)
    }

    /// `value` itself while its request (or booking) has had at most [`FLOOD`]
    /// notifications; after that a refusal naming it, answered 200 all the same: a
    /// service retrying a refused message would only flood harder.
    fn within_flood(&self, value: OpValue) -> Result<OpValue, Refusal> {
        let key = match (&value.request, value.booking) {
            (Some(r), _) => format!("request {r}"),
            (None, Some(b)) => format!("booking {b}"),
            (None, None) => return Ok(value),
        };
        let mut counts = self.per_key.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n <= FLOOD {
            return Ok(value);
        }
        Err(Refusal {
            status: StatusCode::OK,
            error: format!("flood: more than {FLOOD} notifications for {key} (this is number {n})"),
            detail: Value::Null,
        })
    }

    /// A body as the event's value: the message in `detail`, its request and booking in
    /// the history's terms (a booking id the service gave as a string gets the same
    /// handle its answer got).
    fn read(&self, body: &[u8]) -> Result<OpValue, Refusal> {
        let v: Value = serde_json::from_slice(body).map_err(|e| Refusal {
            status: StatusCode::BAD_REQUEST,
            error: format!("notification is not JSON: {e}"),
            detail: json!({ "body": String::from_utf8_lossy(&body[..body.len().min(200)]) }),
        })?;
        let v = match &self.map {
            Some(map) => map.normalise(&v),
            None => v,
        };
        let request = v.get("request").and_then(|r| match r {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let booking = v
            .get("booking")
            .filter(|b| b.is_string() || b.is_number())
            .map(|b| self.ids.number(b).0);
        if !v.is_object() || (request.is_none() && booking.is_none()) {
            return Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                error: "notification names no booking or request".into(),
                detail: v,
            });
        }
        Ok(OpValue {
            request,
            booking,
            detail: Some(v),
            ..OpValue::default()
        })
    }
}

/// Whether a recorded message says "confirmed".
fn is_confirmation(value: &OpValue) -> bool {
    value
        .detail
        .as_ref()
        .and_then(|d| d.get("kind"))
        .and_then(Value::as_str)
        == Some("confirmed")
}

fn reply(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({ "status": status.as_u16(), "message": message }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::super::http::{Answer, Connection};
    use super::*;
    use checkers::Op;
    use workloads::RunClock;

    fn recorder(name: &str) -> (Arc<Recorder>, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("overbook-notify-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rec = Recorder::create(&dir.join("history.jsonl"), RunClock::start()).unwrap();
        (Arc::new(rec), dir)
    }

    async fn post(addr: SocketAddr, body: Vec<u8>) -> u16 {
        let mut c = Connection::open(addr).await.unwrap();
        match c.send(Method::POST, "/notify", Some(body), 1 << 16).await {
            Answer::Http(status, _) => status,
            a => panic!("{a:?}"),
        }
    }

    /// With `--api`'s `[notify]`, a webhook in the service's own shape is recorded in the
    /// sink's terms, which the told checkers read; the message as sent is kept.
    #[tokio::test]
    async fn a_mapped_service_shape_is_recorded_in_the_sinks_terms() {
        let (rec, dir) = recorder("mapped");
        let mapping = format!(
            "{}\n[notify]\nkind = \"/event\"\nconfirmed = [\"reservation.confirmed\"]\nbooking = \"/data/id\"\nrequest = \"/data/ref\"\n",
            super::super::api::tests::HOTEL
        );
        let env = |n: &str| (n == "HOTEL_API_KEY").then(|| "k".to_string());
        let map = super::super::api::ApiMapping::parse(&mapping, &env)
            .unwrap()
            .notify;
        let sink = NotifySink::bind(Arc::new(IdTable::default()), map).unwrap();
        sink.start().unwrap();
        sink.record_into(rec.clone());
        let sent = json!({"event": "reservation.confirmed", "data": {"id": "R-9", "ref": "r-3"}});
        assert_eq!(post(sink.addr, sent.to_string().into_bytes()).await, 200);
        // Naming neither booking nor request through the pointers: bad input, as ever.
        let vague = json!({"event": "reservation.confirmed", "data": {}});
        assert_eq!(post(sink.addr, vague.to_string().into_bytes()).await, 400);
        sink.stop();
        rec.finish().unwrap();
        let file = std::fs::File::open(dir.join("history.jsonl")).unwrap();
        let h = checkers::read_history(std::io::BufReader::new(file)).unwrap();
        let notices = checkers::checks::told::Notices::of(&h);
        assert_eq!((notices.list.len(), notices.rejected), (1, 1));
        let n = &notices.list[0];
        assert_eq!(n.kind, checkers::checks::told::NoticeKind::Confirmed);
        assert_eq!(n.request, Some("r-3"));
        assert_eq!(n.booking, Some(super::super::HANDLE_BASE));
        let op = &h.ops()[n.index as usize];
        assert_eq!(op.value.detail.as_ref().unwrap()["message"], sent);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_sink_knows_when_every_booking_of_the_final_read_was_confirmed() {
        let (rec, dir) = recorder("owed");
        let sink = NotifySink::bind(Arc::new(IdTable::default()), None).unwrap();
        sink.start().unwrap();
        sink.record_into(rec.clone());
        let row = |request: &str, booking: u64| checkers::BookingRow {
            room: checkers::Room::Number(1),
            from: "2026-12-01".parse().unwrap(),
            to: "2026-12-02".parse().unwrap(),
            request: request.into(),
            booking: Some(booking),
        };
        sink.owe(&[row("r-1", 7), row("r-2", 8)]);
        assert!(!sink.inner.all_told());
        // A cancellation, or bad input, is not a confirmation.
        let cancelled = json!({"kind": "cancelled", "request": "r-1"});
        assert_eq!(
            post(sink.addr, cancelled.to_string().into_bytes()).await,
            200
        );
        assert!(!sink.inner.all_told());
        let by_request = json!({"kind": "confirmed", "request": "r-1"});
        assert_eq!(
            post(sink.addr, by_request.to_string().into_bytes()).await,
            200
        );
        assert!(!sink.inner.all_told());
        // By booking id alone: the same handle the read's row got.
        let by_booking = json!({"kind": "confirmed", "booking": 8});
        assert_eq!(
            post(sink.addr, by_booking.to_string().into_bytes()).await,
            200
        );
        assert!(sink.inner.all_told());
        // Everything owed arrived: settling returns at once, whatever the grace.
        tokio::time::timeout(
            Duration::from_secs(60),
            sink.settle(Duration::from_secs(600)),
        )
        .await
        .expect("settle waited although nothing was owed");
        sink.stop();
        rec.finish().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn every_arrival_is_a_notify_event_and_bad_input_is_recorded_with_an_error() {
        let (rec, dir) = recorder("arrivals");
        let sink = NotifySink::bind(Arc::new(IdTable::default()), None).unwrap();
        assert!(sink.url().starts_with("http://127.0.0.1:") && sink.url().ends_with("/notify"));
        sink.start().unwrap();
        let addr = sink.addr;
        // Before the history exists: refused, not lost silently.
        assert_eq!(post(addr, b"{}".to_vec()).await, 503);
        sink.record_into(rec.clone());
        let good = json!({"kind": "confirmed", "booking": "b-7", "request": "r-1", "to": "guest@example.com"});
        assert_eq!(post(addr, good.to_string().into_bytes()).await, 200);
        assert_eq!(post(addr, b"not json".to_vec()).await, 400);
        assert_eq!(post(addr, br#"{"kind":"confirmed"}"#.to_vec()).await, 400);
        assert_eq!(post(addr, vec![b' '; MAX_NOTICE + 1]).await, 413);
        // Still serving after all that.
        assert_eq!(
            post(addr, br#"{"kind":"cancelled","booking":3}"#.to_vec()).await,
            200
        );
        // A flood: the eleventh message about one request is still recorded, but with an
        // error and no detail, and answered 200 (a refused service would only resend).
        let flood = json!({"kind": "confirmed", "request": "r-9", "pad": "x".repeat(1000)});
        for _ in 0..FLOOD + 2 {
            assert_eq!(post(addr, flood.to_string().into_bytes()).await, 200);
        }

        rec.finish().unwrap();
        let file = std::fs::File::open(dir.join("history.jsonl")).unwrap();
        let ops: Vec<Op> = checkers::read_history(std::io::BufReader::new(file))
            .unwrap()
            .into_ops();
        assert_eq!(ops.len(), 5 + FLOOD as usize + 2);
        let flooded: Vec<_> = ops[5..].iter().filter(|o| o.error.is_some()).collect();
        assert_eq!(flooded.len(), 2);
        assert!(flooded.iter().all(|o| o.value.detail.is_none()
            && o.error
                .as_deref()
                .unwrap()
                .starts_with("flood: more than 10")));
        assert!(ops.iter().all(|o| o.f.as_str() == NOTIFY
            && o.kind == OpType::Info
            && o.process == Process::Nemesis));
        assert_eq!(ops[0].value.request.as_deref(), Some("r-1"));
        assert_eq!(ops[0].value.booking, Some(super::super::HANDLE_BASE));
        assert_eq!(
            ops[0].value.detail.as_ref().unwrap()["to"],
            "guest@example.com"
        );
        assert!(ops[0].error.is_none());
        assert!(ops[1].error.as_deref().unwrap().contains("not JSON"));
        assert!(ops[2]
            .error
            .as_deref()
            .unwrap()
            .contains("no booking or request"));
        assert!(ops[3].error.as_deref().unwrap().contains("larger than"));
        assert_eq!(ops[4].value.booking, Some(3));
        assert_eq!(
            (sink.received(), sink.rejected()),
            (5 + u64::from(FLOOD) + 2, 3 + 2)
        );

        sink.stop();
        // Stopped with the service: nothing listens any more.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(Connection::open(addr).await.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
