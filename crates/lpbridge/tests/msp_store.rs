//! The MSP import's storage on both backends (SQLite and PostgreSQL; see `tests/store.rs` for
//! the PostgreSQL conventions): the sealed REST API key, the plan key, mappings (one managed
//! company per PSA company), fenced writes, the journal, runs, wizards and lease take-over.

mod common;

use std::time::Duration;

use chrono::Utc;
use lp_types::Secret;
use lpbridge::store::Store;
use lpbridge::store::msp::{
    CompanyMap, ContactMap, ImportRunRow, JournalEntry, LockFence, RunStatus, StepState, WizardRow,
};

struct Fx {
    dir: tempfile::TempDir,
    url: Option<String>,
    _pg: Option<common::PgDatabase>,
}

impl Fx {
    async fn new(pg: bool) -> Option<Fx> {
        let db = if pg {
            Some(common::PgDatabase::create().await?)
        } else {
            None
        };
        Some(Fx {
            dir: tempfile::tempdir().unwrap(),
            url: db.as_ref().map(|d| d.url.clone()),
            _pg: db,
        })
    }

    async fn open(&self) -> Store {
        Store::open(self.url.as_deref(), self.dir.path())
            .await
            .unwrap()
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fx = super::Fx::new(false).await.unwrap();
                super::$name(&fx).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(fx) = super::Fx::new(true).await else {
                    return;
                };
                super::$name(&fx).await;
            }
        }
    )*};
}

both!(
    settings_are_sealed_and_plan_keys_stable,
    mappings_are_unique_and_writes_fenced,
    journal_runs_and_wizards_round_trip,
    dead_holders_can_be_taken_over,
);

const KEY: &str = "lpkey_ABCDEFGHIJKL_0123456789abcdefghijklmnopqrstuvwxyzABCD";

async fn settings_are_sealed_and_plan_keys_stable(fx: &Fx) {
    let s = fx.open().await;
    assert!(s.msp_settings().await.unwrap().is_none());
    let url = url::Url::parse("https://api.lastpass.com/business/v1").unwrap();
    let e = s
        .set_msp_settings(&url, &Secret::new(" "))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("api_key"), "{e}");
    let sum = s.set_msp_settings(&url, &Secret::new(KEY)).await.unwrap();
    assert!(sum.api_key_set);
    assert!(!format!("{sum:?}").contains("lpkey_"));
    let got = s.msp_settings().await.unwrap().unwrap();
    assert_eq!(got.api_key.expose(), KEY);
    assert!(!format!("{got:?}").contains("lpkey_"), "Debug redacts");
    // Another store process reads the same key and the same plan key.
    let k1 = s.msp_plan_key().await.unwrap();
    let s2 = fx.open().await;
    assert_eq!(
        s2.msp_settings().await.unwrap().unwrap().api_key.expose(),
        KEY
    );
    assert_eq!(s2.msp_plan_key().await.unwrap().0, k1.0);
    assert_eq!(format!("{k1:?}"), "PlanKey(***)");
    // Another database has another plan key.
    let other_fx = Fx::new(false).await.unwrap();
    let other = other_fx.open().await;
    assert_ne!(other.msp_plan_key().await.unwrap().0, k1.0);
    assert!(s.delete_msp_settings().await.unwrap());
    assert!(s.msp_settings_summary().await.unwrap().is_none());
}

fn cmap(psa: &str, managed: &str) -> CompanyMap {
    CompanyMap {
        integration_id: "cw".into(),
        psa_company_id: psa.into(),
        psa_company_name: format!("Company {psa}"),
        managed_company_id: managed.into(),
        managed_company_name: format!("Managed {managed}"),
        last_import_at: Utc::now(),
    }
}

async fn mappings_are_unique_and_writes_fenced(fx: &Fx) {
    let s = fx.open().await;
    let lease = "msp-import:cw";
    assert!(
        s.try_acquire_lease(lease, "me", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let fence = LockFence { lease, owner: "me" };
    s.put_msp_company_map(&cmap("1", "900"), fence)
        .await
        .unwrap();
    s.put_msp_company_map(&cmap("2", "901"), fence)
        .await
        .unwrap();
    // Two PSA companies never share a managed company.
    let e = s
        .put_msp_company_map(&cmap("3", "900"), fence)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("900"), "{e}");
    // Remapping a PSA company replaces its mapping.
    s.put_msp_company_map(&cmap("1", "902"), fence)
        .await
        .unwrap();
    let maps = s.msp_company_maps("cw").await.unwrap();
    assert_eq!(maps.len(), 2);
    assert_eq!(maps[0].managed_company_id, "902");
    assert!(s.msp_company_maps("other").await.unwrap().is_empty());
    let c = ContactMap {
        integration_id: "cw".into(),
        psa_company_id: "1".into(),
        email: "ann@x.example".into(),
        psa_contact_id: "7".into(),
        managed_company_id: "902".into(),
        lastpass_user_id: "51".into(),
        selected: true,
        last_import_at: Utc::now(),
    };
    s.put_msp_contact_maps(std::slice::from_ref(&c), fence)
        .await
        .unwrap();
    let mut c2 = c.clone();
    c2.selected = false;
    s.put_msp_contact_maps(&[c2], fence).await.unwrap();
    let cs = s.msp_contact_maps("cw").await.unwrap();
    assert_eq!(cs.len(), 1);
    assert!(!cs[0].selected);
    // Without the lock nothing is written.
    let stranger = LockFence {
        lease,
        owner: "someone-else",
    };
    assert!(
        s.put_msp_company_map(&cmap("4", "904"), stranger)
            .await
            .is_err()
    );
    assert!(
        s.put_msp_contact_maps(std::slice::from_ref(&c), stranger)
            .await
            .is_err()
    );
    assert!(s.release_lease(lease, "me").await.unwrap());
    assert!(
        s.put_msp_company_map(&cmap("4", "904"), fence)
            .await
            .is_err()
    );
    assert_eq!(s.msp_company_maps("cw").await.unwrap().len(), 2);
}

fn entry(step: &str, state: StepState) -> JournalEntry {
    JournalEntry {
        integration_id: "cw".into(),
        step: step.into(),
        plan_id: "p1".into(),
        run_id: "r1".into(),
        state,
        request_id: None,
        request_url: None,
        result_id: None,
        intent_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

async fn journal_runs_and_wizards_round_trip(fx: &Fx) {
    let s = fx.open().await;
    let lease = "msp-import:cw";
    assert!(
        s.try_acquire_lease(lease, "me", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let fence = LockFence { lease, owner: "me" };
    let mut e = entry("company:1", StepState::Intent);
    s.put_msp_journal(&e, fence).await.unwrap();
    e.state = StepState::Requested;
    e.request_id = Some("00000001-x".into());
    e.request_url = Some("https://api.example/business/v1/requests/00000001-x".into());
    s.put_msp_journal(&e, fence).await.unwrap();
    let j = s.msp_journal("cw").await.unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].state, StepState::Requested);
    assert_eq!(j[0].request_id.as_deref(), Some("00000001-x"));
    // Done and mapped in one transaction.
    e.state = StepState::Done;
    e.result_id = Some("900".into());
    s.complete_msp_company(&e, &cmap("1", "900"), fence)
        .await
        .unwrap();
    assert_eq!(
        s.msp_journal("cw").await.unwrap()[0].result_id.as_deref(),
        Some("900")
    );
    assert_eq!(
        s.msp_company_maps("cw").await.unwrap()[0].managed_company_id,
        "900"
    );
    // A conflicting mapping rolls the whole step back.
    let mut e2 = entry("company:2", StepState::Done);
    e2.result_id = Some("900".into());
    assert!(
        s.complete_msp_company(&e2, &cmap("2", "900"), fence)
            .await
            .is_err()
    );
    assert_eq!(s.msp_journal("cw").await.unwrap().len(), 1);

    let now = Utc::now();
    let run = ImportRunRow {
        id: "r1".into(),
        integration_id: "cw".into(),
        plan_id: "p1".into(),
        plan_hash: "h".into(),
        owner: "me".into(),
        status: RunStatus::Running,
        total_steps: 10,
        done_steps: 0,
        counts: serde_json::json!({}),
        errors: serde_json::json!([]),
        started_at: now,
        finished_at: None,
        updated_at: now,
    };
    s.create_msp_run(&run).await.unwrap();
    s.update_msp_run_progress(
        "r1",
        4,
        &serde_json::json!({"a": 1}),
        &serde_json::json!([]),
    )
    .await
    .unwrap();
    assert_eq!(s.msp_run("r1").await.unwrap().unwrap().done_steps, 4);
    s.finish_msp_run(
        "r1",
        RunStatus::Partial,
        10,
        &serde_json::json!({}),
        &serde_json::json!([{"message": "m"}]),
    )
    .await
    .unwrap();
    let r = s.msp_run("r1").await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Partial);
    assert!(r.finished_at.is_some());
    assert_eq!(r.errors[0]["message"], "m");
    assert_eq!(s.msp_runs("cw", 5).await.unwrap().len(), 1);
    assert!(s.msp_run("nope").await.unwrap().is_none());

    let w = WizardRow {
        id: "w1".into(),
        integration_id: "cw".into(),
        created_by: "key1".into(),
        plan: "{}".into(),
        run_id: None,
        created_at: now,
        updated_at: now,
    };
    s.create_msp_wizard(&w).await.unwrap();
    assert!(
        s.update_msp_wizard("w1", "{\"a\":1}", Some("r1"))
            .await
            .unwrap()
    );
    let got = s.msp_wizard("w1").await.unwrap().unwrap();
    assert_eq!(got.plan, "{\"a\":1}");
    assert_eq!(got.run_id.as_deref(), Some("r1"));
    // A principal's newest open wizard on an integration (the console offers to resume it).
    let later = now + chrono::Duration::seconds(5);
    for (id, by, integration, at) in [
        ("w2", "key1", "cw", later),
        ("w3", "key2", "cw", later),
        ("w4", "key1", "at", later),
    ] {
        let row = WizardRow {
            id: id.into(),
            created_by: by.into(),
            integration_id: integration.into(),
            created_at: at,
            updated_at: at,
            ..w.clone()
        };
        s.create_msp_wizard(&row).await.unwrap();
    }
    let latest = s.latest_msp_wizard_of("key1", "cw").await.unwrap().unwrap();
    assert_eq!(latest.id, "w2");
    assert!(
        s.latest_msp_wizard_of("key3", "cw")
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.delete_msp_wizard("w1").await.unwrap());
    assert!(s.msp_wizard("w1").await.unwrap().is_none());
}

async fn dead_holders_can_be_taken_over(fx: &Fx) {
    let s = fx.open().await;
    assert!(
        s.try_acquire_lease("l", "dead", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !s.try_acquire_lease("l", "me", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let (owner, _, live) = s.lease_row("l").await.unwrap().unwrap();
    assert_eq!(owner, "dead");
    assert!(live);
    // Only from the holder named: a stale view loses.
    assert!(
        !s.take_over_lease("l", "someone", "me", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        s.take_over_lease("l", "dead", "me", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(s.lease("l").await.unwrap().unwrap().owner, "me");
    assert!(
        !s.take_over_lease("l", "dead", "other", Duration::from_secs(60))
            .await
            .unwrap()
    );
    // Expired rows show as not live.
    assert!(
        s.try_acquire_lease("e", "x", Duration::from_micros(1))
            .await
            .unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, live) = s.lease_row("e").await.unwrap().unwrap();
        if !live {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
}
