//! The emulated Autotask database: companies and contacts, their field tables (names, types,
//! picklists, as `entityInformation/fields` describes them and as the filter evaluator reads
//! them), and the deterministic seed.
//!
//! Rows are typed structs, not JSON: 200,000 contacts must seed in well under a second, and the
//! filter evaluator reads fields through the per-entity [`FieldDef`] tables (one accessor per
//! field), so the wire names live in exactly one place.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

/// One field value as the filter evaluator and the JSON renderer see it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldVal<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Str(Cow<'a, str>),
}

impl FieldVal<'_> {
    pub fn to_json(&self) -> Value {
        match self {
            FieldVal::Null => Value::Null,
            FieldVal::Int(i) => json!(i),
            FieldVal::Bool(b) => json!(b),
            FieldVal::Str(s) => Value::String(s.to_string()),
        }
    }
}

/// `dataType` of `entityInformation/fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Integer,
    Long,
    Boolean,
    String,
    DateTime,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Integer => "integer",
            FieldType::Long => "long",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
            FieldType::DateTime => "datetime",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Long)
    }
}

/// One field of an entity: its wire name, type and accessor.
pub struct FieldDef<T: 'static> {
    pub name: &'static str,
    pub ty: FieldType,
    pub length: u32,
    pub required: bool,
    pub read_only: bool,
    pub reference: Option<&'static str>,
    pub picklist: Option<fn() -> Vec<Picklist>>,
    pub get: fn(&T) -> FieldVal<'_>,
}

/// One picklist entry (`value` is a string on the wire).
#[derive(Debug, Clone, PartialEq)]
pub struct Picklist {
    pub value: i64,
    pub label: &'static str,
    pub is_default: bool,
    pub sort_order: i64,
    pub is_active: bool,
    pub is_system: bool,
}

impl Picklist {
    fn json(&self) -> Value {
        json!({
            "value": self.value.to_string(),
            "label": self.label,
            "isDefaultValue": self.is_default,
            "sortOrder": self.sort_order,
            "parentValue": "",
            "isActive": self.is_active,
            "isSystem": self.is_system,
        })
    }
}

/// Company types (reference §2.4: the numbering is the SOAP-era GUESS; 5 is unused there).
pub const COMPANY_TYPES: &[(i64, &str)] = &[
    (1, "Customer"),
    (2, "Lead"),
    (3, "Prospect"),
    (4, "Dead"),
    (6, "Cancelation"),
    (7, "Vendor"),
    (8, "Partner"),
];

fn company_type_picklist() -> Vec<Picklist> {
    COMPANY_TYPES
        .iter()
        .enumerate()
        .map(|(i, (v, l))| Picklist {
            value: *v,
            label: l,
            is_default: *v == 1,
            sort_order: i as i64 + 1,
            is_active: true,
            is_system: true,
        })
        .collect()
}

fn classification_picklist() -> Vec<Picklist> {
    [(1, "Gold"), (2, "Silver"), (3, "Bronze")]
        .iter()
        .enumerate()
        .map(|(i, (v, l))| Picklist {
            value: *v,
            label: l,
            is_default: false,
            sort_order: i as i64 + 1,
            is_active: true,
            is_system: false,
        })
        .collect()
}

/// One user-defined field value.
#[derive(Debug, Clone, PartialEq)]
pub struct Udf {
    pub name: String,
    pub value: Option<String>,
}

/// A company row.
#[derive(Debug, Clone, PartialEq)]
pub struct Company {
    pub id: i64,
    pub name: String,
    pub number: String,
    pub company_type: i64,
    pub classification: Option<i64>,
    pub is_active: bool,
    pub parent: Option<i64>,
    pub owner: i64,
    pub phone: String,
    pub web: Option<String>,
    pub address1: String,
    pub city: &'static str,
    pub state: &'static str,
    pub postal: String,
    /// Seconds since the epoch.
    pub created: i64,
    pub last_activity: Option<i64>,
    pub modified: i64,
    pub udfs: Vec<Udf>,
}

/// A contact row.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: i64,
    pub company_id: i64,
    pub first: String,
    pub last: String,
    pub title: Option<&'static str>,
    pub emails: [Option<String>; 3],
    pub is_active: bool,
    pub primary: bool,
    pub created: i64,
    pub modified: i64,
}

/// `2012-10-24T05:00:00.000Z`, the format of every Autotask date [AT4].
pub fn format_date(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn s(v: &str) -> FieldVal<'_> {
    FieldVal::Str(Cow::Borrowed(v))
}

fn opt_s(v: &Option<String>) -> FieldVal<'_> {
    v.as_deref().map_or(FieldVal::Null, s)
}

fn date(v: i64) -> FieldVal<'static> {
    FieldVal::Str(Cow::Owned(format_date(v)))
}

const fn field<T>(name: &'static str, ty: FieldType, get: fn(&T) -> FieldVal<'_>) -> FieldDef<T> {
    FieldDef {
        name,
        ty,
        length: match ty {
            FieldType::String => 100,
            _ => 0,
        },
        required: false,
        read_only: false,
        reference: None,
        picklist: None,
        get,
    }
}

const fn reference<T>(
    name: &'static str,
    entity: &'static str,
    get: fn(&T) -> FieldVal<'_>,
) -> FieldDef<T> {
    FieldDef {
        reference: Some(entity),
        ..field(name, FieldType::Integer, get)
    }
}

use FieldType::{Boolean as B, DateTime as D, Integer as I, Long as L, String as S};

/// `CompanyModel` fields [AT1], camelCased as the live API sends them [AT4][AT5].
pub static COMPANY_FIELDS: &[FieldDef<Company>] = &[
    FieldDef {
        required: true,
        read_only: true,
        ..field("id", L, |c| FieldVal::Int(c.id))
    },
    FieldDef {
        required: true,
        ..field("companyName", S, |c| s(&c.name))
    },
    field("companyNumber", S, |c| s(&c.number)),
    FieldDef {
        required: true,
        picklist: Some(company_type_picklist),
        ..field("companyType", I, |c| FieldVal::Int(c.company_type))
    },
    FieldDef {
        picklist: Some(classification_picklist),
        ..field("classification", I, |c| {
            c.classification.map_or(FieldVal::Null, FieldVal::Int)
        })
    },
    field("isActive", B, |c| FieldVal::Bool(c.is_active)),
    reference("parentCompanyID", "Company", |c| {
        c.parent.map_or(FieldVal::Null, FieldVal::Int)
    }),
    FieldDef {
        required: true,
        ..reference("ownerResourceID", "Resource", |c| FieldVal::Int(c.owner))
    },
    field("phone", S, |c| s(&c.phone)),
    field("fax", S, |_| FieldVal::Null),
    field("webAddress", S, |c| opt_s(&c.web)),
    field("address1", S, |c| s(&c.address1)),
    field("address2", S, |_| FieldVal::Null),
    field("city", S, |c| s(c.city)),
    field("state", S, |c| s(c.state)),
    field("postalCode", S, |c| s(&c.postal)),
    reference("countryID", "Country", |_| FieldVal::Int(237)),
    field("territoryID", I, |_| FieldVal::Null),
    field("marketSegmentID", I, |_| FieldVal::Null),
    FieldDef {
        read_only: true,
        ..field("createDate", D, |c| date(c.created))
    },
    field("lastActivityDate", D, |c| {
        c.last_activity.map_or(FieldVal::Null, date)
    }),
    FieldDef {
        read_only: true,
        ..field("lastTrackedModifiedDateTime", D, |c| date(c.modified))
    },
    field("isClientPortalActive", B, |c| FieldVal::Bool(c.id % 5 == 0)),
    field("isTaskFireActive", B, |_| FieldVal::Bool(false)),
    field("isTaxExempt", B, |c| FieldVal::Bool(c.id % 11 == 0)),
    field("isEnabledForComanaged", B, |_| FieldVal::Bool(false)),
    field("apiVendorID", I, |_| FieldVal::Null),
    FieldDef {
        read_only: true,
        ..reference("createdByResourceID", "Resource", |c| {
            FieldVal::Int(c.owner)
        })
    },
    field("currencyID", I, |_| FieldVal::Int(1)),
    field("invoiceTemplateID", I, |_| FieldVal::Null),
    field("quoteTemplateID", I, |_| FieldVal::Null),
    field("taxID", S, |_| FieldVal::Null),
];

/// `ContactModel` fields [AT1]: note `isActive` is an **integer** (1/0) here.
pub static CONTACT_FIELDS: &[FieldDef<Contact>] = &[
    FieldDef {
        required: true,
        read_only: true,
        ..field("id", L, |c| FieldVal::Int(c.id))
    },
    FieldDef {
        required: true,
        ..reference("companyID", "Company", |c| FieldVal::Int(c.company_id))
    },
    FieldDef {
        required: true,
        ..field("firstName", S, |c| s(&c.first))
    },
    FieldDef {
        required: true,
        ..field("lastName", S, |c| s(&c.last))
    },
    field("middleInitial", S, |_| FieldVal::Null),
    field("title", S, |c| c.title.map_or(FieldVal::Null, s)),
    field("emailAddress", S, |c| opt_s(&c.emails[0])),
    field("emailAddress2", S, |c| opt_s(&c.emails[1])),
    field("emailAddress3", S, |c| opt_s(&c.emails[2])),
    FieldDef {
        required: true,
        ..field("isActive", I, |c| FieldVal::Int(i64::from(c.is_active)))
    },
    field("primaryContact", B, |c| FieldVal::Bool(c.primary)),
    field("phone", S, |c| {
        FieldVal::Str(Cow::Owned(format!(
            "555-{:03}-{:04}",
            c.id % 1000,
            c.id % 9973
        )))
    }),
    field("mobilePhone", S, |_| FieldVal::Null),
    field("alternatePhone", S, |_| FieldVal::Null),
    field("extension", S, |_| FieldVal::Null),
    reference("companyLocationID", "CompanyLocation", |_| FieldVal::Null),
    reference("countryID", "Country", |_| FieldVal::Int(237)),
    FieldDef {
        read_only: true,
        ..field("createDate", D, |c| date(c.created))
    },
    field("lastActivityDate", D, |c| date(c.modified)),
    FieldDef {
        read_only: true,
        ..field("lastModifiedDate", D, |c| date(c.modified))
    },
    field("externalID", S, |_| FieldVal::Null),
    field("receivesEmailNotifications", B, |c| {
        FieldVal::Bool(c.primary)
    }),
    field("solicitationOptOut", B, |_| FieldVal::Bool(false)),
    field("surveyOptOut", B, |_| FieldVal::Bool(false)),
    field("isOptedOutFromBulkEmail", B, |_| FieldVal::Bool(false)),
];

/// The two entities this emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Companies,
    Contacts,
}

impl EntityKind {
    /// From a path segment, case-insensitively.
    pub fn from_segment(seg: &str) -> Option<Self> {
        if seg.eq_ignore_ascii_case("companies") {
            Some(EntityKind::Companies)
        } else if seg.eq_ignore_ascii_case("contacts") {
            Some(EntityKind::Contacts)
        } else {
            None
        }
    }

    /// The path segment (`Companies`).
    pub fn path(self) -> &'static str {
        match self {
            EntityKind::Companies => "Companies",
            EntityKind::Contacts => "Contacts",
        }
    }

    /// The entity name in messages (`Company`).
    pub fn singular(self) -> &'static str {
        match self {
            EntityKind::Companies => "Company",
            EntityKind::Contacts => "Contact",
        }
    }
}

/// What the generic query code needs of a row type.
pub trait Entity: Sized + 'static {
    const KIND: EntityKind;
    fn fields() -> &'static [FieldDef<Self>];
    fn id(&self) -> i64;
    fn udfs(&self) -> &[Udf];
}

impl Entity for Company {
    const KIND: EntityKind = EntityKind::Companies;
    fn fields() -> &'static [FieldDef<Self>] {
        COMPANY_FIELDS
    }
    fn id(&self) -> i64 {
        self.id
    }
    fn udfs(&self) -> &[Udf] {
        &self.udfs
    }
}

impl Entity for Contact {
    const KIND: EntityKind = EntityKind::Contacts;
    fn fields() -> &'static [FieldDef<Self>] {
        CONTACT_FIELDS
    }
    fn id(&self) -> i64 {
        self.id
    }
    fn udfs(&self) -> &[Udf] {
        &[]
    }
}

/// The index of `name` (case-insensitive, as filters and `IncludeFields` are [AT5]).
pub fn field_index<T: Entity>(name: &str) -> Option<usize> {
    T::fields()
        .iter()
        .position(|f| f.name.eq_ignore_ascii_case(name))
}

/// A row as JSON: every field, or only `include` (field indexes) when given, plus
/// `userDefinedFields` unless `include` leaves it out.
pub fn render<T: Entity>(row: &T, include: Option<&Projection>) -> Value {
    serde_json::to_value(Rendered { row, include }).unwrap_or_default()
}

/// A row serialized straight to JSON (no intermediate `Value`: pages of 500 rows are the hot
/// path of every listing).
pub struct Rendered<'a, T: Entity> {
    pub row: &'a T,
    pub include: Option<&'a Projection>,
}

impl Serialize for FieldVal<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldVal::Null => s.serialize_none(),
            FieldVal::Int(i) => s.serialize_i64(*i),
            FieldVal::Bool(b) => s.serialize_bool(*b),
            FieldVal::Str(v) => s.serialize_str(v),
        }
    }
}

#[derive(Serialize)]
struct UdfOut<'a> {
    name: &'a str,
    value: Option<&'a str>,
}

impl<T: Entity> Serialize for Rendered<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fields = T::fields();
        let mut m = s.serialize_map(None)?;
        match self.include {
            None => {
                for f in fields {
                    m.serialize_entry(f.name, &(f.get)(self.row))?;
                }
            }
            Some(p) => {
                for &i in &p.fields {
                    let f = &fields[i];
                    m.serialize_entry(f.name, &(f.get)(self.row))?;
                }
            }
        }
        if self.include.is_none_or(|p| p.udfs) {
            let udfs: Vec<UdfOut<'_>> = self
                .row
                .udfs()
                .iter()
                .map(|u| UdfOut {
                    name: &u.name,
                    value: u.value.as_deref(),
                })
                .collect();
            m.serialize_entry("userDefinedFields", &udfs)?;
        }
        m.end()
    }
}

/// `IncludeFields`, resolved to field indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    pub fields: Vec<usize>,
    pub udfs: bool,
}

/// `GET /V1.0/{Entity}/entityInformation/fields`.
pub fn fields_json<T: Entity>() -> Value {
    let fields: Vec<Value> = T::fields()
        .iter()
        .map(|f| {
            let picklist: Vec<Value> = f
                .picklist
                .map(|p| p().iter().map(Picklist::json).collect())
                .unwrap_or_default();
            json!({
                "name": f.name,
                "dataType": f.ty.as_str(),
                "length": f.length,
                "isRequired": f.required,
                "isReadOnly": f.read_only,
                "isQueryable": true,
                "isReference": f.reference.is_some(),
                "referenceEntityType": f.reference.unwrap_or(""),
                "isPickList": f.picklist.is_some(),
                "picklistValues": picklist,
                "picklistParentValueField": "",
                "isSupportedWebhookField": false,
            })
        })
        .collect();
    json!({ "fields": fields })
}

/// Seed sizes and RNG seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSpec {
    /// Companies besides the local organisation (id 0).
    pub companies: usize,
    pub contacts: usize,
    pub seed: u64,
}

/// The database.
#[derive(Debug, Clone, Default)]
pub struct Db {
    pub companies: BTreeMap<i64, Company>,
    pub contacts: BTreeMap<i64, Contact>,
    /// Contact ids per company id (kept in step with `contacts`).
    pub by_company: HashMap<i64, BTreeSet<i64>>,
    pub next_company_id: i64,
    pub next_contact_id: i64,
}

/// The first seeded contact id (real ids look like 29683589 [AT4]).
pub const FIRST_CONTACT_ID: i64 = 29_683_000;
/// The first seeded customer company id (the local organisation is 0).
pub const FIRST_COMPANY_ID: i64 = 174;

const ADJ: &[&str] = &[
    "Blue",
    "Northern",
    "Summit",
    "Granite",
    "Harbor",
    "Silver",
    "Evergreen",
    "Pioneer",
    "Coastal",
    "Prairie",
    "Atlas",
    "Beacon",
    "Cedar",
    "Falcon",
    "Golden",
    "Iron",
    "Liberty",
    "Maple",
    "Meridian",
    "Oak",
    "Orchard",
    "Pinnacle",
    "Redwood",
    "Riverside",
    "Sterling",
    "Sunrise",
    "Valley",
    "Westfield",
    "Willow",
    "Crescent",
    "Keystone",
    "Lakeside",
];
const NOUN: &[&str] = &[
    "Dental",
    "Logistics",
    "Law Group",
    "Accounting",
    "Builders",
    "Medical",
    "Realty",
    "Farms",
    "Engineering",
    "Insurance",
    "Consulting",
    "Foods",
    "Motors",
    "Printing",
    "Clinic",
    "Architects",
    "Brewing",
    "Capital",
    "Energy",
    "Labs",
    "Media",
    "Partners",
    "Supply",
    "Veterinary",
];
const SUFFIX: &[&str] = &["LLC", "Inc.", "Ltd", "Co.", "Group", "PLLC", "Corp."];
const FIRST: &[&str] = &[
    "Mary",
    "James",
    "Patricia",
    "John",
    "Jennifer",
    "Robert",
    "Linda",
    "Michael",
    "Elizabeth",
    "William",
    "Barbara",
    "David",
    "Susan",
    "Richard",
    "Jessica",
    "Joseph",
    "Sarah",
    "Thomas",
    "Karen",
    "Carlos",
    "Aisha",
    "Wei",
    "Priya",
    "Olga",
    "Kenji",
    "Fatima",
    "Liam",
    "Zoe",
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
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Nguyen",
    "O'Brien",
    "Kowalski",
    "Tanaka",
    "Okafor",
];
const TITLES: &[&str] = &[
    "Office Manager",
    "Owner",
    "IT Coordinator",
    "Accountant",
    "Director",
    "Receptionist",
];
const CITIES: &[(&str, &str)] = &[
    ("Portland", "OR"),
    ("Austin", "TX"),
    ("Denver", "CO"),
    ("Columbus", "OH"),
    ("Raleigh", "NC"),
    ("Madison", "WI"),
    ("Tampa", "FL"),
    ("Boise", "ID"),
];
/// Values a PSA may hold in an e-mail field that are not addresses.
const BAD_EMAILS: &[&str] = &["n/a", "jane.doe@", "front desk@clinic.example", "none"];

/// 2012-01-01 and 2025-12-01, the seeded creation range.
const T_FROM: i64 = 1_325_376_000;
const T_TO: i64 = 1_764_547_200;

fn slug(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(24)
        .collect()
}

/// A company type drawn with a realistic mix: mostly customers, some of every other type.
fn draw_type(rng: &mut ChaCha8Rng) -> i64 {
    match rng.gen_range(0..100) {
        0..=59 => 1,
        60..=67 => 2,
        68..=77 => 3,
        78..=82 => 4,
        83..=87 => 6,
        88..=94 => 7,
        _ => 8,
    }
}

impl Db {
    /// The deterministic seed: the local organisation (id 0), `companies` customers of every
    /// type (some inactive, some with duplicate names), and `contacts` spread over about 85% of
    /// them (the rest have none), with zero to three e-mails, some inactive, some sharing an
    /// address, a few holding values that are not addresses.
    pub fn seed(spec: SeedSpec) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x6175_746f_7461_736b);
        let mut db = Db::default();
        db.insert_company(Company {
            id: 0,
            name: "Sandbox MSP (local)".into(),
            number: "0".into(),
            company_type: 1,
            classification: None,
            is_active: true,
            parent: None,
            owner: 29_682_885,
            phone: "555-555-0100".into(),
            web: Some("www.sandbox-msp.example".into()),
            address1: "1 Main St".into(),
            city: "Portland",
            state: "OR",
            postal: "97201".into(),
            created: T_FROM,
            last_activity: None,
            modified: T_FROM,
            udfs: vec![],
        });
        let mut names: HashSet<String> = HashSet::with_capacity(spec.companies);
        let mut all_names: Vec<String> = Vec::with_capacity(spec.companies);
        let mut id = FIRST_COMPANY_ID;
        let mut company_ids = Vec::with_capacity(spec.companies);
        for i in 0..spec.companies {
            // About 2% reuse an earlier name exactly (duplicate names are common in PSAs).
            let name = if !all_names.is_empty() && rng.gen_bool(0.02) {
                all_names[rng.gen_range(0..all_names.len())].clone()
            } else {
                let base = format!(
                    "{} {} {}",
                    ADJ[rng.gen_range(0..ADJ.len())],
                    NOUN[rng.gen_range(0..NOUN.len())],
                    SUFFIX[rng.gen_range(0..SUFFIX.len())]
                );
                if names.contains(&base) {
                    format!("{base} {}", i + 1)
                } else {
                    base
                }
            };
            names.insert(name.clone());
            all_names.push(name.clone());
            let company_type = draw_type(&mut rng);
            // Dead and cancelled organisations are mostly inactive; others rarely.
            let p_inactive = if matches!(company_type, 4 | 6) {
                0.7
            } else {
                0.06
            };
            let is_active = !rng.gen_bool(p_inactive);
            let created = rng.gen_range(T_FROM..T_TO);
            let (city, state) = CITIES[rng.gen_range(0..CITIES.len())];
            let udfs = if i % 4 == 0 {
                vec![Udf {
                    name: "Customer Tier".into(),
                    value: Some(["Gold", "Silver", "Bronze"][i % 3].into()),
                }]
            } else {
                vec![]
            };
            db.insert_company(Company {
                id,
                number: format!("{}", 289_843 + i),
                web: rng
                    .gen_bool(0.8)
                    .then(|| format!("www.{}.example", slug(&name))),
                name,
                company_type,
                classification: rng.gen_bool(0.5).then(|| rng.gen_range(1..=3)),
                is_active,
                parent: None,
                owner: 29_682_885 + rng.gen_range(0..5),
                phone: format!(
                    "555-{:03}-{:04}",
                    rng.gen_range(100..999),
                    rng.gen_range(0..9999)
                ),
                address1: format!("{} Commerce Way", rng.gen_range(1..9999)),
                city,
                state,
                postal: format!("{:05}", rng.gen_range(10000..99999)),
                created,
                last_activity: rng.gen_bool(0.7).then(|| rng.gen_range(created..T_TO + 1)),
                modified: rng.gen_range(created..T_TO + 1),
                udfs,
            });
            company_ids.push(id);
            // Gaps, as in a real tenant where rows were deleted.
            id += rng.gen_range(1..=3);
        }
        // About 15% of companies get no contacts; the rest share `contacts` at random. Sorting
        // the draws keeps contact ids in company order, as in a tenant filled company by company.
        let eligible: Vec<i64> = company_ids
            .iter()
            .copied()
            .filter(|_| !rng.gen_bool(0.15))
            .collect();
        let mut owners: Vec<u32> = if eligible.is_empty() {
            vec![]
        } else {
            (0..spec.contacts)
                .map(|_| rng.gen_range(0..eligible.len() as u32))
                .collect()
        };
        owners.sort_unstable();
        let mut cid = FIRST_CONTACT_ID;
        let mut prev_company = -1;
        let mut seeded_emails: Vec<String> = Vec::new();
        for owner in owners {
            let company_id = eligible[owner as usize];
            let domain = db
                .companies
                .get(&company_id)
                .map(|c| slug(&c.name))
                .unwrap_or_default();
            let first = FIRST[rng.gen_range(0..FIRST.len())];
            let last = LAST[rng.gen_range(0..LAST.len())];
            let local = format!("{}.{}", first.to_ascii_lowercase(), slug(last));
            let n_emails = match rng.gen_range(0..100) {
                0..=7 => 0,
                8..=67 => 1,
                68..=89 => 2,
                _ => 3,
            };
            let mut emails: [Option<String>; 3] = [None, None, None];
            for (k, slot) in emails.iter_mut().enumerate().take(n_emails) {
                *slot = Some(match k {
                    0 => format!("{local}{}@{domain}.example", cid % 1000),
                    1 => format!("{}{}@gmail.example", local, cid % 97),
                    _ => format!("{}.{}@{domain}.example", first.to_ascii_lowercase(), cid),
                });
            }
            if n_emails > 0 {
                match rng.gen_range(0..200) {
                    // Shared: the same address as an earlier contact (often another company).
                    0..=2 if !seeded_emails.is_empty() => {
                        emails[0] =
                            Some(seeded_emails[rng.gen_range(0..seeded_emails.len())].clone());
                    }
                    // The same address twice, differing only in case.
                    3 => {
                        emails[1] = emails[0].as_ref().map(|e| e.to_ascii_uppercase());
                    }
                    // A value that is not an address.
                    4 | 5 => {
                        emails[n_emails - 1] =
                            Some(BAD_EMAILS[rng.gen_range(0..BAD_EMAILS.len())].into());
                    }
                    _ => {}
                }
                if let Some(e) = &emails[0]
                    && rng.gen_bool(0.05)
                {
                    seeded_emails.push(e.clone());
                }
            }
            let created = rng.gen_range(T_FROM..T_TO);
            db.insert_contact(Contact {
                id: cid,
                company_id,
                first: first.into(),
                last: last.into(),
                title: rng
                    .gen_bool(0.6)
                    .then(|| TITLES[rng.gen_range(0..TITLES.len())]),
                emails,
                is_active: !rng.gen_bool(0.12),
                primary: prev_company != company_id,
                created,
                modified: rng.gen_range(created..T_TO + 1),
            });
            prev_company = company_id;
            cid += rng.gen_range(1..=2);
        }
        db.next_company_id = db.next_company_id.max(id);
        db.next_contact_id = db.next_contact_id.max(cid);
        db
    }

    pub fn insert_company(&mut self, c: Company) {
        self.next_company_id = self.next_company_id.max(c.id + 1);
        self.companies.insert(c.id, c);
    }

    pub fn insert_contact(&mut self, c: Contact) {
        self.next_contact_id = self.next_contact_id.max(c.id + 1);
        if let Some(old) = self.contacts.get(&c.id)
            && old.company_id != c.company_id
            && let Some(set) = self.by_company.get_mut(&old.company_id)
        {
            set.remove(&c.id);
        }
        self.by_company
            .entry(c.company_id)
            .or_default()
            .insert(c.id);
        self.contacts.insert(c.id, c);
    }

    pub fn remove_contact(&mut self, id: i64) -> Option<Contact> {
        let c = self.contacts.remove(&id)?;
        if let Some(set) = self.by_company.get_mut(&c.company_id) {
            set.remove(&id);
        }
        Some(c)
    }

    /// Removes a company and its contacts (the emulator's choice; the real API cannot delete
    /// companies at all).
    pub fn remove_company(&mut self, id: i64) -> Option<(Company, usize)> {
        let c = self.companies.remove(&id)?;
        let ids = self.by_company.remove(&id).unwrap_or_default();
        for cid in &ids {
            self.contacts.remove(cid);
        }
        Some((c, ids.len()))
    }
}

/// Counts of a seeded database, for tests and the docs.
pub fn summary(db: &Db) -> Value {
    let inactive_companies = db.companies.values().filter(|c| !c.is_active).count();
    let inactive_contacts = db.contacts.values().filter(|c| !c.is_active).count();
    json!({
        "companies": db.companies.len(),
        "contacts": db.contacts.len(),
        "inactive_companies": inactive_companies,
        "inactive_contacts": inactive_contacts,
        "next_company_id": db.next_company_id,
        "next_contact_id": db.next_contact_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_deterministic_and_varied() {
        let spec = SeedSpec {
            companies: 2000,
            contacts: 8000,
            seed: 3,
        };
        let a = Db::seed(spec);
        let b = Db::seed(spec);
        assert_eq!(a.companies, b.companies);
        assert_eq!(a.contacts, b.contacts);
        assert_eq!(a.companies.len(), 2001);
        assert_eq!(a.contacts.len(), 8000);
        let types: BTreeSet<i64> = a.companies.values().map(|c| c.company_type).collect();
        assert!(types.len() >= 6, "{types:?}");
        assert!(a.companies.values().any(|c| !c.is_active));
        let mut names = HashSet::new();
        assert!(a.companies.values().any(|c| !names.insert(c.name.clone())));
        let n = |k: usize| {
            a.contacts
                .values()
                .filter(|c| c.emails.iter().flatten().count() == k)
                .count()
        };
        assert!(n(0) > 0 && n(1) > 0 && n(2) > 0 && n(3) > 0);
        assert!(a.contacts.values().any(|c| !c.is_active));
        let mut seen = HashSet::new();
        assert!(
            a.contacts
                .values()
                .filter_map(|c| c.emails[0].clone())
                .any(|e| !seen.insert(e.to_ascii_lowercase()))
        );
        let with_contacts = a.by_company.values().filter(|s| !s.is_empty()).count();
        assert!(with_contacts < a.companies.len() - 100);
    }

    #[test]
    fn rendering_keeps_types() {
        let db = Db::seed(SeedSpec {
            companies: 5,
            contacts: 20,
            seed: 1,
        });
        let c = render(&db.companies[&FIRST_COMPANY_ID], None);
        assert!(c["isActive"].is_boolean());
        assert!(c["companyType"].is_i64());
        assert!(c["userDefinedFields"].is_array());
        let k = db.contacts.values().next().map(|k| render(k, None));
        let k = k.unwrap_or_default();
        assert!(k["isActive"].is_i64());
        assert!(k["companyID"].is_i64());
        assert!(
            k["createDate"]
                .as_str()
                .is_some_and(|d| d.ends_with(".000Z"))
        );
    }
}
