//! The MSP import wizard as a service: every step of the `Import from <PSA>` flow as a plain
//! async function, shared by the JSON endpoints ([`super::http`]) and the web console.
//!
//! It owns the wizard's behaviour: the integration lock a wizard holds from
//! [`create_import`] until [`delete_import`] (renewed by every change of its creator), "only
//! the creator may change a wizard" (anyone else gets "Another admin is already working with
//! this integration"), validation of the choices (every problem an [`InvalidValue`] naming its
//! field and value), the background **Import and Map** run and its progress, and the searches
//! behind the "select the managed company" and "select the user to map to" dialogs.
//!
//! Callers authorise (admin, read-only) before calling, build the [`Actor`], and format the
//! typed results. Errors are [`ApiError`]s classified as the JSON endpoints answer them
//! ([`crate::http::error::classify`]); [`field_errors`] lists the per-field problems of a
//! refused form.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use lastpass::rest::{
    CompanyId, CompanyQuery, CompanyUser, CompanyUserId, ManagedCompany, Sort, UserQuery,
};
use lp_types::{ConnectionId, Email, InvalidValue, Secret};
use psa::{AttributeValue, CompanyFilter, PsaKind};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::apply::{self, ApplyOptions, ImportResult, NoProgress};
use super::lock::{self, Held, LockStatus, Owner};
use super::plan::{
    self, CompanyAction, CompanyRow, ContactRow, Edit, Fingerprint, GoneRow, ImportStatus,
    ManagedRef, MappedRef, Plan,
};
use super::{ImportContext, MspError};
use crate::error::Error;
use crate::http::{ApiError, App};
use crate::store::StoreError;
use crate::store::msp::{MspSettingsSummary, RunStatus, WizardRow};

/// What every wizard function returns.
pub type WizardResult<T> = Result<T, ApiError>;

/// How many hits a search returns at most (one page of the dialog).
pub const SEARCH_PAGE_SIZE: u32 = 25;

/// Who acts on a wizard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Stored as the wizard's creator and compared for every change (an API key's id,
    /// `user:alice` for a console user).
    pub id: String,
    /// The human text the lock's holder is shown with (`API key 3fK… (alice)`).
    pub label: String,
}

/// The per-field problems of a refused request (empty when the error is not about input), so
/// a form can show each next to its field.
pub fn field_errors(e: &ApiError) -> Vec<InvalidValue> {
    match &e.0 {
        Error::Msp(MspError::Invalid(list)) => list.clone(),
        Error::Invalid(v)
        | Error::Store(StoreError::Invalid(v))
        | Error::Msp(MspError::Store(StoreError::Invalid(v)))
        | Error::Msp(MspError::LastPass {
            source: lastpass::rest::Error::InvalidInput(v),
        }) => vec![v.clone()],
        _ => vec![],
    }
}

fn msp(e: impl Into<MspError>) -> ApiError {
    ApiError(Error::Msp(e.into()))
}

fn invalid(problems: Vec<InvalidValue>) -> ApiError {
    msp(MspError::Invalid(problems))
}

fn integration_id(raw: &str) -> Result<ConnectionId, ApiError> {
    ConnectionId::new(raw.trim())
        .map_err(|_| ApiError(InvalidValue::new("psa", raw, "must not be empty").into()))
}

/// The lock owner of a wizard: its actor, and the wizard id as its token. It names no host or
/// process, so any replica serving the wizard's requests holds the same lock.
fn wizard_owner(actor: &Actor, wizard: &str) -> Owner {
    Owner {
        admin: actor.label.clone(),
        host: "lpbridge serve".into(),
        pid: 0,
        token: wizard.to_owned(),
    }
}

/// The creator of a wizard as shown when its lock has lapsed (its label is not stored). API
/// key ids never hold a `:`, so other actors (`user:alice`) are shown by their id.
fn creator_label(created_by: &str) -> String {
    if created_by.contains(':') {
        created_by.to_owned()
    } else {
        format!("API key {created_by}")
    }
}

// ---- credentials ------------------------------------------------------------------------------

/// The MSP account's LastPass REST API key to store (`api_key` empty or missing: "Credentials
/// are required").
#[derive(Debug, Clone)]
pub struct NewCredentials {
    /// `None`: [`lastpass::rest::DEFAULT_BASE_URL`].
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// Check the key with one call before storing it.
    pub check: bool,
}

/// The stored MSP settings without the key (`None`: none stored).
pub async fn get_credentials(app: &App) -> WizardResult<Option<MspSettingsSummary>> {
    Ok(app.store.msp_settings_summary().await?)
}

/// Checks (when asked) and stores the MSP account's REST API key, sealed at rest.
pub async fn put_credentials(app: &App, new: NewCredentials) -> WizardResult<MspSettingsSummary> {
    let key = new
        .api_key
        .filter(|k| !k.expose().trim().is_empty())
        .ok_or_else(|| {
            msp(MspError::CredentialsRequired(
                "the api_key field is empty or missing".into(),
            ))
        })?;
    let raw_url = new
        .base_url
        .unwrap_or_else(|| lastpass::rest::DEFAULT_BASE_URL.to_owned());
    let base = lastpass::rest::parse_base_url(&raw_url).map_err(|e| ApiError(e.into()))?;
    if new.check {
        let client = super::build_rest_client(base.clone(), key.clone()).map_err(msp)?;
        super::check_rest(&client).await.map_err(msp)?;
    }
    Ok(app.store.set_msp_settings(&base, &key).await?)
}

// ---- integrations -----------------------------------------------------------------------------

/// A PSA integration to import from, with its lock.
#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    pub id: ConnectionId,
    pub kind: PsaKind,
    /// "ConnectWise Manage" or "Datto Autotask".
    pub psa_name: &'static str,
    pub lock: LockStatus,
}

/// Every PSA integration and who holds its lock.
pub async fn list_integrations(app: &App) -> WizardResult<Vec<Integration>> {
    let mut out = Vec::new();
    for i in app.store.list_psa_integrations().await? {
        let lock = lock::status(&app.store, i.id.as_str()).await.map_err(msp)?;
        out.push(Integration {
            psa_name: super::psa_display_name(i.kind),
            id: i.id,
            kind: i.kind,
            lock,
        });
    }
    Ok(out)
}

/// Step 1's filters: the PSA's company types and statuses.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationAttributes {
    pub integration: ConnectionId,
    pub psa_name: &'static str,
    pub types: Vec<AttributeValue>,
    pub statuses: Vec<AttributeValue>,
}

/// The filters an integration offers (one PSA call).
pub async fn attributes(app: &App, integration: &str) -> WizardResult<IntegrationAttributes> {
    let id = integration_id(integration)?;
    let i = app
        .store
        .get_psa_integration(&id)
        .await?
        .ok_or_else(|| msp(super::no_integration(id.as_str())))?;
    let dir =
        crate::store::psa_directory(&i.settings, &i.secrets, &app.psa_tuning()).map_err(msp)?;
    let attrs = dir.attributes().await.map_err(msp)?;
    Ok(IntegrationAttributes {
        psa_name: super::psa_display_name(i.kind()),
        integration: i.id,
        types: attrs.types,
        statuses: attrs.statuses,
    })
}

/// Who holds an integration's lock, and until when.
pub async fn lock_status(app: &App, integration: &str) -> WizardResult<LockStatus> {
    let id = integration_id(integration)?;
    if app.store.psa_integration_summary(&id).await?.is_none() {
        return Err(msp(super::no_integration(id.as_str())));
    }
    lock::status(&app.store, id.as_str()).await.map_err(msp)
}

// ---- views ------------------------------------------------------------------------------------

/// The editable part of a company row as the companies tab shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChoiceSummary {
    pub import: bool,
    pub action: CompanyAction,
    pub managed_company_id: Option<String>,
}

/// A row of `Companies in <PSA>` without its contacts (the companies tab).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanySummary {
    pub psa_company_id: String,
    pub name: String,
    pub import_status: ImportStatus,
    pub psa_type: Option<String>,
    pub psa_status: Option<String>,
    pub psa_active: bool,
    pub last_import: Option<DateTime<Utc>>,
    pub mapped_to: Option<MappedRef>,
    pub duplicates: Vec<ManagedRef>,
    /// How many contacts the company has.
    pub contacts: usize,
    /// How many e-mails the choice grants access to.
    pub selected_emails: usize,
    pub choice: ChoiceSummary,
}

impl CompanySummary {
    fn of(r: &CompanyRow) -> Self {
        Self {
            psa_company_id: r.psa_company_id.clone(),
            name: r.name.clone(),
            import_status: r.import_status,
            psa_type: r.psa_type.clone(),
            psa_status: r.psa_status.clone(),
            psa_active: r.psa_active,
            last_import: r.last_import,
            mapped_to: r.mapped_to.clone(),
            duplicates: r.duplicates.clone(),
            contacts: r.contacts.len(),
            selected_emails: plan::selected_emails(r).map_or(0, |v| v.len()),
            choice: ChoiceSummary {
                import: r.choice.import,
                action: r.choice.action,
                managed_company_id: r.choice.managed_company_id.clone(),
            },
        }
    }
}

/// Both tabs: `Companies in <PSA>` and `Companies not in <PSA>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lists {
    pub psa_name: String,
    pub companies_in_psa: Vec<CompanySummary>,
    pub companies_not_in_psa: Vec<GoneRow>,
}

impl Lists {
    fn of(p: &Plan) -> Self {
        Self {
            psa_name: p.psa_name.clone(),
            companies_in_psa: p.companies_in_psa.iter().map(CompanySummary::of).collect(),
            companies_not_in_psa: p.companies_not_in_psa.clone(),
        }
    }
}

/// A run's status as the result page shows it: a run whose process died is `interrupted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Succeeded,
    Partial,
    Failed,
    Interrupted,
}

impl From<RunStatus> for RunState {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Running => RunState::Running,
            RunStatus::Succeeded => RunState::Succeeded,
            RunStatus::Partial => RunState::Partial,
            RunStatus::Failed => RunState::Failed,
        }
    }
}

/// The result and progress of a wizard's run. Serialised as the result with its `status`
/// replaced by [`RunView::state`] and `progress: {done, total}` added.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub result: ImportResult,
    pub state: RunState,
    /// Steps done and in all.
    pub done: i64,
    pub total: i64,
}

impl Serialize for RunView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut v = serde_json::to_value(&self.result).map_err(S::Error::custom)?;
        if let Value::Object(m) = &mut v {
            // Replaced in place: the key keeps its position.
            m.insert(
                "status".into(),
                serde_json::to_value(self.state).map_err(S::Error::custom)?,
            );
            let mut progress = serde_json::Map::new();
            progress.insert("done".into(), self.done.into());
            progress.insert("total".into(), self.total.into());
            m.insert("progress".into(), Value::Object(progress));
        }
        v.serialize(s)
    }
}

/// A wizard: its plan's lists, its run, and its integration's lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportView {
    pub id: String,
    pub integration: String,
    /// The creator's [`Actor::id`].
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub plan_id: String,
    pub filter: CompanyFilter,
    pub fingerprint: Fingerprint,
    pub lists: Lists,
    /// `None` until applied.
    pub run: Option<RunView>,
    pub lock: LockStatus,
}

async fn run_view(app: &App, w: &WizardRow) -> WizardResult<Option<RunView>> {
    let Some(run_id) = &w.run_id else {
        return Ok(None);
    };
    let Some(mut row) = app.store.msp_run(run_id).await? else {
        return Ok(None);
    };
    let mut interrupted = false;
    if row.status == RunStatus::Running {
        // A run whose process died leaves its row `running`; its lock tells.
        let held = app
            .store
            .lease(&lock::lease_name(&w.integration_id))
            .await?
            .is_some_and(|l| Owner::decode(&l.owner).is_some_and(|o| o.token == w.id));
        if !held {
            // Or it just finished: a run writes its row before it releases the lock.
            match app.store.msp_run(run_id).await? {
                Some(again) if again.status != RunStatus::Running => row = again,
                _ => interrupted = true,
            }
        }
    }
    Ok(Some(RunView {
        result: ImportResult::from_row(&row),
        state: if interrupted {
            RunState::Interrupted
        } else {
            row.status.into()
        },
        done: row.done_steps,
        total: row.total_steps,
    }))
}

async fn view(app: &App, w: &WizardRow, p: &Plan) -> WizardResult<ImportView> {
    let lock = lock::status(&app.store, &w.integration_id)
        .await
        .map_err(msp)?;
    Ok(ImportView {
        id: w.id.clone(),
        integration: w.integration_id.clone(),
        created_by: w.created_by.clone(),
        created_at: w.created_at,
        updated_at: w.updated_at,
        plan_id: p.plan_id.clone(),
        filter: p.filter.clone(),
        fingerprint: p.fingerprint.clone(),
        lists: Lists::of(p),
        run: run_view(app, w).await?,
        lock,
    })
}

// ---- wizards ----------------------------------------------------------------------------------

/// What step 2 fetches: the integration and the step 1 filter.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// The PSA integration's id.
    pub psa: String,
    pub filter: CompanyFilter,
}

/// Takes the integration's lock for `actor`, reads the PSA and LastPass, and stores a new
/// wizard with its plan (default choices). The lock is released again when this fails.
pub async fn create_import(app: &App, actor: &Actor, new: NewImport) -> WizardResult<ImportView> {
    let id = integration_id(&new.psa)?;
    let ctx = ImportContext::open(&app.store, &id, &app.psa_tuning())
        .await
        .map_err(msp)?;
    let wizard = super::random_hex(8);
    let owner = wizard_owner(actor, &wizard);
    lock::acquire(&app.store, id.as_str(), &owner, lock::WIZARD_TTL)
        .await
        .map_err(msp)?;
    let made = async {
        let key = app.store.msp_plan_key().await?;
        let state = super::state::fetch(&ctx, &new.filter).await?;
        let p = plan::build(
            id.as_str(),
            ctx.integration.kind(),
            &new.filter,
            &state,
            &key,
        );
        let now = Utc::now();
        let row = WizardRow {
            id: wizard.clone(),
            integration_id: id.as_str().to_owned(),
            created_by: actor.id.clone(),
            plan: p.to_json(),
            run_id: None,
            created_at: now,
            updated_at: now,
        };
        app.store.create_msp_wizard(&row).await?;
        Ok::<_, MspError>((row, p))
    }
    .await;
    let (row, p) = match made {
        Ok(x) => x,
        Err(e) => {
            let _ = lock::release(&app.store, id.as_str(), &owner).await;
            return Err(msp(e));
        }
    };
    view(app, &row, &p).await
}

/// The wizard and its plan.
async fn load(app: &App, id: &str) -> WizardResult<(WizardRow, Plan)> {
    let w = app.store.msp_wizard(id).await?.ok_or_else(|| {
        msp(MspError::NotFound(format!(
            "no MSP import wizard {:?} (POST /msp/imports starts one)",
            lp_types::shown(id)
        )))
    })?;
    let p = Plan::from_json(w.plan.as_bytes()).map_err(msp)?;
    Ok((w, p))
}

/// The wizard for a change by `actor`: its creator only (anyone else gets the lock message),
/// not while its import runs, and the lock renewed.
async fn load_for_change(app: &App, id: &str, actor: &Actor) -> WizardResult<(WizardRow, Plan)> {
    let (w, p) = load(app, id).await?;
    if w.created_by != actor.id {
        let s = lock::status(&app.store, &w.integration_id)
            .await
            .map_err(msp)?;
        return Err(msp(MspError::Locked {
            holder: s.holder.unwrap_or_else(|| creator_label(&w.created_by)),
            until: s
                .expires_at
                .map_or_else(|| "the wizard ends".to_owned(), |t| t.to_rfc3339()),
        }));
    }
    if let Some(run) = &w.run_id
        && let Some(r) = app.store.msp_run(run).await?
        && r.status == RunStatus::Running
        && run_view(app, &w)
            .await?
            .is_some_and(|v| v.state == RunState::Running)
    {
        return Err(ApiError(Error::Conflict(format!(
            "the import {} is running; wait for its result (GET /msp/imports/{id}/result)",
            r.id
        ))));
    }
    lock::acquire(
        &app.store,
        &w.integration_id,
        &wizard_owner(actor, &w.id),
        lock::WIZARD_TTL,
    )
    .await
    .map_err(msp)?;
    Ok((w, p))
}

/// A wizard: both lists, its run and the lock.
pub async fn get_import(app: &App, id: &str) -> WizardResult<ImportView> {
    let (w, p) = load(app, id).await?;
    view(app, &w, &p).await
}

/// A wizard's whole plan (facts, choices and contacts), as `lpbridge msp import plan` writes it.
pub async fn get_plan(app: &App, id: &str) -> WizardResult<Plan> {
    Ok(load(app, id).await?.1)
}

/// A wizard's two lists.
pub async fn list_companies(app: &App, id: &str) -> WizardResult<Lists> {
    Ok(Lists::of(&load(app, id).await?.1))
}

/// Ends a wizard (its creator only): releases the lock and deletes it. Returns its id.
pub async fn delete_import(app: &App, actor: &Actor, id: &str) -> WizardResult<String> {
    let (w, _) = load_for_change(app, id, actor).await?;
    lock::release(&app.store, &w.integration_id, &wizard_owner(actor, &w.id))
        .await
        .map_err(msp)?;
    app.store.delete_msp_wizard(&w.id).await?;
    Ok(w.id)
}

// ---- choices ----------------------------------------------------------------------------------

/// One company's change (step 3). Problems name `choices[i].…`, `i` its position in the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyEdit {
    /// The PSA company id (or its exact name).
    pub company: String,
    /// `Some(false)`: leave the company out of this import.
    pub import: Option<bool>,
    pub action: Option<CompanyAction>,
    /// With [`CompanyAction::Map`].
    pub managed_company_id: Option<String>,
}

/// The managed companies a plan's facts name (mapped and same-named ones).
fn fact_ids(p: &Plan) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for r in &p.companies_in_psa {
        for d in &r.duplicates {
            m.insert(d.id.clone(), d.name.clone());
        }
        if let Some(x) = r.live_mapping() {
            m.insert(x.id.clone(), x.name.clone());
        }
    }
    for g in &p.companies_not_in_psa {
        m.insert(g.managed_company.id.clone(), g.managed_company.name.clone());
    }
    m
}

/// Validates the plan's choices after an edit; managed ids outside the facts are looked up.
async fn check_choices(app: &App, p: &Plan, new_ids: &[(usize, String)]) -> WizardResult<()> {
    let mut managed = fact_ids(p);
    let mut problems = Vec::new();
    let mut missing: Vec<&(usize, String)> = Vec::new();
    for item in new_ids {
        if !managed.contains_key(&item.1) {
            missing.push(item);
        }
    }
    if !missing.is_empty() {
        let client = super::rest_client(&app.store).await.map_err(msp)?;
        for (i, id) in missing {
            match client.get_company(&CompanyId::new(id.clone())).await {
                Ok(c) => {
                    managed.insert(id.clone(), c.name);
                }
                Err(lastpass::rest::Error::NotFound { .. }) => problems.push(InvalidValue::new(
                    format!("choices[{i}].managed_company_id"),
                    id.as_str(),
                    "is not a managed company of the MSP account (unknown id)",
                )),
                Err(e) => return Err(msp(e)),
            }
        }
    }
    // Choices made earlier were checked then; keep them known.
    for r in &p.companies_in_psa {
        if let Some(id) = &r.choice.managed_company_id {
            managed.entry(id.clone()).or_default();
        }
    }
    problems.extend(
        plan::validate(p, &managed)
            .into_iter()
            .filter(|e| !e.reason.contains("unknown id")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid(problems))
    }
}

async fn save(app: &App, w: &WizardRow, p: &Plan) -> WizardResult<()> {
    app.store
        .update_msp_wizard(&w.id, &p.to_json(), w.run_id.as_deref())
        .await?;
    Ok(())
}

/// Changes companies' choices (its creator only). Nothing is saved unless every change is
/// valid; returns both lists.
pub async fn patch_companies(
    app: &App,
    actor: &Actor,
    id: &str,
    choices: &[CompanyEdit],
) -> WizardResult<Lists> {
    let (w, mut p) = load_for_change(app, id, actor).await?;
    let mut edits = Vec::new();
    let mut new_ids = Vec::new();
    let mut problems = Vec::new();
    for (i, c) in choices.iter().enumerate() {
        if let Some(import) = c.import {
            edits.push(Edit::Import {
                company: c.company.clone(),
                import,
            });
        }
        match c.action {
            Some(CompanyAction::Map) => match &c.managed_company_id {
                Some(m) if !m.trim().is_empty() => {
                    new_ids.push((i, m.trim().to_owned()));
                    edits.push(Edit::Map {
                        company: c.company.clone(),
                        managed_id: m.clone(),
                    });
                }
                _ => problems.push(InvalidValue::new(
                    format!("choices[{i}].managed_company_id"),
                    "",
                    "is required with action map",
                )),
            },
            Some(CompanyAction::Keep) => edits.push(Edit::Keep {
                company: c.company.clone(),
            }),
            Some(CompanyAction::Create) => edits.push(Edit::Create {
                company: c.company.clone(),
            }),
            Some(CompanyAction::Unmap) => edits.push(Edit::Unmap {
                company: c.company.clone(),
            }),
            None if c.managed_company_id.is_some() => problems.push(InvalidValue::new(
                format!("choices[{i}].action"),
                "",
                "is required with managed_company_id (action map)",
            )),
            None => {}
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    plan::apply_edits(&mut p, &edits).map_err(msp)?;
    check_choices(app, &p, &new_ids).await?;
    save(app, &w, &p).await?;
    Ok(Lists::of(&p))
}

// ---- users ------------------------------------------------------------------------------------

/// One contact on the users page, with what the choice does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: ContactRow,
    /// Granted access by this import.
    pub selected: bool,
    /// The existing LastPass user it is mapped to.
    pub map_to_user: Option<String>,
    /// To be unmapped and created as a new user.
    pub unmap: bool,
}

/// The user part of a company's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserChoice {
    pub emails: Vec<String>,
    pub map_users: BTreeMap<String, String>,
    pub unmap_users: Vec<String>,
}

/// Step 4: a company's contacts and their choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsersView {
    pub company: CompanySummary,
    pub contacts: Vec<ContactView>,
    pub choice: UserChoice,
    /// The managed company contacts can be mapped to users of (see [`user_map_target`]).
    #[serde(skip)]
    pub map_target: Option<String>,
}

/// The managed company whose users a row's contacts can be mapped to: the chosen one (map) or
/// the current one (keep); `None` when the row gets a new managed company.
pub fn user_map_target(row: &CompanyRow) -> Option<String> {
    if row.choice.action.creates() {
        return None;
    }
    row.choice
        .managed_company_id
        .clone()
        .or_else(|| row.live_mapping().map(|x| x.id.clone()))
}

fn users_view(p: &Plan, i: usize) -> UsersView {
    let r = &p.companies_in_psa[i];
    let chosen: Vec<String> = plan::selected_emails(r)
        .map(|v| v.into_iter().map(|e| e.folded().to_owned()).collect())
        .unwrap_or_default();
    let contacts = r
        .contacts
        .iter()
        .map(|c| {
            let folded = c.email.as_deref().map(str::to_lowercase);
            ContactView {
                selected: folded.as_ref().is_some_and(|e| chosen.contains(e)),
                map_to_user: folded.as_ref().and_then(|e| {
                    r.choice
                        .map_users
                        .iter()
                        .find(|(k, _)| k.to_lowercase() == *e)
                        .map(|(_, u)| u.clone())
                }),
                unmap: folded
                    .as_ref()
                    .is_some_and(|e| r.choice.unmap_users.iter().any(|u| u.to_lowercase() == *e)),
                contact: c.clone(),
            }
        })
        .collect();
    UsersView {
        company: CompanySummary::of(r),
        contacts,
        choice: UserChoice {
            emails: r.choice.emails.clone(),
            map_users: r.choice.map_users.clone(),
            unmap_users: r.choice.unmap_users.clone(),
        },
        map_target: user_map_target(r),
    }
}

fn find_row(p: &Plan, company: &str) -> WizardResult<usize> {
    p.find_row(company).map_err(|e| invalid(vec![e]))
}

/// A company's contacts and user choices (`company`: its PSA id or exact name).
pub async fn get_users(app: &App, id: &str, company: &str) -> WizardResult<UsersView> {
    let (_, p) = load(app, id).await?;
    let i = find_row(&p, company)?;
    Ok(users_view(&p, i))
}

/// Changes to a company's user choices; each list given replaces the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEdits {
    /// The contact e-mails granted access.
    pub emails: Option<Vec<String>>,
    /// Contact e-mail → existing LastPass user id.
    pub map_users: Option<BTreeMap<String, String>>,
    /// Imported contacts to unmap and create as new users.
    pub unmap_users: Option<Vec<String>>,
}

/// Changes a company's user choices (its creator only). Users to map must exist in the
/// company's managed company; nothing is saved unless every change is valid.
pub async fn patch_users(
    app: &App,
    actor: &Actor,
    id: &str,
    company: &str,
    edits: UserEdits,
) -> WizardResult<UsersView> {
    let (w, mut p) = load_for_change(app, id, actor).await?;
    let i = find_row(&p, company)?;
    let mut problems = Vec::new();
    let mut check = |field: String, v: &str| match Email::parse(v) {
        Ok(e) => Some(e.as_str().to_owned()),
        Err(e) => {
            problems.push(InvalidValue::new(field, v, e.reason));
            None
        }
    };
    let emails = edits.emails.as_ref().map(|l| {
        l.iter()
            .enumerate()
            .filter_map(|(j, v)| check(format!("emails[{j}]"), v))
            .collect::<Vec<_>>()
    });
    let map_users = edits.map_users.as_ref().map(|m| {
        m.iter()
            .filter_map(|(e, u)| {
                check(format!("map_users[{e}]"), e).map(|e| (e, u.trim().to_owned()))
            })
            .collect::<BTreeMap<_, _>>()
    });
    let unmap_users = edits.unmap_users.as_ref().map(|l| {
        l.iter()
            .enumerate()
            .filter_map(|(j, v)| check(format!("unmap_users[{j}]"), v))
            .collect::<Vec<_>>()
    });
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    {
        let c = &mut p.companies_in_psa[i].choice;
        if let Some(e) = emails {
            c.emails = e;
        }
        if let Some(m) = map_users.clone() {
            c.map_users = m;
        }
        if let Some(u) = unmap_users {
            c.unmap_users = u;
        }
    }
    check_choices(app, &p, &[]).await?;
    // Users to map must exist in the company they are mapped in.
    if let Some(m) = map_users.filter(|m| !m.is_empty()) {
        let row = &p.companies_in_psa[i];
        let target = row
            .choice
            .managed_company_id
            .clone()
            .or_else(|| row.live_mapping().map(|x| x.id.clone()));
        if let Some(target) = target {
            let client = super::rest_client(&app.store).await.map_err(msp)?;
            let mut problems = Vec::new();
            for (email, uid) in m {
                match client
                    .get_user(
                        &CompanyId::new(target.clone()),
                        &CompanyUserId::new(uid.clone()),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(lastpass::rest::Error::NotFound { .. }) => {
                        problems.push(InvalidValue::new(
                            format!("map_users[{email}]"),
                            uid,
                            format!("is not a user of managed company {target} (unknown id)"),
                        ))
                    }
                    Err(e) => return Err(msp(e)),
                }
            }
            if !problems.is_empty() {
                return Err(invalid(problems));
            }
        }
    }
    save(app, &w, &p).await?;
    Ok(users_view(&p, i))
}

// ---- Import and Map ---------------------------------------------------------------------------

/// A run started by [`apply()`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyStarted {
    pub wizard_id: String,
    pub run_id: String,
    /// The run's steps (its progress goes from 0 to this).
    pub total: u64,
}

/// **Import and Map** (its creator only): checks the plan against the PSA and LastPass now
/// (refusing a stale or invalid one, the wizard keeping its lock), records the run, and runs
/// it in the background; [`result()`] polls it. The lock is released when the run ends.
pub async fn apply(app: &App, actor: &Actor, id: &str) -> WizardResult<ApplyStarted> {
    let (w, p) = load_for_change(app, id, actor).await?;
    let integration = integration_id(&w.integration_id)?;
    let ctx = ImportContext::open(&app.store, &integration, &app.psa_tuning())
        .await
        .map_err(msp)?;
    let key = app.store.msp_plan_key().await?;
    let opts = ApplyOptions {
        expected_integration: Some(w.integration_id.clone()),
        ..ApplyOptions::default()
    };
    // While the import runs, its lease is renewed often and lives shortly: should this
    // process die, the run shows as interrupted within a minute and can be applied again.
    let owner = wizard_owner(actor, &w.id);
    let held = Held::take(&app.store, &w.integration_id, owner.clone(), lock::RUN_TTL)
        .await
        .map_err(msp)?;
    let ready = async {
        let prepared = apply::prepare(&ctx, p, &key, &opts).await?;
        let started = apply::start(&ctx, &prepared, &held).await?;
        Ok::<_, MspError>((prepared, started))
    }
    .await;
    let (prepared, started) = match ready {
        Ok(x) => x,
        Err(e) => {
            // The wizard keeps its lock: the admin fixes the choices (or starts over).
            held.keep();
            let _ = lock::acquire(&app.store, &w.integration_id, &owner, lock::WIZARD_TTL).await;
            return Err(msp(e));
        }
    };
    app.store
        .update_msp_wizard(&w.id, &w.plan, Some(&started.run_id))
        .await?;
    let (run_id, total) = (started.run_id.clone(), started.total_steps);
    let store = app.store.clone();
    tokio::spawn(async move {
        let out = apply::execute(&ctx, prepared, &held, &opts, &NoProgress, started).await;
        if let Err(e) = &out {
            tracing::error!(error = %e, "MSP import failed");
        }
        // The import is over: the result page needs no lock.
        if let Err(e) = held.release(&store).await {
            tracing::warn!(error = %e, "could not release the MSP import lock");
        }
    });
    Ok(ApplyStarted {
        wizard_id: w.id,
        run_id,
        total,
    })
}

/// The result and progress of a wizard's run (poll it while `running`); `None` before
/// [`apply()`].
pub async fn result(app: &App, id: &str) -> WizardResult<Option<RunView>> {
    let (w, _) = load(app, id).await?;
    run_view(app, &w).await
}

// ---- search dialogs ---------------------------------------------------------------------------

/// A managed company found by [`search_managed_companies`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyHit {
    pub company: ManagedCompany,
    /// The PSA company ids mapped to it now, or chosen in this wizard to be mapped to it (a
    /// managed company takes one PSA company).
    pub used_by: Vec<String>,
}

/// One page of managed companies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanySearch {
    pub items: Vec<CompanyHit>,
    /// Pass it back (with the same query) for the next page; `None` on the last one.
    pub next_page_token: Option<String>,
}

/// Managed company id → the PSA companies of this plan mapped or chosen to be mapped to it.
fn claims(p: &Plan) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    let mut add = |managed: &str, psa: &str| {
        let list = m.entry(managed.to_owned()).or_default();
        if !list.iter().any(|x| x == psa) {
            list.push(psa.to_owned());
        }
    };
    for r in &p.companies_in_psa {
        if let Some(x) = r.live_mapping() {
            add(&x.id, &r.psa_company_id);
        }
        for d in &r.duplicates {
            if let Some(psa) = &d.mapped_to_psa_company {
                add(&d.id, psa);
            }
        }
        if r.choice.import
            && r.choice.action == CompanyAction::Map
            && let Some(id) = &r.choice.managed_company_id
        {
            add(id.trim(), &r.psa_company_id);
        }
    }
    for g in &p.companies_not_in_psa {
        add(&g.managed_company.id, &g.psa_company_id);
    }
    m
}

/// "Company details: search and select the managed company": the MSP account's managed
/// companies whose name contains `query` (case-insensitive; empty: all), by name,
/// [`SEARCH_PAGE_SIZE`] a page. `%` in `query` is LastPass's wildcard.
pub async fn search_managed_companies(
    app: &App,
    id: &str,
    query: &str,
    page_token: Option<&str>,
) -> WizardResult<CompanySearch> {
    let (_, p) = load(app, id).await?;
    let q = query.trim();
    let filter = CompanyQuery {
        name: (!q.is_empty()).then(|| format!("%{q}%")),
        sort: Some(Sort::name_asc()),
        page_size: Some(SEARCH_PAGE_SIZE),
        ..CompanyQuery::default()
    };
    let client = super::rest_client(&app.store).await.map_err(msp)?;
    let page = client
        .companies_page(&filter, page_token.filter(|t| !t.trim().is_empty()))
        .await
        .map_err(msp)?;
    let mut used = claims(&p);
    let items = page
        .items
        .into_iter()
        .map(|company| CompanyHit {
            used_by: used.remove(company.id.as_str()).unwrap_or_default(),
            company,
        })
        .collect();
    Ok(CompanySearch {
        items,
        next_page_token: page.next_page_token,
    })
}

/// A user found by [`search_company_users`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserHit {
    pub user: CompanyUser,
    /// This company's contact e-mails mapped to the user (imported before, or chosen).
    pub mapped_from: Vec<String>,
}

/// Users of one managed company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSearch {
    /// The managed company searched ([`user_map_target`] of the row).
    pub managed_company_id: String,
    pub items: Vec<UserHit>,
    /// More users match than [`SEARCH_PAGE_SIZE`]: narrow the query.
    pub more: bool,
}

/// "User details: search and select the user to map to": the users of the managed company a
/// row's contacts map into (`company`: the PSA id or exact name) whose name or e-mail contains
/// `query` (case-insensitive; empty: all), at most [`SEARCH_PAGE_SIZE`].
pub async fn search_company_users(
    app: &App,
    id: &str,
    company: &str,
    query: &str,
) -> WizardResult<UserSearch> {
    let (_, p) = load(app, id).await?;
    let row = &p.companies_in_psa[find_row(&p, company)?];
    let Some(target) = user_map_target(row) else {
        return Err(invalid(vec![InvalidValue::new(
            "company",
            company,
            format!(
                "gets a new managed company (action {}): users can only be mapped in an \
                 existing managed company (action map or keep)",
                row.choice.action.as_str()
            ),
        )]));
    };
    let needle = query.trim().to_lowercase();
    let matches = |u: &CompanyUser| {
        needle.is_empty()
            || u.email.to_lowercase().contains(&needle)
            || u.name
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains(&needle))
    };
    let client = super::rest_client(&app.store).await.map_err(msp)?;
    let company_id = CompanyId::new(target.clone());
    // Filtered here: the API's filters are AND-ed, and the search is on name or e-mail.
    let mut users = client.list_users(&company_id, &UserQuery::default());
    let mut items = Vec::new();
    let mut more = false;
    while let Some(u) = users.next().await {
        let u = u.map_err(msp)?;
        if !matches(&u) {
            continue;
        }
        if items.len() >= SEARCH_PAGE_SIZE as usize {
            more = true;
            break;
        }
        let uid = u.id.as_str();
        let mut mapped_from: Vec<String> = row
            .choice
            .map_users
            .iter()
            .filter(|(_, v)| v.as_str() == uid)
            .map(|(e, _)| e.clone())
            .collect();
        for c in &row.contacts {
            if c.lastpass_user_id.as_deref() == Some(uid)
                && let Some(e) = &c.email
                && !mapped_from.iter().any(|m| m.eq_ignore_ascii_case(e))
            {
                mapped_from.push(e.clone());
            }
        }
        items.push(UserHit {
            user: u,
            mapped_from,
        });
    }
    Ok(UserSearch {
        managed_company_id: target,
        items,
        more,
    })
}
