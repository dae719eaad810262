//! Connector actions against an in-process sandbox (127.0.0.1:0, frozen clock, seed 42): every
//! Direct action runs and its effect is read back from the sandbox's state; invalid input names
//! the field and sends nothing; the passthrough reaches only the connection's endpoint.
//! No sleeps: every wait is on an HTTP answer.
#![cfg(feature = "sandbox")]

use futures::FutureExt;
use lpbridge::actions::{self, ActionError, ActionKind, ActionOutput};
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

struct Env {
    sb: SandboxHandle,
    client: lastpass::Client,
    cid: u64,
}

impl Env {
    async fn new() -> Self {
        let sb = sandbox::spawn(SandboxConfig::for_tests())
            .await
            .expect("sandbox starts");
        let acc = sb.primary_account();
        let creds = lastpass::Credentials {
            cid: lastpass::Cid(acc.cid),
            provhash: lastpass::Secret::new(acc.provhash),
        };
        let endpoint = lastpass::parse_endpoint(&sb.lastpass_endpoint()).unwrap();
        let client =
            lastpass::Client::new(lastpass::ClientConfig::new(creds).with_endpoint(endpoint))
                .unwrap();
        Env {
            cid: acc.cid,
            sb,
            client,
        }
    }

    async fn run(&self, name: &str, input: Value) -> Result<ActionOutput, ActionError> {
        actions::run(&self.client, name, input).await
    }

    async fn ok(&self, name: &str, input: Value) -> ActionOutput {
        self.run(name, input.clone())
            .await
            .unwrap_or_else(|e| panic!("{name} {input}: {e:?}"))
    }

    fn user(&self, email: &str) -> Option<Value> {
        self.sb.lastpass.inspect_user(self.cid, email)
    }

    fn account(&self) -> Value {
        self.sb.lastpass.inspect_account(self.cid).unwrap()
    }

    fn requests(&self) -> u64 {
        self.sb.stats().total.requests
    }

    /// Usernames of seeded users in `state` (active, disabled, invited).
    async fn users_in(&self, state: &str) -> Vec<String> {
        let out = self
            .ok("lastpass_list_users", json!({"status": state}))
            .await;
        out.data["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The refused field, or a panic.
fn invalid(r: Result<ActionOutput, ActionError>) -> lastpass::InvalidValue {
    match r {
        Err(ActionError::InvalidInput(v)) => v,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test]
async fn invite_then_conflict_then_reinvite_and_bulk_create() {
    let env = Env::new().await;
    let out = env
        .ok(
            "lastpass_invite_user",
            json!({"email": "new.hire@example.com", "full_name": "New Hire", "groups": []}),
        )
        .await;
    assert!(out.changed_directory);
    assert_eq!(out.data["outcome"], "created");
    assert_eq!(out.data["action"], "invite");
    let u = env.user("new.hire@example.com").expect("invited");
    assert_eq!(u["state"], "invited");
    assert_eq!(u["fullname"], "New Hire");

    let e = env
        .run(
            "lastpass_invite_user",
            json!({"email": "NEW.HIRE@example.com"}),
        )
        .await;
    assert!(matches!(e, Err(ActionError::Conflict(_))), "{e:?}");

    let sent = u["mails_sent"].as_u64().unwrap();
    let out = env
        .ok(
            "lastpass_reinvite_user",
            json!({"email": "new.hire@example.com"}),
        )
        .await;
    assert!(!out.changed_directory);
    assert_eq!(
        env.user("new.hire@example.com").unwrap()["mails_sent"],
        sent + 1
    );

    // A created account with a default password; the password never comes back.
    let out = env
        .ok(
            "lastpass_invite_user",
            json!({"email": "pw.user@example.com", "default_password": "Temp-Pass-123!", "password_reset_required": true}),
        )
        .await;
    assert_eq!(out.data["action"], "create");
    assert!(!out.data.to_string().contains("Temp-Pass-123!"));
    assert!(env.user("pw.user@example.com").is_some());

    // Bulk: two new users, one existing (skipped); a dry run first changes nothing.
    let input = json!({"users": [
        {"email": "bulk.one@example.com", "full_name": "Bulk One", "attribs": {"Department": "Ops"}},
        {"email": "new.hire@example.com"},
        {"email": "bulk.two@example.com", "default_password": "Another-Pass-456!"}
    ]});
    let mut dry = input.clone();
    dry["dry_run"] = json!(true);
    let out = env.ok("lastpass_bulk_create_users", dry).await;
    assert!(!out.changed_directory);
    assert_eq!(out.data["to_create"], 2);
    assert_eq!(out.data["skipped"], 1);
    assert!(env.user("bulk.one@example.com").is_none());

    let out = env.ok("lastpass_bulk_create_users", input).await;
    assert!(out.changed_directory);
    assert_eq!(out.data["created"], 2, "{}", out.data);
    assert_eq!(out.data["skipped"], 1);
    assert_eq!(out.data["failed"], 0);
    assert_eq!(out.data["results"][1]["outcome"], "skipped");
    assert!(!out.data.to_string().contains("Another-Pass-456!"));
    let one = env.user("bulk.one@example.com").unwrap();
    assert_eq!(one["attribs"]["Department"], "Ops");
    assert!(env.user("bulk.two@example.com").is_some());
}

#[tokio::test]
async fn user_lifecycle_writes_change_the_sandbox() {
    let env = Env::new().await;
    let active = env.users_in("active").await;
    assert!(active.len() >= 6, "seed has active users: {active:?}");
    let (a, b, c, d, e) = (&active[0], &active[1], &active[2], &active[3], &active[4]);

    // update_user
    let out = env
        .ok(
            "lastpass_update_user",
            json!({"email": a, "full_name": "Renamed Person"}),
        )
        .await;
    assert_eq!(out.data["updated_fields"], json!(["full_name"]));
    assert_eq!(env.user(a).unwrap()["fullname"], "Renamed Person");

    // get_user
    let out = env.ok("lastpass_get_user", json!({"email": a})).await;
    assert_eq!(out.data["fullname"], "Renamed Person");
    assert_eq!(out.data["status"], "active");
    let missing = env
        .run("lastpass_get_user", json!({"email": "ghost@example.com"}))
        .await;
    assert!(
        matches!(missing, Err(ActionError::NotFound(_))),
        "{missing:?}"
    );

    // require_password_change, disable_mfa, reset_password
    env.ok("lastpass_require_password_change", json!({"email": b}))
        .await;
    assert_eq!(env.user(b).unwrap()["password_reset_required"], true);
    env.ok("lastpass_disable_mfa", json!({"email": b})).await;
    assert!(env.user(b).unwrap()["multifactor"].is_null());
    let before = env.user(b).unwrap()["mails_sent"].as_u64().unwrap();
    env.ok("lastpass_reset_password", json!({"email": b})).await;
    assert_eq!(env.user(b).unwrap()["mails_sent"], before + 1);

    // disable / enable: per-address outcomes
    let out = env
        .ok("lastpass_disable_user", json!({"emails": [c, d]}))
        .await;
    assert!(out.changed_directory);
    assert_eq!(out.data["succeeded"], 2, "{}", out.data);
    assert_eq!(env.user(c).unwrap()["disabled"], true);
    let out = env.ok("lastpass_disable_user", json!({"email": c})).await;
    assert_eq!(out.data["results"][0]["outcome"], "unchanged");
    env.ok("lastpass_enable_user", json!({"email": c})).await;
    assert_eq!(env.user(c).unwrap()["disabled"], false);

    // update_email: pending until the user logs in
    let out = env
        .ok(
            "lastpass_update_email",
            json!({"old_email": e, "new_email": "moved@example.com"}),
        )
        .await;
    assert_eq!(out.data["status"], "pending_confirmation");
    assert_eq!(env.user(e).unwrap()["pending_email"], "moved@example.com");

    // delete_user: the choice is required; deactivate keeps the user, remove drops them
    let v = invalid(env.run("lastpass_delete_user", json!({"email": d})).await);
    assert_eq!(v.field, "delete_action");
    let v = invalid(
        env.run(
            "lastpass_delete_user",
            json!({"email": d, "delete_action": "purge"}),
        )
        .await,
    );
    assert_eq!(
        (v.field.as_ref(), v.value.as_str()),
        ("delete_action", "purge")
    );
    let out = env
        .ok(
            "lastpass_delete_user",
            json!({"email": d, "delete_action": 0}),
        )
        .await;
    assert_eq!(out.data["action"], "deactivate");
    assert_eq!(env.user(d).unwrap()["disabled"], true);
    env.ok(
        "lastpass_delete_user",
        json!({"email": d, "deleteaction": "remove"}),
    )
    .await;
    assert!(env.user(d).is_none());
    let gone = env
        .run(
            "lastpass_delete_user",
            json!({"email": d, "delete_action": "delete"}),
        )
        .await;
    assert!(matches!(gone, Err(ActionError::NotFound(_))), "{gone:?}");

    // bulk delete: per-item outcomes, an unknown address fails alone
    let out = env
        .ok(
            "lastpass_bulk_delete_users",
            json!({"emails": [active[5], "nobody@example.com", active[5]], "delete_action": "delete"}),
        )
        .await;
    assert!(out.changed_directory);
    assert_eq!(out.data["delete_action"], 2);
    let results = out.data["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "repeats dropped: {}", out.data);
    assert_eq!(results[0]["outcome"], "ok");
    assert_eq!(results[1]["outcome"], "failed");
    assert!(env.user(&active[5]).is_none());
}

#[tokio::test]
async fn listing_users_filters_pages_and_limits() {
    let env = Env::new().await;
    let acct = env.account();
    // getuserdata's `total` (the sandbox's account count may include users it does not list).
    let total = env
        .ok("lastpass_list_users", json!({"page_size": 1}))
        .await
        .data["total"]
        .as_u64()
        .unwrap();
    assert!(total >= 10, "{total}");
    let all = env.ok("lastpass_list_users", json!({})).await;
    assert!(!all.changed_directory);
    assert_eq!(all.data["truncated"], false);
    assert!(all.data["count"].as_u64().unwrap() >= total);
    for u in all.data["users"].as_array().unwrap() {
        assert!(u.get("password").is_none() && u.get("provhash").is_none());
    }
    let disabled = env.users_in("disabled").await;
    assert_eq!(disabled.len() as u64, acct["disabled"].as_u64().unwrap());
    let admins = env.ok("lastpass_list_users", json!({"admin": true})).await;
    assert_eq!(admins.data["count"], acct["admins"]);

    let out = env.ok("lastpass_list_users", json!({"limit": 3})).await;
    assert_eq!(out.data["count"], 3);
    assert_eq!(out.data["truncated"], true);

    let page = env
        .ok(
            "lastpass_list_users",
            json!({"page_size": 5, "page_index": 1}),
        )
        .await;
    assert_eq!(page.data["total"], total);
    assert_eq!(page.data["count"], 5);
    assert_eq!(page.data["next_page_index"], 2);

    let one = &all.data["users"][0]["username"];
    let out = env
        .ok(
            "lastpass_list_users",
            json!({"emails": [one, "ghost@example.com"]}),
        )
        .await;
    assert_eq!(out.data["count"], 1);

    let v = invalid(
        env.run("lastpass_list_users", json!({"page_size": 2001}))
            .await,
    );
    assert_eq!((v.field.as_ref(), v.value.as_str()), ("page_size", "2001"));
    let v = invalid(
        env.run("lastpass_list_users", json!({"status": "gone"}))
            .await,
    );
    assert_eq!(v.field, "status");
    let v = invalid(
        env.run("lastpass_list_users", json!({"emails": ["ok@x.io", 7]}))
            .await,
    );
    assert_eq!((v.field.as_ref(), v.value.as_str()), ("emails[1]", "7"));
}

#[tokio::test]
async fn groups_read_and_membership_changes() {
    let env = Env::new().await;
    let groups = env.account()["groups"].as_array().unwrap().clone();
    let out = env.ok("lastpass_list_groups", json!({})).await;
    assert_eq!(out.data["count"].as_u64().unwrap() as usize, groups.len());
    let g0 = groups[0]["name"].as_str().unwrap().to_owned();
    let g1 = groups[1]["name"].as_str().unwrap().to_owned();
    let out = env.ok("lastpass_get_group", json!({"name": g0})).await;
    let sorted = |v: &Value| {
        let mut m: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_lowercase())
            .collect();
        m.sort();
        m
    };
    assert_eq!(sorted(&out.data["members"]), sorted(&groups[0]["members"]));
    let missing = env
        .run("lastpass_get_group", json!({"name": "No Such Group"}))
        .await;
    assert!(
        matches!(missing, Err(ActionError::NotFound(_))),
        "{missing:?}"
    );

    let user = env.users_in("active").await[0].clone();
    let in_groups = |env: &Env| -> Vec<String> {
        env.user(&user).unwrap()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_owned())
            .collect()
    };
    env.ok(
        "lastpass_remove_user_from_groups",
        json!({"email": user, "groups": [g0, g1]}),
    )
    .await;
    assert!(!in_groups(&env).contains(&g0));
    let out = env
        .ok(
            "lastpass_add_user_to_groups",
            json!({"email": user, "groups": [g0]}),
        )
        .await;
    assert!(out.changed_directory);
    assert_eq!(out.data["results"][0]["outcome"], "ok");
    assert!(in_groups(&env).contains(&g0));
    env.ok(
        "lastpass_change_user_groups",
        json!({"email": user, "add": [g1], "remove": [g0]}),
    )
    .await;
    assert!(in_groups(&env).contains(&g1));
    assert!(!in_groups(&env).contains(&g0));
    let v = invalid(
        env.run(
            "lastpass_change_user_groups",
            json!({"email": user, "add": [g0], "remove": [g0]}),
        )
        .await,
    );
    assert_eq!(v.field, "remove");

    // Bulk: one add, one no-op (skipped), one unknown user (skipped).
    let out = env
        .ok(
            "lastpass_change_group_members",
            json!({"changes": [
                {"email": user, "group": g0, "action": "add"},
                {"email": user, "group": g1, "action": "add"},
                {"email": "ghost@example.com", "group": g0, "action": "remove"}
            ]}),
        )
        .await;
    assert!(out.changed_directory);
    let r = out.data["results"].as_array().unwrap();
    assert_eq!(r[0]["outcome"], "ok", "{}", out.data);
    assert_eq!(r[1]["outcome"], "skipped");
    assert_eq!(r[2]["outcome"], "skipped");
    assert!(in_groups(&env).contains(&g0));
    let v = invalid(
        env.run(
            "lastpass_change_group_members",
            json!({"changes": [{"email": user, "group": g0, "action": "move"}]}),
        )
        .await,
    );
    assert_eq!(
        (v.field.as_ref(), v.value.as_str()),
        ("changes[0].action", "move")
    );
}

#[tokio::test]
async fn shared_folder_reads_policies_and_roles() {
    let env = Env::new().await;
    let folders = env.account()["folders"].as_array().unwrap().clone();
    let out = env.ok("lastpass_list_shared_folders", json!({})).await;
    assert_eq!(out.data["count"].as_u64().unwrap() as usize, folders.len());
    let detailed = env
        .ok(
            "lastpass_list_shared_folders_detailed",
            json!({"page_size": 1}),
        )
        .await;
    assert_eq!(
        detailed.data["count"].as_u64().unwrap() as usize,
        folders.len()
    );
    let sets = env
        .ok("lastpass_list_shared_folder_permission_sets", json!({}))
        .await;
    let first = &sets.data["permission_sets"][0];
    let id = first["id"].as_str().unwrap();
    let policy = env
        .ok("lastpass_get_shared_folder_policy", json!({"id": id}))
        .await;
    assert_eq!(&policy.data, first);
    let n: u64 = id.parse().unwrap();
    let policy = env
        .ok("lastpass_get_shared_folder_policy", json!({"id": n}))
        .await;
    assert_eq!(&policy.data, first, "numeric ids are accepted");
    let missing = env
        .run(
            "lastpass_get_shared_folder_policy",
            json!({"id": "999999999"}),
        )
        .await;
    assert!(
        matches!(missing, Err(ActionError::NotFound(_))),
        "{missing:?}"
    );

    let roles = env.ok("lastpass_list_shared_folder_roles", json!({})).await;
    assert_eq!(roles.data["count"], 3);
    let assigned: u64 = roles.data["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["assignment_count"].as_u64().unwrap())
        .sum();
    let members: u64 = sets.data["permission_sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["member_count"].as_u64().unwrap())
        .sum();
    assert_eq!(assigned, members, "every member holds exactly one role");
    let viewer = env
        .ok("lastpass_get_shared_folder_role", json!({"id": "viewer"}))
        .await;
    assert_eq!(viewer.data["id"], "viewer");
    let v = invalid(
        env.run("lastpass_get_shared_folder_role", json!({"id": "owner"}))
            .await,
    );
    assert_eq!((v.field.as_ref(), v.value.as_str()), ("id", "owner"));
}

#[tokio::test]
async fn events_and_site_pushes() {
    let env = Env::new().await;
    let out = env
        .ok(
            "lastpass_list_events",
            json!({"from": "2000-01-01", "limit": 5}),
        )
        .await;
    assert_eq!(out.data["count"], 5);
    assert_eq!(out.data["truncated"], true);
    let e = &out.data["events"][0];
    assert!(e["time"].is_string() && e["action"].is_string(), "{e}");
    let v = invalid(
        env.run("lastpass_list_events", json!({"from": "last tuesday"}))
            .await,
    );
    assert_eq!(
        (v.field.as_ref(), v.value.as_str()),
        ("from", "last tuesday")
    );
    let v = invalid(
        env.run(
            "lastpass_list_events",
            json!({"from": "2026-02-01", "to": "2026-01-01"}),
        )
        .await,
    );
    assert_eq!(v.field, "from");
    let v = invalid(
        env.run(
            "lastpass_list_events",
            json!({"from": "2026-01-01", "limit": 0}),
        )
        .await,
    );
    assert_eq!(v.field, "limit");

    let pushed = env.account()["pushed_sites"].as_array().unwrap().len();
    let out = env
        .ok(
            "lastpass_push_sites",
            json!({"push_to": "all", "url": "https://crm.example.com", "label": "CRM",
                   "password": "site-secret-789", "favorite": true}),
        )
        .await;
    assert!(out.data["psid"].is_string(), "{}", out.data);
    assert!(!out.data.to_string().contains("site-secret-789"));
    assert_eq!(
        env.account()["pushed_sites"].as_array().unwrap().len(),
        pushed + 1
    );
    // The integrator's fields reach pushsitestousers as LastPass names them.
    let groups = env.ok("lastpass_list_groups", json!({})).await;
    let group = groups.data["groups"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env
        .ok(
            "lastpass_push_sites",
            json!({"push_to": group, "url": "https://wiki.example.com", "label": "Wiki",
                   "folder": "Team Sites", "persistent": true}),
        )
        .await;
    assert_eq!(out.data["target"], format!("group:{group}"));
    assert!(
        !out.changed_directory,
        "a push changes vaults, not the directory"
    );
    let account = env.account();
    let site = account["pushed_sites"].as_array().unwrap().last().unwrap();
    assert_eq!(site["psid"], out.data["psid"]);
    assert_eq!(site["users"], group.as_str());
    assert_eq!(site["url"], "https://wiki.example.com");
    assert_eq!(site["name"], "Wiki");
    assert_eq!(site["group"], "Team Sites");
    assert_eq!(site["persistent"], true);
    let v = invalid(
        env.run(
            "lastpass_push_sites",
            json!({"push_to": "all", "url": "not a url", "label": "x"}),
        )
        .await,
    );
    assert_eq!(v.field, "url");
    let v = invalid(
        env.run(
            "lastpass_push_sites",
            json!({"push_to": "all", "url": "https://x.io", "label": "x", "username_type": "custom"}),
        )
        .await,
    );
    assert_eq!(v.field, "username");
}

#[tokio::test]
async fn invalid_input_names_the_field_and_sends_nothing() {
    let env = Env::new().await;
    let before = env.requests();
    let cases = [
        ("lastpass_invite_user", json!({}), "email"),
        (
            "lastpass_invite_user",
            json!({"email": "not-an-email"}),
            "email",
        ),
        (
            "lastpass_invite_user",
            json!({"email": "a@x.io", "colour": "red"}),
            "colour",
        ),
        (
            "lastpass_invite_user",
            json!({"email": "a@x.io", "groups": [""]}),
            "groups[0]",
        ),
        (
            "lastpass_update_email",
            json!({"old_email": "a@x.io", "new_email": "A@x.io"}),
            "new_email",
        ),
        (
            "lastpass_update_user",
            json!({"email": "a@x.io"}),
            "full_name",
        ),
        ("lastpass_bulk_create_users", json!({"users": []}), "users"),
        (
            "lastpass_bulk_create_users",
            json!({"users": [{"email": "a@x.io"}, {"email": "b@"}]}),
            "users[1].email",
        ),
        (
            "lastpass_bulk_create_users",
            json!({"users": [{"email": "a@x.io"}, {"email": "A@X.io"}]}),
            "users",
        ),
        (
            "lastpass_bulk_delete_users",
            json!({"emails": ["a@x.io"]}),
            "delete_action",
        ),
        ("lastpass_disable_user", json!({}), "email"),
        (
            "lastpass_disable_user",
            json!({"email": "a@x.io", "emails": ["b@x.io"]}),
            "emails",
        ),
        ("lastpass_list_events", json!({"limit": 10}), "from"),
        ("lastpass_get_user", json!("a@x.io"), "input"),
        ("lastpass_unified_get_role", json!({"id": "owner"}), "id"),
        (
            "lastpass_unified_list_resource_users",
            json!({"resource_type": "shared_folder"}),
            "resource_id",
        ),
    ];
    for (name, input, field) in cases {
        let v = invalid(env.run(name, input.clone()).await);
        assert_eq!(v.field, field, "{name} {input}: {v}");
        assert_eq!(
            actions::validate(name, &input).err().map(|e| e.to_string()),
            Some(v.to_string())
        );
    }
    // Passwords are never quoted back.
    let v = invalid(
        env.run(
            "lastpass_invite_user",
            json!({"email": "a@x.io", "default_password": 123456}),
        )
        .await,
    );
    assert_eq!(v.value, "***");
    assert!(!v.to_string().contains("123456"), "{v}");
    assert_eq!(env.requests(), before, "no request on refused input");
}

#[tokio::test]
async fn unknown_and_unified_actions() {
    let env = Env::new().await;
    let r = env.run("lastpass_fly_to_the_moon", json!({})).await;
    assert!(
        matches!(r, Err(ActionError::UnknownAction { ref name }) if name == "lastpass_fly_to_the_moon")
    );
    assert!(actions::find("lastpass_fly_to_the_moon").is_none());
    for a in actions::catalog()
        .iter()
        .filter(|a| a.kind == ActionKind::Unified)
    {
        let r = env.run(a.name, a.example_value()).await;
        assert!(
            matches!(r, Err(ActionError::Unsupported(_))),
            "{}: {r:?}",
            a.name
        );
        actions::validate(a.name, &a.example_value()).unwrap();
    }
}

/// A listener that must never be contacted, and a check that it was not.
struct Trap(tokio::net::TcpListener);

impl Trap {
    async fn new() -> Self {
        Trap(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }
    fn url(&self) -> String {
        format!("http://{}/enterpriseapi.php", self.0.local_addr().unwrap())
    }
    fn assert_untouched(&self) {
        assert!(
            self.0.accept().now_or_never().is_none(),
            "the other host was contacted"
        );
    }
}

#[tokio::test]
async fn api_call_passes_commands_through_to_the_connection_only() {
    let env = Env::new().await;
    let trap = Trap::new().await;
    let out = env
        .ok(
            "lastpass_api_call",
            json!({"cmd": "getuserdata", "data": {"pagesize": 1, "pageindex": 0}, "method": "POST",
                   "headers": {"Content-Type": "application/json"}}),
        )
        .await;
    assert!(!out.changed_directory, "a read changes nothing");
    assert_eq!(out.data["status"], 200);
    let total = env
        .ok("lastpass_list_users", json!({"page_size": 1}))
        .await
        .data["total"]
        .clone();
    assert_eq!(out.data["body"]["total"], total);
    assert_eq!(env.sb.stats().requests_for("getuserdata"), 2);

    let out = env
        .ok(
            "lastpass_api_call",
            json!({"cmd": "batchadd", "data": [{"username": "raw.user@example.com"}]}),
        )
        .await;
    assert!(out.changed_directory);
    assert_eq!(out.data["body"]["status"], "OK");
    assert!(env.user("raw.user@example.com").is_some());

    let before = env.requests();
    let refused = [
        (json!({"cmd": "getuserdata", "url": trap.url()}), "url"),
        (json!({"cmd": "getuserdata", "host": "127.0.0.1"}), "host"),
        (
            json!({"cmd": "getuserdata", "endpoint": trap.url()}),
            "endpoint",
        ),
        (json!({"cmd": "getuserdata", "method": "GET"}), "method"),
        (
            json!({"cmd": "getuserdata", "headers": {"Host": "evil.example"}}),
            "headers.Host",
        ),
        (
            json!({"cmd": "getuserdata", "headers": {"Authorization": "Bearer x"}}),
            "headers.Authorization",
        ),
        (
            json!({"cmd": "getuserdata", "query": {"cid": "1"}}),
            "query",
        ),
        (
            json!({"cmd": "getuserdata", "headers": {"Authorization": ["Bearer caller-hash"]}}),
            "headers.Authorization",
        ),
        (
            json!({"cmd": "getuserdata", "data": {"provhash": "caller-hash"}}),
            "data.provhash",
        ),
        (
            json!({"cmd": "getuserdata", "data": {"cid": 1}}),
            "data.cid",
        ),
        (json!({"cmd": "../../etc"}), "cmd"),
        (json!({"data": {}}), "cmd"),
    ];
    for (input, field) in refused {
        let v = invalid(env.run("lastpass_api_call", input.clone()).await);
        assert_eq!(v.field, field, "{input}: {v}");
        assert!(!v.to_string().contains("caller-hash"), "{v}");
    }
    assert_eq!(env.requests(), before);
    trap.assert_untouched();

    // Bad credentials surface as the client's authentication error.
    let bad = lastpass::Client::new(
        lastpass::ClientConfig::new(lastpass::Credentials {
            cid: lastpass::Cid(env.cid),
            provhash: lastpass::Secret::new("wrong"),
        })
        .with_endpoint(lastpass::parse_endpoint(&env.sb.lastpass_endpoint()).unwrap()),
    )
    .unwrap();
    let r = actions::run(&bad, "lastpass_api_call", json!({"cmd": "getuserdata"})).await;
    assert!(
        matches!(r, Err(ActionError::LastPass(lastpass::Error::Auth))),
        "{r:?}"
    );
}

#[tokio::test]
async fn proxy_reaches_only_the_connection_endpoint() {
    let env = Env::new().await;
    let trap = Trap::new().await;
    let answer = actions::proxy(
        &env.client,
        json!({"path": "/enterpriseapi.php", "method": "post",
               "body": {"cmd": "getsfdata", "data": "all"}}),
    )
    .await
    .unwrap();
    let folders = env.account()["folders"].as_array().unwrap().len();
    assert_eq!(answer.as_object().unwrap().len(), folders, "{answer}");
    // No method: POST, the only one the API takes.
    let out = actions::proxy_output(&env.client, json!({"body": {"cmd": "getuserdata"}}))
        .await
        .unwrap();
    assert!(!out.changed_directory);
    assert!(out.data["total"].is_u64());

    let before = env.requests();
    let refused = [
        (
            json!({"url": trap.url(), "body": {"cmd": "getuserdata"}}),
            "url",
        ),
        (
            json!({"path": "//evil.example/x", "body": {"cmd": "getuserdata"}}),
            "path",
        ),
        (
            json!({"path": "/other.php", "body": {"cmd": "getuserdata"}}),
            "path",
        ),
        (
            json!({"method": "get", "body": {"cmd": "getuserdata"}}),
            "method",
        ),
        (
            json!({"method": "DELETE", "body": {"cmd": "deluser"}}),
            "method",
        ),
        (
            json!({"headers": {"X-Forwarded-Host": "evil"}, "body": {"cmd": "getuserdata"}}),
            "headers",
        ),
        (
            json!({"body": {"cmd": "getuserdata", "provhash": "caller-hash"}}),
            "body.provhash",
        ),
        (
            json!({"body": {"cmd": "getuserdata", "cid": 5}}),
            "body.cid",
        ),
        (
            json!({"body": {"cmd": "getuserdata", "data": {"provhash": "caller-hash"}}}),
            "body.data.provhash",
        ),
        (json!({"body": {"cmd": "getuserdata", "extra": 1}}), "body"),
        (json!({}), "body"),
        (json!({"body": {"cmd": "getuserdata"}, "host": "x"}), "host"),
    ];
    for (input, field) in refused {
        let v = match actions::proxy(&env.client, input.clone()).await {
            Err(ActionError::InvalidInput(v)) => v,
            other => panic!("{input}: expected InvalidInput, got {other:?}"),
        };
        assert_eq!(v.field, field, "{input}: {v}");
        assert!(!v.to_string().contains("caller-hash"), "{v}");
    }
    assert_eq!(env.requests(), before);
    trap.assert_untouched();
}

#[test]
fn every_direct_action_is_exercised_here() {
    let this_file = include_str!("actions.rs");
    for a in actions::catalog()
        .iter()
        .filter(|a| a.kind == ActionKind::Direct)
    {
        assert!(
            this_file.contains(&format!("\"{}\"", a.name)),
            "{} has no test against the sandbox",
            a.name
        );
    }
}

/// The futures are `Send`, so an axum handler can await them.
#[allow(dead_code)]
fn futures_are_send(client: &lastpass::Client) {
    fn send<T: Send>(_: T) {}
    send(actions::run(client, "lastpass_list_users", json!({})));
    send(actions::proxy(client, json!({})));
    send(actions::proxy_output(client, json!({})));
}
