//! The stored state of one LastPass account: users, groups, shared folders, pushed sites and the
//! compact event log. Everything the wire layer renders is derived from here.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone};
#[cfg(test)]
use chrono::{Datelike, Timelike};
use chrono_tz::Tz;
use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::{AccountInfo, AccountSpec, SandboxError};

/// Interned strings: each distinct string stored once, referred to by a `u32`.
#[derive(Default, Clone)]
pub(crate) struct Interner {
    strings: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    pub(crate) fn get(&self, i: u32) -> &str {
        self.strings.get(i as usize).map(|s| &**s).unwrap_or("")
    }

    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.strings
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, &**s))
    }
}

impl Serialize for Interner {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.strings.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Interner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let strings = Vec::<Box<str>>::deserialize(d)?;
        let mut index = HashMap::with_capacity(strings.len());
        for (i, s) in strings.iter().enumerate() {
            index.entry(s.clone()).or_insert(i as u32);
        }
        Ok(Self { strings, index })
    }
}

/// One event without its time: indices into the log's interners (16 bytes).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct EventRec {
    pub user: u32,
    pub ip: u32,
    pub action: u32,
    pub data: u32,
}

/// The account's audit log, sorted by time, times strictly increasing (µs since the epoch).
#[derive(Default, Clone, Serialize, Deserialize)]
pub(crate) struct EventLog {
    pub times: Vec<i64>,
    pub recs: Vec<EventRec>,
    /// Usernames and IP addresses.
    pub names: Interner,
    pub actions: Interner,
    pub data: Interner,
}

impl EventLog {
    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    /// Appends an event at `time_us` or, when that is not after the last event, 1 µs after it.
    /// Returns the stored time.
    pub(crate) fn push(
        &mut self,
        time_us: i64,
        user: &str,
        ip: &str,
        action: &str,
        data: &str,
    ) -> i64 {
        let rec = EventRec {
            user: self.names.intern(user),
            ip: self.names.intern(ip),
            action: self.actions.intern(action),
            data: self.data.intern(data),
        };
        self.push_rec(time_us, rec)
    }

    /// Appends `rec` at `time_us` or, when that is not after the last event, 1 µs after it.
    fn push_rec(&mut self, time_us: i64, rec: EventRec) -> i64 {
        let t = match self.times.last() {
            Some(&last) if time_us <= last => last.saturating_add(1),
            _ => time_us,
        };
        self.times.push(t);
        self.recs.push(rec);
        t
    }

    /// Merges events (any order) into the log, keeping times strictly increasing.
    pub(crate) fn merge(&mut self, mut new: Vec<(i64, EventRec)>) {
        if new.is_empty() {
            return;
        }
        new.sort_by_key(|e| e.0);
        let appending = match (self.times.last(), new.first()) {
            (Some(&last), Some(first)) => first.0 > last,
            _ => true,
        };
        if appending {
            for (t, r) in new {
                self.push_rec(t, r);
            }
            return;
        }
        let old_t = std::mem::take(&mut self.times);
        let old_r = std::mem::take(&mut self.recs);
        let total = old_t.len() + new.len();
        self.times.reserve_exact(total);
        self.recs.reserve_exact(total);
        let (mut i, mut j) = (0, 0);
        while i < old_t.len() || j < new.len() {
            let take_old = j >= new.len() || (i < old_t.len() && old_t[i] <= new[j].0);
            let (t, r) = if take_old {
                i += 1;
                (old_t[i - 1], old_r[i - 1])
            } else {
                j += 1;
                new[j - 1]
            };
            self.push_rec(t, r);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct User {
    pub id: u64,
    pub username: String,
    pub fullname: String,
    pub mpstrength: u8,
    /// µs since the epoch.
    pub created: i64,
    pub last_pw_change: i64,
    pub last_login: Option<i64>,
    pub disabled: bool,
    pub admin: bool,
    /// A pending invitation (no account yet): listed under `invited`, not under `Users`.
    pub invited: bool,
    /// Security score in tenths (`832` → `"83.2"`); `None` → `null`.
    pub totalscore: Option<u16>,
    pub multifactor: Option<String>,
    pub duousername: Option<String>,
    pub securidusername: Option<String>,
    /// sites, notes, formfills, applications, attachments; `None` for never-logged-in users.
    pub counters: Option<[u32; 5]>,
    pub password_reset_required: bool,
    /// Group indices, in joining order.
    pub groups: Vec<u32>,
    pub attribs: Vec<(String, String)>,
    /// `updateemail` requested this address; applied at the user's next login.
    pub pending_email: Option<String>,
    /// Number of `reinviteuser`/`resetpassword` mails "sent" (observable through inspect).
    #[serde(default)]
    pub mails_sent: u32,
}

impl User {
    pub(crate) fn new(id: u64, username: &str, now_us: i64) -> Self {
        Self {
            id,
            username: username.to_owned(),
            fullname: String::new(),
            mpstrength: 0,
            created: now_us,
            last_pw_change: now_us,
            last_login: None,
            disabled: false,
            admin: false,
            invited: false,
            totalscore: None,
            multifactor: None,
            duousername: None,
            securidusername: None,
            counters: None,
            password_reset_required: true,
            groups: Vec::new(),
            attribs: Vec::new(),
            pending_email: None,
            mails_sent: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Group {
    pub name: String,
    pub members: BTreeSet<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FolderUser {
    pub user: u64,
    pub readonly: bool,
    pub give: bool,
    pub can_administer: bool,
    /// Indices into the folder's `sites` this user sees.
    pub sites: Vec<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Folder {
    pub id: u64,
    pub name: String,
    pub score: u8,
    pub deleted: bool,
    pub sites: Vec<String>,
    pub users: Vec<FolderUser>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PushedSite {
    pub psid: u64,
    pub time_us: i64,
    pub users: String,
    pub url: String,
    pub name: String,
    pub group: String,
    pub persistent: bool,
    pub recipients: usize,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    pub spec: AccountSpec,
    #[serde(skip, default = "default_tz")]
    pub tz: Tz,
    /// Master-password expiry policy for `expiredmasterpwlist` (`None`: no policy).
    pub password_expiry_days: Option<u32>,
    pub users: BTreeMap<u64, User>,
    /// lower-cased username → id.
    #[serde(skip)]
    pub by_name: HashMap<String, u64>,
    pub groups: Vec<Group>,
    #[serde(skip)]
    pub group_idx: HashMap<String, u32>,
    pub folders: BTreeMap<u64, Folder>,
    pub pushed: Vec<PushedSite>,
    pub next_user_id: u64,
    pub next_folder_id: u64,
    pub next_psid: u64,
    pub events: EventLog,
}

fn default_tz() -> Tz {
    chrono_tz::US::Eastern
}

pub(crate) fn parse_tz(s: &str) -> Result<Tz, SandboxError> {
    s.parse::<Tz>()
        .map_err(|e| SandboxError::invalid("time_zone", s, e.to_string()))
}

impl Account {
    pub(crate) fn empty(spec: AccountSpec) -> Result<Self, SandboxError> {
        let tz = parse_tz(&spec.time_zone)?;
        if spec.provhash.is_empty() {
            return Err(SandboxError::invalid("provhash", "", "is empty"));
        }
        Ok(Self {
            spec,
            tz,
            password_expiry_days: Some(90),
            users: BTreeMap::new(),
            by_name: HashMap::new(),
            groups: Vec::new(),
            group_idx: HashMap::new(),
            folders: BTreeMap::new(),
            pushed: Vec::new(),
            next_user_id: 449_000_001,
            next_folder_id: 101,
            next_psid: 1,
            events: EventLog::default(),
        })
    }

    /// Rebuilds the derived indices (after loading).
    pub(crate) fn reindex(&mut self) -> Result<(), SandboxError> {
        self.tz = parse_tz(&self.spec.time_zone)?;
        // Readers index `recs` by positions in `times`.
        if self.events.times.len() != self.events.recs.len() {
            return Err(SandboxError::invalid(
                "events",
                format!(
                    "{} times, {} records",
                    self.events.times.len(),
                    self.events.recs.len()
                ),
                "the event log's times and records differ in length",
            ));
        }
        // Never trust a file: drop dangling group references.
        let n = self.groups.len() as u32;
        for u in self.users.values_mut() {
            u.groups.retain(|&g| g < n);
        }
        self.by_name = self
            .users
            .values()
            .map(|u| (u.username.to_lowercase(), u.id))
            .collect();
        self.group_idx = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i as u32))
            .collect();
        Ok(())
    }

    pub(crate) fn info(&self) -> AccountInfo {
        let invited = self.users.values().filter(|u| u.invited).count();
        AccountInfo {
            cid: self.spec.cid,
            provhash: self.spec.provhash.clone(),
            name: self.spec.name.clone(),
            time_zone: self.spec.time_zone.clone(),
            users: self.users.len() - invited,
            invited,
            groups: self.groups.len(),
            folders: self.folders.len(),
            events: self.events.len(),
        }
    }

    pub(crate) fn user_id(&self, username: &str) -> Option<u64> {
        self.by_name.get(&username.trim().to_lowercase()).copied()
    }

    pub(crate) fn user_by_name(&self, username: &str) -> Option<&User> {
        self.user_id(username).and_then(|id| self.users.get(&id))
    }

    /// The username of user `id` (`""` when there is none).
    pub(crate) fn username_of(&self, id: u64) -> String {
        self.users
            .get(&id)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    }

    pub(crate) fn insert_user(&mut self, user: User) {
        self.by_name.insert(user.username.to_lowercase(), user.id);
        if user.id >= self.next_user_id {
            self.next_user_id = user.id.saturating_add(1);
        }
        self.users.insert(user.id, user);
    }

    pub(crate) fn alloc_user_id(&mut self) -> u64 {
        let id = self.next_user_id;
        // Saturating: the counter comes from a state file, which may hold anything.
        self.next_user_id = self.next_user_id.saturating_add(1);
        id
    }

    /// Removes a user entirely (groups and shared folders included).
    pub(crate) fn remove_user(&mut self, id: u64) -> Option<User> {
        let user = self.users.remove(&id)?;
        self.by_name.remove(&user.username.to_lowercase());
        for &g in &user.groups {
            if let Some(group) = self.groups.get_mut(g as usize) {
                group.members.remove(&id);
            }
        }
        for f in self.folders.values_mut() {
            f.users.retain(|fu| fu.user != id);
        }
        Some(user)
    }

    pub(crate) fn rename_user(&mut self, id: u64, new_name: &str) {
        if let Some(u) = self.users.get_mut(&id) {
            self.by_name.remove(&u.username.to_lowercase());
            u.username = new_name.to_owned();
            self.by_name.insert(new_name.to_lowercase(), id);
        }
    }

    /// The name of group `g` (`""` for an index that does not exist: indices come from this
    /// account, but a lookup must never panic).
    pub(crate) fn group_name(&self, g: u32) -> &str {
        self.groups.get(g as usize).map_or("", |g| g.name.as_str())
    }

    pub(crate) fn group(&self, name: &str) -> Option<u32> {
        self.group_idx.get(name).copied()
    }

    /// The group's index, creating it when missing (`true` when created).
    pub(crate) fn ensure_group(&mut self, name: &str) -> (u32, bool) {
        if let Some(i) = self.group(name) {
            return (i, false);
        }
        let i = self.groups.len() as u32;
        self.groups.push(Group {
            name: name.to_owned(),
            members: BTreeSet::new(),
        });
        self.group_idx.insert(name.to_owned(), i);
        (i, true)
    }

    /// Adds a membership; `false` when it already existed.
    pub(crate) fn join(&mut self, user: u64, group: u32) -> bool {
        let Some(u) = self.users.get_mut(&user) else {
            return false;
        };
        if u.groups.contains(&group) {
            return false;
        }
        u.groups.push(group);
        if let Some(g) = self.groups.get_mut(group as usize) {
            g.members.insert(user);
        }
        true
    }

    pub(crate) fn leave(&mut self, user: u64, group: u32) -> bool {
        let Some(u) = self.users.get_mut(&user) else {
            return false;
        };
        let before = u.groups.len();
        u.groups.retain(|&g| g != group);
        if u.groups.len() == before {
            return false;
        }
        if let Some(g) = self.groups.get_mut(group as usize) {
            g.members.remove(&user);
        }
        true
    }

    pub(crate) fn log(
        &mut self,
        now_us: i64,
        user: &str,
        ip: &str,
        action: &str,
        data: &str,
    ) -> i64 {
        self.events.push(now_us, user, ip, action, data)
    }

    pub(crate) fn fmt_time(&self, us: i64) -> String {
        let mut v = Vec::with_capacity(19);
        write_time(&self.tz, us, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }
}

thread_local! {
    /// (zone, 15-minute bucket, UTC offset in seconds) of the last conversion.
    static OFFSET_CACHE: Cell<Option<(Tz, i64, i64)>> = const { Cell::new(None) };
}

/// The zone's UTC offset (seconds) at `secs`, cached per 15-minute bucket (every real zone
/// changes its offset on a quarter hour).
fn utc_offset(tz: &Tz, secs: i64) -> i64 {
    let bucket = secs.div_euclid(900);
    if let Some((ctz, b, off)) = OFFSET_CACHE.with(Cell::get)
        && ctz == *tz
        && b == bucket
    {
        return off;
    }
    let off = DateTime::from_timestamp(secs, 0)
        .map(|utc| {
            i64::from(
                tz.offset_from_utc_datetime(&utc.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        })
        .unwrap_or(0);
    OFFSET_CACHE.with(|c| c.set(Some((*tz, bucket, off))));
    off
}

/// Writes `YYYY-MM-DD HH:MM:SS` (local time in `tz`) for `us` µs since the epoch.
pub(crate) fn write_time(tz: &Tz, us: i64, out: &mut Vec<u8>) {
    let secs = us.div_euclid(1_000_000);
    let local = secs + utc_offset(tz, secs);
    let days = local.div_euclid(86_400);
    let sod = local.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(b"1970-01-01 00:00:00");
        return;
    }
    let d2 = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let y = year as u16;
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    let [m0, m1] = d2(month);
    let [dd0, dd1] = d2(day);
    let [h0, h1] = d2(hh);
    let [mi0, mi1] = d2(mm);
    let [s0, s1] = d2(ss);
    out.extend_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        m0,
        m1,
        b'-',
        dd0,
        dd1,
        b' ',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
    ]);
}

/// The same, through chrono (reference implementation for tests).
#[cfg(test)]
fn write_time_chrono(tz: &Tz, us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let l = DateTime::from_timestamp(secs, 0)
        .unwrap()
        .with_timezone(tz)
        .naive_local();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        l.year(),
        l.month(),
        l.day(),
        l.hour(),
        l.minute(),
        l.second()
    )
}

/// Appends the decimal digits of `n`.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Parses a request time (`YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD`, ISO 8601 with or without an
/// offset) as µs since the epoch, naive forms in `tz`.
pub(crate) fn parse_time(tz: &Tz, s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(
            dt.timestamp()
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(dt.timestamp_subsec_micros())),
        );
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .ok()?;
    let local = tz.from_local_datetime(&naive).earliest().or_else(|| {
        let later = naive.checked_add_signed(chrono::Duration::hours(1))?;
        tz.from_local_datetime(&later).earliest()
    })?;
    Some(local.timestamp().saturating_mul(1_000_000))
}

/// Minimal JSON writer used by every response (no intermediate values).
pub(crate) struct Out(pub Vec<u8>);

impl Out {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    pub(crate) fn raw(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        write_json_str(&mut self.0, s);
        self
    }

    pub(crate) fn key(&mut self, k: &str) -> &mut Self {
        write_json_str(&mut self.0, k);
        self.0.push(b':');
        self
    }

    pub(crate) fn int(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.0.push(b'-');
        }
        write_u64(&mut self.0, n.unsigned_abs());
        self
    }

    pub(crate) fn uint(&mut self, n: u64) -> &mut Self {
        write_u64(&mut self.0, n);
        self
    }

    pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { "true" } else { "false" })
    }

    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    pub(crate) fn time(&mut self, tz: &Tz, us: i64) -> &mut Self {
        self.0.push(b'"');
        write_time(tz, us, &mut self.0);
        self.0.push(b'"');
        self
    }

    pub(crate) fn comma(&mut self) -> &mut Self {
        self.0.push(b',');
        self
    }

    pub(crate) fn push(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    pub(crate) fn strs<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.0.push(b'[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            self.str(s);
        }
        self.0.push(b']');
        self
    }
}

pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Formats a score kept in tenths the way LastPass does (`"0"`, `"83.2"`).
pub(crate) fn score_string(tenths: u16) -> String {
    if tenths.is_multiple_of(10) {
        (tenths / 10).to_string()
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_time_formatting_matches_chrono() {
        let zones: [Tz; 5] = [
            chrono_tz::US::Eastern,
            chrono_tz::Europe::Berlin,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kolkata,
            chrono_tz::UTC,
        ];
        let mut us: i64 = -86_400 * 1_000_000 * 400;
        let step = 3_599_999_937; // just under an hour, drifting through all minutes/seconds
        while us < 4_102_444_800_000_000 {
            for tz in &zones {
                let mut v = Vec::new();
                write_time(tz, us, &mut v);
                assert_eq!(
                    String::from_utf8(v).unwrap(),
                    write_time_chrono(tz, us),
                    "{tz} {us}"
                );
            }
            us += step * 7;
        }
    }

    #[test]
    fn event_times_stay_strictly_increasing() {
        let mut log = EventLog::default();
        assert_eq!(log.push(100, "a", "ip", "Log in", ""), 100);
        assert_eq!(log.push(100, "a", "ip", "Log in", ""), 101);
        assert_eq!(log.push(50, "a", "ip", "Log in", ""), 102);
        let rec = log.recs[0];
        // Merge into the middle, with collisions against existing and new events.
        log.merge(vec![(101, rec), (101, rec), (10, rec), (500, rec)]);
        assert_eq!(log.times, [10, 100, 101, 102, 103, 104, 500]);
        assert_eq!(log.recs.len(), log.times.len());
        // Appending merge.
        log.merge(vec![(600, rec), (600, rec)]);
        assert_eq!(&log.times[7..], [600, 601]);
        assert_eq!(log.names.len(), 2);
    }

    #[test]
    fn ints_and_scores() {
        let mut o = Out::with_capacity(8);
        o.int(-120).comma().uint(0).comma().uint(u64::MAX);
        assert_eq!(o.0, b"-120,0,18446744073709551615");
        assert_eq!(score_string(832), "83.2");
        assert_eq!(score_string(0), "0");
        assert_eq!(score_string(1000), "100");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut v = Vec::new();
        write_json_str(&mut v, "a\"b\\c\n\u{1}é");
        assert_eq!(String::from_utf8(v).unwrap(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
