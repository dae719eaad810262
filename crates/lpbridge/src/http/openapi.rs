//! `/openapi.json`: an OpenAPI 3.1 document generated from the code. Schemas come from the
//! models' `JsonSchema` derives (the same types the handlers serialise), operations from
//! [`OPERATIONS`], and one operation per connector action from the action catalogue with its
//! input schema. Tests check that every operation is routed and that answers match the schemas.

use std::sync::OnceLock;

use schemars::generate::{Contract, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::actions;
use crate::unified::model;

/// What an operation answers on success.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `{data: [T], next, raw?}`.
    List(&'static str),
    /// `{data: T, raw?}`.
    One(&'static str),
    /// A component schema as the whole body.
    Plain(&'static str),
    /// Any JSON.
    Any,
    /// Prometheus text.
    Text,
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Needs an API key.
    pub auth: bool,
    /// Takes `x-account-id`.
    pub account: bool,
    /// Query parameters (names from [`query_param`]).
    pub query: &'static [&'static str],
    /// Request body component, if any.
    pub body: Option<&'static str>,
    pub answer: Answer,
    /// Needs a read-write key.
    pub write: bool,
}

const LIST_Q: &[&str] = &[
    "page_size",
    "next",
    "fields",
    "filter[updated_after]",
    "raw",
];
const USERS_Q: &[&str] = &[
    "page_size",
    "next",
    "fields",
    "expand",
    "filter[updated_after]",
    "filter[email]",
    "raw",
];
const ONE_Q: &[&str] = &["fields", "expand", "raw"];

macro_rules! op {
    ($m:literal $p:literal $id:literal $s:literal, $tag:literal, auth=$a:literal, account=$acc:literal, q=$q:expr, body=$b:expr, answer=$ans:expr, write=$w:literal) => {
        Operation {
            method: $m,
            path: $p,
            id: $id,
            summary: $s,
            tag: $tag,
            auth: $a,
            account: $acc,
            query: $q,
            body: $b,
            answer: $ans,
            write: $w,
        }
    };
}

/// Every route of the service (the action-per-name paths are added from the catalogue).
pub const OPERATIONS: &[Operation] = &[
    op!("get" "/unified/iam/users" "iam_list_users" "List users", "IAM", auth=true, account=true, q=USERS_Q, body=None, answer=Answer::List("IamUser"), write=false),
    op!("get" "/unified/iam/users/{id}" "iam_get_user" "Get a user by e-mail (or LastPass id)", "IAM", auth=true, account=true, q=ONE_Q, body=None, answer=Answer::One("IamUser"), write=false),
    op!("patch" "/unified/iam/users/{id}" "iam_update_user" "Update a user's name or status (enableuser / disableuser)", "IAM", auth=true, account=true, q=&[], body=Some("IamUpdateUser"), answer=Answer::Plain("WriteResult"), write=true),
    op!("delete" "/unified/iam/users/{id}" "iam_delete_user" "Delete a user (deluser; delete_action deactivate by default)", "IAM", auth=true, account=true, q=&["delete_action"], body=None, answer=Answer::Plain("WriteResult"), write=true),
    op!("get" "/unified/iam/groups" "iam_list_groups" "List groups with members", "IAM", auth=true, account=true, q=&["page_size", "next", "fields", "expand", "filter[updated_after]", "raw"], body=None, answer=Answer::List("IamGroup"), write=false),
    op!("get" "/unified/iam/groups/{id}" "iam_get_group" "Get a group by name", "IAM", auth=true, account=true, q=ONE_Q, body=None, answer=Answer::One("IamGroup"), write=false),
    op!("get" "/unified/iam/roles" "iam_list_roles" "List the two account roles (admin, basic)", "IAM", auth=true, account=true, q=LIST_Q, body=None, answer=Answer::List("IamRole"), write=false),
    op!("get" "/unified/iam/roles/{id}" "iam_get_role" "Get a role (admin or basic; others 400)", "IAM", auth=true, account=true, q=ONE_Q, body=None, answer=Answer::One("IamRole"), write=false),
    op!("get" "/unified/iam/organizations" "iam_list_organizations" "The account, as one organization", "IAM", auth=true, account=true, q=LIST_Q, body=None, answer=Answer::List("IamOrganization"), write=false),
    op!("get" "/unified/iam/organizations/{id}" "iam_get_organization" "The organization by CID", "IAM", auth=true, account=true, q=&["fields", "raw"], body=None, answer=Answer::One("IamOrganization"), write=false),
    op!("get" "/unified/iam/resource_types" "iam_list_resource_types" "Resource types (shared_folder)", "IAM", auth=true, account=true, q=&["raw"], body=None, answer=Answer::Any, write=false),
    op!("get" "/unified/iam/resource_users" "iam_list_resource_users" "Members of a shared folder with their folder role", "IAM", auth=true, account=true, q=&["resource_type", "resource_id", "page_size", "next", "fields", "expand", "raw"], body=None, answer=Answer::List("ResourceUser"), write=false),
    op!("get" "/unified/iam/resources" "iam_list_resources" "List shared folders", "IAM", auth=true, account=true, q=LIST_Q, body=None, answer=Answer::List("IamResource"), write=false),
    op!("get" "/unified/iam/resources/{id}" "iam_get_resource" "Get a shared folder", "IAM", auth=true, account=true, q=&["fields", "raw"], body=None, answer=Answer::One("IamResource"), write=false),
    op!("get" "/unified/iam/me" "iam_get_me" "The connection's identity (auth_type api_key, named after the CID); probes the credentials", "IAM", auth=true, account=true, q=&["raw"], body=None, answer=Answer::One("IamCredentials"), write=false),
    op!("post" "/unified/proxy" "proxy_request" "Pass an Enterprise API command through to the connection's own endpoint", "Passthrough", auth=true, account=true, q=&[], body=Some("ProxyRequest"), answer=Answer::Any, write=true),
    op!("get" "/actions" "list_actions" "Every connector action with its input schema", "Actions", auth=true, account=false, q=&[], body=None, answer=Answer::List("Action"), write=false),
    op!("get" "/actions/{name}" "get_action" "One action", "Actions", auth=true, account=false, q=&[], body=None, answer=Answer::One("Action"), write=false),
    op!("post" "/actions/{name}" "run_action" "Run an action (input validated against its schema)", "Actions", auth=true, account=true, q=&[], body=Some("ActionInput"), answer=Answer::Any, write=false),
    op!("get" "/connections" "list_connections" "List connections (never their secrets)", "Connections", auth=true, account=false, q=&[], body=None, answer=Answer::List("Connection"), write=false),
    op!("post" "/connections" "create_connection" "Add a LastPass account (the provisioning hash is encrypted at rest)", "Connections", auth=true, account=false, q=&[], body=Some("NewConnection"), answer=Answer::One("Connection"), write=true),
    op!("get" "/connections/{id}" "get_connection" "One connection", "Connections", auth=true, account=false, q=&[], body=None, answer=Answer::One("Connection"), write=false),
    op!("patch" "/connections/{id}" "update_connection" "Change a connection's provisioning hash, endpoint or time zone", "Connections", auth=true, account=false, q=&[], body=Some("ConnectionPatch"), answer=Answer::One("Connection"), write=true),
    op!("delete" "/connections/{id}" "delete_connection" "Remove a connection", "Connections", auth=true, account=false, q=&[], body=None, answer=Answer::Plain("WriteResult"), write=true),
    op!("post" "/connections/{id}/test" "test_connection" "Probe a connection's credentials", "Connections", auth=true, account=false, q=&[], body=None, answer=Answer::One("IamCredentials"), write=false),
    op!("get" "/msp/credentials" "msp_get_credentials" "The MSP account's LastPass REST API settings (never the key)", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("put" "/msp/credentials" "msp_put_credentials" "Store the MSP account's LastPass REST API key (sealed at rest; checked with one call unless check is false). An empty key: 400 \"Credentials are required\"", "MSP import", auth=true, account=false, q=&[], body=Some("MspCredentials"), answer=Answer::Any, write=true),
    op!("get" "/msp/integrations" "msp_list_integrations" "PSA integrations with their import lock", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("get" "/msp/integrations/{id}/attributes" "msp_attributes" "Step 1, filters: the PSA's company types and statuses", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("get" "/msp/integrations/{id}/lock" "msp_lock_status" "Who holds the integration's import lock, until when", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("post" "/msp/imports" "msp_create_import" "Step 2, fetch: start an import wizard (takes the lock; 409 \"Another admin is already working with this integration\") and read both lists", "MSP import", auth=true, account=false, q=&[], body=Some("MspNewImport"), answer=Answer::Any, write=true),
    op!("get" "/msp/imports/{id}" "msp_get_import" "The wizard: both lists (summaries), its last run, the lock", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("delete" "/msp/imports/{id}" "msp_delete_import" "End a wizard and release the lock", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=true),
    op!("get" "/msp/imports/{id}/plan" "msp_get_plan" "The wizard's signed plan (as `lpbridge msp import plan` writes it)", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("get" "/msp/imports/{id}/companies" "msp_list_companies" "Companies in <PSA> (unmapped first) and Companies not in <PSA>, with import status, PSA type and status, last import date and choice", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("patch" "/msp/imports/{id}/companies" "msp_choose_companies" "Step 3, choices: create (default), map to an existing managed company, keep, unmap and create as new, or leave out", "MSP import", auth=true, account=false, q=&[], body=Some("MspCompanyChoices"), answer=Answer::Any, write=true),
    op!("get" "/msp/imports/{id}/companies/{company}/users" "msp_get_users" "Step 4, users: a company's contacts, which are selected (imported before: preselected), mapped or unmapped", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("patch" "/msp/imports/{id}/companies/{company}/users" "msp_choose_users" "Step 4, users: select e-mails, map contacts to existing LastPass users, unmap and create as new", "MSP import", auth=true, account=false, q=&[], body=Some("MspUserChoices"), answer=Answer::Any, write=true),
    op!("post" "/msp/imports/{id}/apply" "msp_apply" "Step 5, Import and Map: validates (400 bad input, 409 stale plan naming what changed), then runs in the background (202)", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=true),
    op!("get" "/msp/imports/{id}/result" "msp_result" "Step 6, result: status, progress {done,total}, companies and users imported, every error with the product's message", "MSP import", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("get" "/events" "list_events" "Collected audit events, newest first (from the store; filters user, category, action, from/to)", "Events", auth=true, account=true, q=&["page_size", "next", "user", "category", "action", "from", "to", "order"], body=None, answer=Answer::Any, write=false),
    op!("get" "/events/watcher" "get_event_watcher" "Whether the connection's events are watched, and how many are collected", "Events", auth=true, account=true, q=&[], body=None, answer=Answer::Any, write=false),
    op!("patch" "/events/watcher" "set_event_watcher" "Turn watching the connection's events on or off ({enabled})", "Events", auth=true, account=true, q=&[], body=None, answer=Answer::Any, write=true),
    op!("get" "/webhooks" "list_webhooks" "Webhook subscriptions (never their secrets)", "Events", auth=true, account=true, q=&[], body=None, answer=Answer::Any, write=false),
    op!("post" "/webhooks" "create_webhook" "Subscribe a URL to the connection's events ({url, secret, categories?, enabled?}; HMAC-SHA256 signed deliveries)", "Events", auth=true, account=true, q=&[], body=None, answer=Answer::Any, write=true),
    op!("get" "/webhooks/{id}" "get_webhook" "One subscription", "Events", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("patch" "/webhooks/{id}" "update_webhook" "Change a subscription's URL, secret, categories or enabled flag", "Events", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=true),
    op!("delete" "/webhooks/{id}" "delete_webhook" "Remove a subscription", "Events", auth=true, account=false, q=&[], body=None, answer=Answer::Plain("WriteResult"), write=true),
    op!("get" "/webhooks/{id}/dead_letters" "list_dead_letters" "Batches the subscription gave up on", "Events", auth=true, account=false, q=&["include_replayed"], body=None, answer=Answer::Any, write=false),
    op!("post" "/webhooks/{id}/replay" "replay_dead_letters" "Deliver the subscription's dead letters again (all, or {id})", "Events", auth=true, account=false, q=&[], body=None, answer=Answer::Any, write=true),
    op!("get" "/openapi.json" "openapi" "This document", "Operations", auth=false, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("get" "/healthz" "healthz" "Liveness", "Operations", auth=false, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("get" "/readyz" "readyz" "Readiness (the store answers)", "Operations", auth=false, account=false, q=&[], body=None, answer=Answer::Any, write=false),
    op!("get" "/metrics" "metrics" "Prometheus metrics", "Operations", auth=false, account=false, q=&[], body=None, answer=Answer::Text, write=false),
];

fn query_param(name: &str) -> Value {
    let (desc, schema) = match name {
        "page_size" => (
            "Items per page (1–1000, default 25).",
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 25}),
        ),
        "next" => (
            "The cursor from the previous page's `next`.",
            json!({"type": "string"}),
        ),
        "fields" => (
            "Comma-separated top-level fields to return.",
            json!({"type": "string"}),
        ),
        "expand" => (
            "Comma-separated relations to expand.",
            json!({"type": "string"}),
        ),
        "raw" => (
            "Include the upstream calls (secrets redacted) as `raw`; forces a live read.",
            json!({"type": "boolean", "default": false}),
        ),
        "filter[updated_after]" => (
            "Accepted for StackOne compatibility; LastPass exposes no modification times, so nothing is filtered out.",
            json!({"type": "string", "format": "date-time"}),
        ),
        "filter[email]" => (
            "Only the user with this e-mail (case-insensitive).",
            json!({"type": "string"}),
        ),
        "resource_type" => (
            "Required: `shared_folder` (or StackOne's `folder`).",
            json!({"type": "string", "enum": ["shared_folder", "folder"]}),
        ),
        "resource_id" => ("Required: the shared folder id.", json!({"type": "string"})),
        "delete_action" => (
            "deactivate (default), remove or delete; or 0/1/2.",
            json!({"type": "string", "enum": ["deactivate", "remove", "delete", "0", "1", "2"], "default": "deactivate"}),
        ),
        "user" => (
            "Only this user's events (e-mail, case-insensitive).",
            json!({"type": "string"}),
        ),
        "category" => (
            "Only this category.",
            json!({"type": "string", "enum": ["authentication", "user_lifecycle", "admin", "groups", "shared_folders", "vault_items", "policy", "api", "other"]}),
        ),
        "action" => (
            "Only this LastPass action (case-insensitive).",
            json!({"type": "string"}),
        ),
        "from" | "to" => (
            "Time bound, UTC: RFC 3339 or YYYY-MM-DD.",
            json!({"type": "string"}),
        ),
        "order" => (
            "desc (newest first, default) or asc.",
            json!({"type": "string", "enum": ["desc", "asc"], "default": "desc"}),
        ),
        "include_replayed" => (
            "Also list dead letters already replayed.",
            json!({"type": "boolean", "default": false}),
        ),
        _ => ("", json!({"type": "string"})),
    };
    let required = matches!(name, "resource_type" | "resource_id");
    json!({"name": name, "in": "query", "required": required, "description": desc, "schema": schema})
}

fn error_responses(op: &Operation) -> Map<String, Value> {
    let r = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut m = Map::new();
    m.insert(
        "400".into(),
        r("Invalid input; the message names the field"),
    );
    if op.auth {
        m.insert("401".into(), r("Missing, unknown or revoked API key; or LastPass refused the connection's credentials (then provider_errors is set)"));
        m.insert(
            "403".into(),
            r("A read-only key on a write, or a key limited to other connections (or managing connections)"),
        );
    }
    m.insert(
        "404".into(),
        r("Not found (unknown x-account-id, user, group, action…)"),
    );
    if op.id == "create_connection" {
        m.insert("409".into(), r("A connection with this id exists"));
    }
    if op.tag == "MSP import" {
        m.insert("409".into(), r("\"Another admin is already working with this integration\" (the import lock), or a stale plan"));
        m.insert("502".into(), r("The PSA or the LastPass REST API failed; the message is the product's (e.g. \"We received a server error from your PSA provider\")"));
    }
    if op.body.is_some() {
        m.insert("413".into(), r("Body over the size limit"));
    }
    if op.account {
        m.insert(
            "422".into(),
            r("LastPass refused the change (provider_errors)"),
        );
        m.insert("429".into(), r("LastPass rate limit (Retry-After)"));
        m.insert("502".into(), r("LastPass failed or was unreachable"));
    }
    m
}

fn ok_schema(answer: Answer) -> Option<Value> {
    let r = |n: &str| json!({"$ref": format!("#/components/schemas/{n}")});
    let raw = json!({"type": "array", "items": {"$ref": "#/components/schemas/RawCall"}});
    Some(match answer {
        Answer::List(n) => json!({"type": "object", "required": ["data", "next"], "properties": {
            "data": {"type": "array", "items": r(n)},
            "next": {"type": ["string", "null"]},
            "raw": raw}}),
        Answer::One(n) => {
            json!({"type": "object", "required": ["data"], "properties": {"data": r(n), "raw": raw}})
        }
        Answer::Plain(n) => r(n),
        Answer::Any | Answer::Text => return None,
    })
}

fn operation(op: &Operation) -> Value {
    let mut params: Vec<Value> = Vec::new();
    for seg in op.path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
    }
    if op.account {
        params.push(
            json!({"name": "x-account-id", "in": "header", "required": false,
            "description": "The connection to use; may be omitted when exactly one exists.",
            "schema": {"type": "string"}}),
        );
    }
    params.extend(op.query.iter().map(|q| query_param(q)));
    let mut responses = error_responses(op);
    let ok_code = match op.id {
        "create_connection" | "msp_create_import" => "201",
        "msp_apply" => "202",
        _ => "200",
    };
    let ok = match (op.answer, ok_schema(op.answer)) {
        (Answer::Text, _) => {
            json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        (_, Some(s)) => {
            json!({"description": "OK", "content": {"application/json": {"schema": s}}})
        }
        (_, None) => json!({"description": "OK", "content": {"application/json": {"schema": {}}}}),
    };
    responses.insert(ok_code.into(), ok);
    let mut o = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
        "x-lpbridge-write": op.write,
    });
    if op.auth {
        o["security"] = json!([{"bearer": []}, {"basic": []}]);
    } else {
        o["security"] = json!([]);
    }
    if let Some(b) = op.body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
    }
    o
}

fn action_operation(a: &actions::ActionSpec) -> Value {
    let op = Operation {
        method: "post",
        path: "/actions/{name}",
        id: a.name,
        summary: a.summary,
        tag: "Actions",
        auth: true,
        account: true,
        query: &[],
        body: None,
        answer: Answer::Any,
        write: a.write,
    };
    let mut o = operation(&op);
    // The concrete path has no {name} parameter.
    if let Some(params) = o["parameters"].as_array_mut() {
        params.retain(|p| p["in"] != "path");
    }
    o["operationId"] = json!(format!("action_{}", a.name));
    o["description"] = json!(a.description);
    o["requestBody"] =
        json!({"required": false, "content": {"application/json": {"schema": (a.input_schema)()}}});
    o
}

/// The `$defs`-free component schemas of the models.
fn components() -> Map<String, Value> {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.contract = Contract::Serialize;
    let mut g = settings.into_generator();
    g.subschema_for::<model::IamUser>();
    g.subschema_for::<model::IamGroup>();
    g.subschema_for::<model::IamRole>();
    g.subschema_for::<model::IamOrganization>();
    g.subschema_for::<model::IamResource>();
    g.subschema_for::<model::ResourceUser>();
    g.subschema_for::<model::IamCredentials>();
    g.subschema_for::<model::WriteResult>();
    let mut m = g.take_definitions(true);
    m.insert("RawCall".into(), json!({"type": "object", "description": "One upstream call; the provisioning hash and passwords are `***`.",
        "required": ["method", "url", "body", "status", "response"],
        "properties": {"method": {"type": "string"}, "url": {"type": "string"}, "body": {}, "status": {"type": ["integer", "null"]}, "response": {}}}));
    m.insert("Error".into(), json!({"type": "object", "required": ["statusCode", "message", "timestamp", "provider_errors"],
        "properties": {
            "statusCode": {"type": "integer"}, "message": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
            "errorCode": {"type": "string"},
            "data": {"type": "object", "properties": {"statusCode": {"type": "integer"}, "message": {"type": "string"}, "headers": {"type": "object"}}},
            "provider_errors": {"type": "array", "items": {"type": "object", "properties": {"status": {"type": "integer"}, "url": {"type": ["string", "null"]}, "raw": {}, "headers": {"type": "object"}}}}}}));
    m.insert("IamUpdateUser".into(), json!({"type": "object", "additionalProperties": false, "minProperties": 1,
        "properties": {"name": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
            "status": {"oneOf": [{"type": "string", "enum": ["enabled", "disabled"]},
                {"type": "object", "required": ["value"], "properties": {"value": {"type": "string", "enum": ["enabled", "disabled"]}}}]}}}));
    m.insert("ProxyRequest".into(), json!({"type": "object", "description": "StackOne's proxy body. The Enterprise API takes POST only; `url` and hosts are refused: the connection's own endpoint is always used. `body` is `{cmd, data?}`.",
        "properties": {"method": {"type": "string"}, "path": {"type": "string"}, "headers": {"type": "object"}, "body": {"type": "object", "required": ["cmd"], "properties": {"cmd": {"type": "string"}, "data": {}}}}}));
    m.insert("Action".into(), json!({"type": "object", "required": ["name", "kind", "write", "input_schema"],
        "properties": {"name": {"type": "string"}, "summary": {"type": "string"}, "description": {"type": "string"},
            "kind": {"type": "string", "enum": ["direct", "unified"]}, "write": {"type": "boolean"},
            "source": {"type": "array", "items": {"type": "string"}}, "input_schema": {"type": "object"}}}));
    m.insert("ActionInput".into(), json!({"type": "object", "description": "The action's input; see its own path /actions/<name> for the schema."}));
    m.insert("Connection".into(), json!({"type": "object", "required": ["id", "cid", "endpoint", "created_at", "updated_at"],
        "properties": {"id": {"type": "string"}, "cid": {"type": "integer"}, "endpoint": {"type": "string"},
            "time_zone": {"type": ["string", "null"]}, "created_at": {"type": "string"}, "updated_at": {"type": "string"}}}));
    m.insert("NewConnection".into(), json!({"type": "object", "additionalProperties": false, "required": ["id", "cid", "provhash"],
        "properties": {"id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}, "cid": {"type": ["integer", "string"]},
            "provhash": {"type": "string", "writeOnly": true}, "endpoint": {"type": "string", "default": lastpass::DEFAULT_ENDPOINT},
            "time_zone": {"type": "string", "default": "US/Eastern"}}}));
    m.insert("ConnectionPatch".into(), json!({"type": "object", "additionalProperties": false, "minProperties": 1,
        "properties": {"provhash": {"type": "string", "writeOnly": true}, "endpoint": {"type": "string"}, "time_zone": {"type": ["string", "null"]}}}));
    m
}

/// One `/scim/v2` operation: method, path, id, summary, request body, success status, answer.
struct ScimOp(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
);

const SCIM_OPERATIONS: &[ScimOp] = &[
    ScimOp(
        "get",
        "/Users",
        "scim_list_users",
        "List or filter users (filter, startIndex, count, attributes, excludedAttributes)",
        None,
        "200",
        Some("ScimListResponse"),
    ),
    ScimOp(
        "post",
        "/Users",
        "scim_create_user",
        "Create a user (batchadd: LastPass invites them; a password is accepted and dropped)",
        Some("ScimUser"),
        "201",
        Some("ScimUser"),
    ),
    ScimOp(
        "post",
        "/Users/.search",
        "scim_search_users",
        "Search users with a SearchRequest body",
        Some("ScimSearchRequest"),
        "200",
        Some("ScimListResponse"),
    ),
    ScimOp(
        "get",
        "/Users/{id}",
        "scim_get_user",
        "One user",
        None,
        "200",
        Some("ScimUser"),
    ),
    ScimOp(
        "put",
        "/Users/{id}",
        "scim_replace_user",
        "Replace a user (updateuser, enableuser/disableuser, updateemail)",
        Some("ScimUser"),
        "200",
        Some("ScimUser"),
    ),
    ScimOp(
        "patch",
        "/Users/{id}",
        "scim_patch_user",
        "Patch a user (RFC 7644 §3.5.2 with the identity providers' quirks)",
        Some("ScimPatchOp"),
        "200",
        Some("ScimUser"),
    ),
    ScimOp(
        "delete",
        "/Users/{id}",
        "scim_delete_user",
        "Delete a user (deluser with scim_delete_action, deactivate by default)",
        None,
        "204",
        None,
    ),
    ScimOp(
        "get",
        "/Groups",
        "scim_list_groups",
        "List or filter groups",
        None,
        "200",
        Some("ScimListResponse"),
    ),
    ScimOp(
        "post",
        "/Groups",
        "scim_create_group",
        "Create a group (kept by lpbridge until it has members)",
        Some("ScimGroup"),
        "201",
        Some("ScimGroup"),
    ),
    ScimOp(
        "post",
        "/Groups/.search",
        "scim_search_groups",
        "Search groups with a SearchRequest body",
        Some("ScimSearchRequest"),
        "200",
        Some("ScimListResponse"),
    ),
    ScimOp(
        "get",
        "/Groups/{id}",
        "scim_get_group",
        "One group",
        None,
        "200",
        Some("ScimGroup"),
    ),
    ScimOp(
        "put",
        "/Groups/{id}",
        "scim_replace_group",
        "Replace a group (a rename moves every member)",
        Some("ScimGroup"),
        "200",
        Some("ScimGroup"),
    ),
    ScimOp(
        "patch",
        "/Groups/{id}",
        "scim_patch_group",
        "Patch a group's name or members (batchchangegrp)",
        Some("ScimPatchOp"),
        "200",
        Some("ScimGroup"),
    ),
    ScimOp(
        "delete",
        "/Groups/{id}",
        "scim_delete_group",
        "Delete a group (every membership is removed)",
        None,
        "204",
        None,
    ),
    ScimOp(
        "post",
        "/.search",
        "scim_search_all",
        "Search users and groups together",
        Some("ScimSearchRequest"),
        "200",
        Some("ScimListResponse"),
    ),
    ScimOp(
        "get",
        "/ServiceProviderConfig",
        "scim_service_provider_config",
        "What this provider supports",
        None,
        "200",
        None,
    ),
    ScimOp(
        "get",
        "/ResourceTypes",
        "scim_resource_types",
        "User and Group",
        None,
        "200",
        Some("ScimListResponse"),
    ),
    ScimOp(
        "get",
        "/ResourceTypes/{id}",
        "scim_resource_type",
        "One resource type",
        None,
        "200",
        None,
    ),
    ScimOp(
        "get",
        "/Schemas",
        "scim_schemas",
        "The User, EnterpriseUser and Group schemas",
        None,
        "200",
        Some("ScimListResponse"),
    ),
    ScimOp(
        "get",
        "/Schemas/{id}",
        "scim_schema",
        "One schema by URN",
        None,
        "200",
        None,
    ),
];

fn scim_operation(&ScimOp(_, path, id, summary, body, ok, answer): &ScimOp) -> Value {
    let scim = |schema: Value| json!({"application/scim+json": {"schema": schema}});
    let r = |n: &str| json!({"$ref": format!("#/components/schemas/{n}")});
    let params: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .chain(
            ["filter", "startIndex", "count", "attributes", "excludedAttributes"]
                .iter()
                .filter(|q| {
                    path.ends_with("/Users") || path.ends_with("/Groups") || {
                        // Single-resource reads and writes take the projection parameters.
                        path.ends_with("{id}") && q.ends_with("ttributes")
                    }
                })
                .map(|q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}})),
        )
        .collect();
    let mut responses = Map::new();
    let ok_body = match answer {
        Some(n) => json!({"description": "OK", "content": scim(r(n))}),
        None if ok == "204" => json!({"description": "No content"}),
        None => json!({"description": "OK", "content": scim(json!({"type": "object"}))}),
    };
    responses.insert(ok.into(), ok_body);
    for (code, what) in [
        (
            "400",
            "invalidFilter, invalidSyntax, invalidPath, noTarget, invalidValue or mutability",
        ),
        ("401", "No, unknown, revoked or non-SCIM bearer token"),
        ("404", "No such resource"),
        ("409", "uniqueness: the userName or group name is taken"),
        ("413", "Body over the size limit"),
    ] {
        responses.insert(
            code.into(),
            json!({"description": what, "content": scim(r("ScimError"))}),
        );
    }
    let mut o = json!({
        "operationId": id,
        "summary": summary,
        "tags": ["SCIM"],
        "parameters": params,
        "responses": responses,
        "security": [{"scimBearer": []}],
    });
    if let Some(b) = body {
        o["requestBody"] = json!({"required": true, "content": scim(r(b))});
    }
    o
}

fn scim_components(m: &mut Map<String, Value>) {
    m.insert("ScimUser".into(), json!({"type": "object", "description": "RFC 7643 §4.1 User (with the enterprise extension under its URN); GET /scim/v2/Schemas has every attribute.",
        "required": ["userName"], "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "id": {"type": "string", "readOnly": true},
            "externalId": {"type": "string"}, "userName": {"type": "string"}, "name": {"type": "object"}, "displayName": {"type": "string"},
            "active": {"type": "boolean"}, "emails": {"type": "array", "items": {"type": "object"}}, "groups": {"type": "array", "readOnly": true, "items": {"type": "object"}},
            "password": {"type": "string", "writeOnly": true}, "meta": {"type": "object", "readOnly": true}}}));
    m.insert("ScimGroup".into(), json!({"type": "object", "description": "RFC 7643 §4.2 Group.", "required": ["displayName"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "id": {"type": "string", "readOnly": true}, "externalId": {"type": "string"},
            "displayName": {"type": "string"}, "members": {"type": "array", "items": {"type": "object", "properties": {"value": {"type": "string"}, "$ref": {"type": "string"}, "type": {"type": "string", "enum": ["User"]}}}},
            "meta": {"type": "object", "readOnly": true}}}));
    m.insert("ScimListResponse".into(), json!({"type": "object", "required": ["schemas", "totalResults", "Resources"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "totalResults": {"type": "integer"}, "startIndex": {"type": "integer"},
            "itemsPerPage": {"type": "integer"}, "Resources": {"type": "array", "items": {"type": "object"}}}}));
    m.insert("ScimPatchOp".into(), json!({"type": "object", "required": ["Operations"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "Operations": {"type": "array", "items": {"type": "object", "required": ["op"],
            "properties": {"op": {"type": "string", "description": "add, remove or replace (any case)"}, "path": {"type": "string"}, "value": {}}}}}}));
    m.insert("ScimSearchRequest".into(), json!({"type": "object", "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "filter": {"type": "string"},
        "startIndex": {"type": "integer"}, "count": {"type": "integer"}, "attributes": {"type": "array", "items": {"type": "string"}}, "excludedAttributes": {"type": "array", "items": {"type": "string"}}}}));
    m.insert("ScimError".into(), json!({"type": "object", "description": "RFC 7644 §3.12; `status` is a string.", "required": ["schemas", "status"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "status": {"type": "string"}, "scimType": {"type": "string"}, "detail": {"type": "string"}}}));
}

fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in SCIM_OPERATIONS {
        let entry = paths
            .entry(format!("{}{}", crate::scim::routes::PREFIX, op.1))
            .or_insert_with(|| json!({}));
        entry[op.0] = scim_operation(op);
    }
    for op in OPERATIONS {
        let entry = paths.entry(op.path).or_insert_with(|| json!({}));
        entry[op.method] = operation(op);
    }
    for a in actions::catalog() {
        paths.insert(
            format!("/actions/{}", a.name),
            json!({"post": action_operation(a)}),
        );
    }
    let mut schemas = components();
    scim_components(&mut schemas);
    schemas.extend(crate::msp::http::openapi_components());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lpbridge",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "LastPass Business behind a StackOne-shaped unified IAM API, connector actions and a passthrough. Pick the LastPass account with `x-account-id`; authenticate with an API key as a Bearer token or as the HTTP Basic username.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "The API key as the username, empty password."},
                "scimBearer": {"type": "http", "scheme": "bearer", "description": "A SCIM token from `lpbridge scim token create` (selects the connection; /scim/v2 only)."},
            },
        },
    })
}

/// The document (built once).
pub fn document() -> Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build).clone()
}
