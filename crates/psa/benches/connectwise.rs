//! ConnectWise listing benchmark: 20,000 companies and 200,000 contacts from the in-process
//! emulator, reporting upstream calls (checked against the page-size minimum), wall time and
//! peak RSS (`VmHWM`, reset before each phase through `/proc/self/clear_refs`).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/tgt/cw cargo bench -p psa --bench connectwise
//! CW_BENCH_COMPANIES=2000 CW_BENCH_CONTACTS=20000 CW_BENCH_PER_COMPANY=1 cargo bench -p psa --bench connectwise
//! ```
//!
//! Contacts are read in one pass over `company/contacts` (`ceil(contacts / 1000)` calls): the
//! minimum when every company is wanted. The per-company trait call would cost one call per
//! company (20,000), and `company/id in (…)` batches cost a partial last page per batch; both
//! are measured too (the per-company path only with `CW_BENCH_PER_COMPANY=1`).

use std::time::Instant;

use futures::StreamExt;
use lp_types::Secret;
use psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
use psa::{CompanyFilter, PsaDirectory};
use sandbox::SandboxConfig;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmHWM` and `VmRSS` in MiB (0 where `/proc` is missing).
fn memory() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0), so each phase reports its own peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Phase {
    name: &'static str,
    items: usize,
    calls: u64,
    minimum: u64,
    secs: f64,
    peak_mib: f64,
}

fn main() {
    let companies = env("CW_BENCH_COMPANIES", 20_000);
    let contacts = env("CW_BENCH_CONTACTS", 200_000);
    let per_company = std::env::var("CW_BENCH_PER_COMPANY").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let mut config = SandboxConfig::for_tests();
        config.connectwise =
            sandbox::connectwise::ConnectWiseConfig::with_seed(1).sized(companies, contacts);
        let sb = sandbox::spawn(config).await.expect("sandbox");
        let t = Instant::now();
        sb.connectwise.warm();
        let seed_secs = t.elapsed().as_secs_f64();
        let (_, rss0) = memory();
        println!(
            "connectwise bench: {companies} companies, {contacts} contacts; seeded in {seed_secs:.2} s; RSS after seeding {rss0:.0} MiB"
        );
        let creds = sb.connectwise.credentials();
        let client = ConnectWiseClient::new(ConnectWiseConfig::new(
            sb.connectwise_site(),
            creds.company_id,
            creds.public_key,
            Secret::new(creds.private_key),
            creds.client_id,
        ))
        .expect("client");
        let page = psa::connectwise::MAX_PAGE_SIZE;
        let mut phases = Vec::new();

        // Companies: discovery + the statuses table (for `active`) + one call per 1,000.
        reset_peak();
        let t = Instant::now();
        let before = client.calls();
        let mut ids = Vec::with_capacity(companies);
        let all = CompanyFilter::default();
        let mut s = client.companies(&all);
        while let Some(c) = s.next().await {
            ids.push(c.expect("company").id);
        }
        drop(s);
        phases.push(Phase {
            name: "companies",
            items: ids.len(),
            calls: client.calls() - before,
            minimum: 2 + ids.len().div_ceil(page).max(1) as u64,
            secs: t.elapsed().as_secs_f64(),
            peak_mib: memory().0,
        });

        // All contacts in one pass.
        reset_peak();
        let t = Instant::now();
        let before = client.calls();
        let (mut n, mut last) = (0usize, 0u64);
        let mut s = client.all_contacts();
        while let Some(c) = s.next().await {
            let id: u64 = c.expect("contact").id.parse().expect("numeric id");
            assert!(id > last, "id order");
            last = id;
            n += 1;
        }
        drop(s);
        phases.push(Phase {
            name: "contacts, one pass",
            items: n,
            calls: client.calls() - before,
            minimum: n.div_ceil(page).max(1) as u64,
            secs: t.elapsed().as_secs_f64(),
            peak_mib: memory().0,
        });

        // Contacts of every company through `company/id in (…)` batches.
        reset_peak();
        let t = Instant::now();
        let before = client.calls();
        let n = client.contacts_of(&ids).count().await;
        phases.push(Phase {
            name: "contacts, id-in batches",
            items: n,
            calls: client.calls() - before,
            minimum: n.div_ceil(page).max(1) as u64,
            secs: t.elapsed().as_secs_f64(),
            peak_mib: memory().0,
        });

        if per_company {
            reset_peak();
            let t = Instant::now();
            let before = client.calls();
            let mut n = 0;
            for id in &ids {
                n += client.contacts(id).count().await;
            }
            phases.push(Phase {
                name: "contacts, per company (trait)",
                items: n,
                calls: client.calls() - before,
                minimum: n.div_ceil(page).max(1) as u64,
                secs: t.elapsed().as_secs_f64(),
                peak_mib: memory().0,
            });
        }

        println!(
            "| phase | items | upstream calls | page-size minimum | wall time | items/s | peak RSS (MiB) |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for p in &phases {
            println!(
                "| {} | {} | {} | {} | {:.2} s | {:.0} | {:.0} |",
                p.name,
                p.items,
                p.calls,
                p.minimum,
                p.secs,
                p.items as f64 / p.secs.max(1e-9),
                p.peak_mib
            );
        }
        println!(
            "peak RSS includes the in-process emulator ({rss0:.0} MiB resident after seeding); emulator request counters: {} requests",
            sb.connectwise.stats().total
        );
        assert_eq!(phases[0].items, companies);
        assert_eq!(phases[0].calls, phases[0].minimum, "companies at the minimum");
        assert_eq!(phases[1].items, contacts);
        assert_eq!(phases[1].calls, phases[1].minimum, "contacts at the minimum");
        let _ = sb.shutdown().await;
    });
}
