//! Fixtures of the MSP import tests: the in-process sandbox (ConnectWise, Autotask and the
//! LastPass REST API emulators on 127.0.0.1:0, frozen clock, fixed seeds), a store (SQLite or
//! PostgreSQL), the sandbox registered as the MSP settings and the PSA integrations
//! `sandbox-connectwise` / `sandbox-autotask`, and helpers to plan, apply and inspect the
//! emulators.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lastpass::rest::CreationAccountAction;
use lp_types::ConnectionId;
use lpbridge::msp::apply::{self, ApplyOptions, ImportResult, NoProgress};
use lpbridge::msp::lock::Owner;
use lpbridge::msp::plan::{self, Edit, Plan};
use lpbridge::msp::{ImportContext, MspError, state};
use lpbridge::store::{PsaTuning, Store};
use psa::CompanyFilter;
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

#[path = "../common/mod.rs"]
pub mod common;

pub const CW: &str = "sandbox-connectwise";
pub const AT: &str = "sandbox-autotask";

pub struct Fx {
    pub sb: SandboxHandle,
    pub store: Store,
    pub dir: tempfile::TempDir,
    pub _pg: Option<common::PgDatabase>,
    pub http: reqwest::Client,
}

/// The sandbox sizes the tests use (small, seeded).
pub fn sandbox_config() -> SandboxConfig {
    let mut config = SandboxConfig::for_tests();
    config.connectwise = sandbox::connectwise::ConnectWiseConfig::with_seed(11).sized(40, 200);
    config.autotask = sandbox::autotask::AutotaskConfig::seeded(21).with_counts(40, 200);
    config.msp = sandbox::msp::MspConfig::with_seed(31).sized(12, 2);
    config
}

impl Fx {
    /// SQLite (`pg` false) or a fresh PostgreSQL database (`None` when unreachable).
    pub async fn new(pg: bool) -> Option<Fx> {
        Self::with_config(pg, sandbox_config()).await
    }

    pub async fn with_config(pg: bool, config: SandboxConfig) -> Option<Fx> {
        let pgdb = if pg {
            Some(common::PgDatabase::create().await?)
        } else {
            None
        };
        let sb = sandbox::spawn(config).await.expect("sandbox starts");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(pgdb.as_ref().map(|d| d.url.as_str()), dir.path())
            .await
            .expect("store opens");
        lpbridge::msp::register_sandbox(&store, &sb)
            .await
            .expect("sandbox registered");
        Some(Fx {
            sb,
            store,
            dir,
            _pg: pgdb,
            http: reqwest::Client::new(),
        })
    }

    pub async fn ctx(&self, psa: &str) -> Result<ImportContext, MspError> {
        ImportContext::open(
            &self.store,
            &ConnectionId::new(psa).unwrap(),
            &PsaTuning {
                timeout: Some(Duration::from_secs(10)),
                attempts: Some(1),
            },
        )
        .await
    }

    /// The filter that brings in the companies the MSP seed borrowed names from.
    pub fn filter(psa: &str) -> CompanyFilter {
        if psa == CW {
            CompanyFilter {
                types: vec!["1".into()],
                statuses: vec!["1".into()],
            }
        } else {
            CompanyFilter {
                types: vec!["1".into()],
                statuses: vec!["active".into()],
            }
        }
    }

    pub async fn plan(&self, psa: &str) -> Result<Plan, MspError> {
        let ctx = self.ctx(psa).await?;
        let key = self.store.msp_plan_key().await?;
        let f = Self::filter(psa);
        let st = state::fetch(&ctx, &f).await?;
        Ok(plan::build(psa, ctx.integration.kind(), &f, &st, &key))
    }

    pub async fn plan_with(&self, psa: &str, edits: &[Edit]) -> Plan {
        let mut p = self.plan(psa).await.expect("plan");
        plan::apply_edits(&mut p, edits).expect("edits");
        p
    }

    pub async fn apply(&self, psa: &str, p: Plan) -> Result<ImportResult, MspError> {
        self.apply_opts(psa, p, ApplyOptions::default()).await
    }

    pub async fn apply_opts(
        &self,
        psa: &str,
        p: Plan,
        opts: ApplyOptions,
    ) -> Result<ImportResult, MspError> {
        let ctx = self.ctx(psa).await?;
        apply::run(
            &ctx,
            p,
            Owner::new("test-admin", lpbridge_token()),
            &opts,
            &NoProgress,
        )
        .await
    }

    pub fn stage() -> ApplyOptions {
        ApplyOptions {
            user_action: CreationAccountAction::Stage,
            ..ApplyOptions::default()
        }
    }

    /// LastPass REST requests by operation since the last reset.
    pub fn rest_calls(&self) -> BTreeMap<String, u64> {
        self.sb
            .msp
            .stats()
            .by_cmd
            .into_iter()
            .map(|(k, v)| (k, v.requests))
            .collect()
    }

    /// Write requests seen by the LastPass REST emulator since the last reset.
    pub fn rest_writes(&self) -> u64 {
        let s = self.sb.msp.stats();
        [
            "companies.create",
            "companies.update",
            "companies.detach",
            "users.add",
        ]
        .iter()
        .map(|op| s.requests_for(op))
        .sum()
    }

    /// Every managed company: id → (name, user e-mails lower-cased).
    pub fn managed(&self) -> BTreeMap<u64, (String, Vec<String>)> {
        self.sb.msp.with_tenant(|t| {
            t.companies
                .values()
                .map(|c| {
                    (
                        c.id,
                        (
                            c.name.clone(),
                            c.users().values().map(|u| u.email.to_lowercase()).collect(),
                        ),
                    )
                })
                .collect()
        })
    }

    /// Managed companies per (lower-cased) name.
    pub fn name_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (name, _) in self.managed().values() {
            *m.entry(name.trim().to_lowercase()).or_insert(0) += 1;
        }
        m
    }

    /// No managed company holds the same e-mail twice.
    pub fn assert_no_duplicate_users(&self) {
        for (id, (name, users)) in self.managed() {
            let mut seen = std::collections::HashSet::new();
            for u in &users {
                assert!(seen.insert(u.clone()), "{u} twice in {id} {name}");
            }
        }
    }

    pub fn control(&self, path: &str) -> String {
        format!("{}{path}", self.sb.control_url())
    }

    pub async fn control_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.control(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    pub async fn control_patch(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .patch(self.control(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Adds a contact with one e-mail to a PSA company.
    pub async fn add_contact(&self, psa: &str, company: &str, first: &str, email: &str) {
        if psa == CW {
            self.control_post(
                "/connectwise/contacts",
                json!({"company_id": company.parse::<u64>().unwrap(), "first_name": first, "last_name": "Added", "emails": [email]}),
            )
            .await;
        } else {
            self.control_post(
                "/autotask/contacts",
                json!({"companyID": company.parse::<u64>().unwrap(), "firstName": first, "lastName": "Added", "emailAddress": email, "isActive": 1}),
            )
            .await;
        }
    }

    /// Renames a PSA company.
    pub async fn rename_company(&self, psa: &str, company: &str, name: &str) {
        if psa == CW {
            self.control_patch(
                &format!("/connectwise/companies/{company}"),
                json!({"name": name}),
            )
            .await;
        } else {
            self.control_patch(
                &format!("/autotask/companies/{company}"),
                json!({"companyName": name}),
            )
            .await;
        }
    }

    /// Takes a PSA company out of the filter (inactive).
    pub async fn deactivate_company(&self, psa: &str, company: &str) {
        if psa == CW {
            self.control_patch(
                &format!("/connectwise/companies/{company}"),
                json!({"status_id": 2}),
            )
            .await;
        } else {
            self.control_patch(
                &format!("/autotask/companies/{company}"),
                json!({"isActive": false}),
            )
            .await;
        }
    }

    /// Adds a PSA fault rule (the emulator's JSON).
    pub async fn psa_fault(&self, psa: &str, rule: Value) {
        let path = if psa == CW {
            "/connectwise/faults"
        } else {
            "/autotask/faults"
        };
        self.control_post(path, rule).await;
    }
}

pub fn lpbridge_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The rows' import statuses, as the product spells them.
pub fn statuses(p: &Plan) -> Vec<&'static str> {
    p.companies_in_psa
        .iter()
        .map(|r| r.import_status.as_str())
        .collect()
}

/// The e-mail of each row's active contacts with an e-mail.
pub fn active_emails(r: &plan::CompanyRow) -> Vec<String> {
    r.contacts
        .iter()
        .filter(|c| c.active)
        .filter_map(|c| c.email.clone())
        .collect()
}

/// Runs `async fn $name(pg: bool)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(false).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(true).await;
            }
        }
    )*};
}
