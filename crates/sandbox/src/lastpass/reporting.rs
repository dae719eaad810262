//! `reporting` (reference §3.16): the event log window, newest first, at most 10,000 events per
//! call, with an exact microsecond `next` cursor.

use serde_json::{Map, Value};

use super::state::{Account, Interner, Out, parse_time};
use super::wire::{Reply, flex_bool, flex_i64, shown};

/// Most events in one answer.
pub const MAX_EVENTS: usize = 10_000;

/// Actions counted as administrator events for `admin: "1"`.
fn is_admin_action(a: &str) -> bool {
    matches!(
        a,
        "Employee Account Created"
            | "Employee Invited"
            | "Employee Uninvited"
            | "Employee Account Deleted"
            | "Re-invite User"
            | "Deactivated User"
            | "Reactivated User"
            | "Remove User From Company"
            | "Update User"
            | "Make Admin"
            | "Remove Admin"
            | "Require Password Change"
            | "Stop Requiring Password Change"
            | "Password Reset"
            | "Master Password Reset by Super Admin"
            | "Disabled Multifactor Authentication"
            | "Email Change Requested"
            | "Create Group"
            | "Rename Group"
            | "Delete Group"
            | "Adding user to group"
            | "Remove from group"
            | "Add Policy"
            | "Edit Policy"
            | "Delete Policy"
            | "Login to Admin Console"
            | "Get User Data"
            | "Get Shared Folder Data"
            | "Reporting"
            | "Expired Master Password List"
            | "Push Sites To Users"
            | "Enterprise API Secret regenerated"
    )
}

/// Lazily evaluated per-string predicate over an interner (each distinct string tested once).
struct Memo<'a> {
    interner: &'a Interner,
    cache: Vec<u8>,
    needle: &'a str,
}

impl<'a> Memo<'a> {
    fn new(interner: &'a Interner, needle: &'a str) -> Self {
        Self {
            interner,
            cache: vec![0; interner.len()],
            needle,
        }
    }

    fn hit(&mut self, i: u32) -> bool {
        let Some(slot) = self.cache.get_mut(i as usize) else {
            return false;
        };
        if *slot == 0 {
            let s = self.interner.get(i).to_lowercase();
            *slot = if s.contains(self.needle) { 2 } else { 1 };
        }
        *slot == 2
    }
}

pub(crate) fn reporting(a: &Account, top: &Map<String, Value>, data: &Value) -> (Reply, bool) {
    let inner = data.as_object();
    let get = |k: &str| -> Option<&Value> {
        inner
            .and_then(|m| m.get(k))
            .or_else(|| top.get(k))
            .filter(|v| !v.is_null())
    };
    let time_arg = |k: &str| -> Result<Option<i64>, Reply> {
        match get(k) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(|s| parse_time(&a.tz, s))
                .map(Some)
                .ok_or_else(|| Reply::fail(&format!("Invalid {k} date: {}", shown(v)))),
        }
    };
    let from = match time_arg("from") {
        Ok(t) => t.unwrap_or(i64::MIN),
        Err(r) => return (r, false),
    };
    let to_end = match time_arg("to") {
        // `to` is inclusive to the end of its second.
        Ok(t) => t.map(|t| t.saturating_add(999_999)).unwrap_or(i64::MAX),
        Err(r) => return (r, false),
    };
    let next = match get("next") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => match flex_i64(v) {
            Some(n) => Some(n),
            None => return (Reply::fail(&format!("Invalid next: {}", shown(v))), false),
        },
    };
    let hi_bound = to_end.min(next.unwrap_or(i64::MAX));
    let user_filter: Option<Vec<bool>> = match get("user") {
        None => None,
        Some(Value::String(s))
            if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("allusers") =>
        {
            None
        }
        Some(Value::String(s)) => match a.user_by_name(s) {
            Some(u) if !u.invited => {
                let target = u.username.to_lowercase();
                let names = &a.events.names;
                let mut mask = vec![false; names.len()];
                for (i, n) in names.iter() {
                    let same = if n.is_ascii() && target.is_ascii() {
                        n.eq_ignore_ascii_case(&target)
                    } else {
                        n.to_lowercase() == target
                    };
                    if same {
                        mask[i as usize] = true;
                    }
                }
                Some(mask)
            }
            _ => return (Reply::fail("Please select a valid user."), false),
        },
        Some(_) => return (Reply::fail("Please select a valid user."), false),
    };
    let admin_only = get("admin").and_then(flex_bool).unwrap_or(false);
    let admin_mask: Vec<bool> = if admin_only {
        a.events
            .actions
            .iter()
            .map(|(_, s)| is_admin_action(s))
            .collect()
    } else {
        Vec::new()
    };
    let search = get("search")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let siem = get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f.trim().eq_ignore_ascii_case("siem"));

    let ev = &a.events;
    let lo = ev.times.partition_point(|&t| t < from);
    let hi = ev.times.partition_point(|&t| t <= hi_bound);
    // Only a search needs the per-string memos (each as long as its interner).
    let mut memos = search.as_deref().map(|needle| {
        [
            Memo::new(&ev.actions, needle),
            Memo::new(&ev.data, needle),
            Memo::new(&ev.names, needle),
        ]
    });
    let mut page: Vec<usize> = Vec::with_capacity(MAX_EVENTS.min(hi.saturating_sub(lo)));
    let mut more = false;
    let mut i = hi;
    while i > lo {
        i -= 1;
        let r = ev.recs[i];
        if let Some(mask) = &user_filter
            && !mask.get(r.user as usize).copied().unwrap_or(false)
        {
            continue;
        }
        if admin_only && !admin_mask.get(r.action as usize).copied().unwrap_or(false) {
            continue;
        }
        if let Some([actions, data, names]) = &mut memos
            && !(actions.hit(r.action) || data.hit(r.data) || names.hit(r.user) || names.hit(r.ip))
        {
            continue;
        }
        if page.len() == MAX_EVENTS {
            more = true;
            break;
        }
        page.push(i);
    }
    let mut next_out: Option<i64> = None;
    if more && let Some(&oldest) = page.last() {
        // Cut at a whole-second boundary so that re-querying with `to` (second precision, as
        // Elastic does) is as exact as continuing with `next`.
        let oldest_t = ev.times[oldest];
        // Saturating: a loaded state file may hold any time.
        let boundary = oldest_t
            .div_euclid(1_000_000)
            .saturating_mul(1_000_000)
            .saturating_add(1_000_000);
        let keep = page
            .iter()
            .take_while(|&&j| ev.times[j] >= boundary)
            .count();
        if keep > 0 {
            page.truncate(keep);
            next_out = Some(boundary - 1);
        } else {
            next_out = Some(oldest_t.saturating_sub(1));
        }
    }

    let mut o = Out::with_capacity(64 + page.len() * 160);
    o.raw("{\"status\":\"OK\",\"next\":");
    match next_out {
        Some(n) => o.int(n),
        None => o.raw("null"),
    };
    if siem {
        o.raw(",\"events\":[");
    } else if page.is_empty() {
        o.raw(",\"data\":[");
    } else {
        o.raw(",\"data\":{");
    }
    for (k, &j) in page.iter().enumerate() {
        let r = ev.recs[j];
        if k > 0 {
            o.comma();
        }
        if !siem {
            o.raw("\"Event").uint(k as u64 + 1).raw("\":");
        }
        o.raw("{\"Time\":").time(&a.tz, ev.times[j]);
        o.raw(",\"Username\":").str(ev.names.get(r.user));
        o.raw(",\"IP_Address\":").str(ev.names.get(r.ip));
        o.raw(",\"Action\":").str(ev.actions.get(r.action));
        o.raw(",\"Data\":").str(ev.data.get(r.data));
        if siem {
            o.raw(",\"ID\":\"").int(ev.times[j]).push(b'"');
        }
        o.push(b'}');
    }
    if siem || page.is_empty() {
        o.raw("]}");
    } else {
        o.raw("}}");
    }
    (Reply::Json(o.0), true)
}
