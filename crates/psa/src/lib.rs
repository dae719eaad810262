//! ConnectWise Manage and Datto Autotask clients behind one trait, [`PsaDirectory`]: the
//! read-only view of an MSP's customers (companies) and their people (contacts) that lpbridge's
//! MSP import needs.
//!
//! Errors are classified into exactly the categories the import's messages need
//! ([`ErrorKind`], with [`ErrorKind::user_message`] giving the product's wording).

use std::fmt;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub mod autotask;
pub mod connectwise;
pub mod error;
pub use error::{Error, ErrorKind, Result};

/// The first `max` characters of a body (lossy UTF-8, trimmed), with `…` when cut: enough of an
/// unexpected answer to quote in an error.
pub(crate) fn snippet(body: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    let mut cut: String = s.chars().take(max).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    cut
}

/// Which PSA a directory talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsaKind {
    ConnectWise,
    Autotask,
}

impl PsaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PsaKind::ConnectWise => "connectwise",
            PsaKind::Autotask => "autotask",
        }
    }
}

impl fmt::Display for PsaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of a filterable attribute: a ConnectWise company type or status, an Autotask
/// company type (picklist value) or active state. `id` is what filters take; `name` is shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttributeValue {
    pub id: String,
    pub name: String,
}

/// The attributes a company filter can use.
///
/// - ConnectWise: `types` from `company/companies/types`, `statuses` from
///   `company/companies/statuses`.
/// - Autotask: `types` from the `companyType` picklist of `entityInformation/fields`,
///   `statuses` = `active` / `inactive` (from `isActive`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub types: Vec<AttributeValue>,
    pub statuses: Vec<AttributeValue>,
}

/// Which companies to list. An empty list means "any"; values are [`AttributeValue::id`]s and
/// are OR-ed within a list, AND-ed across lists. Filtering happens upstream (ConnectWise
/// `conditions`, Autotask query filters), never by fetching everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyFilter {
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub statuses: Vec<String>,
}

/// A PSA company (an MSP's customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    /// The PSA's id, as a string (both PSAs use integers).
    pub id: String,
    pub name: String,
    /// The company type (ConnectWise may give several; this is the first). `None` when unset.
    pub company_type: Option<AttributeValue>,
    /// ConnectWise status; Autotask `active`/`inactive`.
    pub status: Option<AttributeValue>,
    /// False for ConnectWise `deletedFlag` or an inactive status, Autotask `isActive: false`.
    pub active: bool,
}

/// A company's contact (a person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub company_id: String,
    pub first_name: String,
    pub last_name: String,
    /// Valid e-mail addresses, default/primary first, without duplicates (case-insensitive).
    pub emails: Vec<lp_types::Email>,
    /// E-mail values the PSA holds that are not valid addresses, kept so the import can say so.
    pub invalid_emails: Vec<String>,
    /// ConnectWise `!inactiveFlag`; Autotask `isActive == 1`.
    pub active: bool,
}

/// A PSA's directory: the three reads the MSP import needs.
///
/// Listings stream page by page (memory stays bounded by one page) and make the fewest calls the
/// PSA allows: its maximum page size, no count calls unless asked for.
pub trait PsaDirectory: Send + Sync {
    fn kind(&self) -> PsaKind;

    /// A cheap authenticated call, so bad credentials surface before any work.
    fn check(&self) -> BoxFuture<'_, Result<()>>;

    /// The filterable attributes (company types and statuses).
    fn attributes(&self) -> BoxFuture<'_, Result<Attributes>>;

    /// Companies matching `filter`, in the PSA's id order.
    fn companies<'a>(&'a self, filter: &'a CompanyFilter) -> BoxStream<'a, Result<Company>>;

    /// One company by id; `Ok(None)` when the PSA has no such company.
    fn company<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Company>>>;

    /// A company's contacts (active and inactive), with their e-mails.
    fn contacts<'a>(&'a self, company_id: &'a str) -> BoxStream<'a, Result<Contact>>;

    /// The contacts of several companies, in no particular order. This default asks company by
    /// company; both clients override it with batched queries (ConnectWise
    /// `company/id in (…)`, Autotask `companyID in [...]`), so fetching the contacts of n
    /// companies costs about `contacts / page size + n / batch size` calls instead of n.
    fn contacts_of_many<'a>(&'a self, company_ids: &'a [String]) -> BoxStream<'a, Result<Contact>> {
        use futures::StreamExt as _;
        futures::stream::iter(company_ids)
            .flat_map(move |id| self.contacts(id))
            .boxed()
    }

    /// Upstream HTTP requests made so far (for benchmarks and `-v`).
    fn calls(&self) -> u64;
}
