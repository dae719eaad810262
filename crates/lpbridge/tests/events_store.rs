//! The event tables of the store, on SQLite and PostgreSQL (`both!`): the outbox commit is
//! atomic, fenced by the watcher's lease and idempotent per event id; `seq` orders commits;
//! sink positions only move forward; dead letters keep their batch; webhook secrets are sealed
//! at rest, bound to their row and never listed; the filters and keyset paging of `GET /events`.
#![cfg(feature = "sandbox")]

mod common;
mod events_common;

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use events_common::Fixture;
use lp_types::{ConnectionId, Secret};
use lpbridge::events::{Category, EventRecord};
use lpbridge::store::{
    DeadLetterQuery, EventListQuery, Fence, NewWebhook, Store, StoreError, WebhookPatch,
};

both!(
    the_outbox_commit_is_fenced_atomic_and_idempotent,
    positions_move_forward_and_dead_letters_keep_their_batch,
    webhook_secrets_are_sealed_and_never_listed,
    events_are_listed_by_filter_and_keyset,
);

const TZ: chrono_tz::Tz = chrono_tz::US::Eastern;

fn record(i: u32, user: &str, action: &str) -> EventRecord {
    let time = NaiveDateTime::parse_from_str("2026-01-05 09:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
        + chrono::Duration::seconds(i64::from(i));
    EventRecord::new(
        lastpass::Event {
            time,
            username: user.into(),
            ip_address: "10.0.0.1".into(),
            action: action.into(),
            data: format!("n{i}"),
            id: None,
        },
        0,
        TZ,
    )
}

fn conn() -> ConnectionId {
    ConnectionId::new("acme").unwrap()
}

async fn lease(store: &Store, name: &str, owner: &str) {
    assert!(
        store
            .try_acquire_lease(name, owner, Duration::from_secs(30))
            .await
            .unwrap()
    );
}

async fn the_outbox_commit_is_fenced_atomic_and_idempotent(fx: &Fixture) {
    let store = fx.open().await;
    let c = conn();
    let fence = Fence {
        lease: "events:acme",
        owner: "me",
    };
    // Not holding the lease: nothing is written.
    assert!(
        !store
            .save_watcher(&c, "live", fence, "{\"s\":0}", "{}")
            .await
            .unwrap()
    );
    lease(&store, "events:acme", "me").await;
    assert!(
        store
            .save_watcher(&c, "live", fence, "{\"s\":0}", "{}")
            .await
            .unwrap()
    );
    let batch: Vec<EventRecord> = (0..1200).map(|i| record(i, "a@x.io", "Log in")).collect();
    let n = store
        .commit_events(&c, "live", fence, &batch, "{\"s\":1}")
        .await
        .unwrap();
    assert_eq!(n, Some(1200));
    // The same events again (a resumed walk): nothing new, the state still saved.
    let n = store
        .commit_events(&c, "live", fence, &batch[..700], "{\"s\":2}")
        .await
        .unwrap();
    assert_eq!(n, Some(0));
    assert_eq!(
        store.load_watcher(&c, "live").await.unwrap().unwrap().state,
        "{\"s\":2}"
    );
    // Another owner takes the lease: the old holder's commit is refused whole.
    store.release_lease("events:acme", "me").await.unwrap();
    lease(&store, "events:acme", "other").await;
    let more: Vec<EventRecord> = (2000..2010)
        .map(|i| record(i, "b@x.io", "Log in"))
        .collect();
    assert_eq!(
        store
            .commit_events(&c, "live", fence, &more, "{\"s\":3}")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.event_count(&c).await.unwrap(), 1200);
    assert_eq!(
        store.load_watcher(&c, "live").await.unwrap().unwrap().state,
        "{\"s\":2}"
    );
    // Seq follows commit order; records round-trip.
    let rows = store.events_after(&c, 0, 5000).await.unwrap();
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(rows[0].record, batch[0]);
    assert_eq!(
        store.event_seq(&c, &batch[5]).await.unwrap(),
        Some(rows[5].seq)
    );
    assert_eq!(store.max_event_seq(&c).await.unwrap(), rows[1199].seq);
    // Another connection's events are its own.
    let other = ConnectionId::new("globex").unwrap();
    assert_eq!(store.event_count(&other).await.unwrap(), 0);
    assert_eq!(store.max_event_seq(&other).await.unwrap(), 0);
}

async fn positions_move_forward_and_dead_letters_keep_their_batch(fx: &Fixture) {
    let store = fx.open().await;
    let c = conn();
    assert_eq!(store.sink_position(&c, "file:x").await.unwrap(), None);
    assert_eq!(store.sink_moved_at(&c, "file:x").await.unwrap(), None);
    let before = Utc::now() - chrono::Duration::seconds(1);
    store.advance_sink(&c, "file:x", 10).await.unwrap();
    let moved = store.sink_moved_at(&c, "file:x").await.unwrap().unwrap();
    assert!(moved >= before && moved <= Utc::now() + chrono::Duration::seconds(1));
    store.advance_sink(&c, "file:x", 5).await.unwrap();
    assert_eq!(store.sink_position(&c, "file:x").await.unwrap(), Some(10));
    lease(&store, "events:acme", "me").await;
    let fence = Fence {
        lease: "events:acme",
        owner: "me",
    };
    store
        .save_watcher(&c, "live", fence, "{}", "{}")
        .await
        .unwrap();
    let batch: Vec<EventRecord> = (0..3).map(|i| record(i, "a@x.io", "Log in")).collect();
    store
        .commit_events(&c, "live", fence, &batch, "{}")
        .await
        .unwrap();
    let stored = store.events_after(&c, 0, 10).await.unwrap();
    let id = store
        .dead_letter(&c, "hook", Some("wh_1"), &stored, "HTTP 500", 8, 40)
        .await
        .unwrap();
    assert_eq!(store.sink_position(&c, "hook").await.unwrap(), Some(40));
    let listed = store
        .list_dead_letters(&DeadLetterQuery {
            webhook_id: Some("wh_1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].event_count, 3);
    assert_eq!(
        (listed[0].first_seq, listed[0].last_seq),
        (stored[0].seq, stored[2].seq)
    );
    assert_eq!(store.dead_letter_payload(id).await.unwrap(), batch);
    store.finish_replay(id, Some("HTTP 502"), 2).await.unwrap();
    let l = &store
        .list_dead_letters(&DeadLetterQuery::default())
        .await
        .unwrap()[0];
    assert_eq!((l.attempts, l.error.as_str()), (10, "HTTP 502"));
    assert!(l.replayed_at.is_none());
    store.finish_replay(id, None, 1).await.unwrap();
    assert!(
        store
            .list_dead_letters(&DeadLetterQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    let all = store
        .list_dead_letters(&DeadLetterQuery {
            include_replayed: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all[0].replayed_at.is_some());
    assert!(matches!(
        store.dead_letter_payload(9999).await,
        Err(StoreError::NotFound { .. })
    ));
}

const SECRET: &str = "whsec-Very-Secret-4242";

async fn webhook_secrets_are_sealed_and_never_listed(fx: &Fixture) {
    let store = fx.open().await;
    let c = conn();
    let w = store
        .create_webhook(NewWebhook {
            connection_id: c.clone(),
            url: "https://siem.example.com/in".into(),
            secret: Secret::new(SECRET),
            categories: Some(vec![Category::Authentication, Category::Admin]),
            enabled: true,
        })
        .await
        .unwrap();
    assert!(w.id.starts_with("wh_"));
    let shown = format!(
        "{w:?} {} {:?}",
        serde_json::to_string(&w).unwrap(),
        store.list_webhooks(None).await.unwrap()
    );
    assert!(!shown.contains(SECRET), "{shown}");
    let full = store.get_webhook(&w.id).await.unwrap().unwrap();
    assert_eq!(full.secret.expose(), SECRET);
    assert!(!format!("{full:?}").contains(SECRET));
    // Starts at the connection's newest event (none yet).
    assert_eq!(
        store.sink_position(&c, &w.sink_name()).await.unwrap(),
        Some(0)
    );
    // At rest: sealed, not the secret's bytes.
    let raw = raw_secret_column(fx, &w.id).await;
    assert!(
        !raw.windows(SECRET.len())
            .any(|win| win == SECRET.as_bytes())
    );
    // Patch: a new URL keeps the secret; null categories means every event.
    let p = store
        .update_webhook(
            &w.id,
            WebhookPatch {
                url: Some("https://siem.example.com/v2".into()),
                categories: Some(None),
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (p.url.as_str(), p.categories.clone(), p.enabled),
        ("https://siem.example.com/v2", None, false)
    );
    assert_eq!(
        store
            .get_webhook(&w.id)
            .await
            .unwrap()
            .unwrap()
            .secret
            .expose(),
        SECRET
    );
    let e = store
        .update_webhook(
            &w.id,
            WebhookPatch {
                url: Some("gopher://x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("gopher://x"), "{e}");
    assert!(matches!(
        store
            .update_webhook("wh_missing", WebhookPatch::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.delete_webhook(&w.id).await.unwrap());
    assert!(!store.delete_webhook(&w.id).await.unwrap());
    assert!(store.webhook_summary(&w.id).await.unwrap().is_none());
    assert_eq!(store.sink_position(&c, &w.sink_name()).await.unwrap(), None);
}

async fn raw_secret_column(fx: &Fixture, id: &str) -> Vec<u8> {
    use sqlx::Connection as _;
    let sql = format!("SELECT secret_ciphertext FROM webhooks WHERE id = '{id}'");
    match &fx.url {
        Some(u) => {
            let mut c = sqlx::PgConnection::connect(u.expose()).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        }
        None => {
            let path = fx.config().sqlite_path().unwrap();
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

async fn events_are_listed_by_filter_and_keyset(fx: &Fixture) {
    let store = fx.open().await;
    let c = conn();
    lease(&store, "events:acme", "me").await;
    let fence = Fence {
        lease: "events:acme",
        owner: "me",
    };
    store
        .save_watcher(&c, "live", fence, "{}", "{}")
        .await
        .unwrap();
    let mut batch = Vec::new();
    for i in 0..30 {
        let (user, action) = match i % 3 {
            0 => ("Ann@X.io", "Log in"),
            1 => ("bob@x.io", "Failed Login Attempt"),
            _ => ("ann@x.io", "Added Site"),
        };
        batch.push(record(i, user, action));
    }
    store
        .commit_events(&c, "live", fence, &batch, "{}")
        .await
        .unwrap();
    let page = |q: EventListQuery| {
        let store = store.clone();
        let c = c.clone();
        async move { store.list_events(&c, &q).await.unwrap() }
    };
    // Newest first, in pages of 7 by keyset: every event once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = page(EventListQuery {
            after,
            limit: 7,
            ..Default::default()
        })
        .await;
        let Some(last) = rows.last() else { break };
        after = Some((last.record.time_utc.timestamp_micros(), last.seq));
        seen.extend(rows.iter().map(|r| r.record.time_utc));
    }
    assert_eq!(seen.len(), 30);
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let asc = page(EventListQuery {
        ascending: true,
        limit: 100,
        ..Default::default()
    })
    .await;
    assert!(
        asc.windows(2)
            .all(|w| w[0].record.time_utc <= w[1].record.time_utc)
    );
    // Filters: user any case, category, action any case, a UTC range.
    let ann = page(EventListQuery {
        user: Some("ANN@x.io".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(ann.len(), 20);
    let auth = page(EventListQuery {
        category: Some(Category::Authentication),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(auth.len(), 20);
    let failed = page(EventListQuery {
        action: Some("failed login attempt".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(failed.len(), 10);
    let t = |i: u32| -> DateTime<Utc> { batch[i as usize].time_utc };
    let range = page(EventListQuery {
        from: Some(t(10)),
        to: Some(t(19)),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(range.len(), 10);

    // The chart's counts: one grouped query, per 10-second bucket and category, agreeing with
    // the listing under the same filters.
    let start = t(0).timestamp_micros();
    let counts = |q: EventListQuery| {
        let store = store.clone();
        let c = c.clone();
        async move {
            let mut v = store.count_events(&c, &q, start, 10_000_000).await.unwrap();
            v.sort();
            v
        }
    };
    let all = counts(EventListQuery::default()).await;
    assert_eq!(all.iter().map(|(_, _, n)| n).sum::<i64>(), 30);
    assert_eq!(
        all.iter().map(|(b, _, _)| *b).max(),
        Some(2),
        "30 s in 10 s buckets"
    );
    let auth_in_first: i64 = all
        .iter()
        .filter(|(b, cat, _)| *b == 0 && cat == Category::Authentication.as_str())
        .map(|(_, _, n)| n)
        .sum();
    // Seconds 0..9: i % 3 of 0 and 1 are log-ins and failed log-ins.
    assert_eq!(auth_in_first, 7);
    let ann_range = counts(EventListQuery {
        user: Some("ann@X.IO".into()),
        from: Some(t(10)),
        to: Some(t(19)),
        ..Default::default()
    })
    .await;
    let listed = page(EventListQuery {
        user: Some("ann@x.io".into()),
        from: Some(t(10)),
        to: Some(t(19)),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(
        ann_range.iter().map(|(_, _, n)| n).sum::<i64>(),
        i64::try_from(listed.len()).unwrap()
    );
    assert!(ann_range.iter().all(|(b, _, _)| *b == 1));
}
