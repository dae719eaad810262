//! The `lpbridge` command line: clap definitions per area, parsing and formatting only. The
//! behaviour lives in [`crate::admin`], [`crate::connections`], [`crate::store`] and the
//! `lastpass` client.

mod api;
mod apikey;
mod connection;
mod console;
mod events;
mod folders;
mod groups;
mod msp;
mod psa;
mod sandbox;
mod scim;
mod serve;
mod sites;
mod users;

use std::io::{BufWriter, IsTerminal, Stdout, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{Args, Parser, Subcommand};
use lastpass::{Client, ClientConfig};
use lp_types::{ConnectionId, Secret};

use crate::admin::dedup_emails;
use crate::connections::StoreLocation;
use crate::error::{Error, Result};
use crate::output::Format;
use crate::store::{DatabaseUrl, Store};

const AFTER_LONG_HELP: &str = "\
CREDENTIALS (first match wins):
  1. --connection NAME on the command line: that stored connection.
  2. LPBRIDGE_CID and LPBRIDGE_PROVHASH in the environment (endpoint from --endpoint,
     else LPBRIDGE_ENDPOINT, else https://lastpass.com/enterpriseapi.php).
  3. LPBRIDGE_CONNECTION in the environment: that stored connection.
  4. The stored connection named `default`, or the only stored connection.
  --endpoint always overrides the endpoint of the chosen credentials.

STORE: connections and API keys live in a database: SQLite at <data dir>/lpbridge.db by
default, or PostgreSQL with --database-url postgres://… (LPBRIDGE_DATABASE_URL). The data dir
is --data-dir (LPBRIDGE_DATA_DIR, or LPBRIDGE_HOME), default the platform data dir.
Provisioning hashes are encrypted at rest (ChaCha20-Poly1305) with the key from
LPBRIDGE_MASTER_KEY (32 bytes, base64 or hex) or a generated 0600 key file
<data dir>/master.key; replicas sharing a PostgreSQL database need the same key.

OUTPUT: --format table|json|jsonl|csv; JSON when stdout is not a terminal, a table when it is.
Passwords and provisioning hashes are never taken from arguments and never printed.

EXIT CODES:
  0  success
  1  error (LastPass refused, authentication, network, configuration)
  2  usage error or invalid input, refused before any API call
  3  partial failure: one or more items of a bulk change failed (the per-item report
     on stdout says which)

EXAMPLE:
  lpbridge connection add prod --cid 8771312 --provhash-stdin < provhash.txt
  lpbridge --connection prod users list --status active --format csv > users.csv";

/// Automate a LastPass Business account: users, groups, shared folders, sites, events.
#[derive(Debug, Parser)]
#[command(name = "lpbridge", version, after_long_help = AFTER_LONG_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Stored connection to use (or LPBRIDGE_CONNECTION).
    #[arg(long, global = true, value_name = "NAME")]
    pub connection: Option<ConnectionId>,
    /// Directory for the SQLite database and the master key file (LPBRIDGE_HOME is also
    /// read) [default: the platform data dir, e.g. ~/.local/share/lpbridge].
    #[arg(long, global = true, env = "LPBRIDGE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database for connections and API keys: postgres://USER[:PASSWORD]@HOST/DB, or
    /// sqlite://PATH [default: SQLite at <data dir>/lpbridge.db].
    #[arg(
        long,
        global = true,
        env = "LPBRIDGE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<Secret>,
    /// Enterprise API endpoint URL (overrides the profile's / LPBRIDGE_ENDPOINT).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<url::Url>,
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    /// Log to stderr (-v debug, -vv trace) and print upstream call statistics at the end.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Do not ask for confirmation before destructive changes.
    #[arg(short, long, global = true)]
    pub yes: bool,
    /// Client-side limit on requests per second to LastPass (default: none; `updateemail` is
    /// always held to LastPass's documented 10/s).
    #[arg(long, global = true, env = "LPBRIDGE_RATE_LIMIT", value_name = "RPS", value_parser = parse_rate)]
    pub rate_limit: Option<f64>,
    /// At most this many requests in flight [default: 4].
    #[arg(long, global = true, env = "LPBRIDGE_MAX_IN_FLIGHT", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_in_flight: Option<u16>,
    /// Per-request timeout in seconds [default: 30].
    #[arg(long, global = true, env = "LPBRIDGE_TIMEOUT", value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,
    /// Attempts per request, retries included, on 429, 5xx and timeouts [default: 5].
    #[arg(long, global = true, env = "LPBRIDGE_ATTEMPTS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub attempts: Option<u32>,
}

/// A request rate: a finite number above zero.
fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate: give requests per second above 0, e.g. 5 or 0.5"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage stored connections (LastPass accounts; provisioning hashes encrypted at rest).
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge connection add prod --cid 8771312 --provhash-stdin < provhash.txt\n  lpbridge connection test prod"
    )]
    Connection(connection::ConnectionCmd),
    /// Manage API keys for `lpbridge serve` (hashed at rest; read-only or read-write).
    #[command(
        subcommand,
        after_help = "Example:\n  KEY=$(lpbridge apikey create --read-only --name dashboard)\n  lpbridge apikey list --format table"
    )]
    Apikey(apikey::ApikeyCmd),
    /// SCIM 2.0 provisioning: bearer tokens for Okta, Entra ID, OneLogin, JumpCloud.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge scim token create --connection prod --name okta\n  lpbridge scim token list"
    )]
    Scim(scim::ScimCmd),
    /// Users of the web console that `lpbridge serve` serves at `/`.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge console user add alice\n  lpbridge console user list --format table"
    )]
    Console(console::ConsoleCmd),
    /// List, look up, invite, import, update and remove users.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge users list --status invited --format table\n  lpbridge users import hires.csv --dry-run"
    )]
    Users(users::UsersCmd),
    /// Groups and their members; bulk membership changes.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge groups list --format table\n  lpbridge groups add-members Sales ann@example.com"
    )]
    Groups(groups::GroupsCmd),
    /// Shared folders and who has access to them.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge folders permissions --detailed --format csv"
    )]
    Folders(folders::FoldersCmd),
    /// Push sites into users' vaults.
    #[command(
        subcommand,
        after_help = "Example:\n  printf '%s' \"$PW\" | lpbridge sites push --group Sales --url https://crm.example.com \\\n      --label CRM --password-stdin"
    )]
    Sites(sites::SitesCmd),
    /// The account's event log (reporting).
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge events list --from 2026-11-01 --limit 20"
    )]
    Events(events::EventsCmd),
    /// Raw Enterprise API calls.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge api call getsfdata --data '\"all\"'"
    )]
    Api(api::ApiCmd),
    /// PSA integrations (ConnectWise Manage, Datto Autotask; secrets encrypted at rest) and the
    /// companies and contacts the MSP import reads from them.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge psa connect connectwise acme-cw --site na.myconnectwise.net --company-id acme \\\n      --public-key AbCdEf0123456789 --client-id 3f2c…-guid --private-key-stdin < cw-private.txt\n  lpbridge psa companies --type 1 --status 1 --format csv"
    )]
    Psa(psa::PsaCmd),
    /// MSP import: PSA companies and contacts into LastPass managed companies, incrementally
    /// (plan, then Import and Map), with the MSP account's LastPass REST API key sealed at rest.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge msp connect --api-key-stdin < lastpass-api-key.txt\n  lpbridge msp import plan --psa acme-cw --type 1 > plan.json\n  lpbridge msp import apply plan.json"
    )]
    Msp(msp::MspCmd),
    /// Run the LastPass sandbox (emulator) locally. The first stdout line is JSON with the
    /// endpoint, cid and provisioning hash; a control API is served under /_sandbox.
    #[command(
        after_help = "Example:\n  lpbridge sandbox --listen 127.0.0.1:0 --users 500 --fault 'getuserdata:429:0.1'"
    )]
    Sandbox(sandbox::SandboxCmd),
    /// Run the service: unified IAM REST API, actions and passthrough over the stored
    /// connections, authenticated with API keys.
    #[command(
        after_help = "Example:\n  lpbridge serve --listen 127.0.0.1:8080\n  lpbridge --database-url postgres://lpbridge@db/lpbridge serve"
    )]
    Serve(serve::ServeArgs),
}

/// What every command gets: the global flags, the resolved format, and a lazily built client.
pub struct Ctx {
    pub global: GlobalArgs,
    pub format: Format,
    client: OnceLock<Built>,
    store: tokio::sync::OnceCell<Store>,
}

/// The client and where its credentials came from (resolved once per run).
pub struct Built {
    pub client: Client,
    pub endpoint: url::Url,
    /// The profile name, or `(environment)`.
    pub source: String,
}

impl Ctx {
    pub fn new(global: GlobalArgs) -> Self {
        let format = Format::resolve(global.format);
        Self {
            global,
            format,
            client: OnceLock::new(),
            store: tokio::sync::OnceCell::new(),
        }
    }

    /// Where the store is (`--data-dir`, `--database-url` and their environment variables);
    /// nothing is opened or created.
    /// When neither is given, the service's config file (`LPBRIDGE_CONFIG`) is read for its
    /// `data_dir` and `database_url`, so `apikey` and `connection` reach the store that a
    /// `serve` configured by that file uses.
    pub fn location(&self) -> Result<StoreLocation> {
        let mut database_url = match &self.global.database_url {
            Some(u) if !u.expose().trim().is_empty() => Some(DatabaseUrl::parse(u.expose())?),
            _ => None,
        };
        let mut data_dir = self.global.data_dir.clone();
        if data_dir.is_none()
            && database_url.is_none()
            && let Some(path) = std::env::var_os("LPBRIDGE_CONFIG").filter(|p| !p.is_empty())
        {
            let file = crate::serve::FileConfig::load(std::path::Path::new(&path))?;
            data_dir = file.data_dir;
            database_url = file
                .database_url
                .as_deref()
                .map(DatabaseUrl::parse)
                .transpose()?;
        }
        Ok(StoreLocation {
            data_dir,
            database_url,
        })
    }

    /// The store, opened (created and migrated when needed) on first use.
    pub async fn store(&self) -> Result<&Store> {
        self.store
            .get_or_try_init(|| async { self.location()?.open().await })
            .await
    }

    /// The store if it exists already (a missing SQLite file is not created): for commands that
    /// only read or delete.
    pub async fn existing_store(&self) -> Result<Option<&Store>> {
        if let Some(s) = self.store.get() {
            return Ok(Some(s));
        }
        match self.location()?.open_existing().await? {
            Some(s) => Ok(Some(self.store.get_or_init(|| async { s }).await)),
            None => Ok(None),
        }
    }

    /// The client for the resolved credentials (built once).
    pub fn client(&self) -> Result<&Client> {
        Ok(&self.built()?.client)
    }

    /// The client with its endpoint and credential source: the credentials are resolved (and
    /// the profile store read) once per run.
    pub fn built(&self) -> Result<&Built> {
        if let Some(b) = self.client.get() {
            return Ok(b);
        }
        let location = self.location()?;
        let (creds, endpoint, source) = block_on_aside(crate::connections::resolve_credentials(
            &location,
            self.global.connection.as_ref(),
            self.global.endpoint.as_ref(),
        ))??;
        let mut config = ClientConfig::new(creds).with_endpoint(endpoint.clone());
        let g = &self.global;
        if let Some(rps) = g.rate_limit {
            config.rate_limit_per_sec = Some(rps);
        }
        if let Some(n) = g.max_in_flight {
            config.max_concurrency = usize::from(n);
        }
        if let Some(secs) = g.timeout {
            config.timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(n) = g.attempts {
            config.retry.max_attempts = n;
        }
        let client = Client::new(config)?;
        Ok(self.client.get_or_init(|| Built {
            client,
            endpoint,
            source,
        }))
    }

    /// The client if one was built (for `--verbose` statistics).
    pub fn built_client(&self) -> Option<&Client> {
        self.client.get().map(|b| &b.client)
    }

    pub fn stdout(&self) -> BufWriter<Stdout> {
        BufWriter::with_capacity(64 * 1024, std::io::stdout())
    }

    /// Asks before a destructive change unless `--yes`. Refuses (usage error) when stdin is not
    /// a terminal.
    pub fn confirm(&self, what: &str) -> Result<()> {
        if self.global.yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::usage(format!(
                "refusing to {what} without confirmation: stdin is not a terminal; pass --yes"
            )));
        }
        let _ = write!(std::io::stderr(), "{what}? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(()),
            _ => Err(Error::Aborted),
        }
    }
}

/// Runs `fut` to completion on a runtime of its own, on a scoped thread: lets the synchronous
/// [`Ctx::built`] read the store (async) from inside the CLI's runtime without blocking it in
/// place. Whatever `fut` opens (a store pool) must not outlive it.
fn block_on_aside<F>(fut: F) -> Result<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(fut))
        });
        match handle.join() {
            Ok(out) => out.map_err(Error::from),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Reads a secret: all of stdin (trailing newline removed) with `from_stdin`, else a hidden
/// prompt on the terminal. `None` when there is no terminal and `required` is false. `flag` is
/// the option that reads it from stdin (named in the error when there is no terminal).
pub(crate) fn read_secret(
    what: &str,
    flag: &str,
    from_stdin: bool,
    required: bool,
) -> Result<Option<Secret>> {
    if from_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::usage(format!("{what}: cannot read stdin ({flag}): {e}")))?;
        let s = s.trim_end_matches(['\r', '\n']).to_owned();
        if s.is_empty() {
            return Err(Error::usage(format!("{what}: stdin was empty")));
        }
        return Ok(Some(Secret::new(s)));
    }
    if !std::io::stdin().is_terminal() {
        if required {
            return Err(Error::usage(format!(
                "{what}: no terminal to prompt on; pipe it in with {flag}"
            )));
        }
        return Ok(None);
    }
    let s = match rpassword::prompt_password(format!("{what}: ")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Error::usage(format!("{what}: nothing was entered")));
        }
        Err(e) => return Err(e.into()),
    };
    if s.is_empty() {
        if required {
            return Err(Error::usage(format!("{what} must not be empty")));
        }
        return Ok(None);
    }
    Ok(Some(Secret::new(s)))
}

/// Opens an input file (a usage error when it cannot be); returns its label for messages. The
/// parsers read it whole, so it needs no buffering.
pub(crate) fn open_input(file: &std::path::Path) -> Result<(String, std::fs::File)> {
    let label = file.display().to_string();
    let f =
        std::fs::File::open(file).map_err(|e| Error::usage(format!("cannot open {label}: {e}")))?;
    Ok((label, f))
}

/// Writes the records of `stream` as they arrive, at most `limit` of them. The limit is checked
/// before pulling the next record, so reaching it exactly never fetches one more page.
pub(crate) async fn emit_stream<R: crate::output::Record>(
    ctx: &Ctx,
    mut stream: impl futures::Stream<Item = std::result::Result<R, lastpass::Error>> + Unpin,
    limit: Option<u64>,
) -> Result<()> {
    use futures::StreamExt as _;
    let mut e = crate::output::Emitter::new::<R>(ctx.format, ctx.stdout());
    while limit.is_none_or(|l| e.count() < l) {
        let Some(item) = stream.next().await else {
            break;
        };
        e.emit(&item?)?;
    }
    e.finish()?;
    Ok(())
}

/// Sets up tracing on stderr: `-v` for commands; the service logs at info by default, as text
/// or JSON lines.
fn init_tracing(verbose: u8, service: Option<crate::serve::LogFormat>) {
    let default = match (verbose, service.is_some()) {
        (0, false) => "warn",
        (0, true) => "info,sqlx=warn",
        (1, _) => "info,lpbridge=debug,lastpass=debug",
        _ => "debug,lpbridge=trace,lastpass=trace",
    };
    // LPBRIDGE_LOG, else the conventional RUST_LOG (what the README documents), else -v.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LPBRIDGE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if service == Some(crate::serve::LogFormat::Json) {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let service = match &cli.command {
        // The flag or environment, else the config file's `log_format` (read again by `serve`).
        Command::Serve(a) => Some(
            a.log_format
                .or_else(|| {
                    a.config
                        .as_deref()
                        .and_then(|p| crate::serve::FileConfig::load(p).ok())
                        .and_then(|f| f.log_format)
                })
                .unwrap_or(crate::serve::LogFormat::Text),
        ),
        _ => None,
    };
    init_tracing(cli.global.verbose, service);
    let ctx = Ctx::new(cli.global);
    let result = match cli.command {
        Command::Connection(c) => connection::run(&ctx, c).await,
        Command::Apikey(c) => apikey::run(&ctx, c).await,
        Command::Scim(c) => scim::run(&ctx, c).await,
        Command::Console(c) => console::run(&ctx, c).await,
        Command::Users(c) => users::run(&ctx, c).await,
        Command::Groups(c) => groups::run(&ctx, c).await,
        Command::Folders(c) => folders::run(&ctx, c).await,
        Command::Sites(c) => sites::run(&ctx, c).await,
        Command::Events(c) => events::run(&ctx, c).await,
        Command::Api(c) => api::run(&ctx, c).await,
        Command::Psa(c) => psa::run(&ctx, c).await,
        Command::Msp(c) => msp::run(&ctx, c).await,
        Command::Sandbox(c) => sandbox::run(c).await,
        Command::Serve(a) => serve::run(&ctx, a).await,
    };
    if let Some(store) = ctx.store.get() {
        store.close().await;
    }
    if ctx.global.verbose > 0
        && let Some(client) = ctx.built_client()
    {
        let s = client.stats();
        let by_cmd = s
            .by_cmd
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        crate::note!(
            "lpbridge: upstream calls: requests={} retries={} {by_cmd}",
            s.requests,
            s.retries
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command, leaf or group, shows an example in its `--help` (the README promises it).
    #[test]
    fn every_command_help_has_an_example() {
        fn walk(cmd: &mut clap::Command, path: String, missing: &mut Vec<String>) {
            let help = cmd.render_long_help().to_string();
            if !help.to_lowercase().contains("example:") {
                missing.push(path.clone());
            }
            for sub in cmd.get_subcommands_mut() {
                if sub.get_name() == "help" {
                    continue;
                }
                let p = format!("{path} {}", sub.get_name());
                walk(sub, p, missing);
            }
        }
        let mut root = Cli::command();
        root.build();
        let mut missing = Vec::new();
        walk(&mut root, "lpbridge".into(), &mut missing);
        assert!(missing.is_empty(), "no example in the help of: {missing:?}");
    }
}
