//! Import plans: what the wizard shows after "Continue" (step 3 of the product description) and
//! what **Import and Map** executes.
//!
//! A [`Plan`] holds both lists: [`Plan::companies_in_psa`] (companies that match the filter
//! now) and [`Plan::companies_not_in_psa`] (mapped before, not found now). Each company row
//! carries *facts* (name, import status, PSA type and status, last import date, the managed
//! company it is mapped to, same-named managed companies, contacts) and one editable
//! [`CompanyChoice`]. Unmapped rows come first.
//!
//! # Integrity
//!
//! The facts, the integration id and the fingerprints are signed with HMAC-SHA256 under the
//! store's plan key ([`crate::store::Store::msp_plan_key`]); the choices are not, so a plan
//! file may be edited by hand (or with the CLI's flags) but not its facts. A plan signed by
//! another store, or for another integration, is refused as foreign; a changed fact as
//! tampered.
//!
//! # Default choices (product description, steps 4–7)
//!
//! - **Mapped**: keep the managed company; the e-mails imported before are preselected.
//! - **Unmapped**: create a new managed company ("Created by default"); no e-mail preselected.
//! - **Unmapped – potential duplicate**: map to the same-named managed company ("will be
//!   mapped with the similarly-named company if selected"), unless that company is already
//!   mapped to another PSA company (then create).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use lp_types::{Email, InvalidValue};
use psa::{CompanyFilter, PsaKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::state::{State, id_order, name_key};
use super::{MspError, psa_display_name};
use crate::store::msp::{JournalEntry, PlanKey, StepState};

/// The plan format this lpbridge writes and reads.
pub const PLAN_VERSION: u32 = 1;

/// A company's import status, spelled as the product shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImportStatus {
    /// Imported before: linked to a managed company.
    #[serde(rename = "Mapped")]
    Mapped,
    /// Not imported; a new managed company is created for it if selected.
    #[serde(rename = "Unmapped")]
    Unmapped,
    /// Unmapped, and a managed company with the same name exists.
    #[serde(rename = "Unmapped – potential duplicate")]
    PotentialDuplicate,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Mapped => "Mapped",
            ImportStatus::Unmapped => "Unmapped",
            ImportStatus::PotentialDuplicate => "Unmapped – potential duplicate",
        }
    }
}

/// What to do with a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompanyAction {
    /// Create a new managed company (the default for Unmapped).
    Create,
    /// Map to the existing managed company `managed_company_id`.
    Map,
    /// Keep the current mapping (the default for Mapped).
    Keep,
    /// Unmap and create as a new managed company.
    Unmap,
}

impl CompanyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CompanyAction::Create => "create",
            CompanyAction::Map => "map",
            CompanyAction::Keep => "keep",
            CompanyAction::Unmap => "unmap",
        }
    }

    /// Whether a new managed company is made.
    pub fn creates(self) -> bool {
        matches!(self, CompanyAction::Create | CompanyAction::Unmap)
    }
}

/// A managed company as a plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedRef {
    pub id: String,
    pub name: String,
    /// The PSA company of this integration it is mapped to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_to_psa_company: Option<String>,
}

/// The managed company a row is (or was) mapped to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappedRef {
    pub id: String,
    pub name: String,
    /// False when LastPass no longer has it (detached or removed): the row is then unmapped.
    pub exists: bool,
}

/// One contact of a company (its first valid e-mail is the one imported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRow {
    pub contact_id: String,
    pub name: String,
    /// The contact's primary valid e-mail; `None` when it has none (it cannot be imported).
    pub email: Option<String>,
    /// E-mail values the PSA holds that are not valid addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_emails: Vec<String>,
    pub active: bool,
    /// Imported before into the company's current managed company.
    pub imported: bool,
    pub lastpass_user_id: Option<String>,
    pub last_import: Option<DateTime<Utc>>,
}

/// The editable part of a company row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyChoice {
    /// Whether the company takes part in this import.
    #[serde(default = "yes")]
    pub import: bool,
    pub action: CompanyAction,
    /// The managed company for `map` (and the current one for `keep`).
    #[serde(default)]
    pub managed_company_id: Option<String>,
    /// The contact e-mails granted LastPass access.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Contact e-mail → the existing LastPass user (id) to map it to.
    #[serde(default)]
    pub map_users: BTreeMap<String, String>,
    /// Imported contact e-mails to unmap and create as new users.
    #[serde(default)]
    pub unmap_users: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A row of "Companies in <PSA>".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyRow {
    pub psa_company_id: String,
    pub name: String,
    pub import_status: ImportStatus,
    pub psa_type: Option<String>,
    pub psa_status: Option<String>,
    /// "Status in Datto/ConnectWise": whether the account is active.
    pub psa_active: bool,
    /// The last time the company or an e-mail under it was imported.
    pub last_import: Option<DateTime<Utc>>,
    pub mapped_to: Option<MappedRef>,
    /// Managed companies with the same name (what makes a potential duplicate).
    pub duplicates: Vec<ManagedRef>,
    pub contacts: Vec<ContactRow>,
    pub choice: CompanyChoice,
}

impl CompanyRow {
    /// The contact with this e-mail (case-insensitive).
    pub fn contact(&self, email: &Email) -> Option<&ContactRow> {
        self.contacts.iter().find(|c| {
            c.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email.as_str()))
        })
    }

    /// The managed company the row is mapped to while LastPass still has it.
    pub fn live_mapping(&self) -> Option<&MappedRef> {
        self.mapped_to.as_ref().filter(|m| m.exists)
    }
}

/// A row of "Companies not in <PSA>": mapped before, not found now. Nothing is removed by an
/// import; the row is informational.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoneRow {
    pub psa_company_id: String,
    /// The name when it was last imported.
    pub name: String,
    pub import_status: ImportStatus,
    pub managed_company: MappedRef,
    pub last_import: Option<DateTime<Utc>>,
}

/// Hex SHA-256 digests of the state a plan was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Companies matching the filter and their contacts.
    pub psa: String,
    /// Managed companies relevant to the rows (mapped ones, same-named ones).
    pub lastpass: String,
    /// The stored company and contact mappings.
    pub mappings: String,
}

/// An import plan (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub version: u32,
    pub plan_id: String,
    /// The PSA integration (its stored name).
    pub integration: String,
    pub psa: PsaKind,
    /// "ConnectWise Manage" or "Datto Autotask": the tabs are "Companies in <psa_name>" and
    /// "Companies not in <psa_name>".
    pub psa_name: String,
    pub filter: CompanyFilter,
    pub created_at: DateTime<Utc>,
    pub fingerprint: Fingerprint,
    /// Which store's key signed the plan.
    pub store_key_id: String,
    pub companies_in_psa: Vec<CompanyRow>,
    pub companies_not_in_psa: Vec<GoneRow>,
    /// HMAC-SHA256 of everything but the choices and this tag (hex).
    pub tag: String,
}

// ---- building ---------------------------------------------------------------------------------

/// The plan for `state` (with default choices), signed with `key`.
pub fn build(
    integration: &str,
    kind: PsaKind,
    filter: &CompanyFilter,
    state: &State,
    key: &PlanKey,
) -> Plan {
    let (companies_in_psa, companies_not_in_psa) = rows(integration, state);
    let mut plan = Plan {
        version: PLAN_VERSION,
        plan_id: super::random_hex(8),
        integration: integration.to_owned(),
        psa: kind,
        psa_name: psa_display_name(kind).to_owned(),
        filter: filter.clone(),
        created_at: Utc::now(),
        fingerprint: Fingerprint {
            psa: String::new(),
            lastpass: String::new(),
            mappings: String::new(),
        },
        store_key_id: key_id(key),
        companies_in_psa,
        companies_not_in_psa,
        tag: String::new(),
    };
    plan.fingerprint = fingerprint(&plan.companies_in_psa, &plan.companies_not_in_psa);
    plan.sign(key);
    plan
}

/// The rows of both lists for `state`, with default choices; unmapped rows first.
pub fn rows(integration: &str, state: &State) -> (Vec<CompanyRow>, Vec<GoneRow>) {
    let managed_by_id: HashMap<&str, &lastpass::rest::ManagedCompany> =
        state.managed.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut by_name: HashMap<String, Vec<&lastpass::rest::ManagedCompany>> = HashMap::new();
    for m in &state.managed {
        by_name.entry(name_key(&m.name)).or_default().push(m);
    }
    for v in by_name.values_mut() {
        v.sort_by(|a, b| id_order(a.id.as_str(), b.id.as_str()));
    }
    let maps = state
        .company_maps
        .iter()
        .filter(|m| m.integration_id == integration);
    let map_by_psa: HashMap<&str, &crate::store::msp::CompanyMap> = maps
        .clone()
        .map(|m| (m.psa_company_id.as_str(), m))
        .collect();
    let psa_by_managed: HashMap<&str, &str> = maps
        .map(|m| (m.managed_company_id.as_str(), m.psa_company_id.as_str()))
        .collect();
    let mut contact_maps: HashMap<(&str, &str), &crate::store::msp::ContactMap> = HashMap::new();
    for c in &state.contact_maps {
        contact_maps.insert((c.psa_company_id.as_str(), c.email.as_str()), c);
    }
    let in_psa: HashSet<&str> = state.companies.iter().map(|c| c.id.as_str()).collect();
    // Managed companies a default "map" already took (stored mappings first).
    let mut claimed: HashSet<String> = psa_by_managed.keys().map(|s| (*s).to_owned()).collect();

    let mut rows = Vec::with_capacity(state.companies.len());
    for c in &state.companies {
        let map = map_by_psa.get(c.id.as_str()).copied();
        let mapped_to = map.map(|m| {
            let live = managed_by_id.get(m.managed_company_id.as_str());
            MappedRef {
                id: m.managed_company_id.clone(),
                name: live.map_or_else(|| m.managed_company_name.clone(), |l| l.name.clone()),
                exists: live.is_some(),
            }
        });
        let live_id = mapped_to
            .as_ref()
            .filter(|m| m.exists)
            .map(|m| m.id.clone());
        let duplicates: Vec<ManagedRef> = by_name
            .get(&name_key(&c.name))
            .map(|v| {
                v.iter()
                    .filter(|m| Some(m.id.as_str()) != live_id.as_deref())
                    .map(|m| ManagedRef {
                        id: m.id.to_string(),
                        name: m.name.clone(),
                        mapped_to_psa_company: psa_by_managed
                            .get(m.id.as_str())
                            .map(|s| (*s).to_owned()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let status = if live_id.is_some() {
            ImportStatus::Mapped
        } else if !duplicates.is_empty() {
            ImportStatus::PotentialDuplicate
        } else {
            ImportStatus::Unmapped
        };
        let mut last_import = map.filter(|_| live_id.is_some()).map(|m| m.last_import_at);
        let mut seen: HashSet<String> = HashSet::new();
        let mut contacts = Vec::new();
        let mut preselected = Vec::new();
        for p in state.contacts.get(&c.id).map(Vec::as_slice).unwrap_or(&[]) {
            let email = p.emails.first().cloned();
            if let Some(e) = &email
                && !seen.insert(e.folded().to_owned())
            {
                // The same address on two contacts: the first one stands for it.
                continue;
            }
            let cm = email.as_ref().and_then(|e| {
                contact_maps
                    .get(&(c.id.as_str(), e.folded()))
                    .copied()
                    .filter(|m| Some(m.managed_company_id.as_str()) == live_id.as_deref())
            });
            if let Some(m) = cm {
                last_import = last_import.max(Some(m.last_import_at));
                if m.selected
                    && let Some(e) = &email
                {
                    preselected.push(e.as_str().to_owned());
                }
            }
            contacts.push(ContactRow {
                contact_id: p.id.clone(),
                name: format!("{} {}", p.first_name.trim(), p.last_name.trim())
                    .trim()
                    .to_owned(),
                email: email.map(|e| e.as_str().to_owned()),
                invalid_emails: p.invalid_emails.clone(),
                active: p.active,
                imported: cm.is_some(),
                lastpass_user_id: cm.map(|m| m.lastpass_user_id.clone()),
                last_import: cm.map(|m| m.last_import_at),
            });
        }
        let choice = match status {
            ImportStatus::Mapped => CompanyChoice {
                import: true,
                action: CompanyAction::Keep,
                managed_company_id: live_id.clone(),
                emails: preselected,
                map_users: BTreeMap::new(),
                unmap_users: Vec::new(),
            },
            ImportStatus::PotentialDuplicate => {
                let target = duplicates
                    .iter()
                    .find(|d| d.mapped_to_psa_company.is_none() && !claimed.contains(&d.id));
                match target {
                    Some(t) => {
                        claimed.insert(t.id.clone());
                        CompanyChoice {
                            managed_company_id: Some(t.id.clone()),
                            action: CompanyAction::Map,
                            ..create_choice()
                        }
                    }
                    None => create_choice(),
                }
            }
            ImportStatus::Unmapped => create_choice(),
        };
        rows.push(CompanyRow {
            psa_company_id: c.id.clone(),
            name: c.name.clone(),
            import_status: status,
            psa_type: c.company_type.as_ref().map(|t| t.name.clone()),
            psa_status: c.status.as_ref().map(|s| s.name.clone()),
            psa_active: c.active,
            last_import,
            mapped_to,
            duplicates,
            contacts,
            choice,
        });
    }
    sort_rows(&mut rows);

    let mut gone: Vec<GoneRow> = state
        .company_maps
        .iter()
        .filter(|m| m.integration_id == integration && !in_psa.contains(m.psa_company_id.as_str()))
        .map(|m| {
            let live = managed_by_id.get(m.managed_company_id.as_str());
            let mut last = m.last_import_at;
            for c in state.contact_maps.iter().filter(|c| {
                c.psa_company_id == m.psa_company_id && c.managed_company_id == m.managed_company_id
            }) {
                last = last.max(c.last_import_at);
            }
            GoneRow {
                psa_company_id: m.psa_company_id.clone(),
                name: m.psa_company_name.clone(),
                import_status: ImportStatus::Mapped,
                managed_company: MappedRef {
                    id: m.managed_company_id.clone(),
                    name: live.map_or_else(|| m.managed_company_name.clone(), |l| l.name.clone()),
                    exists: live.is_some(),
                },
                last_import: Some(last),
            }
        })
        .collect();
    gone.sort_by(|a, b| {
        name_key(&a.name)
            .cmp(&name_key(&b.name))
            .then_with(|| id_order(&a.psa_company_id, &b.psa_company_id))
    });
    (rows, gone)
}

fn create_choice() -> CompanyChoice {
    CompanyChoice {
        import: true,
        action: CompanyAction::Create,
        managed_company_id: None,
        emails: Vec::new(),
        map_users: BTreeMap::new(),
        unmap_users: Vec::new(),
    }
}

/// Unmapped rows (potential duplicates included) first, then by name and id.
fn sort_rows(rows: &mut [CompanyRow]) {
    rows.sort_by(|a, b| {
        let rank = |r: &CompanyRow| u8::from(r.import_status == ImportStatus::Mapped);
        rank(a)
            .cmp(&rank(b))
            .then_with(|| name_key(&a.name).cmp(&name_key(&b.name)))
            .then_with(|| id_order(&a.psa_company_id, &b.psa_company_id))
    });
}

fn sha_hex(v: &Value) -> String {
    let d = Sha256::digest(v.to_string().as_bytes());
    hex(&d)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The three digests of a plan's facts.
pub fn fingerprint(rows: &[CompanyRow], gone: &[GoneRow]) -> Fingerprint {
    let mut sorted: Vec<&CompanyRow> = rows.iter().collect();
    sorted.sort_by(|a, b| id_order(&a.psa_company_id, &b.psa_company_id));
    let psa: Vec<Value> = sorted
        .iter()
        .map(|r| {
            let contacts: Vec<Value> = r
                .contacts
                .iter()
                .map(|c| {
                    serde_json::json!([c.contact_id, c.name, c.email, c.invalid_emails, c.active])
                })
                .collect();
            serde_json::json!([
                r.psa_company_id,
                r.name,
                r.psa_type,
                r.psa_status,
                r.psa_active,
                contacts
            ])
        })
        .collect();
    let lastpass: Vec<Value> = sorted
        .iter()
        .map(|r| {
            let d: Vec<Value> = r
                .duplicates
                .iter()
                .map(|d| serde_json::json!([d.id, d.name]))
                .collect();
            let m = r
                .mapped_to
                .as_ref()
                .map(|m| serde_json::json!([m.id, m.name, m.exists]));
            serde_json::json!([r.psa_company_id, m, d])
        })
        .chain(gone.iter().map(|g| {
            serde_json::json!([
                g.psa_company_id,
                g.managed_company.id,
                g.managed_company.exists
            ])
        }))
        .collect();
    let mappings: Vec<Value> = sorted
        .iter()
        .map(|r| {
            let c: Vec<Value> = r
                .contacts
                .iter()
                .filter(|c| c.imported)
                .map(|c| serde_json::json!([c.email, c.lastpass_user_id]))
                .collect();
            serde_json::json!([r.psa_company_id, r.mapped_to.as_ref().map(|m| &m.id), c])
        })
        .chain(
            gone.iter()
                .map(|g| serde_json::json!([g.psa_company_id, g.managed_company.id])),
        )
        .collect();
    Fingerprint {
        psa: sha_hex(&Value::Array(psa)),
        lastpass: sha_hex(&Value::Array(lastpass)),
        mappings: sha_hex(&Value::Array(mappings)),
    }
}

// ---- integrity --------------------------------------------------------------------------------

/// The public id of a plan key (so a plan from another store is told apart from an altered one).
pub fn key_id(key: &PlanKey) -> String {
    let mut h = Sha256::new();
    h.update(b"lpbridge msp plan key id v1\0");
    h.update(key.0);
    hex(&h.finalize()[..8])
}

impl Plan {
    /// The signed bytes: the plan as JSON without its choices and its tag.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("tag");
            if let Some(Value::Array(rows)) = m.get_mut("companies_in_psa") {
                for r in rows {
                    if let Value::Object(r) = r {
                        r.remove("choice");
                    }
                }
            }
        }
        v.to_string().into_bytes()
    }

    fn compute_tag(&self, key: &PlanKey) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"lpbridge msp plan v1\0");
        mac.update(&self.signed_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Sets the tag.
    pub fn sign(&mut self, key: &PlanKey) {
        self.tag = hex(&self.compute_tag(key));
    }

    /// Refuses a plan of another format, another store, or with altered facts.
    pub fn verify(&self, key: &PlanKey) -> Result<(), MspError> {
        if self.version != PLAN_VERSION {
            return Err(MspError::Foreign(format!(
                "the plan has format version {}; this lpbridge reads version {PLAN_VERSION}",
                self.version
            )));
        }
        if self.store_key_id != key_id(key) {
            return Err(MspError::Foreign(format!(
                "the plan was made by another lpbridge installation (its key id is {:?}, this \
                 store's is {:?})",
                lp_types::shown(&self.store_key_id),
                key_id(key)
            )));
        }
        let want = hex(&self.compute_tag(key));
        if !crate::crypto::constant_time_eq(want.as_bytes(), self.tag.as_bytes()) {
            return Err(MspError::Tampered(
                "its integrity tag does not match its content: only the `choice` objects may be \
                 edited"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Parses a plan file; a malformed one is refused naming the JSON path.
    pub fn from_json(bytes: &[u8]) -> Result<Plan, MspError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            MspError::Invalid(vec![InvalidValue::new(
                if path == "." { "plan".to_owned() } else { path },
                "…",
                format!("is not a valid plan: {inner}"),
            )])
        })
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Hex SHA-256 of the signed content (the runs table keeps it).
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.signed_bytes()))
    }

    /// The row of a company reference: its PSA id, or its name when exactly one row has it.
    pub fn find_row(&self, reference: &str) -> Result<usize, InvalidValue> {
        let r = reference.trim();
        if let Some(i) = self
            .companies_in_psa
            .iter()
            .position(|c| c.psa_company_id == r)
        {
            return Ok(i);
        }
        let named: Vec<usize> = self
            .companies_in_psa
            .iter()
            .enumerate()
            .filter(|(_, c)| name_key(&c.name) == name_key(r))
            .map(|(i, _)| i)
            .collect();
        match named.as_slice() {
            [i] => Ok(*i),
            [] => Err(InvalidValue::new(
                "company",
                reference,
                format!(
                    "is not a company in {} of this plan (give its PSA id or exact name)",
                    self.psa_name
                ),
            )),
            many => Err(InvalidValue::new(
                "company",
                reference,
                format!(
                    "names {} companies (PSA ids {}): give the PSA id",
                    many.len(),
                    many.iter()
                        .map(|i| self.companies_in_psa[*i].psa_company_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

// ---- edits (CLI flags, the wizard's PATCH bodies) ------------------------------------------

/// One change to a plan's choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Map COMPANY to an existing managed company.
    Map { company: String, managed_id: String },
    /// Unmap COMPANY and create it as a new managed company.
    Unmap { company: String },
    /// Create a new managed company for COMPANY.
    Create { company: String },
    /// Keep COMPANY's mapping.
    Keep { company: String },
    /// Leave COMPANY out of (or take it into) this import.
    Import { company: String, import: bool },
    /// The e-mails of COMPANY granted access (replaces the selection).
    Emails {
        company: String,
        emails: Vec<String>,
    },
    /// Every active contact with an e-mail, in every company of the import.
    AllEmails,
    /// Map COMPANY's contact EMAIL to the existing LastPass user USER.
    MapUser {
        company: String,
        email: String,
        user_id: String,
    },
    /// Unmap COMPANY's contact EMAIL and create it as a new user.
    UnmapUser { company: String, email: String },
}

/// Applies edits to the choices (facts never change). Every problem is collected.
pub fn apply_edits(plan: &mut Plan, edits: &[Edit]) -> Result<(), MspError> {
    let mut problems = Vec::new();
    for e in edits {
        if let Err(p) = apply_edit(plan, e) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MspError::Invalid(problems))
    }
}

fn parse_email(field: &'static str, v: &str) -> Result<Email, InvalidValue> {
    Email::parse_field(field, v)
}

fn apply_edit(plan: &mut Plan, e: &Edit) -> Result<(), InvalidValue> {
    match e {
        Edit::AllEmails => {
            for r in &mut plan.companies_in_psa {
                if !r.choice.import {
                    continue;
                }
                let mut set: Vec<String> = r.choice.emails.clone();
                for c in r.contacts.iter().filter(|c| c.active) {
                    if let Some(e) = &c.email
                        && !set.iter().any(|s| s.eq_ignore_ascii_case(e))
                    {
                        set.push(e.clone());
                    }
                }
                r.choice.emails = set;
            }
            Ok(())
        }
        Edit::Map {
            company,
            managed_id,
        } => {
            let i = plan.find_row(company)?;
            let c = &mut plan.companies_in_psa[i].choice;
            if managed_id.trim().is_empty() {
                return Err(InvalidValue::new(
                    "managed company id",
                    managed_id.as_str(),
                    "must not be empty",
                ));
            }
            c.action = CompanyAction::Map;
            c.managed_company_id = Some(managed_id.trim().to_owned());
            c.import = true;
            Ok(())
        }
        Edit::Unmap { company } | Edit::Create { company } => {
            let i = plan.find_row(company)?;
            let c = &mut plan.companies_in_psa[i].choice;
            c.action = if matches!(e, Edit::Unmap { .. }) {
                CompanyAction::Unmap
            } else {
                CompanyAction::Create
            };
            c.managed_company_id = None;
            c.map_users.clear();
            c.import = true;
            Ok(())
        }
        Edit::Keep { company } => {
            let i = plan.find_row(company)?;
            let row = &mut plan.companies_in_psa[i];
            let Some(m) = row.live_mapping().cloned() else {
                return Err(InvalidValue::new(
                    "company",
                    company.as_str(),
                    "is not mapped: choose create or map",
                ));
            };
            row.choice.action = CompanyAction::Keep;
            row.choice.managed_company_id = Some(m.id);
            row.choice.import = true;
            Ok(())
        }
        Edit::Import { company, import } => {
            let i = plan.find_row(company)?;
            plan.companies_in_psa[i].choice.import = *import;
            Ok(())
        }
        Edit::Emails { company, emails } => {
            let i = plan.find_row(company)?;
            let mut list = Vec::new();
            for v in emails {
                let e = parse_email("email", v)?;
                if !list
                    .iter()
                    .any(|x: &String| x.eq_ignore_ascii_case(e.as_str()))
                {
                    list.push(e.as_str().to_owned());
                }
            }
            plan.companies_in_psa[i].choice.emails = list;
            Ok(())
        }
        Edit::MapUser {
            company,
            email,
            user_id,
        } => {
            let i = plan.find_row(company)?;
            let e = parse_email("email", email)?;
            if user_id.trim().is_empty() {
                return Err(InvalidValue::new(
                    "lastpass user id",
                    user_id.as_str(),
                    "must not be empty",
                ));
            }
            let c = &mut plan.companies_in_psa[i].choice;
            c.map_users
                .insert(e.as_str().to_owned(), user_id.trim().to_owned());
            c.unmap_users
                .retain(|u| !u.eq_ignore_ascii_case(e.as_str()));
            Ok(())
        }
        Edit::UnmapUser { company, email } => {
            let i = plan.find_row(company)?;
            let e = parse_email("email", email)?;
            let c = &mut plan.companies_in_psa[i].choice;
            c.map_users
                .retain(|k, _| !k.eq_ignore_ascii_case(e.as_str()));
            if !c
                .unmap_users
                .iter()
                .any(|u| u.eq_ignore_ascii_case(e.as_str()))
            {
                c.unmap_users.push(e.as_str().to_owned());
            }
            if !c.emails.iter().any(|u| u.eq_ignore_ascii_case(e.as_str())) {
                c.emails.push(e.as_str().to_owned());
            }
            Ok(())
        }
    }
}

// ---- validation -------------------------------------------------------------------------------

/// The e-mails a row's choice grants access to: `emails` plus the mapped and unmapped users.
pub fn selected_emails(row: &CompanyRow) -> Result<Vec<Email>, InvalidValue> {
    let mut out: Vec<Email> = Vec::new();
    let all = row
        .choice
        .emails
        .iter()
        .chain(row.choice.map_users.keys())
        .chain(row.choice.unmap_users.iter());
    for v in all {
        let e = Email::parse(v)?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Checks every choice against the plan's facts and the current managed companies
/// (`managed`: id → name). Returns every problem (empty: valid).
pub fn validate(plan: &Plan, managed: &HashMap<String, String>) -> Vec<InvalidValue> {
    let mut problems = Vec::new();
    // Managed company → the PSA companies that would be mapped to it.
    let mut claims: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in &plan.companies_not_in_psa {
        claims
            .entry(g.managed_company.id.clone())
            .or_default()
            .push(format!("{} ({})", g.name, g.psa_company_id));
    }
    for (i, row) in plan.companies_in_psa.iter().enumerate() {
        let at = |field: &str| format!("companies_in_psa[{i}].choice.{field}");
        let label = format!("{:?} (PSA id {})", row.name, row.psa_company_id);
        let c = &row.choice;
        if !c.import {
            if let Some(m) = row.live_mapping() {
                claims
                    .entry(m.id.clone())
                    .or_default()
                    .push(format!("{} ({})", row.name, row.psa_company_id));
            }
            continue;
        }
        let target = match c.action {
            CompanyAction::Keep => match row.live_mapping() {
                Some(m) => {
                    if c.managed_company_id.as_deref().is_some_and(|id| id != m.id) {
                        problems.push(InvalidValue::new(
                            at("managed_company_id"),
                            c.managed_company_id.clone().unwrap_or_default(),
                            format!(
                                "differs from the current mapping ({}) of {label}: use action \
                                 map to change it",
                                m.id
                            ),
                        ));
                    }
                    Some(m.id.clone())
                }
                None => {
                    problems.push(InvalidValue::new(
                        at("action"),
                        "keep",
                        format!("{label} is not mapped: choose create or map"),
                    ));
                    None
                }
            },
            CompanyAction::Map => match c.managed_company_id.as_deref().map(str::trim) {
                None | Some("") => {
                    problems.push(InvalidValue::new(
                        at("managed_company_id"),
                        "",
                        format!("is required with action map ({label})"),
                    ));
                    None
                }
                Some(id) if !managed.contains_key(id) => {
                    problems.push(InvalidValue::new(
                        at("managed_company_id"),
                        id,
                        format!(
                            "is not a managed company of the MSP account (unknown id; {label})"
                        ),
                    ));
                    None
                }
                Some(id) => Some(id.to_owned()),
            },
            CompanyAction::Create | CompanyAction::Unmap => {
                if let Some(id) = &c.managed_company_id {
                    problems.push(InvalidValue::new(
                        at("managed_company_id"),
                        id.as_str(),
                        format!(
                            "is only for action map or keep; action {} makes a new managed \
                             company ({label})",
                            c.action.as_str()
                        ),
                    ));
                }
                if c.action == CompanyAction::Unmap
                    && row.live_mapping().is_none()
                    && row.duplicates.is_empty()
                {
                    problems.push(InvalidValue::new(
                        at("action"),
                        "unmap",
                        format!("{label} is not mapped: use create"),
                    ));
                }
                if !c.map_users.is_empty() {
                    problems.push(InvalidValue::new(
                        at("map_users"),
                        c.map_users.keys().cloned().collect::<Vec<_>>().join(","),
                        format!(
                            "users can only be mapped in an existing managed company (action \
                             map or keep), and {label} gets a new one"
                        ),
                    ));
                }
                None
            }
        };
        if let Some(t) = target {
            claims
                .entry(t)
                .or_default()
                .push(format!("{} ({})", row.name, row.psa_company_id));
        }
        // E-mails.
        let mut seen: HashSet<String> = HashSet::new();
        let lists: [(&str, Vec<&String>); 3] = [
            ("emails", c.emails.iter().collect()),
            ("map_users", c.map_users.keys().collect()),
            ("unmap_users", c.unmap_users.iter().collect()),
        ];
        for (field, list) in lists {
            for (j, v) in list.into_iter().enumerate() {
                let path = format!("{}[{j}]", at(field));
                let email = match Email::parse(v) {
                    Ok(e) => e,
                    Err(e) => {
                        problems.push(InvalidValue::new(path, v.as_str(), e.reason));
                        continue;
                    }
                };
                let Some(contact) = row.contact(&email) else {
                    problems.push(InvalidValue::new(
                        path,
                        v.as_str(),
                        format!("is not the e-mail of a contact of {label} (unknown contact)"),
                    ));
                    continue;
                };
                if field == "emails" && !seen.insert(email.folded().to_owned()) {
                    problems.push(InvalidValue::new(
                        path.clone(),
                        v.as_str(),
                        "is listed twice",
                    ));
                }
                if field == "unmap_users" && !contact.imported {
                    problems.push(InvalidValue::new(
                        path,
                        v.as_str(),
                        format!("was not imported before, so there is nothing to unmap ({label})"),
                    ));
                }
            }
        }
        for (email, uid) in &c.map_users {
            if uid.trim().is_empty() {
                problems.push(InvalidValue::new(
                    format!("{}[{email}]", at("map_users")),
                    uid.as_str(),
                    "must be a LastPass user id",
                ));
            }
        }
    }
    for (managed_id, companies) in claims {
        if companies.len() > 1 {
            let name = managed.get(&managed_id).cloned().unwrap_or_default();
            problems.push(InvalidValue::new(
                "managed_company_id",
                managed_id.clone(),
                format!(
                    "two PSA companies cannot be mapped to one managed company: {} would all be \
                     mapped to {managed_id} {name:?}",
                    companies.join(", ")
                ),
            ));
        }
    }
    problems
}

// ---- staleness --------------------------------------------------------------------------------

/// The managed company a row ends up mapped to through this plan, when known: the chosen one
/// (map, keep) or the one this plan's own run created (from the journal).
fn intended_target(
    plan: &Plan,
    row: &CompanyRow,
    journal: &HashMap<&str, &JournalEntry>,
) -> Option<String> {
    match row.choice.action {
        CompanyAction::Map => row.choice.managed_company_id.clone(),
        CompanyAction::Keep => row.live_mapping().map(|m| m.id.clone()),
        CompanyAction::Create | CompanyAction::Unmap => journal
            .get(company_step(&row.psa_company_id).as_str())
            .filter(|j| j.plan_id == plan.plan_id)
            .and_then(|j| j.result_id.clone()),
    }
}

/// The journal step name of a company.
pub fn company_step(psa_company_id: &str) -> String {
    format!("company:{psa_company_id}")
}

/// What changed between `plan` and `fresh` (rows rebuilt from the current state), leaving out
/// what this plan's own earlier, interrupted runs did (from `journal`). Empty: not stale.
pub fn stale_changes(
    plan: &Plan,
    fresh: &[CompanyRow],
    fresh_gone: &[GoneRow],
    journal: &[JournalEntry],
) -> Vec<String> {
    let journal: HashMap<&str, &JournalEntry> =
        journal.iter().map(|j| (j.step.as_str(), j)).collect();
    let mut out = Vec::new();
    let psa = &plan.psa_name;
    let fresh_by_id: HashMap<&str, &CompanyRow> = fresh
        .iter()
        .map(|r| (r.psa_company_id.as_str(), r))
        .collect();
    let plan_ids: HashSet<&str> = plan
        .companies_in_psa
        .iter()
        .map(|r| r.psa_company_id.as_str())
        .collect();
    // Managed companies this plan maps to or created (its own runs' doing, not a change), and
    // the names whose create is in doubt (a same-named company may appear any time).
    let own: HashSet<String> = plan
        .companies_in_psa
        .iter()
        .filter_map(|r| intended_target(plan, r, &journal))
        .collect();
    let in_doubt_names: HashSet<String> = plan
        .companies_in_psa
        .iter()
        .filter(|r| {
            journal
                .get(company_step(&r.psa_company_id).as_str())
                .is_some_and(|j| matches!(j.state, StepState::Intent | StepState::Requested))
        })
        .map(|r| name_key(&r.name))
        .collect();
    for p in &plan.companies_in_psa {
        let who = format!("{psa} company {} {:?}", p.psa_company_id, p.name);
        let Some(f) = fresh_by_id.get(p.psa_company_id.as_str()) else {
            out.push(format!(
                "{who} no longer matches the filter (or was removed from {psa})"
            ));
            continue;
        };
        // PSA facts.
        if f.name != p.name {
            out.push(format!("{who} was renamed to {:?} in {psa}", f.name));
        }
        if f.psa_type != p.psa_type {
            out.push(format!(
                "{who}: type changed from {:?} to {:?}",
                p.psa_type, f.psa_type
            ));
        }
        if f.psa_status != p.psa_status || f.psa_active != p.psa_active {
            out.push(format!(
                "{who}: status changed from {:?} (active: {}) to {:?} (active: {})",
                p.psa_status, p.psa_active, f.psa_status, f.psa_active
            ));
        }
        let key = |c: &ContactRow| {
            (
                c.contact_id.clone(),
                c.email.clone(),
                c.active,
                c.name.clone(),
            )
        };
        let before: BTreeSet<_> = p.contacts.iter().map(key).collect();
        let after: BTreeSet<_> = f.contacts.iter().map(key).collect();
        if before != after {
            let added: Vec<String> = after
                .difference(&before)
                .map(|c| c.1.clone().unwrap_or_else(|| format!("contact {}", c.0)))
                .collect();
            let removed: Vec<String> = before
                .difference(&after)
                .map(|c| c.1.clone().unwrap_or_else(|| format!("contact {}", c.0)))
                .collect();
            out.push(format!(
                "{who}: contacts changed in {psa} (new or changed: [{}]; gone or changed: [{}])",
                added.join(", "),
                removed.join(", ")
            ));
        }
        // Mappings and LastPass.
        let intended = intended_target(plan, p, &journal);
        let pm = p.mapped_to.as_ref().map(|m| m.id.as_str());
        let fm = f.mapped_to.as_ref().map(|m| m.id.as_str());
        if pm != fm && !(fm.is_some() && fm == intended.as_deref()) {
            out.push(format!(
                "{who}: its mapping changed since the plan was made (was {}, now {}): another \
                 import ran",
                pm.unwrap_or("none"),
                fm.unwrap_or("none")
            ));
        }
        if let (Some(a), Some(b)) = (&p.mapped_to, &f.mapped_to)
            && a.id == b.id
            && a.exists != b.exists
        {
            out.push(if b.exists {
                format!(
                    "managed company {} (mapped to {who}) is back in LastPass",
                    b.id
                )
            } else {
                format!(
                    "managed company {} {:?} (mapped to {who}) no longer exists in LastPass",
                    a.id, a.name
                )
            });
        }
        let in_doubt = in_doubt_names.contains(&name_key(&p.name));
        let pd: HashSet<&str> = p.duplicates.iter().map(|d| d.id.as_str()).collect();
        let fd: HashSet<&str> = f.duplicates.iter().map(|d| d.id.as_str()).collect();
        if !in_doubt {
            for d in f.duplicates.iter().filter(|d| !pd.contains(d.id.as_str())) {
                if own.contains(&d.id) || Some(d.id.as_str()) == pm {
                    continue;
                }
                out.push(format!(
                    "managed company {} {:?} was added in LastPass with the name of {who}",
                    d.id, d.name
                ));
            }
        }
        for d in p.duplicates.iter().filter(|d| !fd.contains(d.id.as_str())) {
            if Some(d.id.as_str()) == fm {
                continue;
            }
            out.push(format!(
                "managed company {} {:?} (same name as {who}) was removed or renamed in LastPass",
                d.id, d.name
            ));
        }
        let chosen: HashSet<String> = selected_emails(p)
            .map(|v| v.into_iter().map(|e| e.folded().to_owned()).collect())
            .unwrap_or_default();
        let imported = |r: &CompanyRow| -> HashMap<String, Option<String>> {
            r.contacts
                .iter()
                .filter(|c| c.imported)
                .filter_map(|c| {
                    c.email
                        .as_ref()
                        .map(|e| (e.to_lowercase(), c.lastpass_user_id.clone()))
                })
                .collect()
        };
        let (pi, fi) = (imported(p), imported(f));
        for (email, uid) in &fi {
            if pi.get(email) != Some(uid) && !chosen.contains(email) && fm == pm {
                out.push(format!(
                    "{who}: contact {email} was imported by another run"
                ));
            }
        }
        for email in pi.keys() {
            if !fi.contains_key(email) && fm == pm {
                out.push(format!("{who}: the mapping of contact {email} was removed"));
            }
        }
    }
    for f in fresh
        .iter()
        .filter(|f| !plan_ids.contains(f.psa_company_id.as_str()))
    {
        out.push(format!(
            "{psa} company {} {:?} now matches the filter",
            f.psa_company_id, f.name
        ));
    }
    let gone_key = |g: &GoneRow| {
        (
            g.psa_company_id.clone(),
            g.managed_company.id.clone(),
            g.managed_company.exists,
        )
    };
    let before: BTreeSet<_> = plan.companies_not_in_psa.iter().map(gone_key).collect();
    let after: BTreeSet<_> = fresh_gone
        .iter()
        .filter(|g| !plan_ids.contains(g.psa_company_id.as_str()))
        .map(gone_key)
        .collect();
    for g in after.difference(&before) {
        out.push(format!(
            "companies not in {psa}: PSA company {} (mapped to managed company {}{}) is new or changed",
            g.0,
            g.1,
            if g.2 { "" } else { ", which no longer exists" }
        ));
    }
    for g in before.difference(&after) {
        out.push(format!(
            "companies not in {psa}: PSA company {} (mapped to managed company {}) is gone or changed",
            g.0, g.1
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PlanKey {
        PlanKey([7; 32])
    }

    fn row(id: &str, name: &str, status: ImportStatus) -> CompanyRow {
        CompanyRow {
            psa_company_id: id.into(),
            name: name.into(),
            import_status: status,
            psa_type: Some("Client".into()),
            psa_status: Some("Active".into()),
            psa_active: true,
            last_import: None,
            mapped_to: None,
            duplicates: vec![],
            contacts: vec![ContactRow {
                contact_id: format!("{id}0"),
                name: "Ann".into(),
                email: Some(format!("ann@{id}.example")),
                invalid_emails: vec![],
                active: true,
                imported: false,
                lastpass_user_id: None,
                last_import: None,
            }],
            choice: create_choice(),
        }
    }

    fn plan(rows: Vec<CompanyRow>) -> Plan {
        let mut p = Plan {
            version: PLAN_VERSION,
            plan_id: "p1".into(),
            integration: "cw".into(),
            psa: PsaKind::ConnectWise,
            psa_name: "ConnectWise Manage".into(),
            filter: CompanyFilter::default(),
            created_at: Utc::now(),
            fingerprint: fingerprint(&rows, &[]),
            store_key_id: key_id(&key()),
            companies_in_psa: rows,
            companies_not_in_psa: vec![],
            tag: String::new(),
        };
        p.sign(&key());
        p
    }

    #[test]
    fn statuses_use_the_products_spelling() {
        assert_eq!(
            serde_json::to_value(ImportStatus::PotentialDuplicate).unwrap(),
            "Unmapped \u{2013} potential duplicate"
        );
        assert_eq!(ImportStatus::Mapped.as_str(), "Mapped");
    }

    #[test]
    fn choices_are_editable_facts_are_not() {
        let mut p = plan(vec![row("1", "Acme", ImportStatus::Unmapped)]);
        p.verify(&key()).unwrap();
        let back = Plan::from_json(p.to_json().as_bytes()).unwrap();
        back.verify(&key()).unwrap();
        p.companies_in_psa[0].choice.emails = vec!["ann@1.example".into()];
        p.verify(&key()).unwrap();
        p.companies_in_psa[0].name = "Evil".into();
        assert!(matches!(p.verify(&key()), Err(MspError::Tampered(_))));
        let p = plan(vec![row("1", "Acme", ImportStatus::Unmapped)]);
        assert!(matches!(
            p.verify(&PlanKey([8; 32])),
            Err(MspError::Foreign(_))
        ));
        assert!(matches!(
            Plan::from_json(br#"{"version":1}"#),
            Err(MspError::Invalid(_))
        ));
    }

    #[test]
    fn edits_and_validation_name_field_and_value() {
        let mut p = plan(vec![
            row("1", "Acme", ImportStatus::Unmapped),
            row("2", "Beta", ImportStatus::Unmapped),
        ]);
        let managed: HashMap<String, String> = [("900".to_string(), "Acme".to_string())].into();
        apply_edits(
            &mut p,
            &[
                Edit::Map {
                    company: "1".into(),
                    managed_id: "900".into(),
                },
                Edit::Map {
                    company: "Beta".into(),
                    managed_id: "900".into(),
                },
            ],
        )
        .unwrap();
        let problems = validate(&p, &managed);
        assert!(
            problems
                .iter()
                .any(|e| e.reason.contains("two PSA companies")),
            "{problems:?}"
        );
        let e = apply_edits(
            &mut p,
            &[Edit::Emails {
                company: "1".into(),
                emails: vec!["not-an-email".into()],
            }],
        )
        .unwrap_err();
        assert!(e.to_string().contains("not-an-email"), "{e}");
        assert!(
            apply_edits(
                &mut p,
                &[Edit::Unmap {
                    company: "nope".into()
                }]
            )
            .is_err()
        );
        p.companies_in_psa[1].choice = create_choice();
        p.companies_in_psa[0].choice.emails = vec!["bob@1.example".into()];
        let problems = validate(&p, &managed);
        assert!(
            problems
                .iter()
                .any(|e| e.value == "bob@1.example" && e.reason.contains("unknown contact")),
            "{problems:?}"
        );
        p.companies_in_psa[0].choice.managed_company_id = Some("999".into());
        p.companies_in_psa[0].choice.emails.clear();
        let problems = validate(&p, &managed);
        assert!(
            problems
                .iter()
                .any(|e| e.value == "999" && e.reason.contains("unknown id")),
            "{problems:?}"
        );
    }

    #[test]
    fn companies_this_plan_created_are_not_changes() {
        // Two PSA companies named alike: the company created for one shows as a same-named
        // managed company of the other after an interrupted run; that is not a change.
        let p = plan(vec![
            row("1", "Acme", ImportStatus::Unmapped),
            row("2", "Acme", ImportStatus::Unmapped),
        ]);
        let mut fresh = p.companies_in_psa.clone();
        fresh[0].mapped_to = Some(MappedRef {
            id: "901".into(),
            name: "Acme".into(),
            exists: true,
        });
        fresh[1].duplicates.push(ManagedRef {
            id: "901".into(),
            name: "Acme".into(),
            mapped_to_psa_company: Some("1".into()),
        });
        let done = JournalEntry {
            integration_id: "cw".into(),
            step: company_step("1"),
            plan_id: p.plan_id.clone(),
            run_id: "r".into(),
            state: StepState::Done,
            request_id: None,
            request_url: None,
            result_id: Some("901".into()),
            intent_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert!(stale_changes(&p, &fresh, &[], &[done]).is_empty());
        // Without the journal (another run did it), both are changes.
        let c = stale_changes(&p, &fresh, &[], &[]);
        assert_eq!(c.len(), 2, "{c:?}");
    }

    #[test]
    fn staleness_names_what_changed() {
        let p = plan(vec![row("1", "Acme", ImportStatus::Unmapped)]);
        assert!(stale_changes(&p, &p.companies_in_psa, &[], &[]).is_empty());
        let mut fresh = p.companies_in_psa.clone();
        fresh[0].name = "Acme Inc".into();
        fresh[0].duplicates.push(ManagedRef {
            id: "901".into(),
            name: "Acme".into(),
            mapped_to_psa_company: None,
        });
        fresh.push(row("3", "Gamma", ImportStatus::Unmapped));
        let c = stale_changes(&p, &fresh, &[], &[]);
        assert!(c.iter().any(|l| l.contains("renamed")), "{c:?}");
        assert!(c.iter().any(|l| l.contains("901")), "{c:?}");
        assert!(c.iter().any(|l| l.contains("now matches")), "{c:?}");
    }
}
