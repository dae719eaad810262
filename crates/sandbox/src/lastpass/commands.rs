//! Every `cmd` of `enterpriseapi.php` (except `reporting`, in `reporting.rs`): validation, state
//! transitions, audit events and the exact response envelopes of reference §2–§3.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::state::{Account, Folder, Out, PushedSite, User, score_string};
use super::wire::{Ctx, Reply, cid_of, cmd_of, decode_body, flex_bool, flex_i64, shown};
use super::{FlagStyle, LastPass, reporting};

const INITIATED: &str = "Initiated by API";

pub(crate) fn execute(
    lp: &LastPass,
    body: &[u8],
    content_type: Option<&str>,
    peer: IpAddr,
) -> Reply {
    // An unreadable body is answered with a FAIL envelope (the reference is silent; the real
    // script would probably not find cid/provhash either, but a FAIL names the problem).
    let Some(top) = decode_body(body, content_type) else {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Reply::AuthError;
        }
        return Reply::fail("Invalid request: the body is not a JSON object or form data");
    };
    let Some(cid) = cid_of(&top) else {
        return Reply::AuthError;
    };
    let Some(provhash) = top.get("provhash").and_then(Value::as_str) else {
        return Reply::AuthError;
    };
    let Some(acc) = lp.account(cid) else {
        return Reply::AuthError;
    };
    if acc.read().spec.provhash != provhash {
        return Reply::AuthError;
    }
    let actor = match top.get("apiuser").and_then(Value::as_str).map(str::trim) {
        Some(u) if !u.is_empty() => format!("API: {u}"),
        _ => "API".to_owned(),
    };
    let ctx = Ctx {
        ip: peer.to_string(),
        actor,
        now_us: lp.inner.clock.now_us(),
    };
    let (flag_style, max_pagesize, sf_limit) = {
        let c = lp.inner.config.read();
        (c.flag_style, c.max_pagesize, c.detailed_sf_unpaged_limit)
    };
    let null = Value::Null;
    let data = top.get("data").unwrap_or(&null);
    let Some(cmd) = cmd_of(&top) else {
        return Reply::fail("No command specified");
    };
    // A read command logs its audit event only when it answered OK; the read lock is released
    // before the write lock is taken.
    let read = |run: &dyn Fn(&Account) -> (Reply, bool), action: &str| {
        let (reply, ok) = run(&acc.read());
        if ok {
            acc.write()
                .log(ctx.now_us, &ctx.actor, &ctx.ip, action, INITIATED);
        }
        reply
    };
    match cmd.as_str() {
        "getuserdata" => read(&|a| getuserdata(a, data, max_pagesize), "Get User Data"),
        "getsfdata" | "getdetailedsfdata" => {
            let detailed = cmd == "getdetailedsfdata";
            let limit = if detailed { sf_limit } else { None };
            read(
                &|a| getsfdata(a, data, detailed, flag_style, limit),
                "Get Shared Folder Data",
            )
        }
        "reporting" => read(&|a| reporting::reporting(a, &top, data), "Reporting"),
        "expiredmasterpwlist" => read(
            &|a| expiredmasterpwlist(a, data, ctx.now_us),
            "Expired Master Password List",
        ),
        "batchadd" => batchadd(&mut acc.write(), &ctx, data),
        "updateuser" => updateuser(&mut acc.write(), &ctx, data),
        "deluser" => deluser(&mut acc.write(), &ctx, data),
        "disableuser" => set_disabled(&mut acc.write(), &ctx, data, true),
        "enableuser" => set_disabled(&mut acc.write(), &ctx, data, false),
        "batchchangegrp" => batchchangegrp(&mut acc.write(), &ctx, data),
        "reinviteuser" | "resetpassword" | "requiremasterpasswordchange" | "disablemultifactor" => {
            single_user(&mut acc.write(), &ctx, &cmd, data)
        }
        "updateemail" => {
            if let Some(r) = updateemail_limited(lp, cid, &ctx, data) {
                return r;
            }
            updateemail(&mut acc.write(), &ctx, data)
        }
        "pushsitestousers" => pushsitestousers(&mut acc.write(), &ctx, data),
        _ => Reply::fail(&format!("Unknown command: {cmd}")),
    }
}

// ---------------------------------------------------------------- helpers

/// `Invalid data: expected an object, got <data>`.
fn invalid_data(data: &Value) -> Reply {
    Reply::fail(&format!(
        "Invalid data: expected an object, got {}",
        shown(data)
    ))
}

fn obj(data: &Value) -> Option<&Map<String, Value>> {
    data.as_object()
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).map(str::trim)
}

/// The objects of a batch: an array of objects, or one object alone. `not_object` /
/// `not_array` are the FAIL messages for a bad element / a bad `data`.
fn objects<'a>(
    data: &'a Value,
    not_object: &str,
    not_array: &str,
) -> Result<Vec<&'a Map<String, Value>>, Reply> {
    match data {
        Value::Array(v) => v
            .iter()
            .map(|x| x.as_object().ok_or_else(|| Reply::fail(not_object)))
            .collect(),
        Value::Object(m) => Ok(vec![m]),
        _ => Err(Reply::fail(not_array)),
    }
}

/// A list of strings: an array of strings, or a single string.
fn str_list(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::trim)).collect(),
        Value::String(s) => Some(vec![s.trim()]),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

fn valid_email(s: &str) -> bool {
    lp_types::Email::parse(s).is_ok()
}

/// Items to skip and to take for an optional `(pagesize, pageindex)`; everything unpaged.
fn skip_take(page: Option<(usize, usize)>) -> (usize, usize) {
    match page {
        Some((ps, pi)) => (ps.saturating_mul(pi), ps),
        None => (0, usize::MAX),
    }
}

/// `"<id>":{…}`: one entry of `getuserdata`'s `Users` object.
fn write_user(o: &mut Out, a: &Account, u: &User) {
    let tz = &a.tz;
    o.push(b'"')
        .uint(u.id)
        .raw("\":{\"username\":")
        .str(&u.username);
    o.raw(",\"fullname\":").str(&u.fullname);
    o.raw(",\"mpstrength\":\"")
        .uint(u64::from(u.mpstrength))
        .push(b'"');
    o.raw(",\"created\":").time(tz, u.created);
    o.raw(",\"last_pw_change\":").time(tz, u.last_pw_change);
    o.raw(",\"last_login\":");
    match u.last_login {
        Some(t) => o.time(tz, t),
        None => o.raw("\"\""),
    };
    o.raw(",\"neverloggedin\":").bool(u.last_login.is_none());
    o.raw(",\"disabled\":").bool(u.disabled);
    o.raw(",\"admin\":").bool(u.admin);
    o.raw(",\"totalscore\":");
    match u.totalscore {
        Some(t) => o.str(&score_string(t)),
        None => o.raw("null"),
    };
    if let Some(m) = &u.multifactor {
        o.raw(",\"multifactor\":").str(m);
    }
    o.raw(",\"duousername\":").opt_str(u.duousername.as_deref());
    const NAMES: [&str; 5] = [
        ",\"sites\":",
        ",\"notes\":",
        ",\"formfills\":",
        ",\"applications\":",
        ",\"attachments\":",
    ];
    for (i, name) in NAMES.iter().enumerate() {
        o.raw(name);
        match u.counters {
            Some(c) => o.uint(u64::from(c[i])),
            None => o.raw("null"),
        };
    }
    o.raw(",\"password_reset_required\":")
        .bool(u.password_reset_required);
    if !u.groups.is_empty() {
        o.raw(",\"groups\":")
            .strs(u.groups.iter().map(|&g| a.group_name(g)));
    }
    if !u.attribs.is_empty() {
        o.raw(",\"attribs\":{");
        for (i, (k, v)) in u.attribs.iter().enumerate() {
            if i > 0 {
                o.comma();
            }
            o.key(k).str(v);
        }
        o.push(b'}');
    }
    o.push(b'}');
}

fn write_groups(o: &mut Out, a: &Account, which: &[u32]) {
    if which.is_empty() {
        o.raw("[]");
        return;
    }
    o.push(b'{');
    let groups = which.iter().filter_map(|&g| a.groups.get(g as usize));
    for (i, group) in groups.enumerate() {
        if i > 0 {
            o.comma();
        }
        o.key(&group.name);
        o.strs(
            group
                .members
                .iter()
                .filter_map(|id| a.users.get(id))
                .map(|u| u.username.as_str()),
        );
    }
    o.push(b'}');
}

// ---------------------------------------------------------------- getuserdata

fn getuserdata(a: &Account, data: &Value, max_pagesize: u32) -> (Reply, bool) {
    let empty = Map::new();
    let m = match data {
        Value::Object(m) => m,
        Value::Null | Value::String(_) => &empty,
        other => return (invalid_data(other), false),
    };
    let username = str_field(m, "username").filter(|s| !s.is_empty());
    let disabled = m.get("disabled").and_then(flex_bool);
    let admin = m.get("admin").and_then(flex_bool);
    let page = m.get("pagesize").and_then(flex_i64).map(|ps| {
        let ps = ps.clamp(1, i64::from(max_pagesize.max(1))) as usize;
        let pi = m.get("pageindex").and_then(flex_i64).unwrap_or(0).max(0) as usize;
        (ps, pi)
    });
    let matches = |u: &User| {
        !u.invited
            && disabled.is_none_or(|d| u.disabled == d)
            && admin.is_none_or(|ad| u.admin == ad)
    };

    if let Some(name) = username {
        let user = a.user_by_name(name);
        let Some(u) = user.filter(|u| matches(u)) else {
            let mut o = Out::with_capacity(64);
            o.raw("{\"Users\":[]");
            if let Some(u) = user.filter(|u| u.invited) {
                o.raw(",\"invited\":").strs([u.username.as_str()]);
            }
            o.push(b'}');
            return (Reply::Json(o.0), true);
        };
        let mut o = Out::with_capacity(1024);
        o.raw("{\"total\":1,\"count\":1,\"Users\":{");
        write_user(&mut o, a, u);
        o.raw("},\"Groups\":");
        write_groups(&mut o, a, &u.groups);
        o.push(b'}');
        return (Reply::Json(o.0), true);
    }

    let (skip, take) = skip_take(page);
    let unfiltered = disabled.is_none() && admin.is_none();
    // Invitees are not paged with `Users`: they come once, with the first page (or the unpaged
    // answer), rather than repeated on every page of a walk.
    let first_page = page.is_none_or(|(_, pi)| pi == 0);
    let list_invited = unfiltered && first_page;
    let mut total = 0usize;
    let mut selected: Vec<&User> = Vec::new();
    let mut invited: Vec<&str> = Vec::new();
    for u in a.users.values() {
        if u.invited {
            if list_invited {
                invited.push(&u.username);
            }
            continue;
        }
        if !matches(u) {
            continue;
        }
        if total >= skip && selected.len() < take {
            selected.push(u);
        }
        total += 1;
    }
    let mut o = Out::with_capacity(64 + selected.len() * 520);
    o.raw("{\"total\":").uint(total as u64);
    o.raw(",\"count\":").uint(selected.len() as u64);
    o.raw(",\"Users\":");
    if selected.is_empty() {
        o.raw("[]");
    } else {
        o.push(b'{');
        for (i, u) in selected.iter().enumerate() {
            if i > 0 {
                o.comma();
            }
            write_user(&mut o, a, u);
        }
        o.push(b'}');
    }
    if page.is_none() {
        let which: Vec<u32> = if unfiltered {
            (0..a.groups.len() as u32).collect()
        } else {
            let mut set = vec![false; a.groups.len()];
            for u in &selected {
                for &g in &u.groups {
                    if let Some(s) = set.get_mut(g as usize) {
                        *s = true;
                    }
                }
            }
            (0..a.groups.len() as u32)
                .filter(|&g| set.get(g as usize).copied().unwrap_or(false))
                .collect()
        };
        o.raw(",\"Groups\":");
        write_groups(&mut o, a, &which);
    }
    if !invited.is_empty() {
        o.raw(",\"invited\":").strs(invited);
    }
    o.push(b'}');
    (Reply::Json(o.0), true)
}

// ---------------------------------------------------------------- shared folders

fn write_flag(o: &mut Out, style: FlagStyle, b: bool) {
    match (style, b) {
        (FlagStyle::String, true) => o.raw("\"1\""),
        (FlagStyle::String, false) => o.raw("\"0\""),
        (FlagStyle::Int, true) => o.raw("1"),
        (FlagStyle::Int, false) => o.raw("0"),
        (FlagStyle::Bool, b) => o.bool(b),
    };
}

fn write_folder(o: &mut Out, a: &Account, f: &Folder, detailed: bool, style: FlagStyle) {
    o.push(b'"')
        .uint(f.id)
        .raw("\":{\"sharedfoldername\":")
        .str(&f.name);
    o.raw(",\"deleted\":").bool(f.deleted);
    o.raw(",\"score\":").uint(u64::from(f.score));
    o.raw(",\"users\":[");
    let mut first = true;
    for fu in &f.users {
        let Some(u) = a.users.get(&fu.user) else {
            continue;
        };
        if !first {
            o.comma();
        }
        first = false;
        o.raw("{\"username\":").str(&u.username);
        o.raw(",\"readonly\":");
        write_flag(o, style, fu.readonly);
        o.raw(",\"give\":");
        write_flag(o, style, fu.give);
        o.raw(",\"can_administer\":");
        write_flag(o, style, fu.can_administer);
        o.raw(",\"superadmin\":").bool(u.admin);
        if detailed {
            o.raw(",\"sites\":").strs(
                fu.sites
                    .iter()
                    .filter_map(|&s| f.sites.get(s as usize))
                    .map(String::as_str),
            );
        }
        o.push(b'}');
    }
    o.raw("]}");
}

fn getsfdata(
    a: &Account,
    data: &Value,
    detailed: bool,
    style: FlagStyle,
    unpaged_limit: Option<usize>,
) -> (Reply, bool) {
    let page = match data {
        Value::Object(m) => match m.get("pagesize") {
            Some(v) => match flex_i64(v) {
                Some(ps) => {
                    let pi = m.get("pageindex").map(flex_i64);
                    match pi {
                        Some(None) => {
                            let v = m.get("pageindex").map(shown).unwrap_or_default();
                            return (Reply::fail(&format!("Invalid pageindex: {v}")), false);
                        }
                        Some(Some(pi)) => Some((ps.max(1) as usize, pi.max(0) as usize)),
                        None => Some((ps.max(1) as usize, 0)),
                    }
                }
                None => {
                    return (
                        Reply::fail(&format!("Invalid pagesize: {}", shown(v))),
                        false,
                    );
                }
            },
            None => None,
        },
        Value::Null | Value::String(_) => None,
        other => return (invalid_data(other), false),
    };
    if page.is_none() && unpaged_limit.is_some_and(|l| a.folders.len() > l) {
        return (Reply::too_many("Too Many Requests"), false);
    }
    let (skip, take) = skip_take(page);
    let mut o = Out::with_capacity(4096);
    let mut n = 0;
    for f in a.folders.values().skip(skip).take(take) {
        o.push(if n == 0 { b'{' } else { b',' });
        write_folder(&mut o, a, f, detailed, style);
        n += 1;
    }
    if n == 0 {
        o.raw("[]");
    } else {
        o.push(b'}');
    }
    (Reply::Json(o.0), true)
}

// ---------------------------------------------------------------- batchadd

struct NewUser<'a> {
    username: &'a str,
    fullname: Option<&'a str>,
    groups: Option<Vec<&'a str>>,
    attribs: Vec<(String, String)>,
    duo: Option<&'a str>,
    securid: Option<&'a str>,
    password: Option<&'a str>,
    reset_required: bool,
}

fn parse_new_user(m: &Map<String, Value>) -> Result<NewUser<'_>, String> {
    let username = match m.get("username") {
        Some(Value::String(s)) => s.trim(),
        _ => return Err("Missing username".into()),
    };
    if !valid_email(username) {
        return Err(format!("Invalid email address: {username}"));
    }
    let opt_str = |k: &str| -> Result<Option<&str>, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            // Never echo a password, even a malformed one.
            Some(_) if k == "password" => Err(format!("Invalid password for {username}")),
            Some(v) => Err(format!("Invalid {k} for {username}: {}", shown(v))),
        }
    };
    let groups = match m.get("groups") {
        None | Some(Value::Null) => None,
        Some(v) => match str_list(v) {
            Some(g) if g.iter().all(|s| !s.is_empty()) => Some(g),
            _ => return Err(format!("Invalid groups for {username}: {}", shown(v))),
        },
    };
    let attribs = match m.get("attribs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Some(v) => return Err(format!("Invalid attribs for {username}: {}", shown(v))),
    };
    let reset_required = match m.get("password_reset_required") {
        None | Some(Value::Null) => true,
        Some(v) => flex_bool(v).ok_or_else(|| {
            format!(
                "Invalid password_reset_required for {username}: {}",
                shown(v)
            )
        })?,
    };
    Ok(NewUser {
        username,
        fullname: opt_str("fullname")?,
        groups,
        attribs,
        duo: opt_str("duousername")?,
        securid: opt_str("securidusername")?,
        password: opt_str("password")?.filter(|p| !p.is_empty()),
        reset_required,
    })
}

fn batchadd(a: &mut Account, ctx: &Ctx, data: &Value) -> Reply {
    let items = match objects(
        data,
        "Invalid data: each user must be an object",
        "Invalid data: expected an array of users",
    ) {
        Ok(items) => items,
        Err(r) => return r,
    };
    // Validate the whole batch first: nothing is applied when any entry is bad.
    let mut parsed = Vec::with_capacity(items.len());
    let mut seen = HashSet::with_capacity(items.len());
    for m in items {
        let nu = match parse_new_user(m) {
            Ok(n) => n,
            Err(e) => return Reply::fail(&e),
        };
        if !seen.insert(nu.username.to_lowercase()) {
            return Reply::fail(&format!("Duplicate username in batch: {}", nu.username));
        }
        parsed.push(nu);
    }
    let mut invited = Vec::new();
    let mut created = Vec::new();
    let mut group_events: Vec<(&str, String)> = Vec::new();
    for nu in parsed {
        let id = match a.user_id(nu.username) {
            Some(id) => id,
            None => {
                let id = a.alloc_user_id();
                let mut u = User::new(id, nu.username, ctx.now_us);
                u.invited = nu.password.is_none();
                u.password_reset_required = nu.reset_required;
                if u.invited {
                    invited.push(nu.username.to_owned());
                } else {
                    created.push(nu.username.to_owned());
                }
                a.insert_user(u);
                id
            }
        };
        if let Some(u) = a.users.get_mut(&id) {
            if let Some(f) = nu.fullname {
                u.fullname = f.to_owned();
            }
            if let Some(d) = nu.duo {
                u.duousername = Some(d.to_owned()).filter(|s| !s.is_empty());
            }
            if let Some(s) = nu.securid {
                u.securidusername = Some(s.to_owned()).filter(|s| !s.is_empty());
            }
            for (k, v) in nu.attribs {
                match u.attribs.iter_mut().find(|(ek, _)| *ek == k) {
                    Some(e) => e.1 = v,
                    None => u.attribs.push((k, v)),
                }
            }
        }
        if let Some(groups) = nu.groups {
            let uname = a.username_of(id);
            let mut wanted = Vec::with_capacity(groups.len());
            for g in groups {
                let (gi, new) = a.ensure_group(g);
                if new {
                    group_events.push(("Create Group", format!("'{g}'")));
                }
                wanted.push(gi);
            }
            let current: Vec<u32> = a
                .users
                .get(&id)
                .map(|u| u.groups.clone())
                .unwrap_or_default();
            for gi in current {
                if !wanted.contains(&gi) && a.leave(id, gi) {
                    let gname = a.group_name(gi);
                    group_events.push(("Remove from group", format!("'{gname}' '{uname}'")));
                }
            }
            for gi in wanted {
                if a.join(id, gi) {
                    let gname = a.group_name(gi);
                    group_events.push(("Adding user to group", format!("{uname} - {gname}")));
                }
            }
        }
    }
    if !invited.is_empty() {
        a.log(
            ctx.now_us,
            &ctx.actor,
            &ctx.ip,
            "Employee Invited",
            &invited.join(","),
        );
    }
    if !created.is_empty() {
        a.log(
            ctx.now_us,
            &ctx.actor,
            &ctx.ip,
            "Employee Account Created",
            &created.join(","),
        );
    }
    for (action, d) in group_events {
        a.log(ctx.now_us, &ctx.actor, &ctx.ip, action, &d);
    }
    Reply::ok()
}

// ---------------------------------------------------------------- single-user writes

fn username_arg(data: &Value) -> Result<&str, Reply> {
    match obj(data).and_then(|m| str_field(m, "username")) {
        Some(u) if !u.is_empty() => Ok(u),
        _ => Err(Reply::fail("Missing username")),
    }
}

fn updateuser(a: &mut Account, ctx: &Ctx, data: &Value) -> Reply {
    let name = match username_arg(data) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(m) = obj(data) else {
        return invalid_data(data);
    };
    for k in ["fullname", "duousername", "securidusername"] {
        match m.get(k) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(v) => return Reply::fail(&format!("Invalid {k}: {}", shown(v))),
        }
    }
    let Some(id) = a.user_id(name) else {
        return Reply::fail(&format!("No such user: {name}"));
    };
    let Some(u) = a.users.get_mut(&id) else {
        return Reply::fail(&format!("No such user: {name}"));
    };
    if let Some(f) = str_field(m, "fullname") {
        u.fullname = f.to_owned();
    }
    if let Some(d) = m.get("duousername") {
        u.duousername = d.as_str().map(str::to_owned).filter(|s| !s.is_empty());
    }
    if let Some(s) = m.get("securidusername") {
        u.securidusername = s.as_str().map(str::to_owned).filter(|s| !s.is_empty());
    }
    let uname = u.username.clone();
    a.log(ctx.now_us, &ctx.actor, &ctx.ip, "Update User", &uname);
    Reply::ok()
}

fn deluser(a: &mut Account, ctx: &Ctx, data: &Value) -> Reply {
    let name = match username_arg(data) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let action = match obj(data).and_then(|m| m.get("deleteaction")) {
        Some(v) => match flex_i64(v) {
            Some(n @ 0..=3) => n,
            _ => return Reply::fail(&format!("Invalid deleteaction: {v}")),
        },
        None => return Reply::fail("Missing deleteaction"),
    };
    let Some(id) = a.user_id(name) else {
        return Reply::fail(&format!("No such user: {name}"));
    };
    let (uname, invited) = match a.users.get(&id) {
        Some(u) => (u.username.clone(), u.invited),
        None => return Reply::fail(&format!("No such user: {name}")),
    };
    let event = match action {
        0 => {
            if let Some(u) = a.users.get_mut(&id) {
                u.disabled = true;
            }
            "Deactivated User"
        }
        1 => "Remove User From Company",
        2 => "Employee Account Deleted",
        _ if !invited => return Reply::fail(&format!("User is not invited: {uname}")),
        _ => "Employee Uninvited",
    };
    if action != 0 {
        a.remove_user(id);
    }
    a.log(ctx.now_us, &ctx.actor, &ctx.ip, event, &uname);
    Reply::ok()
}

fn set_disabled(a: &mut Account, ctx: &Ctx, data: &Value, disable: bool) -> Reply {
    let names = match data {
        Value::Array(_) | Value::String(_) => match str_list(data) {
            Some(n) => n,
            None => return Reply::fail("Invalid data: expected an array of usernames"),
        },
        _ => return Reply::fail("Invalid data: expected an array of usernames"),
    };
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        let Some(id) = a.user_id(name) else {
            unknown.push(name);
            continue;
        };
        let Some(u) = a.users.get_mut(&id) else {
            unknown.push(name);
            continue;
        };
        if u.disabled == disable {
            unchanged.push(u.username.clone());
        } else {
            u.disabled = disable;
            changed.push(u.username.clone());
        }
    }
    let action = if disable {
        "Deactivated User"
    } else {
        "Reactivated User"
    };
    for n in &changed {
        a.log(ctx.now_us, &ctx.actor, &ctx.ip, action, n);
    }
    let mut o = Out::with_capacity(128);
    o.raw("{\"status\":\"success\",");
    o.key(if disable {
        "disabled_users"
    } else {
        "enabled_users"
    });
    o.strs(changed.iter().map(String::as_str));
    if !unchanged.is_empty() {
        o.raw(",\"unchanged_users\":")
            .strs(unchanged.iter().map(String::as_str));
    }
    if !unknown.is_empty() {
        o.raw(",\"error\":")
            .str(&format!("No such user: {}", unknown.join(", ")));
    }
    o.push(b'}');
    Reply::Json(o.0)
}

fn batchchangegrp(a: &mut Account, ctx: &Ctx, data: &Value) -> Reply {
    let entries = match objects(
        data,
        "Invalid data: each entry must be an object",
        "Invalid data: expected an array",
    ) {
        Ok(entries) => entries,
        Err(r) => return r,
    };
    // Shape check first so a malformed request changes nothing.
    let mut parsed = Vec::with_capacity(entries.len());
    for m in entries {
        let Some(name) = str_field(m, "username").filter(|s| !s.is_empty()) else {
            return Reply::fail("Missing username");
        };
        let add = m.get("add").map(str_list).unwrap_or(Some(Vec::new()));
        let del = m.get("del").map(str_list).unwrap_or(Some(Vec::new()));
        let (Some(add), Some(del)) = (add, del) else {
            return Reply::fail(&format!("Invalid add/del for {name}"));
        };
        parsed.push((name, add, del));
    }
    let mut errors: Vec<String> = Vec::new();
    let mut events: Vec<(&str, String)> = Vec::new();
    for (name, add, del) in parsed {
        let Some(id) = a.user_id(name) else {
            errors.push(format!("{name} does not exist"));
            continue;
        };
        let uname = a.username_of(id);
        for g in add {
            match a.group(g) {
                Some(gi) => {
                    if a.join(id, gi) {
                        events.push(("Adding user to group", format!("{uname} - {g}")));
                    }
                }
                None => errors.push(format!("group {g} does not exist")),
            }
        }
        for g in del {
            match a.group(g) {
                Some(gi) => {
                    if a.leave(id, gi) {
                        events.push(("Remove from group", format!("'{g}' '{uname}'")));
                    }
                }
                None => errors.push(format!("group {g} does not exist")),
            }
        }
    }
    for (action, d) in events {
        a.log(ctx.now_us, &ctx.actor, &ctx.ip, action, &d);
    }
    if errors.is_empty() {
        return Reply::ok();
    }
    let mut o = Out::with_capacity(64);
    o.raw("{\"status\":\"WARN\",\"errors\":")
        .strs(errors.iter().map(String::as_str))
        .push(b'}');
    Reply::Json(o.0)
}

fn single_user(a: &mut Account, ctx: &Ctx, cmd: &str, data: &Value) -> Reply {
    let reset = cmd == "resetpassword";
    let not_found = |name: &str| {
        if reset {
            Reply::fail_array(&format!("user not found: {name}"))
        } else {
            Reply::fail(&format!("No such user: {name}"))
        }
    };
    let name = match username_arg(data) {
        Ok(n) => n,
        Err(r) => {
            return if reset {
                Reply::fail_array("Missing username")
            } else {
                r
            };
        }
    };
    let Some(id) = a.user_id(name) else {
        return not_found(name);
    };
    let Some(u) = a.users.get_mut(&id) else {
        return not_found(name);
    };
    let uname = u.username.clone();
    let action = match cmd {
        "reinviteuser" => {
            if !u.invited {
                return Reply::fail(&format!(
                    "User has already accepted the invitation: {uname}"
                ));
            }
            u.mails_sent = u.mails_sent.saturating_add(1);
            "Re-invite User"
        }
        "resetpassword" => {
            if u.invited {
                return not_found(name);
            }
            u.mails_sent = u.mails_sent.saturating_add(1);
            "Password Reset"
        }
        "requiremasterpasswordchange" => {
            u.password_reset_required = true;
            "Require Password Change"
        }
        _ => {
            u.multifactor = None;
            "Disabled Multifactor Authentication"
        }
    };
    a.log(ctx.now_us, &ctx.actor, &ctx.ip, action, &uname);
    Reply::ok()
}

// ---------------------------------------------------------------- updateemail

/// At most this many `updateemail` requests per second per source IP and per `oldemail`.
pub(crate) const UPDATEEMAIL_PER_SEC: usize = 10;

fn updateemail_limited(lp: &LastPass, cid: u64, ctx: &Ctx, data: &Value) -> Option<Reply> {
    let old = obj(data)
        .and_then(|m| str_field(m, "oldemail"))
        .unwrap_or("")
        .to_lowercase();
    let keys = [format!("ip {}", ctx.ip), format!("old {cid} {old}")];
    let window_start = ctx.now_us - 1_000_000;
    let mut lim = lp.inner.limiter.lock();
    if lim.len() > 10_000 {
        lim.retain(|_, q| q.back().is_some_and(|&t| t > window_start));
    }
    for k in &keys {
        if let Some(q) = lim.get_mut(k) {
            while q.front().is_some_and(|&t| t <= window_start) {
                q.pop_front();
            }
            if q.len() >= UPDATEEMAIL_PER_SEC {
                return Some(Reply::too_many(
                    "Too many requests: updateemail is limited to 10 per second per IP address and per oldemail",
                ));
            }
        }
    }
    for k in keys {
        lim.entry(k).or_default().push_back(ctx.now_us);
    }
    None
}

fn updateemail(a: &mut Account, ctx: &Ctx, data: &Value) -> Reply {
    let Some(m) = obj(data) else {
        return invalid_data(data);
    };
    let Some(old) = str_field(m, "oldemail").filter(|s| !s.is_empty()) else {
        return Reply::fail("Missing oldemail");
    };
    let Some(new) = str_field(m, "newemail").filter(|s| !s.is_empty()) else {
        return Reply::fail("Missing newemail");
    };
    if !valid_email(new) {
        return Reply::fail(&format!("Invalid email address: {new}"));
    }
    let Some(id) = a.user_id(old) else {
        return Reply::fail(&format!("No such user: {old}"));
    };
    match a.user_id(new) {
        Some(other) if other != id => {
            return Reply::fail(&format!("Email address already in use: {new}"));
        }
        Some(_) => return Reply::fail(&format!("New email is the same as the old email: {new}")),
        None => {}
    }
    let Some(u) = a.users.get_mut(&id) else {
        return Reply::fail(&format!("No such user: {old}"));
    };
    if u.invited {
        return Reply::fail(&format!("User account is not activated: {old}"));
    }
    u.pending_email = Some(new.to_owned());
    let d = format!("'{}' '{}'", u.username, new);
    a.log(
        ctx.now_us,
        &ctx.actor,
        &ctx.ip,
        "Email Change Requested",
        &d,
    );
    Reply::ok()
}

// ---------------------------------------------------------------- expiredmasterpwlist

fn expiredmasterpwlist(a: &Account, data: &Value, now_us: i64) -> (Reply, bool) {
    let failure = |msg: &str| {
        let mut o = Out::with_capacity(64);
        o.raw("{\"status\":\"Failure\",\"error\":")
            .str(msg)
            .push(b'}');
        (Reply::Json(o.0), false)
    };
    let empty = Map::new();
    let m = match data {
        Value::Object(m) => m,
        Value::Null | Value::String(_) => &empty,
        other => {
            return failure(&format!(
                "Invalid data: expected an object, got {}",
                shown(other)
            ));
        }
    };
    let limit = match m.get("limit") {
        None | Some(Value::Null) => 500,
        Some(v) => match flex_i64(v) {
            Some(n) => n.clamp(1, 500) as usize,
            None => return failure(&format!("Invalid limit: {}", shown(v))),
        },
    };
    let after = match m.get("continuation_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => match flex_i64(v).and_then(|n| u64::try_from(n).ok()) {
            Some(n) => Some(n),
            None => return failure(&format!("Invalid continuation token: {}", shown(v))),
        },
    };
    let Some(days) = a.password_expiry_days else {
        let body = br#"{"status":"Success","continuation":{"remaining_item_count":0},"items":[]}"#;
        return (Reply::Json(body.to_vec()), true);
    };
    let cutoff = now_us.saturating_sub(i64::from(days).saturating_mul(86_400_000_000));
    let range = match after {
        Some(t) => a.users.range(t.saturating_add(1)..),
        None => a.users.range(..),
    };
    let mut items: Vec<&User> = Vec::new();
    let mut remaining = 0usize;
    for u in range.map(|(_, u)| u) {
        if u.invited || u.disabled || u.last_pw_change > cutoff {
            continue;
        }
        if items.len() < limit {
            items.push(u);
        } else {
            remaining += 1;
        }
    }
    let mut o = Out::with_capacity(128 + items.len() * 100);
    o.raw("{\"status\":\"Success\",\"continuation\":{");
    if remaining > 0
        && let Some(last) = items.last()
    {
        o.raw("\"token\":\"").uint(last.id).raw("\",");
    }
    o.raw("\"remaining_item_count\":").uint(remaining as u64);
    o.raw("},\"items\":[");
    for (i, u) in items.iter().enumerate() {
        if i > 0 {
            o.comma();
        }
        o.raw("{\"user_id\":").uint(u.id);
        o.raw(",\"user_name\":").str(&u.username);
        o.raw(",\"last_pw_change\":").time(&a.tz, u.last_pw_change);
        o.push(b'}');
    }
    o.raw("]}");
    (Reply::Json(o.0), true)
}

// ---------------------------------------------------------------- pushsitestousers

fn pushsitestousers(a: &mut Account, ctx: &Ctx, data: &Value) -> Reply {
    let Some(m) = obj(data) else {
        return invalid_data(data);
    };
    let field = |k: &str| -> String {
        match m.get(k) {
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    let users = field("users");
    let url = field("url");
    if users.is_empty() {
        return Reply::fail("Missing users");
    }
    if url.is_empty() {
        return Reply::fail("Missing url");
    }
    let recipients = if users.eq_ignore_ascii_case("all") {
        a.users
            .values()
            .filter(|u| !u.invited && !u.disabled)
            .count()
    } else if let Some(g) = a.group(&users) {
        a.groups.get(g as usize).map_or(0, |g| g.members.len())
    } else if a.user_by_name(&users).is_some_and(|u| !u.invited) {
        1
    } else {
        return Reply::fail(&format!("Invalid users: {users}"));
    };
    let psid = a.next_psid;
    a.next_psid = a.next_psid.saturating_add(1);
    let name = field("name");
    let d = if name.is_empty() {
        url.clone()
    } else {
        format!("{name} ({url})")
    };
    a.pushed.push(PushedSite {
        psid,
        time_us: ctx.now_us,
        users: users.clone(),
        url,
        name,
        group: field("group"),
        persistent: m.get("persistent").and_then(flex_bool).unwrap_or(false),
        recipients,
    });
    a.log(ctx.now_us, &ctx.actor, &ctx.ip, "Push Sites To Users", &d);
    let mut o = Out::with_capacity(40);
    o.raw("{\"status\":\"OK\",\"psid\":\"")
        .uint(psid)
        .raw("\"}");
    Reply::Json(o.0)
}

// ---------------------------------------------------------------- inspection

pub(crate) fn inspect_user(a: &Account, u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "fullname": u.fullname,
        "state": if u.invited { "invited" } else if u.disabled { "disabled" } else { "active" },
        "invited": u.invited,
        "disabled": u.disabled,
        "admin": u.admin,
        "mpstrength": u.mpstrength,
        "created": a.fmt_time(u.created),
        "created_us": u.created,
        "last_pw_change": a.fmt_time(u.last_pw_change),
        "last_pw_change_us": u.last_pw_change,
        "last_login": u.last_login.map(|t| a.fmt_time(t)),
        "last_login_us": u.last_login,
        "neverloggedin": u.last_login.is_none(),
        "totalscore": u.totalscore.map(score_string),
        "multifactor": u.multifactor,
        "duousername": u.duousername,
        "securidusername": u.securidusername,
        "counters": u.counters,
        "password_reset_required": u.password_reset_required,
        "groups": u.groups.iter().map(|&g| a.group_name(g)).collect::<Vec<_>>(),
        "attribs": u.attribs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<String, Value>>(),
        "pending_email": u.pending_email,
        "mails_sent": u.mails_sent,
        "shared_folders": a.folders.values().filter(|f| f.users.iter().any(|fu| fu.user == u.id)).map(|f| f.id).collect::<Vec<_>>(),
    })
}

pub(crate) fn inspect_account(a: &Account) -> Value {
    let users = a.users.values();
    let (mut invited, mut disabled, mut admins, mut never) = (0, 0, 0, 0);
    for u in users {
        invited += usize::from(u.invited);
        disabled += usize::from(u.disabled);
        admins += usize::from(u.admin);
        never += usize::from(u.last_login.is_none());
    }
    let ev = &a.events;
    let n = ev.len();
    let last_events: Vec<Value> = (n.saturating_sub(20)..n)
        .rev()
        .map(|i| {
            let r = ev.recs[i];
            json!({
                "time_us": ev.times[i],
                "Time": a.fmt_time(ev.times[i]),
                "Username": ev.names.get(r.user),
                "IP_Address": ev.names.get(r.ip),
                "Action": ev.actions.get(r.action),
                "Data": ev.data.get(r.data),
            })
        })
        .collect();
    json!({
        "cid": a.spec.cid,
        "name": a.spec.name,
        "time_zone": a.spec.time_zone,
        "seed": a.spec.seed,
        "password_expiry_days": a.password_expiry_days,
        "users": a.users.len(),
        "invited": invited,
        "disabled": disabled,
        "admins": admins,
        "never_logged_in": never,
        "groups": a.groups.iter().map(|g| json!({
            "name": g.name,
            "members": g.members.iter().filter_map(|id| a.users.get(id)).map(|u| u.username.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "folders": a.folders.values().map(|f| json!({
            "id": f.id, "name": f.name, "score": f.score, "deleted": f.deleted,
            "users": f.users.len(), "sites": f.sites.len(),
        })).collect::<Vec<_>>(),
        "pushed_sites": a.pushed.iter().map(|p| json!({
            "psid": p.psid.to_string(), "time": a.fmt_time(p.time_us), "users": p.users, "url": p.url,
            "name": p.name, "group": p.group, "persistent": p.persistent, "recipients": p.recipients,
        })).collect::<Vec<_>>(),
        "pending_email_changes": a.users.values().filter_map(|u| u.pending_email.as_ref().map(|e| json!({"username": u.username, "newemail": e}))).collect::<Vec<_>>(),
        "next_psid": a.next_psid,
        "events": n,
        "first_event_us": ev.times.first(),
        "last_event_us": ev.times.last(),
        "last_events": last_events,
    })
}
