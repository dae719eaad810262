//! Event sinks (issue 7): configuration parsing and validation, the file sink's rotation and
//! durability rules, the webhook's signature, retries and dead letters against a local
//! receiver, and JetStream de-duplication when a NATS server answers on 127.0.0.1:4222.
//!
//! Everything runs on 127.0.0.1. Nothing sleeps to wait: each test awaits the delivery itself
//! and then inspects what the receiver recorded; retry waits are milliseconds (the one
//! `Retry-After` test waits the one second it asks for).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::NaiveDateTime;
use lp_types::Secret;
use lpbridge::events::EventRecord;
use lpbridge::events::sinks::{
    self, FileConfig, FileSink, NatsConfig, NatsSink, SignatureError, Sink, SinkConfig,
    SinkConfigError, SinkError, StdoutSink, WebhookConfig, WebhookSink, verify_signature,
};
use parking_lot::Mutex;

const SECRET: &str = "s3cr3t-hmac-key-do-not-print";

/// Record `i` of a fixed, deterministic sequence (distinct ids, one per second).
fn record(i: u32) -> EventRecord {
    let base = NaiveDateTime::parse_from_str("2026-03-01 08:00:00", "%Y-%m-%d %H:%M:%S")
        .expect("base time");
    let event = lastpass::Event {
        time: base + chrono::Duration::seconds(i64::from(i)),
        username: format!("user{i}@example.com"),
        ip_address: format!("10.0.{}.{}", i / 256, i % 256),
        action: if i.is_multiple_of(3) {
            "Failed Login Attempt"
        } else {
            "Log in"
        }
        .into(),
        data: format!("record {i}"),
        id: None,
    };
    EventRecord::new(event, 0, chrono_tz::Europe::Paris)
}

fn records(range: std::ops::Range<u32>) -> Vec<EventRecord> {
    range.map(record).collect()
}

fn parse_lines(text: &str) -> Vec<EventRecord> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is one EventRecord"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[derive(Debug, serde::Deserialize)]
struct Doc {
    sinks: Vec<SinkConfig>,
}

#[test]
fn all_four_types_parse_from_toml_with_defaults() {
    let doc: Doc = toml::from_str(&format!(
        r#"
        [[sinks]]
        type = "stdout"

        [[sinks]]
        type = "file"
        path = "/var/lib/lpbridge/events.jsonl"

        [[sinks]]
        type = "webhook"
        url = "https://siem.example.com/hook?token=abc"
        secret = "{SECRET}"

        [[sinks]]
        type = "nats"
        subject = "lastpass.events"
        stream = "LASTPASS"
        "#
    ))
    .expect("config parses");
    let [stdout, file, webhook, nats] = &doc.sinks[..] else {
        panic!("four sinks expected")
    };
    assert!(matches!(stdout, SinkConfig::Stdout(_)));
    let SinkConfig::File(f) = file else { panic!() };
    assert_eq!((f.max_bytes, f.keep), (100 * 1024 * 1024, 5));
    let SinkConfig::Webhook(w) = webhook else {
        panic!()
    };
    assert_eq!((w.max_attempts, w.timeout_secs), (8, 10));
    assert_eq!(w.secret.expose(), SECRET);
    let SinkConfig::Nats(n) = nats else { panic!() };
    assert_eq!(n.url, "nats://127.0.0.1:4222");
    assert_eq!(n.stream.as_deref(), Some("LASTPASS"));
    SinkConfig::validate_all(&doc.sinks).expect("valid");

    // Derived names are stable keys; the webhook's shows its origin only (the query holds a
    // token).
    assert_eq!(stdout.name(), "stdout");
    assert_eq!(file.name(), "file:/var/lib/lpbridge/events.jsonl");
    assert_eq!(nats.name(), "nats:lastpass.events");
    let wn = webhook.name();
    assert!(wn.starts_with("webhook:https://siem.example.com#"), "{wn}");
    assert!(!wn.contains("token"), "{wn}");

    // The same from JSON.
    let json: SinkConfig =
        serde_json::from_str(r#"{"type":"file","path":"e.jsonl","max_bytes":10,"keep":0}"#)
            .expect("json");
    assert_eq!(
        json,
        SinkConfig::File(FileConfig {
            name: None,
            path: "e.jsonl".into(),
            max_bytes: 10,
            keep: 0
        })
    );
}

#[test]
fn unknown_type_names_the_field_and_the_value() {
    let want = r#"sink type "kafka" is unknown: expected stdout, file, webhook or nats"#;
    let err = toml::from_str::<Doc>("[[sinks]]\ntype = \"kafka\"\nbrokers = \"k:9092\"\n")
        .expect_err("refused")
        .to_string();
    assert!(err.contains(want), "{err}");
    let err = serde_json::from_str::<SinkConfig>(r#"{"type":"kafka"}"#)
        .expect_err("refused")
        .to_string();
    assert!(err.contains(want), "{err}");
    assert_eq!(
        SinkConfigError::UnknownType("kafka".into()).to_string(),
        want
    );

    let err = serde_json::from_str::<SinkConfig>(r#"{"path":"x"}"#)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("missing field `type`"), "{err}");
    let err = serde_json::from_str::<SinkConfig>(r#"{"type":"file","path":"x","size":1}"#)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("file sink: unknown field `size`"), "{err}");
}

#[test]
fn validation_names_field_and_value() {
    let cases: Vec<(SinkConfig, &str)> = vec![
        (
            SinkConfig::Webhook(WebhookConfig::new("ftp://x.example/", Secret::new(SECRET))),
            r#"invalid webhook url "ftp://x.example/": expected an http or https URL"#,
        ),
        (
            SinkConfig::Webhook(WebhookConfig::new("not a url", Secret::new(SECRET))),
            r#"invalid webhook url "not a url": not a URL"#,
        ),
        (
            SinkConfig::Webhook(WebhookConfig::new("https://x.example/", Secret::new(""))),
            "invalid webhook secret",
        ),
        (
            SinkConfig::Webhook(WebhookConfig {
                max_attempts: 0,
                ..WebhookConfig::new("https://x.example/", Secret::new(SECRET))
            }),
            r#"invalid webhook max_attempts "0""#,
        ),
        (
            SinkConfig::File(FileConfig::new("")),
            r#"invalid file path "": must not be empty"#,
        ),
        (
            SinkConfig::File(FileConfig::new("/var/log/")),
            r#"invalid file path "/var/log/": must name a file"#,
        ),
        (
            SinkConfig::Nats(NatsConfig::new("")),
            r#"invalid nats subject "": must not be empty"#,
        ),
        (
            SinkConfig::Nats(NatsConfig::new("lastpass events")),
            r#"invalid nats subject "lastpass events": must not contain spaces"#,
        ),
        (
            SinkConfig::Nats(NatsConfig::new("lastpass.*")),
            r#"invalid nats subject "lastpass.*": must not contain wildcards"#,
        ),
        (
            SinkConfig::Nats(NatsConfig::new("lastpass.>")),
            r#"invalid nats subject "lastpass.>": must not contain wildcards"#,
        ),
        (
            SinkConfig::Nats(NatsConfig {
                url: "http://127.0.0.1:4222".into(),
                ..NatsConfig::new("a.b")
            }),
            r#"invalid nats url "http://127.0.0.1:4222": expected a nats:// or tls:// URL"#,
        ),
    ];
    for (config, want) in cases {
        let err = config.validate().expect_err("refused").to_string();
        assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        assert!(!err.contains(SECRET), "{err}");
    }

    // A password in the URL is masked in messages.
    let err = SinkConfig::Webhook(WebhookConfig::new(
        "ftp://user:hunter2@x.example/",
        Secret::new(SECRET),
    ))
    .validate()
    .expect_err("refused")
    .to_string();
    assert!(
        err.contains("user:***@x.example") && !err.contains("hunter2"),
        "{err}"
    );

    let twice = vec![
        SinkConfig::Stdout(Default::default()),
        SinkConfig::Stdout(Default::default()),
    ];
    assert_eq!(
        SinkConfig::validate_all(&twice).err(),
        Some(SinkConfigError::DuplicateName("stdout".into()))
    );
}

#[tokio::test]
async fn the_secret_never_shows_in_debug_or_errors() {
    let toml_text =
        format!("type = \"webhook\"\nurl = \"gopher://x.example\"\nsecret = \"{SECRET}\"\n");
    let config: SinkConfig = toml::from_str(&toml_text).expect("parses");
    let debug = format!("{config:?}");
    assert!(
        debug.contains("Secret(***)") && !debug.contains(SECRET),
        "{debug}"
    );
    let err = config.validate().expect_err("bad scheme").to_string();
    assert!(!err.contains(SECRET), "{err}");
    let Err(err) = sinks::build(&config).await else {
        panic!("refused")
    };
    let err = err.to_string();
    assert!(!err.contains(SECRET), "{err}");

    // Parse errors in the same table as the secret.
    let err = toml::from_str::<SinkConfig>(&format!(
        "type = \"webhook\"\nurl = \"https://x.example\"\nsecret = \"{SECRET}\"\nretries = 3\n"
    ))
    .expect_err("unknown field")
    .to_string();
    assert!(err.contains("unknown field `retries`"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    let err = serde_json::from_str::<SinkConfig>(
        r#"{"type":"webhook","url":"https://x.example","secret":918273645}"#,
    )
    .expect_err("not a string")
    .to_string();
    assert!(
        err.contains("secret must be a string") && !err.contains("918273645"),
        "{err}"
    );

    // A built sink and a delivery failure.
    let port = closed_port().await;
    let mut c = fast_webhook(&format!("http://127.0.0.1:{port}/hook"));
    c.max_attempts = 2;
    let sink = WebhookSink::new("w", &c).expect("sink").with_jitter_seed(1);
    assert!(!format!("{sink:?}").contains(SECRET));
    let err = sink.deliver(&records(0..1)).await.expect_err("dead letter");
    assert!(!format!("{err} {err:?}").contains(SECRET), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// stdout and file
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn stdout_sink_writes_one_json_object_per_line() {
    let buf = SharedBuf::default();
    let sink = StdoutSink::with_writer("stdout", buf.clone());
    let batch = records(0..5);
    sink.deliver(&batch[..2]).await.expect("first");
    sink.deliver(&[]).await.expect("empty");
    sink.deliver(&batch[2..]).await.expect("second");
    let text = String::from_utf8(buf.0.lock().clone()).expect("utf-8");
    assert!(text.ends_with('\n'));
    assert_eq!(parse_lines(&text), batch);
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(first["id"], batch[0].id.to_string());
    assert_eq!(first["time_utc"], "2026-03-01T07:00:00Z");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn file_rotation_keeps_n_files_of_whole_lines_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let line_len = serde_json::to_vec(&record(0)).expect("json").len() as u64 + 1;
    let config = FileConfig {
        name: None,
        path: path.clone(),
        // Room for 3 lines (records are within a few bytes of each other in size).
        max_bytes: line_len * 3 + 5,
        keep: 3,
    };
    let sink = FileSink::open("file", &config).expect("open");
    let all = records(0..60);
    // Uneven batches so rotation falls inside batches as well as between them.
    for chunk in all.chunks(7) {
        sink.deliver(chunk).await.expect("delivered");
    }

    assert_eq!(
        files_in(dir.path()),
        [
            "events.jsonl",
            "events.jsonl.1",
            "events.jsonl.2",
            "events.jsonl.3"
        ]
    );
    let mut kept = Vec::new();
    for name in [
        "events.jsonl.3",
        "events.jsonl.2",
        "events.jsonl.1",
        "events.jsonl",
    ] {
        let bytes = std::fs::read(dir.path().join(name)).expect("read");
        assert!(bytes.len() as u64 <= config.max_bytes, "{name} too large");
        assert!(
            !bytes.is_empty() && bytes.ends_with(b"\n"),
            "{name}: partial line"
        );
        kept.extend(parse_lines(std::str::from_utf8(&bytes).expect("utf-8")));
    }
    // The newest records, in order, each once: older files were rotated away whole.
    assert!(kept.len() >= 9 && kept.len() <= 12, "{}", kept.len());
    assert_eq!(kept[..], all[all.len() - kept.len()..]);

    // Reopening appends after what is there.
    drop(sink);
    let sink = FileSink::open("file", &config).expect("reopen");
    sink.deliver(&records(60..61)).await.expect("delivered");
    let active = std::fs::read_to_string(&path).expect("read");
    assert_eq!(parse_lines(&active).last(), Some(&record(60)));
}

#[tokio::test]
async fn file_sink_gives_an_oversized_record_its_own_file_and_keep_zero_discards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub").join("e.jsonl");
    let config = FileConfig {
        name: None,
        path: path.clone(),
        max_bytes: 10,
        keep: 0,
    };
    let sink = FileSink::open("file", &config).expect("open creates the directory");
    sink.deliver(&records(0..3)).await.expect("delivered");
    // Each record exceeds max_bytes, so each one replaced the previous file whole.
    assert_eq!(files_in(&dir.path().join("sub")), ["e.jsonl"]);
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(parse_lines(&text), [record(2)]);
}

#[tokio::test]
async fn file_sink_cuts_a_partial_line_left_by_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let mut f = std::fs::File::create(&path).expect("create");
    for r in records(0..2) {
        writeln!(f, "{}", serde_json::to_string(&r).expect("json")).expect("write");
    }
    // A crash in the middle of the third line.
    let third = serde_json::to_string(&record(2)).expect("json");
    f.write_all(&third.as_bytes()[..40]).expect("write");
    drop(f);

    let sink = FileSink::open("file", &FileConfig::new(&path)).expect("open");
    sink.deliver(&records(2..4)).await.expect("redelivered");
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(parse_lines(&text), records(0..4));
}

// ---------------------------------------------------------------------------------------------
// Webhook
// ---------------------------------------------------------------------------------------------

/// What the receiver answers, in order; `200` once the script is used up.
#[derive(Clone)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
}

fn reply(status: u16) -> Reply {
    Reply {
        status,
        retry_after: None,
        body: "",
    }
}

struct Received {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

#[derive(Default)]
struct Receiver {
    script: Mutex<std::collections::VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

async fn handle(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    rx.received.lock().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let r = rx.script.lock().pop_front().unwrap_or_else(|| reply(200));
    let mut resp = (
        StatusCode::from_u16(r.status).expect("status"),
        r.body.to_owned(),
    )
        .into_response();
    if let Some(v) = r.retry_after {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static(v));
    }
    resp
}

/// A receiver on 127.0.0.1 answering `script`; returns its URL.
async fn receiver(script: Vec<Reply>) -> (String, Arc<Receiver>) {
    let rx = Arc::new(Receiver {
        script: Mutex::new(script.into()),
        received: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(handle))
        .with_state(Arc::clone(&rx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rx)
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").port()
}

fn fast_webhook(url: &str) -> WebhookConfig {
    WebhookConfig {
        max_attempts: 5,
        timeout_secs: 5,
        backoff_base_ms: 1,
        backoff_max_ms: 4,
        ..WebhookConfig::new(url, Secret::new(SECRET))
    }
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} missing"))
}

/// Deadline for a delivery that should finish in milliseconds: a hang fails instead of
/// blocking the suite.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("delivery finished in time")
}

#[tokio::test]
async fn webhook_posts_one_signed_batch_that_verifies() {
    let (url, rx) = receiver(vec![]).await;
    let sink = WebhookSink::new("w", &fast_webhook(&url))
        .expect("sink")
        .with_jitter_seed(7);
    let batch = records(0..3);
    within(sink.deliver(&batch)).await.expect("delivered");
    within(sink.deliver(&[])).await.expect("empty batch");

    let got = rx.received.lock();
    assert_eq!(got.len(), 1, "one request per batch; none for an empty one");
    let r = &got[0];
    assert_eq!(header(r, "content-type"), "application/json");
    assert_eq!(header(r, "x-lpbridge-attempt"), "1");
    assert_eq!(
        header(r, "x-lpbridge-delivery"),
        sinks::webhook::delivery_id(&batch)
    );
    let ts = header(r, "x-lpbridge-timestamp");
    let sig = header(r, "x-lpbridge-signature");
    assert!(sig.starts_with("sha256=") && sig.len() == 71, "{sig}");
    let tolerance = Duration::from_secs(300);
    assert_eq!(
        verify_signature(&Secret::new(SECRET), ts, &r.body, sig, tolerance),
        Ok(())
    );
    assert_eq!(
        verify_signature(&Secret::new("wrong"), ts, &r.body, sig, tolerance),
        Err(SignatureError::Mismatch)
    );
    let mut tampered = r.body.to_vec();
    tampered.push(b' ');
    assert_eq!(
        verify_signature(&Secret::new(SECRET), ts, &tampered, sig, tolerance),
        Err(SignatureError::Mismatch)
    );

    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let events: Vec<EventRecord> = serde_json::from_value(body["events"].clone()).expect("events");
    assert_eq!(events, batch);
}

#[tokio::test]
async fn webhook_retries_5xx_then_succeeds_with_the_same_delivery() {
    let (url, rx) = receiver(vec![reply(500), reply(503)]).await;
    let sink = WebhookSink::new("w", &fast_webhook(&url))
        .expect("sink")
        .with_jitter_seed(7);
    let batch = records(0..2);
    within(sink.deliver(&batch))
        .await
        .expect("delivered on the third attempt");
    let got = rx.received.lock();
    assert_eq!(got.len(), 3);
    let attempts: Vec<&str> = got
        .iter()
        .map(|r| header(r, "x-lpbridge-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    for r in got.iter() {
        assert_eq!(r.body, got[0].body);
        assert_eq!(
            header(r, "x-lpbridge-delivery"),
            header(&got[0], "x-lpbridge-delivery")
        );
        // Each attempt is signed afresh and verifies.
        verify_signature(
            &Secret::new(SECRET),
            header(r, "x-lpbridge-timestamp"),
            &r.body,
            header(r, "x-lpbridge-signature"),
            Duration::from_secs(300),
        )
        .expect("verifies");
    }
}

#[tokio::test]
async fn webhook_honours_retry_after_on_429() {
    let (url, rx) = receiver(vec![Reply {
        status: 429,
        retry_after: Some("1"),
        body: "slow down",
    }])
    .await;
    // Backoff alone would retry within milliseconds.
    let sink = WebhookSink::new("w", &fast_webhook(&url))
        .expect("sink")
        .with_jitter_seed(7);
    within(sink.deliver(&records(0..1)))
        .await
        .expect("delivered");
    let got = rx.received.lock();
    assert_eq!(got.len(), 2);
    let gap = got[1].at.duration_since(got[0].at);
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
}

#[tokio::test]
async fn webhook_caps_retry_after() {
    let (url, rx) = receiver(vec![Reply {
        status: 503,
        retry_after: Some("3600"),
        body: "",
    }])
    .await;
    let config = WebhookConfig {
        retry_after_max_secs: 0,
        ..fast_webhook(&url)
    };
    let sink = WebhookSink::new("w", &config).expect("sink");
    within(sink.deliver(&records(0..1)))
        .await
        .expect("delivered");
    assert_eq!(rx.received.lock().len(), 2);
}

#[tokio::test]
async fn webhook_does_not_retry_other_4xx() {
    let (url, rx) = receiver(vec![Reply {
        status: 400,
        retry_after: None,
        body: "bad batch",
    }])
    .await;
    let sink = WebhookSink::new("w", &fast_webhook(&url))
        .expect("sink")
        .with_jitter_seed(7);
    let err = within(sink.deliver(&records(0..2)))
        .await
        .expect_err("refused");
    assert!(err.is_dead_letter());
    let SinkError::DeadLetter {
        attempts,
        last_error,
    } = err
    else {
        panic!("dead letter expected")
    };
    assert_eq!(attempts, 1);
    assert!(
        last_error.contains("400") && last_error.contains("bad batch"),
        "{last_error}"
    );
    assert!(
        !last_error.contains("/hook"),
        "only the origin is shown: {last_error}"
    );
    assert_eq!(rx.received.lock().len(), 1);
}

#[tokio::test]
async fn unreachable_webhook_dead_letters_while_a_file_sink_still_delivers() {
    let port = closed_port().await;
    let mut config = fast_webhook(&format!("http://127.0.0.1:{port}/hook"));
    config.max_attempts = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let all: Vec<Box<dyn Sink>> = vec![
        Box::new(
            WebhookSink::new("webhook", &config)
                .expect("sink")
                .with_jitter_seed(7),
        ),
        sinks::build(&SinkConfig::File(FileConfig::new(&path)))
            .await
            .expect("file sink"),
    ];
    let batch = records(0..4);
    let results = within(sinks::deliver_all(&all, &batch)).await;
    assert_eq!(results.len(), 2);
    match &results[0] {
        Err(SinkError::DeadLetter {
            attempts,
            last_error,
        }) => {
            assert_eq!(*attempts, 4);
            assert!(last_error.contains("127.0.0.1"), "{last_error}");
        }
        other => panic!("dead letter expected, got {other:?}"),
    }
    assert!(results[1].is_ok(), "{:?}", results[1]);
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(parse_lines(&text), batch);
}

// ---------------------------------------------------------------------------------------------
// NATS JetStream
// ---------------------------------------------------------------------------------------------

const NATS_ADDR: &str = "127.0.0.1:4222";

async fn nats_reachable() -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(NATS_ADDR)
        )
        .await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn nats_redelivery_is_deduplicated_by_msg_id() {
    if !nats_reachable().await {
        if std::env::var("LPBRIDGE_REQUIRE_NATS").as_deref() == Ok("1") {
            panic!("NATS not reachable at {NATS_ADDR} and LPBRIDGE_REQUIRE_NATS=1");
        }
        println!("skipped: NATS not reachable at {NATS_ADDR}");
        return;
    }
    let tag = std::process::id();
    let stream = format!("LPBRIDGE_SINKS_TEST_{tag}");
    let config = NatsConfig {
        name: None,
        url: format!("nats://{NATS_ADDR}"),
        subject: format!("lpbridge.sinks.test.{tag}"),
        stream: Some(stream.clone()),
    };
    let sink = within(NatsSink::connect("nats", &config))
        .await
        .expect("connects and creates the stream");
    let batch = records(0..5);
    let outcome = async {
        within(sink.deliver(&batch)).await?;
        // An at-least-once redelivery of the same batch.
        within(sink.deliver(&batch)).await?;
        Ok::<_, SinkError>(())
    }
    .await;
    let js = sink.jetstream();
    let checked = async {
        outcome.expect("delivered twice");
        let mut s = js.get_stream(&stream).await.expect("stream");
        let info = s.info().await.expect("info");
        assert_eq!(info.state.messages, batch.len() as u64, "each event once");
        let first = s.get_raw_message(1).await.expect("first message");
        assert_eq!(
            first
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned()),
            Some(batch[0].id.to_string())
        );
        let back: EventRecord = serde_json::from_slice(&first.payload).expect("json");
        assert_eq!(back, batch[0]);
    };
    // Clean up even when an assertion fails.
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(checked)).await;
    let _ = js.delete_stream(&stream).await;
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
