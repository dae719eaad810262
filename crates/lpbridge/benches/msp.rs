//! MSP import benchmark (issue 9's figures), all on 127.0.0.1 in one process: for each PSA
//! emulator (ConnectWise, then Autotask, each in its own sandbox) with 2,000 companies and
//! 40,000 contacts, and the LastPass REST emulator (its hand-made companies included):
//!
//! 1. **plan**: fetch both lists (every company, no filter) and select every contact that has an
//!    e-mail;
//! 2. **apply**: Import and Map (validation and staleness check included: the PSA and LastPass
//!    are read again);
//! 3. **plan again** with nothing changed (every company Mapped, e-mails preselected);
//! 4. **apply again**: must make **zero** write calls to LastPass.
//!
//! Reports wall time and upstream calls per service for each step, from the clients' counters
//! and cross-checked with the emulators' own counters. The store is SQLite in a temporary
//! directory.
//!
//! `cargo bench -p lpbridge --bench msp`; knobs: `BENCH_COMPANIES` (2000), `BENCH_CONTACTS`
//! (40000), `BENCH_CONCURRENCY` (8 companies' users at a time), `BENCH_PSA` (`both`,
//! `connectwise` or `autotask`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lp_types::ConnectionId;
use lpbridge::msp::apply::{self, ApplyOptions, NoProgress};
use lpbridge::msp::lock::Owner;
use lpbridge::msp::plan::{self, Plan};
use lpbridge::msp::{ImportContext, state};
use lpbridge::store::{PsaTuning, Store};
use psa::CompanyFilter;
use serde_json::Value;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let companies = env_usize("BENCH_COMPANIES", 2000);
    let contacts = env_usize("BENCH_CONTACTS", 40_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 8).max(1);
    let which = std::env::var("BENCH_PSA").unwrap_or_else(|_| "both".into());
    println!(
        "# MSP import: {companies} companies, {contacts} contacts per PSA emulator; users of \
         {concurrency} companies at a time; SQLite store"
    );
    for psa in ["sandbox-connectwise", "sandbox-autotask"] {
        if which != "both" && !psa.ends_with(which.as_str()) {
            continue;
        }
        bench(psa, companies, contacts, concurrency).await;
    }
}

/// Requests the PSA emulator counted (its control API's `/stats` total), zeroed afterwards.
async fn psa_emulator_calls(http: &reqwest::Client, sb: &sandbox::SandboxHandle, psa: &str) -> u64 {
    let path = if psa.ends_with("connectwise") {
        "connectwise"
    } else {
        "autotask"
    };
    let url = format!("{}/{path}/stats", sb.control_url());
    let v: Value = http
        .get(&url)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON");
    let _ = http.delete(&url).send().await;
    v["total"].as_u64().unwrap_or(0)
}

/// The LastPass REST emulator's counters by operation, zeroed afterwards.
fn rest_emulator_calls(sb: &sandbox::SandboxHandle) -> BTreeMap<String, u64> {
    let s = sb.msp.stats();
    sb.msp.reset_stats();
    s.by_cmd.into_iter().map(|(k, v)| (k, v.requests)).collect()
}

fn diff(now: &lastpass::CallStats, before: &lastpass::CallStats) -> BTreeMap<String, u64> {
    now.by_cmd
        .iter()
        .map(|(k, v)| (k.clone(), v - before.by_cmd.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn writes(ops: &BTreeMap<String, u64>) -> u64 {
    [
        "companies.create",
        "companies.update",
        "companies.detach",
        "users.add",
    ]
    .iter()
    .map(|op| ops.get(*op).copied().unwrap_or(0))
    .sum()
}

fn fmt_ops(ops: &BTreeMap<String, u64>) -> String {
    let total: u64 = ops.values().sum();
    let parts: Vec<String> = ops.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{total} ({})", parts.join(", "))
}

struct Step {
    label: &'static str,
    wall: Duration,
    psa_client: u64,
    psa_emulator: u64,
    rest_client: BTreeMap<String, u64>,
    rest_emulator: BTreeMap<String, u64>,
    note: String,
}

async fn bench(psa: &str, companies: usize, contacts: usize, concurrency: usize) {
    let size = |mine: bool, n: usize, small: usize| if mine { n } else { small };
    let (cw, at) = (psa.ends_with("connectwise"), psa.ends_with("autotask"));
    let config = sandbox::SandboxConfig {
        connectwise: sandbox::connectwise::ConnectWiseConfig::default()
            .sized(size(cw, companies, 10), size(cw, contacts, 50)),
        autotask: sandbox::autotask::AutotaskConfig::default()
            .with_counts(size(at, companies, 10), size(at, contacts, 50)),
        msp: sandbox::msp::MspConfig::default().with_licenses(1_000_000),
        ..sandbox::SandboxConfig::default()
    };
    let t = Instant::now();
    let sb = sandbox::spawn(config).await.expect("sandbox");
    sb.msp.warm();
    println!(
        "\n## {psa} (sandbox started in {:.2} s)",
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(None, dir.path()).await.expect("store");
    lpbridge::msp::register_sandbox(&store, &sb)
        .await
        .expect("register");
    let ctx = ImportContext::open(
        &store,
        &ConnectionId::new(psa).expect("id"),
        &PsaTuning::default(),
    )
    .await
    .expect("context");
    let key = store.msp_plan_key().await.expect("plan key");
    let http = reqwest::Client::new();
    let filter = CompanyFilter::default();
    let opts = ApplyOptions {
        concurrency,
        ..ApplyOptions::default()
    };
    let _ = psa_emulator_calls(&http, &sb, psa).await;
    let _ = rest_emulator_calls(&sb);
    let mut steps = Vec::new();

    // 1. plan
    let (p0, r0) = (ctx.psa.calls(), ctx.rest.stats());
    let t = Instant::now();
    let st = state::fetch(&ctx, &filter).await.expect("fetch");
    let mut p: Plan = plan::build(psa, ctx.integration.kind(), &filter, &st, &key);
    // Every contact with an e-mail gets access.
    for r in &mut p.companies_in_psa {
        r.choice.emails = r.contacts.iter().filter_map(|c| c.email.clone()).collect();
    }
    let wall = t.elapsed();
    let contacts_read: usize = st.contacts.values().map(Vec::len).sum();
    let emails: usize = p
        .companies_in_psa
        .iter()
        .map(|r| r.choice.emails.len())
        .sum();
    let dups = p
        .companies_in_psa
        .iter()
        .filter(|r| r.import_status == plan::ImportStatus::PotentialDuplicate)
        .count();
    let plan_bytes = p.to_json().len();
    steps.push(Step {
        label: "plan",
        wall,
        psa_client: ctx.psa.calls() - p0,
        psa_emulator: psa_emulator_calls(&http, &sb, psa).await,
        rest_client: diff(&ctx.rest.stats(), &r0),
        rest_emulator: rest_emulator_calls(&sb),
        note: format!(
            "{} companies, {contacts_read} contacts read, {emails} with an e-mail selected, \
             {dups} potential duplicates (mapped to the same-named company by default); plan \
             file {:.1} MB",
            p.companies_in_psa.len(),
            plan_bytes as f64 / 1e6
        ),
    });

    // 2. apply
    let (p0, r0) = (ctx.psa.calls(), ctx.rest.stats());
    let t = Instant::now();
    let result = apply::run(&ctx, p, Owner::new("bench", "1"), &opts, &NoProgress)
        .await
        .expect("apply");
    let wall = t.elapsed();
    assert!(
        result.errors.is_empty(),
        "{:?}",
        &result.errors[..result.errors.len().min(5)]
    );
    steps.push(Step {
        label: "apply",
        wall,
        psa_client: ctx.psa.calls() - p0,
        psa_emulator: psa_emulator_calls(&http, &sb, psa).await,
        rest_client: diff(&ctx.rest.stats(), &r0),
        rest_emulator: rest_emulator_calls(&sb),
        note: format!(
            "{} companies imported (created {}, mapped {}), {} users added; {:.0} users/s",
            result.companies_imported,
            result.companies.created,
            result.companies.mapped,
            result.users.added,
            result.users.added as f64 / wall.as_secs_f64()
        ),
    });

    // 3. plan again, nothing changed
    let (p0, r0) = (ctx.psa.calls(), ctx.rest.stats());
    let t = Instant::now();
    let st = state::fetch(&ctx, &filter).await.expect("fetch");
    let p2 = plan::build(psa, ctx.integration.kind(), &filter, &st, &key);
    let wall = t.elapsed();
    let mapped = p2
        .companies_in_psa
        .iter()
        .filter(|r| r.import_status == plan::ImportStatus::Mapped)
        .count();
    let preselected: usize = p2
        .companies_in_psa
        .iter()
        .map(|r| r.choice.emails.len())
        .sum();
    assert_eq!(mapped, p2.companies_in_psa.len());
    assert_eq!(preselected, emails);
    steps.push(Step {
        label: "plan again",
        wall,
        psa_client: ctx.psa.calls() - p0,
        psa_emulator: psa_emulator_calls(&http, &sb, psa).await,
        rest_client: diff(&ctx.rest.stats(), &r0),
        rest_emulator: rest_emulator_calls(&sb),
        note: format!("{mapped} Mapped, {preselected} e-mails preselected"),
    });

    // 4. apply again: zero writes
    let (p0, r0) = (ctx.psa.calls(), ctx.rest.stats());
    let t = Instant::now();
    let again = apply::run(&ctx, p2, Owner::new("bench", "2"), &opts, &NoProgress)
        .await
        .expect("apply again");
    let wall = t.elapsed();
    let rest_emulator = rest_emulator_calls(&sb);
    assert_eq!(writes(&rest_emulator), 0, "{rest_emulator:?}");
    assert_eq!(again.calls.lastpass_writes, 0);
    steps.push(Step {
        label: "apply again",
        wall,
        psa_client: ctx.psa.calls() - p0,
        psa_emulator: psa_emulator_calls(&http, &sb, psa).await,
        rest_client: diff(&ctx.rest.stats(), &r0),
        rest_emulator,
        note: format!(
            "{} companies kept, {} users kept; LastPass writes: {}",
            again.companies.kept, again.users.kept, again.calls.lastpass_writes
        ),
    });

    println!(
        "| step | wall | PSA calls (client / emulator) | LastPass REST calls (client) | writes | |"
    );
    println!("|---|---|---|---|---|---|");
    for s in &steps {
        assert_eq!(
            s.rest_client.values().sum::<u64>(),
            s.rest_emulator.values().sum::<u64>(),
            "{}: client and emulator counts differ: {:?} vs {:?}",
            s.label,
            s.rest_client,
            s.rest_emulator
        );
        println!(
            "| {} | {:.2} s | {} / {} | {} | {} | {} |",
            s.label,
            s.wall.as_secs_f64(),
            s.psa_client,
            s.psa_emulator,
            fmt_ops(&s.rest_client),
            writes(&s.rest_emulator),
            s.note
        );
    }
    let _ = sb.shutdown().await;
}
