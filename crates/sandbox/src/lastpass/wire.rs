//! The HTTP side: body decoding (JSON or form), authentication, headers, and the reply type.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};

use super::LastPass;
use super::state::Out;

/// The 76-byte answer to a bad or missing `cid`/`provhash` (reference §1.4, [REC]).
pub const AUTH_ERROR_BODY: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lastpass rc=\"Authorization Error\"/>\n";

/// What a command produced.
pub(crate) enum Reply {
    Json(Vec<u8>),
    /// A non-200 answer with a JSON body (429).
    Status(StatusCode, Vec<u8>),
    AuthError,
}

impl Reply {
    pub(crate) fn ok() -> Self {
        Reply::Json(br#"{"status":"OK"}"#.to_vec())
    }

    /// `{"status":"FAIL","error":"<msg>"}` (the string form).
    pub(crate) fn fail(msg: &str) -> Self {
        Reply::Json(fail_body(msg))
    }

    /// `{"status":"FAIL","error":["<msg>"]}` (the array form of resetpassword).
    pub(crate) fn fail_array(msg: &str) -> Self {
        let mut o = Out::with_capacity(64 + msg.len());
        o.raw(r#"{"status":"FAIL","error":["#).str(msg).raw("]}");
        Reply::Json(o.0)
    }

    pub(crate) fn too_many(msg: &str) -> Self {
        Reply::Status(StatusCode::TOO_MANY_REQUESTS, fail_body(msg))
    }

    pub(crate) fn into_parts(self) -> (StatusCode, Vec<u8>) {
        match self {
            Reply::Json(b) => (StatusCode::OK, b),
            Reply::Status(s, b) => (s, b),
            Reply::AuthError => (StatusCode::OK, AUTH_ERROR_BODY.to_vec()),
        }
    }
}

fn fail_body(msg: &str) -> Vec<u8> {
    let mut o = Out::with_capacity(64 + msg.len());
    o.raw(r#"{"status":"FAIL","error":"#).str(msg).push(b'}');
    o.0
}

/// The request context commands see.
pub(crate) struct Ctx {
    pub ip: String,
    /// Username written on the events this request causes (`API` or `API: <apiuser>`).
    pub actor: String,
    pub now_us: i64,
}

/// Decodes a request body into a top-level JSON object. `None` when nothing usable was sent.
pub(crate) fn decode_body(body: &[u8], content_type: Option<&str>) -> Option<Map<String, Value>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        // JSON, whatever the content type claims.
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        };
    }
    let is_form = content_type
        .map(|c| c.to_ascii_lowercase().contains("x-www-form-urlencoded"))
        .unwrap_or(false);
    if !is_form && !body.contains(&b'=') {
        return None;
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let mut m = Map::new();
    for (k, v) in pairs {
        // PHP-style nested fields: data[username]=x, data[]=a&data[]=b.
        if let Some(inner) = k.strip_prefix("data[").and_then(|r| r.strip_suffix(']')) {
            let slot = m.entry("data").or_insert(Value::Null);
            if inner.is_empty() {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(a) = slot {
                    a.push(Value::String(v));
                }
            } else {
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(o) = slot {
                    o.insert(inner.to_owned(), Value::String(v));
                }
            }
            continue;
        }
        let val = if k == "data" {
            match serde_json::from_str::<Value>(&v) {
                Ok(j @ (Value::Object(_) | Value::Array(_))) => j,
                _ => Value::String(v),
            }
        } else {
            Value::String(v)
        };
        m.insert(k, val);
    }
    Some(m)
}

/// `v` for an error message: strings bare, anything else as JSON, cut to 100 characters (on a
/// char boundary) so a huge value does not balloon the answer.
pub(crate) fn shown(v: &Value) -> String {
    const MAX: usize = 100;
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

/// An integer in any of the forms clients send: number, numeric string, boolean.
/// A request's `cid`, read as the handler reads it (number or numeric string). Shared with the
/// fault layer so its rules, rate limit and counters see exactly what the emulator sees.
pub(crate) fn cid_of(top: &Map<String, Value>) -> Option<u64> {
    top.get("cid")
        .and_then(flex_i64)
        .and_then(|c| u64::try_from(c).ok())
}

/// A request's `cmd`, trimmed and lower-cased as the handler dispatches it.
pub(crate) fn cmd_of(top: &Map<String, Value>) -> Option<String> {
    match top.get("cmd") {
        Some(Value::String(s)) => Some(s.trim().to_ascii_lowercase()),
        _ => None,
    }
}

pub(crate) fn flex_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A boolean flag from `1`/`0`, `"1"`/`"0"`, `true`/`false`, `"true"`/`"false"`.
pub(crate) fn flex_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        other => flex_i64(other).map(|n| n != 0),
    }
}

/// The headers of a recorded real answer (reference §1.3), Akamai cookies aside.
const LASTPASS_HEADERS: [(header::HeaderName, &str); 9] = [
    (header::SERVER, "LastPass"),
    (
        header::CACHE_CONTROL,
        "no-cache,private,no-store,max-age=0,s-maxage=0,must-revalidate,proxy-revalidate",
    ),
    (header::STRICT_TRANSPORT_SECURITY, "max-age=86400000"),
    (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_XSS_PROTECTION, "1; mode=block"),
    (
        header::HeaderName::from_static("p3p"),
        "CP=\"NON DSP COR CUR OUR LEG PHY COM\"",
    ),
    (header::VARY, "origin, Accept-Encoding"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self' https://admin.lastpass.com",
    ),
];

pub(crate) fn set_headers(resp: &mut Response, json_content_type: bool) {
    let h = resp.headers_mut();
    let ct = if json_content_type {
        "application/json"
    } else {
        crate::faults::LASTPASS_CONTENT_TYPE
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    for (name, value) in LASTPASS_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
}

/// Largest request body the handler reads (the fault layer in front caps bodies at 64 MiB).
const MAX_BODY: usize = 256 * 1024 * 1024;

pub(crate) async fn handle(State(lp): State<LastPass>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, bytes) = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(body) => {
            let lp = lp.clone();
            // Heavy commands (a full 100k-user listing, a 10,000-event report) must not stall
            // the runtime's worker threads for other connections.
            tokio::task::spawn_blocking(move || lp.execute(&body, content_type.as_deref(), peer))
                .await
                .unwrap_or_else(|_| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        fail_body("Internal error"),
                    )
                })
        }
        Err(_) => (StatusCode::OK, fail_body("Request body could not be read")),
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    set_headers(&mut resp, lp.json_content_type());
    resp
}
