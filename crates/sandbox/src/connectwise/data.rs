//! The emulated tenant's records (companies, contacts, setup tables), their deterministic seed,
//! the field schemas the conditions language resolves against, and their JSON shapes
//! (`Company`, `Contact`, `CompanyType`, `CompanyStatus` as in the generated models, spec §1.4-§1.5).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::conditions::{FieldType, Record, Scalar, Schema};

/// 2019-11-04T16:41:20Z: seed timestamps are offsets from here (never the wall clock).
const SEED_EPOCH: i64 = 1_572_885_680;

/// A company type (setup table `company/companies/types`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyType {
    pub id: u32,
    pub name: String,
    #[serde(default)]
    pub default_flag: bool,
    #[serde(default)]
    pub vendor_flag: bool,
}

/// A company status (setup table `company/companies/statuses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyStatus {
    pub id: u32,
    pub name: String,
    #[serde(default)]
    pub default_flag: bool,
    #[serde(default)]
    pub inactive_flag: bool,
}

/// The default company types (**GUESS**: a fresh tenant's list, spec §1.4).
pub fn default_types() -> Vec<CompanyType> {
    let t = |id, name: &str, default_flag, vendor_flag| CompanyType {
        id,
        name: name.to_string(),
        default_flag,
        vendor_flag,
    };
    vec![
        t(1, "Client", true, false),
        t(2, "Prospect", false, false),
        t(3, "Vendor", false, true),
        t(4, "Partner", false, false),
        t(5, "Competitor", false, false),
        t(6, "Former Client", false, false),
    ]
}

/// The default company statuses (**GUESS**, spec §1.4). `Inactive` has `inactiveFlag`.
pub fn default_statuses() -> Vec<CompanyStatus> {
    let s = |id, name: &str, default_flag, inactive_flag| CompanyStatus {
        id,
        name: name.to_string(),
        default_flag,
        inactive_flag,
    };
    vec![
        s(1, "Active", true, false),
        s(2, "Inactive", false, true),
        s(3, "Not-Approved", false, false),
        s(4, "Credit Hold", false, false),
        s(5, "Imported", false, false),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub id: u64,
    pub identifier: String,
    pub name: String,
    pub status_id: u32,
    pub type_ids: Vec<u32>,
    pub deleted: bool,
    pub date_deleted: Option<i64>,
    pub city: String,
    pub state: String,
    pub phone: String,
    pub website: String,
    pub lead_flag: bool,
    pub date_entered: i64,
    pub last_updated: i64,
}

/// `communicationType` of a communication item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommKind {
    Email,
    Phone,
    Fax,
}

impl CommKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommKind::Email => "Email",
            CommKind::Phone => "Phone",
            CommKind::Fax => "Fax",
        }
    }

    /// The tenant's communication type `{id, name}` used for this kind (setup data).
    fn type_ref(self) -> (u32, &'static str) {
        match self {
            CommKind::Email => (1, "Email"),
            CommKind::Phone => (2, "Direct"),
            CommKind::Fax => (4, "Fax"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comm {
    pub id: u64,
    pub kind: CommKind,
    pub value: String,
    pub default_flag: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: u64,
    pub company_id: u64,
    pub first_name: String,
    pub last_name: String,
    pub title: Option<String>,
    pub inactive: bool,
    pub default_flag: bool,
    pub comms: Vec<Comm>,
    pub date_entered: i64,
    pub last_updated: i64,
}

/// All records of the tenant. Companies and contacts are kept in id order (the API's default
/// order and the forward-only key); `by_company` indexes contacts for `company/id` conditions.
#[derive(Debug, Clone, Default)]
pub struct Data {
    pub types: Vec<CompanyType>,
    pub statuses: Vec<CompanyStatus>,
    pub companies: BTreeMap<u64, Company>,
    pub contacts: BTreeMap<u64, Contact>,
    pub by_company: HashMap<u64, BTreeSet<u64>>,
    pub next_company_id: u64,
    pub next_contact_id: u64,
    pub next_comm_id: u64,
    /// Bumped by every control-API change (`lastUpdated` of changed records).
    pub clock: i64,
}

const ADJ: &[&str] = &[
    "Blue",
    "Summit",
    "North",
    "Bright",
    "Pioneer",
    "Silver",
    "Cedar",
    "Harbor",
    "Granite",
    "Prairie",
    "Coastal",
    "Golden",
    "Evergreen",
    "Redwood",
    "Lakeside",
    "Metro",
    "Apex",
    "Union",
    "Liberty",
    "Oak",
    "Maple",
    "River",
    "Sterling",
    "Frontier",
];
const NOUN: &[&str] = &[
    "Dental",
    "Logistics",
    "Law",
    "Accounting",
    "Medical",
    "Realty",
    "Construction",
    "Bakery",
    "Insurance",
    "Engineering",
    "Veterinary",
    "Pharmacy",
    "Marketing",
    "Consulting",
    "Design",
    "Motors",
    "Foods",
    "Labs",
    "Capital",
    "Energy",
];
const SUFFIX: &[&str] = &["LLC", "Inc", "Group", "Partners", "Co", "Associates", "Ltd"];
const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Aiko",
    "Priya",
    "Olga",
    "Kwame",
    "Zoë",
    "Sean",
    "Fatima",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "O'Brien",
    "Nguyen",
    "Kowalski",
    "Okafor",
    "Tanaka",
    "Müller",
];
const CITY: &[(&str, &str)] = &[
    ("Irving", "TX"),
    ("Tampa", "FL"),
    ("Denver", "CO"),
    ("Portland", "OR"),
    ("Columbus", "OH"),
    ("Raleigh", "NC"),
    ("Boise", "ID"),
    ("Madison", "WI"),
];
const TITLE: &[&str] = &[
    "Office Manager",
    "CEO",
    "CPA, MBA",
    "IT Contact",
    "Owner",
    "Director",
];

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

fn slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// A mailbox-safe ASCII rendering of a name part (`Zoë` → `zo`, `O'Brien` → `obrien`).
fn local(s: &str) -> String {
    let v = slug(s);
    if v.is_empty() { "x".to_string() } else { v }
}

/// Seeds `companies` companies and `contacts` contacts deterministically from `seed`.
///
/// Mix (by construction, not exact percentages): types mostly Client, some Prospect / Vendor /
/// Partner / Competitor, a few with two types or none; statuses mostly Active, some Inactive and
/// others; ~2% deleted; ~2% duplicate names; ~5% companies without contacts; contacts with zero
/// (~12%), one, two or three e-mails, ~8% inactive, ~1% sharing another contact's e-mail, ~1% of
/// e-mail values not valid addresses, and a default e-mail that is sometimes not the first item.
pub fn seed(
    companies: usize,
    contacts: usize,
    seed: u64,
    types: Vec<CompanyType>,
    statuses: Vec<CompanyStatus>,
) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636f_6e6e_6563_7477);
    let mut d = Data {
        types,
        statuses,
        companies: BTreeMap::new(),
        contacts: BTreeMap::new(),
        by_company: HashMap::with_capacity(companies),
        next_company_id: 250,
        next_contact_id: 1,
        next_comm_id: 1,
        clock: SEED_EPOCH + 200 * 86_400,
    };
    let type_id = |rng: &mut ChaCha8Rng, d: &Data| -> Vec<u32> {
        if d.types.is_empty() {
            return vec![];
        }
        let n = d.types.len();
        let roll = rng.gen_range(0..100);
        let i = match roll {
            0..=69 => 0,
            70..=79 => 1 % n,
            80..=86 => 2 % n,
            87..=91 => 3 % n,
            92..=94 => 4 % n,
            95..=97 => {
                let a = d.types[0].id;
                let b = d.types[3 % n].id;
                return if a == b { vec![a] } else { vec![a, b] };
            }
            _ => return vec![],
        };
        vec![d.types[i].id]
    };
    let mut company_ids = Vec::with_capacity(companies);
    for i in 0..companies {
        let id = d.next_company_id;
        d.next_company_id += rng.gen_range(1..=3);
        let name = if i > 10 && rng.gen_range(0..100) < 2 {
            // A duplicate name: another company called exactly the same.
            let other = company_ids[rng.gen_range(0..company_ids.len())];
            d.companies
                .get(&other)
                .map(|c: &Company| c.name.clone())
                .unwrap_or_default()
        } else {
            format!(
                "{} {} {}",
                pick(&mut rng, ADJ),
                pick(&mut rng, NOUN),
                pick(&mut rng, SUFFIX)
            )
        };
        let mut identifier: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        identifier.truncate(22);
        identifier.push_str(&id.to_string());
        let status_id = if d.statuses.is_empty() {
            0
        } else {
            let n = d.statuses.len();
            let roll = rng.gen_range(0..100);
            let i = match roll {
                0..=79 => 0,
                80..=89 => 1 % n,
                90..=93 => 2 % n,
                94..=96 => 3 % n,
                _ => 4 % n,
            };
            d.statuses[i].id
        };
        let type_ids = type_id(&mut rng, &d);
        let deleted = rng.gen_range(0..100) < 2;
        let entered = SEED_EPOCH + rng.gen_range(0..150 * 86_400);
        let (city, state) = CITY[rng.gen_range(0..CITY.len())];
        let c = Company {
            id,
            identifier,
            website: format!("www.{}.com", slug(&name)),
            name,
            status_id,
            type_ids,
            deleted,
            date_deleted: deleted.then_some(entered + 86_400),
            city: city.to_string(),
            state: state.to_string(),
            phone: format!("555{:07}", rng.gen_range(0..10_000_000u32)),
            lead_flag: rng.gen_range(0..100) < 5,
            date_entered: entered,
            last_updated: entered + rng.gen_range(0..30 * 86_400),
        };
        company_ids.push(id);
        d.companies.insert(id, c);
    }
    // ~5% of companies get no contacts at all.
    let with_contacts: Vec<u64> = company_ids
        .iter()
        .copied()
        .filter(|_| rng.gen_range(0..100) >= 5)
        .collect();
    let targets = if with_contacts.is_empty() {
        &company_ids
    } else {
        &with_contacts
    };
    let mut emails_so_far: Vec<(u64, usize)> = Vec::new();
    for _ in 0..contacts {
        if targets.is_empty() {
            break;
        }
        let company_id = targets[rng.gen_range(0..targets.len())];
        let first = pick(&mut rng, FIRST).to_string();
        let last = pick(&mut rng, LAST).to_string();
        let id = d.next_contact_id;
        d.next_contact_id += 1;
        let domain = d
            .companies
            .get(&company_id)
            .map(|c| c.website.trim_start_matches("www.").to_string())
            .unwrap_or_else(|| "example.com".to_string());
        let n_emails = match rng.gen_range(0..100) {
            0..=11 => 0,
            12..=81 => 1,
            82..=96 => 2,
            _ => 3,
        };
        let mut comms = Vec::new();
        if rng.gen_range(0..2) == 0 {
            comms.push(Comm {
                id: 0,
                kind: CommKind::Phone,
                value: format!("813{:07}", rng.gen_range(0..10_000_000u32)),
                default_flag: true,
            });
        }
        let default_idx = if n_emails > 1 && rng.gen_range(0..100) < 10 {
            // Sometimes the default e-mail is not the first Email item, or none is default.
            if rng.gen_range(0..2) == 0 {
                1
            } else {
                usize::MAX
            }
        } else {
            0
        };
        for k in 0..n_emails {
            let value = if k == 0 && !emails_so_far.is_empty() && rng.gen_range(0..100) < 1 {
                // The same e-mail as an earlier contact (possibly of another company).
                let (cid, idx) = emails_so_far[rng.gen_range(0..emails_so_far.len())];
                d.contacts
                    .get(&cid)
                    .and_then(|c| c.comms.get(idx))
                    .map(|c| c.value.clone())
                    .unwrap_or_default()
            } else if rng.gen_range(0..100) < 1 {
                ["n/a", "none", "unknown@", "see notes"][rng.gen_range(0..4)].to_string()
            } else if k == 0 {
                format!("{}.{}{}@{}", local(&first), local(&last), id, domain)
            } else {
                format!(
                    "{}{}.alt{}@{}",
                    local(&first),
                    id,
                    k,
                    ["gmail.com", "outlook.com"][k % 2]
                )
            };
            comms.push(Comm {
                id: 0,
                kind: CommKind::Email,
                value,
                default_flag: k == default_idx,
            });
        }
        if rng.gen_range(0..100) < 3 {
            comms.push(Comm {
                id: 0,
                kind: CommKind::Fax,
                value: format!("555{:07}", rng.gen_range(0..10_000_000u32)),
                default_flag: true,
            });
        }
        for c in &mut comms {
            c.id = d.next_comm_id;
            d.next_comm_id += 1;
        }
        if let Some(idx) = comms.iter().position(|c| c.kind == CommKind::Email)
            && rng.gen_range(0..100) < 5
        {
            emails_so_far.push((id, idx));
        }
        let set = d.by_company.entry(company_id).or_default();
        let default_flag = set.is_empty();
        set.insert(id);
        let entered = SEED_EPOCH + rng.gen_range(0..180 * 86_400);
        d.contacts.insert(
            id,
            Contact {
                id,
                company_id,
                title: (rng.gen_range(0..3) == 0).then(|| pick(&mut rng, TITLE).to_string()),
                first_name: first,
                last_name: last,
                inactive: rng.gen_range(0..100) < 8,
                default_flag,
                comms,
                date_entered: entered,
                last_updated: entered + rng.gen_range(0..10 * 86_400),
            },
        );
    }
    d
}

/// An RFC 3339 UTC timestamp as ConnectWise writes it (`2020-04-30T01:46:24Z`).
pub fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

// ---- schemas: field ids per entity -------------------------------------------------------

/// What a field path means on a company.
pub struct CompanySchema {
    /// `childConditions` (array fields only) instead of `conditions` (scalar fields only).
    pub child: bool,
}

const CO_ID: u16 = 0;
const CO_IDENTIFIER: u16 = 1;
const CO_NAME: u16 = 2;
const CO_STATUS_ID: u16 = 3;
const CO_STATUS_NAME: u16 = 4;
const CO_DELETED: u16 = 5;
const CO_CITY: u16 = 6;
const CO_STATE: u16 = 7;
const CO_PHONE: u16 = 8;
const CO_WEBSITE: u16 = 9;
const CO_LEAD: u16 = 10;
const CO_UPDATED: u16 = 11;
const CO_ENTERED: u16 = 12;
const CO_DATE_DELETED: u16 = 13;
const CO_TYPES_ID: u16 = 20;
const CO_TYPES_NAME: u16 = 21;

impl Schema for CompanySchema {
    fn field(&self, path: &str) -> Option<(u16, FieldType)> {
        use FieldType::*;
        if self.child {
            return match path {
                "types/id" => Some((CO_TYPES_ID, Int)),
                "types/name" => Some((CO_TYPES_NAME, Str)),
                _ => None,
            };
        }
        Some(match path {
            "id" => (CO_ID, Int),
            "identifier" => (CO_IDENTIFIER, Str),
            "name" => (CO_NAME, Str),
            "status/id" => (CO_STATUS_ID, Int),
            "status/name" => (CO_STATUS_NAME, Str),
            "deletedflag" => (CO_DELETED, Bool),
            "city" => (CO_CITY, Str),
            "state" => (CO_STATE, Str),
            "phonenumber" => (CO_PHONE, Str),
            "website" => (CO_WEBSITE, Str),
            "leadflag" => (CO_LEAD, Bool),
            "lastupdated" | "_info/lastupdated" => (CO_UPDATED, Date),
            "dateentered" | "_info/dateentered" => (CO_ENTERED, Date),
            "datedeleted" => (CO_DATE_DELETED, Date),
            _ => return None,
        })
    }
}

/// A company seen by the evaluator (it needs the setup tables for `status/name`, `types/name`).
pub struct CompanyView<'a> {
    pub c: &'a Company,
    pub data: &'a Data,
}

fn opt(s: &str) -> Scalar<'_> {
    if s.is_empty() {
        Scalar::Null
    } else {
        Scalar::Str(s)
    }
}

impl Record for CompanyView<'_> {
    fn any(&self, id: u16, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
        let c = self.c;
        match id {
            CO_ID => f(Scalar::Int(c.id as i64)),
            CO_IDENTIFIER => f(Scalar::Str(&c.identifier)),
            CO_NAME => f(Scalar::Str(&c.name)),
            CO_STATUS_ID => f(Scalar::Int(i64::from(c.status_id))),
            CO_STATUS_NAME => {
                let n = self.data.status_name(c.status_id);
                f(n.map_or(Scalar::Null, Scalar::Str))
            }
            CO_DELETED => f(Scalar::Bool(c.deleted)),
            CO_CITY => f(opt(&c.city)),
            CO_STATE => f(opt(&c.state)),
            CO_PHONE => f(opt(&c.phone)),
            CO_WEBSITE => f(opt(&c.website)),
            CO_LEAD => f(Scalar::Bool(c.lead_flag)),
            CO_UPDATED => f(Scalar::Date(c.last_updated)),
            CO_ENTERED => f(Scalar::Date(c.date_entered)),
            CO_DATE_DELETED => f(c.date_deleted.map_or(Scalar::Null, Scalar::Date)),
            CO_TYPES_ID => c.type_ids.iter().any(|t| f(Scalar::Int(i64::from(*t)))),
            CO_TYPES_NAME => c
                .type_ids
                .iter()
                .any(|t| f(self.data.type_name(*t).map_or(Scalar::Null, Scalar::Str))),
            _ => false,
        }
    }
}

pub struct ContactSchema {
    pub child: bool,
}

const CT_ID: u16 = 0;
const CT_FIRST: u16 = 1;
const CT_LAST: u16 = 2;
const CT_COMPANY_ID: u16 = 3;
const CT_COMPANY_NAME: u16 = 4;
const CT_COMPANY_IDENT: u16 = 5;
const CT_INACTIVE: u16 = 6;
const CT_TITLE: u16 = 7;
const CT_DEFAULT: u16 = 8;
const CT_UPDATED: u16 = 9;
const CT_ENTERED: u16 = 10;
const CM_VALUE: u16 = 20;
const CM_KIND: u16 = 21;
const CM_TYPE_ID: u16 = 22;
const CM_TYPE_NAME: u16 = 23;
const CM_DEFAULT: u16 = 24;
const CM_DOMAIN: u16 = 25;
const CM_ID: u16 = 26;
const CT_TYPES_ID: u16 = 27;

/// `company/id` on contacts: the field the `by_company` index serves.
pub const CONTACT_COMPANY_ID: u16 = CT_COMPANY_ID;

impl Schema for ContactSchema {
    fn field(&self, path: &str) -> Option<(u16, FieldType)> {
        use FieldType::*;
        if self.child {
            return Some(match path {
                "communicationitems/value" => (CM_VALUE, Str),
                "communicationitems/communicationtype" => (CM_KIND, Str),
                "communicationitems/type/id" => (CM_TYPE_ID, Int),
                "communicationitems/type/name" => (CM_TYPE_NAME, Str),
                "communicationitems/defaultflag" => (CM_DEFAULT, Bool),
                "communicationitems/domain" => (CM_DOMAIN, Str),
                "communicationitems/id" => (CM_ID, Int),
                "types/id" => (CT_TYPES_ID, Int),
                _ => return None,
            });
        }
        Some(match path {
            "id" => (CT_ID, Int),
            "firstname" => (CT_FIRST, Str),
            "lastname" => (CT_LAST, Str),
            "company/id" => (CT_COMPANY_ID, Int),
            "company/name" => (CT_COMPANY_NAME, Str),
            "company/identifier" => (CT_COMPANY_IDENT, Str),
            "inactiveflag" => (CT_INACTIVE, Bool),
            "title" => (CT_TITLE, Str),
            "defaultflag" => (CT_DEFAULT, Bool),
            "lastupdated" | "_info/lastupdated" => (CT_UPDATED, Date),
            "dateentered" | "_info/dateentered" => (CT_ENTERED, Date),
            _ => return None,
        })
    }
}

pub struct ContactView<'a> {
    pub c: &'a Contact,
    pub data: &'a Data,
}

fn domain_of(v: &str) -> Option<&str> {
    v.rfind('@').map(|i| &v[i..])
}

impl Record for ContactView<'_> {
    fn any(&self, id: u16, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
        let c = self.c;
        let company = || self.data.companies.get(&c.company_id);
        match id {
            CT_ID => f(Scalar::Int(c.id as i64)),
            CT_FIRST => f(Scalar::Str(&c.first_name)),
            CT_LAST => f(Scalar::Str(&c.last_name)),
            CT_COMPANY_ID => f(Scalar::Int(c.company_id as i64)),
            CT_COMPANY_NAME => f(company().map_or(Scalar::Null, |co| Scalar::Str(&co.name))),
            CT_COMPANY_IDENT => f(company().map_or(Scalar::Null, |co| Scalar::Str(&co.identifier))),
            CT_INACTIVE => f(Scalar::Bool(c.inactive)),
            CT_TITLE => f(c.title.as_deref().map_or(Scalar::Null, Scalar::Str)),
            CT_DEFAULT => f(Scalar::Bool(c.default_flag)),
            CT_UPDATED => f(Scalar::Date(c.last_updated)),
            CT_ENTERED => f(Scalar::Date(c.date_entered)),
            CM_VALUE => c.comms.iter().any(|m| f(Scalar::Str(&m.value))),
            CM_KIND => c.comms.iter().any(|m| f(Scalar::Str(m.kind.as_str()))),
            CM_TYPE_ID => c
                .comms
                .iter()
                .any(|m| f(Scalar::Int(i64::from(m.kind.type_ref().0)))),
            CM_TYPE_NAME => c.comms.iter().any(|m| f(Scalar::Str(m.kind.type_ref().1))),
            CM_DEFAULT => c.comms.iter().any(|m| f(Scalar::Bool(m.default_flag))),
            CM_DOMAIN => c.comms.iter().any(|m| {
                f(match (m.kind, domain_of(&m.value)) {
                    (CommKind::Email, Some(d)) => Scalar::Str(d),
                    _ => Scalar::Null,
                })
            }),
            CM_ID => c.comms.iter().any(|m| f(Scalar::Int(m.id as i64))),
            // Contact types are not seeded: `types` is always `[]`.
            CT_TYPES_ID => false,
            _ => false,
        }
    }
}

/// Setup-table rows (`types`, `statuses`): `id`, `name`, flags.
pub struct SetupSchema;

const SU_ID: u16 = 0;
const SU_NAME: u16 = 1;
const SU_DEFAULT: u16 = 2;
const SU_INACTIVE: u16 = 3;
const SU_VENDOR: u16 = 4;

impl Schema for SetupSchema {
    fn field(&self, path: &str) -> Option<(u16, FieldType)> {
        use FieldType::*;
        Some(match path {
            "id" => (SU_ID, Int),
            "name" => (SU_NAME, Str),
            "defaultflag" => (SU_DEFAULT, Bool),
            "inactiveflag" => (SU_INACTIVE, Bool),
            "vendorflag" => (SU_VENDOR, Bool),
            _ => return None,
        })
    }
}

impl Record for &CompanyType {
    fn any(&self, id: u16, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
        match id {
            SU_ID => f(Scalar::Int(i64::from(self.id))),
            SU_NAME => f(Scalar::Str(&self.name)),
            SU_DEFAULT => f(Scalar::Bool(self.default_flag)),
            SU_VENDOR => f(Scalar::Bool(self.vendor_flag)),
            _ => f(Scalar::Null),
        }
    }
}

impl Record for &CompanyStatus {
    fn any(&self, id: u16, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
        match id {
            SU_ID => f(Scalar::Int(i64::from(self.id))),
            SU_NAME => f(Scalar::Str(&self.name)),
            SU_DEFAULT => f(Scalar::Bool(self.default_flag)),
            SU_INACTIVE => f(Scalar::Bool(self.inactive_flag)),
            _ => f(Scalar::Null),
        }
    }
}

/// A JSON object under construction that builds only the keys its caller wants.
struct Obj<'w> {
    m: Map<String, Value>,
    want: &'w dyn Fn(&str) -> bool,
}

impl<'w> Obj<'w> {
    fn new(want: &'w dyn Fn(&str) -> bool) -> Self {
        Self {
            m: Map::new(),
            want,
        }
    }

    fn put(&mut self, key: &str, value: impl FnOnce() -> Value) {
        if (self.want)(key) {
            self.m.insert(key.to_string(), value());
        }
    }

    fn done(self) -> Value {
        Value::Object(self.m)
    }
}

// ---- JSON -----------------------------------------------------------------------------

impl Data {
    pub fn status_name(&self, id: u32) -> Option<&str> {
        self.statuses
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.name.as_str())
    }

    pub fn type_name(&self, id: u32) -> Option<&str> {
        self.types
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.as_str())
    }

    /// A company as `GET company/companies` serves it; `api` is `…/apis/3.0`.
    pub fn company_json(&self, c: &Company, api: &str) -> Value {
        self.company_json_only(c, api, &|_| true)
    }

    /// [`Data::company_json`] with only the top-level keys `want` accepts (a `fields=` list):
    /// the others are never built.
    pub fn company_json_only(&self, c: &Company, api: &str, want: &dyn Fn(&str) -> bool) -> Value {
        let mut o = Obj::new(want);
        o.put("id", || json!(c.id));
        o.put("identifier", || json!(c.identifier));
        o.put("name", || json!(c.name));
        o.put("status", || json!({
                "id": c.status_id,
                "name": self.status_name(c.status_id).unwrap_or(""),
                "_info": {"status_href": format!("{api}/company/companies/statuses/{}", c.status_id)},
            }));
        o.put("addressLine1", || {
            json!(format!("{} Main Street", 100 + c.id % 900))
        });
        o.put("city", || json!(c.city));
        o.put("state", || json!(c.state));
        o.put("zip", || json!(format!("{:05}", 10_000 + c.id % 89_999)));
        o.put("country", || json!({"id": 1, "name": "United States", "_info": {"country_href": format!("{api}/company/countries/1")}}));
        o.put("phoneNumber", || json!(c.phone));
        o.put("faxNumber", || json!(""));
        o.put("website", || json!(c.website));
        o.put("territory", || json!({"id": 1, "name": "Main", "_info": {"location_href": format!("{api}/system/locations/1")}}));
        o.put("accountNumber", || json!(""));
        o.put("dateAcquired", || json!(iso(c.date_entered)));
        o.put("leadFlag", || json!(c.lead_flag));
        o.put("unsubscribeFlag", || json!(false));
        o.put("isVendorFlag", || {
            json!(
                c.type_ids
                    .iter()
                    .any(|t| self.types.iter().any(|x| x.id == *t && x.vendor_flag))
            )
        });
        o.put("deletedFlag", || json!(c.deleted));
        if let Some(t) = c.date_deleted {
            o.put("dateDeleted", || json!(iso(t)));
            o.put("deletedBy", || json!("Admin1"));
        }
        o.put("mobileGuid", || json!(guid(0xc0, c.id)));
        o.put("types", || {
            Value::Array(
                c.type_ids
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t,
                            "name": self.type_name(*t).unwrap_or(""),
                            "_info": {"type_href": format!("{api}/company/companies/types/{t}")},
                        })
                    })
                    .collect(),
            )
        });
        o.put("site", || json!({"id": 1000 + c.id, "name": "Main", "_info": {"site_href": format!("{api}/company/companies/{}/sites/{}", c.id, 1000 + c.id)}}));
        o.put("customFields", || json!([]));
        o.put("_info", || json!({
                "lastUpdated": iso(c.last_updated),
                "updatedBy": "Import1",
                "dateEntered": iso(c.date_entered),
                "enteredBy": "Import1",
                "contacts_href": format!("{api}/company/contacts?conditions=company/id={}", c.id),
                "agreements_href": format!("{api}/finance/agreements?conditions=company/id={}", c.id),
                "tickets_href": format!("{api}/service/tickets?conditions=company/id={}", c.id),
                "sites_href": format!("{api}/company/companies/{}/sites", c.id),
                "notes_href": format!("{api}/company/companies/{}/notes", c.id),
            }));
        o.done()
    }

    /// A contact as `GET company/contacts` serves it. `hide_company` mimics an API member
    /// without rights on companies: `company` and `site` come back missing (ConnectWiseManageAPI#40).
    pub fn contact_json(&self, c: &Contact, api: &str, hide_company: bool) -> Value {
        self.contact_json_only(c, api, hide_company, &|_| true)
    }

    /// [`Data::contact_json`] with only the top-level keys `want` accepts.
    pub fn contact_json_only(
        &self,
        c: &Contact,
        api: &str,
        hide_company: bool,
        want: &dyn Fn(&str) -> bool,
    ) -> Value {
        let mut o = Obj::new(want);
        o.put("id", || json!(c.id));
        o.put("firstName", || json!(c.first_name));
        o.put("lastName", || json!(c.last_name));
        if !hide_company {
            let co = self.companies.get(&c.company_id);
            o.put("company", || {
                json!({
                    "id": c.company_id,
                    "identifier": co.map_or("", |x| x.identifier.as_str()),
                    "name": co.map_or("", |x| x.name.as_str()),
                    "_info": {"company_href": format!("{api}/company/companies/{}", c.company_id)},
                })
            });
            o.put("site", || json!({"id": 1000 + c.company_id, "name": "Main", "_info": {"site_href": format!("{api}/company/companies/{}/sites/{}", c.company_id, 1000 + c.company_id)}}));
        }
        o.put("inactiveFlag", || json!(c.inactive));
        if let Some(t) = &c.title {
            o.put("title", || json!(t));
        }
        o.put("defaultFlag", || json!(c.default_flag));
        o.put("defaultBillingFlag", || json!(false));
        o.put("disablePortalLoginFlag", || json!(false));
        o.put("unsubscribeFlag", || json!(false));
        o.put("mobileGuid", || json!(guid(0xc7, c.id)));
        if let Some(p) = c.comms.iter().find(|x| x.kind == CommKind::Phone) {
            o.put("defaultPhoneType", || json!("Direct"));
            o.put("defaultPhoneNbr", || json!(p.value));
        }
        o.put("communicationItems", || Value::Array(
                c.comms
                    .iter()
                    .map(|x| {
                        let (tid, tname) = x.kind.type_ref();
                        let mut item = Map::new();
                        item.insert("id".into(), json!(x.id));
                        item.insert(
                            "type".into(),
                            json!({"id": tid, "name": tname, "_info": {"type_href": format!("{api}/company/communicationTypes/{tid}")}}),
                        );
                        item.insert("value".into(), json!(x.value));
                        item.insert("defaultFlag".into(), json!(x.default_flag));
                        if x.kind == CommKind::Email
                            && let Some(d) = domain_of(&x.value)
                        {
                            item.insert("domain".into(), json!(d));
                        }
                        item.insert("communicationType".into(), json!(x.kind.as_str()));
                        Value::Object(item)
                    })
                    .collect(),
            ));
        o.put("types", || json!([]));
        o.put("customFields", || json!([]));
        o.put("_info", || {
            json!({
                "lastUpdated": iso(c.last_updated),
                "updatedBy": "Import1",
                "dateEntered": iso(c.date_entered),
                "enteredBy": "Import1",
                "communications_href": format!("{api}/company/contacts/{}/communications", c.id),
                "notes_href": format!("{api}/company/contacts/{}/notes", c.id),
            })
        });
        o.done()
    }

    pub fn type_json(&self, t: &CompanyType) -> Value {
        json!({
            "id": t.id,
            "name": t.name,
            "defaultFlag": t.default_flag,
            "vendorFlag": t.vendor_flag,
            "_info": {"lastUpdated": iso(SEED_EPOCH), "updatedBy": null},
        })
    }

    pub fn status_json(&self, s: &CompanyStatus) -> Value {
        json!({
            "id": s.id,
            "name": s.name,
            "defaultFlag": s.default_flag,
            "inactiveFlag": s.inactive_flag,
            "notifyFlag": false,
            "disallowSavingFlag": false,
            "customNoteFlag": false,
            "cancelOpenTracksFlag": false,
            "_info": {"lastUpdated": iso(SEED_EPOCH), "updatedBy": "Admin1"},
        })
    }
}

/// A deterministic GUID-shaped string for `mobileGuid`.
fn guid(tag: u8, id: u64) -> String {
    let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ u64::from(tag);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        h & 0xfff,
        (h >> 8) & 0xfff,
        id & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_deterministic_and_varied() {
        let a = seed(500, 3000, 7, default_types(), default_statuses());
        let b = seed(500, 3000, 7, default_types(), default_statuses());
        assert_eq!(a.companies, b.companies);
        assert_eq!(a.contacts, b.contacts);
        assert_eq!(a.companies.len(), 500);
        assert_eq!(a.contacts.len(), 3000);
        let names: BTreeSet<_> = a.companies.values().map(|c| &c.name).collect();
        assert!(names.len() < 500, "duplicate names exist");
        assert!(a.companies.values().any(|c| c.deleted));
        assert!(a.companies.values().any(|c| c.status_id == 2));
        assert!(a.companies.values().any(|c| c.type_ids.len() == 2));
        assert!(a.companies.values().any(|c| c.type_ids.is_empty()));
        assert!(a.companies.keys().any(|id| !a.by_company.contains_key(id)));
        let emails = |c: &Contact| c.comms.iter().filter(|m| m.kind == CommKind::Email).count();
        assert!(a.contacts.values().any(|c| emails(c) == 0));
        assert!(a.contacts.values().any(|c| emails(c) == 1));
        assert!(a.contacts.values().any(|c| emails(c) >= 2));
        assert!(a.contacts.values().any(|c| c.inactive));
        let mut seen = HashMap::new();
        let mut shared = false;
        for c in a.contacts.values() {
            for m in c.comms.iter().filter(|m| m.kind == CommKind::Email) {
                if let Some(other) = seen.insert(m.value.to_lowercase(), c.id) {
                    shared |= other != c.id;
                }
            }
        }
        assert!(shared, "some e-mail is shared by two contacts");
    }
}
