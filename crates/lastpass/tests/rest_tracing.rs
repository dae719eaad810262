//! With every log level on, nothing the REST client (or reqwest / hyper under it) logs contains
//! the API key, through retries and ambiguous writes. Its own test binary: a thread-local
//! subscriber in a binary whose other tests run without one misses events.

use std::io::Write;
use std::sync::Arc;

use futures::TryStreamExt;
use lastpass::Secret;
use lastpass::rest::{
    CompanyQuery, Credentials, NewCompanyUser, PollPolicy, RestClient, RestConfig, RetryPolicy,
    parse_base_url,
};
use parking_lot::Mutex;
use sandbox::SandboxConfig;
use sandbox::faults::FaultRule;

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

#[tokio::test]
async fn the_key_is_never_logged() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut config = SandboxConfig::for_tests();
    config.msp.retry_after_secs = 0;
    let sb = sandbox::spawn(config).await.expect("sandbox starts");
    let key = sb.msp.credentials().api_key;
    let c = RestClient::new(
        RestConfig::new(Credentials::new(Secret::new(key.clone())).expect("key"))
            .with_base_url(parse_base_url(&sb.msp_base_url()).expect("base"))
            .with_retry(RetryPolicy::for_tests())
            .with_poll(PollPolicy::for_tests()),
    )
    .expect("client");
    for spec in ["companies.list:503:1:1", "users.add:500:1:1"] {
        sb.msp
            .faults()
            .add(spec.parse::<FaultRule>().expect("spec"));
    }
    let all: Vec<_> = c
        .list_companies(&CompanyQuery::default())
        .try_collect()
        .await
        .expect("list");
    let _ = c
        .add_user(
            &all[0].id,
            &NewCompanyUser::stage(lastpass::Email::parse("log@x.example").expect("email")),
        )
        .await;
    let logs = String::from_utf8_lossy(&buf.0.lock()).into_owned();
    assert!(logs.contains("retrying"), "logging is on: {logs}");
    let secret = key.rsplit('_').next().unwrap();
    assert!(!logs.contains(secret), "the key leaked into the logs");
}
