//! Directory reads shared by the commands: filtered user listings, one user's lookup (including
//! pending invitees, which LastPass lists only by name) and the set of existing usernames among
//! some wanted ones.

use std::collections::HashSet;

use futures::StreamExt;
use lastpass::{Client, Email, GroupName, MAX_USER_PAGE_SIZE, User, UserQuery, UserStatus};

use crate::error::Result;
use crate::records::UserRecord;

/// Which users a listing keeps, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    Active,
    Disabled,
    /// Pending invitations.
    Invited,
    #[default]
    All,
}

impl StatusFilter {
    /// Whether a user in state `s` is kept.
    pub fn keeps(self, s: UserStatus) -> bool {
        match self {
            StatusFilter::All => true,
            StatusFilter::Active => s == UserStatus::Active,
            StatusFilter::Disabled => s == UserStatus::Disabled,
            StatusFilter::Invited => s == UserStatus::Invited,
        }
    }

    /// `getuserdata`'s `disabled` filter for it (`None`: no server-side filter).
    pub fn disabled_query(self) -> Option<bool> {
        match self {
            StatusFilter::Disabled => Some(true),
            StatusFilter::Active => Some(false),
            _ => None,
        }
    }
}

/// What [`list_users`] yields.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only these users (one lookup each); empty: the whole directory, streamed.
    pub emails: Vec<Email>,
    pub status: StatusFilter,
    /// Only admins.
    pub admin: bool,
    /// Only members of this group.
    pub group: Option<GroupName>,
    /// At most this many users.
    pub limit: Option<u64>,
}

impl UserFilter {
    fn keeps(&self, u: &User) -> bool {
        self.status.keeps(u.status())
            && (!self.admin || u.admin)
            && self
                .group
                .as_ref()
                .is_none_or(|g| u.groups.iter().any(|x| x == g.as_str()))
    }

    /// Whether invitees known only by name can match (they have no admin flag or groups).
    fn wants_bare_invitees(&self) -> bool {
        matches!(self.status, StatusFilter::All | StatusFilter::Invited)
            && !self.admin
            && self.group.is_none()
    }
}

/// Passes the users matching `filter` to `sink` as they arrive (one page held at a time), then
/// the pending invitees LastPass lists only by name; stops at `filter.limit`.
pub async fn list_users(
    client: &Client,
    filter: &UserFilter,
    sink: &mut (dyn FnMut(UserRecord) -> Result<()> + Send),
) -> Result<()> {
    let mut sent = 0u64;
    let full = |sent: u64| filter.limit.is_some_and(|l| sent >= l);
    let mut send = |r: UserRecord, sent: &mut u64| -> Result<()> {
        *sent += 1;
        sink(r)
    };
    let invited_wanted = filter.wants_bare_invitees();
    if !filter.emails.is_empty() {
        for email in &filter.emails {
            if full(sent) {
                break;
            }
            match lookup(client, email).await? {
                Lookup::User(u) if filter.keeps(&u) => send(UserRecord::from(*u), &mut sent)?,
                Lookup::Invited(name) if invited_wanted => {
                    send(UserRecord::invited(name), &mut sent)?
                }
                Lookup::Missing => tracing::info!(%email, "no such user"),
                _ => {}
            }
        }
        return Ok(());
    }
    let query = UserQuery {
        username: None,
        disabled: filter.status.disabled_query(),
        admin: filter.admin.then_some(true),
    };
    // Pending invitees without a directory record appear only in each page's `invited` list;
    // they are sent after the users (the set is bounded by the number of invitations).
    let mut invited: Vec<String> = Vec::new();
    let mut invited_seen: HashSet<String> = HashSet::new();
    let mut listed_invited: HashSet<String> = HashSet::new();
    let mut pages = client.user_pages(query, MAX_USER_PAGE_SIZE);
    'pages: while !full(sent) {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page?;
        for name in page.invited {
            if invited_seen.insert(name.to_lowercase()) {
                invited.push(name);
            }
        }
        for user in page.users {
            if full(sent) {
                break 'pages;
            }
            if user.invited {
                listed_invited.insert(user.username.to_lowercase());
            }
            if filter.keeps(&user) {
                send(UserRecord::from(user), &mut sent)?;
            }
        }
    }
    drop(pages);
    if invited_wanted {
        for name in invited {
            if full(sent) {
                break;
            }
            if !listed_invited.contains(&name.to_lowercase()) {
                send(UserRecord::invited(name), &mut sent)?;
            }
        }
    }
    Ok(())
}

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
        .find(|u| super::is_user(&u.username, email))
    {
        return Ok(Lookup::User(Box::new(u)));
    }
    Ok(page
        .invited
        .into_iter()
        .find(|i| super::is_user(i, email))
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
