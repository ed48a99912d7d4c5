//! The HTTP side of service mode: one keep-alive connection per simulated user, and the
//! contract's table from an answer to `ok` / `fail` / `info`.
//!
//! A connection is hyper's low-level HTTP/1.1 client connection over one TCP stream: no
//! pool decides behind our back when to open another, so "a session is a connection"
//! holds literally. Deadlines are the runner's (every op is bounded by the op timeout);
//! this module never waits on its own except for the health probe.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The largest answer to one booking or cancel (1 MiB): a few hundred bytes are expected,
/// and 16 users reading 60 MB bodies at once held 432 MB. Past it the op is `info` with
/// an error saying so (docs/service.md).
pub(crate) const MAX_OP_ANSWER: usize = 1 << 20;
/// The largest final read (`GET /bookings`, 64 MiB): a long run's is a few megabytes.
/// Past it the read fails with an error saying so.
pub(crate) const MAX_READ_ANSWER: usize = 64 << 20;

/// One keep-alive HTTP/1.1 connection to a replica.
pub(crate) struct Connection {
    addr: SocketAddr,
    sender: http1::SendRequest<Full<Bytes>>,
    /// Drives the connection; aborted when the session goes away.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What came back for one request, before the contract's table gives it a meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// An HTTP answer: status and body.
    Http(u16, Bytes),
    /// The connection broke (reset, closed mid-answer) after the request may have been sent.
    Broken(String),
}

impl Connection {
    /// Connects to `addr` and does the HTTP/1.1 handshake (nothing is sent yet).
    pub(crate) async fn open(addr: SocketAddr) -> Result<Connection, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        // Requests are small and answered one at a time: Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { addr, sender, task })
    }

    /// Whether the connection can take a request (false once the peer closed it, e.g. a
    /// service that answers HTTP/1.0 or with `Connection: close`).
    pub(crate) async fn is_usable(&mut self) -> bool {
        !self.sender.is_closed() && self.sender.ready().await.is_ok()
    }

    /// Sends one request and reads the whole answer, at most `cap` bytes of it (an answer
    /// past the cap is `Broken`, with the cap in its words, and is not read further).
    #[cfg(test)]
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        cap: usize,
    ) -> Answer {
        self.send_with(method, path, &[], body, cap).await
    }

    /// [`Connection::send`] with extra headers (a mapping's API key, idempotency key).
    pub(crate) async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        cap: usize,
    ) -> Answer {
        if let Err(e) = self.sender.ready().await {
            return Answer::Broken(format!("connection closed: {e}"));
        }
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string());
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = match req.body(Full::new(Bytes::from(body.unwrap_or_default()))) {
            Ok(r) => r,
            // Only a path we built ourselves can get here; say so rather than panic.
            Err(e) => return Answer::Broken(format!("cannot build the request {path:?}: {e}")),
        };
        let resp = match self.sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => return Answer::Broken(describe(&e)),
        };
        let status = resp.status().as_u16();
        match Limited::new(resp.into_body(), cap).collect().await {
            Ok(b) => Answer::Http(status, b.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Answer::Broken(format!(
                "the answer ({status}) is larger than overbook reads for this request ({cap} bytes; docs/service.md)"
            )),
            Err(e) => Answer::Broken(format!("reading the answer: {e}")),
        }
    }
}

fn describe(e: &hyper::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `GET path` on a fresh connection, bounded by `timeout`: the status, or why not.
#[cfg(test)]
pub(crate) async fn probe(addr: SocketAddr, path: &str, timeout: Duration) -> Result<u16, String> {
    probe_with(addr, Method::GET, path, &[], timeout).await
}

/// [`probe`] with a method and headers (a mapping's `[service] health` and headers).
pub(crate) async fn probe_with(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<u16, String> {
    let attempt = async {
        let mut c = Connection::open(addr).await?;
        match c
            .send_with(method, path, headers, None, MAX_OP_ANSWER)
            .await
        {
            Answer::Http(status, _) => Ok(status),
            Answer::Broken(e) => Err(e),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// What an answer means, by the contract's table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Meaning {
    /// It happened. For a booking: the service's id and its trace, if it sent one.
    Ok {
        /// `id` of the answer (a booking), verbatim.
        id: Option<Value>,
        /// `trace` of the answer, verbatim.
        trace: Option<Value>,
    },
    /// It definitely did not happen.
    Fail(String),
    /// Unknown: 5xx, broken connection.
    Info(String),
    /// An answer outside the contract: unknown, and counted.
    Malformed(String),
}

/// The first bytes of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.trim();
    if body.len() > 200 {
        format!("{text}...")
    } else {
        text.to_string()
    }
}

fn status_error(status: u16, body: &[u8]) -> String {
    let s = snippet(body);
    if s.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {s}")
    }
}

/// An ok answer's body as JSON, or the malformed answer it is.
pub(crate) fn json_body(status: u16, body: &[u8]) -> Result<Value, Meaning> {
    serde_json::from_slice(body).map_err(|e| {
        Meaning::Malformed(format!(
            "HTTP {status} body is not JSON ({e}): {:?}",
            snippet(body)
        ))
    })
}

/// `POST /bookings`: 200/201 with `{"id": ID}` ok; 409 and other 4xx fail; 5xx or a
/// broken connection info; anything else (a 2xx without an id, a body that is not JSON,
/// a status the contract does not name) malformed.
pub(crate) fn book_meaning(answer: &Answer) -> Meaning {
    let (status, body) = match answer {
        Answer::Broken(e) => return Meaning::Info(e.clone()),
        Answer::Http(status, body) => (*status, body),
    };
    match status {
        200 | 201 => {
            let v = match json_body(status, body) {
                Ok(v) => v,
                Err(m) => return m,
            };
            match v.get("id") {
                Some(id @ (Value::Number(_) | Value::String(_))) => Meaning::Ok {
                    id: Some(id.clone()),
                    trace: v.get("trace").cloned(),
                },
                Some(other) => Meaning::Malformed(format!(
                    "HTTP {status} with an id that is neither a number nor a string: {other}"
                )),
                None => Meaning::Malformed(format!(
                    "HTTP {status} without an \"id\": {:?}",
                    snippet(body)
                )),
            }
        }
        400..=499 => Meaning::Fail(status_error(status, body)),
        500..=599 => Meaning::Info(status_error(status, body)),
        _ => Meaning::Malformed(format!(
            "HTTP {status} is not an answer the contract names: {:?}",
            snippet(body)
        )),
    }
}

/// `DELETE /bookings/ID`: 200/204 ok; 404 (and any other 4xx) fail; 5xx or a broken
/// connection info; anything else malformed.
pub(crate) fn cancel_meaning(answer: &Answer) -> Meaning {
    match answer {
        Answer::Broken(e) => Meaning::Info(e.clone()),
        Answer::Http(200 | 204, _) => Meaning::Ok {
            id: None,
            trace: None,
        },
        Answer::Http(status @ 400..=499, body) => Meaning::Fail(status_error(*status, body)),
        Answer::Http(status @ 500..=599, body) => Meaning::Info(status_error(*status, body)),
        Answer::Http(status, body) => Meaning::Malformed(format!(
            "HTTP {status} is not an answer the contract names: {:?}",
            snippet(body)
        )),
    }
}

/// The path of `DELETE /bookings/ID`: a number as its JSON text, a string
/// percent-encoded (so `a/b c` stays one path segment).
pub(crate) fn cancel_path(id: &Value) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // RFC 3986 unreserved characters stay as they are.
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    match id {
        Value::String(s) => format!("/bookings/{}", utf8_percent_encode(s, SEGMENT)),
        other => format!("/bookings/{other}"),
    }
}

#[cfg(test)]
mod tests {

    /// A real HTTP server on a free port that answers one request with `body_len` bytes.
    async fn serve_once(body_len: usize) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\n\r\n");
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&vec![b' '; body_len]).await;
        });
        addr
    }

    /// Issue 23.9: every op answer could be 64 MiB (16 users x 60 MB peaked at 432 MB).
    /// An op's answer is capped at 1 MiB, the final read's separately at 64 MiB.
    #[tokio::test]
    async fn an_answer_past_its_cap_is_broken_not_read() {
        let body_len = MAX_OP_ANSWER + 1;
        let addr = serve_once(body_len).await;
        let mut c = Connection::open(addr).await.unwrap();
        match c
            .send(
                Method::POST,
                "/bookings",
                Some(b"{}".to_vec()),
                MAX_OP_ANSWER,
            )
            .await
        {
            Answer::Broken(e) => assert!(e.contains("larger than overbook reads"), "{e}"),
            a => panic!("an over-cap answer was read: {a:?}"),
        }
        // The final read's larger cap, on a second server.
        let addr = serve_once(body_len).await;
        let mut c = Connection::open(addr).await.unwrap();
        match c
            .send(Method::GET, "/bookings", None, MAX_READ_ANSWER)
            .await
        {
            Answer::Http(200, b) => assert_eq!(b.len(), body_len),
            a => panic!("the final read's larger cap was not used: {a:?}"),
        }
    }
    use super::*;
    use serde_json::json;

    fn http(status: u16, body: &str) -> Answer {
        Answer::Http(status, Bytes::from(body.to_string()))
    }

    #[test]
    fn bookings_follow_the_contracts_table() {
        assert_eq!(
            book_meaning(&http(201, r#"{"id": 7}"#)),
            Meaning::Ok {
                id: Some(json!(7)),
                trace: None
            }
        );
        assert_eq!(
            book_meaning(&http(200, r#"{"id": "b-1", "trace": {"db_commit": 5}}"#)),
            Meaning::Ok {
                id: Some(json!("b-1")),
                trace: Some(json!({"db_commit": 5}))
            }
        );
        assert!(
            matches!(book_meaning(&http(409, "taken")), Meaning::Fail(e) if e == "HTTP 409: taken")
        );
        assert!(matches!(book_meaning(&http(422, "")), Meaning::Fail(e) if e == "HTTP 422"));
        assert!(matches!(book_meaning(&http(503, "down")), Meaning::Info(_)));
        assert!(matches!(
            book_meaning(&Answer::Broken("reset".into())),
            Meaning::Info(e) if e == "reset"
        ));
    }

    #[test]
    fn answers_outside_the_contract_are_malformed_not_fatal() {
        for (status, body) in [
            (201, "{}"),
            (200, "not json"),
            (201, r#"{"id": null}"#),
            (201, r#"{"id": [1]}"#),
            (204, ""),
            (302, ""),
        ] {
            assert!(
                matches!(book_meaning(&http(status, body)), Meaning::Malformed(_)),
                "{status} {body}"
            );
        }
        assert!(matches!(
            cancel_meaning(&http(302, "")),
            Meaning::Malformed(_)
        ));
    }

    #[test]
    fn cancels_follow_the_contracts_table() {
        for ok in [200, 204] {
            assert!(matches!(cancel_meaning(&http(ok, "")), Meaning::Ok { .. }));
        }
        assert!(matches!(cancel_meaning(&http(404, "")), Meaning::Fail(_)));
        assert!(matches!(cancel_meaning(&http(500, "")), Meaning::Info(_)));
    }

    #[test]
    fn cancel_paths_pass_the_id_back_verbatim() {
        assert_eq!(cancel_path(&json!(42)), "/bookings/42");
        assert_eq!(cancel_path(&json!("b-7_x.y~")), "/bookings/b-7_x.y~");
        assert_eq!(cancel_path(&json!("a/b c")), "/bookings/a%2Fb%20c");
    }
}
