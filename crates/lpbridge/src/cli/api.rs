//! `lpbridge api call CMD`.

use std::io::Write;

use clap::Subcommand;

use super::Ctx;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ApiCmd {
    /// Send any Enterprise API command with the connection's credentials and print the raw
    /// response body. `--data` is JSON, or `@FILE` to read it from a file (`@-`: stdin). The
    /// exit code is 1 when LastPass refused (authorization error, `FAIL`), 3 on `WARN` errors.
    #[command(
        after_help = "Example:\n  lpbridge api call getuserdata --data '{\"pagesize\":10,\"pageindex\":0}'\n  \
        lpbridge api call reporting --data @query.json"
    )]
    Call {
        /// The Enterprise API command (`getuserdata`, `reporting`, …).
        cmd: String,
        /// The command's `data`: JSON, `@FILE` or `@-` (stdin).
        #[arg(long)]
        data: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: ApiCmd) -> Result<()> {
    let ApiCmd::Call { cmd, data } = cmd;
    if cmd.trim().is_empty() || !cmd.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::usage(format!(
            "invalid command name {cmd:?}: letters, digits and '_' only"
        )));
    }
    let data = match data {
        None => None,
        Some(d) => {
            let (text, source) = if d == "@-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                (s, "stdin".to_owned())
            } else if let Some(path) = d.strip_prefix('@') {
                let s = std::fs::read_to_string(path)
                    .map_err(|e| Error::usage(format!("cannot read --data file {path}: {e}")))?;
                (s, path.to_owned())
            } else {
                (d, "--data".to_owned())
            };
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| Error::usage(format!("{source} is not valid JSON: {e}")))?,
            )
        }
    };
    let resp = ctx.client()?.raw(&cmd, data).await?;
    let mut out = ctx.stdout();
    out.write_all(&resp.body)?;
    if !resp.body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if !(200..300).contains(&resp.status) {
        return Err(Error::Config(format!(
            "LastPass answered HTTP {} to {cmd}",
            resp.status
        )));
    }
    refusal(&cmd, &resp.body).map_or(Ok(()), Err)
}

/// The error an answer carries, so that scripts see a refusal in the exit code even though the
/// body is printed as is: the XML authorization error (1), a `FAIL` envelope (1) or a `WARN`
/// envelope with per-item errors (3).
fn refusal(cmd: &str, body: &[u8]) -> Option<Error> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start();
    if text.starts_with('<') && text.contains("Authorization Error") {
        return Some(lastpass::Error::Auth.into());
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let status = v.get("status")?.as_str()?.to_ascii_uppercase();
    let errors: Vec<String> = match v.get("error").or_else(|| v.get("errors")) {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    match status.as_str() {
        "FAIL" => Some(
            lastpass::Error::Failed {
                cmd: cmd.to_owned(),
                message: if errors.is_empty() {
                    "status FAIL".to_owned()
                } else {
                    errors.join("; ")
                },
            }
            .into(),
        ),
        "WARN" if !errors.is_empty() => Some(
            lastpass::Error::Partial {
                succeeded: Vec::new(),
                errors,
            }
            .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_recognised_in_raw_answers() {
        let auth =
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lastpass rc=\"Authorization Error\"/>\n";
        assert_eq!(refusal("getuserdata", auth).map(|e| e.exit_code()), Some(1));
        let fail = br#"{"status":"FAIL","error":"No such user: a@x.io"}"#;
        let e = refusal("deluser", fail).unwrap();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.message().contains("No such user: a@x.io"),
            "{}",
            e.message()
        );
        let warn = br#"{"status":"WARN","errors":["b@x.io does not exist"]}"#;
        assert_eq!(
            refusal("batchchangegrp", warn).map(|e| e.exit_code()),
            Some(3)
        );
        assert!(refusal("batchadd", br#"{"status":"OK"}"#).is_none());
        assert!(refusal("getuserdata", br#"{"total":1,"Users":{}}"#).is_none());
        assert!(refusal("getsfdata", br#"{"101":{"status":"FAIL"}}"#).is_none());
    }
}
