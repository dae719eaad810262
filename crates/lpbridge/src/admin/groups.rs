//! Group membership: listing groups with their members (from `getuserdata` pages) and
//! `groups apply FILE.csv` (plan + `batchchangegrp`).
//!
//! The apply CSV has a header row `email,group,action` with `action` `add` or `remove`. The plan
//! drops no-ops (adding a member, removing a non-member) and rows for unknown users, found with
//! one streamed directory listing, and groups the remaining changes per user.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;

use futures::StreamExt;
use lastpass::{Client, Email, GroupChange, GroupName, MAX_USER_PAGE_SIZE, UserQuery};
use serde::Serialize;

use super::{ItemResult, Outcome, PlanItem, PlannedCall, attribute_errors};
use crate::error::{LineProblem, Result};
use crate::output::Record;

/// Default users per `batchchangegrp` call.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// A group and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub member_count: usize,
    pub members: Vec<String>,
}

impl Record for GroupInfo {
    fn headers() -> &'static [&'static str] {
        &["name", "member_count", "members"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.member_count.to_string(),
            self.members.join(";"),
        ]
    }
    /// A table shows the first few members only (`groups get NAME` lists them all).
    fn table_row(&self) -> Vec<String> {
        const SHOWN: usize = 3;
        let mut members = self
            .members
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.members.len() > SHOWN {
            members.push_str(&format!(", … (+{} more)", self.members.len() - SHOWN));
        }
        vec![self.name.clone(), self.member_count.to_string(), members]
    }
}

/// One group with every member on its own line of the `members` cell (`groups get` as a table).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct GroupDetail<'a>(pub &'a GroupInfo);

impl Record for GroupDetail<'_> {
    fn headers() -> &'static [&'static str] {
        GroupInfo::headers()
    }
    fn row(&self) -> Vec<String> {
        self.0.row()
    }
    fn table_row(&self) -> Vec<String> {
        vec![
            self.0.name.clone(),
            self.0.member_count.to_string(),
            self.0.members.join("\n"),
        ]
    }
}

/// Every group with its members. One unpaged `getuserdata` whose `Groups` map is decoded alone
/// (users skipped); if LastPass answers without that map, a streamed sweep of pages merging each
/// user's `groups` (which cannot see empty groups or invitee-only memberships).
pub async fn all_groups(client: &Client) -> Result<Vec<GroupInfo>> {
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // One unpaged call carries the whole `Groups` map, empty groups and invitees included.
    if let Some(map) = client.groups().await? {
        groups.extend(
            map.into_iter()
                .map(|(name, m)| (name, m.into_iter().collect())),
        );
    } else {
        let mut pages = client.user_pages(UserQuery::default(), MAX_USER_PAGE_SIZE);
        while let Some(page) = pages.next().await {
            let page = page?;
            for (name, members) in page.groups {
                groups.entry(name).or_default().extend(members);
            }
            for user in page.users {
                for g in user.groups {
                    groups.entry(g).or_default().insert(user.username.clone());
                }
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(name, members)| GroupInfo {
            name,
            member_count: members.len(),
            members: members.into_iter().collect(),
        })
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipAction {
    Add,
    Remove,
}

/// One valid row of the apply file.
#[derive(Debug, Clone)]
pub struct MembershipRow {
    pub line: u64,
    pub email: Email,
    pub group: GroupName,
    pub action: MembershipAction,
}

/// Parses and validates the whole file, reporting every bad line.
pub fn parse_csv<R: Read>(path: &str, reader: R) -> Result<Vec<MembershipRow>> {
    let bytes = super::read_all(path, reader)?;
    let index = super::LineIndex::new(&bytes);
    let mut rdr = super::csv_reader(&bytes);
    let header_err = |message: String| super::file_error(path, 1, message);
    let headers = rdr
        .headers()
        .map_err(|e| header_err(format!("cannot read the header row: {e}")))?
        .clone();
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                header_err(format!(
                    "the header row has no `{name}` column (expected email,group,action)"
                ))
            })
    };
    let (ie, ig, ia) = (find("email")?, find("group")?, find("action")?);
    if headers.len() != 3 {
        return Err(header_err(format!(
            "expected exactly the columns email,group,action, found {}",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<(String, String), (u64, MembershipAction)> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(LineProblem {
                    line: index.line_of(e.position()),
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = index.line_of(rec.position());
        let mut bad = |message: String| problems.push(LineProblem { line, message });
        if rec.len() != 3 {
            bad(format!("has {} field(s), expected 3", rec.len()));
            continue;
        }
        let email = match Email::parse(&rec[ie]) {
            Ok(e) => e,
            Err(e) => {
                bad(e.to_string());
                continue;
            }
        };
        let group = match GroupName::new(&rec[ig]) {
            Ok(g) => g,
            Err(e) => {
                bad(e.to_string());
                continue;
            }
        };
        let action = match rec[ia].to_ascii_lowercase().as_str() {
            "add" => MembershipAction::Add,
            "remove" | "del" | "delete" => MembershipAction::Remove,
            other => {
                bad(format!(
                    "invalid action {}: must be add or remove",
                    super::quoted(other)
                ));
                continue;
            }
        };
        let key = (email.folded().to_owned(), group.as_str().to_owned());
        if let Some((first, prev)) = seen.get(&key) {
            if *prev == action {
                bad(format!("duplicate of line {first}"));
            } else {
                bad(format!(
                    "conflicts with line {first}: {} cannot be both added to and removed from {}",
                    email, group
                ));
            }
            continue;
        }
        seen.insert(key, (line, action));
        rows.push(MembershipRow {
            line,
            email,
            group,
            action,
        });
    }
    super::rows_or_problems(path, rows, problems)
}

/// The group-apply plan.
#[derive(Debug, Clone, Serialize)]
pub struct GroupPlan {
    pub items: Vec<PlanItem>,
    pub calls: Vec<PlannedCall>,
    #[serde(skip)]
    batches: Vec<Vec<(GroupChange, Vec<u64>)>>,
}

impl GroupPlan {
    pub fn changes(&self) -> usize {
        self.items.iter().filter(|i| i.call.is_some()).count()
    }
}

/// Plans from validated rows and current memberships (`folded email → groups`; absent = no
/// such user).
pub fn plan(rows: Vec<MembershipRow>, directory: &Memberships, batch_size: usize) -> GroupPlan {
    let current = &directory.users;
    let batch_size = batch_size.max(1);
    let mut items = Vec::with_capacity(rows.len());
    // Per user, in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut per_user: HashMap<String, (GroupChange, Vec<u64>)> = HashMap::new();
    let mut item_user: Vec<Option<String>> = Vec::with_capacity(rows.len());
    for row in rows {
        let key = row.email.folded().to_owned();
        let verb = match row.action {
            MembershipAction::Add => "add",
            MembershipAction::Remove => "remove",
        };
        let skip = match current.get(&key) {
            None => Some("no such user".to_owned()),
            Some(groups) => {
                let member = groups.contains(row.group.as_str());
                match row.action {
                    MembershipAction::Add if member => {
                        Some(format!("already a member of {}", row.group))
                    }
                    MembershipAction::Remove if !member => {
                        Some(format!("not a member of {}", row.group))
                    }
                    _ => None,
                }
            }
        };
        let reason = skip.clone().unwrap_or_else(|| match row.action {
            MembershipAction::Add if !directory.groups.contains(row.group.as_str()) => format!(
                "add to {} (no such group in the directory; the API cannot create groups, \
                 LastPass may refuse)",
                row.group
            ),
            MembershipAction::Add => format!("add to {}", row.group),
            MembershipAction::Remove => format!("remove from {}", row.group),
        });
        items.push(PlanItem {
            line: row.line,
            email: row.email.to_string(),
            action: if skip.is_some() {
                "skip".into()
            } else {
                verb.into()
            },
            call: None,
            reason,
        });
        if skip.is_some() {
            item_user.push(None);
            continue;
        }
        item_user.push(Some(key.clone()));
        let entry = per_user.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            (
                GroupChange {
                    username: row.email.clone(),
                    add: Vec::new(),
                    del: Vec::new(),
                },
                Vec::new(),
            )
        });
        match row.action {
            MembershipAction::Add => entry.0.add.push(row.group),
            MembershipAction::Remove => entry.0.del.push(row.group),
        }
        entry.1.push(row.line);
    }
    let mut batches: Vec<Vec<(GroupChange, Vec<u64>)>> = Vec::new();
    let mut call_of: HashMap<String, usize> = HashMap::new();
    for key in order {
        if let Some(change) = per_user.remove(&key) {
            if batches.last().is_none_or(|b| b.len() >= batch_size) {
                batches.push(Vec::new());
            }
            call_of.insert(key, batches.len());
            if let Some(b) = batches.last_mut() {
                b.push(change);
            }
        }
    }
    for (item, user) in items.iter_mut().zip(item_user) {
        if let Some(n) = user.and_then(|u| call_of.get(&u)) {
            item.call = Some(format!("batchchangegrp #{n}"));
        }
    }
    let calls = super::planned_calls("batchchangegrp", batches.iter().map(Vec::len), |n| {
        format!("change memberships of {n} user(s)")
    });
    GroupPlan {
        items,
        calls,
        batches,
    }
}

/// What the plan needs from the directory.
#[derive(Debug, Clone, Default)]
pub struct Memberships {
    /// Folded e-mail → current groups, for the users named in the file (pending invitees have
    /// none); absent means no such user.
    pub users: HashMap<String, HashSet<String>>,
    /// Every group seen in the directory.
    pub groups: HashSet<String>,
}

/// Current memberships of the users named in `rows`. Preferably the unpaged `Groups` map (every
/// group, empty ones and invitees included) plus an existence check of the named users in the
/// fewest calls; without that map, one streamed directory listing.
pub async fn current_memberships(client: &Client, rows: &[MembershipRow]) -> Result<Memberships> {
    let wanted: HashSet<&str> = rows.iter().map(|r| r.email.folded()).collect();
    let mut out = Memberships::default();
    if let Some(map) = client.groups().await? {
        let wanted_owned: HashSet<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
        for name in super::directory::existing_among(client, &wanted_owned).await? {
            out.users.insert(name, HashSet::new());
        }
        for (group, members) in map {
            for m in members {
                if let Some(set) = out.users.get_mut(&m.to_lowercase()) {
                    set.insert(group.clone());
                }
            }
            out.groups.insert(group);
        }
        return Ok(out);
    }
    let mut pages = client.user_pages(UserQuery::default(), MAX_USER_PAGE_SIZE);
    while let Some(page) = pages.next().await {
        let page = page?;
        out.groups.extend(page.groups.into_keys());
        for name in page.invited {
            let folded = name.to_lowercase();
            if wanted.contains(folded.as_str()) {
                out.users.entry(folded).or_default();
            }
        }
        for user in page.users {
            out.groups.extend(user.groups.iter().cloned());
            let folded = user.username.to_lowercase();
            if wanted.contains(folded.as_str()) {
                out.users.insert(folded, user.groups.into_iter().collect());
            }
        }
    }
    Ok(out)
}

/// Adds `emails` to (or removes them from) `group` in one `batchchangegrp` call; one result per
/// address. Only an authentication or configuration error is returned as such: any other failure
/// becomes the addresses' outcomes, attributed by the e-mail or group LastPass names.
pub async fn change_members(
    client: &Client,
    group: &GroupName,
    emails: &[Email],
    add: bool,
) -> Result<Vec<ItemResult>> {
    let changes: Vec<GroupChange> = emails
        .iter()
        .map(|e| GroupChange {
            username: e.clone(),
            add: if add { vec![group.clone()] } else { vec![] },
            del: if add { vec![] } else { vec![group.clone()] },
        })
        .collect();
    let action = if add {
        format!("add to {group}")
    } else {
        format!("remove from {group}")
    };
    let (errors, whole): (Vec<String>, bool) = match client.change_groups(&changes).await {
        Ok(()) => (vec![], false),
        Err(lastpass::Error::Partial { errors, .. }) => (errors, false),
        Err(e @ (lastpass::Error::Auth | lastpass::Error::Config(_))) => return Err(e.into()),
        Err(e) => (vec![e.to_string()], true),
    };
    let keys: Vec<(&str, Vec<&str>)> = emails
        .iter()
        .map(|e| (e.as_str(), vec![group.as_str()]))
        .collect();
    let messages = if whole {
        vec![Some(errors.join("; ")); emails.len()]
    } else {
        attribute_errors(&errors, &keys)
    };
    Ok(emails
        .iter()
        .zip(messages)
        .map(|(e, msg)| ItemResult::for_email(e, &action, msg))
        .collect())
}

/// Executes the plan; one result per input row. LastPass's `WARN` errors are attributed to the
/// users they name.
pub async fn apply(client: &Client, plan: GroupPlan) -> Vec<ItemResult> {
    let mut failed_lines: HashMap<u64, (Outcome, String)> = HashMap::new();
    let mut fatal: Option<String> = None;
    for batch in &plan.batches {
        let changes: Vec<GroupChange> = batch.iter().map(|(c, _)| c.clone()).collect();
        let res = match &fatal {
            Some(m) => Err((Outcome::NotAttempted, vec![m.clone()], true)),
            None => match client.change_groups(&changes).await {
                Ok(()) => Ok(()),
                Err(lastpass::Error::Partial { errors, .. }) => {
                    Err((Outcome::Failed, errors, false))
                }
                Err(e) => {
                    let m = e.to_string();
                    if !matches!(e, lastpass::Error::Failed { .. }) {
                        fatal = Some(format!("not attempted after an earlier failure: {m}"));
                    }
                    Err((Outcome::Failed, vec![m], true))
                }
            },
        };
        if let Err((outcome, errors, whole_batch)) = res {
            let keys: Vec<(&str, Vec<&str>)> = batch
                .iter()
                .map(|(c, _)| {
                    let groups = c.add.iter().chain(&c.del).map(|g| g.as_str()).collect();
                    (c.username.as_str(), groups)
                })
                .collect();
            let messages = if whole_batch {
                vec![Some(errors.join("; ")); batch.len()]
            } else {
                attribute_errors(&errors, &keys)
            };
            for ((_, lines), msg) in batch.iter().zip(messages) {
                if let Some(m) = msg {
                    for l in lines {
                        failed_lines.insert(*l, (outcome, m.clone()));
                    }
                }
            }
        }
    }
    plan.items
        .into_iter()
        .map(|item| {
            let (outcome, message) = if item.call.is_none() {
                (Outcome::Skipped, Some(item.reason))
            } else if let Some((o, m)) = failed_lines.remove(&item.line) {
                (o, Some(m))
            } else {
                (Outcome::Ok, None)
            };
            ItemResult {
                row: Some(item.line),
                email: item.email,
                action: item.action,
                outcome,
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn rows(s: &str) -> Vec<MembershipRow> {
        parse_csv("g.csv", s.as_bytes()).unwrap()
    }

    #[test]
    fn validation_names_lines() {
        let err = parse_csv(
            "g.csv",
            "email,group,action\n\
             a@x.io,Sales,add\n\
             bad,Sales,add\n\
             b@x.io,,add\n\
             c@x.io,Sales,move\n\
             A@x.io,Sales,remove\n"
                .as_bytes(),
        )
        .unwrap_err();
        let Error::InvalidFile { problems, .. } = err else {
            panic!("expected InvalidFile")
        };
        let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert!(problems[0].message.contains("\"bad\""));
        assert!(problems[1].message.contains("group"));
        assert!(problems[2].message.contains("\"move\""));
        assert!(problems[3].message.contains("conflicts with line 2"));
    }

    #[test]
    fn plan_drops_noops_and_unknown_users_and_groups_per_user() {
        let r = rows(
            "email,group,action\n\
             a@x.io,Sales,add\n\
             a@x.io,Ops,remove\n\
             a@x.io,Eng,add\n\
             b@x.io,Sales,add\n\
             ghost@x.io,Sales,add\n\
             c@x.io,Sales,remove\n",
        );
        let mut current = Memberships::default();
        current
            .users
            .insert("a@x.io".to_string(), HashSet::from(["Ops".to_string()]));
        current
            .users
            .insert("b@x.io".to_string(), HashSet::from(["Sales".to_string()]));
        current.users.insert("c@x.io".to_string(), HashSet::new());
        current.groups = ["Ops", "Sales"].iter().map(|s| s.to_string()).collect();
        let p = plan(r, &current, 500);
        assert!(
            p.items[2].reason.contains("no such group"),
            "{}",
            p.items[2].reason
        );
        assert_eq!(p.items[0].reason, "add to Sales");
        let actions: Vec<&str> = p.items.iter().map(|i| i.action.as_str()).collect();
        assert_eq!(actions, ["add", "remove", "add", "skip", "skip", "skip"]);
        assert_eq!(p.items[3].reason, "already a member of Sales");
        assert_eq!(p.items[4].reason, "no such user");
        assert_eq!(p.items[5].reason, "not a member of Sales");
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.calls[0].items, 1, "one user in the call");
        let (change, lines) = &p.batches[0][0];
        assert_eq!(lines, &[2, 3, 4]);
        assert_eq!(change.add.len(), 2);
        assert_eq!(change.del.len(), 1);
        assert_eq!(p.changes(), 3);
    }

    #[test]
    fn plan_batches_by_user() {
        let csv: String = std::iter::once("email,group,action".to_owned())
            .chain((0..5).map(|i| format!("u{i}@x.io,G,add")))
            .collect::<Vec<_>>()
            .join("\n");
        let current = Memberships {
            users: (0..5)
                .map(|i| (format!("u{i}@x.io"), HashSet::new()))
                .collect(),
            groups: HashSet::from(["G".to_string()]),
        };
        let p = plan(rows(&csv), &current, 2);
        assert_eq!(p.calls.len(), 3);
        assert_eq!(p.items[4].call.as_deref(), Some("batchchangegrp #3"));
    }
}
