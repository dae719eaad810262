//! Listing 20,000 companies and 200,000 contacts from the Autotask emulator (in-process, on
//! loopback) through `AutotaskClient`, reporting upstream calls (which must be the page-size
//! minimum, `ceil(rows / 500)` per listing), wall time and peak RSS.
//!
//! Contacts are read in one paged `Contacts/query` pass (`id gte 0`) when every company is
//! wanted: that is exactly `ceil(contacts / 500)` calls. Querying per company would be 20,000
//! calls; `companyID in [...]` batches (the filtered case, also measured) cost at most one extra
//! call per 500 companies, because each batch ends on a partial page.
//!
//! Run: `cargo bench -p psa --bench autotask` (sizes: `AT_BENCH_COMPANIES`, `AT_BENCH_CONTACTS`).
//! Peak RSS is `VmHWM`, reset after seeding (`/proc/self/clear_refs`), so it shows what the
//! listings add on top of the emulator's own data; the emulator shares the process.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use psa::autotask::{AutotaskClient, AutotaskConfig, RetryPolicy};
use psa::{CompanyFilter, PsaDirectory};
use sandbox::SandboxConfig;
use sandbox::autotask::AutotaskConfig as EmuConfig;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kb: Option<u64>) -> String {
    kb.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

struct Phase {
    name: &'static str,
    rows: usize,
    calls: u64,
    minimum: u64,
    wall: Duration,
    peak_kb: Option<u64>,
}

fn main() {
    let companies = env_usize("AT_BENCH_COMPANIES", 20_000);
    let contacts = env_usize("AT_BENCH_CONTACTS", 200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run(companies, contacts));
    std::process::exit(code);
}

async fn run(companies: usize, contacts: usize) -> i32 {
    let mut emu = EmuConfig::seeded(7).with_counts(companies, contacts);
    // 20,000 + 200,000 rows is 440 calls per pass; the benchmark makes several passes.
    emu.hourly_limit = Some(1_000_000);
    let sb = sandbox::spawn(SandboxConfig {
        autotask: emu,
        ..SandboxConfig::for_tests()
    })
    .await
    .expect("sandbox");
    let t = Instant::now();
    let seeded = sb
        .autotask
        .read(|db| (db.companies.len(), db.contacts.len()));
    let seed_time = t.elapsed();
    let rss_after_seed = status_kb("VmRSS:");
    let creds = sb.autotask.credentials();
    let client = AutotaskClient::new(
        AutotaskConfig::new(creds.username, creds.secret, creds.integration_code)
            .with_discovery_url(format!("{}/atservicesrest", sb.autotask_base()))
            .with_retry(RetryPolicy {
                attempts: 3,
                base_delay: Duration::from_millis(10),
                max_wait: Duration::from_secs(1),
            }),
    )
    .expect("client");
    // Warm-up: zone discovery and the companyType picklist (one call each, cached).
    client.check().await.expect("check");
    client.attributes().await.expect("attributes");
    let setup_calls = client.calls();
    let can_reset = reset_peak();
    let mut phases = Vec::new();

    let c0 = client.calls();
    let t = Instant::now();
    let ids: Vec<String> = client
        .companies(&CompanyFilter::default())
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .expect("companies");
    phases.push(Phase {
        name: "companies (all)",
        rows: ids.len(),
        calls: client.calls() - c0,
        minimum: (ids.len() as u64).div_ceil(500),
        wall: t.elapsed(),
        peak_kb: status_kb("VmHWM:"),
    });

    reset_peak();
    let c0 = client.calls();
    let t = Instant::now();
    let n = client
        .all_contacts()
        .try_fold(0usize, |n, _c| async move { Ok(n + 1) })
        .await
        .expect("contacts");
    phases.push(Phase {
        name: "contacts (one pass)",
        rows: n,
        calls: client.calls() - c0,
        minimum: (n as u64).div_ceil(500),
        wall: t.elapsed(),
        peak_kb: status_kb("VmHWM:"),
    });

    reset_peak();
    let c0 = client.calls();
    let t = Instant::now();
    let n = client
        .contacts_of_companies(&ids)
        .fold(0usize, |n, r| async move {
            r.expect("contact");
            n + 1
        })
        .await;
    phases.push(Phase {
        name: "contacts (companyID in batches)",
        rows: n,
        calls: client.calls() - c0,
        minimum: (n as u64).div_ceil(500),
        wall: t.elapsed(),
        peak_kb: status_kb("VmHWM:"),
    });

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "autotask benchmark: {} companies, {} contacts seeded in {:.2?} ({cpus} CPUs)",
        seeded.0, seeded.1, seed_time
    );
    println!(
        "RSS after seeding (emulator data): {}; setup calls (zone + count + picklist): {setup_calls}",
        mib(rss_after_seed)
    );
    if !can_reset {
        println!("(could not reset VmHWM: peaks below include seeding)");
    }
    println!(
        "{:<34} {:>8} {:>7} {:>8} {:>9} {:>12} {:>12}",
        "phase", "rows", "calls", "minimum", "wall", "rows/s", "peak RSS"
    );
    let mut code = 0;
    for p in &phases {
        println!(
            "{:<34} {:>8} {:>7} {:>8} {:>8.2?} {:>12.0} {:>12}",
            p.name,
            p.rows,
            p.calls,
            p.minimum,
            p.wall,
            p.rows as f64 / p.wall.as_secs_f64(),
            mib(p.peak_kb)
        );
    }
    // The unfiltered passes must be at the page-size minimum; batches may add one partial page
    // per 500 companies.
    for p in &phases[..2] {
        if p.calls != p.minimum {
            eprintln!("{}: {} calls, minimum {}", p.name, p.calls, p.minimum);
            code = 1;
        }
    }
    let batches = (ids.len() as u64).div_ceil(500);
    if phases[2].calls > phases[2].minimum + batches {
        eprintln!(
            "batched contacts: {} calls, bound {}",
            phases[2].calls,
            phases[2].minimum + batches
        );
        code = 1;
    }
    let st = sb.autotask.stats();
    println!(
        "emulator saw {} requests ({} thread-limited, max {} in flight on Contacts)",
        st.total,
        st.thread_limited,
        st.max_in_flight.get("Contacts").copied().unwrap_or(0)
    );
    let _ = sb.shutdown().await;
    code
}
