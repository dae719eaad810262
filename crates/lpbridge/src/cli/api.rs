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
    let data = data.map(|d| parse_data(&d)).transpose()?;
    let resp = ctx.client()?.raw(&cmd, data).await?;
    let mut out = ctx.stdout();
    out.write_all(&resp.body)?;
    if !resp.body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if !(200..300).contains(&resp.status) {
        // The upstream error, so that a 404 gets the "is the endpoint right?" hint.
        return Err(lastpass::Error::Upstream {
            cmd,
            status: resp.status,
        }
        .into());
    }
    refusal(&cmd, &resp.body).map_or(Ok(()), Err)
}

/// The most `--data` read (a request body; anything near it is a mistake, not a query).
const MAX_DATA_BYTES: usize = 16 << 20;

/// `--data`: JSON, `@FILE` or `@-` (stdin). Every failure is a usage error naming the source.
fn parse_data(d: &str) -> Result<serde_json::Value> {
    let (text, source) = if d == "@-" {
        (read_limited("stdin", std::io::stdin().lock())?, "stdin")
    } else if let Some(path) = d.strip_prefix('@') {
        let f = std::fs::File::open(path)
            .map_err(|e| Error::usage(format!("cannot read --data file {path:?}: {e}")))?;
        (read_limited(path, f)?, path)
    } else {
        (d.to_owned(), "--data")
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::usage(format!("{source} is not valid JSON: {e}")))
}

/// Reads at most [`MAX_DATA_BYTES`] of UTF-8 text.
fn read_limited(source: &str, r: impl std::io::Read) -> Result<String> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    r.take(MAX_DATA_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::usage(format!("cannot read --data {source:?}: {e}")))?;
    if buf.len() > MAX_DATA_BYTES {
        return Err(Error::usage(format!(
            "--data {source:?} is larger than {} MiB",
            MAX_DATA_BYTES >> 20
        )));
    }
    String::from_utf8(buf)
        .map_err(|e| Error::usage(format!("--data {source:?} is not UTF-8 text: {e}")))
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
    use std::io::Read as _;

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

    #[test]
    fn data_sources_are_refused_with_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let e = parse_data(&format!("@{}", missing.display())).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("missing.json"), "{}", e.message());
        // A directory opens on Linux but cannot be read.
        let e = parse_data(&format!("@{}", dir.path().display())).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{}", e.message());
        let bin = dir.path().join("bin.json");
        std::fs::write(&bin, b"\"\xff\"").unwrap();
        let e = parse_data(&format!("@{}", bin.display())).unwrap_err();
        assert!(e.message().contains("not UTF-8"), "{}", e.message());
        let e = read_limited(
            "big",
            std::io::repeat(b' ').take(MAX_DATA_BYTES as u64 + 10),
        )
        .unwrap_err();
        assert!(
            e.message().contains("larger than 16 MiB"),
            "{}",
            e.message()
        );
        let e = parse_data("{nope").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message().contains("--data is not valid JSON"),
            "{}",
            e.message()
        );
        let ok = dir.path().join("ok.json");
        std::fs::write(&ok, br#"{"pagesize":1}"#).unwrap();
        assert_eq!(
            parse_data(&format!("@{}", ok.display())).unwrap()["pagesize"],
            1
        );
    }
}
