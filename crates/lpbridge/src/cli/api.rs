//! `lpbridge api call CMD`.

use std::io::Write;

use clap::Subcommand;

use super::Ctx;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ApiCmd {
    /// Send any Enterprise API command with the connection's credentials and print the raw
    /// response body. `--data` is JSON, or `@FILE` to read it from a file (`@-`: stdin).
    #[command(
        after_help = "Example:\n  lpbridge api call getuserdata --data '{\"pagesize\":10,\"pageindex\":0}'\n  \
        lpbridge api call reporting --data @query.json"
    )]
    Call {
        cmd: String,
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
    Ok(())
}
