//! ConnectWise Manage (PSA) REST API emulator, mounted under `/cw` (the "site"): discovery at
//! `/cw/login/companyinfo/{companyId}`, the API at `/cw/{codebase}apis/3.0/`.
//!
//! Contract with `server.rs` (keep these signatures): [`ConnectWiseConfig`] (`Default`,
//! `Clone`, `Debug`), [`ConnectWise::new`], [`ConnectWise::services_json`], [`router`] and
//! [`control_router`].
//!
//! This module owns the tenant state and the request pipeline: count the request, apply
//! faults ([`faults`]), route discovery or API, check the codebase, Basic auth, `clientId` and
//! role permissions, then serve lists with `conditions` / `childConditions` ([`conditions`]),
//! navigable or forward-only paging and the `Link` header. Records and their JSON live in
//! [`data`], the control API in [`control`]. Every choice the reference leaves open (marked
//! GUESS there) is listed in `crates/sandbox/CONNECTWISE.md`.

pub mod conditions;
pub mod control;
pub mod data;
pub mod faults;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use parking_lot::RwLock;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::conditions::{Expr, Op, Record, Schema};
use self::data::{CompanySchema, CompanyStatus, CompanyType, ContactSchema, Data, SetupSchema};
pub use self::faults::{ActiveCwRule, CwFaultKind, CwFaultRule, CwStats};

/// Where `server.rs` mounts [`router`]; `_info` hrefs and `Link` URLs include it.
pub const MOUNT: &str = "/cw";
/// The documented maximum `pageSize`.
pub const MAX_PAGE_SIZE: usize = 1000;
/// The documented default `pageSize`.
pub const DEFAULT_PAGE_SIZE: usize = 25;

/// What `login/companyinfo/{id}` answers for an unknown company (the reference only guesses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCompany {
    /// 404 with an empty body.
    #[default]
    NotFound,
    /// 200 with an empty body.
    EmptyBody,
}

/// The API member's security role: which inquiries it may make (spec §1.9). A missing right
/// answers 403 `{"code":"Security","message":"You do not have security permission to perform this action."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permissions {
    /// Companies > Company Maintenance: Inquire (`company/companies`).
    pub companies: bool,
    /// Companies > Contacts: Inquire (`company/contacts`).
    pub contacts: bool,
    /// System > Table Setup: Inquire (`company/companies/types`, `.../statuses`).
    pub setup: bool,
    /// False mimics ConnectWiseManageAPI#40: contacts come back without `company` and `site`
    /// instead of a 403.
    pub contact_company_visible: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            companies: true,
            contacts: true,
            setup: true,
            contact_company_visible: true,
        }
    }
}

/// Seed and credentials of the emulated ConnectWise tenant.
#[derive(Clone)]
pub struct ConnectWiseConfig {
    /// The login company id (`companyId` in discovery and Basic auth), case-insensitive.
    pub company_id: String,
    /// `CompanyName` in discovery.
    pub company_name: String,
    pub public_key: String,
    pub private_key: String,
    /// The integration's registered `clientId` (a GUID).
    pub client_id: String,
    /// With its trailing slash: `v2025_1/` (cloud) or `v4_6_release/` (on-premise).
    pub codebase: String,
    /// `IsCloud` in discovery (served as the string `"True"`/`"False"`), `isCloud` in system/info.
    pub cloud: bool,
    pub companies: usize,
    pub contacts: usize,
    /// Seed of the data (records and credentials derive from it).
    pub seed: u64,
    pub types: Vec<CompanyType>,
    pub statuses: Vec<CompanyStatus>,
    pub permissions: Permissions,
    pub unknown_company: UnknownCompany,
    /// Initial fault rules.
    pub faults: Vec<CwFaultRule>,
    /// Seed of the fault RNG (probabilities).
    pub fault_seed: u64,
}

/// Companies seeded by default.
pub const DEFAULT_COMPANIES: usize = 2_500;
/// Contacts seeded by default.
pub const DEFAULT_CONTACTS: usize = 12_500;
/// Default data seed.
pub const DEFAULT_SEED: u64 = 20_260_105;

/// `(public_key, private_key, client_id)` derived from `seed` (16, 16 and GUID characters).
pub fn credentials_for(seed: u64) -> (String, String, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6377_6b65_7973_0001);
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut key = |n: usize| -> String {
        (0..n)
            .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
            .collect()
    };
    let public = key(16);
    let private = key(16);
    let h: u128 = rng.r#gen();
    let client = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (h >> 96) as u32,
        (h >> 80) as u16,
        (h >> 64) & 0xfff,
        (h >> 48) & 0xfff,
        h & 0xffff_ffff_ffff
    );
    (public, private, client)
}

impl Default for ConnectWiseConfig {
    fn default() -> Self {
        Self::with_seed(DEFAULT_SEED)
    }
}

impl ConnectWiseConfig {
    /// The default tenant (company `lpbridge`, codebase `v2025_1/`, 2,500 companies and 12,500
    /// contacts) with data and credentials from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        let (public_key, private_key, client_id) = credentials_for(seed);
        Self {
            company_id: "lpbridge".into(),
            company_name: "lpbridge MSP".into(),
            public_key,
            private_key,
            client_id,
            codebase: "v2025_1/".into(),
            cloud: true,
            companies: DEFAULT_COMPANIES,
            contacts: DEFAULT_CONTACTS,
            seed,
            types: data::default_types(),
            statuses: data::default_statuses(),
            permissions: Permissions::default(),
            unknown_company: UnknownCompany::default(),
            faults: Vec::new(),
            fault_seed: seed,
        }
    }

    /// Sets the seeded counts.
    pub fn sized(mut self, companies: usize, contacts: usize) -> Self {
        self.companies = companies;
        self.contacts = contacts;
        self
    }
}

impl fmt::Debug for ConnectWiseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectWiseConfig")
            .field("company_id", &self.company_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"***")
            .field("client_id", &self.client_id)
            .field("codebase", &self.codebase)
            .field("companies", &self.companies)
            .field("contacts", &self.contacts)
            .field("seed", &self.seed)
            .field("permissions", &self.permissions)
            .field("faults", &self.faults.len())
            .finish_non_exhaustive()
    }
}

/// What can change at run time besides records (control API).
#[derive(Debug, Clone)]
struct Settings {
    company_id: String,
    company_name: String,
    public_key: String,
    private_key: String,
    client_id: String,
    codebase: String,
    cloud: bool,
    permissions: Permissions,
    unknown_company: UnknownCompany,
}

struct Inner {
    config: ConnectWiseConfig,
    data: OnceLock<RwLock<Data>>,
    settings: RwLock<Settings>,
    faults: faults::CwFaults,
}

/// The emulator's shared state (cheap to clone). Records are seeded on first use, so a sandbox
/// that never talks ConnectWise pays nothing.
#[derive(Clone)]
pub struct ConnectWise(Arc<Inner>);

impl fmt::Debug for ConnectWise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.settings.read();
        f.debug_struct("ConnectWise")
            .field("company_id", &s.company_id)
            .field("codebase", &s.codebase)
            .field("seeded", &self.0.data.get().is_some())
            .finish_non_exhaustive()
    }
}

/// Credentials and discovery data, as tests need them.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct CwCredentials {
    pub company_id: String,
    pub public_key: String,
    pub private_key: String,
    pub client_id: String,
    pub codebase: String,
}

impl fmt::Debug for CwCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CwCredentials")
            .field("company_id", &self.company_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"***")
            .field("client_id", &self.client_id)
            .field("codebase", &self.codebase)
            .finish()
    }
}

impl ConnectWise {
    pub fn new(config: ConnectWiseConfig) -> Self {
        let settings = Settings {
            company_id: config.company_id.clone(),
            company_name: config.company_name.clone(),
            public_key: config.public_key.clone(),
            private_key: config.private_key.clone(),
            client_id: config.client_id.clone(),
            codebase: normalize_codebase(&config.codebase),
            cloud: config.cloud,
            permissions: config.permissions,
            unknown_company: config.unknown_company,
        };
        let faults = faults::CwFaults::new(config.faults.clone(), config.fault_seed);
        Self(Arc::new(Inner {
            config,
            data: OnceLock::new(),
            settings: RwLock::new(settings),
            faults,
        }))
    }

    /// What the sandbox's first stdout line says about this service; `site` is
    /// `http://127.0.0.1:PORT/cw`.
    pub fn services_json(&self, site: &str) -> Value {
        let s = self.0.settings.read();
        let control = format!(
            "{}/_sandbox/connectwise",
            site.strip_suffix(MOUNT).unwrap_or(site)
        );
        json!({
            "site": site,
            "company_id": s.company_id,
            "public_key": s.public_key,
            "private_key": s.private_key,
            "client_id": s.client_id,
            "codebase": s.codebase,
            "api": format!("{site}/{}apis/3.0", s.codebase),
            "control": control,
        })
    }

    /// The current credentials and codebase.
    pub fn credentials(&self) -> CwCredentials {
        let s = self.0.settings.read();
        CwCredentials {
            company_id: s.company_id.clone(),
            public_key: s.public_key.clone(),
            private_key: s.private_key.clone(),
            client_id: s.client_id.clone(),
            codebase: s.codebase.clone(),
        }
    }

    /// The records, seeded on first use.
    fn data(&self) -> &RwLock<Data> {
        self.0.data.get_or_init(|| {
            let c = &self.0.config;
            RwLock::new(data::seed(
                c.companies,
                c.contacts,
                c.seed,
                c.types.clone(),
                c.statuses.clone(),
            ))
        })
    }

    /// `/cw/{codebase}apis/3.0`: the API path (without host) used in control-API answers.
    pub fn api_path(&self) -> String {
        format!("{MOUNT}/{}apis/3.0", self.0.settings.read().codebase)
    }

    /// Seeds now (benchmarks call this so the first request is not the one that pays).
    pub fn warm(&self) {
        let _ = self.data();
    }

    /// `(companies, contacts)` stored now (deleted-flagged companies included).
    pub fn counts(&self) -> (usize, usize) {
        let d = self.data().read();
        (d.companies.len(), d.contacts.len())
    }

    /// Runs `f` over the records (read-only), for tests that compare against the truth.
    pub fn with_data<R>(&self, f: impl FnOnce(&Data) -> R) -> R {
        f(&self.data().read())
    }

    pub fn add_fault(&self, rule: CwFaultRule) -> Result<u64, String> {
        rule.validate()?;
        Ok(self.0.faults.add(rule))
    }

    pub fn remove_fault(&self, id: u64) -> bool {
        self.0.faults.remove(id)
    }

    pub fn clear_faults(&self) {
        self.0.faults.clear()
    }

    pub fn faults(&self) -> Vec<ActiveCwRule> {
        self.0.faults.rules()
    }

    /// Requests seen under `/cw` (discovery included; the control API is not counted).
    pub fn stats(&self) -> CwStats {
        self.0.faults.stats()
    }

    pub fn reset_stats(&self) {
        self.0.faults.reset_stats()
    }

    /// Moves the tenant to a new codebase (an upgrade): discovery answers it, and the old path
    /// answers 404. Returns the previous one.
    pub fn set_codebase(&self, codebase: &str) -> String {
        let mut s = self.0.settings.write();
        std::mem::replace(&mut s.codebase, normalize_codebase(codebase))
    }

    pub fn permissions(&self) -> Permissions {
        self.0.settings.read().permissions
    }

    pub fn set_permissions(&self, p: Permissions) {
        self.0.settings.write().permissions = p;
    }

    pub fn set_unknown_company(&self, u: UnknownCompany) {
        self.0.settings.write().unknown_company = u;
    }

    /// Replaces any of the credentials (revoking the old ones).
    pub fn set_credentials(
        &self,
        public_key: Option<&str>,
        private_key: Option<&str>,
        client_id: Option<&str>,
    ) {
        let mut s = self.0.settings.write();
        if let Some(v) = public_key {
            s.public_key = v.to_string();
        }
        if let Some(v) = private_key {
            s.private_key = v.to_string();
        }
        if let Some(v) = client_id {
            s.client_id = v.to_string();
        }
    }
}

fn normalize_codebase(c: &str) -> String {
    let t = c.trim_matches('/');
    format!("{t}/")
}

/// The API and discovery routes (nested under `/cw`).
pub fn router(cw: ConnectWise) -> Router {
    Router::new().route("/{*rest}", any(handle)).with_state(cw)
}

/// Control routes (nested under `/_sandbox/connectwise`): add, rename, remove companies and
/// contacts; faults; stats; codebase, credentials and permissions.
pub fn control_router(cw: ConnectWise) -> Router {
    control::router(cw)
}

// ---- the request pipeline -----------------------------------------------------------

/// A response before faults that need the real body (truncation) are applied.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

const JSON_CT: &str = "application/json; charset=utf-8";

impl Answer {
    fn json(status: StatusCode, v: &Value) -> Self {
        Self {
            status,
            content_type: JSON_CT,
            headers: Vec::new(),
            // Serializing a `Value` cannot fail.
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    fn empty(status: StatusCode) -> Self {
        Self {
            status,
            content_type: JSON_CT,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `{"code","message"}`, the documented `ErrorResponseMessage` without `errors`.
    fn error(status: StatusCode, code: &str, message: &str) -> Self {
        Self::json(status, &json!({"code": code, "message": message}))
    }

    fn html(status: StatusCode, title: &str) -> Self {
        let body = format!(
            "<!DOCTYPE html>\r\n<html><head><title>{title}</title></head>\r\n<body><h1>{title}</h1>\
             <p>The server encountered an error while processing the request.</p><hr><p>Microsoft-IIS/10.0</p></body></html>\r\n"
        );
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    fn into_response(self, truncate: bool) -> Response {
        let mut body = self.body;
        if truncate && !body.is_empty() {
            body.truncate(body.len() / 2);
        }
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = self.status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (k, v) in self.headers {
            r.headers_mut().append(k, v);
        }
        r
    }
}

/// The stats key of a path below the site (ids replaced by `{id}`).
fn endpoint_key(path: &str) -> String {
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("login/companyinfo") {
        return "login/companyinfo".into();
    }
    let rest = match lower.find("/apis/3.0/") {
        Some(i) => &lower[i + "/apis/3.0/".len()..],
        None => return "other".into(),
    };
    rest.split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn handle(
    State(cw): State<ConnectWise>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    cw.0.faults.count_request(&endpoint_key(path));
    let decision = cw.0.faults.decide(path);
    if decision.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(decision.delay_ms)).await;
    }
    let mut truncate = false;
    let answer = match decision.answer {
        Some(CwFaultKind::RateLimit { retry_after }) => Answer::json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({
                "error": "ConnectWiseAPI",
                "message": format!("Too many requests. Please try again in {retry_after} seconds."),
            }),
        )
        .header(header::RETRY_AFTER, &retry_after.to_string()),
        Some(CwFaultKind::Status { status, message }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = message
                .unwrap_or_else(|| "An error occurred while processing the request.".to_string());
            Answer::error(status, "ConnectWiseApi", &message)
        }
        Some(CwFaultKind::Html { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            Answer::html(
                status,
                &format!(
                    "{} - {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("Error")
                ),
            )
        }
        other => {
            truncate = matches!(other, Some(CwFaultKind::Truncate));
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            // The emulator serves plain HTTP on loopback; the real site is https.
            let site = format!("http://{host}{MOUNT}");
            cw.serve(&method, path, uri.query(), &headers, &site)
        }
    };
    cw.0.faults.count_status(answer.status.as_u16());
    answer.into_response(truncate)
}

/// Parsed list parameters.
struct ListParams {
    conditions: Option<Expr>,
    child: Option<Expr>,
    order_by: Option<(u16, bool)>,
    page: usize,
    page_size: usize,
    forward_only: bool,
    page_id: u64,
    fields: Option<Vec<Vec<String>>>,
    /// Query parts (raw, still encoded) other than `page`, `pageSize` and `pageId`, for `Link`.
    keep: Vec<String>,
}

impl ListParams {
    /// Whether the top-level key `key` is asked for (`fields=`; every key when absent). Rows are
    /// built with only these keys, so a partial response costs only what it returns.
    fn wants(&self, key: &str) -> bool {
        self.fields.as_ref().is_none_or(|f| {
            f.iter()
                .any(|path| path.first().is_some_and(|h| h.eq_ignore_ascii_case(key)))
        })
    }
}

fn decode_pair(raw: &str) -> (String, String) {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
        .ok()
        .and_then(|v| v.into_iter().next())
        .unwrap_or_else(|| (raw.to_string(), String::new()))
}

fn invalid_param(name: &str, low: usize, high: usize) -> Answer {
    Answer::json(
        StatusCode::BAD_REQUEST,
        &json!({
            "code": "InvalidObject",
            "message": format!("{name} object is invalid"),
            "errors": [{
                "code": "OutOfRange",
                "message": format!("The field {name} must be between {low} and {high}."),
                "resource": name,
                "field": name,
            }],
        }),
    )
}

fn condition_error(message: &str) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, "ApiFindCondition", message)
}

fn parse_list_params(
    query: Option<&str>,
    headers: &HeaderMap,
    schema: &dyn Schema,
    child_schema: &dyn Schema,
) -> Result<ListParams, Answer> {
    let mut p = ListParams {
        conditions: None,
        child: None,
        order_by: None,
        page: 1,
        page_size: DEFAULT_PAGE_SIZE,
        forward_only: headers
            .get("pagination-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only")),
        page_id: 0,
        fields: None,
        keep: Vec::new(),
    };
    let mut order_raw = None;
    for raw in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = decode_pair(raw);
        match k.to_ascii_lowercase().as_str() {
            "page" => {
                p.page = match v.trim().parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(invalid_param("page", 1, i32::MAX as usize)),
                };
                continue;
            }
            "pagesize" => {
                p.page_size = match v.trim().parse::<usize>() {
                    Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                    _ => return Err(invalid_param("pageSize", 1, MAX_PAGE_SIZE)),
                };
                continue;
            }
            "pageid" => {
                p.page_id = match v.trim().parse::<u64>() {
                    Ok(n) => n,
                    _ => return Err(invalid_param("pageId", 0, i32::MAX as usize)),
                };
                continue;
            }
            "conditions" if !v.trim().is_empty() => {
                p.conditions = Some(
                    conditions::parse(&v, schema, true).map_err(|e| condition_error(&e.message))?,
                );
            }
            "childconditions" if !v.trim().is_empty() => {
                p.child = Some(
                    conditions::parse(&v, child_schema, false)
                        .map_err(|e| condition_error(&e.message))?,
                );
            }
            "orderby" if !v.trim().is_empty() => order_raw = Some(v),
            "fields" if !v.trim().is_empty() => {
                p.fields = Some(
                    v.split(',')
                        .map(|f| f.trim().split('/').map(str::to_string).collect())
                        .collect(),
                );
            }
            _ => {}
        }
        p.keep.push(raw.to_string());
    }
    if let Some(o) = order_raw {
        if p.forward_only {
            return Err(Answer::error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "orderBy is not supported with forward-only pagination.",
            ));
        }
        let mut it = o.split_whitespace();
        let field = it.next().unwrap_or("");
        let desc = match it.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(condition_error(&format!(
                    "{other} is not a valid sort direction."
                )));
            }
        };
        match schema.field(&field.to_ascii_lowercase()) {
            // `id asc` is the natural order: no sort needed (field 0 is `id` in every schema).
            Some((0, _)) if !desc => p.order_by = None,
            Some((id, _)) => p.order_by = Some((id, desc)),
            None => {
                return Err(condition_error(&format!(
                    "{field} is not a recognized name."
                )));
            }
        }
    }
    Ok(p)
}

/// An orderable key: the first value of a field.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    Null,
    Num(i64),
    Text(String),
}

fn sort_key(r: &dyn Record, field: u16) -> Key {
    let mut k = Key::Null;
    r.any(field, &mut |s| {
        k = match s {
            conditions::Scalar::Int(i) | conditions::Scalar::Date(i) => Key::Num(i),
            conditions::Scalar::Bool(b) => Key::Num(i64::from(b)),
            conditions::Scalar::Str(t) => Key::Text(t.to_ascii_lowercase()),
            conditions::Scalar::Null => Key::Null,
        };
        true
    });
    k
}

/// `id`s matching `company/id = N` or `company/id in (…)` at the top level of `e` (an AND
/// chain): the contacts index serves these without scanning every contact.
fn company_ids_of(e: &Expr) -> Option<BTreeSet<u64>> {
    match e {
        Expr::And(a, b) => company_ids_of(a).or_else(|| company_ids_of(b)),
        Expr::Cmp {
            field,
            op: Op::Eq | Op::In,
            values,
            ..
        } if *field == data::CONTACT_COMPANY_ID => Some(
            values
                .iter()
                .filter_map(|v| match v {
                    conditions::Literal::Num(n) if *n >= 0.0 => Some(*n as u64),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Keeps only the `fields=` paths of an object (partial response).
fn project(v: Value, fields: &[&[String]]) -> Value {
    let Value::Object(m) = v else { return v };
    let mut out = serde_json::Map::new();
    for (k, val) in m {
        let subs: Vec<&[String]> = fields
            .iter()
            .filter(|f| f.first().is_some_and(|h| h.eq_ignore_ascii_case(&k)))
            .map(|f| &f[1..])
            .collect();
        if subs.is_empty() {
            continue;
        }
        if subs.iter().any(|f| f.is_empty()) {
            out.insert(k, val);
        } else {
            let inner = match val {
                Value::Array(a) => Value::Array(a.into_iter().map(|x| project(x, &subs)).collect()),
                other => project(other, &subs),
            };
            out.insert(k, inner);
        }
    }
    Value::Object(out)
}

/// One page of a list, with what the `Link` header needs.
struct Page<T> {
    items: Vec<T>,
    /// Navigable: total matches. Forward-only: whether more follow.
    total: usize,
    more: bool,
}

/// Selects a page of `items` (in id order) matching the conditions.
fn select<'a, T: 'a, R: Record>(
    items: impl Iterator<Item = (u64, &'a T)>,
    view: impl Fn(&'a T) -> R,
    p: &ListParams,
) -> Page<&'a T> {
    let ok = |r: &R| {
        p.conditions.as_ref().is_none_or(|e| conditions::eval(e, r))
            && p.child.as_ref().is_none_or(|e| conditions::eval(e, r))
    };
    if p.forward_only {
        let mut out = Vec::with_capacity(p.page_size.min(1024));
        let mut more = false;
        for (id, t) in items {
            if id <= p.page_id {
                continue;
            }
            if ok(&view(t)) {
                if out.len() == p.page_size {
                    more = true;
                    break;
                }
                out.push(t);
            }
        }
        return Page {
            total: out.len(),
            items: out,
            more,
        };
    }
    let skip = (p.page - 1).saturating_mul(p.page_size);
    if let Some((field, desc)) = p.order_by {
        let mut all: Vec<(Key, &T)> = items
            .filter_map(|(_, t)| {
                let r = view(t);
                ok(&r).then(|| (sort_key(&r, field), t))
            })
            .collect();
        // Stable sort keeps id order among equal keys.
        all.sort_by(|a, b| {
            let o = a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal);
            if desc { o.reverse() } else { o }
        });
        let total = all.len();
        let items = all
            .into_iter()
            .skip(skip)
            .take(p.page_size)
            .map(|(_, t)| t)
            .collect();
        return Page {
            items,
            total,
            more: false,
        };
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(p.page_size.min(1024));
    for (_, t) in items {
        if ok(&view(t)) {
            if total >= skip && out.len() < p.page_size {
                out.push(t);
            }
            total += 1;
        }
    }
    Page {
        items: out,
        total,
        more: false,
    }
}

impl ConnectWise {
    fn serve(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        site: &str,
    ) -> Answer {
        let settings = self.0.settings.read().clone();
        if let Some(company) = path
            .strip_prefix("login/companyinfo/")
            .or_else(|| path.strip_prefix("login/companyInfo/"))
        {
            return company_info(&settings, company.trim_end_matches('/'));
        }
        // `{codebase}apis/3.0/{resource}`
        let Some((codebase, rest)) = path.split_once('/') else {
            return old_path_404();
        };
        if settings.codebase.strip_suffix('/') != Some(codebase) {
            return old_path_404();
        }
        let Some(resource) = rest
            .get(..9)
            .filter(|h| h.eq_ignore_ascii_case("apis/3.0/"))
            .map(|_| &rest[9..])
        else {
            return old_path_404();
        };
        if *method != Method::GET && *method != Method::HEAD {
            return Answer::empty(StatusCode::METHOD_NOT_ALLOWED);
        }
        if on_cloud_ui_host(&settings, headers) {
            return Answer::json(
                StatusCode::FORBIDDEN,
                &json!({"code": "Security", "message": "SSL is required.", "errors": null}),
            );
        }
        if let Some(a) = check_auth(&settings, headers) {
            return a;
        }
        let api = format!("{site}/{}apis/3.0", settings.codebase);
        let resource = resource.trim_end_matches('/');
        let lower = resource.to_ascii_lowercase();
        let segs: Vec<&str> = lower.split('/').collect();
        let forbidden = || {
            Answer::error(
                StatusCode::FORBIDDEN,
                "Security",
                "You do not have security permission to perform this action.",
            )
        };
        let perms = settings.permissions;
        let link_base = format!("{api}/{resource}");
        match segs.as_slice() {
            ["system", "info"] => Answer::json(
                StatusCode::OK,
                &json!({
                    "version": format!("{}.107339", version_code(&settings.codebase)),
                    "isCloud": settings.cloud,
                    "serverTimeZone": "Eastern Standard Time",
                    "licenseBits": [
                        {"name": "CRM", "activeFlag": true},
                        {"name": "Service", "activeFlag": true},
                        {"name": "Finance", "activeFlag": true},
                    ],
                    "cloudRegion": if settings.cloud { "NA" } else { "" },
                }),
            ),
            ["company", "companies", "types"] | ["company", "companies", "statuses"] => {
                if !perms.setup {
                    return forbidden();
                }
                self.setup_list(segs[2] == "types", query, headers, &link_base)
            }
            ["company", "companies", table @ ("types" | "statuses"), id] => {
                if !perms.setup {
                    return forbidden();
                }
                let d = self.data().read();
                let id: u32 = id.parse().unwrap_or(0);
                let found = if *table == "types" {
                    d.types.iter().find(|t| t.id == id).map(|t| d.type_json(t))
                } else {
                    d.statuses
                        .iter()
                        .find(|s| s.id == id)
                        .map(|s| d.status_json(s))
                };
                found.map_or_else(
                    || {
                        not_found(
                            if *table == "types" {
                                "CompanyType"
                            } else {
                                "CompanyStatus"
                            },
                            id,
                        )
                    },
                    |v| Answer::json(StatusCode::OK, &v),
                )
            }
            ["company", "companies"] | ["company", "companies", "count"] => {
                if !perms.companies {
                    return forbidden();
                }
                self.company_list(segs.len() == 3, query, headers, &api, &link_base)
            }
            ["company", "companies", id] => {
                if !perms.companies {
                    return forbidden();
                }
                let d = self.data().read();
                match id.parse::<u64>().ok().and_then(|i| d.companies.get(&i)) {
                    Some(c) => Answer::json(StatusCode::OK, &d.company_json(c, &api)),
                    None => not_found("Company", id),
                }
            }
            ["company", "contacts"] | ["company", "contacts", "count"] => {
                if !perms.contacts {
                    return forbidden();
                }
                let hide = !perms.contact_company_visible;
                self.contact_list(segs.len() == 3, query, headers, &api, &link_base, hide)
            }
            ["company", "contacts", id] => {
                if !perms.contacts {
                    return forbidden();
                }
                let d = self.data().read();
                match id.parse::<u64>().ok().and_then(|i| d.contacts.get(&i)) {
                    Some(c) => Answer::json(
                        StatusCode::OK,
                        &d.contact_json(c, &api, !perms.contact_company_visible),
                    ),
                    None => not_found("Contact", id),
                }
            }
            _ => Answer::error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("The resource {resource} was not found."),
            ),
        }
    }

    fn setup_list(
        &self,
        types: bool,
        query: Option<&str>,
        headers: &HeaderMap,
        link_base: &str,
    ) -> Answer {
        let p = match parse_list_params(query, headers, &SetupSchema, &NoChild) {
            Ok(p) => p,
            Err(a) => return a,
        };
        let d = self.data().read();
        let (rows, total, more): (Vec<Value>, usize, bool) = if types {
            let pg = select(d.types.iter().map(|t| (u64::from(t.id), t)), |t| t, &p);
            let rows = pg.items.iter().map(|t| d.type_json(t)).collect();
            (rows, pg.total, pg.more)
        } else {
            let pg = select(d.statuses.iter().map(|s| (u64::from(s.id), s)), |s| s, &p);
            let rows = pg.items.iter().map(|s| d.status_json(s)).collect();
            (rows, pg.total, pg.more)
        };
        let last_id = rows.last().and_then(|r| r["id"].as_u64());
        list_answer(rows, &p, total, more, last_id, link_base)
    }

    fn company_list(
        &self,
        count: bool,
        query: Option<&str>,
        headers: &HeaderMap,
        api: &str,
        link_base: &str,
    ) -> Answer {
        let mut p = match parse_list_params(
            query,
            headers,
            &CompanySchema { child: false },
            &CompanySchema { child: true },
        ) {
            Ok(p) => p,
            Err(a) => return a,
        };
        let d = self.data().read();
        let view = |c| data::CompanyView { c, data: &d };
        if count {
            p.forward_only = false;
            p.order_by = None;
            p.page = 1;
            p.page_size = 0;
            let n = select(d.companies.iter().map(|(k, v)| (*k, v)), view, &p).total;
            return Answer::json(StatusCode::OK, &json!({ "count": n }));
        }
        let start = if p.forward_only {
            p.page_id.saturating_add(1)
        } else {
            0
        };
        let pg = select(d.companies.range(start..).map(|(k, v)| (*k, v)), view, &p);
        let last_id = pg.items.last().map(|c| c.id);
        let want = |k: &str| p.wants(k);
        let rows = pg
            .items
            .iter()
            .map(|c| d.company_json_only(c, api, &want))
            .collect();
        list_answer(rows, &p, pg.total, pg.more, last_id, link_base)
    }

    fn contact_list(
        &self,
        count: bool,
        query: Option<&str>,
        headers: &HeaderMap,
        api: &str,
        link_base: &str,
        hide_company: bool,
    ) -> Answer {
        let mut p = match parse_list_params(
            query,
            headers,
            &ContactSchema { child: false },
            &ContactSchema { child: true },
        ) {
            Ok(p) => p,
            Err(a) => return a,
        };
        if count {
            p.forward_only = false;
            p.order_by = None;
            p.page = 1;
            p.page_size = 0;
        }
        let d = self.data().read();
        let view = |c| data::ContactView { c, data: &d };
        let start = if p.forward_only {
            p.page_id.saturating_add(1)
        } else {
            0
        };
        let pg = match p.conditions.as_ref().and_then(company_ids_of) {
            Some(companies) => {
                // Indexed: only the named companies' contacts, merged into id order.
                let mut ids: Vec<u64> = companies
                    .iter()
                    .filter_map(|c| d.by_company.get(c))
                    .flat_map(|s| s.range(start..).copied())
                    .collect();
                ids.sort_unstable();
                select(
                    ids.into_iter()
                        .filter_map(|i| d.contacts.get(&i).map(|c| (i, c))),
                    view,
                    &p,
                )
            }
            None => select(d.contacts.range(start..).map(|(k, v)| (*k, v)), view, &p),
        };
        if count {
            return Answer::json(StatusCode::OK, &json!({ "count": pg.total }));
        }
        let last_id = pg.items.last().map(|c| c.id);
        let rows = pg
            .items
            .iter()
            .map(|c| d.contact_json_only(c, api, hide_company, &|k: &str| p.wants(k)))
            .collect();
        list_answer(rows, &p, pg.total, pg.more, last_id, link_base)
    }
}

/// Childconditions on setup tables: nothing is an array there.
struct NoChild;

impl Schema for NoChild {
    fn field(&self, _path: &str) -> Option<(u16, conditions::FieldType)> {
        None
    }
}

/// The bare JSON array plus the `Link` header.
///
/// Navigable: `<{url}?{query}&pageSize=N&page=M>; rel="…"` for `first` and `prev` (not on page
/// 1) and `next` and `last` (not on the last page); no header when everything fits one page.
///
/// Forward-only: `<{url}?{query}&pageSize=N&pageId=LAST>; rel="next"` while more follow, and an
/// empty `Link` value on the last page (GUESS, spec §1.7).
fn list_answer(
    rows: Vec<Value>,
    p: &ListParams,
    total: usize,
    more: bool,
    last_id: Option<u64>,
    link_base: &str,
) -> Answer {
    let rows: Vec<Value> = match &p.fields {
        Some(f) => {
            let f: Vec<&[String]> = f.iter().map(Vec::as_slice).collect();
            rows.into_iter().map(|r| project(r, &f)).collect()
        }
        None => rows,
    };
    let mut a = Answer::json(StatusCode::OK, &Value::Array(rows));
    let prefix = if p.keep.is_empty() {
        format!("{link_base}?")
    } else {
        format!("{link_base}?{}&", p.keep.join("&"))
    };
    if p.forward_only {
        let value = match (more, last_id) {
            (true, Some(id)) => format!(
                "<{prefix}pageSize={}&pageId={id}>; rel=\"next\"",
                p.page_size
            ),
            _ => String::new(),
        };
        return a.header(header::LINK, &value);
    }
    let last = total.div_ceil(p.page_size).max(1);
    let link = |page: usize, rel: &str| {
        format!(
            "<{prefix}pageSize={}&page={page}>; rel=\"{rel}\"",
            p.page_size
        )
    };
    let mut parts = Vec::new();
    if p.page > 1 {
        parts.push(link(1, "first"));
        parts.push(link((p.page - 1).min(last), "prev"));
    }
    if p.page < last {
        parts.push(link(p.page + 1, "next"));
        parts.push(link(last, "last"));
    }
    if !parts.is_empty() {
        a = a.header(header::LINK, &parts.join(", "));
    }
    a
}

fn not_found(what: &str, id: impl fmt::Display) -> Answer {
    Answer::error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{what} {id} not found"),
    )
}

/// A path under a codebase the tenant is not on (after an upgrade): IIS's plain 404 page.
fn old_path_404() -> Answer {
    Answer::html(StatusCode::NOT_FOUND, "404 - File or directory not found.")
}

fn version_code(codebase: &str) -> String {
    let t = codebase.trim_matches('/');
    if t.starts_with("v4_6") {
        "v2025.1".to_string()
    } else {
        t.replacen('_', ".", 1)
    }
}

fn company_info(s: &Settings, company: &str) -> Answer {
    if !company.eq_ignore_ascii_case(&s.company_id) {
        return match s.unknown_company {
            UnknownCompany::NotFound => Answer::empty(StatusCode::NOT_FOUND),
            UnknownCompany::EmptyBody => Answer::empty(StatusCode::OK),
        };
    }
    Answer::json(
        StatusCode::OK,
        &json!({
            "CompanyName": s.company_name,
            "Codebase": s.codebase,
            "VersionCode": version_code(&s.codebase),
            "VersionNumber": "v4.6.107339",
            "CompanyID": s.company_id,
            "IsCloud": if s.cloud { "True" } else { "False" },
        }),
    )
}

/// The cloud UI hosts whose API lives on the `api-` host (spec §1.1).
pub const CLOUD_UI_HOSTS: &[&str] = &[
    "na.myconnectwise.net",
    "eu.myconnectwise.net",
    "au.myconnectwise.net",
    "aus.myconnectwise.net",
    "za.myconnectwise.net",
    "staging.connectwisedev.com",
];

/// Whether an API request reached a cloud tenant through its UI host instead of the `api-` one
/// (checklist §1.10 item 2). Only the documented UI host names count (sent in `Host`), so the
/// emulator's own loopback address keeps standing for the `api-` host.
fn on_cloud_ui_host(s: &Settings, headers: &HeaderMap) -> bool {
    if !s.cloud || s.codebase.starts_with("v4_6_release") {
        return false;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    CLOUD_UI_HOSTS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Basic auth `company+public:private`, then the `clientId` header. `None` when both pass.
fn check_auth(s: &Settings, headers: &HeaderMap) -> Option<Answer> {
    let bad_keys = || {
        Some(Answer::error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Incorrect public/private key",
        ))
    };
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return bad_keys();
    };
    let Some(b64) = auth
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .map(|_| auth[6..].trim())
    else {
        return bad_keys();
    };
    let Some(decoded) = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return bad_keys();
    };
    let Some((user, private)) = decoded.split_once(':') else {
        return bad_keys();
    };
    let Some((company, public)) = user.split_once('+') else {
        return bad_keys();
    };
    if !company.eq_ignore_ascii_case(&s.company_id) {
        // Right keys, wrong company (or host): the confusing message users report (#18).
        return Some(Answer::error(
            StatusCode::UNAUTHORIZED,
            "ConnectWiseApi",
            "UserNotAuthenticated",
        ));
    }
    if public != s.public_key || private != s.private_key {
        return bad_keys();
    }
    match headers.get("clientid").and_then(|v| v.to_str().ok()) {
        None => Some(Answer::error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "A clientId header is required. Register your integration at developer.connectwise.com to obtain a clientId.",
        )),
        Some(c) if !c.trim().eq_ignore_ascii_case(&s.client_id) => Some(Answer::error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The clientId is not valid. Register your integration at developer.connectwise.com to obtain a clientId.",
        )),
        Some(_) => None,
    }
}
