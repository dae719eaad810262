//! Scaffolding shared by the sandbox integration tests: seeds, account specs, emulators and a
//! loopback HTTP server.

// Each test binary uses a subset of these items.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sandbox::Clock;
use sandbox::SandboxHandle;
use sandbox::lastpass::{AccountSpec, FlagStyle, LastPass, LastPassConfig, SeedOptions};
use serde_json::{Value, json};

/// 2024-03-10 12:00:00 UTC.
pub const T0: i64 = 1_710_072_000_000_000;

/// The address requests given to `LastPass::execute` come from.
pub const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

/// Every command the emulator serves.
pub const CMDS: &[&str] = &[
    "getuserdata",
    "batchadd",
    "updateuser",
    "deluser",
    "disableuser",
    "enableuser",
    "batchchangegrp",
    "reinviteuser",
    "resetpassword",
    "requiremasterpasswordchange",
    "disablemultifactor",
    "updateemail",
    "getsfdata",
    "getdetailedsfdata",
    "reporting",
    "expiredmasterpwlist",
    "pushsitestousers",
];

pub fn seed(users: usize, groups: usize, folders: usize, events: usize, seed: u64) -> SeedOptions {
    SeedOptions {
        users,
        groups,
        folders,
        events,
        seed,
    }
}

pub fn account(cid: u64, provhash: &str, name: &str, tz: &str, seed: SeedOptions) -> AccountSpec {
    AccountSpec {
        cid,
        provhash: provhash.into(),
        name: name.into(),
        time_zone: tz.into(),
        seed,
    }
}

/// An emulator with string flags, 2000-user pages and JSON-in-`text/xml` answers.
pub fn emulator(
    accounts: Vec<AccountSpec>,
    detailed_sf_unpaged_limit: Option<usize>,
    clock: Clock,
) -> LastPass {
    LastPass::new(
        LastPassConfig {
            accounts,
            flag_style: FlagStyle::String,
            max_pagesize: 2000,
            detailed_sf_unpaged_limit,
            json_content_type: false,
        },
        clock,
    )
    .expect("emulator")
}

/// Serves `router` on 127.0.0.1 (a free port) with peer addresses; returns the address.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// The LastPass endpoint URL at `addr`.
pub fn endpoint(addr: SocketAddr) -> String {
    format!("http://{addr}/enterpriseapi.php")
}

/// POSTs `body` as JSON: the status and the answer parsed as JSON.
pub async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = http.post(url).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A LastPass API request to the sandbox's endpoint as `cid`/`provhash`.
pub async fn api_request(
    http: &reqwest::Client,
    sb: &SandboxHandle,
    cid: u64,
    provhash: &str,
    cmd: &str,
    data: Value,
) -> reqwest::Response {
    http.post(sb.lastpass_endpoint())
        .json(&json!({"cid": cid, "provhash": provhash, "cmd": cmd, "data": data}))
        .send()
        .await
        .unwrap()
}
