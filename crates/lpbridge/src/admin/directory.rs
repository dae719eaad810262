//! Directory reads shared by the commands: one user's lookup (including pending invitees, which
//! LastPass lists only by name) and the set of existing usernames among some wanted ones.

use std::collections::HashSet;

use futures::StreamExt;
use lastpass::{Client, Email, MAX_USER_PAGE_SIZE, User, UserQuery};

use crate::error::Result;

/// What `getuserdata` knows about one address.
#[derive(Debug, Clone)]
pub enum Lookup {
    User(Box<User>),
    /// Listed only in `invited` (pending invitation, no directory record).
    Invited(String),
    Missing,
}

/// One `getuserdata` call with `username`.
pub async fn lookup(client: &Client, email: &Email) -> Result<Lookup> {
    let query = UserQuery {
        username: Some(email.clone()),
        ..UserQuery::default()
    };
    let page = client.user_page(&query, MAX_USER_PAGE_SIZE, 0).await?;
    if let Some(u) = page
        .users
        .into_iter()
        .find(|u| u.username.eq_ignore_ascii_case(email.as_str()))
    {
        return Ok(Lookup::User(Box::new(u)));
    }
    Ok(page
        .invited
        .into_iter()
        .find(|i| i.eq_ignore_ascii_case(email.as_str()))
        .map(Lookup::Invited)
        .unwrap_or(Lookup::Missing))
}

/// Which of `wanted` (folded e-mails) exist as users or pending invitees, in the fewest calls:
/// the first `getuserdata` page (largest page size) tells the directory's `total`; then either
/// the sweep goes on (one page held at a time) or, when fewer wanted addresses are still
/// unresolved than pages remain, each is looked up by username. At most one call more than the
/// best possible strategy, whatever the sizes.
pub async fn existing_among(client: &Client, wanted: &HashSet<String>) -> Result<HashSet<String>> {
    let mut found = HashSet::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let page_size = u64::from(MAX_USER_PAGE_SIZE);
    let mut pages = client.user_pages(UserQuery::default(), MAX_USER_PAGE_SIZE);
    let mut seen_pages = 0u64;
    while let Some(page) = pages.next().await {
        let page = page?;
        seen_pages += 1;
        let names = page
            .users
            .iter()
            .map(|u| u.username.as_str())
            .chain(page.invited.iter().map(String::as_str));
        for name in names {
            let folded = name.to_lowercase();
            if wanted.contains(&folded) {
                found.insert(folded);
            }
        }
        let pages_left = page.total.div_ceil(page_size).saturating_sub(seen_pages);
        let unresolved: Vec<&String> = wanted.iter().filter(|w| !found.contains(*w)).collect();
        if unresolved.is_empty() {
            break;
        }
        if (unresolved.len() as u64) < pages_left {
            drop(pages);
            for w in unresolved {
                let email = Email::parse(w)?;
                if !matches!(lookup(client, &email).await?, Lookup::Missing) {
                    found.insert(w.clone());
                }
            }
            break;
        }
    }
    Ok(found)
}
