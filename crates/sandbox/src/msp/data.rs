//! The MSP tenant's records: the account and its licence pool, the managed companies, their
//! users and the asynchronous requests. This module owns the licence arithmetic of the older
//! allocated-pool model (reference §3.1), the deterministic seed (part of whose company names
//! come from the PSA emulators' own seeds, so they collide on purpose), and the JSON shapes the
//! REST API serves. Nothing here knows about HTTP.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, SecondsFormat};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The largest `licenseLimit` accepted (**GUESS**: the reference gives no bound).
pub const MAX_LICENSE_LIMIT: u32 = 1_000_000;
/// New users' invitations expire after 90 days (reference §3.1).
pub const INVITATION_TTL_US: i64 = 90 * 86_400 * 1_000_000;
/// The first seeded managed-company id; ids grow by 1–4 (LastPass account numbers have gaps).
pub const FIRST_COMPANY_ID: u64 = 40_001_000;
/// The first seeded user id.
pub const FIRST_USER_ID: u64 = 51_000_000;
/// 2024-01-01T00:00:00Z: seeded creation times are offsets from here (never the wall clock).
const SEED_EPOCH_US: i64 = 1_704_067_200_000_000;

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// The value for a wire spelling (exact, lower case).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// `a|b|c`, for error messages.
            pub fn choices() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join("|")
            }
        }
    };
}

wire_enum!(
    /// A managed company's billing status: `active` companies are billed at month end,
    /// `suspended` ones are not (reference §3.3).
    CompanyStatus { Active = "active", Suspended = "suspended" }
);

wire_enum!(
    /// `msp` is the MSP account itself (never listed as a managed company here), `managed` a
    /// customer, `managed-msp` a managed company that is itself an MSP and may have children
    /// (**GUESS**: the reference only lists the values).
    CompanyType { Msp = "msp", Managed = "managed", ManagedMsp = "managed-msp" }
);

wire_enum!(
    /// Add-ons a managed company may have.
    Addon { Mfa = "mfa", Sso = "sso" }
);

wire_enum!(
    /// A managed-company user's account status (reference §3.3).
    AccountStatus {
        Enrolled = "enrolled",
        PendingInvitation = "pending-invitation",
        ExpiredInvitation = "expired-invitation",
        Staged = "staged",
        Disabled = "disabled",
        AwaitingApproval = "awaiting-approval",
    }
);

impl AccountStatus {
    /// Whether a user in this status holds a licence. Active and invited users do (§3.1);
    /// staged and disabled ones do not (**GUESS** for staged, expired and awaiting approval).
    pub fn consumes_license(self) -> bool {
        !matches!(self, AccountStatus::Staged | AccountStatus::Disabled)
    }
}

/// One error item of a ProblemDetails body: `pointer` (a JSON Pointer as a URI fragment,
/// `#/email`) for a body member, `parameter` for a query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl FieldError {
    /// An error about body member `member` (`#/member`).
    pub fn body(member: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            pointer: Some(format!("#/{member}")),
            parameter: None,
        }
    }

    /// An error about query parameter `name`.
    pub fn query(name: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            pointer: None,
            parameter: Some(name.to_string()),
        }
    }
}

/// An RFC 9457 problem (without `instance`, which the HTTP layer adds: the request path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: u16, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: title.to_string(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 400 with one item per refused member or parameter.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                400,
                "Bad Request",
                "One or more validation errors occurred.",
            )
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "Not Found", detail)
    }

    /// The licence refusal (**GUESS**: status 409 and this title; the detail borrows the
    /// product's wording "The MSP company has no more licenses to distribute").
    pub fn not_enough_licenses(detail: impl Into<String>) -> Self {
        Self::new(409, "Not enough licenses", detail)
    }

    /// The body, with `instance` set.
    pub fn to_json(&self, instance: &str) -> Value {
        let mut v = json!({
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        });
        if !self.errors.is_empty() {
            v["errors"] = json!(self.errors);
        }
        v
    }
}

/// One user of a managed company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: u64,
    pub email: String,
    pub name: Option<String>,
    /// As stored; see [`User::status_at`] for what is served.
    pub status: AccountStatus,
    /// A local admin of the company (needed to detach it). Not part of the served shape.
    pub admin: bool,
    pub created_us: i64,
    /// When the current invitation was sent (a `pending-invitation` user).
    pub invited_us: Option<i64>,
}

impl User {
    /// The status at `now_us`: a pending invitation older than 90 days is expired (§3.1).
    pub fn status_at(&self, now_us: i64) -> AccountStatus {
        match (self.status, self.invited_us) {
            (AccountStatus::PendingInvitation, Some(t))
                if now_us.saturating_sub(t) > INVITATION_TTL_US =>
            {
                AccountStatus::ExpiredInvitation
            }
            (s, _) => s,
        }
    }

    /// `{"id","name","email","accountStatus"}` (reference §3.3).
    pub fn to_json(&self, now_us: i64) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "accountStatus": self.status_at(now_us).as_str(),
        })
    }
}

/// Where a company came from (control API only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Seeded as created by hand in the Admin Console.
    Seeded,
    /// Seeded by hand with the same name as a company of a PSA emulator's seed.
    PsaName { psa: String, psa_company_id: i64 },
    /// Created through `POST /v1/managed-companies`.
    Api { request_id: String },
    /// Created through the control API.
    Control,
}

/// A managed company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    pub id: u64,
    pub name: String,
    pub status: CompanyStatus,
    pub kind: CompanyType,
    /// Licences allocated to the company (the older pool model; `licenseLimit` on the wire).
    pub license_limit: u32,
    pub addons: Vec<Addon>,
    pub parent_id: u64,
    pub created_us: i64,
    /// Changed only through [`Tenant`] methods, which keep `used` in step.
    users: BTreeMap<u64, User>,
    /// Users holding a licence (a cache: licence checks run on every add).
    used: u32,
    pub origin: Origin,
}

impl Company {
    /// Users holding a licence.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// The users, by id.
    pub fn users(&self) -> &BTreeMap<u64, User> {
        &self.users
    }

    /// Recomputes `used` after a change to `users`.
    fn recount(&mut self) {
        let n = self
            .users
            .values()
            .filter(|u| u.status.consumes_license())
            .count();
        self.used = u32::try_from(n).unwrap_or(u32::MAX);
    }

    /// What the company takes from the MSP pool: its allocation, or its usage when users
    /// beyond the allocation drew licences straight from the pool.
    pub fn footprint(&self) -> u32 {
        self.license_limit.max(self.used())
    }

    pub fn admins(&self) -> usize {
        self.users.values().filter(|u| u.admin).count()
    }

    /// The served shape (**GUESS**: the reference could not read the read schema).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status.as_str(),
            "type": self.kind.as_str(),
            "licenseLimit": self.license_limit,
            "licensesUsed": self.used(),
            "addons": self.addons.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "parentId": self.parent_id,
            "createdAt": rfc3339(self.created_us),
        })
    }
}

/// A company to create (validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCompany {
    pub name: String,
    pub license_limit: u32,
    pub kind: CompanyType,
    pub addons: Vec<Addon>,
    pub parent_id: u64,
    pub status: CompanyStatus,
}

/// Changes to a company (validated); `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompanyPatch {
    pub license_limit: Option<u32>,
    pub status: Option<CompanyStatus>,
    pub addons: Option<Vec<Addon>>,
}

/// What an asynchronous request does when it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "operation", rename_all = "kebab-case")]
pub enum Operation {
    CreateManagedCompany(NewCompany),
    UpdateManagedCompany {
        company_id: u64,
        patch: CompanyPatch,
    },
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::CreateManagedCompany(_) => "create-managed-company",
            Operation::UpdateManagedCompany { .. } => "update-managed-company",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Completed { company_id: u64 },
    Failed { problem: Problem },
}

/// An asynchronous request (`202` of a create or update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsyncRequest {
    pub id: String,
    pub op: Operation,
    pub created_us: i64,
    pub completed_us: Option<i64>,
    /// `GET /v1/requests/{id}` calls so far.
    pub polls: u32,
    pub state: RequestState,
    /// Set by the control API's `fail-next`: the problem the request fails with.
    pub forced_failure: Option<Problem>,
}

impl AsyncRequest {
    /// The served shape (**GUESS**, the reference names only the `202` body):
    /// `{"id","status","operation","createdAt","completedAt","resourceId","resourceUrl","error"}`.
    pub fn to_json(&self, api_base: &str, instance: &str) -> Value {
        let (status, resource, error) = match &self.state {
            RequestState::Pending => ("pending", None, Value::Null),
            RequestState::Completed { company_id } => ("completed", Some(*company_id), Value::Null),
            RequestState::Failed { problem } => ("failed", None, problem.to_json(instance)),
        };
        let resource = resource.or(match &self.op {
            // An update names its company from the start.
            Operation::UpdateManagedCompany { company_id, .. } => Some(*company_id),
            Operation::CreateManagedCompany(_) => None,
        });
        json!({
            "id": self.id,
            "status": status,
            "operation": self.op.name(),
            "createdAt": rfc3339(self.created_us),
            "completedAt": self.completed_us.map(rfc3339),
            "resourceId": resource,
            "resourceUrl": resource.map(|id| format!("{api_base}/managed-companies/{id}")),
            "error": error,
        })
    }
}

/// The licence pool at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseSummary {
    /// The MSP's pool.
    pub total: u32,
    /// Σ of the companies' `licenseLimit`.
    pub allocated: u32,
    /// Users holding a licence, in every company.
    pub used: u32,
    /// Used beyond their company's allocation (drawn straight from the pool).
    pub overage: u32,
    /// `total − Σ max(licenseLimit, used)`: what is left to allocate or draw.
    pub unallocated: u32,
}

/// What seeding needs besides the PSA names.
#[derive(Debug, Clone)]
pub struct SeedSpec {
    pub cid: u64,
    pub name: String,
    pub licenses: u32,
    pub companies: usize,
    pub users_per_company: usize,
    pub psa_duplicates: usize,
    pub seed: u64,
}

/// A PSA company whose name the seed may reuse, with one of its contacts' e-mails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaName {
    pub psa: &'static str,
    pub company_id: i64,
    pub name: String,
    pub email: Option<String>,
}

/// The whole tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub cid: u64,
    pub name: String,
    pub licenses: u32,
    pub companies: BTreeMap<u64, Company>,
    /// Companies detached by `DELETE` (now independent trials), for inspection.
    pub detached: BTreeMap<u64, Company>,
    /// By id; ids start with the zero-padded sequence number, so this is creation order.
    /// Add through [`Tenant::add_request`].
    pub requests: BTreeMap<String, AsyncRequest>,
    /// Ids of the pending requests (settling looks only at these).
    pending: BTreeSet<String>,
    pub next_company_id: u64,
    pub next_user_id: u64,
    pub next_request: u64,
    /// Seeds request ids.
    pub seed: u64,
}

/// A refusal of a tenant change.
pub type Refusal = Problem;

impl Tenant {
    pub fn empty(cid: u64, name: &str, licenses: u32, seed: u64) -> Self {
        Self {
            cid,
            name: name.to_string(),
            licenses,
            companies: BTreeMap::new(),
            detached: BTreeMap::new(),
            requests: BTreeMap::new(),
            pending: BTreeSet::new(),
            next_company_id: FIRST_COMPANY_ID,
            next_user_id: FIRST_USER_ID,
            next_request: 1,
            seed,
        }
    }

    pub fn license_summary(&self) -> LicenseSummary {
        let (mut allocated, mut used, mut overage, mut footprint) = (0u32, 0u32, 0u32, 0u32);
        for c in self.companies.values() {
            let u = c.used();
            allocated = allocated.saturating_add(c.license_limit);
            used = used.saturating_add(u);
            overage = overage.saturating_add(u.saturating_sub(c.license_limit));
            footprint = footprint.saturating_add(c.footprint());
        }
        LicenseSummary {
            total: self.licenses,
            allocated,
            used,
            overage,
            unallocated: self.licenses.saturating_sub(footprint),
        }
    }

    pub fn unallocated(&self) -> u32 {
        self.license_summary().unallocated
    }

    /// Refuses one more licence-holding user in `company` when neither its allocation nor
    /// the pool has one left.
    pub fn check_consume(&self, company: &Company) -> Result<(), Refusal> {
        if company.used() < company.license_limit || self.unallocated() > 0 {
            return Ok(());
        }
        Err(Problem::not_enough_licenses(format!(
            "The MSP company has no more licenses to distribute: managed company {} uses all {} \
             of its allocated licenses and none of the MSP's {} licenses is unallocated.",
            company.id, company.license_limit, self.licenses
        )))
    }

    /// Refuses moving `company` (or a new company: `None`) to `new_limit` allocated licences
    /// when the pool cannot cover the growth of its footprint.
    pub fn check_allocation(
        &self,
        company: Option<&Company>,
        new_limit: u32,
    ) -> Result<(), Refusal> {
        let (old, used) = company.map_or((0, 0), |c| (c.footprint(), c.used()));
        let growth = new_limit.max(used).saturating_sub(old);
        let free = self.unallocated();
        if growth <= free {
            return Ok(());
        }
        Err(Problem::not_enough_licenses(format!(
            "The MSP company has no more licenses to distribute: allocating {new_limit} licenses \
             needs {growth} more, but only {free} of the MSP's {} licenses are unallocated.",
            self.licenses
        )))
    }

    /// A parent a new company may have: the MSP itself or a `managed-msp` company.
    pub fn check_parent(&self, parent_id: u64) -> Result<(), String> {
        if parent_id == self.cid {
            return Ok(());
        }
        match self.companies.get(&parent_id) {
            Some(c) if c.kind == CompanyType::ManagedMsp => Ok(()),
            Some(_) => Err(format!(
                "company {parent_id} is not of type managed-msp and cannot have managed companies"
            )),
            None => Err(format!("no managed company {parent_id}")),
        }
    }

    /// Creates a company (pool and parent checked); answers its id.
    pub fn insert_company(
        &mut self,
        n: NewCompany,
        origin: Origin,
        now_us: i64,
    ) -> Result<u64, Refusal> {
        self.check_parent(n.parent_id)
            .map_err(|m| Problem::not_found(format!("Parent company not found: {m}.")))?;
        self.check_allocation(None, n.license_limit)?;
        let id = self.next_company_id;
        self.next_company_id += 1;
        self.companies.insert(
            id,
            Company {
                id,
                name: n.name,
                status: n.status,
                kind: n.kind,
                license_limit: n.license_limit,
                addons: n.addons,
                parent_id: n.parent_id,
                created_us: now_us,
                users: BTreeMap::new(),
                used: 0,
                origin,
            },
        );
        Ok(id)
    }

    /// Applies `patch` to company `id` (pool checked).
    pub fn patch_company(&mut self, id: u64, patch: &CompanyPatch) -> Result<(), Refusal> {
        let company = self
            .companies
            .get(&id)
            .ok_or_else(|| Problem::not_found(format!("Managed company {id} was not found.")))?;
        if let Some(l) = patch.license_limit {
            self.check_allocation(Some(company), l)?;
        }
        let Some(c) = self.companies.get_mut(&id) else {
            return Err(Problem::not_found(format!(
                "Managed company {id} was not found."
            )));
        };
        if let Some(l) = patch.license_limit {
            c.license_limit = l;
        }
        if let Some(s) = patch.status {
            c.status = s;
        }
        if let Some(a) = &patch.addons {
            c.addons.clone_from(a);
        }
        Ok(())
    }

    /// Adds a user to `company_id`: refused when the e-mail is already there (409) or, for a
    /// licence-holding status, when no licence is left (409 "Not enough licenses").
    pub fn add_user(
        &mut self,
        company_id: u64,
        email: &str,
        name: Option<String>,
        status: AccountStatus,
        admin: bool,
        now_us: i64,
    ) -> Result<u64, Refusal> {
        let company = self.companies.get(&company_id).ok_or_else(|| {
            Problem::not_found(format!("Managed company {company_id} was not found."))
        })?;
        if company
            .users
            .values()
            .any(|u| u.email.eq_ignore_ascii_case(email))
        {
            return Err(Problem::new(
                409,
                "Conflict",
                format!(
                    "A user with the email {email} already exists in managed company {company_id}."
                ),
            ));
        }
        if status.consumes_license() {
            self.check_consume(company)?;
        }
        let id = self.next_user_id;
        self.next_user_id += 1;
        let user = User {
            id,
            email: email.to_string(),
            name,
            status,
            admin,
            created_us: now_us,
            invited_us: (status == AccountStatus::PendingInvitation).then_some(now_us),
        };
        if let Some(c) = self.companies.get_mut(&company_id) {
            c.users.insert(id, user);
            c.recount();
        }
        Ok(id)
    }

    /// Changes a user's status, admin flag or name (a move into a licence-holding status is
    /// pool-checked).
    pub fn set_user(
        &mut self,
        company_id: u64,
        user_id: u64,
        status: Option<AccountStatus>,
        admin: Option<bool>,
        name: Option<Option<String>>,
        now_us: i64,
    ) -> Result<(), Refusal> {
        let company = self.companies.get(&company_id).ok_or_else(|| {
            Problem::not_found(format!("Managed company {company_id} was not found."))
        })?;
        let user = company.users.get(&user_id).ok_or_else(|| {
            Problem::not_found(format!(
                "User {user_id} was not found in managed company {company_id}."
            ))
        })?;
        if let Some(s) = status
            && s.consumes_license()
            && !user.status.consumes_license()
        {
            self.check_consume(company)?;
        }
        let Some(c) = self.companies.get_mut(&company_id) else {
            return Err(Problem::not_found(format!(
                "Managed company {company_id} was not found."
            )));
        };
        let Some(u) = c.users.get_mut(&user_id) else {
            return Err(Problem::not_found(format!("User {user_id} was not found.")));
        };
        if let Some(s) = status {
            u.status = s;
            // A pending invitation starts its 90 days now; any other status is stored as is.
            u.invited_us = (s == AccountStatus::PendingInvitation).then_some(now_us);
        }
        if let Some(a) = admin {
            u.admin = a;
        }
        if let Some(n) = name {
            u.name = n;
        }
        c.recount();
        Ok(())
    }

    /// Detaches company `id` (reference §3.1): it needs a local admin, who becomes the owner of
    /// the new independent trial account. Its licences go back to the pool.
    pub fn detach(&mut self, id: u64) -> Result<Company, Refusal> {
        let c = self
            .companies
            .get(&id)
            .ok_or_else(|| Problem::not_found(format!("Managed company {id} was not found.")))?;
        if c.admins() == 0 {
            return Err(Problem::new(
                409,
                "Conflict",
                "Can't detach without admins.",
            ));
        }
        if self.companies.values().any(|o| o.parent_id == id) {
            return Err(Problem::new(
                409,
                "Conflict",
                format!("Managed company {id} still manages companies; detach them first."),
            ));
        }
        let c = self
            .companies
            .remove(&id)
            .ok_or_else(|| Problem::not_found(format!("Managed company {id} was not found.")))?;
        self.detached.insert(id, c.clone());
        Ok(c)
    }

    /// A new request id: the sequence number (8 hex digits, so ids sort in creation order)
    /// and random-looking rest in UUID layout.
    pub fn new_request_id(&mut self) -> String {
        let seq = self.next_request;
        self.next_request += 1;
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ seq.rotate_left(17) ^ 0x0072_6571_7565_7374);
        let h: u128 = rng.r#gen();
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            seq as u32,
            (h >> 96) as u16,
            (h >> 64) & 0xfff,
            (h >> 48) & 0xfff,
            h & 0xffff_ffff_ffff
        )
    }

    /// Records a new request.
    pub fn add_request(&mut self, r: AsyncRequest) {
        if r.state == RequestState::Pending {
            self.pending.insert(r.id.clone());
        }
        self.requests.insert(r.id.clone(), r);
    }

    /// Runs request `id`'s operation now (unless it already finished).
    pub fn complete(&mut self, id: &str, now_us: i64) {
        let Some(r) = self.requests.get(id) else {
            return;
        };
        if r.state != RequestState::Pending {
            return;
        }
        let outcome = match (&r.forced_failure, r.op.clone()) {
            (Some(p), _) => Err(p.clone()),
            (None, Operation::CreateManagedCompany(n)) => self.insert_company(
                n,
                Origin::Api {
                    request_id: id.to_string(),
                },
                now_us,
            ),
            (None, Operation::UpdateManagedCompany { company_id, patch }) => {
                self.patch_company(company_id, &patch).map(|()| company_id)
            }
        };
        self.pending.remove(id);
        if let Some(r) = self.requests.get_mut(id) {
            r.completed_us = Some(now_us);
            r.state = match outcome {
                Ok(company_id) => RequestState::Completed { company_id },
                Err(problem) => RequestState::Failed { problem },
            };
        }
    }

    /// Completes every pending request older than `after_us` (virtual time), oldest first.
    pub fn settle(&mut self, now_us: i64, after_us: Option<i64>) {
        let Some(after) = after_us else { return };
        let due: Vec<String> = self
            .pending
            .iter()
            .filter_map(|id| self.requests.get(id))
            .filter(|r| now_us.saturating_sub(r.created_us) >= after)
            .map(|r| r.id.clone())
            .collect();
        for id in due {
            self.complete(&id, now_us);
        }
    }
}

/// `2024-01-01T00:00:00Z`
pub fn rfc3339(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Lower-case ASCII letters and digits of `s` (at most 24), for e-mail domains.
fn slug(s: &str) -> String {
    let v: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(24)
        .collect();
    if v.is_empty() { "company".into() } else { v }
}

/// Hand-made company names: two words, never three like the PSA seeds' names, so they cannot
/// collide with a PSA company by accident.
const HAND_A: &[&str] = &[
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Wingtip",
    "Litware",
    "Proseware",
    "Woodgrove",
    "Alpine",
    "Coho",
    "Lucerne",
    "Trey",
    "Humongous",
    "Adatum",
    "Relecloud",
    "Wideworld",
];
const HAND_B: &[&str] = &[
    "Traders",
    "Toys",
    "Research",
    "Travel",
    "Bank",
    "Winery",
    "Publishing",
    "Vineyard",
    "Importers",
    "Airlines",
    "Systems",
    "Clinic",
];
const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Linus",
    "Margaret",
    "Dennis",
    "Katherine",
    "Tim",
    "Hedy",
    "Claude",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman",
    "Torvalds", "Hamilton", "Ritchie", "Johnson", "Lee", "Lamarr", "Shannon",
];

/// Seeds the tenant deterministically from `spec.seed`.
///
/// - `spec.companies` managed companies "created by hand", ids from [`FIRST_COMPANY_ID`] with
///   gaps; `spec.psa_duplicates` of them (at most the candidates there are) carry the exact
///   name of a company in `psa` (half from each PSA when both have enough), and their first
///   user has the e-mail of one of that PSA company's contacts when it has one.
/// - Types: all `managed`, except company #4 (`managed-msp`, with #5 and #6 as its children)
///   when there are at least 7. About 8% are `suspended`. Add-ons: none, `mfa`, or both.
/// - Users: `users_per_company` ± 1 (at least 1) each. The first user of ~85% of companies is an
///   enrolled admin; company #1 never has an admin (its detach answers 409). Other statuses:
///   mostly enrolled, some pending, staged, expired, disabled, awaiting approval.
/// - Licences: each company's `licenseLimit` is its usage plus 0–3; the sum of footprints never
///   exceeds `spec.licenses` (once the pool is spent, further users are seeded `staged` and
///   allocations stop growing).
pub fn seed(spec: &SeedSpec, psa: &[PsaName]) -> Tenant {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x6d73_705f_7365_6564);
    let mut t = Tenant::empty(spec.cid, &spec.name, spec.licenses, spec.seed);
    let dups = pick_psa_names(&mut rng, psa, spec.psa_duplicates.min(spec.companies));
    let mut slots: Vec<Option<PsaName>> = vec![None; spec.companies];
    if !dups.is_empty() {
        let positions = sample(&mut rng, spec.companies, dups.len());
        for (pos, d) in positions.into_iter().zip(dups) {
            slots[pos] = Some(d);
        }
    }
    let mut budget = spec.licenses;
    let mut used_names: HashSet<String> = HashSet::new();
    let mut managed_msp: Option<u64> = None;
    let mut id = FIRST_COMPANY_ID;
    for (i, slot) in slots.into_iter().enumerate() {
        let (name, origin, psa_email) = match slot {
            Some(p) => (
                p.name.clone(),
                Origin::PsaName {
                    psa: p.psa.to_string(),
                    psa_company_id: p.company_id,
                },
                p.email,
            ),
            None => {
                let base = format!(
                    "{} {}",
                    HAND_A[rng.gen_range(0..HAND_A.len())],
                    HAND_B[rng.gen_range(0..HAND_B.len())]
                );
                let name = if used_names.contains(&base.to_lowercase()) {
                    format!("{base} {}", i + 1)
                } else {
                    base
                };
                (name, Origin::Seeded, None)
            }
        };
        used_names.insert(name.to_lowercase());
        let kind = if i == 4 && spec.companies >= 7 {
            CompanyType::ManagedMsp
        } else {
            CompanyType::Managed
        };
        let parent_id = match (i, managed_msp) {
            (5 | 6, Some(p)) => p,
            _ => spec.cid,
        };
        let status = if rng.gen_range(0..100) < 8 {
            CompanyStatus::Suspended
        } else {
            CompanyStatus::Active
        };
        let addons = match rng.gen_range(0..10) {
            0..=4 => vec![],
            5..=7 => vec![Addon::Mfa],
            _ => vec![Addon::Mfa, Addon::Sso],
        };
        let created_us = SEED_EPOCH_US + rng.gen_range(0..700 * 86_400_i64) * 1_000_000;
        let mut company = Company {
            id,
            name,
            status,
            kind,
            license_limit: 0,
            addons,
            parent_id,
            created_us,
            users: BTreeMap::new(),
            used: 0,
            origin,
        };
        let n_users = if spec.users_per_company == 0 {
            0
        } else {
            rng.gen_range(
                spec.users_per_company.saturating_sub(1).max(1)..=spec.users_per_company + 1,
            )
        };
        let has_admin = i != 1 && rng.gen_range(0..100) < 85;
        let domain = slug(&company.name);
        let mut emails: BTreeSet<String> = BTreeSet::new();
        for k in 0..n_users {
            let first = FIRST[rng.gen_range(0..FIRST.len())];
            let last = LAST[rng.gen_range(0..LAST.len())];
            let mut email = match (&psa_email, k) {
                (Some(e), 0) => e.clone(),
                _ => format!(
                    "{}.{}@{domain}.example",
                    first.to_ascii_lowercase(),
                    last.to_ascii_lowercase()
                ),
            };
            if emails.contains(&email.to_ascii_lowercase()) {
                email = format!(
                    "{}.{}{k}@{domain}.example",
                    first.to_ascii_lowercase(),
                    last.to_ascii_lowercase()
                );
            }
            emails.insert(email.to_ascii_lowercase());
            let admin = k == 0 && has_admin;
            let mut status = if admin {
                AccountStatus::Enrolled
            } else {
                match rng.gen_range(0..100) {
                    0..=54 => AccountStatus::Enrolled,
                    55..=69 => AccountStatus::PendingInvitation,
                    70..=79 => AccountStatus::Staged,
                    80..=87 => AccountStatus::ExpiredInvitation,
                    88..=94 => AccountStatus::Disabled,
                    _ => AccountStatus::AwaitingApproval,
                }
            };
            if status.consumes_license() {
                if budget == 0 {
                    status = AccountStatus::Staged;
                } else {
                    budget -= 1;
                }
            }
            let created = created_us + rng.gen_range(0..200 * 86_400_i64) * 1_000_000;
            // Seeded invitations carry no sending time, so they stay pending whatever the
            // clock says (the seed must not depend on it); expired ones are seeded as such.
            let invited_us = None;
            let uid = t.next_user_id;
            t.next_user_id += 1;
            company.users.insert(
                uid,
                User {
                    id: uid,
                    email,
                    name: Some(format!("{first} {last}")),
                    status,
                    admin: admin && status == AccountStatus::Enrolled,
                    created_us: created,
                    invited_us,
                },
            );
        }
        let extra = match rng.gen_range(0..10) {
            0..=2 => 0,
            3..=5 => 1,
            6..=7 => 2,
            _ => 3,
        }
        .min(budget);
        budget -= extra;
        company.recount();
        company.license_limit = company.used() + extra;
        if kind == CompanyType::ManagedMsp {
            managed_msp = Some(id);
        }
        t.companies.insert(id, company);
        id += rng.gen_range(1..=4);
    }
    t.next_company_id = id + 1_000;
    t
}

/// Up to `n` candidates with distinct names (case-insensitive), about half from each PSA.
fn pick_psa_names(rng: &mut ChaCha8Rng, psa: &[PsaName], n: usize) -> Vec<PsaName> {
    let mut seen = HashSet::new();
    let distinct: Vec<&PsaName> = psa
        .iter()
        .filter(|p| seen.insert(p.name.to_lowercase()))
        .collect();
    let mut by_psa: BTreeMap<&str, Vec<&PsaName>> = BTreeMap::new();
    for p in distinct {
        by_psa.entry(p.psa).or_default().push(p);
    }
    let groups: Vec<Vec<&PsaName>> = by_psa.into_values().collect();
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    for (gi, g) in groups.iter().enumerate() {
        // An even share of what is left, the rest going to the next groups.
        let share = left.div_ceil(groups.len() - gi).min(g.len());
        for idx in sample(rng, g.len(), share) {
            out.push(g[idx].clone());
        }
        left -= share;
    }
    // A group too small for its share leaves some to take from the others.
    if left > 0 {
        let taken: HashSet<String> = out.iter().map(|p| p.name.to_lowercase()).collect();
        let rest: Vec<&PsaName> = groups
            .iter()
            .flatten()
            .copied()
            .filter(|p| !taken.contains(&p.name.to_lowercase()))
            .collect();
        for idx in sample(rng, rest.len(), left.min(rest.len())) {
            out.push(rest[idx].clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(companies: usize, licenses: u32) -> SeedSpec {
        SeedSpec {
            cid: 8_771_312,
            name: "Acme".into(),
            licenses,
            companies,
            users_per_company: 3,
            psa_duplicates: 4,
            seed: 1,
        }
    }

    fn psa() -> Vec<PsaName> {
        (0..10)
            .map(|i| PsaName {
                psa: if i % 2 == 0 {
                    "connectwise"
                } else {
                    "autotask"
                },
                company_id: i,
                name: format!("Blue Dental LLC {i}"),
                email: Some(format!("c{i}@blue.example")),
            })
            .collect()
    }

    #[test]
    fn seed_is_deterministic_and_within_the_pool() {
        let a = seed(&spec(30, 500), &psa());
        let b = seed(&spec(30, 500), &psa());
        assert_eq!(a.companies, b.companies);
        let s = a.license_summary();
        assert!(s.total >= s.used);
        assert_eq!(
            a.companies
                .values()
                .filter(|c| matches!(c.origin, Origin::PsaName { .. }))
                .count(),
            4
        );
        assert_eq!(a.companies.values().nth(1).map(Company::admins), Some(0));
        // A tiny pool: footprints never exceed it.
        let t = seed(&spec(30, 7), &psa());
        let s = t.license_summary();
        assert_eq!(
            s.unallocated,
            7 - t.companies.values().map(Company::footprint).sum::<u32>()
        );
        assert!(t.companies.values().map(Company::footprint).sum::<u32>() <= 7);
    }

    #[test]
    fn licences_run_out_then_come_back() {
        let mut t = Tenant::empty(1, "x", 2, 0);
        let n = NewCompany {
            name: "A".into(),
            license_limit: 1,
            kind: CompanyType::Managed,
            addons: vec![],
            parent_id: 1,
            status: CompanyStatus::Active,
        };
        let c = t.insert_company(n, Origin::Control, 0).unwrap();
        let inv = AccountStatus::PendingInvitation;
        let u1 = t.add_user(c, "a@x.example", None, inv, false, 0).unwrap();
        t.add_user(c, "b@x.example", None, inv, false, 0).unwrap();
        let e = t
            .add_user(c, "c@x.example", None, inv, false, 0)
            .unwrap_err();
        assert_eq!((e.status, e.title.as_str()), (409, "Not enough licenses"));
        // Staged users hold no licence.
        t.add_user(c, "d@x.example", None, AccountStatus::Staged, false, 0)
            .unwrap();
        let e = t
            .add_user(c, "A@x.example", None, inv, false, 0)
            .unwrap_err();
        assert_eq!(e.title, "Conflict");
        t.set_user(c, u1, Some(AccountStatus::Disabled), None, None, 0)
            .unwrap();
        t.add_user(c, "c@x.example", None, inv, false, 0).unwrap();
    }

    #[test]
    fn invitations_expire_after_90_days() {
        let u = User {
            id: 1,
            email: "a@b.example".into(),
            name: None,
            status: AccountStatus::PendingInvitation,
            admin: false,
            created_us: 0,
            invited_us: Some(0),
        };
        assert_eq!(
            u.status_at(INVITATION_TTL_US),
            AccountStatus::PendingInvitation
        );
        assert_eq!(
            u.status_at(INVITATION_TTL_US + 1),
            AccountStatus::ExpiredInvitation
        );
    }
}
