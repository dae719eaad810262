//! Admin behaviour below the CLI: plans for bulk changes (CSV user import, group apply) and their
//! application, plus per-item bulk operations. Nothing here parses flags or prints.
//!
//! A bulk change first computes a **plan**: one [`PlanItem`] per input row (what will happen and
//! why) and the [`PlannedCall`]s it needs. A dry run prints the plan; apply executes it and
//! answers one [`ItemResult`] per row.

pub mod bulk;
pub mod directory;
pub mod groups;
pub mod import;

use serde::Serialize;

use crate::output::Record;

/// What a plan intends to do with one input row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    /// 1-based line in the input file.
    pub line: u64,
    pub email: String,
    /// `create`, `add`, `remove`, `skip`.
    pub action: String,
    /// Which planned call carries it (`batchadd #1`), `None` when skipped.
    pub call: Option<String>,
    pub reason: String,
}

impl Record for PlanItem {
    fn headers() -> &'static [&'static str] {
        &["line", "email", "action", "call", "reason"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.line.to_string(),
            self.email.clone(),
            self.action.clone(),
            self.call.clone().unwrap_or_default(),
            self.reason.clone(),
        ]
    }
}

/// One API call a plan intends to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCall {
    /// `batchadd #1`.
    pub id: String,
    pub cmd: &'static str,
    /// Items sent in this call.
    pub items: usize,
    pub reason: String,
}

/// The outcome for one item of a bulk change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Created,
    Unchanged,
    Skipped,
    Failed,
    NotAttempted,
}

impl Outcome {
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::NotAttempted)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Created => "created",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::NotAttempted => "not_attempted",
        }
    }
}

/// The per-row (or per-e-mail) result report of a bulk change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemResult {
    /// Input line, for file-driven changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    pub email: String,
    pub action: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Record for ItemResult {
    fn headers() -> &'static [&'static str] {
        &["row", "email", "action", "outcome", "message"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.row.map(|r| r.to_string()).unwrap_or_default(),
            self.email.clone(),
            self.action.clone(),
            self.outcome.as_str().to_owned(),
            self.message.clone().unwrap_or_default(),
        ]
    }
}

impl ItemResult {
    /// The result of `action` for one address: ok, or failed with the message `failure`.
    pub(crate) fn for_email(
        email: &lastpass::Email,
        action: &str,
        failure: Option<String>,
    ) -> Self {
        ItemResult {
            row: None,
            email: email.to_string(),
            action: action.to_owned(),
            outcome: if failure.is_some() {
                Outcome::Failed
            } else {
                Outcome::Ok
            },
            message: failure,
        }
    }
}

/// `Err(Partial)` when any item failed, so the exit code is 3 after the report is printed.
pub fn check_results(results: &[ItemResult]) -> crate::error::Result<()> {
    let failed = results.iter().filter(|r| r.outcome.is_failure()).count();
    if failed > 0 {
        Err(crate::error::Error::Partial {
            failed,
            total: results.len(),
        })
    } else {
        Ok(())
    }
}

/// Whether a username LastPass answered is `email`. Folded as [`Email::folded`] is (full Unicode
/// lower case), so that the directory lookups, the import plan and the reports agree on
/// non-ASCII addresses.
pub(crate) fn is_user(name: &str, email: &lastpass::Email) -> bool {
    name.to_lowercase() == email.folded()
}

/// The messages of `errors` that name `email` (case-insensitive), joined.
pub(crate) fn errors_naming(errors: &[String], email: &str) -> Option<String> {
    let needle = email.to_lowercase();
    let hits: Vec<&str> = errors
        .iter()
        .filter(|e| e.to_lowercase().contains(&needle))
        .map(String::as_str)
        .collect();
    (!hits.is_empty()).then(|| hits.join("; "))
}

/// Attributes a bulk answer's error messages (`WARN` `errors`) to items. An item gets the
/// messages naming its e-mail (case-insensitive) or one of its `keys` (e.g. the groups it
/// touched). When no message can be attributed to any item, every item gets all of them: an
/// error LastPass did not tie to anyone is not silently reported as success.
pub(crate) fn attribute_errors(
    errors: &[String],
    items: &[(&str, Vec<&str>)],
) -> Vec<Option<String>> {
    if errors.is_empty() {
        return vec![None; items.len()];
    }
    let lowered: Vec<String> = errors.iter().map(|e| e.to_lowercase()).collect();
    let emails: Vec<String> = items.iter().map(|(e, _)| e.to_lowercase()).collect();
    // Messages naming no item's e-mail may still name one of its keys.
    let unclaimed: Vec<bool> = lowered
        .iter()
        .map(|m| !emails.iter().any(|e| m.contains(e.as_str())))
        .collect();
    let per_item: Vec<Option<String>> = items
        .iter()
        .zip(&emails)
        .map(|((_, keys), email)| {
            let hits: Vec<&str> = errors
                .iter()
                .enumerate()
                .filter(|(i, e)| {
                    lowered[*i].contains(email.as_str())
                        || (unclaimed[*i] && keys.iter().any(|k| e.contains(k)))
                })
                .map(|(_, e)| e.as_str())
                .collect();
            (!hits.is_empty()).then(|| hits.join("; "))
        })
        .collect();
    if per_item.iter().all(Option::is_none) {
        vec![Some(errors.join("; ")); items.len()]
    } else {
        per_item
    }
}

/// Maps byte offsets of an input file to 1-based line numbers. (The `csv` crate's own line
/// counter drifts after blank lines; byte offsets are exact.)
pub(crate) struct LineIndex<'a> {
    bytes: &'a [u8],
    newlines: Vec<u64>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            newlines: bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i as u64)
                .collect(),
        }
    }

    /// The line holding the first non-blank byte at or after `offset` (a record's position
    /// includes the blank lines skipped before it).
    pub(crate) fn line(&self, mut offset: u64) -> u64 {
        while let Some(b'\n' | b'\r') = self.bytes.get(offset as usize) {
            offset += 1;
        }
        self.newlines.partition_point(|&n| n < offset) as u64 + 1
    }

    /// The line of a record (or of an error's position).
    pub(crate) fn line_of(&self, pos: Option<&csv::Position>) -> u64 {
        pos.map(|p| self.line(p.byte())).unwrap_or(0)
    }
}

/// The CSV reader every input file uses: a header row, rows of any width (checked per row so the
/// problem names its line), fields trimmed.
pub(crate) fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes)
}

/// An input file refused for one problem.
pub(crate) fn file_error(path: &str, line: u64, message: String) -> crate::error::Error {
    crate::error::Error::InvalidFile {
        path: path.to_owned(),
        problems: vec![crate::error::LineProblem { line, message }],
    }
}

/// The valid rows, or every problem found.
pub(crate) fn rows_or_problems<T>(
    path: &str,
    rows: Vec<T>,
    problems: Vec<crate::error::LineProblem>,
) -> crate::error::Result<Vec<T>> {
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(crate::error::Error::InvalidFile {
            path: path.to_owned(),
            problems,
        })
    }
}

/// One [`PlannedCall`] per batch, numbered from 1 (`batchadd #1`).
pub(crate) fn planned_calls(
    cmd: &'static str,
    batch_sizes: impl IntoIterator<Item = usize>,
    reason: impl Fn(usize) -> String,
) -> Vec<PlannedCall> {
    batch_sizes
        .into_iter()
        .enumerate()
        .map(|(i, n)| PlannedCall {
            id: format!("{cmd} #{}", i + 1),
            cmd,
            items: n,
            reason: reason(n),
        })
        .collect()
}

/// A value from an input file, quoted for a message and cut to 60 characters: a stray multi-MB
/// field must not become a multi-MB error line.
pub(crate) fn quoted(value: &str) -> String {
    const MAX: usize = 60;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
        None => format!("{value:?}"),
    }
}

/// Reads a whole input file (CSV inputs are bounded by what an admin prepares).
pub(crate) fn read_all<R: std::io::Read>(
    path: &str,
    mut reader: R,
) -> crate::error::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .map_err(|e| crate::error::Error::usage(format!("cannot read {path}: {e}")))?;
    Ok(buf)
}

/// Removes repeated addresses (case-insensitively), keeping the first spelling and order.
pub fn dedup_emails(emails: Vec<lp_types::Email>) -> Vec<lp_types::Email> {
    let mut seen = std::collections::HashSet::new();
    emails
        .into_iter()
        .filter(|e| seen.insert(e.folded().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_attributed_by_email_or_group_else_to_everyone() {
        let items = vec![("a@x.io", vec!["Sales"]), ("b@x.io", vec!["Ops"])];
        let r = attribute_errors(&["B@x.io does not exist".into()], &items);
        assert_eq!(r[0], None);
        assert_eq!(r[1].as_deref(), Some("B@x.io does not exist"));
        let r = attribute_errors(&["group Ops does not exist".into()], &items);
        assert_eq!(r[0], None);
        assert!(r[1].is_some());
        let r = attribute_errors(&["b@x.io could not be added to Sales".into()], &items);
        assert_eq!(r[0], None, "a message naming a user is not spread by group");
        assert!(r[1].is_some());
        let r = attribute_errors(&["something went wrong".into()], &items);
        assert!(
            r.iter()
                .all(|m| m.as_deref() == Some("something went wrong"))
        );
        assert_eq!(attribute_errors(&[], &items), vec![None, None]);
    }

    #[test]
    fn usernames_match_with_unicode_case_folding() {
        let email = lastpass::Email::parse("Ünal@Example.com").unwrap();
        assert!(is_user("ünal@example.com", &email));
        assert!(is_user("ÜNAL@EXAMPLE.COM", &email));
        assert!(!is_user("unal@example.com", &email));
        let r = bulk::toggle_results(
            "disable",
            std::slice::from_ref(&email),
            &lastpass::ToggleOutcome {
                changed: vec!["ünal@example.com".into()],
                unchanged: vec![],
            },
            None,
        );
        assert_eq!(r[0].outcome, Outcome::Ok);
    }

    #[test]
    fn quoted_values_are_cut_on_a_char_boundary() {
        assert_eq!(quoted("add"), "\"add\"");
        let long = "é".repeat(100);
        let q = quoted(&long);
        assert!(q.starts_with(&format!("\"{}\"…", "é".repeat(60))), "{q}");
        assert!(q.ends_with("(200 bytes)"), "{q}");
    }
}
