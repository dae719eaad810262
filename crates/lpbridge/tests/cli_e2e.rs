//! End-to-end tests: the real `lpbridge` binary against an in-process sandbox on 127.0.0.1:0.
//!
//! Each test spawns its own sandbox (`sandbox::spawn`), runs the binary with
//! `LPBRIDGE_ENDPOINT/CID/PROVHASH` and a temporary `LPBRIDGE_DATA_DIR`, and asserts on stdout, the
//! exit code and the sandbox's state and request counters. No sleeps: every wait is on a child
//! process or an HTTP answer.
#![cfg(feature = "sandbox")]

use std::collections::HashSet;
use std::process::Stdio;

use sandbox::faults::{FaultKind, FaultRule};
use sandbox::lastpass::SeedOptions;
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_lpbridge");

struct Env {
    sb: SandboxHandle,
    home: tempfile::TempDir,
    cid: u64,
    provhash: String,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
    fn jsonl(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    /// Exit 3 (partly done): the per-item JSON report.
    fn partial(self) -> Value {
        assert_eq!(self.code, 3, "{}", self.stderr);
        self.json()
    }
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

async fn spawn_with(config: SandboxConfig) -> Env {
    let sb = sandbox::spawn(config).await.expect("sandbox starts");
    let acc = sb.primary_account();
    Env {
        cid: acc.cid,
        provhash: acc.provhash,
        sb,
        home: tempfile::tempdir().unwrap(),
    }
}

/// A sandbox whose primary account is seeded as `for_tests` after `f`.
async fn spawn_seeded(f: impl FnOnce(&mut SeedOptions)) -> Env {
    let mut cfg = SandboxConfig::for_tests();
    f(&mut cfg.lastpass.accounts[0].seed);
    spawn_with(cfg).await
}

async fn spawn_env() -> Env {
    spawn_with(SandboxConfig::for_tests()).await
}

impl Env {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(BIN);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LPBRIDGE_DATA_DIR", self.home.path())
            .env("LPBRIDGE_ENDPOINT", self.sb.lastpass_endpoint())
            .env("LPBRIDGE_CID", self.cid.to_string())
            .env("LPBRIDGE_PROVHASH", &self.provhash)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run_cmd(&self, mut c: tokio::process::Command, stdin: Option<&str>) -> Out {
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = c.spawn().expect("lpbridge runs");
        if let Some(input) = stdin {
            let mut s = child.stdin.take().unwrap();
            s.write_all(input.as_bytes()).await.unwrap();
            drop(s);
        }
        let o = child.wait_with_output().await.unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_cmd(self.command(args), None).await
    }

    async fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.run_cmd(self.command(args), Some(stdin)).await
    }

    async fn ok_json(&self, args: &[&str]) -> Value {
        self.run(args).await.ok().json()
    }

    async fn ok_jsonl(&self, args: &[&str]) -> Vec<Value> {
        self.run(args).await.ok().jsonl()
    }

    /// Runs with one extra environment variable set (or overridden).
    async fn run_env(&self, args: &[&str], var: &str, value: impl AsRef<std::ffi::OsStr>) -> Out {
        let mut c = self.command(args);
        c.env(var, value);
        self.run_cmd(c, None).await
    }

    /// Every call to `cmd` fails with `kind` until cleared.
    fn fault(&self, cmd: &str, kind: FaultKind) {
        self.sb.faults.add(FaultRule::new(cmd, kind));
    }

    /// The next call to `cmd` fails with `kind`.
    fn fault_once(&self, cmd: &str, kind: FaultKind) {
        self.sb.faults.add(FaultRule::new(cmd, kind).count(1));
    }

    /// Every username in the sandbox, via the CLI.
    async fn usernames(&self) -> Vec<String> {
        self.run(&["users", "list", "--format", "jsonl"])
            .await
            .ok()
            .jsonl()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Stored user records: directory users plus pending invitees.
    fn user_count(&self) -> usize {
        let a = self
            .sb
            .lastpass
            .accounts()
            .into_iter()
            .find(|a| a.cid == self.cid)
            .unwrap();
        a.users + a.invited
    }

    /// Up to `limit` usernames with the given status, via the CLI.
    async fn usernames_with(&self, status: &str, limit: usize) -> Vec<String> {
        let limit = limit.to_string();
        let args = [
            "users", "list", "--status", status, "--format", "jsonl", "--limit", &limit,
        ];
        self.ok_jsonl(&args)
            .await
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Requests the sandbox has answered since the last `reset_stats`.
    fn requests(&self) -> u64 {
        self.sb.stats().total.requests
    }

    fn calls(&self, cmd: &str) -> u64 {
        self.sb.stats().requests_for(cmd)
    }

    fn file(&self, name: &str, body: &str) -> String {
        let p = self.home.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    }
}

// ---- users ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_streams_every_user_with_2000_per_page() {
    let env = spawn_seeded(|s| s.users = 4500).await;
    env.sb.reset_stats();
    let out = env.run(&["users", "list", "--format", "jsonl"]).await.ok();
    let users = out.jsonl();
    // `--users 4500` seeds 4500 directory users; pending invitees come on top.
    let directory = users.iter().filter(|u| u["status"] != "invited").count();
    assert_eq!(directory, 4500);
    assert!(users.len() > 4500, "invitees are listed too");
    let unique: HashSet<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(unique.len(), users.len(), "no user twice");
    assert_eq!(env.calls("getuserdata"), 3, "ceil(4500/2000) pages");
    assert!(users.iter().all(|u| u["status"].is_string()));

    env.sb.reset_stats();
    let limited = env
        .run(&["users", "list", "--format", "jsonl", "--limit", "5"])
        .await
        .ok();
    assert_eq!(limited.jsonl().len(), 5);
    assert_eq!(env.calls("getuserdata"), 1, "stops after the first page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_filters_and_formats() {
    let env = spawn_env().await;
    let all = env.ok_json(&["users", "list", "--format", "json"]).await;
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), env.user_count());
    for status in ["active", "disabled", "invited"] {
        let out = env
            .run(&["users", "list", "--status", status, "--format", "jsonl"])
            .await
            .ok();
        let expected = all.iter().filter(|u| u["status"] == status).count();
        let got = out.jsonl();
        assert_eq!(got.len(), expected, "status {status}");
        assert!(got.iter().all(|u| u["status"] == status));
    }
    let admins = env
        .run(&["users", "list", "--admin", "--format", "jsonl"])
        .await
        .ok();
    assert!(admins.jsonl().iter().all(|u| u["admin"] == true));

    // CSV has a header and one row per user.
    let csv = env.run(&["users", "list", "--format", "csv"]).await.ok();
    let mut lines = csv.stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("id,username,fullname,status")
    );
    assert_eq!(lines.count(), all.len());

    // --email: server-side lookups, only those users.
    let first = all[0]["username"].as_str().unwrap();
    let second = all[1]["username"].as_str().unwrap();
    let some = env
        .run(&[
            "users", "list", "--email", first, "--email", second, "--format", "jsonl",
        ])
        .await
        .ok();
    let got: Vec<String> = some
        .jsonl()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, [first, second]);

    // A group filter keeps only members.
    if let Some(g) = all
        .iter()
        .find_map(|u| u["groups"].as_array().and_then(|g| g.first()).cloned())
    {
        let g = g.as_str().unwrap();
        let members = env
            .run(&["users", "list", "--group", g, "--format", "jsonl"])
            .await
            .ok();
        let m = members.jsonl();
        assert!(!m.is_empty());
        assert!(
            m.iter()
                .all(|u| u["groups"].as_array().unwrap().iter().any(|x| x == g))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_call() {
    let env = spawn_env().await;
    env.sb.reset_stats();
    let o = env.run(&["users", "get", "not-an-email"]).await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("not-an-email"), "{}", o.stderr);
    let o = env.run(&["users", "list", "--format", "xml"]).await;
    assert_eq!(o.code, 2);
    let o = env
        .run(&[
            "sites",
            "push",
            "--all",
            "--user",
            "a@b.co",
            "--url",
            "https://x.io",
            "--label",
            "X",
        ])
        .await;
    assert_eq!(o.code, 2);
    let o = env
        .run(&[
            "sites",
            "push",
            "--all",
            "--url",
            "https://x.io",
            "--label",
            "X",
            "--username-type",
            "custom",
        ])
        .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--username"));
    let csv = env.file(
        "bad.csv",
        "email,fullname\nok@example.com,Ok\nnope,Bad\n\nok@EXAMPLE.com,Dup\n",
    );
    let o = env.run(&["users", "import", &csv]).await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("line 3") && o.stderr.contains("\"nope\""),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("line 5") && o.stderr.contains("duplicate"),
        "{}",
        o.stderr
    );
    let o = env.run(&["users", "deactivate", "a@example.com"]).await;
    assert_eq!(o.code, 2, "no terminal, no --yes");
    assert!(o.stderr.contains("--yes"));
    let o = env
        .run(&[
            "events",
            "list",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-01",
        ])
        .await;
    assert_eq!(o.code, 2);
    assert_eq!(env.requests(), 0, "nothing reached the sandbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_invite_update_and_lifecycle() {
    let env = spawn_env().await;
    let o = env.run(&["users", "get", "nobody@example.com"]).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no such user"));

    let before = env.user_count();
    env.run(&[
        "users",
        "invite",
        "new.hire@example.com",
        "--name",
        "New Hire",
    ])
    .await
    .ok();
    assert_eq!(env.user_count(), before + 1);
    assert!(
        env.sb
            .lastpass
            .inspect_user(env.cid, "new.hire@example.com")
            .is_some()
    );
    // LastPass lists a pending invitee by name only.
    let u = env
        .ok_json(&["users", "get", "new.hire@example.com", "--format", "json"])
        .await;
    assert_eq!(u["status"], "invited");
    let invited = env
        .run(&["users", "list", "--status", "invited", "--format", "jsonl"])
        .await
        .ok();
    assert!(
        invited
            .jsonl()
            .iter()
            .any(|u| u["username"] == "new.hire@example.com")
    );
    let again = env.run(&["users", "invite", "new.hire@example.com"]).await;
    assert_eq!(
        again.code, 1,
        "inviting an existing invitee is refused: {}",
        again.stderr
    );
    assert!(again.stderr.contains("reinvite"));
    assert_eq!(env.user_count(), before + 1);

    // A created user with a password read from stdin; the password never appears anywhere.
    let o = env
        .run_stdin(
            &[
                "users",
                "invite",
                "pw.user@example.com",
                "--name",
                "Pw User",
                "--password-stdin",
                "--no-reset-required",
            ],
            "Sup3r-Secret-Pw!\n",
        )
        .await
        .ok();
    assert!(!o.stdout.contains("Sup3r") && !o.stderr.contains("Sup3r"));
    let u = env
        .ok_json(&["users", "get", "pw.user@example.com", "--format", "json"])
        .await;
    assert_eq!(u["fullname"], "Pw User");
    assert_eq!(u["status"], "active");

    env.run(&[
        "users",
        "update",
        "pw.user@example.com",
        "--name",
        "Renamed User",
    ])
    .await
    .ok();
    let u = env
        .ok_json(&["users", "get", "pw.user@example.com", "--format", "json"])
        .await;
    assert_eq!(u["fullname"], "Renamed User");

    let before = env.user_count();
    env.run(&["users", "uninvite", "new.hire@example.com", "--yes"])
        .await
        .ok();
    assert_eq!(env.user_count(), before - 1);
    assert_eq!(
        env.run(&["users", "get", "new.hire@example.com"])
            .await
            .code,
        1
    );
    env.run(&["users", "delete", "pw.user@example.com", "--yes"])
        .await
        .ok();
    assert_eq!(env.user_count(), before - 2);
    assert!(
        env.sb
            .lastpass
            .inspect_user(env.cid, "pw.user@example.com")
            .is_none()
    );

    let email = env.usernames_with("active", 1).await[0].clone();
    for cmd in [
        "reinvite",
        "require-password-change",
        "reset-password",
        "disable-mfa",
    ] {
        let o = env.run(&["users", cmd, &email, "--format", "json"]).await;
        assert!(o.code == 0 || o.code == 3, "{cmd}: {}", o.stderr);
        let r = o.json();
        assert_eq!(r[0]["email"], email.as_str());
    }

    // disable → disabled; enable → active.
    env.run(&["users", "disable", &email]).await.ok();
    let u = env
        .ok_json(&["users", "get", &email, "--format", "json"])
        .await;
    assert_eq!(u["status"], "disabled");
    env.run(&["users", "enable", &email]).await.ok();
    let u = env
        .ok_json(&["users", "get", &email, "--format", "json"])
        .await;
    assert_eq!(u["disabled"], false);

    // Bulk with one unknown user: partial, exit 3, per-item report.
    let r = env
        .run(&[
            "users",
            "reset-password",
            &email,
            "ghost@example.com",
            "--format",
            "json",
        ])
        .await
        .partial();
    assert_eq!(r[0]["outcome"], "ok");
    assert_eq!(r[1]["outcome"], "failed");

    // Destructive bulk with --yes.
    env.run(&["users", "deactivate", &email, "--yes"])
        .await
        .ok();
    let u = env
        .ok_json(&["users", "get", &email, "--format", "json"])
        .await;
    assert_eq!(u["disabled"], true);
    env.run(&["users", "update-email", &email, "moved@example.com"])
        .await
        .ok();
    env.ok_json(&["users", "expired-passwords", "--format", "json"])
        .await;
}

// ---- import -----------------------------------------------------------------------------

/// `users import <csv> <extra…> --format json`.
fn import_args<'a>(csv: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["users", "import", csv];
    args.extend_from_slice(extra);
    args.extend(["--format", "json"]);
    args
}

fn import_csv(env: &Env, new: usize, existing: &[String]) -> String {
    let mut s = String::from("email,fullname,groups\n");
    for e in existing {
        s.push_str(&format!("{e},Existing,\n"));
    }
    for i in 0..new {
        s.push_str(&format!("import{i:04}@example.com,Imported {i},Imported\n"));
    }
    env.file("import.csv", &s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_plans_then_applies_in_batches_and_reruns_idempotently() {
    let env = spawn_env().await;
    let existing: Vec<String> = env.usernames().await.into_iter().take(2).collect();
    let csv = import_csv(&env, 25, &existing);
    let before = env.user_count();

    env.sb.reset_stats();
    let plan = env
        .ok_json(&import_args(&csv, &["--batch-size", "10", "--dry-run"]))
        .await;
    assert_eq!(env.calls("batchadd"), 0, "dry run changes nothing");
    assert_eq!(
        env.calls("getuserdata"),
        1,
        "one streamed listing, not one call per row"
    );
    assert_eq!(plan["calls"].as_array().unwrap().len(), 3);
    let items = plan["items"].as_array().unwrap();
    assert_eq!(items.len(), 27);
    assert_eq!(items[0]["action"], "skip");
    assert_eq!(items[0]["line"], 2);
    assert_eq!(items[2]["action"], "create");
    assert_eq!(env.user_count(), before);

    env.sb.reset_stats();
    let report = env
        .ok_json(&import_args(&csv, &["--batch-size", "10"]))
        .await;
    assert_eq!(env.calls("batchadd"), 3, "ceil(25/10)");
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), 27);
    assert_eq!(
        rows.iter().filter(|r| r["outcome"] == "created").count(),
        25
    );
    assert_eq!(rows.iter().filter(|r| r["outcome"] == "skipped").count(), 2);
    assert_eq!(env.user_count(), before + 25);
    let g = env
        .sb
        .lastpass
        .inspect_user(env.cid, "import0007@example.com");
    assert!(g.is_some());

    env.sb.reset_stats();
    let again = env.ok_json(&import_args(&csv, &[])).await;
    assert_eq!(env.calls("batchadd"), 0);
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "skipped")
    );
    assert_eq!(env.user_count(), before + 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_under_faults_creates_no_duplicates() {
    let env = spawn_env().await;
    let csv = import_csv(&env, 30, &[]);
    let before = env.user_count();
    // A throttled listing, a 503 and an applied-but-truncated batchadd answer (ambiguous).
    env.fault_once("getuserdata", FaultKind::Status { status: 429 });
    env.fault_once("batchadd", FaultKind::Status { status: 503 });
    env.fault_once("batchadd", FaultKind::Truncate);
    let o = env.run(&import_args(&csv, &["--batch-size", "10"])).await;
    // Whatever the client decided, a re-run completes the import and nobody exists twice.
    assert!(o.code == 0 || o.code == 3, "{}", o.stderr);
    env.run(&import_args(&csv, &["--batch-size", "10"]))
        .await
        .ok();
    assert_eq!(env.user_count(), before + 30);
    let names = env.usernames().await;
    let unique: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
    assert_eq!(unique.len(), names.len(), "no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_failing_batch_reports_rows_exits_3_and_a_rerun_completes() {
    let env = spawn_env().await;
    let csv = import_csv(&env, 20, &[]);
    let before = env.user_count();
    // Every batchadd fails with 500 (retries exhausted): nothing is created.
    env.fault("batchadd", FaultKind::Status { status: 500 });
    let rows = env
        .run(&import_args(&csv, &["--batch-size", "10"]))
        .await
        .partial();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 20);
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "failed" || r["outcome"] == "not_attempted")
    );
    assert_eq!(rows[0]["row"], 2);
    assert!(rows[0]["message"].as_str().unwrap().contains("500"));
    assert_eq!(env.user_count(), before);
    env.sb.faults.clear();
    env.sb.reset_stats();
    env.run(&import_args(&csv, &["--batch-size", "10"]))
        .await
        .ok();
    assert_eq!(env.calls("batchadd"), 2);
    assert_eq!(env.user_count(), before + 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_listing_exits_1_with_a_decode_message() {
    let env = spawn_env().await;
    env.fault("getuserdata", FaultKind::Malformed);
    let o = env.run(&["users", "list", "--format", "jsonl"]).await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("getuserdata"), "{}", o.stderr);
    assert!(!o.stderr.contains(&env.provhash));
}

// ---- groups -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_list_get_members_and_apply() {
    let env = spawn_env().await;
    let groups = env.ok_json(&["groups", "list", "--format", "json"]).await;
    let groups = groups.as_array().unwrap().clone();
    assert!(!groups.is_empty());
    let name = groups[0]["name"].as_str().unwrap().to_owned();
    let g = env
        .ok_json(&["groups", "get", &name, "--format", "json"])
        .await;
    assert_eq!(g["name"], name.as_str());
    assert_eq!(
        g["member_count"].as_u64().unwrap() as usize,
        g["members"].as_array().unwrap().len()
    );
    assert_eq!(env.run(&["groups", "get", "No Such Group"]).await.code, 1);

    // Two active users outside group g0, and a second group g1.
    let g0 = name.clone();
    let g1 = groups[1]["name"].as_str().unwrap().to_owned();
    let active = env
        .ok_jsonl(&["users", "list", "--status", "active", "--format", "jsonl"])
        .await;
    let outside: Vec<String> = active
        .iter()
        .filter(|u| {
            !u["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == g0.as_str() || g == g1.as_str())
        })
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    let (a, b) = (&outside[0], &outside[1]);
    let members_of = |g: Value| -> Vec<String> {
        g["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_lowercase())
            .collect()
    };
    env.run(&["groups", "add-members", &g0, a, b]).await.ok();
    let g = env
        .ok_json(&["groups", "get", &g0, "--format", "json"])
        .await;
    let m = members_of(g);
    assert!(m.contains(&a.to_lowercase()) && m.contains(&b.to_lowercase()));
    env.run(&["groups", "remove-members", &g0, b]).await.ok();
    let m = members_of(
        env.ok_json(&["groups", "get", &g0, "--format", "json"])
            .await,
    );
    assert!(!m.contains(&b.to_lowercase()));

    let csv = env.file(
        "changes.csv",
        &format!("email,group,action\n{a},{g0},add\n{b},{g0},add\n{a},{g1},add\nghost@example.com,{g0},add\n{b},{g1},remove\n"),
    );
    env.sb.reset_stats();
    let plan = env
        .ok_json(&["groups", "apply", &csv, "--dry-run", "--format", "json"])
        .await;
    assert_eq!(env.calls("batchchangegrp"), 0, "a dry run changes nothing");
    let items = plan["items"].as_array().unwrap();
    assert_eq!(items[0]["action"], "skip", "already a member");
    assert_eq!(items[1]["action"], "add");
    assert_eq!(items[2]["action"], "add");
    assert_eq!(items[3]["reason"], "no such user");
    assert_eq!(items[4]["reason"], format!("not a member of {g1}"));
    assert_eq!(plan["calls"].as_array().unwrap().len(), 1);
    let report = env
        .ok_json(&["groups", "apply", &csv, "--format", "json"])
        .await;
    assert_eq!(env.calls("batchchangegrp"), 1);
    assert_eq!(report[1]["outcome"], "ok");
    assert_eq!(report[3]["outcome"], "skipped");
    assert!(
        members_of(
            env.ok_json(&["groups", "get", &g1, "--format", "json"])
                .await
        )
        .contains(&a.to_lowercase())
    );
    assert!(
        members_of(
            env.ok_json(&["groups", "get", &g0, "--format", "json"])
                .await
        )
        .contains(&b.to_lowercase())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_changes_for_unknown_users_report_warn_items() {
    let env = spawn_env().await;
    let groups = env.ok_json(&["groups", "list", "--format", "json"]).await;
    let g = groups[0]["name"].as_str().unwrap().to_owned();
    let a = env
        .ok_jsonl(&["users", "list", "--status", "active", "--format", "jsonl"])
        .await
        .into_iter()
        .find(|u| {
            !u["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == g.as_str())
        })
        .unwrap()["username"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = env
        .run(&[
            "groups",
            "add-members",
            &g,
            &a,
            "ghost@example.com",
            "--format",
            "json",
        ])
        .await
        .partial();
    assert_eq!(r[0]["outcome"], "ok");
    assert_eq!(r[1]["outcome"], "failed");
    assert!(
        r[1]["message"]
            .as_str()
            .unwrap()
            .contains("ghost@example.com")
    );

    // A WARN naming no user (a group the API cannot create) fails every item, never "ok".
    let o = env
        .run(&[
            "groups",
            "add-members",
            "No Such Group",
            &a,
            "--format",
            "json",
        ])
        .await
        .partial();
    assert_eq!(o[0]["outcome"], "failed");
}

/// `events list --from <from> <extra…> --format jsonl`.
fn events_jsonl<'a>(from: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["events", "list", "--from", from];
    args.extend_from_slice(extra);
    args.extend(["--format", "jsonl"]);
    args
}

// ---- folders, sites, events, api ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_list_get_and_permissions() {
    let env = spawn_env().await;
    let folders = env.ok_json(&["folders", "list", "--format", "json"]).await;
    let folders = folders.as_array().unwrap().clone();
    assert_eq!(folders.len(), 4);
    let perms = env
        .ok_jsonl(&["folders", "permissions", "--format", "jsonl"])
        .await;
    assert!(!perms.is_empty());
    for p in &perms {
        let expected = if p["can_administer"] == true {
            "admin"
        } else if p["readonly"] == true {
            "viewer"
        } else {
            "editor"
        };
        assert_eq!(p["role"], expected);
    }
    let id = folders[0]["id"].as_str().unwrap();
    let members = env
        .ok_jsonl(&["folders", "get", id, "--format", "jsonl"])
        .await;
    assert_eq!(
        members.len() as u64,
        folders[0]["member_count"].as_u64().unwrap()
    );
    assert!(members.iter().all(|m| m["folder_id"] == id));
    let detailed = env
        .ok_jsonl(&["folders", "permissions", "--detailed", "--format", "jsonl"])
        .await;
    assert_eq!(detailed.len(), perms.len());
    assert!(detailed.iter().all(|p| p["sites"].is_array()));
    assert_eq!(env.run(&["folders", "get", "999999"]).await.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_push_sends_every_field_and_reads_the_password_from_stdin() {
    let env = spawn_env().await;
    let o = env
        .run_stdin(
            &[
                "sites",
                "push",
                "--all",
                "--url",
                "https://crm.example.com",
                "--label",
                "CRM",
                "--username-type",
                "custom",
                "--username",
                "team",
                "--password-stdin",
                "--notes",
                "n",
                "--folder",
                "Work",
                "--favorite",
                "--persistent",
                "--format",
                "json",
            ],
            "site-Pa55word\n",
        )
        .await
        .ok();
    let r = o.json();
    assert!(!r["psid"].as_str().unwrap().is_empty());
    assert!(!o.stdout.contains("site-Pa55word") && !o.stderr.contains("site-Pa55word"));
    let acc = env
        .sb
        .lastpass
        .inspect_account(env.cid)
        .unwrap()
        .to_string();
    assert!(
        acc.contains("crm.example.com"),
        "the sandbox recorded the pushed site"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_pages_and_limits() {
    let env = spawn_env().await;
    let all = env
        .ok_jsonl(&events_jsonl("2025-01-01", &["--to", "2026-12-31"]))
        .await;
    assert!(!all.is_empty());
    let times: Vec<&str> = all.iter().map(|e| e["time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let some = env
        .ok_jsonl(&events_jsonl(
            "2025-01-01",
            &["--to", "2026-12-31", "--limit", "3"],
        ))
        .await;
    assert_eq!(some.len(), 3.min(all.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_call_prints_the_raw_body() {
    let env = spawn_env().await;
    let o = env
        .run(&[
            "api",
            "call",
            "getuserdata",
            "--data",
            r#"{"pagesize":2,"pageindex":0}"#,
        ])
        .await
        .ok();
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["count"].as_u64(), Some(2));
    let data = env.file("q.json", r#"{"pagesize":1,"pageindex":0}"#);
    let o = env
        .run(&["api", "call", "getuserdata", "--data", &format!("@{data}")])
        .await
        .ok();
    assert!(o.stdout.contains("\"Users\""));
    assert_eq!(
        env.run(&["api", "call", "getuserdata", "--data", "{not json"])
            .await
            .code,
        2
    );
}

// ---- connections, auth, faults ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_profiles_are_encrypted_and_testable() {
    let env = spawn_env().await;
    let profile_cmd = |args: &[&str]| {
        let mut c = env.command(args);
        c.env_remove("LPBRIDGE_CID")
            .env_remove("LPBRIDGE_PROVHASH")
            .env_remove("LPBRIDGE_ENDPOINT");
        c
    };
    let endpoint = env.sb.lastpass_endpoint();
    let cid = env.cid.to_string();
    env.run_cmd(
        profile_cmd(&[
            "connection",
            "add",
            "prod",
            "--cid",
            &cid,
            "--endpoint",
            &endpoint,
            "--provhash-stdin",
        ]),
        Some(&format!("{}\n", env.provhash)),
    )
    .await
    .ok();
    // Nothing in the data dir (database, WAL, key file) holds the hash in the clear.
    assert!(env.home.path().join("lpbridge.db").exists());
    for entry in std::fs::read_dir(env.home.path()).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !raw.windows(env.provhash.len())
                .any(|w| w == env.provhash.as_bytes())
        );
    }

    let list = env
        .run_cmd(
            profile_cmd(&["connection", "list", "--format", "json"]),
            None,
        )
        .await
        .ok();
    assert!(!list.stdout.contains(&env.provhash));
    assert_eq!(list.json()[0]["name"], "prod");

    let t = env
        .run_cmd(
            profile_cmd(&["connection", "test", "prod", "--format", "json"]),
            None,
        )
        .await
        .ok();
    let t = t.json();
    assert_eq!(t["account"], cid.as_str());
    assert_eq!(t["auth_type"], "api_key");

    // The only profile is used when nothing else is given.
    let users = env
        .run_cmd(
            profile_cmd(&["users", "list", "--format", "jsonl", "--limit", "1"]),
            None,
        )
        .await
        .ok();
    assert_eq!(users.stdout.lines().count(), 1);

    // A wrong master key fails cleanly.
    let mut c = profile_cmd(&["connection", "test", "prod"]);
    c.env("LPBRIDGE_MASTER_KEY", "ab".repeat(32));
    let o = env.run_cmd(c, None).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("wrong master key"), "{}", o.stderr);
    assert!(o.stderr.contains("LPBRIDGE_MASTER_KEY"), "{}", o.stderr);

    // A bad provhash: authentication error, exit 1, secret not echoed.
    env.run_cmd(
        profile_cmd(&[
            "connection",
            "add",
            "bad",
            "--cid",
            &cid,
            "--endpoint",
            &endpoint,
            "--provhash-stdin",
        ]),
        Some("not-the-hash"),
    )
    .await
    .ok();
    let o = env
        .run_cmd(profile_cmd(&["connection", "test", "bad"]), None)
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("authentication failed"), "{}", o.stderr);
    assert!(!o.stderr.contains("not-the-hash"));

    env.run_cmd(profile_cmd(&["connection", "remove", "bad"]), None)
        .await
        .ok();
    assert_eq!(
        env.run_cmd(profile_cmd(&["connection", "remove", "bad"]), None)
            .await
            .code,
        1
    );

    // Without --endpoint, an exported LPBRIDGE_ENDPOINT becomes the profile's endpoint.
    let mut c = profile_cmd(&[
        "connection",
        "add",
        "viaenv",
        "--cid",
        &cid,
        "--provhash-stdin",
    ]);
    c.env("LPBRIDGE_ENDPOINT", &endpoint);
    env.run_cmd(c, Some(&format!("{}\n", env.provhash)))
        .await
        .ok();
    let t = env
        .run_cmd(
            profile_cmd(&["connection", "test", "viaenv", "--format", "json"]),
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(t["account"], cid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_persistent_ones_exit_1() {
    let env = spawn_env().await;
    env.fault_once("getuserdata", FaultKind::Status { status: 429 });
    env.fault_once("getuserdata", FaultKind::Status { status: 503 });
    let n = env
        .ok_jsonl(&["users", "list", "--format", "jsonl"])
        .await
        .len();
    assert_eq!(n, env.user_count());

    env.fault("getsfdata", FaultKind::Status { status: 500 });
    let o = env.run(&["folders", "list"]).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("500"), "{}", o.stderr);
    env.sb.faults.clear();

    env.fault("getsfdata", FaultKind::Malformed);
    let o = env.run(&["folders", "list"]).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("getsfdata"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_prints_upstream_call_stats() {
    let env = spawn_env().await;
    let o = env
        .run(&["-v", "users", "list", "--format", "jsonl"])
        .await
        .ok();
    assert!(
        o.stderr.contains("upstream calls: requests=1"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("getuserdata=1"));
    assert!(
        !o.stderr.contains(&env.provhash),
        "the provhash is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_subcommand_announces_itself_and_serves() {
    use tokio::io::AsyncBufReadExt;
    let home = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--users",
            "7",
            "--events",
            "0",
        ])
        .env("LPBRIDGE_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let lp = &first["lastpass"];
    let out = tokio::process::Command::new(BIN)
        .args(["users", "list", "--format", "jsonl"])
        .env("LPBRIDGE_HOME", home.path())
        .env("LPBRIDGE_ENDPOINT", lp["endpoint"].as_str().unwrap())
        .env("LPBRIDGE_CID", lp["cid"].to_string())
        .env("LPBRIDGE_PROVHASH", lp["provhash"].as_str().unwrap())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7);
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_through_next_pages() {
    let env = spawn_seeded(|s| s.events = 12_500).await;
    env.sb.reset_stats();
    let out = env
        .run(&events_jsonl("2000-01-01", &["--to", "2026-12-31"]))
        .await
        .ok();
    let n = out.stdout.lines().count();
    assert!(n >= 12_500, "every seeded event, got {n}");
    assert!(
        env.calls("reporting") >= 2,
        "more than 10,000 events need a `next` page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_writes_survive_a_throttled_answer() {
    let env = spawn_env().await;
    let active = env.usernames_with("active", 2).await;
    let (a, b) = (active[0].clone(), active[1].clone());
    env.fault_once("disableuser", FaultKind::Status { status: 429 });
    let r = env
        .ok_json(&["users", "disable", &a, &b, "--format", "json"])
        .await;
    assert_eq!(r[0]["outcome"], "ok");
    assert_eq!(r[1]["outcome"], "ok");
    let again = env
        .ok_json(&["users", "disable", &a, "--format", "json"])
        .await;
    assert_eq!(again[0]["outcome"], "unchanged");
    assert!(
        env.calls("disableuser") >= 3,
        "the throttled call was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_import_into_a_large_directory_looks_rows_up_instead_of_sweeping() {
    let env = spawn_seeded(|s| s.users = 6500).await; // 4 pages of 2000
    let csv = env.file(
        "two.csv",
        "email,fullname\nnew.one@example.com,New One\nnew.two@example.com,New Two\n",
    );
    env.sb.reset_stats();
    let report = env.ok_json(&import_args(&csv, &[])).await;
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["outcome"] == "created"), "{report}");
    // First page (learns total = 6500, 3 pages left) then 2 lookups, not 3 more pages.
    assert_eq!(env.calls("getuserdata"), 3);
    assert_eq!(env.calls("batchadd"), 1);
}

// ---- regressions found by trying the README as a new user --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_to_defaults_to_now_and_a_reached_limit_fetches_no_more_pages() {
    let env = spawn_seeded(|s| s.events = 12_000).await;
    // The README's quickstart: no --to.
    env.sb.reset_stats();
    let some = env
        .ok_jsonl(&events_jsonl("2000-01-01 00:00:00", &["--limit", "20"]))
        .await;
    assert_eq!(some.len(), 20);
    assert_eq!(env.calls("reporting"), 1);
    // Exactly one full page (the emulator cuts pages at a second, so learn its size first):
    // reaching the limit with the last event of a page does not ask for the `next` page. The
    // window ends before the frozen "now", where every API call adds an event.
    let raw = env
        .run(&[
            "api",
            "call",
            "reporting",
            "--data",
            r#"{"from":"2000-01-01 00:00:00","to":"2026-01-04 00:00:00"}"#,
        ])
        .await
        .ok();
    let raw: Value = serde_json::from_str(raw.stdout.trim()).unwrap();
    assert!(
        !raw["next"].is_null(),
        "more than one page: {}",
        raw["next"]
    );
    let first_page = match &raw["data"] {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        other => panic!("data: {other}"),
    };
    env.sb.reset_stats();
    let limit = first_page.to_string();
    let page = env
        .run(&events_jsonl(
            "2000-01-01",
            &["--to", "2026-01-04 00:00:00", "--limit", &limit],
        ))
        .await
        .ok();
    assert_eq!(page.stdout.lines().count(), first_page);
    assert_eq!(
        env.calls("reporting"),
        1,
        "no second page for --limit {first_page}"
    );
    env.sb.reset_stats();
    env.run(&["events", "list", "--from", "2000-01-01", "--limit", "0"])
        .await
        .ok();
    assert_eq!(env.calls("reporting"), 0, "--limit 0 asks nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_with_one_unknown_user_reports_the_others_as_done() {
    let env = spawn_env().await;
    let active = env.usernames_with("active", 2).await;
    assert_eq!(active.len(), 2);
    let rows = env
        .run(&[
            "users",
            "disable",
            &active[0],
            &active[1],
            "nobody@example.com",
            "--format",
            "json",
        ])
        .await
        .partial();
    assert_eq!(rows[0]["outcome"], "ok", "{rows}");
    assert_eq!(rows[1]["outcome"], "ok", "{rows}");
    assert_eq!(rows[2]["outcome"], "failed", "{rows}");
    assert!(
        rows[2]["message"]
            .as_str()
            .unwrap()
            .contains("nobody@example.com"),
        "{rows}"
    );
    assert!(rows[0].get("message").is_none(), "{rows}");
    let disabled = env
        .run(&["users", "get", &active[0], "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(disabled["status"], "disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_report_names_skipped_rows_skip() {
    let env = spawn_env().await;
    let existing = env.usernames().await;
    let csv = import_csv(&env, 1, &existing[..1]);
    let rows = env.ok_json(&import_args(&csv, &[])).await;
    let rows = rows.as_array().unwrap();
    let skipped: Vec<&Value> = rows.iter().filter(|r| r["outcome"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{rows:?}");
    assert_eq!(skipped[0]["action"], "skip", "same word as the plan");
    assert!(
        rows.iter()
            .any(|r| r["outcome"] == "created" && r["action"] == "create")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_folder_and_group_are_errors_with_hints() {
    let env = spawn_env().await;
    let o = env
        .run(&["folders", "permissions", "--folder", "999999"])
        .await;
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stderr.contains("no such shared folder: 999999"),
        "{}",
        o.stderr
    );
    let groups = env.ok_json(&["groups", "list", "--format", "json"]).await;
    let name = groups[0]["name"].as_str().unwrap().to_owned();
    let o = env.run(&["groups", "get", &name.to_lowercase()]).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(&format!("did you mean \"{name}\"")),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_tables_stay_readable() {
    let env = spawn_env().await;
    let groups = env.ok_json(&["groups", "list", "--format", "json"]).await;
    let big = groups
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|g| g["member_count"].as_u64().unwrap())
        .unwrap()
        .clone();
    let n = big["member_count"].as_u64().unwrap();
    assert!(n > 3, "{big}");
    let table = env
        .run(&["groups", "list", "--format", "table"])
        .await
        .ok()
        .stdout;
    assert!(table.contains(&format!("(+{} more)", n - 3)), "{table}");
    let last = big["members"].as_array().unwrap().last().unwrap();
    let name = big["name"].as_str().unwrap();
    let big_line = table
        .lines()
        .find(|l| l.contains(&format!(" {name} ")))
        .unwrap_or_else(|| panic!("{name} in\n{table}"));
    assert!(!big_line.contains(last.as_str().unwrap()), "{table}");
    // `groups get` lists every member, one per line; CSV keeps them all in one cell.
    let get = env
        .run(&["groups", "get", name, "--format", "table"])
        .await
        .ok()
        .stdout;
    for m in big["members"].as_array().unwrap() {
        let m = m.as_str().unwrap();
        assert_eq!(
            get.lines().filter(|l| l.contains(m)).count(),
            1,
            "{m} on its own line:\n{get}"
        );
    }
    let csv = env
        .run(&["groups", "list", "--format", "csv"])
        .await
        .ok()
        .stdout;
    assert!(csv.contains(last.as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_call_exit_code_reflects_a_refusal() {
    let env = spawn_env().await;
    let o = env
        .run(&[
            "api",
            "call",
            "deluser",
            "--data",
            r#"{"username":"nobody@example.com","deleteaction":0}"#,
        ])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stdout.contains("\"FAIL\""),
        "the raw body is still printed"
    );
    assert!(o.stderr.contains("nobody@example.com"), "{}", o.stderr);
    let o = env
        .run_env(
            &["api", "call", "getuserdata"],
            "LPBRIDGE_PROVHASH",
            "0".repeat(64),
        )
        .await;
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stdout.contains("Authorization Error"));
    assert!(o.stderr.contains("authentication failed"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_prompts_without_a_terminal_name_the_stdin_flag() {
    let env = spawn_env().await;
    let o = env
        .run(&["connection", "add", "prod", "--cid", "8771312"])
        .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--provhash-stdin"), "{}", o.stderr);
    // Environment credentials are labelled as such by `connection test`.
    let t = env
        .ok_json(&["connection", "test", "--format", "json"])
        .await;
    assert_eq!(t["name"], "(environment)");
    // -v logs carry no terminal colour codes when stderr is not a terminal.
    let o = env.run(&["-v", "users", "list", "--limit", "1"]).await.ok();
    assert!(!o.stderr.contains('\u{1b}'), "{}", o.stderr);
    // RUST_LOG (documented in the README) turns logging on without -v.
    let o = env
        .run_env(
            &["users", "list", "--limit", "1"],
            "RUST_LOG",
            "lastpass=debug",
        )
        .await
        .ok();
    assert!(o.stderr.contains("DEBUG"), "{}", o.stderr);
    assert!(!o.stderr.contains(&env.provhash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsafe_write_with_a_lost_answer_says_it_may_be_applied() {
    let env = spawn_env().await;
    let who = env.usernames_with("invited", 1).await[0].clone();
    env.fault_once("reinviteuser", FaultKind::Truncate);
    env.sb.reset_stats();
    let rows = env
        .run(&["users", "reinvite", &who, "--format", "json"])
        .await
        .partial();
    assert_eq!(rows[0]["outcome"], "failed");
    assert!(
        rows[0]["message"]
            .as_str()
            .unwrap()
            .contains("may have applied it"),
        "{rows}"
    );
    assert_eq!(env.calls("reinviteuser"), 1, "never re-sent");
    env.fault_once("pushsitestousers", FaultKind::Truncate);
    let o = env
        .run(&[
            "sites",
            "push",
            "--all",
            "--url",
            "https://z.example.com",
            "--label",
            "Z",
        ])
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("may have applied it"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_from_one_call_including_empty_and_invitee_only_groups() {
    let env = spawn_env().await;
    // A pending invitee is the only member of a brand-new group.
    env.run(&[
        "users",
        "invite",
        "newbie@example.com",
        "--group",
        "Onboarding 2026",
    ])
    .await
    .ok();
    env.sb.reset_stats();
    let g = env
        .ok_json(&["groups", "get", "Onboarding 2026", "--format", "json"])
        .await;
    assert_eq!(g["members"], serde_json::json!(["newbie@example.com"]));
    assert_eq!(env.calls("getuserdata"), 1, "one unpaged call");
    // Removing the only member leaves an empty group that is still listed.
    env.run(&[
        "groups",
        "remove-members",
        "Onboarding 2026",
        "newbie@example.com",
    ])
    .await
    .ok();
    let all = env.ok_json(&["groups", "list", "--format", "json"]).await;
    let entry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Onboarding 2026")
        .expect("empty group listed");
    assert_eq!(entry["member_count"], 0);
    // An apply file adding to the (empty, existing) group plans no "no such group" warning.
    let f = env.file(
        "apply.csv",
        "email,group,action\nnewbie@example.com,Onboarding 2026,add\n",
    );
    let plan = env
        .run(&["groups", "apply", &f, "--dry-run", "--format", "json"])
        .await
        .ok()
        .stdout;
    assert!(!plan.contains("no such group"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tuning_flags_reach_the_client() {
    let env = spawn_env().await;
    // One attempt: a single 429 is final (exit 1) after exactly one request.
    env.fault_once("getuserdata", FaultKind::Status { status: 429 });
    env.sb.reset_stats();
    let o = env
        .run(&["users", "list", "--limit", "1", "--attempts", "1"])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("429"), "{}", o.stderr);
    assert_eq!(env.calls("getuserdata"), 1);
    // The same fault with the default attempts is retried through.
    env.fault_once("getuserdata", FaultKind::Status { status: 429 });
    env.sb.reset_stats();
    env.run(&["users", "list", "--limit", "1"]).await.ok();
    assert_eq!(env.calls("getuserdata"), 2);
    // Refused at the boundary, before any call, naming the flag and the value.
    env.sb.reset_stats();
    let o = env.run(&["users", "list", "--rate-limit=-3"]).await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--rate-limit"), "{}", o.stderr);
    let o = env
        .run_env(&["users", "list"], "LPBRIDGE_MAX_IN_FLIGHT", "0")
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(env.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_and_env_are_refused_with_a_message_before_any_call() {
    let env = spawn_env().await;
    env.sb.reset_stats();
    // A repeated column would drop a value silently.
    let csv = env.file(
        "dup.csv",
        "email,fullname,Email\na@example.com,A,b@example.com\n",
    );
    let o = env.run(&["users", "import", &csv]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("duplicate column"), "{}", o.stderr);
    // --data from a missing file or a directory: usage errors naming it.
    let o = env
        .run(&[
            "api",
            "call",
            "getuserdata",
            "--data",
            "@/nonexistent/q.json",
        ])
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("/nonexistent/q.json"), "{}", o.stderr);
    let dir = format!("@{}", env.home.path().display());
    let o = env
        .run(&["api", "call", "getuserdata", "--data", &dir])
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    // Unusable environment values are named.
    let o = env
        .run_env(&["users", "list"], "LPBRIDGE_RATE_LIMIT", "fast")
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("fast"), "{}", o.stderr);
    let o = env
        .run_env(&["users", "list"], "LPBRIDGE_CID", "not-a-number")
        .await;
    assert!(matches!(o.code, 1 | 2), "{}: {}", o.code, o.stderr);
    assert!(o.stderr.contains("not-a-number"), "{}", o.stderr);
    // A variable that is not UTF-8 is not taken as unset (that would pick another endpoint).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"http://127.0.0.1:1/\xff");
        for (var, args) in [
            ("LPBRIDGE_ENDPOINT", ["users", "list"]),
            ("LPBRIDGE_MASTER_KEY", ["connection", "list"]),
        ] {
            let o = env.run_env(&args, var, bad).await;
            assert_eq!(o.code, 1, "{var}: {}", o.stderr);
            assert!(o.stderr.contains(var), "{var}: {}", o.stderr);
        }
    }
    // A provisioning hash that is not UTF-8 text: a usage error naming the flag.
    let bin = env.home.path().join("provhash.bin");
    std::fs::write(&bin, b"\xff\xfe\n").unwrap();
    let mut c = env.command(&["connection", "add", "p", "--cid", "1", "--provhash-stdin"]);
    c.stdin(std::fs::File::open(&bin).unwrap());
    let o = c.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--provhash-stdin"), "{stderr}");
    assert_eq!(env.requests(), 0, "nothing reached the sandbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_never_carry_the_provisioning_hash() {
    let env = spawn_env().await;
    let o = env
        .run(&["-vv", "users", "list", "--limit", "1"])
        .await
        .ok();
    assert!(
        o.stderr.contains("TRACE") || o.stderr.contains("DEBUG"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains(&env.provhash), "{}", o.stderr);
    assert!(!o.stdout.contains(&env.provhash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_or_wrong_key_is_refused_with_a_message() {
    let env = spawn_env().await;
    let profile_cmd = |args: &[&str]| {
        let mut c = env.command(args);
        c.env_remove("LPBRIDGE_CID").env_remove("LPBRIDGE_PROVHASH");
        c
    };
    let db = env.home.path().join("lpbridge.db");
    let cid = env.cid.to_string();
    let add = |args: &[&str]| {
        let mut a = vec![
            "connection",
            "add",
            "prod",
            "--cid",
            &cid,
            "--provhash-stdin",
        ];
        a.extend_from_slice(args);
        profile_cmd(&a)
    };
    env.run_cmd(add(&[]), Some(&env.provhash)).await.ok();
    // The wrong key: refused, and the stored connection is left untouched.
    let mut c = add(&["--overwrite"]);
    c.env("LPBRIDGE_MASTER_KEY", "ab".repeat(32));
    let o = env.run_cmd(c, Some(&env.provhash)).await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("wrong master key"), "{}", o.stderr);
    assert!(!o.stderr.contains(&env.provhash));
    env.run_cmd(profile_cmd(&["connection", "test", "prod"]), None)
        .await
        .ok();
    let mut c = profile_cmd(&["connection", "test", "prod"]);
    c.env("LPBRIDGE_MASTER_KEY", "short");
    let o = env.run_cmd(c, None).await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("LPBRIDGE_MASTER_KEY"), "{}", o.stderr);
    let list = env
        .run_cmd(
            profile_cmd(&["connection", "list", "--format", "json"]),
            None,
        )
        .await
        .ok();
    assert_eq!(list.json()[0]["name"], "prod");
    // A file that is not a database: a message naming it, exit 1.
    for f in ["lpbridge.db-wal", "lpbridge.db-shm"] {
        let _ = std::fs::remove_file(env.home.path().join(f));
    }
    std::fs::write(
        &db,
        b"this is not a database, just some text long enough to matter",
    )
    .unwrap();
    let o = env
        .run_cmd(profile_cmd(&["connection", "list"]), None)
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("lpbridge.db"), "{}", o.stderr);
}

// ---- the store: connections and API keys ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_with_env_credentials_create_no_store() {
    let env = spawn_env().await;
    let data = env.home.path().join("fresh");
    let mut c = env.command(&["users", "list", "--limit", "1", "--format", "jsonl"]);
    c.env("LPBRIDGE_DATA_DIR", &data);
    let o = env.run_cmd(c, None).await.ok();
    assert_eq!(o.stdout.lines().count(), 1);
    // Listing an absent store reads nothing and creates nothing either.
    let mut c = env.command(&["connection", "list", "--format", "json"]);
    c.env("LPBRIDGE_DATA_DIR", &data);
    let o = env.run_cmd(c, None).await.ok();
    assert_eq!(o.json(), serde_json::json!([]));
    let mut c = env.command(&["apikey", "list", "--format", "json"]);
    c.env("LPBRIDGE_DATA_DIR", &data);
    env.run_cmd(c, None).await.ok();
    // Changing or removing what is not there: "not found" (exit 1), and still nothing created.
    for args in [
        &["connection", "update", "nope", "--time-zone", "UTC"][..],
        &["connection", "remove", "nope"],
        &["apikey", "revoke", "k3v9x0q2m8ab"],
        &["psa", "remove", "nope"],
    ] {
        let mut c = env.command(args);
        c.env("LPBRIDGE_DATA_DIR", &data);
        let o = env.run_cmd(c, None).await;
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains("no "), "{args:?}: {}", o.stderr);
    }
    assert!(!data.exists(), "no data dir was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_add_list_update_remove_on_the_store() {
    let env = spawn_env().await;
    let cmd = |args: &[&str]| {
        let mut c = env.command(args);
        c.env_remove("LPBRIDGE_CID")
            .env_remove("LPBRIDGE_PROVHASH")
            .env_remove("LPBRIDGE_ENDPOINT");
        c
    };
    let endpoint = env.sb.lastpass_endpoint();
    let cid = env.cid.to_string();
    let saved = env
        .run_cmd(
            cmd(&[
                "connection",
                "add",
                "acme",
                "--cid",
                &cid,
                "--endpoint",
                &endpoint,
                "--time-zone",
                "Europe/Berlin",
                "--provhash-stdin",
                "--format",
                "json",
            ]),
            Some(&env.provhash),
        )
        .await
        .ok()
        .json();
    assert_eq!(saved["status"], "saved");
    assert_eq!(saved["time_zone"], "Europe/Berlin");
    // A second add of the same name is refused before reading the hash (exit 2).
    let o = env
        .run_cmd(
            cmd(&[
                "connection",
                "add",
                "acme",
                "--cid",
                &cid,
                "--provhash-stdin",
            ]),
            Some("x"),
        )
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--overwrite"), "{}", o.stderr);
    // Names travel in headers: refused with the field and the value.
    let o = env
        .run_cmd(
            cmd(&[
                "connection",
                "add",
                "a b",
                "--cid",
                &cid,
                "--provhash-stdin",
            ]),
            Some("x"),
        )
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("invalid connection \"a b\""),
        "{}",
        o.stderr
    );

    // update: a wrong hash breaks `test`; the right one repairs it.
    env.run_cmd(
        cmd(&["connection", "update", "acme", "--provhash-stdin"]),
        Some("not-the-hash"),
    )
    .await
    .ok();
    let o = env
        .run_cmd(cmd(&["connection", "test", "acme"]), None)
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    let updated = env
        .run_cmd(
            cmd(&[
                "connection",
                "update",
                "acme",
                "--provhash-stdin",
                "--clear-time-zone",
                "--format",
                "json",
            ]),
            Some(&env.provhash),
        )
        .await
        .ok()
        .json();
    assert_eq!(updated["status"], "updated");
    assert!(updated.get("time_zone").is_none(), "{updated}");
    env.run_cmd(cmd(&["connection", "test", "acme"]), None)
        .await
        .ok();
    // --endpoint on update moves the connection.
    env.run_cmd(
        cmd(&[
            "connection",
            "update",
            "acme",
            "--endpoint",
            "http://127.0.0.1:9/enterpriseapi.php",
        ]),
        None,
    )
    .await
    .ok();
    let list = env
        .run_cmd(cmd(&["connection", "list", "--format", "json"]), None)
        .await
        .ok()
        .json();
    assert_eq!(list[0]["endpoint"], "http://127.0.0.1:9/enterpriseapi.php");
    assert_eq!(list[0]["account"], cid.as_str());
    // Bad updates.
    let o = env
        .run_cmd(cmd(&["connection", "update", "acme"]), None)
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("nothing to update"), "{}", o.stderr);
    let o = env
        .run_cmd(
            cmd(&[
                "connection",
                "update",
                "acme",
                "--time-zone",
                "Mars/Olympus",
            ]),
            None,
        )
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("Mars/Olympus"), "{}", o.stderr);
    let o = env
        .run_cmd(
            cmd(&["connection", "update", "nope", "--time-zone", "UTC"]),
            None,
        )
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("no connection named \"nope\""),
        "{}",
        o.stderr
    );

    // Table and CSV listings carry no secret.
    for format in ["table", "csv"] {
        let o = env
            .run_cmd(cmd(&["connection", "list", "--format", format]), None)
            .await
            .ok();
        assert!(o.stdout.contains("acme"), "{}", o.stdout);
        assert!(!o.stdout.contains(&env.provhash));
    }
    env.run_cmd(cmd(&["connection", "remove", "acme"]), None)
        .await
        .ok();
    let list = env
        .run_cmd(cmd(&["connection", "list", "--format", "json"]), None)
        .await
        .ok()
        .json();
    assert_eq!(list, serde_json::json!([]));

    // The older LPBRIDGE_HOME still names the data dir.
    let home = env.home.path().join("legacy-home");
    let mut c = cmd(&[
        "connection",
        "add",
        "h",
        "--cid",
        &cid,
        "--endpoint",
        &endpoint,
        "--provhash-stdin",
    ]);
    c.env_remove("LPBRIDGE_DATA_DIR")
        .env("LPBRIDGE_HOME", &home);
    env.run_cmd(c, Some(&env.provhash)).await.ok();
    assert!(home.join("lpbridge.db").exists());
    assert!(home.join("master.key").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apikey_create_prints_only_the_key_and_list_revoke_work() {
    let env = spawn_env().await;
    let o = env.run(&["apikey", "create"]).await.ok();
    let key = o.stdout.strip_suffix('\n').expect("one line").to_owned();
    assert!(!key.contains('\n'), "{:?}", o.stdout);
    let parts: Vec<&str> = key.splitn(3, '_').collect();
    assert_eq!(parts.len(), 3, "{key}");
    assert_eq!(parts[0], "lpb");
    assert_eq!(parts[1].len(), 12);
    assert!(
        parts[1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert!(parts[2].len() >= 32 && parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(o.stderr.contains("shown only once"), "{}", o.stderr);
    assert!(
        !o.stderr.contains(parts[2]),
        "the secret is not repeated on stderr"
    );
    let id = parts[1].to_owned();

    let ro = env
        .run(&["apikey", "create", "--read-only", "--name", "dashboard"])
        .await
        .ok();
    let ro_key = ro.stdout.trim().to_owned();

    // What `serve` would do: verify against the same data dir.
    let store = lpbridge::store::Store::open_with(
        lpbridge::store::StoreConfig::new(None, env.home.path()).unwrap(),
    )
    .await
    .unwrap();
    let info = store.verify_api_key(&key).await.unwrap().unwrap();
    assert_eq!(info.id, id);
    assert!(!info.read_only);
    assert!(
        store
            .verify_api_key(&ro_key)
            .await
            .unwrap()
            .unwrap()
            .read_only
    );

    let list = env.ok_json(&["apikey", "list", "--format", "json"]).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["name"], "cli");
    assert_eq!(list[0]["access"], "read-write");
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list[1]["name"], "dashboard");
    assert_eq!(list[1]["access"], "read-only");
    for format in ["json", "table", "csv"] {
        let o = env.run(&["apikey", "list", "--format", format]).await.ok();
        assert!(o.stdout.contains("dashboard"), "{}", o.stdout);
        assert!(!o.stdout.contains(parts[2]), "{format} shows no secret");
    }

    let o = env.run(&["apikey", "revoke", &id]).await.ok();
    assert!(o.stderr.contains(&id), "{}", o.stderr);
    assert_eq!(
        store.verify_api_key(&key).await.unwrap(),
        None,
        "refused at once"
    );
    let list = env.ok_json(&["apikey", "list", "--format", "json"]).await;
    assert_eq!(list[0]["status"], "revoked");
    assert!(list[0]["revoked_at"].is_string());
    let o = env.run(&["apikey", "revoke", &id]).await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("no active API key"), "{}", o.stderr);
    // A whole key given by mistake revokes it without echoing the secret.
    let o = env.run(&["apikey", "revoke", &ro_key]).await.ok();
    assert!(!o.stderr.contains(&ro_key[17..]), "{}", o.stderr);
    assert_eq!(store.verify_api_key(&ro_key).await.unwrap(), None);
    let o = env.run(&["apikey", "create", "--name", " "]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("invalid name"), "{}", o.stderr);
    store.close().await;

    // The same works on a database named by URL.
    let db = env.home.path().join("other").join("keys.db");
    let url = format!("sqlite://{}", db.display());
    let o = env
        .run(&["--database-url", &url, "apikey", "create"])
        .await
        .ok();
    assert!(o.stdout.trim().starts_with("lpb_"));
    assert!(db.exists());
    let o = env
        .run(&[
            "--database-url",
            "mysql://u:hunter2@127.0.0.1/x",
            "apikey",
            "list",
        ])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("invalid database URL"), "{}", o.stderr);
    assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
}
