//! `lpbridge psa …` end to end: the real binary against the in-process ConnectWise and Autotask
//! emulators (`sandbox::spawn` on 127.0.0.1:0), with a temporary `LPBRIDGE_DATA_DIR`. Secrets go
//! in on stdin only; the tests check they never come out (stdout, stderr, the store's files).
//! No sleeps: every wait is on a child process.
#![cfg(feature = "sandbox")]

use std::collections::BTreeSet;
use std::process::Stdio;

use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_lpbridge");
const AUTH_MESSAGE: &str =
    "Authentication error. Check your credentials for your PSA provider and try again";

struct Env {
    sb: SandboxHandle,
    home: tempfile::TempDir,
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
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
    /// Neither stream carries any of `secrets`.
    fn leaks_none(&self, secrets: &[&str]) {
        for s in secrets {
            assert!(
                !self.stdout.contains(s),
                "secret on stdout: {}",
                self.stdout
            );
            assert!(
                !self.stderr.contains(s),
                "secret on stderr: {}",
                self.stderr
            );
        }
    }
}

async fn env() -> Env {
    let mut config = SandboxConfig::for_tests();
    config.connectwise = sandbox::connectwise::ConnectWiseConfig::with_seed(11).sized(60, 240);
    config.autotask = sandbox::autotask::AutotaskConfig::seeded(21).with_counts(60, 240);
    Env {
        sb: sandbox::spawn(config).await.expect("sandbox starts"),
        home: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    async fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut c = tokio::process::Command::new(BIN);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LPBRIDGE_DATA_DIR", self.home.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c.spawn().expect("lpbridge runs");
        if let Some(input) = stdin {
            let mut s = child.stdin.take().unwrap();
            // A command refused before it reads stdin may have closed it already.
            let _ = s.write_all(input.as_bytes()).await;
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
        self.run_stdin(args, None).await
    }

    fn cw_args(&self, name: &str) -> Vec<String> {
        let c = self.sb.connectwise.credentials();
        vec![
            "psa".into(),
            "connect".into(),
            "connectwise".into(),
            name.into(),
            "--site".into(),
            self.sb.connectwise_site(),
            "--company-id".into(),
            c.company_id,
            "--public-key".into(),
            c.public_key,
            "--client-id".into(),
            c.client_id,
            "--private-key-stdin".into(),
        ]
    }

    fn at_args(&self, name: &str) -> Vec<String> {
        vec![
            "psa".into(),
            "connect".into(),
            "autotask".into(),
            name.into(),
            "--username".into(),
            self.sb.autotask.credentials().username,
            "--discovery-url".into(),
            format!("{}/atservicesrest", self.sb.autotask_base()),
            "--secrets-stdin".into(),
        ]
    }

    async fn connect_cw(&self, name: &str, private_key: &str) -> Out {
        let args = self.cw_args(name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run_stdin(&args, Some(&format!("{private_key}\n")))
            .await
    }

    async fn connect_at(&self, name: &str, stdin: &str) -> Out {
        let args = self.at_args(name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run_stdin(&args, Some(stdin)).await
    }

    fn at_stdin(&self) -> String {
        let c = self.sb.autotask.credentials();
        format!("{}\n{}\n", c.secret, c.integration_code)
    }

    /// Every secret the emulators hold.
    fn secrets(&self) -> Vec<String> {
        let at = self.sb.autotask.credentials();
        vec![
            self.sb.connectwise.credentials().private_key,
            at.secret,
            at.integration_code,
        ]
    }

    /// No file of the data dir (database, WAL, key) holds a secret in clear.
    fn store_files_hold_none(&self, secrets: &[String]) {
        let mut seen = 0;
        for entry in std::fs::read_dir(self.home.path()).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            seen += 1;
            let bytes = std::fs::read(&path).unwrap();
            for s in secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{} holds a secret in clear",
                    path.display()
                );
            }
        }
        assert!(seen > 0, "the store was written");
    }
}

fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn connectwise_connect_read_and_remove() {
    let e = env().await;
    let secrets = e.secrets();
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let private = e.sb.connectwise.credentials().private_key;

    let out = e.connect_cw("acme-cw", &private).await.ok();
    out.leaks_none(&secret_refs);
    let saved = out.json();
    assert_eq!(saved["name"], "acme-cw");
    assert_eq!(saved["kind"], "connectwise");
    assert_eq!(saved["status"], "saved");
    assert_eq!(saved["settings"]["site"], e.sb.connectwise_site());
    assert!(saved["settings"].get("private_key").is_none(), "{saved}");
    e.store_files_hold_none(&secrets);

    // A second connect under the same name is refused before stdin is read.
    let again = e.connect_cw("acme-cw", &private).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(again.stderr.contains("--overwrite"), "{}", again.stderr);
    let mut args = e.cw_args("acme-cw");
    args.push("--overwrite".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    e.run_stdin(&args, Some(&private)).await.ok();

    let out = e.run(&["psa", "list", "--format", "json"]).await.ok();
    out.leaks_none(&secret_refs);
    let list = out.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "acme-cw");
    let table = e.run(&["psa", "list", "--format", "table"]).await.ok();
    assert!(table.stdout.contains("acme-cw"), "{}", table.stdout);
    table.leaks_none(&secret_refs);

    let tested = e.run(&["psa", "test"]).await.ok();
    assert_eq!(tested.json()["status"], "ok");

    // Attributes: the emulator's types and statuses, --psa optional with one integration.
    let attrs = e
        .run(&["psa", "attributes", "--format", "jsonl"])
        .await
        .ok();
    let attrs = attrs.jsonl();
    let (types, statuses) = e.sb.connectwise.with_data(|d| {
        (
            d.types
                .iter()
                .map(|t| (t.id.to_string(), t.name.clone()))
                .collect::<Vec<_>>(),
            d.statuses
                .iter()
                .map(|s| (s.id.to_string(), s.name.clone()))
                .collect::<Vec<_>>(),
        )
    });
    let of = |kind: &str| -> Vec<(String, String)> {
        attrs
            .iter()
            .filter(|a| a["attribute"] == kind)
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(of("type"), types);
    assert_eq!(of("status"), statuses);

    // Companies: all, then filtered upstream (types OR-ed, AND-ed with statuses).
    let all = e
        .run(&["psa", "companies", "--psa", "acme-cw", "--format", "jsonl"])
        .await
        .ok()
        .jsonl();
    let truth: Vec<String> =
        e.sb.connectwise
            .with_data(|d| d.companies.keys().map(u64::to_string).collect());
    assert_eq!(ids(&all), truth);
    let filtered = e
        .run(&[
            "psa",
            "companies",
            "--type",
            "1",
            "--type",
            "4",
            "--status",
            "1",
            "--format",
            "json",
        ])
        .await
        .ok()
        .json();
    let filtered = filtered.as_array().unwrap().clone();
    let truth: Vec<String> = e.sb.connectwise.with_data(|d| {
        d.companies
            .values()
            .filter(|c| c.status_id == 1 && c.type_ids.iter().any(|t| *t == 1 || *t == 4))
            .map(|c| c.id.to_string())
            .collect()
    });
    assert!(!truth.is_empty() && truth.len() < all.len());
    assert_eq!(ids(&filtered), truth);
    assert!(
        filtered.iter().all(|c| c["status"]["id"] == "1"),
        "{filtered:?}"
    );
    let csv = e
        .run(&["psa", "companies", "--status", "1", "--format", "csv"])
        .await
        .ok();
    assert!(
        csv.stdout
            .starts_with("id,name,type_id,type,status_id,status,active\n"),
        "{}",
        csv.stdout
    );

    // Contacts of the company with the most contacts, with e-mails and active state.
    let (company, expected) = e.sb.connectwise.with_data(|d| {
        let (k, set) = d.by_company.iter().max_by_key(|(_, s)| s.len()).unwrap();
        (
            k.to_string(),
            set.iter()
                .map(|i| (i.to_string(), !d.contacts[i].inactive))
                .collect::<Vec<_>>(),
        )
    });
    let contacts = e
        .run(&["psa", "contacts", &company, "--format", "jsonl"])
        .await
        .ok()
        .jsonl();
    let got: Vec<(String, bool)> = contacts
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(contacts.iter().all(|c| c["company_id"] == company.as_str()));
    assert!(contacts.iter().all(|c| c["emails"].is_array()));
    let missing = e.run(&["psa", "contacts", "999999"]).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing.stderr.contains("no company with id \"999999\""),
        "{}",
        missing.stderr
    );

    // Remove.
    e.run(&["psa", "remove", "acme-cw"]).await.ok();
    assert_eq!(
        e.run(&["psa", "list"]).await.ok().json(),
        serde_json::json!([])
    );
    let gone = e.run(&["psa", "remove", "acme-cw"]).await;
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr.contains("no PSA integration named \"acme-cw\""),
        "{}",
        gone.stderr
    );
    let none = e.run(&["psa", "companies"]).await;
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("lpbridge psa connect"),
        "{}",
        none.stderr
    );
}

#[tokio::test]
async fn autotask_connect_with_secrets_on_stdin_and_pick_among_several() {
    let e = env().await;
    let secrets = e.secrets();
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();

    let out = e.connect_at("acme-at", &e.at_stdin()).await.ok();
    out.leaks_none(&secret_refs);
    let saved = out.json();
    assert_eq!(saved["kind"], "autotask");
    assert_eq!(
        saved["settings"]["username"],
        e.sb.autotask.credentials().username
    );
    e.connect_cw("acme-cw", &e.sb.connectwise.credentials().private_key)
        .await
        .ok();
    e.store_files_hold_none(&secrets);

    // Two integrations: --psa is required, and the error lists them.
    let ambiguous = e.run(&["psa", "attributes"]).await;
    assert_eq!(ambiguous.code, 2, "{ambiguous:?}");
    assert!(
        ambiguous
            .stderr
            .contains("2 PSA integrations are stored (acme-at (autotask), acme-cw (connectwise))"),
        "{}",
        ambiguous.stderr
    );
    assert!(
        ambiguous.stderr.contains("--psa NAME"),
        "{}",
        ambiguous.stderr
    );
    let unknown = e.run(&["psa", "attributes", "--psa", "nope"]).await;
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("no PSA integration named \"nope\""));

    let attrs = e
        .run(&["psa", "attributes", "--psa", "acme-at", "--format", "jsonl"])
        .await
        .ok()
        .jsonl();
    let statuses: BTreeSet<&str> = attrs
        .iter()
        .filter(|a| a["attribute"] == "status")
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["active", "inactive"]));
    assert!(
        attrs
            .iter()
            .any(|a| a["attribute"] == "type" && a["name"] == "Customer")
    );

    let got = e
        .run(&[
            "psa",
            "companies",
            "--psa",
            "acme-at",
            "--type",
            "1",
            "--type",
            "3",
            "--status",
            "active",
            "--format",
            "jsonl",
        ])
        .await
        .ok()
        .jsonl();
    let truth: Vec<String> = e.sb.autotask.read(|db| {
        db.companies
            .values()
            .filter(|c| c.id > 0 && matches!(c.company_type, 1 | 3) && c.is_active)
            .map(|c| c.id.to_string())
            .collect()
    });
    assert!(!truth.is_empty());
    assert_eq!(ids(&got), truth);

    let (company, expected) = e.sb.autotask.read(|db| {
        let (id, set) = db.by_company.iter().max_by_key(|(_, s)| s.len()).unwrap();
        (
            id.to_string(),
            set.iter().map(i64::to_string).collect::<Vec<_>>(),
        )
    });
    let contacts = e
        .run(&[
            "psa", "contacts", &company, "--psa", "acme-at", "--format", "jsonl",
        ])
        .await
        .ok()
        .jsonl();
    assert_eq!(ids(&contacts), expected);

    let tested = e.run(&["psa", "test", "acme-at"]).await.ok();
    assert_eq!(tested.json()["status"], "ok");
    tested.leaks_none(&secret_refs);
}

#[tokio::test]
async fn bad_credentials_give_the_import_message_and_store_nothing() {
    let e = env().await;
    let wrong = "WrongPrivateKey0";
    let out = e.connect_cw("acme-cw", wrong).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(AUTH_MESSAGE), "{}", out.stderr);
    assert!(out.stderr.contains("detail:"), "{}", out.stderr);
    out.leaks_none(&[wrong]);

    let c = e.sb.autotask.credentials();
    let out = e
        .connect_at(
            "acme-at",
            &format!("NotTheSecret99\n{}\n", c.integration_code),
        )
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(AUTH_MESSAGE), "{}", out.stderr);
    out.leaks_none(&["NotTheSecret99", &c.integration_code]);

    assert_eq!(
        e.run(&["psa", "list"]).await.ok().json(),
        serde_json::json!([])
    );

    // --no-check stores them; `psa test` then reports the same message.
    let mut args = e.cw_args("unchecked");
    args.push("--no-check".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let saved = e.run_stdin(&args, Some(wrong)).await.ok();
    assert_eq!(saved.json()["status"], "saved (not checked)");
    let tested = e.run(&["psa", "test", "unchecked"]).await;
    assert_eq!(tested.code, 1);
    assert!(tested.stderr.contains(AUTH_MESSAGE), "{}", tested.stderr);
}

#[tokio::test]
async fn empty_credentials_are_required() {
    let e = env().await;
    let c = e.sb.autotask.credentials();
    // The integration code line is missing.
    let out = e.connect_at("acme-at", &format!("{}\n", c.secret)).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("Credentials are required"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("integration_code"), "{}", out.stderr);
    out.leaks_none(&[&c.secret]);

    // An empty private key on stdin.
    let out = e.connect_cw("acme-cw", "").await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("Credentials are required"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("private_key"), "{}", out.stderr);

    // An empty public key on the command line, even with --no-check.
    let mut args = e.cw_args("acme-cw");
    let at = args.iter().position(|a| a == "--public-key").unwrap();
    args[at + 1] = String::new();
    args.push("--no-check".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = e
        .run_stdin(&args, Some(&e.sb.connectwise.credentials().private_key))
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("Credentials are required"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("public_key"), "{}", out.stderr);

    // Without --secrets-stdin and no terminal: a usage error naming the flag.
    let mut args = e.at_args("acme-at");
    args.pop();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = e.run(&args).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--secrets-stdin"), "{}", out.stderr);

    // A bad name is refused before anything is read.
    let out = e.connect_cw("has space", "x").await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("has space"), "{}", out.stderr);
    assert_eq!(
        e.run(&["psa", "list"]).await.ok().json(),
        serde_json::json!([])
    );
}
