//! One read of everything an import depends on, made the same way for a plan and for the
//! staleness check of `apply`: the PSA's companies matching the filter with their contacts,
//! every managed company of the MSP account, and the integration's stored mappings and journal.
//!
//! Calls: the PSA's company listing (its page size), the contacts of all those companies in
//! batches ([`psa::PsaDirectory::contacts_of_many`]), and `ceil(managed companies / 500)`
//! LastPass REST list calls. The PSA and LastPass reads run concurrently.

use std::collections::HashMap;

use futures::{StreamExt as _, TryStreamExt as _};
use lastpass::rest::{CompanyQuery, ManagedCompany};
use psa::{Company, CompanyFilter, Contact};

use super::{ImportContext, MspError};
use crate::store::msp::{CompanyMap, ContactMap, JournalEntry};

/// What a plan is computed from.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The PSA's companies matching the filter, in the PSA's order.
    pub companies: Vec<Company>,
    /// Their contacts, by PSA company id, in the PSA's order.
    pub contacts: HashMap<String, Vec<Contact>>,
    /// Every managed company of the MSP account.
    pub managed: Vec<ManagedCompany>,
    pub company_maps: Vec<CompanyMap>,
    pub contact_maps: Vec<ContactMap>,
    pub journal: Vec<JournalEntry>,
}

/// Reads the PSA (companies matching `filter`, then their contacts), LastPass (every managed
/// company) and the store.
pub async fn fetch(ctx: &ImportContext, filter: &CompanyFilter) -> Result<State, MspError> {
    let psa = async {
        let companies: Vec<Company> = ctx.psa.companies(filter).try_collect().await?;
        let ids: Vec<String> = companies.iter().map(|c| c.id.clone()).collect();
        let mut contacts: HashMap<String, Vec<Contact>> = HashMap::with_capacity(ids.len());
        let mut stream = ctx.psa.contacts_of_many(&ids);
        while let Some(c) = stream.next().await {
            let c = c?;
            contacts.entry(c.company_id.clone()).or_default().push(c);
        }
        drop(stream);
        // Batches come back in id order within each batch; keep one stable order.
        for list in contacts.values_mut() {
            list.sort_by(|a, b| id_order(&a.id, &b.id));
        }
        Ok::<_, MspError>((companies, contacts))
    };
    let lastpass = async {
        ctx.rest
            .list_companies(&CompanyQuery::default())
            .try_collect::<Vec<ManagedCompany>>()
            .await
            .map_err(MspError::from)
    };
    let ((companies, contacts), managed) = tokio::try_join!(psa, lastpass)?;
    let id = ctx.integration_id();
    let company_maps = ctx.store.msp_company_maps(id).await?;
    let contact_maps = ctx.store.msp_contact_maps(id).await?;
    let journal = ctx.store.msp_journal(id).await?;
    Ok(State {
        companies,
        contacts,
        managed,
        company_maps,
        contact_maps,
        journal,
    })
}

/// Numeric ids in numeric order, others after them as strings.
pub(crate) fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// How managed-company names are compared for "potential duplicate": trimmed, case-insensitive
/// (as `RestClient::find_companies_by_name`).
pub(crate) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}
