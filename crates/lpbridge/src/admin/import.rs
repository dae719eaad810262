//! `users import FILE.csv`: validate every row, plan (skipping users that already exist, found
//! with one streamed directory listing), then apply in `batchadd` batches.
//!
//! CSV columns (header row required, names case-insensitive):
//!
//! | column | required | notes |
//! |---|---|---|
//! | `email` (or `username`) | yes | validated; duplicates in the file are refused |
//! | `fullname` (or `name`) | no | |
//! | `groups` | no | group names separated by `;` |
//! | `duo_username`, `securid_username` | no | |
//! | `attrib.<Key>` | no | custom attributes (`attrib.Department`) |
//!
//! Passwords are never read from the file: imported users are invited.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use lastpass::{Client, Email, GroupName, NewUser};
use serde::Serialize;

use super::{ItemResult, Outcome, PlanItem, PlannedCall, errors_naming};
use crate::error::{LineProblem, Result};

/// Default `--batch-size`.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// One valid CSV row.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub user: NewUser,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Email,
    Fullname,
    Groups,
    Duo,
    SecurId,
    Attrib,
}

fn column(name: &str) -> Option<Col> {
    match name.trim().to_ascii_lowercase().as_str() {
        "email" | "username" => Some(Col::Email),
        "fullname" | "name" | "full_name" => Some(Col::Fullname),
        "groups" | "group" => Some(Col::Groups),
        "duo_username" | "duousername" => Some(Col::Duo),
        "securid_username" | "securidusername" => Some(Col::SecurId),
        n if n.starts_with("attrib.") && n.len() > "attrib.".len() => Some(Col::Attrib),
        _ => None,
    }
}

/// Parses and validates the whole file. Every invalid row is reported (with its line number),
/// not just the first.
pub fn parse_csv<R: Read>(path: &str, reader: R) -> Result<Vec<ImportRow>> {
    let bytes = super::read_all(path, reader)?;
    let index = super::LineIndex::new(&bytes);
    let mut rdr = super::csv_reader(&bytes);
    let file_err = |line: u64, message: String| super::file_error(path, line, message);
    let headers = rdr
        .headers()
        .map_err(|e| file_err(1, format!("cannot read the header row: {e}")))?
        .clone();
    let mut cols = Vec::with_capacity(headers.len());
    // A repeated column would silently lose one of its values: refuse it. Keyed by column, or
    // by attribute name for `attrib.<Key>`.
    let mut seen_cols: HashMap<(u8, String), &str> = HashMap::new();
    for h in headers.iter() {
        match column(h) {
            Some(c) => {
                let key = match c {
                    Col::Attrib => (c as u8, h.to_ascii_lowercase()),
                    _ => (c as u8, String::new()),
                };
                if let Some(first) = seen_cols.insert(key, h) {
                    return Err(file_err(
                        1,
                        format!(
                            "duplicate column {} (same as {})",
                            super::quoted(h),
                            super::quoted(first)
                        ),
                    ));
                }
                cols.push(c);
            }
            None => {
                return Err(file_err(
                    1,
                    format!(
                        "unknown column {} (known: email, fullname, groups, duo_username, \
                         securid_username, attrib.<Key>)",
                        super::quoted(h)
                    ),
                ));
            }
        }
    }
    if !cols.contains(&Col::Email) {
        return Err(file_err(1, "the header row has no `email` column".into()));
    }

    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = index.line_of(e.position());
                problems.push(LineProblem {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = index.line_of(rec.position());
        if rec.len() != cols.len() {
            problems.push(LineProblem {
                line,
                message: format!("has {} field(s), the header has {}", rec.len(), cols.len()),
            });
            continue;
        }
        match parse_row(&headers, &cols, &rec) {
            Ok(user) => {
                if let Some(first) = seen.insert(user.username.folded().to_owned(), line) {
                    problems.push(LineProblem {
                        line,
                        message: format!(
                            "duplicate email {} (first on line {first})",
                            user.username
                        ),
                    });
                } else {
                    rows.push(ImportRow { line, user });
                }
            }
            Err(message) => problems.push(LineProblem { line, message }),
        }
    }
    super::rows_or_problems(path, rows, problems)
}

fn parse_row(
    headers: &csv::StringRecord,
    cols: &[Col],
    rec: &csv::StringRecord,
) -> std::result::Result<NewUser, String> {
    let mut email = None;
    let mut user_fields = Vec::new();
    for (i, (col, value)) in cols.iter().zip(rec.iter()).enumerate() {
        if *col == Col::Email {
            email = Some(Email::parse(value).map_err(|e| e.to_string())?);
        } else {
            user_fields.push((i, *col, value));
        }
    }
    let email = email.ok_or("missing email")?;
    let mut user = NewUser::new(email);
    let opt = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    for (i, col, value) in user_fields {
        match col {
            Col::Fullname => user.fullname = opt(value),
            Col::Duo => user.duo_username = opt(value),
            Col::SecurId => user.securid_username = opt(value),
            Col::Groups => {
                for g in value.split(';').map(str::trim).filter(|g| !g.is_empty()) {
                    let g = GroupName::new(g).map_err(|e| e.to_string())?;
                    if !user.groups.contains(&g) {
                        user.groups.push(g);
                    }
                }
            }
            Col::Attrib => {
                if !value.is_empty() {
                    // `column` accepted this header as `attrib.` + a key (ASCII prefix, so the
                    // slice is on a char boundary); `i` indexes `headers`, as `cols` does.
                    let key = &headers[i].trim()["attrib.".len()..];
                    user.attribs.insert(key.to_owned(), value.to_owned());
                }
            }
            Col::Email => {}
        }
    }
    Ok(user)
}

/// The import plan: per-row intent and the `batchadd` calls.
#[derive(Debug, Clone, Serialize)]
pub struct ImportPlan {
    pub items: Vec<PlanItem>,
    pub calls: Vec<PlannedCall>,
    #[serde(skip)]
    batches: Vec<Vec<ImportRow>>,
}

impl ImportPlan {
    pub fn to_create(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }
    pub fn skipped(&self) -> usize {
        self.items.len() - self.to_create()
    }
}

/// Computes the plan from validated rows and the set of existing usernames (folded).
pub fn plan(rows: Vec<ImportRow>, existing: &HashSet<String>, batch_size: usize) -> ImportPlan {
    let batch_size = batch_size.max(1);
    let mut items = Vec::with_capacity(rows.len());
    let mut batches: Vec<Vec<ImportRow>> = Vec::new();
    for row in rows {
        let email = row.user.username.to_string();
        if existing.contains(row.user.username.folded()) {
            items.push(PlanItem {
                line: row.line,
                email,
                action: "skip".into(),
                call: None,
                reason: "already in the directory (user or pending invitation)".into(),
            });
            continue;
        }
        if batches.last().is_none_or(|b| b.len() >= batch_size) {
            batches.push(Vec::with_capacity(batch_size));
        }
        let n = batches.len();
        items.push(PlanItem {
            line: row.line,
            email,
            action: "create".into(),
            call: Some(format!("batchadd #{n}")),
            reason: "not in the directory; will be invited".into(),
        });
        if let Some(b) = batches.last_mut() {
            b.push(row);
        }
    }
    let calls = super::planned_calls("batchadd", batches.iter().map(Vec::len), |n| {
        format!("create {n} new user(s)")
    });
    ImportPlan {
        items,
        calls,
        batches,
    }
}

/// Validates, lists once, and plans.
pub async fn build_plan(
    client: &Client,
    rows: Vec<ImportRow>,
    batch_size: usize,
) -> Result<ImportPlan> {
    let wanted: HashSet<String> = rows
        .iter()
        .map(|r| r.user.username.folded().to_owned())
        .collect();
    let existing = super::directory::existing_among(client, &wanted).await?;
    Ok(plan(rows, &existing, batch_size))
}

/// Executes the plan, batch by batch, calling `progress(n)` after each batch with the rows it
/// carried. Returns one result per input row (skipped rows included), in input order.
pub async fn apply(
    client: &Client,
    plan: ImportPlan,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Vec<ItemResult> {
    let mut by_line: HashMap<u64, ItemResult> = HashMap::new();
    let mut fatal: Option<String> = None;
    for batch in &plan.batches {
        let users: Vec<NewUser> = batch.iter().map(|r| r.user.clone()).collect();
        let outcome = match &fatal {
            Some(msg) => Err((Outcome::NotAttempted, msg.clone())),
            None => match client.batch_add(&users).await {
                Ok(()) => Ok(None),
                Err(lastpass::Error::Partial { succeeded, errors }) => {
                    Ok(Some((succeeded, errors)))
                }
                Err(e) => {
                    let msg = e.to_string();
                    if !matches!(e, lastpass::Error::Failed { .. }) {
                        fatal = Some(format!("not attempted after an earlier failure: {msg}"));
                    }
                    Err((Outcome::Failed, msg))
                }
            },
        };
        // Whether any error names a user of this batch: the same for every row, so asked once.
        let any_named = match &outcome {
            Ok(Some((_, errors))) => users
                .iter()
                .any(|u| errors_naming(errors, u.username.as_str()).is_some()),
            _ => false,
        };
        for row in batch {
            let email = row.user.username.to_string();
            let (outcome, message) = match &outcome {
                Ok(None) => (Outcome::Created, None),
                Ok(Some((succeeded, errors))) => {
                    if let Some(m) = errors_naming(errors, &email) {
                        (Outcome::Failed, Some(m))
                    } else if succeeded
                        .iter()
                        .any(|s| super::is_user(s, &row.user.username))
                    {
                        (Outcome::Created, None)
                    } else if !succeeded.is_empty() || !any_named {
                        (Outcome::Failed, Some(errors.join("; ")))
                    } else {
                        (Outcome::Created, None)
                    }
                }
                Err((o, m)) => (*o, Some(m.clone())),
            };
            by_line.insert(
                row.line,
                ItemResult {
                    row: Some(row.line),
                    email,
                    action: "create".into(),
                    outcome,
                    message,
                },
            );
        }
        progress(batch.len() as u64);
    }
    plan.items
        .into_iter()
        .map(|item| {
            by_line.remove(&item.line).unwrap_or(ItemResult {
                row: Some(item.line),
                email: item.email,
                action: item.action,
                outcome: Outcome::Skipped,
                message: Some(item.reason),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn parse(s: &str) -> Result<Vec<ImportRow>> {
        parse_csv("users.csv", s.as_bytes())
    }

    fn problems(e: Error) -> Vec<LineProblem> {
        match e {
            Error::InvalidFile { problems, .. } => problems,
            other => panic!("expected InvalidFile, got {other:?}"),
        }
    }

    #[test]
    fn parses_columns_groups_and_attribs() {
        let rows = parse(
            "Email,Name,groups,attrib.Department\n\
             ann@x.io,Ann One,Sales; Ops ;Sales,Finance\n\
             bob@x.io,,,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        let u = &rows[0].user;
        assert_eq!(u.fullname.as_deref(), Some("Ann One"));
        let groups: Vec<&str> = u.groups.iter().map(|g| g.as_str()).collect();
        assert_eq!(groups, ["Sales", "Ops"]);
        assert_eq!(u.attribs["Department"], "Finance");
        assert!(u.password.is_none());
        assert_eq!(rows[1].user.fullname, None);
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn every_bad_row_is_named_with_its_line() {
        let err = parse(
            "email,fullname\n\
             ok@x.io,Ok\n\
             not-an-email,Bad\n\
             \n\
             OK@x.io,Dup\n\
             three@x.io,a,b\n",
        )
        .unwrap_err();
        let p = problems(err);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0].line, 3);
        assert!(p[0].message.contains("not-an-email"), "{}", p[0].message);
        assert_eq!(p[1].line, 5);
        assert!(p[1].message.contains("duplicate") && p[1].message.contains("line 2"));
        assert_eq!(p[2].line, 6);
        assert!(p[2].message.contains("3 field(s)"));
    }

    #[test]
    fn header_problems_are_refused() {
        let p = problems(parse("mail,name\na@x.io,A\n").unwrap_err());
        assert!(p[0].message.contains("unknown column \"mail\""));
        let p = problems(parse("fullname\nA\n").unwrap_err());
        assert!(p[0].message.contains("no `email` column"));
        let p = problems(parse("email,password\na@x.io,x\n").unwrap_err());
        assert!(p[0].message.contains("unknown column \"password\""));
    }

    #[test]
    fn plan_skips_existing_and_batches_the_rest() {
        let csv: String = std::iter::once("email".to_owned())
            .chain((0..7).map(|i| format!("u{i}@x.io")))
            .collect::<Vec<_>>()
            .join("\n");
        let rows = parse(&csv).unwrap();
        let existing: HashSet<String> = ["u1@x.io", "u4@x.io"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = plan(rows, &existing, 2);
        assert_eq!(p.items.len(), 7);
        assert_eq!(p.to_create(), 5);
        assert_eq!(p.skipped(), 2);
        assert_eq!(p.calls.len(), 3);
        assert_eq!(
            p.calls.iter().map(|c| c.items).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert_eq!(p.items[1].action, "skip");
        assert_eq!(
            p.items[1].reason,
            "already in the directory (user or pending invitation)"
        );
        assert_eq!(p.items[0].call.as_deref(), Some("batchadd #1"));
        assert_eq!(p.items[6].call.as_deref(), Some("batchadd #3"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["calls"][0]["cmd"], "batchadd");
    }

    #[test]
    fn plan_matches_existing_case_insensitively() {
        let rows = parse("email\nAnn@X.io\n").unwrap();
        let existing: HashSet<String> = ["ann@x.io".to_string()].into();
        assert_eq!(plan(rows, &existing, 10).to_create(), 0);
    }

    #[test]
    fn hostile_files_get_a_message_not_a_panic() {
        // Repeated columns would lose a value: refused, naming the column.
        for csv in [
            "email,fullname,email\na@x.io,A,b@x.io\n",
            "email,username\na@x.io,b@x.io\n",
            "email,name,fullname\na@x.io,A,B\n",
            "email,attrib.Dept,ATTRIB.dept\na@x.io,A,B\n",
        ] {
            let p = problems(parse(csv).unwrap_err());
            assert_eq!(p[0].line, 1);
            assert!(p[0].message.contains("duplicate column"), "{csv}: {p:?}");
        }
        // Distinct attributes are fine.
        assert_eq!(
            parse("email,attrib.A,attrib.B\na@x.io,1,2\n")
                .unwrap()
                .len(),
            1
        );
        // BOM and CRLF.
        let rows = parse("\u{feff}email,fullname\r\na@x.io,A\r\n\r\nb@x.io,B\r\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[0].user.fullname.as_deref(), Some("A"));
        // Empty file, header only.
        let p = problems(parse("").unwrap_err());
        assert!(p[0].message.contains("no `email` column"), "{p:?}");
        assert!(parse("email\n").unwrap().is_empty());
        // Not UTF-8 (Latin-1 name) and UTF-16: named problems.
        let p = problems(parse_csv("u.csv", &b"email,fullname\na@x.io,Jos\xe9\n"[..]).unwrap_err());
        assert_eq!(p[0].line, 2);
        let utf16: Vec<u8> = "email\na@x.io\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(parse_csv("u.csv", &utf16[..]).is_err());
        // A huge field is refused by validation with a line number.
        let huge = format!("email\n{}@x.io\n", "a".repeat(1 << 20));
        let p = problems(parse(&huge).unwrap_err());
        assert_eq!(p[0].line, 2);
    }
}
