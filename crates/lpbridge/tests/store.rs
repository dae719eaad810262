//! The store suite, run against both backends: every `async fn` below is called once on a fresh
//! SQLite file and once on a fresh PostgreSQL database (see `both!`).
//!
//! PostgreSQL: `LPBRIDGE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! names the server; each test creates its own `lpbridge_t_<random>` database through the
//! `postgres` maintenance database and drops it at the end (also when the test fails). When the
//! server is unreachable, each PostgreSQL test prints `skipped: PostgreSQL not reachable at …`
//! and passes, unless `LPBRIDGE_REQUIRE_POSTGRES=1` (then it fails).
//!
//! No sleeps: a wait for a lease to expire polls with a deadline.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

mod common;

use common::PgDatabase;
use lp_types::{Cid, ConnectionId, Secret};
use lpbridge::crypto::{KeySource, constant_time_eq};
use lpbridge::store::{
    ApiKeyInfo, AutotaskSettings, Backend, ConnectWiseSettings, ConnectionPatch, DatabaseUrl,
    NewConnection, NewPsaIntegration, PsaSecrets, PsaSettings, Store, StoreConfig, StoreError,
};
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;

const PROVHASH: &str = "f3c9b1e0a4d54c7e9b2a6d8e1f0c3b5a7d9e2f4a6c8b0d1e3f5a7c9b1d3e5f7a";

// ---- fixtures ----------------------------------------------------------------------------------

/// A fresh database on one backend, and the means to open more stores on it.
struct Fixture {
    dir: tempfile::TempDir,
    url: Option<DatabaseUrl>,
    _pg: Option<PgDatabase>,
}

impl Fixture {
    fn sqlite() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            url: None,
            _pg: None,
        }
    }

    /// `None` (after printing why) when PostgreSQL is not reachable.
    async fn postgres() -> Option<Self> {
        let pg = PgDatabase::create().await?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            url: Some(DatabaseUrl::parse(&pg.url).unwrap()),
            _pg: Some(pg),
        })
    }

    /// A configuration with a given key (each "replica" may get its own).
    fn config_with(&self, key: KeySource) -> StoreConfig {
        StoreConfig {
            database_url: self.url.clone(),
            data_dir: self.dir.path().join("data"),
            key,
            max_connections: None,
        }
    }

    /// The shared key file in the fixture's data dir.
    fn config(&self) -> StoreConfig {
        self.config_with(KeySource::File(
            self.dir.path().join("data").join("master.key"),
        ))
    }

    async fn open(&self) -> Store {
        Store::open_with(self.config()).await.expect("store opens")
    }

    fn backend(&self) -> Backend {
        self.url
            .as_ref()
            .map_or(Backend::Sqlite, DatabaseUrl::backend)
    }

    /// Runs one raw statement on the database, outside the store.
    async fn raw_execute(&self, sql: &str) {
        match &self.url {
            Some(u) => {
                let mut c = sqlx::PgConnection::connect(u.expose()).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            None => {
                let mut c = self.sqlite_conn().await;
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// The bytes of one column of one row, read outside the store.
    async fn raw_bytes(&self, sql: &str) -> Vec<u8> {
        match &self.url {
            Some(u) => {
                let mut c = sqlx::PgConnection::connect(u.expose()).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            None => {
                let mut c = self.sqlite_conn().await;
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }

    async fn sqlite_conn(&self) -> sqlx::SqliteConnection {
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.config().sqlite_path().unwrap())
            .busy_timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap()
    }
}

/// Runs `async fn $name(&Fixture)` on a fresh SQLite file and on a fresh PostgreSQL database.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fx = super::Fixture::sqlite();
                super::$name(&fx).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(fx) = super::Fixture::postgres().await else {
                    return;
                };
                super::$name(&fx).await;
            }
        }
    )*};
}

both!(
    scim_rows_have_unique_names_and_stable_ids,
    scim_tokens_are_scoped_keys_with_their_own_purpose,
    migrations_are_idempotent_and_safe_to_race,
    connections_crud,
    provhash_is_encrypted_at_rest_and_bound_to_its_row,
    a_wrong_master_key_is_refused,
    api_keys_create_verify_revoke,
    claim_once_has_exactly_one_winner,
    leases_acquire_refuse_expire_renew_release,
    leases_raced_have_one_holder,
    psa_integrations_crud,
    psa_secrets_are_encrypted_at_rest_and_bound_to_their_row,
    concurrent_creates_of_one_name_have_one_winner,
    first_writes_under_two_keys_seal_under_one,
    console_users_and_sessions,
);

fn conn(id: &str) -> NewConnection {
    NewConnection {
        id: ConnectionId::new(id).unwrap(),
        cid: Cid(8771312),
        endpoint: "http://127.0.0.1:1/enterpriseapi.php".parse().unwrap(),
        provhash: Secret::new(PROVHASH),
        time_zone: None,
    }
}

fn id(s: &str) -> ConnectionId {
    ConnectionId::new(s).unwrap()
}

/// Polls `f` until it yields `true`, failing after `deadline`.
async fn eventually<F, Fut>(what: &str, deadline: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const CW_PRIVATE: &str = "cw-private-key-9f8e7d6c";
const AT_SECRET: &str = "at-secret-Qw3rTy$#";
const AT_CODE: &str = "ATINTEGRATIONCODE234567ABCD";

fn cw(id_: &str) -> NewPsaIntegration {
    NewPsaIntegration {
        id: id(id_),
        settings: PsaSettings::ConnectWise(ConnectWiseSettings {
            site: "na.myconnectwise.net".into(),
            company_id: "acme".into(),
            public_key: "PUBLICKEY0123456".into(),
            client_id: "3f2c9a1e-0b4d-4c7e-8a2f-1d3e5f7a9b0c".into(),
        }),
        secrets: PsaSecrets::ConnectWise {
            private_key: Secret::new(CW_PRIVATE),
        },
    }
}

fn at(id_: &str) -> NewPsaIntegration {
    NewPsaIntegration {
        id: id(id_),
        settings: PsaSettings::Autotask(AutotaskSettings {
            username: "api@acme.example".into(),
            discovery_url: Some("https://webservices2.autotask.net/atservicesrest".into()),
        }),
        secrets: PsaSecrets::Autotask {
            secret: Secret::new(AT_SECRET),
            integration_code: Secret::new(AT_CODE),
        },
    }
}

// ---- the suite ---------------------------------------------------------------------------------

async fn migrations_are_idempotent_and_safe_to_race(fx: &Fixture) {
    // Two stores (two processes or replicas) opening a fresh database at once.
    let (a, b) = tokio::join!(Store::open_with(fx.config()), Store::open_with(fx.config()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.backend(), fx.backend());
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    a.create_connection(conn("prod"), false).await.unwrap();
    // Opening again applies nothing and keeps the data.
    let c = fx.open().await;
    assert_eq!(c.list_connections().await.unwrap().len(), 1);
    assert_eq!(b.connection_count().await.unwrap(), 1);
    // open_existing finds it.
    let d = Store::open_existing(fx.config()).await.unwrap().unwrap();
    assert_eq!(d.connection_count().await.unwrap(), 1);
    for s in [a, b, c, d] {
        s.close().await;
    }
    // The SQLite file and data dir are private.
    #[cfg(unix)]
    if let Some(path) = fx.config().sqlite_path() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
}

async fn connections_crud(fx: &Fixture) {
    let s = fx.open().await;
    assert_eq!(s.connection_count().await.unwrap(), 0);
    assert!(s.get_connection(&id("prod")).await.unwrap().is_none());
    let created = s.create_connection(conn("prod"), false).await.unwrap();
    assert_eq!(created.id.as_str(), "prod");
    assert_eq!(created.cid, Cid(8771312));
    assert_eq!(created.created_at, created.updated_at);

    // No silent replacement.
    let e = s.create_connection(conn("prod"), false).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("\"prod\""), "{e}");

    let got = s.get_connection(&id("prod")).await.unwrap().unwrap();
    assert_eq!(got.provhash.expose(), PROVHASH);
    assert_eq!(
        got.endpoint.as_str(),
        "http://127.0.0.1:1/enterpriseapi.php"
    );
    assert!(!format!("{got:?}").contains(PROVHASH), "Debug redacts");
    assert_eq!(got.summary(), created);

    // Overwrite replaces everything but created_at.
    let mut replacement = conn("prod");
    replacement.cid = Cid(42);
    replacement.provhash = Secret::new("new-hash");
    let replaced = s.create_connection(replacement, true).await.unwrap();
    assert_eq!(replaced.cid, Cid(42));
    assert_eq!(replaced.created_at, created.created_at);
    assert!(replaced.updated_at >= created.updated_at);
    let got = s.get_connection(&id("prod")).await.unwrap().unwrap();
    assert_eq!(got.provhash.expose(), "new-hash");

    // Update: each field alone, then a clear.
    let tz = chrono_tz::Tz::from_str("Europe/Berlin").unwrap();
    let updated = s
        .update_connection(
            &id("prod"),
            ConnectionPatch {
                time_zone: Some(Some(tz)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.time_zone, Some(tz));
    assert_eq!(updated.cid, Cid(42));
    s.update_connection(
        &id("prod"),
        ConnectionPatch {
            endpoint: Some("https://lastpass.eu/enterpriseapi.php".parse().unwrap()),
            provhash: Some(Secret::new(PROVHASH)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let got = s.get_connection(&id("prod")).await.unwrap().unwrap();
    assert_eq!(got.provhash.expose(), PROVHASH);
    assert_eq!(got.endpoint.host_str(), Some("lastpass.eu"));
    assert_eq!(got.time_zone, Some(tz), "untouched by a patch without it");
    let cleared = s
        .update_connection(
            &id("prod"),
            ConnectionPatch {
                time_zone: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.time_zone, None);
    let e = s
        .update_connection(&id("nope"), ConnectionPatch::default())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");

    // Bad input names the field and the value.
    let e = s
        .create_connection(conn("has space"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.field == "connection" && v.value == "has space"),
        "{e:?}"
    );
    let mut bad = conn("ftp");
    bad.endpoint = "ftp://example.com/x".parse().unwrap();
    let e = s.create_connection(bad, false).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.field == "endpoint"),
        "{e:?}"
    );

    // List (sorted, no secrets), count, delete.
    s.create_connection(conn("acme"), false).await.unwrap();
    let list = s.list_connections().await.unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(names, ["acme", "prod"]);
    let json = serde_json::to_string(&list).unwrap();
    assert!(!json.contains(PROVHASH), "{json}");
    assert_eq!(s.connection_count().await.unwrap(), 2);
    assert!(s.delete_connection(&id("acme")).await.unwrap());
    assert!(!s.delete_connection(&id("acme")).await.unwrap());
    assert_eq!(s.connection_count().await.unwrap(), 1);
    s.close().await;
}

async fn provhash_is_encrypted_at_rest_and_bound_to_its_row(fx: &Fixture) {
    let s = fx.open().await;
    s.create_connection(conn("a"), false).await.unwrap();
    let mut b = conn("b");
    b.provhash = Secret::new("the-hash-of-b");
    s.create_connection(b, false).await.unwrap();

    let raw = fx
        .raw_bytes("SELECT provhash_ciphertext FROM connections WHERE id = 'a'")
        .await;
    assert!(
        !raw.windows(PROVHASH.len())
            .any(|w| w == PROVHASH.as_bytes())
    );
    assert!(raw.len() >= PROVHASH.len() + 16, "ciphertext and tag");
    // Same secret, fresh nonce: another row's ciphertext differs.
    s.create_connection(conn("c"), false).await.unwrap();
    let raw_c = fx
        .raw_bytes("SELECT provhash_ciphertext FROM connections WHERE id = 'c'")
        .await;
    assert_ne!(raw, raw_c);

    // Copy a's ciphertext into b: b must not decrypt to a's hash.
    fx.raw_execute(
        "UPDATE connections SET \
         provhash_ciphertext = (SELECT provhash_ciphertext FROM connections WHERE id = 'a'), \
         provhash_nonce = (SELECT provhash_nonce FROM connections WHERE id = 'a') \
         WHERE id = 'b'",
    )
    .await;
    let e = s.get_connection(&id("b")).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("altered or belongs to another row"), "{m}");
    assert!(m.contains("\"b\""), "{m}");
    assert!(!m.contains(PROVHASH), "{m}");
    assert_eq!(
        s.get_connection(&id("a"))
            .await
            .unwrap()
            .unwrap()
            .provhash
            .expose(),
        PROVHASH
    );
    s.close().await;
}

async fn a_wrong_master_key_is_refused(fx: &Fixture) {
    let right = KeySource::Env("ab".repeat(32));
    let wrong = KeySource::Env("cd".repeat(32));
    let s = Store::open_with(fx.config_with(right)).await.unwrap();
    s.create_connection(conn("prod"), false).await.unwrap();

    let other = Store::open_with(fx.config_with(wrong)).await.unwrap();
    // Listing needs no key.
    assert_eq!(other.list_connections().await.unwrap().len(), 1);
    let e = other.get_connection(&id("prod")).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("wrong master key"), "{m}");
    assert!(m.contains("LPBRIDGE_MASTER_KEY"), "{m}");
    assert!(
        !m.contains(PROVHASH) && !m.contains(&"cd".repeat(32)),
        "{m}"
    );
    // Writing with a second key is refused too: rows nobody else could read.
    let e = other
        .create_connection(conn("second"), false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("wrong master key"), "{e}");
    assert_eq!(s.connection_count().await.unwrap(), 1);

    // A key file that does not exist yet is not created by a read.
    let key_path = fx.dir.path().join("elsewhere").join("master.key");
    let none = Store::open_with(fx.config_with(KeySource::File(key_path.clone())))
        .await
        .unwrap();
    let e = none.get_connection(&id("prod")).await.unwrap_err();
    assert!(e.to_string().contains("no master key"), "{e}");
    assert!(!key_path.exists());
    for st in [s, other, none] {
        st.close().await;
    }
}

async fn api_keys_create_verify_revoke(fx: &Fixture) {
    let a = fx.open().await;
    let b = fx.open().await; // another replica on the same database
    let (rw, rw_key) = a.create_api_key("ci", false).await.unwrap();
    let (ro, ro_key) = a.create_api_key("dashboard", true).await.unwrap();
    assert!(!format!("{rw_key:?}").contains(rw_key.expose()));
    let k = rw_key.expose();
    assert!(k.starts_with("lpb_"), "{k}");
    let parts: Vec<&str> = k.splitn(3, '_').collect();
    assert_eq!(parts[1], rw.id);
    assert_eq!(parts[1].len(), 12);
    assert!(parts[2].len() >= 32 && parts[2].chars().all(|c| c.is_ascii_alphanumeric()));

    // The secret is not stored, only a digest.
    let hash = fx
        .raw_bytes(&format!("SELECT hash FROM api_keys WHERE id = '{}'", rw.id))
        .await;
    assert_eq!(hash.len(), 32);
    assert!(!hash.windows(8).any(|w| w == &parts[2].as_bytes()[..8]));

    let v = b.verify_api_key(k).await.unwrap().unwrap();
    assert_eq!(v.id, rw.id);
    assert!(!v.read_only);
    assert!(v.last_used_at.is_some(), "first use is recorded");
    let v = b.verify_api_key(ro_key.expose()).await.unwrap().unwrap();
    assert!(v.read_only);
    assert_eq!(v.name, "dashboard");

    // Unknown, wrong, malformed.
    let wrong_secret = format!("lpb_{}_{}", rw.id, "A".repeat(40));
    let unknown_id = format!("lpb_{}_{}", "zzzzzzzzzzzz", &parts[2]);
    for bad in [
        wrong_secret.as_str(),
        unknown_id.as_str(),
        "",
        "lpb_",
        "Bearer x",
        &k[..k.len() - 1],
    ] {
        assert_eq!(b.verify_api_key(bad).await.unwrap(), None, "{bad:?}");
    }

    // Revoked on one replica: refused by the other at once.
    assert!(a.revoke_api_key(&rw.id).await.unwrap());
    assert_eq!(b.verify_api_key(k).await.unwrap(), None);
    assert!(!a.revoke_api_key(&rw.id).await.unwrap(), "already revoked");
    assert!(!a.revoke_api_key("nosuchkey000").await.unwrap());
    assert!(b.verify_api_key(ro_key.expose()).await.unwrap().is_some());

    let list: Vec<ApiKeyInfo> = b.list_api_keys().await.unwrap();
    assert_eq!(list.len(), 2);
    let by_id = |id: &str| list.iter().find(|i| i.id == id).unwrap();
    assert!(by_id(&rw.id).is_revoked());
    assert!(!by_id(&ro.id).is_revoked());
    assert!(by_id(&ro.id).last_used_at.is_some());
    let json = serde_json::to_string(&list).unwrap();
    assert!(!json.contains(parts[2]), "{json}");

    let e = a.create_api_key("  ", false).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.field == "name"),
        "{e:?}"
    );
    a.close().await;
    b.close().await;
}

async fn claim_once_has_exactly_one_winner(fx: &Fixture) {
    let a = fx.open().await;
    let b = fx.open().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.claim_once("bootstrap_api_key").await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(a.is_claimed("bootstrap_api_key").await.unwrap());
    assert!(!a.claim_once("bootstrap_api_key").await.unwrap());
    assert!(!b.is_claimed("other").await.unwrap());
    assert!(b.claim_once("other").await.unwrap());
    a.close().await;
    b.close().await;
}

async fn leases_acquire_refuse_expire_renew_release(fx: &Fixture) {
    let s = fx.open().await;
    let long = Duration::from_secs(60);
    assert!(s.try_acquire_lease("watch:prod", "a", long).await.unwrap());
    assert!(!s.try_acquire_lease("watch:prod", "b", long).await.unwrap());
    let held = s.lease("watch:prod").await.unwrap().unwrap();
    assert_eq!(held.owner, "a");
    // The holder may re-acquire (extends); only the holder renews or releases.
    assert!(s.try_acquire_lease("watch:prod", "a", long).await.unwrap());
    assert!(s.renew_lease("watch:prod", "a", long).await.unwrap());
    assert!(!s.renew_lease("watch:prod", "b", long).await.unwrap());
    assert!(!s.release_lease("watch:prod", "b").await.unwrap());
    assert!(s.release_lease("watch:prod", "a").await.unwrap());
    assert!(s.lease("watch:prod").await.unwrap().is_none());
    assert!(s.try_acquire_lease("watch:prod", "b", long).await.unwrap());

    // An expired lease is taken over, and its old holder can no longer renew it.
    assert!(
        s.try_acquire_lease("short", "a", Duration::from_millis(50))
            .await
            .unwrap()
    );
    assert!(!s.try_acquire_lease("short", "b", long).await.unwrap());
    eventually("the lease to expire", Duration::from_secs(10), || {
        let s = s.clone();
        async move { s.try_acquire_lease("short", "b", long).await.unwrap() }
    })
    .await;
    assert_eq!(s.lease("short").await.unwrap().unwrap().owner, "b");
    assert!(!s.renew_lease("short", "a", long).await.unwrap());
    assert!(!s.release_lease("short", "a").await.unwrap());

    let e = s
        .try_acquire_lease("x", "a", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.field == "ttl"),
        "{e:?}"
    );
    s.close().await;
}

async fn leases_raced_have_one_holder(fx: &Fixture) {
    let a = fx.open().await;
    let b = fx.open().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let owner = format!("replica-{i}");
            let got = s
                .try_acquire_lease("import:acme", &owner, Duration::from_secs(60))
                .await
                .unwrap();
            got.then_some(owner)
        }));
    }
    let mut winners = HashSet::new();
    for t in tasks {
        if let Some(o) = t.await.unwrap() {
            winners.insert(o);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let holder = a.lease("import:acme").await.unwrap().unwrap();
    assert!(winners.contains(&holder.owner));
    a.close().await;
    b.close().await;
}

async fn concurrent_creates_of_one_name_have_one_winner(fx: &Fixture) {
    // Two replicas adding the same connection and PSA integration at once (no --overwrite):
    // exactly one insert wins, every other one is a Conflict, and the stored secret is the
    // winner's.
    let a = fx.open().await;
    let b = fx.open().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut c = conn("prod");
            c.provhash = Secret::new(format!("hash-{i}"));
            let conn_won = match s.create_connection(c, false).await {
                Ok(_) => Some(format!("hash-{i}")),
                Err(StoreError::Conflict { .. }) => None,
                Err(e) => panic!("{e:?}"),
            };
            let psa_won = match s.create_psa_integration(cw("acme"), false).await {
                Ok(_) => true,
                Err(StoreError::Conflict { .. }) => false,
                Err(e) => panic!("{e:?}"),
            };
            (conn_won, psa_won)
        }));
    }
    let mut conn_winners = Vec::new();
    let mut psa_winners = 0;
    for t in tasks {
        let (c, p) = t.await.unwrap();
        conn_winners.extend(c);
        psa_winners += usize::from(p);
    }
    assert_eq!(conn_winners.len(), 1, "{conn_winners:?}");
    assert_eq!(psa_winners, 1);
    let got = b.get_connection(&id("prod")).await.unwrap().unwrap();
    assert_eq!(got.provhash.expose(), conn_winners[0]);
    assert!(a.get_psa_integration(&id("acme")).await.unwrap().is_some());
    a.close().await;
    b.close().await;
}

async fn first_writes_under_two_keys_seal_under_one(fx: &Fixture) {
    // Two replicas started with different keys write their first secrets at the same time:
    // one key check wins, and the other replica's writes are refused rather than sealed
    // under a key nobody else holds.
    let keys = ["ab".repeat(32), "cd".repeat(32)];
    let stores: Vec<Store> = futures::future::join_all(
        keys.iter()
            .map(|k| Store::open_with(fx.config_with(KeySource::Env(k.clone())))),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let writes = stores
        .iter()
        .enumerate()
        .map(|(i, s)| async move { s.create_connection(conn(&format!("c{i}")), false).await });
    let results = futures::future::join_all(writes).await;
    let ok: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    let loser = 1 - ok[0];
    let e = results[loser].as_ref().unwrap_err().to_string();
    assert!(e.contains("wrong master key"), "{e}");
    // Every stored row decrypts under the winning key.
    assert_eq!(stores[ok[0]].connection_count().await.unwrap(), 1);
    for c in stores[ok[0]].list_connections().await.unwrap() {
        stores[ok[0]].get_connection(&c.id).await.unwrap().unwrap();
    }
    for s in stores {
        s.close().await;
    }
}

// ---- backend-independent -----------------------------------------------------------------------

#[test]
fn constant_time_compare_helper() {
    assert!(constant_time_eq(b"same bytes", b"same bytes"));
    assert!(!constant_time_eq(b"same bytes", b"same bytez"));
    assert!(!constant_time_eq(b"short", b"longer value"));
}

#[test]
fn database_urls_never_show_their_password() {
    let u = DatabaseUrl::parse("postgres://lp:hunter2@127.0.0.1/db").unwrap();
    assert!(!format!("{u} {u:?}").contains("hunter2"));
    let e = DatabaseUrl::parse("mysql://lp:hunter2@127.0.0.1/db").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: refused at once.
    let e = Store::open(Some("postgres://lp:hunter2@127.0.0.1:1/db"), dir.path())
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.starts_with("cannot open the database postgres://lp:***@127.0.0.1:1/db"),
        "{m}"
    );
    assert!(!m.contains("hunter2"), "{m}");
}

#[tokio::test]
async fn open_existing_creates_nothing_for_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = StoreConfig::new(None, &data).unwrap();
    assert!(Store::open_existing(cfg).await.unwrap().is_none());
    assert!(!data.exists());
}

async fn psa_integrations_crud(fx: &Fixture) {
    let s = fx.open().await;
    assert!(s.list_psa_integrations().await.unwrap().is_empty());
    assert!(
        s.get_psa_integration(&id("acme-cw"))
            .await
            .unwrap()
            .is_none()
    );
    let created = s
        .create_psa_integration(cw("acme-cw"), false)
        .await
        .unwrap();
    assert_eq!(created.id.as_str(), "acme-cw");
    assert_eq!(created.kind, psa::PsaKind::ConnectWise);
    assert_eq!(created.created_at, created.updated_at);
    s.create_psa_integration(at("acme-at"), false)
        .await
        .unwrap();

    // No silent replacement.
    let e = s
        .create_psa_integration(cw("acme-cw"), false)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("\"acme-cw\""), "{e}");

    // Get decrypts; Debug redacts.
    let got = s
        .get_psa_integration(&id("acme-cw"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.summary(), created);
    match &got.secrets {
        PsaSecrets::ConnectWise { private_key } => assert_eq!(private_key.expose(), CW_PRIVATE),
        other => panic!("{other:?}"),
    }
    assert!(!format!("{got:?}").contains(CW_PRIVATE));
    let got = s
        .get_psa_integration(&id("acme-at"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.settings, at("x").settings);
    match &got.secrets {
        PsaSecrets::Autotask {
            secret,
            integration_code,
        } => {
            assert_eq!(secret.expose(), AT_SECRET);
            assert_eq!(integration_code.expose(), AT_CODE);
        }
        other => panic!("{other:?}"),
    }
    // The stored integration builds its client (no call is made).
    assert_eq!(got.directory().unwrap().kind(), psa::PsaKind::Autotask);

    // Overwrite may change the kind; created_at is kept.
    let mut replacement = at("acme-cw");
    replacement.settings = PsaSettings::Autotask(AutotaskSettings {
        username: "other@acme.example".into(),
        discovery_url: None,
    });
    let replaced = s.create_psa_integration(replacement, true).await.unwrap();
    assert_eq!(replaced.kind, psa::PsaKind::Autotask);
    assert_eq!(replaced.created_at, created.created_at);
    assert!(replaced.updated_at >= created.updated_at);
    let got = s
        .get_psa_integration(&id("acme-cw"))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(got.secrets, PsaSecrets::Autotask { .. }));

    // Bad input names the field and the value (never a secret's).
    let e = s
        .create_psa_integration(cw("has space"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.field == "psa integration" && v.value == "has space"),
        "{e:?}"
    );
    let mut bad = at("bad-url");
    bad.settings = PsaSettings::Autotask(AutotaskSettings {
        username: "u@x.example".into(),
        discovery_url: Some("ftp://x".into()),
    });
    let e = s.create_psa_integration(bad, false).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.field == "discovery_url" && v.value == "ftp://x"),
        "{e:?}"
    );
    let mut empty = cw("empty");
    empty.secrets = PsaSecrets::ConnectWise {
        private_key: Secret::new(""),
    };
    let e = s.create_psa_integration(empty, false).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.field == "private_key"),
        "{e:?}"
    );
    let mut mixed = cw("mixed");
    mixed.secrets = at("x").secrets;
    let e = s.create_psa_integration(mixed, false).await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");

    // List (sorted, no secrets), summary, delete.
    let list = s.list_psa_integrations().await.unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(names, ["acme-at", "acme-cw"]);
    let json = serde_json::to_string(&list).unwrap();
    for secret in [CW_PRIVATE, AT_SECRET, AT_CODE] {
        assert!(!json.contains(secret), "{json}");
    }
    assert!(json.contains("api@acme.example"), "{json}");
    assert_eq!(
        s.psa_integration_summary(&id("acme-at")).await.unwrap(),
        Some(list[0].clone())
    );
    assert!(s.delete_psa_integration(&id("acme-at")).await.unwrap());
    assert!(!s.delete_psa_integration(&id("acme-at")).await.unwrap());
    assert_eq!(s.list_psa_integrations().await.unwrap().len(), 1);
    // Connections are a separate table.
    assert_eq!(s.connection_count().await.unwrap(), 0);
    s.close().await;
}

async fn psa_secrets_are_encrypted_at_rest_and_bound_to_their_row(fx: &Fixture) {
    let s = fx.open().await;
    s.create_psa_integration(at("a"), false).await.unwrap();
    let mut b = at("b");
    b.secrets = PsaSecrets::Autotask {
        secret: Secret::new("the-secret-of-b"),
        integration_code: Secret::new("THECODEOFB"),
    };
    s.create_psa_integration(b, false).await.unwrap();
    s.create_psa_integration(cw("c"), false).await.unwrap();

    for row in ["a", "c"] {
        let raw = fx
            .raw_bytes(&format!(
                "SELECT secrets_ciphertext FROM psa_integrations WHERE id = '{row}'"
            ))
            .await;
        for secret in [CW_PRIVATE, AT_SECRET, AT_CODE] {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{row}"
            );
        }
        assert!(raw.len() > 16, "ciphertext and tag");
    }
    // The settings column holds no secret either.
    let as_bytes = match fx.backend() {
        Backend::Sqlite => "CAST(settings AS BLOB)",
        Backend::Postgres => "convert_to(settings, 'UTF8')",
    };
    let settings = fx
        .raw_bytes(&format!(
            "SELECT {as_bytes} FROM psa_integrations WHERE id = 'a'"
        ))
        .await;
    let settings = String::from_utf8(settings).unwrap();
    assert!(settings.contains("api@acme.example"), "{settings}");
    assert!(!settings.contains(AT_SECRET) && !settings.contains(AT_CODE));

    // Copy a's ciphertext into b: b must not decrypt to a's secrets.
    fx.raw_execute(
        "UPDATE psa_integrations SET \
         secrets_ciphertext = (SELECT secrets_ciphertext FROM psa_integrations WHERE id = 'a'), \
         secrets_nonce = (SELECT secrets_nonce FROM psa_integrations WHERE id = 'a') \
         WHERE id = 'b'",
    )
    .await;
    let e = s.get_psa_integration(&id("b")).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("altered or belongs to another row"), "{m}");
    assert!(m.contains("\"b\""), "{m}");
    assert!(!m.contains(AT_SECRET), "{m}");
    // Flipping the kind column does not make the row readable as the other kind.
    fx.raw_execute("UPDATE psa_integrations SET kind = 'autotask' WHERE id = 'c'")
        .await;
    let e = s.get_psa_integration(&id("c")).await;
    assert!(e.is_err(), "{e:?}");
    assert!(s.get_psa_integration(&id("a")).await.unwrap().is_some());
    s.close().await;
}

async fn scim_rows_have_unique_names_and_stable_ids(fx: &Fixture) {
    use lpbridge::store::scim::{ScimGroupRow, ScimUserRow};
    let a = fx.open().await;
    let b = fx.open().await; // another replica
    let conn = ConnectionId::new("acme").unwrap();
    let other = ConnectionId::new("other").unwrap();
    let mut ann = ScimUserRow::new("Ann@Example.com");
    ann.attributes = serde_json::json!({"userName": "Ann@Example.com", "title": "CFO"});
    ann.external_id = Some("ext-1".into());
    assert!(a.insert_scim_user(&conn, &ann).await.unwrap());
    assert_eq!(ann.username, "ann@example.com");
    // Same id, or same names on the same connection: refused; another connection may.
    assert!(!b.insert_scim_user(&conn, &ann).await.unwrap());
    assert!(
        !b.insert_scim_user(&conn, &ScimUserRow::new("ann@example.com"))
            .await
            .unwrap()
    );
    assert!(
        b.insert_scim_user(&other, &ScimUserRow::new("ann@example.com"))
            .await
            .unwrap()
    );
    let got = b.scim_user(&conn, &ann.id).await.unwrap().unwrap();
    assert_eq!(got.attributes["title"], "CFO");
    assert_eq!(got.external_id.as_deref(), Some("ext-1"));
    assert_eq!(
        b.scim_user_by_user_name(&conn, "ANN@example.COM")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(ann.id.clone())
    );
    // A pending e-mail change is found by either name.
    let mut moved = got.clone();
    moved.pending_username = Some("ann.new@example.com".into());
    moved.user_name = "ann.new@example.com".into();
    assert!(a.update_scim_user(&conn, &moved).await.unwrap());
    assert_eq!(
        a.scim_user_by_lastpass_name(&conn, "ann.new@example.com")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(ann.id.clone())
    );
    assert_eq!(
        a.scim_user_by_lastpass_name(&conn, "ann@example.com")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(ann.id.clone())
    );
    // Rows for LastPass users seen for the first time: existing ones keep their ids.
    a.ensure_scim_users(&conn, &["bob@example.com".into(), "ann@example.com".into()])
        .await
        .unwrap();
    let all = b.scim_users(&conn).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|r| r.id == ann.id));
    let bob = all
        .iter()
        .find(|r| r.username == "bob@example.com")
        .unwrap();
    assert_ne!(bob.id, ann.id);
    assert_eq!(bob.id.len(), 36, "a UUID");
    // Taking another row's userName is refused, not half-applied.
    let mut clash = bob.clone();
    clash.user_name = "ann.new@example.com".into();
    assert!(!a.update_scim_user(&conn, &clash).await.unwrap());
    assert_eq!(
        b.scim_user(&conn, &bob.id)
            .await
            .unwrap()
            .unwrap()
            .user_name,
        "bob@example.com"
    );
    assert!(a.delete_scim_user(&conn, &bob.id).await.unwrap());
    assert!(!a.delete_scim_user(&conn, &bob.id).await.unwrap());
    assert!(b.scim_user(&conn, &bob.id).await.unwrap().is_none());

    // Groups: names unique per connection, case-insensitively.
    let sales = ScimGroupRow::new("Sales");
    assert!(a.insert_scim_group(&conn, &sales).await.unwrap());
    assert!(
        !b.insert_scim_group(&conn, &ScimGroupRow::new("SALES"))
            .await
            .unwrap()
    );
    a.ensure_scim_groups(&conn, &["sales".into(), "IT".into()])
        .await
        .unwrap();
    let groups = b.scim_groups(&conn).await.unwrap();
    assert_eq!(groups.len(), 2);
    let mut renamed = b.scim_group(&conn, &sales.id).await.unwrap().unwrap();
    renamed.display_name = "it".into();
    assert!(
        !a.update_scim_group(&conn, &renamed).await.unwrap(),
        "IT is taken"
    );
    renamed.display_name = "Sales EMEA".into();
    assert!(a.update_scim_group(&conn, &renamed).await.unwrap());
    assert_eq!(
        b.scim_group(&conn, &sales.id)
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "Sales EMEA"
    );
    assert!(a.delete_scim_group(&conn, &sales.id).await.unwrap());
    assert!(b.scim_group(&conn, &sales.id).await.unwrap().is_none());
}

async fn scim_tokens_are_scoped_keys_with_their_own_purpose(fx: &Fixture) {
    use lpbridge::store::KeyPurpose;
    let a = fx.open().await;
    let conn = ConnectionId::new("acme").unwrap();
    let (info, token) = a.create_scim_token("okta", &conn).await.unwrap();
    assert_eq!(info.purpose, KeyPurpose::Scim);
    assert_eq!(info.connections.as_deref(), Some(&[conn.clone()][..]));
    let seen = a.verify_api_key(token.expose()).await.unwrap().unwrap();
    assert_eq!(seen.purpose, KeyPurpose::Scim);
    let (_, key) = a.create_api_key("ci", false).await.unwrap();
    assert_eq!(
        a.verify_api_key(key.expose())
            .await
            .unwrap()
            .unwrap()
            .purpose,
        KeyPurpose::Api
    );
    let listed = a.list_api_keys().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|k| k.purpose == KeyPurpose::Scim)
            .count(),
        1
    );
}

/// Console users: Argon2id hashes, never the password; sessions shared by replicas, stored as
/// digests, sliding, ended by logout, a new password, a removed user.
async fn console_users_and_sessions(fx: &Fixture) {
    use lpbridge::store::console::Principal;
    let a = fx.open().await;
    let b = fx.open().await; // another replica
    let pw = Secret::new("correct-horse-battery");
    // Bad input names the field and changes nothing.
    let e = a
        .create_console_user("bad name!", &pw, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("username"), "{e}");
    let e = a
        .create_console_user("alice", &Secret::new("short"), false)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("password") && !e.to_string().contains("short"),
        "{e}"
    );
    assert!(a.list_console_users().await.unwrap().is_empty());

    let u = a.create_console_user("Alice", &pw, false).await.unwrap();
    assert_eq!(u.username, "alice");
    let e = b.create_console_user("alice", &pw, true).await.unwrap_err();
    assert!(e.to_string().contains("exists"), "{e}");
    let text_col = |col: &str, table: &str| match fx.url {
        Some(_) => format!("SELECT convert_to({col}, 'UTF8') FROM {table}"),
        None => format!("SELECT CAST({col} AS BLOB) FROM {table}"),
    };
    let hash = fx
        .raw_bytes(&text_col("password_hash", "console_users"))
        .await;
    let hash = String::from_utf8(hash).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(pw.expose()));

    assert!(
        b.verify_console_user("alice", &Secret::new("wrong-password-x"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.verify_console_user("nobody", &pw)
            .await
            .unwrap()
            .is_none()
    );
    let v = b.verify_console_user("ALICE", &pw).await.unwrap().unwrap();
    assert!(v.last_login_at.is_some());

    let ttl = Duration::from_secs(3600);
    let who = Principal::User("alice".into());
    let (s, cookie) = a.create_console_session(&who, ttl).await.unwrap();
    assert!(cookie.expose().starts_with("lpbs_"));
    assert!(!format!("{cookie:?}").contains(cookie.expose()));
    // The other replica knows it; the cookie is not stored, only its digest.
    let seen = b
        .console_session(cookie.expose(), ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.principal, who);
    assert_eq!(seen.csrf, s.csrf);
    let stored = fx.raw_bytes(&text_col("id_hash", "console_sessions")).await;
    assert!(
        !String::from_utf8(stored)
            .unwrap()
            .contains(&cookie.expose()[5..20])
    );
    assert!(
        b.console_session("lpbs_forged", ttl)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.console_session("not-a-session", ttl)
            .await
            .unwrap()
            .is_none()
    );

    // Expired sessions are refused.
    let (_, short) = a
        .create_console_session(&Principal::Key("k1".into()), Duration::from_millis(1))
        .await
        .unwrap();
    eventually(
        "the short session to expire",
        Duration::from_secs(5),
        || async {
            b.console_session(short.expose(), Duration::from_millis(1))
                .await
                .unwrap()
                .is_none()
        },
    )
    .await;

    // A new password ends the sessions; so does removing the user.
    b.set_console_password("alice", &Secret::new("another-long-password"))
        .await
        .unwrap();
    assert!(
        a.console_session(cookie.expose(), ttl)
            .await
            .unwrap()
            .is_none()
    );
    assert!(b.verify_console_user("alice", &pw).await.unwrap().is_none());
    let (_, c2) = a.create_console_session(&who, ttl).await.unwrap();
    a.end_console_session(c2.expose()).await.unwrap();
    assert!(b.console_session(c2.expose(), ttl).await.unwrap().is_none());
    let (_, c3) = a.create_console_session(&who, ttl).await.unwrap();
    assert!(a.delete_console_user("alice").await.unwrap());
    assert!(!a.delete_console_user("alice").await.unwrap());
    assert!(b.console_session(c3.expose(), ttl).await.unwrap().is_none());
}
