//! Crash safety of **Import and Map**, with the real binary: `lpbridge msp import apply` is
//! SIGKILLed mid-import (at a point its test hook `LPBRIDGE_MSP_TEST_HOLD` signals on stderr,
//! or after a given progress line), then run again; the LastPass REST emulator must end with
//! every company and user exactly once. Also the CLI's plan/apply flags, outputs and exit
//! codes, and its error messages.
//!
//! No sleeps: every wait is on a child process's output or exit.
#![cfg(feature = "sandbox")]

mod msp_common;

use std::collections::HashMap;
use std::process::Stdio;

use msp_common::{CW, Fx};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_lpbridge");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn fixture() -> Fx {
    let mut config = msp_common::sandbox_config();
    config.connectwise = sandbox::connectwise::ConnectWiseConfig::with_seed(11).sized(30, 150);
    Fx::with_config(false, config).await.unwrap()
}

fn command(fx: &Fx, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LPBRIDGE_DATA_DIR", fx.dir.path())
        .env("LPBRIDGE_ADMIN", "crash-test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

async fn run(fx: &Fx, args: &[&str], env: &[(&str, &str)]) -> Out {
    let o = command(fx, args, env).output().await.unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

async fn run_stdin(fx: &Fx, args: &[&str], input: &str) -> Out {
    let mut c = command(fx, args, &[]);
    c.stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut s = child.stdin.take().unwrap();
    let _ = s.write_all(input.as_bytes()).await;
    drop(s);
    let o = child.wait_with_output().await.unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `msp import plan` for every Client/Active company with every active contact; the plan file.
async fn make_plan(fx: &Fx) -> (std::path::PathBuf, Value) {
    let o = run(
        fx,
        &[
            "msp",
            "import",
            "plan",
            "--psa",
            CW,
            "--type",
            "1",
            "--status",
            "1",
            "--all-emails",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let path = fx.dir.path().join("plan.json");
    std::fs::write(&path, &o.stdout).unwrap();
    (path, serde_json::from_str(&o.stdout).unwrap())
}

/// Starts `apply` and SIGKILLs it once a stderr line contains `signal`.
async fn apply_and_kill(fx: &Fx, plan: &std::path::Path, env: &[(&str, &str)], signal: &str) {
    let mut child = command(
        fx,
        &[
            "msp",
            "import",
            "apply",
            plan.to_str().unwrap(),
            "--format",
            "json",
        ],
        env,
    )
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next_line().await.unwrap() {
            Some(l) if l.contains(signal) => break,
            Some(l) => seen.push(l),
            None => panic!(
                "apply ended before {signal:?} (exit {:?}):\n{}",
                child.wait().await.unwrap().code(),
                seen.join("\n")
            ),
        }
    }
    // SIGKILL: no destructors, no lock release, nothing flushed.
    child.kill().await.unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success());
}

async fn apply(fx: &Fx, plan: &std::path::Path, env: &[(&str, &str)]) -> (Out, Value) {
    let o = run(
        fx,
        &[
            "msp",
            "import",
            "apply",
            plan.to_str().unwrap(),
            "--format",
            "json",
        ],
        env,
    )
    .await;
    let v = serde_json::from_str(&o.stdout).unwrap_or(Value::Null);
    (o, v)
}

/// What the plan asks for: per created company its name, and every selected e-mail.
struct Want {
    created_names: Vec<String>,
    emails: usize,
}

fn wanted(plan: &Value) -> Want {
    let rows = plan["companies_in_psa"].as_array().unwrap();
    Want {
        created_names: rows
            .iter()
            .filter(|r| r["choice"]["action"] == "create")
            .map(|r| r["name"].as_str().unwrap().to_lowercase())
            .collect(),
        emails: rows
            .iter()
            .map(|r| r["choice"]["emails"].as_array().unwrap().len())
            .sum(),
    }
}

/// Every company of the plan exists once more than before (created) or as before (mapped),
/// every selected e-mail is a user of its company exactly once, and LastPass was asked to
/// add each user at most once over all runs.
async fn assert_exactly_once(fx: &Fx, plan: &Value, names_before: &HashMap<String, usize>) {
    let want = wanted(plan);
    let names = fx.name_counts();
    for n in &want.created_names {
        assert_eq!(
            names.get(n).copied().unwrap_or(0),
            names_before.get(n).copied().unwrap_or(0) + 1,
            "{n}: created exactly once"
        );
    }
    fx.assert_no_duplicate_users();
    let maps = fx.store.msp_company_maps(CW).await.unwrap();
    assert_eq!(
        maps.len(),
        plan["companies_in_psa"].as_array().unwrap().len()
    );
    let contacts = fx.store.msp_contact_maps(CW).await.unwrap();
    assert_eq!(contacts.len(), want.emails);
    let managed = fx.managed();
    for c in &contacts {
        let users = &managed[&c.managed_company_id.parse::<u64>().unwrap()].1;
        assert_eq!(
            users.iter().filter(|u| **u == c.email).count(),
            1,
            "{}",
            c.email
        );
    }
    let adds = fx.sb.msp.stats().requests_for("users.add");
    assert!(
        adds as usize <= want.emails,
        "{adds} adds for {} e-mails",
        want.emails
    );
}

async fn crash_at(hold: &str, extra: &[(&str, &str)]) {
    let fx = fixture().await;
    let (path, plan) = make_plan(&fx).await;
    assert!(wanted(&plan).created_names.len() >= 4);
    let names_before = fx.name_counts();
    let mut env = vec![("LPBRIDGE_MSP_TEST_HOLD", hold)];
    env.extend_from_slice(extra);
    apply_and_kill(&fx, &path, &env, "test hold at").await;
    // The kill left work half done: the journal says so, and for users, LastPass has users
    // the store does not know about yet.
    let journal = fx.store.msp_journal(CW).await.unwrap();
    let point = hold.split(':').next().unwrap();
    let state =
        |s: lpbridge::store::msp::StepState| journal.iter().filter(|j| j.state == s).count();
    use lpbridge::store::msp::StepState::{Done, Intent, Requested};
    match point {
        "company-intent" => assert_eq!(state(Intent), 1, "{journal:?}"),
        "company-requested" => assert!(state(Requested) >= 1, "{journal:?}"),
        "company-done" => assert_eq!(state(Done), 2, "{journal:?}"),
        "user-added" => {
            let adds = fx.sb.msp.stats().requests_for("users.add") as usize;
            let known = fx.store.msp_contact_maps(CW).await.unwrap().len();
            assert!(adds >= 3 && known < adds, "{adds} added, {known} recorded");
        }
        _ => {}
    }
    assert!(
        lpbridge::msp::lock::status(&fx.store, CW)
            .await
            .unwrap()
            .locked,
        "the dead run's lock"
    );
    let (o, v) = apply(&fx, &path, extra).await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_exactly_once(&fx, &plan, &names_before).await;
    // And once more: nothing left to do, nothing written.
    fx.sb.msp.reset_stats();
    let (o, v) = apply(&fx, &path, &[]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(v["calls"]["lastpass_writes"], 0, "{v}");
    assert_eq!(fx.rest_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_create_was_journaled_resumes_by_polling() {
    crash_at("company-requested:3", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_company_was_done_resumes() {
    crash_at("company-done:2", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_users_were_added_maps_them_instead_of_adding_again() {
    crash_at("user-added:3", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_a_create_was_sent_creates_it_once() {
    // No POST was sent; with no grace for in-doubt creates, the re-run creates it.
    crash_at("company-intent:2", &[("LPBRIDGE_MSP_IN_DOUBT_SECS", "0")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_post_and_the_journal_never_duplicates() {
    let fx = fixture().await;
    let (path, plan) = make_plan(&fx).await;
    let names_before = fx.name_counts();
    apply_and_kill(
        &fx,
        &path,
        &[("LPBRIDGE_MSP_TEST_HOLD", "company-posted:3")],
        "test hold at",
    )
    .await;
    // LastPass has the request, the journal does not: the re-run must not create it again
    // while it may still complete.
    let journal = fx.store.msp_journal(CW).await.unwrap();
    assert!(
        journal
            .iter()
            .any(|j| j.state == lpbridge::store::msp::StepState::Intent),
        "{journal:?}"
    );
    let (o, v) = apply(&fx, &path, &[]).await;
    assert_eq!(o.code, 3, "partial: {}\n{}", o.stdout, o.stderr);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["message"], "Something went wrong");
    assert!(
        errors[0]["detail"]
            .as_str()
            .unwrap()
            .contains("interrupted run"),
        "{v}"
    );
    // Time passes; LastPass runs the request. The next run adopts the company.
    fx.sb.clock.advance_us(5_000_000);
    let (o, v) = apply(&fx, &path, &[]).await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(v["companies"]["resumed"].as_u64().unwrap() >= 1, "{v}");
    assert_exactly_once(&fx, &plan, &names_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_a_progress_line_and_run_again_until_done() {
    let fx = fixture().await;
    let (path, plan) = make_plan(&fx).await;
    let names_before = fx.name_counts();
    let want = wanted(&plan);
    let total = plan["companies_in_psa"].as_array().unwrap().len() + want.emails;
    let half = format!("progress: {}/{total}", total / 2);
    apply_and_kill(&fx, &path, &[], &half).await;
    let mut last = Value::Null;
    for _ in 0..3 {
        let (o, v) = apply(&fx, &path, &[]).await;
        last = v;
        if o.code == 0 {
            break;
        }
        // Only an in-doubt create may hold a run back; let LastPass finish it.
        fx.sb.clock.advance_us(5_000_000);
    }
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_exactly_once(&fx, &plan, &names_before).await;
}

// ---- the CLI's surface -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_credentials_flags_outputs_and_exit_codes() {
    let fx = fixture().await;
    let key = fx.sb.msp.credentials().api_key;
    let url = fx.sb.msp_base_url();
    // "Credentials are required": an empty key on stdin (exit 2); nothing stored changes.
    let o = run_stdin(
        &fx,
        &["msp", "connect", "--base-url", &url, "--api-key-stdin"],
        "\n",
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.starts_with("error: Credentials are required\n"),
        "{}",
        o.stderr
    );
    let o = run_stdin(
        &fx,
        &[
            "msp",
            "connect",
            "--base-url",
            &url,
            "--api-key-stdin",
            "--format",
            "json",
        ],
        &format!("{key}\n"),
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!o.stdout.contains(&key) && !o.stderr.contains(&key));
    // A wrong key: refused by the check call, with LastPass's answer.
    let o = run_stdin(
        &fx,
        &["msp", "connect", "--base-url", &url, "--api-key-stdin"],
        "lpkey_AAAAAAAAAAAA_wrongwrongwrongwrongwrongwrongwrongwrong\n",
    )
    .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("authentication failed"), "{}", o.stderr);
    assert!(!o.stderr.contains("wrongwrongwrong"), "{}", o.stderr);
    let o = run(&fx, &["msp", "status", "--format", "json"], &[]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let s: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(s["check"], "ok");
    assert!(!o.stdout.contains(&key));

    // Plan as a table, with choices as flags.
    let (_, plan) = make_plan(&fx).await;
    let rows = plan["companies_in_psa"].as_array().unwrap();
    let first = rows[0]["psa_company_id"].as_str().unwrap();
    let second = rows[1]["psa_company_id"].as_str().unwrap();
    let o = run(
        &fx,
        &[
            "msp", "import", "plan", "--psa", CW, "--type", "1", "--status", "1", "--skip", second,
            "--format", "table",
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("Companies in ConnectWise Manage"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("Unmapped \u{2013} potential duplicate"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("skip"), "{}", o.stdout);
    // Bad flags: exit 2, naming the value.
    let o = run(
        &fx,
        &[
            "msp",
            "import",
            "plan",
            "--psa",
            CW,
            "--emails",
            &format!("{first}=not-an-email"),
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("\"not-an-email\""), "{}", o.stderr);
    let o = run(
        &fx,
        &[
            "msp",
            "import",
            "plan",
            "--psa",
            CW,
            "--map",
            &format!("{first}=99999999"),
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("unknown id"), "{}", o.stderr);

    // Apply: a plan edited in its facts is refused (exit 2), nothing changes.
    let path = fx.dir.path().join("edited.json");
    let mut edited = plan.clone();
    edited["companies_in_psa"][0]["psa_status"] = Value::from("Edited");
    std::fs::write(&path, edited.to_string()).unwrap();
    fx.sb.msp.reset_stats();
    let o = run(
        &fx,
        &["msp", "import", "apply", path.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("altered"), "{}", o.stderr);
    assert_eq!(fx.rest_writes(), 0);
    // A plan for another integration.
    let o = run(
        &fx,
        &[
            "msp",
            "import",
            "apply",
            path.to_str().unwrap(),
            "--psa",
            "sandbox-autotask",
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("made for PSA integration"),
        "{}",
        o.stderr
    );

    // The lock: another admin holds it.
    let other = lpbridge::msp::lock::Owner {
        admin: "bob".into(),
        host: "elsewhere".into(),
        pid: 7,
        token: "t".into(),
    };
    lpbridge::msp::lock::acquire(&fx.store, CW, &other, lpbridge::msp::lock::RUN_TTL)
        .await
        .unwrap();
    let o = run(&fx, &["msp", "import", "plan", "--psa", CW], &[]).await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr
            .starts_with("error: Another admin is already working with this integration\n"),
        "{}",
        o.stderr
    );
    let o = run(
        &fx,
        &["msp", "status", "--format", "json", "--no-check"],
        &[],
    )
    .await;
    assert!(
        o.stdout.contains("held by bob on elsewhere"),
        "{}",
        o.stdout
    );
    let o = run(&fx, &["msp", "unlock", "--psa", CW, "--yes"], &[]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);

    // A table result with a licence error: exit 3, the product's message.
    let l = fx.sb.msp.licenses();
    fx.sb.msp.set_licenses(l.total - l.unallocated);
    let (path, _) = make_plan(&fx).await;
    let o = run(
        &fx,
        &[
            "msp",
            "import",
            "apply",
            path.to_str().unwrap(),
            "--format",
            "table",
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 3, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("You don't seem to have enough available licenses"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("companies imported"), "{}", o.stdout);
    let o = run(&fx, &["msp", "runs", "--psa", CW, "--format", "json"], &[]).await;
    let runs: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(runs[0]["status"], "partial", "{runs}");

    // The key is sealed at rest. Read last, through another process: closing a descriptor of
    // the database in this process would drop SQLite's POSIX locks of this process's store.
    let dump = std::process::Command::new("cat")
        .arg(fx.dir.path().join("lpbridge.db"))
        .output()
        .unwrap()
        .stdout;
    assert!(!dump.is_empty());
    assert!(!dump.windows(key.len()).any(|w| w == key.as_bytes()));
}
