//! Passthrough of any Enterprise API command: `lastpass_api_call` (the integrator's "make an
//! API call") and `POST /unified/proxy` (StackOne's proxy body).
//!
//! Both go through [`lastpass::Client::raw`], which always posts to the connection's configured
//! endpoint with the connection's `cid`/`provhash`: nothing here can name another host. The rules
//! (see the parent module's documentation): no `url`; `path` only `/enterpriseapi.php` (or
//! empty); method `POST` only (absent means `POST`, the only method the API takes); caller
//! headers never forwarded (`Content-Type`/`Accept` ignored, others refused); caller
//! `cid`/`provhash` refused and never echoed.

use std::collections::BTreeMap;

use lastpass::{Client, CommandClass, InvalidValue};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::{Validate, parse_input};
use super::types::ApiCallInput;
use super::{ActionError, ActionOutput};

/// Headers a caller may send; they are ignored (lpbridge always sends JSON).
const IGNORED_HEADERS: [&str; 2] = ["content-type", "accept"];
/// Keys of the Enterprise API envelope that only the connection supplies.
const CREDENTIAL_KEYS: [&str; 2] = ["cid", "provhash"];

/// Whether `cmd` only reads (the client's classification; unknown commands count as writes).
pub fn is_read_command(cmd: &str) -> bool {
    CommandClass::of(cmd) == CommandClass::Read
}

fn check_cmd(field: &'static str, cmd: &str) -> Result<(), InvalidValue> {
    let ok = !cmd.is_empty()
        && cmd.len() <= 64
        && cmd.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(InvalidValue::new(
            field,
            cmd,
            "must be an Enterprise API command name: 1-64 letters, digits or '_'",
        ))
    }
}

fn check_method(method: Option<&str>) -> Result<(), InvalidValue> {
    let Some(m) = method else { return Ok(()) };
    match m.to_ascii_lowercase().as_str() {
        "post" => Ok(()),
        "get" | "put" | "patch" | "delete" => Err(InvalidValue::new(
            "method",
            m,
            "the Enterprise API only takes POST",
        )),
        _ => Err(InvalidValue::new(
            "method",
            m,
            "must be one of get, post, put, delete, patch (and only post reaches LastPass)",
        )),
    }
}

/// Caller headers: `Content-Type` and `Accept` are ignored; any other is refused, naming it.
fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), InvalidValue> {
    for name in headers.keys() {
        if IGNORED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        let field = match name.to_ascii_lowercase().as_str() {
            "authorization" => "headers.Authorization",
            "host" => "headers.Host",
            _ => "headers",
        };
        return Err(InvalidValue::new(
            field,
            name.as_str(),
            "caller headers are not forwarded: lpbridge sends its own request with the \
             connection's credentials (only Content-Type and Accept are accepted, and ignored)",
        ));
    }
    Ok(())
}

/// Refuses `cid`/`provhash` inside a caller's object; the value is never quoted back.
fn check_no_credentials(prefix: &str, v: Option<&Value>) -> Result<(), InvalidValue> {
    let Some(Value::Object(m)) = v else {
        return Ok(());
    };
    for key in CREDENTIAL_KEYS {
        if m.keys().any(|k| k.eq_ignore_ascii_case(key)) {
            let field = match (prefix, key) {
                ("data", "cid") => "data.cid",
                ("data", _) => "data.provhash",
                ("body", "cid") => "body.cid",
                _ => "body.provhash",
            };
            return Err(InvalidValue::new(
                field,
                "***",
                "credentials come from the connection and are never taken from the caller",
            ));
        }
    }
    Ok(())
}

/// An empty query: absent, `null`, `""`, `{}`.
fn check_query(q: Option<&Value>) -> Result<(), InvalidValue> {
    let empty = match q {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    if empty {
        Ok(())
    } else {
        Err(InvalidValue::new(
            "query",
            q.map(super::input::shown_value).unwrap_or_default(),
            "the Enterprise API takes no query string: put the parameters in data",
        ))
    }
}

/// Sends the command and interprets only what must be: an authorization refusal and a non-2xx
/// status are errors; any other answer is returned as JSON (or as text when it is not JSON).
async fn send(
    client: &Client,
    cmd: &str,
    data: Option<Value>,
) -> Result<(u16, Option<String>, Value), ActionError> {
    let resp = client.raw(cmd, data).await?;
    let text = String::from_utf8_lossy(&resp.body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') && trimmed.contains("Authorization Error") {
        return Err(lastpass::Error::Auth.into());
    }
    if !(200..300).contains(&resp.status) {
        return Err(lastpass::Error::Upstream {
            cmd: cmd.to_owned(),
            status: resp.status,
        }
        .into());
    }
    let body =
        serde_json::from_str::<Value>(trimmed).unwrap_or_else(|_| Value::String(text.into_owned()));
    Ok((resp.status, resp.content_type, body))
}

pub(super) async fn api_call(
    client: &Client,
    i: ApiCallInput,
) -> Result<ActionOutput, ActionError> {
    check_cmd("cmd", &i.cmd)?;
    check_method(i.method.as_deref())?;
    check_headers(&i.headers)?;
    check_query(i.query.as_ref())?;
    check_no_credentials("data", i.data.as_ref())?;
    let (status, content_type, body) = send(client, &i.cmd, i.data).await?;
    Ok(ActionOutput {
        data: json!({
            "cmd": i.cmd,
            "status": status,
            "content_type": content_type,
            "body": body,
        }),
        changed_directory: !is_read_command(&i.cmd),
    })
}

/// The body of `POST /unified/proxy` (StackOne's shape).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyRequest {
    /// Refused when set: the request always goes to the connection's endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// Only `/enterpriseapi.php` (or empty): the API has one path.
    #[serde(default)]
    pub path: Option<String>,
    /// `get`, `post`, `put`, `delete` or `patch` (StackOne's values). Only `post` reaches the
    /// Enterprise API; absent means `post` (StackOne's default `get` would always be refused).
    #[serde(default)]
    pub method: Option<String>,
    /// `Content-Type`/`Accept` are accepted and ignored; any other header is refused.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The Enterprise API body without credentials: `{"cmd": "...", "data": ...}`.
    #[serde(default)]
    pub body: Option<ProxyBody>,
}

/// The proxied Enterprise API request.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProxyBody {
    /// The command (`getuserdata`, …).
    pub cmd: String,
    /// The command's `data`, sent as is.
    #[serde(default)]
    pub data: Option<Value>,
    /// Anything else: refused (`cid`/`provhash` come from the connection).
    #[serde(flatten)]
    #[schemars(skip)]
    pub rest: BTreeMap<String, Value>,
}

impl Validate for ProxyRequest {
    fn validate(&self) -> Result<(), InvalidValue> {
        if let Some(u) = self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            return Err(InvalidValue::new(
                "url",
                u,
                "no URL or host can be supplied: the proxy only reaches the connection's endpoint",
            ));
        }
        if let Some(p) = self.path.as_deref() {
            let p = p.trim();
            if !matches!(p, "" | "/" | "/enterpriseapi.php" | "enterpriseapi.php") {
                return Err(InvalidValue::new(
                    "path",
                    p,
                    "must be /enterpriseapi.php (or empty): the Enterprise API has one path",
                ));
            }
        }
        check_method(self.method.as_deref())?;
        check_headers(&self.headers)?;
        let Some(body) = &self.body else {
            return Err(InvalidValue::new(
                "body",
                "",
                "is required: {\"cmd\": \"<command>\", \"data\": …}",
            ));
        };
        check_cmd("body.cmd", &body.cmd)?;
        let rest = Value::Object(body.rest.clone().into_iter().collect());
        check_no_credentials("body", Some(&rest))?;
        if let Some(k) = body.rest.keys().next() {
            return Err(InvalidValue::new(
                "body",
                k.as_str(),
                "unknown key in body: only cmd and data are sent",
            ));
        }
        check_no_credentials("body", body.data.as_ref()).map_err(|mut e| {
            e.field = if e.field.ends_with("cid") {
                "body.data.cid".into()
            } else {
                "body.data.provhash".into()
            };
            e
        })
    }
}

/// `POST /unified/proxy`: the upstream body (JSON, or text when not JSON).
pub async fn proxy(client: &Client, req: Value) -> Result<Value, ActionError> {
    proxy_output(client, req).await.map(|o| o.data)
}

/// [`proxy`], also telling whether the directory may have changed (any command that is not a
/// read).
pub async fn proxy_output(client: &Client, req: Value) -> Result<ActionOutput, ActionError> {
    let req: ProxyRequest = parse_input(&req)?;
    // `validate` has checked that the body is present.
    let Some(body) = req.body else {
        return Err(InvalidValue::new("body", "", "is required").into());
    };
    let (_, _, answer) = send(client, &body.cmd, body.data).await?;
    Ok(ActionOutput {
        data: answer,
        changed_directory: !is_read_command(&body.cmd),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_headers_and_queries() {
        assert!(check_method(None).is_ok());
        assert!(check_method(Some("POST")).is_ok());
        assert_eq!(check_method(Some("get")).unwrap_err().field, "method");
        assert!(
            check_method(Some("TRACE"))
                .unwrap_err()
                .reason
                .contains("one of")
        );
        let mut h = BTreeMap::new();
        h.insert("Content-Type".to_owned(), "application/json".to_owned());
        assert!(check_headers(&h).is_ok());
        h.insert("Authorization".to_owned(), "Bearer x".to_owned());
        assert_eq!(
            check_headers(&h).unwrap_err().field,
            "headers.Authorization"
        );
        assert!(check_query(Some(&json!({}))).is_ok());
        assert_eq!(
            check_query(Some(&json!({"a": 1}))).unwrap_err().field,
            "query"
        );
        assert!(check_cmd("cmd", "getuserdata").is_ok());
        assert!(check_cmd("cmd", "../x").is_err());
    }

    #[test]
    fn credentials_are_refused_and_never_echoed() {
        let e = check_no_credentials("data", Some(&json!({"provhash": "s3cret"}))).unwrap_err();
        assert_eq!(e.field, "data.provhash");
        assert_eq!(e.value, "***");
        assert!(!e.to_string().contains("s3cret"));
    }
}
