//! A tiny in-process HTTP/1.1 stub of `enterpriseapi.php` on 127.0.0.1:0: one request per
//! connection, the handler sees the parsed JSON body and decides the reply — including
//! dropping the connection or never answering, which axum cannot express cleanly.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lastpass::{
    Cid, Client, ClientConfig, Credentials, PushSite, PushTarget, RetryPolicy, Secret, UsernameType,
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

pub const PROVHASH: &str = "a3f9c2e1b7d64f0a9e8c1d2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f";
pub const CID: u64 = 8771312;
pub const AUTH_XML: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lastpass rc=\"Authorization Error\"/>\n";

pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection without answering (after the request was read).
    Drop,
    /// Never answer.
    Hang,
    /// Answer after a delay.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply::Respond {
            status: 200,
            headers: vec![],
            body: body.into(),
        }
    }
    pub fn json(v: Value) -> Self {
        Reply::ok(v.to_string())
    }
    pub fn status(status: u16) -> Self {
        Reply::Respond {
            status,
            headers: vec![],
            body: Vec::new(),
        }
    }
    pub fn with_header(self, k: &str, v: &str) -> Self {
        match self {
            Reply::Respond {
                status,
                mut headers,
                body,
            } => {
                headers.push((k.into(), v.into()));
                Reply::Respond {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }
}

pub struct Stub {
    pub url: Url,
    /// Every request body, parsed, in arrival order.
    pub requests: Arc<Mutex<Vec<Value>>>,
    /// Arrival instants (wall clock), parallel to `requests`.
    pub arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    /// The most requests the stub was ever handling at once.
    pub peak_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Stub {
    pub fn cmds(&self) -> Vec<String> {
        self.requests
            .lock()
            .iter()
            .map(|r| r["cmd"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
    pub fn count(&self, cmd: &str) -> usize {
        self.cmds().iter().filter(|c| *c == cmd).count()
    }
    /// The `data` of the `i`-th request.
    pub fn data(&self, i: usize) -> Value {
        self.requests.lock()[i]["data"].clone()
    }
}

pub async fn stub<F>(handler: F) -> Stub
where
    F: Fn(&Value) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let (reqs, arrs) = (requests.clone(), arrivals.clone());
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak2 = peak.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (handler, reqs, arrs) = (handler.clone(), reqs.clone(), arrs.clone());
            let (peak, in_flight) = (peak2.clone(), in_flight.clone());
            tokio::spawn(async move {
                use std::sync::atomic::Ordering::SeqCst;
                let Some(body) = read_request(&mut sock).await else {
                    return;
                };
                let now = in_flight.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let reply = {
                    let mut r = reqs.lock();
                    let mut a = arrs.lock();
                    r.push(v.clone());
                    a.push(std::time::Instant::now());
                    handler(&v)
                };
                let mut reply = reply;
                while let Reply::Delayed(d, inner) = reply {
                    tokio::time::sleep(d).await;
                    reply = *inner;
                }
                in_flight.fetch_sub(1, SeqCst);
                match reply {
                    Reply::Delayed(..) => unreachable!(),
                    Reply::Respond {
                        status,
                        headers,
                        body,
                    } => {
                        let mut head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: text/xml;charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n",
                            body.len()
                        );
                        for (k, v) in headers {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                        head.push_str("\r\n");
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                        let _ = sock.shutdown().await;
                    }
                    Reply::Drop => drop(sock),
                    Reply::Hang => {
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    Stub {
        url: Url::parse(&format!("http://{addr}/enterpriseapi.php")).unwrap(),
        requests,
        arrivals,
        peak_in_flight: peak,
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[head_end..head_end + len].to_vec())
}

pub fn credentials() -> Credentials {
    Credentials {
        cid: Cid(CID),
        provhash: Secret::new(PROVHASH),
    }
}

pub fn config(url: &Url) -> ClientConfig {
    let mut cfg = ClientConfig::new(credentials()).with_endpoint(url.clone());
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    cfg.timeout = Duration::from_secs(5);
    cfg
}

pub fn client(url: &Url) -> Client {
    Client::new(config(url)).unwrap()
}

/// A getuserdata user object.
pub fn user_json(name: &str) -> Value {
    serde_json::json!({
        "username": name, "fullname": "", "mpstrength": "0",
        "created": "2022-06-21 11:12:30", "last_pw_change": "2022-06-21 11:12:30",
        "last_login": "", "neverloggedin": true, "disabled": false, "admin": false,
        "totalscore": null, "duousername": null, "sites": null, "notes": null,
        "formfills": null, "applications": null, "attachments": null,
        "password_reset_required": true
    })
}

/// A site for every user: https://example.com labelled "Example", nothing optional set.
pub fn example_site(username_type: UsernameType) -> PushSite {
    PushSite {
        target: PushTarget::All,
        url: "https://example.com".into(),
        name: "Example".into(),
        folder: None,
        username_type,
        username: None,
        password: None,
        notes: None,
        favorite: false,
        persistent: false,
        shared_folder_id: None,
    }
}
