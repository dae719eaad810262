//! **Import and Map**: executes a plan, idempotently and safely after a crash at any point.
//!
//! [`prepare`] changes nothing: it checks the plan's integrity and integration, reads the
//! current state ([`super::state::fetch`]), validates the choices and refuses a stale plan,
//! saying what changed. [`execute`] then works in three phases, under the import lock:
//!
//! 1. **Companies.** `keep` and `map` write the mapping. A new managed company is journaled
//!    before its `POST` (`intent`), after the `202` (`requested`, with the request to poll) and
//!    when done (`done` together with the mapping, in one transaction).
//! 2. **Requests.** Every pending create is polled round-robin until it completes.
//! 3. **Users.** Per company (several at a time): the selected contacts already mapped are
//!    kept (no call); `map_users` are mapped; the others are added (`invite`, or `stage`).
//!    A company that existed before this run is first listed once, so a user added by an
//!    interrupted run (or by hand) is mapped, never added twice.
//!
//! # After a crash
//!
//! A re-run (of the same plan, or of a new one) reads the journal: a `requested` company is
//! polled instead of created again; a `done` one of the same plan is reused; an `intent`
//! without a request (the process died between LastPass accepting the `POST` and the journal
//! write) is looked up by name, and adopted when exactly one new same-named company exists.
//! When none exists yet, the company is reported in doubt and created only once
//! [`ApplyOptions::in_doubt_grace`] has passed (a late request would otherwise make a
//! duplicate). Users are never added twice: see phase 3. The import never removes a company
//! or a user.
//!
//! # Result
//!
//! Counts of companies and users imported and every error with the product's message:
//! "You don't seem to have enough available licenses" when LastPass refuses a user or company
//! for licences (further invitations are then not attempted), "Something went wrong" for any
//! other per-item failure, with a technical detail.
//!
//! # Test hook
//!
//! `LPBRIDGE_MSP_TEST_HOLD=<point>:<n>` (read by the CLI) freezes the process the n-th time it
//! reaches `<point>` (`company-intent`, `company-posted`, `company-requested`, `company-done`,
//! `user-added`, `users-written`), after printing `lpbridge: test hold at <point> #<n>` on
//! stderr, so a test can SIGKILL it at that exact point.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use lastpass::rest::{
    Accepted, CompanyId, CompanyUserId, CreationAccountAction, NewCompanyUser, NewManagedCompany,
    RequestId, RequestStatus, UserQuery,
};
use lp_types::{Email, InvalidValue};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::lock::{Held, Owner};
use super::plan::{self, CompanyAction, CompanyRow, Plan, company_step};
use super::state::{self, State, name_key};
use super::{ImportContext, MspError, lastpass_message, messages};
use crate::store::msp::{
    CompanyMap, ContactMap, ImportRunRow, JournalEntry, PlanKey, RunStatus, StepState,
};

/// How an apply behaves.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Companies whose users are imported at the same time.
    pub concurrency: usize,
    /// How new users get their account: `invite` (an activation e-mail; holds a licence) or
    /// `stage`.
    pub user_action: CreationAccountAction,
    /// How long a company create that an interrupted run may have sent (but not journaled) is
    /// waited for before it is created again.
    pub in_doubt_grace: Duration,
    /// How long pending creates are polled.
    pub poll_deadline: Duration,
    /// Refuse a plan of another integration (the wizard's, `--psa`).
    pub expected_integration: Option<String>,
    /// The test hook (see the module documentation).
    pub hold: Option<(String, u64)>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            user_action: CreationAccountAction::Invite,
            in_doubt_grace: Duration::from_secs(600),
            poll_deadline: Duration::from_secs(120),
            expected_integration: None,
            hold: None,
        }
    }
}

impl ApplyOptions {
    /// Reads the test hook (`LPBRIDGE_MSP_TEST_HOLD=<point>:<n>`) and
    /// `LPBRIDGE_MSP_IN_DOUBT_SECS` from the environment.
    pub fn with_env(mut self) -> Self {
        if let Ok(v) = std::env::var("LPBRIDGE_MSP_TEST_HOLD")
            && let Some((p, n)) = v.rsplit_once(':')
            && let Ok(n) = n.trim().parse::<u64>()
        {
            self.hold = Some((p.trim().to_owned(), n.max(1)));
        }
        if let Ok(v) = std::env::var("LPBRIDGE_MSP_IN_DOUBT_SECS")
            && let Ok(s) = v.trim().parse::<u64>()
        {
            self.in_doubt_grace = Duration::from_secs(s);
        }
        self
    }
}

/// Reports progress (the CLI's bar, the service's run row).
pub trait Progress: Send + Sync {
    /// The number of steps: selected companies plus selected e-mails.
    fn begin(&self, _total: u64) {}
    /// `n` more steps are done.
    fn advance(&self, _n: u64) {}
    fn end(&self) {}
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

/// One error of a run, with the product's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// The product's wording ("You don't seem to have enough available licenses", …).
    pub message: String,
    pub psa_company_id: Option<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    /// What happened, technically (never a secret).
    pub detail: String,
}

/// Companies of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyCounts {
    /// New managed companies.
    pub created: u64,
    /// Mapped to an existing managed company.
    pub mapped: u64,
    /// Already mapped, kept.
    pub kept: u64,
    /// Finished by an earlier, interrupted run of the same plan (or adopted after it).
    pub resumed: u64,
    pub failed: u64,
}

/// Users of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCounts {
    /// New LastPass users (invited or staged).
    pub added: u64,
    /// Mapped to an existing LastPass user.
    pub mapped: u64,
    /// Imported before, kept.
    pub kept: u64,
    pub failed: u64,
}

/// Upstream calls of a run (reads included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    pub psa: u64,
    /// LastPass REST API requests by operation (`companies.create`, `users.add`, …).
    pub lastpass: BTreeMap<String, u64>,
    /// Of which writes (`companies.create`, `companies.update`, `users.add`).
    pub lastpass_writes: u64,
}

/// The result page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportResult {
    pub run_id: String,
    pub plan_id: String,
    pub integration: String,
    pub status: RunStatus,
    /// Companies created, mapped, kept or resumed.
    pub companies_imported: u64,
    /// Users added, mapped or kept.
    pub users_imported: u64,
    pub companies: CompanyCounts,
    pub users: UserCounts,
    pub errors: Vec<Issue>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub calls: Calls,
}

/// Counts and errors as the run row stores them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Tally {
    companies: CompanyCounts,
    users: UserCounts,
    #[serde(skip)]
    errors: Vec<Issue>,
}

impl ImportResult {
    /// The result of a stored run (for the wizard's result page and `lpbridge msp runs`).
    pub fn from_row(row: &ImportRunRow) -> Self {
        let tally: Tally = serde_json::from_value(row.counts.clone()).unwrap_or_default();
        let calls: Calls = row
            .counts
            .get("calls")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let errors: Vec<Issue> = serde_json::from_value(row.errors.clone()).unwrap_or_default();
        ImportResult {
            run_id: row.id.clone(),
            plan_id: row.plan_id.clone(),
            integration: row.integration_id.clone(),
            status: row.status,
            companies_imported: imported_companies(&tally.companies),
            users_imported: imported_users(&tally.users),
            companies: tally.companies,
            users: tally.users,
            errors,
            started_at: row.started_at,
            finished_at: row.finished_at,
            calls,
        }
    }
}

fn imported_companies(c: &CompanyCounts) -> u64 {
    c.created + c.mapped + c.kept + c.resumed
}

fn imported_users(u: &UserCounts) -> u64 {
    u.added + u.mapped + u.kept
}

/// A plan checked against the current state, ready to execute.
#[derive(Debug)]
pub struct Prepared {
    pub plan: Plan,
    state: State,
    /// Managed company id → name, now.
    managed: HashMap<String, String>,
    /// Upstream counters before `prepare` read anything (the result counts from here).
    calls_before: (u64, lastpass::CallStats),
}

impl Prepared {
    /// Steps of the run: selected companies plus selected e-mails.
    pub fn total_steps(&self) -> u64 {
        self.plan
            .companies_in_psa
            .iter()
            .filter(|r| r.choice.import)
            .map(|r| 1 + plan::selected_emails(r).map_or(0, |v| v.len() as u64))
            .sum()
    }
}

/// Checks `plan` (integrity, integration, choices, staleness) against the current state.
/// Changes nothing; the caller holds the import lock.
pub async fn prepare(
    ctx: &ImportContext,
    plan: Plan,
    key: &PlanKey,
    opts: &ApplyOptions,
) -> Result<Prepared, MspError> {
    let calls_before = (ctx.psa.calls(), ctx.rest.stats());
    plan.verify(key)?;
    let here = ctx.integration_id();
    if plan.integration != here || plan.psa != ctx.integration.kind() {
        return Err(MspError::Foreign(format!(
            "the plan was made for PSA integration {:?} ({}), not {here:?} ({})",
            plan.integration,
            plan.psa,
            ctx.integration.kind()
        )));
    }
    if let Some(want) = &opts.expected_integration
        && want != here
    {
        return Err(MspError::Foreign(format!(
            "the plan was made for PSA integration {here:?}, not {want:?}"
        )));
    }
    let state = state::fetch(ctx, &plan.filter).await?;
    let managed: HashMap<String, String> = state
        .managed
        .iter()
        .map(|m| (m.id.to_string(), m.name.clone()))
        .collect();
    let problems = plan::validate(&plan, &managed);
    if !problems.is_empty() {
        return Err(MspError::Invalid(problems));
    }
    let (fresh, fresh_gone) = plan::rows(here, &state);
    let changes = plan::stale_changes(&plan, &fresh, &fresh_gone, &state.journal);
    if !changes.is_empty() {
        return Err(MspError::Stale(changes));
    }
    // Users to map must exist in the company they are mapped in.
    let mut problems = Vec::new();
    for (i, row) in plan.companies_in_psa.iter().enumerate() {
        if !row.choice.import || row.choice.map_users.is_empty() {
            continue;
        }
        let Some(target) = row
            .choice
            .managed_company_id
            .clone()
            .or_else(|| row.live_mapping().map(|m| m.id.clone()))
        else {
            continue;
        };
        for (email, uid) in &row.choice.map_users {
            let found = ctx
                .rest
                .get_user(
                    &CompanyId::new(target.clone()),
                    &CompanyUserId::new(uid.trim()),
                )
                .await;
            match found {
                Ok(_) => {}
                Err(lastpass::rest::Error::NotFound { .. }) => problems.push(InvalidValue::new(
                    format!("companies_in_psa[{i}].choice.map_users[{email}]"),
                    uid.as_str(),
                    format!("is not a user of managed company {target} (unknown id)"),
                )),
                Err(e) => return Err(e.into()),
            }
        }
    }
    if !problems.is_empty() {
        return Err(MspError::Invalid(problems));
    }
    Ok(Prepared {
        plan,
        state,
        managed,
        calls_before,
    })
}

/// Takes the lock, prepares and executes `plan`; releases the lock at the end. The CLI's
/// `apply`.
pub async fn run(
    ctx: &ImportContext,
    plan: Plan,
    owner: super::lock::Owner,
    opts: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<ImportResult, MspError> {
    let key = ctx.store.msp_plan_key().await?;
    // Integrity first: a foreign or altered plan is refused before anything else.
    plan.verify(&key)?;
    let held = Held::take(
        &ctx.store,
        ctx.integration_id(),
        owner,
        super::lock::RUN_TTL,
    )
    .await?;
    let out = async {
        let prepared = prepare(ctx, plan, &key, opts).await?;
        let started = start(ctx, &prepared, &held).await?;
        execute(ctx, prepared, &held, opts, progress, started).await
    }
    .await;
    held.release(&ctx.store).await?;
    out
}

/// Where a company stands after phases 1 and 2.
enum Target {
    /// `fresh`: created by this run (it has no users yet: no lookup needed).
    Ready {
        id: String,
        fresh: bool,
    },
    Pending {
        accepted: Accepted,
        entry: Box<JournalEntry>,
    },
    Failed,
}

struct Runner<'a> {
    ctx: &'a ImportContext,
    plan: &'a Plan,
    state: &'a State,
    managed: &'a HashMap<String, String>,
    held: &'a Held,
    opts: &'a ApplyOptions,
    progress: &'a dyn Progress,
    run_id: String,
    tally: Mutex<Tally>,
    done: AtomicU64,
    no_licenses: AtomicBool,
    last_flush: Mutex<Instant>,
    holds: Mutex<HashMap<String, u64>>,
    /// The stored contact mappings by PSA company.
    contacts_by_company: HashMap<&'a str, Vec<&'a ContactMap>>,
}

/// Set once a test hold fired: every task stops at its next hold point.
static FROZEN: AtomicBool = AtomicBool::new(false);

/// A run recorded in the store, about to execute.
#[derive(Debug, Clone)]
pub struct Started {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub total_steps: u64,
}

/// Records a new run of `prepared` (status `running`), so its progress can be polled at once.
pub async fn start(
    ctx: &ImportContext,
    prepared: &Prepared,
    held: &Held,
) -> Result<Started, MspError> {
    let started = Utc::now();
    let total = prepared.total_steps();
    let run_id = super::random_hex(8);
    ctx.store
        .create_msp_run(&ImportRunRow {
            id: run_id.clone(),
            integration_id: ctx.integration_id().to_owned(),
            plan_id: prepared.plan.plan_id.clone(),
            plan_hash: prepared.plan.hash(),
            owner: held.owner_raw.clone(),
            status: RunStatus::Running,
            total_steps: i64::try_from(total).unwrap_or(i64::MAX),
            done_steps: 0,
            counts: serde_json::json!({}),
            errors: serde_json::json!([]),
            started_at: started,
            finished_at: None,
            updated_at: started,
        })
        .await?;
    Ok(Started {
        run_id,
        started_at: started,
        total_steps: total,
    })
}

/// Executes a prepared plan under `held`, as the run `run` ([`start`]). Records progress, the
/// counts and the errors in the run's row.
pub async fn execute(
    ctx: &ImportContext,
    prepared: Prepared,
    held: &Held,
    opts: &ApplyOptions,
    progress: &dyn Progress,
    run: Started,
) -> Result<ImportResult, MspError> {
    let Started {
        run_id,
        started_at: started,
        total_steps: total,
    } = run;
    let runner = Runner {
        ctx,
        plan: &prepared.plan,
        state: &prepared.state,
        managed: &prepared.managed,
        held,
        opts,
        progress,
        run_id: run_id.clone(),
        tally: Mutex::new(Tally::default()),
        done: AtomicU64::new(0),
        no_licenses: AtomicBool::new(false),
        last_flush: Mutex::new(Instant::now()),
        holds: Mutex::new(HashMap::new()),
        contacts_by_company: {
            let mut m: HashMap<&str, Vec<&ContactMap>> = HashMap::new();
            for c in &prepared.state.contact_maps {
                m.entry(c.psa_company_id.as_str()).or_default().push(c);
            }
            m
        },
    };
    progress.begin(total);
    let outcome = runner.run_phases().await;
    progress.end();
    let tally = runner.tally.lock().clone_with_errors();
    let calls = calls_since(ctx, &prepared.calls_before);
    let status = match (&outcome, tally.errors.is_empty()) {
        (Err(_), _) => RunStatus::Failed,
        (Ok(()), true) => RunStatus::Succeeded,
        (Ok(()), false) => RunStatus::Partial,
    };
    let mut errors = tally.errors.clone();
    if let Err(e) = &outcome {
        errors.push(Issue {
            message: e.user_message().to_owned(),
            psa_company_id: None,
            company: None,
            email: None,
            detail: e.to_string(),
        });
    }
    let counts = counts_json(&tally, &calls);
    let errors_json = serde_json::to_value(&errors).unwrap_or_default();
    let done = i64::try_from(runner.done.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
    // The run row is written even when the lock was lost: it is this run's own record.
    ctx.store
        .finish_msp_run(&run_id, status, done, &counts, &errors_json)
        .await?;
    outcome?;
    Ok(ImportResult {
        run_id,
        plan_id: prepared.plan.plan_id.clone(),
        integration: ctx.integration_id().to_owned(),
        status,
        companies_imported: imported_companies(&tally.companies),
        users_imported: imported_users(&tally.users),
        companies: tally.companies,
        users: tally.users,
        errors,
        started_at: started,
        finished_at: Some(Utc::now()),
        calls,
    })
}

impl Tally {
    fn clone_with_errors(&self) -> Tally {
        Tally {
            companies: self.companies.clone(),
            users: self.users.clone(),
            errors: self.errors.clone(),
        }
    }
}

fn counts_json(t: &Tally, calls: &Calls) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    v["calls"] = serde_json::to_value(calls).unwrap_or_default();
    v
}

const WRITE_OPS: &[&str] = &["companies.create", "companies.update", "users.add"];

fn calls_since(ctx: &ImportContext, before: &(u64, lastpass::CallStats)) -> Calls {
    let now = ctx.rest.stats();
    let mut lastpass = BTreeMap::new();
    for (op, n) in &now.by_cmd {
        let d = n - before.1.by_cmd.get(op).copied().unwrap_or(0);
        if d > 0 {
            lastpass.insert(op.clone(), d);
        }
    }
    let lastpass_writes = WRITE_OPS
        .iter()
        .map(|op| lastpass.get(*op).copied().unwrap_or(0))
        .sum();
    Calls {
        psa: ctx.psa.calls().saturating_sub(before.0),
        lastpass,
        lastpass_writes,
    }
}

impl Runner<'_> {
    fn integration(&self) -> &str {
        self.ctx.integration_id()
    }

    fn fence(&self) -> crate::store::msp::LockFence<'_> {
        self.held.fence()
    }

    /// Stops the run when the lock was lost.
    fn check_lock(&self) -> Result<(), MspError> {
        if self.held.lost() {
            return Err(MspError::LockLost(format!(
                "{} could not renew it",
                Owner::describe(&self.held.owner_raw)
            )));
        }
        Ok(())
    }

    /// The test hook (see the module documentation).
    async fn hold(&self, point: &str) {
        if FROZEN.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let Some((want, n)) = &self.opts.hold else {
            return;
        };
        if want != point {
            return;
        }
        let hit = {
            let mut h = self.holds.lock();
            let c = h.entry(point.to_owned()).or_insert(0);
            *c += 1;
            *c == *n
        };
        if hit {
            FROZEN.store(true, Ordering::SeqCst);
            crate::note!("lpbridge: test hold at {point} #{n}");
            std::future::pending::<()>().await;
        }
    }

    fn issue(
        &self,
        message: &str,
        row: Option<&CompanyRow>,
        email: Option<&str>,
        detail: impl Into<String>,
    ) {
        self.tally.lock().errors.push(Issue {
            message: message.to_owned(),
            psa_company_id: row.map(|r| r.psa_company_id.clone()),
            company: row.map(|r| r.name.clone()),
            email: email.map(str::to_owned),
            detail: detail.into(),
        });
    }

    async fn advance(&self, n: u64) {
        if n == 0 {
            return;
        }
        let done = self.done.fetch_add(n, Ordering::SeqCst) + n;
        self.progress.advance(n);
        let due = {
            let mut last = self.last_flush.lock();
            if last.elapsed() >= Duration::from_millis(500) {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due {
            let (counts, errors) = {
                let t = self.tally.lock();
                (
                    serde_json::to_value(&*t).unwrap_or_default(),
                    serde_json::to_value(&t.errors).unwrap_or_default(),
                )
            };
            let done = i64::try_from(done).unwrap_or(i64::MAX);
            if let Err(e) = self
                .ctx
                .store
                .update_msp_run_progress(&self.run_id, done, &counts, &errors)
                .await
            {
                tracing::warn!(error = %e, "could not record the import's progress");
            }
        }
    }

    fn emails_of(row: &CompanyRow) -> Vec<Email> {
        plan::selected_emails(row).unwrap_or_default()
    }

    async fn run_phases(&self) -> Result<(), MspError> {
        let rows: Vec<&CompanyRow> = self
            .plan
            .companies_in_psa
            .iter()
            .filter(|r| r.choice.import)
            .collect();
        let journal: HashMap<&str, &JournalEntry> = self
            .state
            .journal
            .iter()
            .map(|j| (j.step.as_str(), j))
            .collect();
        // Managed ids some PSA company of this integration is mapped to (not adoptable).
        let mapped_ids: HashSet<&str> = self
            .state
            .company_maps
            .iter()
            .map(|m| m.managed_company_id.as_str())
            .collect();

        // Phase 1: companies.
        let mut targets: Vec<Target> = Vec::with_capacity(rows.len());
        for row in &rows {
            self.check_lock()?;
            let t = self.company(row, &journal, &mapped_ids).await?;
            if !matches!(t, Target::Pending { .. }) {
                self.company_settled(row, &t).await;
            }
            targets.push(t);
        }

        // Phase 2: pending creates.
        self.poll_pending(&rows, &mut targets).await?;

        // Phase 3: users.
        // Indices, not references: the closure below must not take borrowed arguments.
        let work: Vec<(usize, String, bool)> = targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Target::Ready { id, fresh } => Some((i, id.clone(), *fresh)),
                _ => None,
            })
            .collect();
        let concurrency = self.opts.concurrency.max(1);
        let rows = &rows;
        futures::stream::iter(work)
            .map(move |(i, id, fresh)| async move { self.users(rows[i], &id, fresh).await })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Counts a company's own step, and skips its users' steps when it failed.
    async fn company_settled(&self, row: &CompanyRow, t: &Target) {
        let users = match t {
            Target::Failed => Self::emails_of(row).len() as u64,
            _ => 0,
        };
        self.advance(1 + users).await;
    }

    async fn put_map(&self, row: &CompanyRow, id: &str) -> Result<(), MspError> {
        let name = self
            .managed
            .get(id)
            .cloned()
            .unwrap_or_else(|| row.name.clone());
        self.ctx
            .store
            .put_msp_company_map(
                &CompanyMap {
                    integration_id: self.integration().to_owned(),
                    psa_company_id: row.psa_company_id.clone(),
                    psa_company_name: row.name.clone(),
                    managed_company_id: id.to_owned(),
                    managed_company_name: name,
                    last_import_at: Utc::now(),
                },
                self.fence(),
            )
            .await?;
        Ok(())
    }

    fn entry(&self, row: &CompanyRow, state: StepState) -> JournalEntry {
        let now = Utc::now();
        JournalEntry {
            integration_id: self.integration().to_owned(),
            step: company_step(&row.psa_company_id),
            plan_id: self.plan.plan_id.clone(),
            run_id: self.run_id.clone(),
            state,
            request_id: None,
            request_url: None,
            result_id: None,
            intent_at: now,
            updated_at: now,
        }
    }

    /// Journal `done` and the mapping, in one transaction.
    async fn complete(
        &self,
        row: &CompanyRow,
        mut entry: JournalEntry,
        id: &str,
    ) -> Result<(), MspError> {
        entry.state = StepState::Done;
        entry.result_id = Some(id.to_owned());
        entry.updated_at = Utc::now();
        entry.run_id = self.run_id.clone();
        entry.plan_id = self.plan.plan_id.clone();
        let map = CompanyMap {
            integration_id: self.integration().to_owned(),
            psa_company_id: row.psa_company_id.clone(),
            psa_company_name: row.name.clone(),
            managed_company_id: id.to_owned(),
            managed_company_name: row.name.clone(),
            last_import_at: Utc::now(),
        };
        self.ctx
            .store
            .complete_msp_company(&entry, &map, self.fence())
            .await?;
        self.hold("company-done").await;
        Ok(())
    }

    /// Phase 1 for one company.
    async fn company(
        &self,
        row: &CompanyRow,
        journal: &HashMap<&str, &JournalEntry>,
        mapped_ids: &HashSet<&str>,
    ) -> Result<Target, MspError> {
        let c = &row.choice;
        match c.action {
            CompanyAction::Keep => {
                let Some(m) = row.live_mapping() else {
                    self.issue(
                        messages::SOMETHING_WENT_WRONG,
                        Some(row),
                        None,
                        "not mapped",
                    );
                    self.tally.lock().companies.failed += 1;
                    return Ok(Target::Failed);
                };
                self.put_map(row, &m.id).await?;
                self.tally.lock().companies.kept += 1;
                return Ok(Target::Ready {
                    id: m.id.clone(),
                    fresh: false,
                });
            }
            CompanyAction::Map => {
                let id = c.managed_company_id.clone().unwrap_or_default();
                let already = row.live_mapping().is_some_and(|m| m.id == id);
                match self.put_map(row, &id).await {
                    Ok(()) => {}
                    Err(MspError::Store(crate::store::StoreError::Conflict { .. })) => {
                        self.issue(
                            messages::SOMETHING_WENT_WRONG,
                            Some(row),
                            None,
                            format!("managed company {id} is mapped to another PSA company"),
                        );
                        self.tally.lock().companies.failed += 1;
                        return Ok(Target::Failed);
                    }
                    Err(e) => return Err(e),
                }
                let mut t = self.tally.lock();
                if already {
                    t.companies.kept += 1;
                } else {
                    t.companies.mapped += 1;
                }
                return Ok(Target::Ready { id, fresh: false });
            }
            CompanyAction::Create | CompanyAction::Unmap => {}
        }
        let step = company_step(&row.psa_company_id);
        match journal.get(step.as_str()).copied() {
            Some(j) if j.state == StepState::Done && j.plan_id == self.plan.plan_id => {
                if let Some(id) = j.result_id.clone() {
                    let mapped_now = self.state.company_maps.iter().any(|m| {
                        m.psa_company_id == row.psa_company_id && m.managed_company_id == id
                    });
                    if mapped_now {
                        self.put_map(row, &id).await?;
                    } else {
                        self.complete(row, j.clone(), &id).await?;
                    }
                    self.tally.lock().companies.resumed += 1;
                    return Ok(Target::Ready { id, fresh: false });
                }
            }
            Some(j) if j.state == StepState::Requested => {
                if let (Some(rid), Some(url)) = (&j.request_id, &j.request_url) {
                    return Ok(Target::Pending {
                        accepted: Accepted {
                            id: RequestId::new(rid.clone()),
                            url: url.clone(),
                        },
                        entry: Box::new(j.clone()),
                    });
                }
            }
            Some(j) if j.state == StepState::Intent => {
                return self.reconcile_intent(row, j, mapped_ids).await;
            }
            _ => {}
        }
        self.submit(row).await
    }

    /// An `intent` left by a run that died around its `POST`.
    async fn reconcile_intent(
        &self,
        row: &CompanyRow,
        j: &JournalEntry,
        mapped_ids: &HashSet<&str>,
    ) -> Result<Target, MspError> {
        let known: HashSet<&str> = row
            .duplicates
            .iter()
            .map(|d| d.id.as_str())
            .chain(row.mapped_to.iter().map(|m| m.id.as_str()))
            .collect();
        let key = name_key(&row.name);
        let candidates: Vec<&lastpass::rest::ManagedCompany> = self
            .state
            .managed
            .iter()
            .filter(|m| {
                name_key(&m.name) == key
                    && !known.contains(m.id.as_str())
                    && !mapped_ids.contains(m.id.as_str())
            })
            .collect();
        match candidates.as_slice() {
            [one] => {
                let id = one.id.to_string();
                self.complete(row, j.clone(), &id).await?;
                self.tally.lock().companies.resumed += 1;
                Ok(Target::Ready { id, fresh: false })
            }
            [] => {
                let waited = (Utc::now() - j.intent_at).to_std().unwrap_or_default();
                if waited >= self.opts.in_doubt_grace {
                    return self.submit(row).await;
                }
                let left = self.opts.in_doubt_grace - waited;
                self.issue(
                    messages::SOMETHING_WENT_WRONG,
                    Some(row),
                    None,
                    format!(
                        "an interrupted run may have asked LastPass to create this company \
                         ({}); it does not exist yet, so it is not created again now (that could \
                         make a duplicate). Run apply again: it is adopted once LastPass shows \
                         it, or created after {}s",
                        j.intent_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        left.as_secs()
                    ),
                );
                self.tally.lock().companies.failed += 1;
                Ok(Target::Failed)
            }
            many => {
                self.issue(
                    messages::SOMETHING_WENT_WRONG,
                    Some(row),
                    None,
                    format!(
                        "an interrupted run may have created this company, and {} new managed \
                         companies have its name ({}): map it to one of them",
                        many.len(),
                        many.iter()
                            .map(|m| m.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                self.tally.lock().companies.failed += 1;
                Ok(Target::Failed)
            }
        }
    }

    /// Journals the intent, `POST`s, journals the request.
    async fn submit(&self, row: &CompanyRow) -> Result<Target, MspError> {
        let mut entry = self.entry(row, StepState::Intent);
        self.ctx.store.put_msp_journal(&entry, self.fence()).await?;
        self.hold("company-intent").await;
        let sent = self
            .ctx
            .rest
            .start_create_company(&NewManagedCompany::named(row.name.clone()))
            .await;
        match sent {
            Ok(accepted) => {
                self.hold("company-posted").await;
                entry.state = StepState::Requested;
                entry.request_id = Some(accepted.id.to_string());
                entry.request_url = Some(accepted.url.clone());
                entry.updated_at = Utc::now();
                self.ctx.store.put_msp_journal(&entry, self.fence()).await?;
                self.hold("company-requested").await;
                Ok(Target::Pending {
                    accepted,
                    entry: Box::new(entry),
                })
            }
            Err(e) => {
                let ambiguous = match &e {
                    lastpass::rest::Error::Transport { ambiguous, .. } => *ambiguous,
                    lastpass::rest::Error::Upstream { status, .. } => *status != 503,
                    lastpass::rest::Error::Decode { .. } => true,
                    _ => false,
                };
                if !ambiguous {
                    // Certainly not applied: a later run simply tries again.
                    entry.state = StepState::Done;
                    entry.result_id = None;
                    entry.plan_id = String::new();
                    entry.updated_at = Utc::now();
                    self.ctx.store.put_msp_journal(&entry, self.fence()).await?;
                }
                self.issue(
                    lastpass_message(&e),
                    Some(row),
                    None,
                    format!("creating the managed company failed: {e}"),
                );
                self.tally.lock().companies.failed += 1;
                Ok(Target::Failed)
            }
        }
    }

    /// Phase 2: polls every pending create round-robin until it is final or the deadline.
    async fn poll_pending(
        &self,
        rows: &[&CompanyRow],
        targets: &mut [Target],
    ) -> Result<(), MspError> {
        let deadline = Instant::now() + self.opts.poll_deadline;
        let mut interval = Duration::from_millis(5);
        loop {
            self.check_lock()?;
            let pending: Vec<usize> = targets
                .iter()
                .enumerate()
                .filter(|(_, t)| matches!(t, Target::Pending { .. }))
                .map(|(i, _)| i)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            let polls: Vec<(
                usize,
                Result<lastpass::rest::AsyncRequest, lastpass::rest::Error>,
            )> = futures::stream::iter(pending.iter().copied())
                .map(|i| {
                    let accepted = match &targets[i] {
                        Target::Pending { accepted, .. } => accepted.clone(),
                        _ => unreachable!("filtered to pending targets above"),
                    };
                    async move { (i, self.ctx.rest.request(&accepted).await) }
                })
                .buffer_unordered(8)
                .collect()
                .await;
            for (i, polled) in polls {
                let row = rows[i];
                let Target::Pending { entry, .. } = &targets[i] else {
                    continue;
                };
                let entry = (**entry).clone();
                let next = match polled {
                    Ok(r) if r.status == RequestStatus::Completed => match r.resource_id {
                        Some(id) => {
                            self.complete(row, entry, id.as_str()).await?;
                            self.tally.lock().companies.created += 1;
                            Some(Target::Ready {
                                id: id.to_string(),
                                fresh: true,
                            })
                        }
                        None => {
                            self.issue(
                                messages::SOMETHING_WENT_WRONG,
                                Some(row),
                                None,
                                format!("request {} completed without the new company's id", r.id),
                            );
                            self.tally.lock().companies.failed += 1;
                            Some(Target::Failed)
                        }
                    },
                    Ok(r) if r.status == RequestStatus::Failed => {
                        let licenses = r.error.as_ref().is_some_and(|p| p.is_about_licenses());
                        let mut e = entry.clone();
                        e.state = StepState::Done;
                        e.result_id = None;
                        e.plan_id = String::new();
                        e.updated_at = Utc::now();
                        self.ctx.store.put_msp_journal(&e, self.fence()).await?;
                        self.issue(
                            if licenses {
                                messages::NOT_ENOUGH_LICENSES
                            } else {
                                messages::SOMETHING_WENT_WRONG
                            },
                            Some(row),
                            None,
                            format!(
                                "LastPass could not create the managed company: {}",
                                r.error
                                    .map_or_else(|| "no details".to_owned(), |p| p.to_string())
                            ),
                        );
                        self.tally.lock().companies.failed += 1;
                        Some(Target::Failed)
                    }
                    Ok(r) if !r.status.is_pending() => {
                        self.issue(
                            messages::SOMETHING_WENT_WRONG,
                            Some(row),
                            None,
                            format!("request {} ended with status {}", r.id, r.status),
                        );
                        self.tally.lock().companies.failed += 1;
                        Some(Target::Failed)
                    }
                    Ok(_) => None,
                    Err(lastpass::rest::Error::NotFound { .. }) => {
                        // The request is gone: whether it ran is unknown; the next run looks
                        // the company up by name.
                        let mut e = entry.clone();
                        e.state = StepState::Intent;
                        e.updated_at = Utc::now();
                        self.ctx.store.put_msp_journal(&e, self.fence()).await?;
                        self.issue(
                            messages::SOMETHING_WENT_WRONG,
                            Some(row),
                            None,
                            "LastPass no longer knows the create request; run apply again to \
                             look the company up",
                        );
                        self.tally.lock().companies.failed += 1;
                        Some(Target::Failed)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "polling a create request failed; retrying");
                        None
                    }
                };
                if let Some(t) = next {
                    self.company_settled(row, &t).await;
                    targets[i] = t;
                }
            }
            if targets.iter().any(|t| matches!(t, Target::Pending { .. })) {
                if Instant::now() >= deadline {
                    for (i, t) in targets.iter_mut().enumerate() {
                        if let Target::Pending { accepted, .. } = t {
                            let row = rows[i];
                            self.issue(
                                messages::SOMETHING_WENT_WRONG,
                                Some(row),
                                None,
                                format!(
                                    "LastPass has not finished creating the company (request {}) \
                                     after {}s; run apply again to resume",
                                    accepted.id,
                                    self.opts.poll_deadline.as_secs()
                                ),
                            );
                            self.tally.lock().companies.failed += 1;
                            *t = Target::Failed;
                            self.company_settled(row, &Target::Failed).await;
                        }
                    }
                    return Ok(());
                }
                tokio::time::sleep(interval).await;
                interval = (interval * 2).min(Duration::from_secs(1));
            }
        }
    }

    /// Phase 3 for one company.
    async fn users(&self, row: &CompanyRow, target: &str, fresh: bool) -> Result<(), MspError> {
        self.check_lock()?;
        let c = &row.choice;
        let emails = Self::emails_of(row);
        let company = CompanyId::new(target.to_owned());
        let existing: HashMap<String, &ContactMap> = self
            .contacts_by_company
            .get(row.psa_company_id.as_str())
            .map(|v| v.iter().map(|m| (m.email.clone(), *m)).collect())
            .unwrap_or_default();
        let unmap: HashSet<String> = c.unmap_users.iter().map(|e| e.to_lowercase()).collect();
        let map_users: HashMap<String, &String> = c
            .map_users
            .iter()
            .map(|(e, u)| (e.to_lowercase(), u))
            .collect();
        let mut users_here: Option<HashMap<String, String>> = None;
        let mut maps: Vec<ContactMap> = Vec::new();
        let now = Utc::now();
        let selected: HashSet<String> = emails.iter().map(|e| e.folded().to_owned()).collect();
        let mut list_failed: Option<String> = None;
        for email in &emails {
            let key = email.folded().to_owned();
            let Some(contact) = row.contact(email) else {
                continue;
            };
            let record = |uid: String| ContactMap {
                integration_id: self.integration().to_owned(),
                psa_company_id: row.psa_company_id.clone(),
                email: key.clone(),
                psa_contact_id: contact.contact_id.clone(),
                managed_company_id: target.to_owned(),
                lastpass_user_id: uid,
                selected: true,
                last_import_at: now,
            };
            if let Some(uid) = map_users.get(&key) {
                maps.push(record((*uid).clone()));
                self.tally.lock().users.mapped += 1;
                self.advance(1).await;
                continue;
            }
            if let Some(m) = existing.get(&key)
                && m.managed_company_id == target
                && !unmap.contains(&key)
            {
                maps.push(record(m.lastpass_user_id.clone()));
                self.tally.lock().users.kept += 1;
                self.advance(1).await;
                continue;
            }
            if !fresh && users_here.is_none() && list_failed.is_none() {
                match self
                    .ctx
                    .rest
                    .list_users(&company, &UserQuery::default())
                    .try_collect::<Vec<_>>()
                    .await
                {
                    Ok(list) => {
                        users_here = Some(
                            list.into_iter()
                                .map(|u| (u.email.to_lowercase(), u.id.to_string()))
                                .collect(),
                        );
                    }
                    Err(e) => list_failed = Some(e.to_string()),
                }
            }
            if let Some(detail) = &list_failed {
                self.issue(
                    messages::SOMETHING_WENT_WRONG,
                    Some(row),
                    Some(email.as_str()),
                    format!("listing the managed company's users failed: {detail}"),
                );
                self.tally.lock().users.failed += 1;
                self.advance(1).await;
                continue;
            }
            // Unmapping a user whose e-mail is the mapped user's own: that user is the one the
            // company has for this e-mail; nothing can be created twice.
            if let Some(uid) = users_here.as_ref().and_then(|u| u.get(&key)) {
                maps.push(record(uid.clone()));
                self.tally.lock().users.mapped += 1;
                self.advance(1).await;
                continue;
            }
            if self.opts.user_action == CreationAccountAction::Invite
                && self.no_licenses.load(Ordering::SeqCst)
            {
                self.issue(
                    messages::NOT_ENOUGH_LICENSES,
                    Some(row),
                    Some(email.as_str()),
                    "not invited: LastPass refused an earlier invitation of this run for licences",
                );
                self.tally.lock().users.failed += 1;
                self.advance(1).await;
                continue;
            }
            let mut new = NewCompanyUser::invite(email.clone());
            new.action = self.opts.user_action.clone();
            if !contact.name.is_empty() {
                new = new.with_name(contact.name.clone());
            }
            match self.ctx.rest.add_user(&company, &new).await {
                Ok(u) => {
                    self.hold("user-added").await;
                    maps.push(record(u.id.to_string()));
                    self.tally.lock().users.added += 1;
                }
                Err(lastpass::rest::Error::Conflict { .. }) => {
                    match self.ctx.rest.find_user_by_email(&company, email).await {
                        Ok(Some(u)) => {
                            maps.push(record(u.id.to_string()));
                            self.tally.lock().users.mapped += 1;
                        }
                        Ok(None) => {
                            self.issue(
                                messages::SOMETHING_WENT_WRONG,
                                Some(row),
                                Some(email.as_str()),
                                "LastPass answered that the user exists, but it cannot be found",
                            );
                            self.tally.lock().users.failed += 1;
                        }
                        Err(e) => {
                            self.issue(
                                lastpass_message(&e),
                                Some(row),
                                Some(email.as_str()),
                                format!("looking the user up failed: {e}"),
                            );
                            self.tally.lock().users.failed += 1;
                        }
                    }
                }
                Err(e) => {
                    if matches!(e, lastpass::rest::Error::NotEnoughLicenses { .. }) {
                        self.no_licenses.store(true, Ordering::SeqCst);
                    }
                    self.issue(
                        lastpass_message(&e),
                        Some(row),
                        Some(email.as_str()),
                        format!("adding the user failed: {e}"),
                    );
                    self.tally.lock().users.failed += 1;
                }
            }
            self.advance(1).await;
        }
        // Imported before but no longer selected: not preselected next time (never removed).
        for (email, m) in &existing {
            if !selected.contains(email) && m.selected && m.managed_company_id == target {
                let mut m = (*m).clone();
                m.selected = false;
                maps.push(m);
            }
        }
        self.ctx
            .store
            .put_msp_contact_maps(&maps, self.fence())
            .await?;
        self.hold("users-written").await;
        Ok(())
    }
}

/// `InvalidValue` for a refused user action string.
pub fn parse_user_action(v: &str) -> Result<CreationAccountAction, InvalidValue> {
    match v.trim().to_ascii_lowercase().as_str() {
        "invite" => Ok(CreationAccountAction::Invite),
        "stage" => Ok(CreationAccountAction::Stage),
        _ => Err(InvalidValue::new(
            "user_action",
            v,
            "must be invite or stage",
        )),
    }
}
