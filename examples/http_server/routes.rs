//! What each request gets: the TechEmpower routes, the echo, and the loop's own numbers.

use std::borrow::Cow;

use mio_reactor::PeerAddr;

use crate::metrics;
use crate::readings::readings;
use crate::request::{Method, Request};
use crate::response::Status;
use crate::stats_board::StatsBoard;
use crate::stats_json;

/// The `/` page: it fetches `/stats` every second.
const PAGE: &[u8] = include_bytes!("page.html");

/// TechEmpower's plaintext test: exactly these 13 bytes.
pub const PLAINTEXT: &[u8] = b"Hello, World!";

/// A route's answer, before the headers every response shares.
#[derive(Debug)]
pub struct Answer<'a> {
    pub status: Status,
    pub content_type: &'static str,
    pub body: Cow<'a, [u8]>,
    pub extra_header: Option<&'static str>,
}

impl<'a> Answer<'a> {
    fn ok(content_type: &'static str, body: impl Into<Cow<'a, [u8]>>) -> Answer<'a> {
        Answer {
            status: Status::Ok,
            content_type,
            body: body.into(),
            extra_header: None,
        }
    }

    /// Plain text for a status other than 200.
    pub fn text(status: Status, text: String) -> Answer<'a> {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Cow::Owned(text.into_bytes()),
            extra_header: None,
        }
    }
}

/// The answer to `request` from `peer`; `board` holds the reactors' stats for `/stats` and
/// `/metrics`.
pub fn answer<'a>(request: &Request<'a>, peer: &PeerAddr, board: &StatsBoard) -> Answer<'a> {
    let readable = matches!(request.method, Method::Get | Method::Head);
    match (request.path, readable) {
        ("/plaintext", true) => Answer::ok("text/plain", PLAINTEXT),
        ("/json", true) => {
            // TechEmpower: a new object serialized for every request, not a cached string.
            let message = serde_json::json!({ "message": "Hello, World!" });
            Answer::ok(
                "application/json",
                serde_json::to_vec(&message).unwrap_or_default(),
            )
        }
        ("/", true) => Answer::ok("text/html; charset=utf-8", PAGE),
        ("/stats", true) => {
            let per_reactor: Vec<_> = board.snapshot().iter().map(readings).collect();
            Answer::ok("application/json", stats_json::stats_json(&per_reactor))
        }
        ("/metrics", true) => {
            let per_reactor: Vec<_> = board.snapshot().iter().map(readings).collect();
            Answer::ok(metrics::CONTENT_TYPE, metrics::metrics_text(&per_reactor))
        }
        // The client's address as the server sees it, as httpbin's /ip: behind a balancer
        // with --proxy-protocol, the client's, not the balancer's.
        ("/ip", true) => Answer::ok("text/plain", format!("{peer}\n").into_bytes()),
        ("/echo", _) if request.method == Method::Post => {
            Answer::ok("application/octet-stream", request.body)
        }
        ("/echo", _) => Answer {
            extra_header: Some("Allow: POST"),
            ..Answer::text(Status::MethodNotAllowed, "POST only\n".into())
        },
        ("/plaintext" | "/json" | "/" | "/ip" | "/stats" | "/metrics", false) => Answer {
            extra_header: Some("Allow: GET, HEAD"),
            ..Answer::text(Status::MethodNotAllowed, "GET or HEAD only\n".into())
        },
        (path, _) => Answer::text(Status::NotFound, format!("no such page: {path}\n")),
    }
}
