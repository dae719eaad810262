//! Per-e-mail bulk operations (deluser, reinviteuser, resetpassword…): LastPass has one call per
//! user for these, so they run with bounded concurrency (the client caps requests in flight) and
//! report one [`ItemResult`] per address, in input order.

use futures::StreamExt;
use lastpass::{Client, DeleteAction, Email, ToggleOutcome};

use super::{ItemResult, Outcome};

/// How many per-user calls are started at once (the client's own cap still applies).
pub const CONCURRENCY: usize = 4;

/// A per-user operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOp {
    Delete(DeleteAction),
    Reinvite,
    ResetPassword,
    RequirePasswordChange,
    DisableMfa,
}

impl UserOp {
    pub fn name(self) -> &'static str {
        match self {
            UserOp::Delete(DeleteAction::Deactivate) => "deactivate",
            UserOp::Delete(DeleteAction::Remove) => "remove",
            UserOp::Delete(DeleteAction::Delete) => "delete",
            UserOp::Delete(DeleteAction::Uninvite) => "uninvite",
            UserOp::Reinvite => "reinvite",
            UserOp::ResetPassword => "reset-password",
            UserOp::RequirePasswordChange => "require-password-change",
            UserOp::DisableMfa => "disable-mfa",
        }
    }

    /// The Enterprise API command behind it.
    pub fn cmd(self) -> &'static str {
        match self {
            UserOp::Delete(_) => "deluser",
            UserOp::Reinvite => "reinviteuser",
            UserOp::ResetPassword => "resetpassword",
            UserOp::RequirePasswordChange => "requiremasterpasswordchange",
            UserOp::DisableMfa => "disablemultifactor",
        }
    }

    /// Whether the client never re-sends it after an ambiguous failure (a second invitation or
    /// reset e-mail would reach the user), so such a failure may hide an applied change.
    pub fn is_unsafe_write(self) -> bool {
        matches!(self, UserOp::Reinvite | UserOp::ResetPassword)
    }

    /// Whether the CLI asks for confirmation first.
    pub fn is_destructive(self) -> bool {
        matches!(self, UserOp::Delete(_))
    }

    /// Runs it for one address (one call).
    pub async fn call(self, client: &Client, email: &Email) -> Result<(), lastpass::Error> {
        match self {
            UserOp::Delete(action) => client.delete_user(email, action).await,
            UserOp::Reinvite => client.reinvite_user(email).await,
            UserOp::ResetPassword => client.reset_password(email).await,
            UserOp::RequirePasswordChange => client.require_password_change(email).await,
            UserOp::DisableMfa => client.disable_multifactor(email).await,
        }
    }
}

/// Runs `op` for every address, `CONCURRENCY` at a time, results in input order.
pub async fn run_user_op(client: &Client, op: UserOp, emails: &[Email]) -> Vec<ItemResult> {
    for_each(emails, op.name(), op.is_unsafe_write(), |email| {
        let client = client.clone();
        Box::pin(async move { op.call(&client, &email).await })
    })
    .await
}

/// One item's call: owned and boxed, so callers' futures stay `Send` (a closure returning a
/// future that borrows trips the compiler's higher-ranked `Send` check inside axum handlers).
pub type ItemFuture = futures::future::BoxFuture<'static, Result<(), lastpass::Error>>;

/// Applies `f` to every address with bounded concurrency. With `unsafe_write`, a failure that may
/// have been applied anyway (the request reached LastPass but the answer was lost or garbled)
/// says so: the change was not retried, and running it again may repeat it.
pub async fn for_each<F>(
    emails: &[Email],
    action: &str,
    unsafe_write: bool,
    f: F,
) -> Vec<ItemResult>
where
    F: Fn(Email) -> ItemFuture,
{
    // Built up front as boxed futures, so the stream's type holds no closure.
    let calls: Vec<futures::future::BoxFuture<'static, (Email, Result<(), lastpass::Error>)>> =
        emails
            .iter()
            .map(|e| {
                let (email, call) = (e.clone(), f(e.clone()));
                Box::pin(async move { (email, call.await) })
                    as futures::future::BoxFuture<'static, _>
            })
            .collect();
    futures::stream::iter(calls)
        .buffered(CONCURRENCY)
        .map(|(email, res)| {
            ItemResult::for_email(
                &email,
                action,
                res.err().map(|e| describe(&e, unsafe_write)),
            )
        })
        .collect()
        .await
}

/// An error message for the per-item report; see [`for_each`] for `unsafe_write`.
pub fn describe(e: &lastpass::Error, unsafe_write: bool) -> String {
    if unsafe_write && is_ambiguous(e) {
        format!(
            "{e} (LastPass may have applied it; not retried, so that nothing is sent twice: \
             check before running it again)"
        )
    } else {
        e.to_string()
    }
}

/// Whether the request may have been applied although it failed: it reached LastPass but the
/// answer was lost or garbled.
pub fn is_ambiguous(e: &lastpass::Error) -> bool {
    matches!(
        e,
        lastpass::Error::Decode { .. }
            | lastpass::Error::Transport {
                ambiguous: true,
                ..
            }
    )
}

/// Enables or disables `emails` (one `enableuser`/`disableuser` call) and reports one result per
/// address. A failure of the whole call that certainly changed nothing (authentication,
/// configuration, rate limit, server error, a request that never reached LastPass) is returned as
/// such, so callers see its status and `Retry-After`; a partial or ambiguous answer becomes the
/// addresses' outcomes, so that every address is still reported.
pub async fn toggle_users(
    client: &Client,
    enable: bool,
    emails: &[Email],
) -> crate::error::Result<Vec<ItemResult>> {
    let action = if enable { "enable" } else { "disable" };
    let res = if enable {
        client.enable_users(emails).await
    } else {
        client.disable_users(emails).await
    };
    Ok(match res {
        Ok(outcome) => toggle_results(action, emails, &outcome, None),
        Err(
            e @ (lastpass::Error::Auth
            | lastpass::Error::Config(_)
            | lastpass::Error::RateLimited { .. }
            | lastpass::Error::Upstream { .. }
            | lastpass::Error::Transport {
                ambiguous: false, ..
            }),
        ) => return Err(e.into()),
        // Some users changed, some did not: each address gets its own outcome, and the
        // error messages go to the addresses they name.
        Err(lastpass::Error::Partial { succeeded, errors }) => {
            partial_toggle_results(action, emails, succeeded, &errors)
        }
        Err(e) => {
            let msg = e.to_string();
            toggle_results(action, emails, &ToggleOutcome::default(), Some(&msg))
        }
    })
}

/// Results of a `disableuser`/`enableuser` answer that reported errors: the users LastPass lists
/// as done are ok, the others failed with the messages naming them (all of them when none does).
fn partial_toggle_results(
    action: &str,
    emails: &[Email],
    succeeded: Vec<String>,
    errors: &[String],
) -> Vec<ItemResult> {
    let outcome = ToggleOutcome {
        changed: succeeded,
        unchanged: Vec::new(),
    };
    let mut results = toggle_results(action, emails, &outcome, None);
    let keys: Vec<(&str, Vec<&str>)> = emails.iter().map(|e| (e.as_str(), Vec::new())).collect();
    let messages = super::attribute_errors(errors, &keys);
    for (r, m) in results.iter_mut().zip(messages) {
        if r.outcome.is_failure() {
            r.message = Some(m.unwrap_or_else(|| errors.join("; ")));
        }
    }
    results
}

/// Turns a `disableuser`/`enableuser` answer into one result per requested address: changed →
/// ok, unchanged → unchanged, absent from both lists → failed.
pub fn toggle_results(
    action: &str,
    emails: &[Email],
    outcome: &ToggleOutcome,
    error: Option<&str>,
) -> Vec<ItemResult> {
    let has = |list: &[String], e: &Email| list.iter().any(|x| super::is_user(x, e));
    emails
        .iter()
        .map(|e| {
            let (outcome, message) = if has(&outcome.changed, e) {
                (Outcome::Ok, None)
            } else if has(&outcome.unchanged, e) {
                (Outcome::Unchanged, None)
            } else {
                (
                    Outcome::Failed,
                    Some(
                        error
                            .unwrap_or("not reported as changed by LastPass")
                            .to_owned(),
                    ),
                )
            };
            ItemResult {
                row: None,
                email: e.to_string(),
                action: action.to_owned(),
                outcome,
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggle_results_classify_every_address() {
        let emails: Vec<Email> = ["A@x.io", "b@x.io", "c@x.io"]
            .iter()
            .map(|s| Email::parse(s).unwrap())
            .collect();
        let out = ToggleOutcome {
            changed: vec!["a@x.io".into()],
            unchanged: vec!["b@x.io".into()],
        };
        let r = toggle_results("disable", &emails, &out, None);
        assert_eq!(r[0].outcome, Outcome::Ok);
        assert_eq!(r[0].email, "A@x.io");
        assert_eq!(r[1].outcome, Outcome::Unchanged);
        assert_eq!(r[2].outcome, Outcome::Failed);
        assert!(super::super::check_results(&r).is_err());
    }

    #[test]
    fn ambiguous_failures_of_unsafe_writes_say_they_may_be_applied() {
        let garbled = lastpass::Error::Decode {
            cmd: "reinviteuser".into(),
            reason: "malformed body".into(),
            excerpt: "{".into(),
        };
        assert!(describe(&garbled, true).contains("may have applied it"));
        assert!(!describe(&garbled, false).contains("may have applied it"));
        let refused = lastpass::Error::Failed {
            cmd: "reinviteuser".into(),
            message: "User has already accepted the invitation".into(),
        };
        assert!(!describe(&refused, true).contains("may have applied it"));
        assert!(UserOp::Reinvite.is_unsafe_write());
        assert!(!UserOp::Delete(DeleteAction::Remove).is_unsafe_write());
    }

    #[test]
    fn op_names_and_commands() {
        assert_eq!(UserOp::Delete(DeleteAction::Uninvite).name(), "uninvite");
        assert_eq!(UserOp::Delete(DeleteAction::Remove).cmd(), "deluser");
        assert!(UserOp::Delete(DeleteAction::Deactivate).is_destructive());
        assert!(!UserOp::Reinvite.is_destructive());
        assert_eq!(
            UserOp::RequirePasswordChange.cmd(),
            "requiremasterpasswordchange"
        );
    }
}
