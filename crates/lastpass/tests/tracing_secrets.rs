//! With every log level on, nothing the client logs contains the provisioning hash.

mod common;

use std::io::Write;
use std::sync::Arc;

use common::*;
use lastpass::Email;
use parking_lot::Mutex;
use serde_json::json;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

/// Every log line at every level, captured into the returned buffer while the guard lives.
fn capture_logs() -> (Buf, tracing::subscriber::DefaultGuard) {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn provhash_never_logged() {
    let (buf, _guard) = capture_logs();

    let s = stub(|req| match req["cmd"].as_str().unwrap() {
        "getuserdata" => Reply::ok(format!("garbage {PROVHASH}")),
        "resetpassword" => Reply::Drop,
        _ => Reply::json(json!({"status":"OK","message": format!("echo {PROVHASH}")})),
    })
    .await;
    let c = client(&s.url);
    let who = Email::parse("a@x.io").unwrap();
    let _ = c.all_users().await;
    let _ = c.reset_password(&who).await;
    let _ = c.require_password_change(&who).await;
    let logs = buf.text();
    assert!(logs.contains("retrying"), "logging is on: {logs}");
    assert!(logs.contains("LastPass message"), "{logs}");
    assert!(!logs.contains(PROVHASH), "{logs}");
    assert!(!logs.contains(&PROVHASH[..12]), "{logs}");
}

/// A server echoing a rejected password (in a FAIL or a message) must not put it into an error
/// or a log line.
#[tokio::test]
async fn echoed_password_is_scrubbed() {
    let (buf, _guard) = capture_logs();
    const PASSWORD: &str = "correct-horse-battery-staple";
    let s = stub(|req| {
        let pw = req["data"][0]["password"].as_str().unwrap_or("").to_owned();
        Reply::json(
            json!({"status":"FAIL","error": format!("Invalid password: {pw}"), "message": pw}),
        )
    })
    .await;
    let c = client(&s.url);
    let mut u = lastpass::NewUser::new(Email::parse("a@x.io").unwrap());
    u.password = Some(lastpass::Secret::new(PASSWORD));
    let e = c.batch_add(&[u]).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("Invalid password: ***"), "{shown}");
    let logs = buf.text();
    assert!(!logs.contains(PASSWORD), "{logs}");
}
