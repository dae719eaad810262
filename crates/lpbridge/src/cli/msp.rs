//! `lpbridge msp connect|status|import plan|import apply|runs|unlock`: the MSP import of PSA
//! companies and contacts into LastPass managed companies. Parsing and formatting only; the
//! behaviour is [`crate::msp`].

use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Args, Subcommand};
use lp_types::{ConnectionId, Secret};
use psa::CompanyFilter;
use serde::Serialize;

use super::Ctx;
use crate::error::{Error, Result};
use crate::msp::apply::{self, ApplyOptions, ImportResult, Progress};
use crate::msp::lock::{self, Owner};
use crate::msp::plan::{self, Edit, Plan};
use crate::msp::{ImportContext, MspError};
use crate::output::{Emitter, Format, Record};

#[derive(Debug, Subcommand)]
pub enum MspCmd {
    /// Store the MSP account's LastPass REST API key (sealed at rest), after one check call.
    /// The key is read from stdin (--api-key-stdin), LPBRIDGE_MSP_API_KEY or a hidden prompt,
    /// never from arguments.
    #[command(
        after_help = "Example:\n  lpbridge msp connect --api-key-stdin < lastpass-api-key.txt\n  lpbridge msp connect --base-url http://127.0.0.1:8787/business/v1 --api-key-stdin < key.txt"
    )]
    Connect(ConnectArgs),
    /// The stored LastPass REST API settings (never the key), one check call, and per PSA
    /// integration its mappings, lock and last import.
    #[command(after_help = "Example:\n  lpbridge msp status --format table")]
    Status {
        /// Skip the check call.
        #[arg(long)]
        no_check: bool,
    },
    /// Import companies and contacts from a PSA, as a plan (both lists, statuses, choices)
    /// and its application.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge msp import plan --psa acme-cw --type 1 --status 1 > plan.json\n  lpbridge msp import apply plan.json"
    )]
    Import(ImportCmd),
    /// The latest import runs of an integration, with their counts and errors.
    #[command(after_help = "Example:\n  lpbridge msp runs --psa acme-cw --format table")]
    Runs {
        #[command(flatten)]
        pick: super::psa::Pick,
        /// At most this many runs.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Break an integration's import lock, whoever holds it (after making sure no import is
    /// running: the holder's further writes are refused).
    #[command(after_help = "Example:\n  lpbridge msp unlock --psa acme-cw --yes")]
    Unlock {
        #[command(flatten)]
        pick: super::psa::Pick,
    },
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The REST API's base URL.
    #[arg(long, value_name = "URL", default_value = lastpass::rest::DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Read the API key from stdin instead of LPBRIDGE_MSP_API_KEY or a prompt.
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Store without the check call.
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Fetch both lists ("Companies in <PSA>", "Companies not in <PSA>") with each company's
    /// import status, PSA type and status, last import date and contacts, and the default
    /// choices. JSON (the plan to apply; only its `choice` objects may be edited) or a table.
    /// Takes the integration's lock while it reads.
    #[command(
        after_help = "Example:\n  lpbridge msp import plan --psa acme-cw --type 1 --status 1 --all-emails > plan.json\n  lpbridge msp import plan --psa acme-cw --map 19342=40001003 --emails 19342=ann@blue.example --format table"
    )]
    Plan(Box<PlanArgs>),
    /// Import and Map: apply a plan (progress bar on stderr, result on stdout). Refuses a plan
    /// that is stale (says what changed), altered, for another integration, or with invalid
    /// choices, changing nothing. Safe to run again after a crash: nothing is created twice.
    #[command(
        after_help = "Example:\n  lpbridge msp import apply plan.json\n  lpbridge msp import apply plan.json --emails 19342=ann@blue.example,bob@blue.example --format table"
    )]
    Apply(Box<ApplyArgs>),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub pick: super::psa::Pick,
    /// Company type id (see `lpbridge psa attributes`); repeatable (OR).
    #[arg(long = "type", value_name = "ID")]
    pub types: Vec<String>,
    /// Company status id (Autotask: active or inactive); repeatable (OR).
    #[arg(long = "status", value_name = "ID")]
    pub statuses: Vec<String>,
    #[command(flatten)]
    pub choices: ChoiceArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file (`-` for stdin).
    pub plan: std::path::PathBuf,
    /// Refuse the plan unless it was made for this integration.
    #[arg(long, value_name = "NAME")]
    pub psa: Option<ConnectionId>,
    #[command(flatten)]
    pub choices: ChoiceArgs,
    /// Stage new users (no activation e-mail, no licence) instead of inviting them.
    #[arg(long)]
    pub stage: bool,
    /// Companies whose users are imported at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub concurrency: u16,
}

/// Choices, as flags (the same as editing the plan's `choice` objects). COMPANY is a PSA
/// company id or its exact name.
#[derive(Debug, Args, Default)]
pub struct ChoiceArgs {
    /// Map COMPANY to an existing managed company: COMPANY=MANAGED_ID.
    #[arg(long = "map", value_name = "COMPANY=MANAGED_ID")]
    pub map: Vec<String>,
    /// Unmap COMPANY and create it as a new managed company.
    #[arg(long = "unmap", value_name = "COMPANY")]
    pub unmap: Vec<String>,
    /// Create a new managed company for COMPANY (the default for unmapped ones).
    #[arg(long = "create", value_name = "COMPANY")]
    pub create: Vec<String>,
    /// Leave COMPANY out of this import.
    #[arg(long = "skip", value_name = "COMPANY")]
    pub skip: Vec<String>,
    /// The contact e-mails of COMPANY granted LastPass access: COMPANY=a@x,b@y (replaces the
    /// preselection: the e-mails imported before).
    #[arg(long = "emails", value_name = "COMPANY=EMAILS")]
    pub emails: Vec<String>,
    /// Grant access to every active contact with an e-mail, in every company of the import.
    #[arg(long)]
    pub all_emails: bool,
    /// Map a contact to an existing LastPass user: COMPANY:EMAIL=LP_USER_ID.
    #[arg(long = "map-user", value_name = "COMPANY:EMAIL=LP_USER_ID")]
    pub map_user: Vec<String>,
    /// Unmap a contact and create it as a new user: COMPANY:EMAIL.
    #[arg(long = "unmap-user", value_name = "COMPANY:EMAIL")]
    pub unmap_user: Vec<String>,
}

impl ChoiceArgs {
    /// The edits, in a fixed order: skip, create, unmap, map, all e-mails, e-mails, users.
    fn edits(&self) -> Result<Vec<Edit>> {
        let bad = |flag: &str, v: &str, want: &str| {
            Error::Invalid(lp_types::InvalidValue::new(
                flag.to_owned(),
                v,
                format!("expected {want}"),
            ))
        };
        let mut out = Vec::new();
        for c in &self.skip {
            out.push(Edit::Import {
                company: c.clone(),
                import: false,
            });
        }
        for c in &self.create {
            out.push(Edit::Create { company: c.clone() });
        }
        for c in &self.unmap {
            out.push(Edit::Unmap { company: c.clone() });
        }
        for m in &self.map {
            let (c, id) = m
                .rsplit_once('=')
                .ok_or_else(|| bad("--map", m, "COMPANY=MANAGED_ID"))?;
            out.push(Edit::Map {
                company: c.to_owned(),
                managed_id: id.to_owned(),
            });
        }
        if self.all_emails {
            out.push(Edit::AllEmails);
        }
        for e in &self.emails {
            let (c, list) = e
                .split_once('=')
                .ok_or_else(|| bad("--emails", e, "COMPANY=a@x,b@y"))?;
            out.push(Edit::Emails {
                company: c.to_owned(),
                emails: list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
        }
        for m in &self.map_user {
            let (left, uid) = m
                .rsplit_once('=')
                .ok_or_else(|| bad("--map-user", m, "COMPANY:EMAIL=LP_USER_ID"))?;
            let (c, email) = left
                .rsplit_once(':')
                .ok_or_else(|| bad("--map-user", m, "COMPANY:EMAIL=LP_USER_ID"))?;
            out.push(Edit::MapUser {
                company: c.to_owned(),
                email: email.to_owned(),
                user_id: uid.to_owned(),
            });
        }
        for m in &self.unmap_user {
            let (c, email) = m
                .rsplit_once(':')
                .ok_or_else(|| bad("--unmap-user", m, "COMPANY:EMAIL"))?;
            out.push(Edit::UnmapUser {
                company: c.to_owned(),
                email: email.to_owned(),
            });
        }
        Ok(out)
    }
}

pub async fn run(ctx: &Ctx, cmd: MspCmd) -> Result<()> {
    match cmd {
        MspCmd::Connect(a) => connect(ctx, a).await,
        MspCmd::Status { no_check } => status(ctx, no_check).await,
        MspCmd::Import(ImportCmd::Plan(a)) => plan_cmd(ctx, *a).await,
        MspCmd::Import(ImportCmd::Apply(a)) => apply_cmd(ctx, *a).await,
        MspCmd::Runs { pick, limit } => runs(ctx, pick.psa, limit).await,
        MspCmd::Unlock { pick } => {
            let integration = super::psa::pick(ctx, pick.psa).await?;
            ctx.confirm(&format!(
                "break the MSP import lock of {:?}",
                integration.id.as_str()
            ))?;
            let store = ctx.store().await?;
            let had = lock::force_release(store, integration.id.as_str()).await?;
            crate::note!(
                "{}",
                if had {
                    "the lock was released"
                } else {
                    "the integration was not locked"
                }
            );
            Ok(())
        }
    }
}

async fn connect(ctx: &Ctx, a: ConnectArgs) -> Result<()> {
    let base = lastpass::rest::parse_base_url(&a.base_url)?;
    let key = if a.api_key_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::usage(format!("cannot read stdin (--api-key-stdin): {e}")))?;
        Secret::new(s.trim_end_matches(['\r', '\n']).trim().to_owned())
    } else if let Some(k) = std::env::var("LPBRIDGE_MSP_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        Secret::new(k.trim().to_owned())
    } else if std::io::stdin().is_terminal() {
        super::read_secret("LastPass REST API key", "--api-key-stdin", false, false)?
            .unwrap_or_else(|| Secret::new(""))
    } else {
        Secret::new("")
    };
    if key.expose().is_empty() {
        return Err(MspError::CredentialsRequired(
            "the LastPass REST API key is empty: pipe it in with --api-key-stdin or set \
             LPBRIDGE_MSP_API_KEY"
                .into(),
        )
        .into());
    }
    let client = crate::msp::build_rest_client(base.clone(), key.clone())?;
    if !a.no_check {
        crate::msp::check_rest(&client).await?;
    }
    let store = ctx.store().await?;
    let s = store.set_msp_settings(&base, &key).await?;
    let rec = KeyValues(vec![
        ("base_url".into(), s.base_url),
        ("api_key".into(), "stored (sealed)".into()),
        (
            "status".into(),
            if a.no_check {
                "saved (not checked)".into()
            } else {
                "saved".into()
            },
        ),
    ]);
    write_kv(ctx, &rec)
}

/// Key/value lines (table and CSV) or an object (JSON).
struct KeyValues(Vec<(String, String)>);

impl Serialize for KeyValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn write_kv(ctx: &Ctx, kv: &KeyValues) -> Result<()> {
    let mut out = ctx.stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, kv).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Format::Jsonl => {
            serde_json::to_writer(&mut out, kv).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Format::Table | Format::Csv => {
            let mut e = Emitter::new::<KvRow>(ctx.format, out);
            for (k, v) in &kv.0 {
                e.emit(&KvRow {
                    key: k.clone(),
                    value: v.clone(),
                })?;
            }
            e.finish()?;
            return Ok(());
        }
    }
    out.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct KvRow {
    key: String,
    value: String,
}

impl Record for KvRow {
    fn headers() -> &'static [&'static str] {
        &["key", "value"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.key.clone(), self.value.clone()]
    }
}

#[derive(Serialize)]
struct IntegrationStatus {
    integration: String,
    kind: String,
    mapped_companies: usize,
    imported_contacts: usize,
    lock: String,
    last_run: String,
}

impl Record for IntegrationStatus {
    fn headers() -> &'static [&'static str] {
        &[
            "integration",
            "kind",
            "mapped_companies",
            "imported_contacts",
            "lock",
            "last_run",
        ]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.integration.clone(),
            self.kind.clone(),
            self.mapped_companies.to_string(),
            self.imported_contacts.to_string(),
            self.lock.clone(),
            self.last_run.clone(),
        ]
    }
}

async fn status(ctx: &Ctx, no_check: bool) -> Result<()> {
    let Some(store) = ctx.existing_store().await? else {
        return Err(MspError::CredentialsRequired(
            "nothing is stored yet: run `lpbridge msp connect --api-key-stdin`".into(),
        )
        .into());
    };
    let settings = store.msp_settings_summary().await?;
    let check = match (&settings, no_check) {
        (None, _) => "no LastPass REST API key stored (lpbridge msp connect)".to_owned(),
        (Some(_), true) => "not checked".to_owned(),
        (Some(_), false) => match crate::msp::rest_client(store).await {
            Ok(c) => match crate::msp::check_rest(&c).await {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.to_string().replace('\n', " "),
            },
            Err(e) => e.to_string().replace('\n', " "),
        },
    };
    let mut rows = Vec::new();
    for i in store.list_psa_integrations().await? {
        let id = i.id.as_str();
        let maps = store.msp_company_maps(id).await?;
        let contacts = store.msp_contact_maps(id).await?;
        let l = lock::status(store, id).await?;
        let last = store.msp_runs(id, 1).await?;
        rows.push(IntegrationStatus {
            integration: id.to_owned(),
            kind: i.kind.to_string(),
            mapped_companies: maps.len(),
            imported_contacts: contacts.len(),
            lock: match (l.holder, l.expires_at) {
                (Some(h), Some(t)) => format!("held by {h} until {}", t.to_rfc3339()),
                _ => "free".into(),
            },
            last_run: last.first().map_or_else(
                || "never".to_owned(),
                |r| {
                    format!(
                        "{} {} ({})",
                        r.id,
                        r.status.as_str(),
                        r.started_at.to_rfc3339()
                    )
                },
            ),
        });
    }
    match ctx.format {
        Format::Json | Format::Jsonl => {
            let v = serde_json::json!({
                "lastpass_rest": settings,
                "check": check,
                "integrations": rows,
            });
            let mut out = ctx.stdout();
            if ctx.format == Format::Json {
                serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::from)?;
            } else {
                serde_json::to_writer(&mut out, &v).map_err(std::io::Error::from)?;
            }
            out.write_all(b"\n")?;
            out.flush()?;
        }
        _ => {
            let base = settings
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |s| s.base_url.clone());
            write_kv(
                ctx,
                &KeyValues(vec![
                    ("lastpass_rest_base_url".into(), base),
                    ("check".into(), check),
                ]),
            )?;
            let mut e = Emitter::new::<IntegrationStatus>(ctx.format, ctx.stdout());
            for r in &rows {
                e.emit(r)?;
            }
            e.finish()?;
        }
    }
    Ok(())
}

async fn context(ctx: &Ctx, name: Option<ConnectionId>) -> Result<ImportContext> {
    let integration = super::psa::pick(ctx, name).await?;
    let store = ctx.store().await?;
    Ok(ImportContext::open(store, &integration.id, &super::psa::tuning(ctx)).await?)
}

fn verbose_calls(ctx: &Ctx, ic: &ImportContext) {
    if ctx.global.verbose > 0 {
        let s = ic.rest.stats();
        let by = s
            .by_cmd
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        crate::note!(
            "lpbridge: upstream calls: {}={} lastpass_rest={} {by}",
            ic.psa.kind(),
            ic.psa.calls(),
            s.requests
        );
    }
}

async fn plan_cmd(ctx: &Ctx, a: PlanArgs) -> Result<()> {
    let edits = a.choices.edits()?;
    let ic = context(ctx, a.pick.psa).await?;
    let store = &ic.store;
    let owner = Owner::cli();
    let integration = ic.integration_id().to_owned();
    lock::acquire(store, &integration, &owner, lock::RUN_TTL).await?;
    let made = async {
        let key = store.msp_plan_key().await?;
        let filter = CompanyFilter {
            types: a.types.clone(),
            statuses: a.statuses.clone(),
        };
        let state = crate::msp::state::fetch(&ic, &filter).await?;
        let mut p = plan::build(&integration, ic.integration.kind(), &filter, &state, &key);
        plan::apply_edits(&mut p, &edits)?;
        let managed = state
            .managed
            .iter()
            .map(|m| (m.id.to_string(), m.name.clone()))
            .collect();
        let problems = plan::validate(&p, &managed);
        if !problems.is_empty() {
            return Err(MspError::Invalid(problems));
        }
        Ok::<_, MspError>(p)
    }
    .await;
    lock::release(store, &integration, &owner).await?;
    verbose_calls(ctx, &ic);
    let p = made?;
    let selected = p
        .companies_in_psa
        .iter()
        .filter(|r| r.choice.import)
        .count();
    crate::note!(
        "plan {}: {} companies in {} ({} to import), {} not in {}",
        p.plan_id,
        p.companies_in_psa.len(),
        p.psa_name,
        selected,
        p.companies_not_in_psa.len(),
        p.psa_name
    );
    emit_plan(ctx, &p)
}

/// One company row of a plan, for table and CSV output.
#[derive(Serialize)]
struct PlanRowRecord {
    list: String,
    psa_company_id: String,
    name: String,
    import_status: String,
    psa_type: String,
    psa_status: String,
    last_import: String,
    action: String,
    managed_company: String,
    emails: String,
}

impl Record for PlanRowRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "list",
            "psa_company_id",
            "name",
            "import_status",
            "psa_type",
            "psa_status",
            "last_import",
            "action",
            "managed_company",
            "emails",
        ]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.list.clone(),
            self.psa_company_id.clone(),
            self.name.clone(),
            self.import_status.clone(),
            self.psa_type.clone(),
            self.psa_status.clone(),
            self.last_import.clone(),
            self.action.clone(),
            self.managed_company.clone(),
            self.emails.clone(),
        ]
    }
}

fn emit_plan(ctx: &Ctx, p: &Plan) -> Result<()> {
    if matches!(ctx.format, Format::Json | Format::Jsonl) {
        let mut out = ctx.stdout();
        if ctx.format == Format::Json {
            out.write_all(p.to_json().as_bytes())?;
        } else {
            serde_json::to_writer(&mut out, p).map_err(std::io::Error::from)?;
        }
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(());
    }
    let date = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let in_list = format!("Companies in {}", p.psa_name);
    let not_list = format!("Companies not in {}", p.psa_name);
    let mut e = Emitter::new::<PlanRowRecord>(ctx.format, ctx.stdout());
    for r in &p.companies_in_psa {
        let chosen = plan::selected_emails(r).map_or(0, |v| v.len());
        let with_email = r.contacts.iter().filter(|c| c.email.is_some()).count();
        e.emit(&PlanRowRecord {
            list: in_list.clone(),
            psa_company_id: r.psa_company_id.clone(),
            name: r.name.clone(),
            import_status: r.import_status.as_str().to_owned(),
            psa_type: r.psa_type.clone().unwrap_or_default(),
            psa_status: format!(
                "{}{}",
                r.psa_status.clone().unwrap_or_default(),
                if r.psa_active { "" } else { " (inactive)" }
            ),
            last_import: date(r.last_import),
            action: if r.choice.import {
                r.choice.action.as_str().to_owned()
            } else {
                "skip".to_owned()
            },
            managed_company: r
                .choice
                .managed_company_id
                .clone()
                .or_else(|| {
                    r.duplicates
                        .first()
                        .map(|d| format!("(same name: {})", d.id))
                })
                .unwrap_or_default(),
            emails: format!("{chosen}/{with_email}"),
        })?;
    }
    for g in &p.companies_not_in_psa {
        e.emit(&PlanRowRecord {
            list: not_list.clone(),
            psa_company_id: g.psa_company_id.clone(),
            name: g.name.clone(),
            import_status: g.import_status.as_str().to_owned(),
            psa_type: String::new(),
            psa_status: "not found".into(),
            last_import: date(g.last_import),
            action: "none".into(),
            managed_company: format!(
                "{}{}",
                g.managed_company.id,
                if g.managed_company.exists {
                    ""
                } else {
                    " (gone)"
                }
            ),
            emails: String::new(),
        })?;
    }
    e.finish()?;
    Ok(())
}

/// The progress bar on a terminal; on a pipe, a `progress: N/M` line at every 1 %.
struct Bar {
    bar: indicatif::ProgressBar,
    lines: bool,
    total: AtomicU64,
    done: AtomicU64,
    every: AtomicU64,
}

impl Bar {
    fn new() -> Self {
        let lines = !std::io::stderr().is_terminal();
        Self {
            bar: super::users::progress_bar(0),
            lines,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            every: AtomicU64::new(1),
        }
    }
}

impl Progress for Bar {
    fn begin(&self, total: u64) {
        self.bar.set_length(total);
        self.total.store(total, Ordering::SeqCst);
        self.every.store((total / 100).max(1), Ordering::SeqCst);
        if self.lines {
            crate::note!("progress: 0/{total}");
        }
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
        let before = self.done.fetch_add(n, Ordering::SeqCst);
        let every = self.every.load(Ordering::SeqCst);
        if self.lines && (before + n) / every != before / every {
            crate::note!(
                "progress: {}/{}",
                before + n,
                self.total.load(Ordering::SeqCst)
            );
        }
    }
    fn end(&self) {
        self.bar.finish_and_clear();
    }
}

async fn apply_cmd(ctx: &Ctx, a: ApplyArgs) -> Result<()> {
    let edits = a.choices.edits()?;
    let bytes = if a.plan.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
        b
    } else {
        std::fs::read(&a.plan)
            .map_err(|e| Error::usage(format!("cannot read {}: {e}", a.plan.display())))?
    };
    let mut p = Plan::from_json(&bytes)?;
    plan::apply_edits(&mut p, &edits)?;
    if let Some(want) = &a.psa
        && want.as_str() != p.integration
    {
        return Err(MspError::Foreign(format!(
            "the plan was made for PSA integration {:?}, not {:?}",
            p.integration,
            want.as_str()
        ))
        .into());
    }
    let store = ctx.store().await?;
    // Integrity before anything else (a foreign integration name included).
    p.verify(&store.msp_plan_key().await?)?;
    let name = ConnectionId::new(p.integration.clone())?;
    if store.psa_integration_summary(&name).await?.is_none() {
        return Err(MspError::Foreign(format!(
            "the plan was made for PSA integration {:?}, which this store does not have",
            p.integration
        ))
        .into());
    }
    let ic = ImportContext::open(store, &name, &super::psa::tuning(ctx)).await?;
    let opts = ApplyOptions {
        concurrency: usize::from(a.concurrency),
        user_action: if a.stage {
            lastpass::rest::CreationAccountAction::Stage
        } else {
            lastpass::rest::CreationAccountAction::Invite
        },
        expected_integration: a.psa.as_ref().map(|n| n.as_str().to_owned()),
        ..ApplyOptions::default()
    }
    .with_env();
    let bar = Bar::new();
    let out = apply::run(&ic, p, Owner::cli(), &opts, &bar).await;
    verbose_calls(ctx, &ic);
    let result = out?;
    crate::note!(
        "import {}: {} companies and {} users imported, {} error(s)",
        result.status.as_str(),
        result.companies_imported,
        result.users_imported,
        result.errors.len()
    );
    emit_result(ctx, &result)?;
    if result.errors.is_empty() {
        Ok(())
    } else {
        let failed = result.errors.len();
        let total = usize::try_from(
            result.companies_imported
                + result.users_imported
                + result.companies.failed
                + result.users.failed,
        )
        .unwrap_or(usize::MAX)
        .max(failed);
        Err(Error::Partial { failed, total })
    }
}

#[derive(Serialize)]
struct IssueRecord(apply::Issue);

impl Record for IssueRecord {
    fn headers() -> &'static [&'static str] {
        &["message", "psa_company_id", "company", "email", "detail"]
    }
    fn row(&self) -> Vec<String> {
        let i = &self.0;
        vec![
            i.message.clone(),
            i.psa_company_id.clone().unwrap_or_default(),
            i.company.clone().unwrap_or_default(),
            i.email.clone().unwrap_or_default(),
            i.detail.clone(),
        ]
    }
}

fn emit_result(ctx: &Ctx, r: &ImportResult) -> Result<()> {
    if matches!(ctx.format, Format::Json | Format::Jsonl) {
        let mut out = ctx.stdout();
        if ctx.format == Format::Json {
            serde_json::to_writer_pretty(&mut out, r).map_err(std::io::Error::from)?;
        } else {
            serde_json::to_writer(&mut out, r).map_err(std::io::Error::from)?;
        }
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(());
    }
    let c = &r.companies;
    let u = &r.users;
    write_kv(
        ctx,
        &KeyValues(vec![
            ("run".into(), r.run_id.clone()),
            ("status".into(), r.status.as_str().into()),
            (
                "companies imported".into(),
                format!(
                    "{} (created {}, mapped {}, kept {}, resumed {}; failed {})",
                    r.companies_imported, c.created, c.mapped, c.kept, c.resumed, c.failed
                ),
            ),
            (
                "users imported".into(),
                format!(
                    "{} (added {}, mapped {}, kept {}; failed {})",
                    r.users_imported, u.added, u.mapped, u.kept, u.failed
                ),
            ),
            (
                "upstream calls".into(),
                format!(
                    "PSA {}, LastPass {} (writes {})",
                    r.calls.psa,
                    r.calls.lastpass.values().sum::<u64>(),
                    r.calls.lastpass_writes
                ),
            ),
        ]),
    )?;
    if !r.errors.is_empty() {
        let mut e = Emitter::new::<IssueRecord>(ctx.format, ctx.stdout());
        for i in &r.errors {
            e.emit(&IssueRecord(i.clone()))?;
        }
        e.finish()?;
    }
    Ok(())
}

#[derive(Serialize)]
struct RunRecord {
    run_id: String,
    status: String,
    started_at: String,
    finished_at: String,
    companies_imported: u64,
    users_imported: u64,
    errors: usize,
    progress: String,
}

impl Record for RunRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "run_id",
            "status",
            "started_at",
            "finished_at",
            "companies_imported",
            "users_imported",
            "errors",
            "progress",
        ]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.run_id.clone(),
            self.status.clone(),
            self.started_at.clone(),
            self.finished_at.clone(),
            self.companies_imported.to_string(),
            self.users_imported.to_string(),
            self.errors.to_string(),
            self.progress.clone(),
        ]
    }
}

async fn runs(ctx: &Ctx, name: Option<ConnectionId>, limit: u32) -> Result<()> {
    let integration = super::psa::pick(ctx, name).await?;
    let store = ctx.store().await?;
    let mut e = Emitter::new::<RunRecord>(ctx.format, ctx.stdout());
    for row in store.msp_runs(integration.id.as_str(), limit).await? {
        let r = ImportResult::from_row(&row);
        e.emit(&RunRecord {
            run_id: r.run_id.clone(),
            status: r.status.as_str().to_owned(),
            started_at: r.started_at.to_rfc3339(),
            finished_at: r.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            companies_imported: r.companies_imported,
            users_imported: r.users_imported,
            errors: r.errors.len(),
            progress: format!("{}/{}", row.done_steps, row.total_steps),
        })?;
    }
    e.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_flags_become_edits() {
        let a = ChoiceArgs {
            map: vec!["19342=40001003".into()],
            emails: vec!["Blue Dental=a@x.example, b@x.example".into()],
            map_user: vec!["19342:ann@x.example=51000012".into()],
            unmap_user: vec!["7:bob@x.example".into()],
            ..ChoiceArgs::default()
        };
        let e = a.edits().unwrap();
        assert!(e.contains(&Edit::Map {
            company: "19342".into(),
            managed_id: "40001003".into()
        }));
        assert!(e.contains(&Edit::Emails {
            company: "Blue Dental".into(),
            emails: vec!["a@x.example".into(), "b@x.example".into()]
        }));
        assert!(e.contains(&Edit::MapUser {
            company: "19342".into(),
            email: "ann@x.example".into(),
            user_id: "51000012".into()
        }));
        let bad = ChoiceArgs {
            map: vec!["nomap".into()],
            ..ChoiceArgs::default()
        };
        let m = bad.edits().unwrap_err().to_string();
        assert!(m.contains("--map") && m.contains("nomap"), "{m}");
    }
}
