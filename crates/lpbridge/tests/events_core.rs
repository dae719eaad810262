//! The pure event core (issue 7): categories, ids, fold-safe windows and exactly-once
//! de-duplication against a model of LastPass's `reporting` command.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use lpbridge::events::time::{WIRE_FORMAT, is_ambiguous, local_to_utc, utc_to_local};
use lpbridge::events::{Category, DedupState, EventRecord, Window};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Categories: every action string of reference §4
// ---------------------------------------------------------------------------------------------

#[test]
fn every_section_4_action_has_its_category() {
    use Category::*;
    let table: &[(&str, Category)] = &[
        // Authentication / session
        ("Log in", Authentication),
        ("Login", Authentication),
        ("LastPass Login", Authentication),
        ("Failed Login Attempt", Authentication),
        ("SAML Login", Authentication),
        ("Login to Admin Console", Authentication),
        ("Login Verification Email Sent", Authentication),
        ("Account Lockout", Authentication),
        ("Destroy All Sessions", Authentication),
        // Account / admin lifecycle
        ("Created LastPass Account", UserLifecycle),
        ("Employee Account Created", UserLifecycle),
        ("Employee Invited", UserLifecycle),
        ("Employee Account Requires Activation", UserLifecycle),
        ("Employee Account Deleted", UserLifecycle),
        ("Re-invite User", UserLifecycle),
        ("Deactivated User", UserLifecycle),
        ("Deactivating User", UserLifecycle),
        ("Reactivated User", UserLifecycle),
        ("Remove User From Company", UserLifecycle),
        ("User provisioned", UserLifecycle),
        ("User deprovisioned", UserLifecycle),
        ("Make Admin", Admin),
        ("Remove Admin", Admin),
        ("Require Password Change", Admin),
        ("Stop Requiring Password Change", Admin),
        ("Password Reset", Admin),
        ("Master Password Reset by Super Admin", Admin),
        ("Super Admin Password Reset", Admin),
        ("Master Password Changed", Authentication),
        ("Master password reverted", Authentication),
        ("Master Password Reuse", Authentication),
        ("Password Reuse", Authentication),
        ("Iterations Changed", Authentication),
        ("Username Changed", UserLifecycle),
        ("Multifactor Enabled", Authentication),
        ("Disabled Multifactor Authentication", Authentication),
        ("Disabled Google Authenticator", Authentication),
        ("Disabled Microsoft Authenticator", Authentication),
        ("Disabled Microsoft Authenticated", Authentication),
        ("Disabled YubiKey", Authentication),
        ("Disabled Grid", Authentication),
        ("Disabled Toopher", Authentication),
        ("Disabled LastPass Authentication", Authentication),
        ("Sharing key updated", Authentication),
        // Groups
        ("Create Group", Groups),
        ("Rename Group", Groups),
        ("Delete Group", Groups),
        ("Edit Group", Groups),
        ("Adding User to Group", Groups),
        ("Add to Group", Groups),
        ("Remove from Group", Groups),
        ("Group Addition", Groups),
        ("Group Removal", Groups),
        // Policies / API / provisioning
        ("Add Policy", Policy),
        ("Edit Policy", Policy),
        ("Delete Policy", Policy),
        ("Update Policy Users", Policy),
        ("Enterprise API Secret regenerated", Api),
        ("SCIM Provisioning Hash Updated", Api),
        ("Provisioning credential changed", Api),
        ("Provisioning service added", Api),
        ("Provisioning service removed", Api),
        ("Provisioning sync happened", Api),
        ("Get User Data", Api),
        ("Get Shared Folder Data", Api),
        ("Reporting", Api),
        ("Add Global Equiv Domain", Policy),
        ("Remove Global Equiv Domain", Policy),
        ("Add Global Never URLs", Policy),
        ("Remove Global Never URLs", Policy),
        ("Add Global Only URLs", Policy),
        // Vault items
        ("Site Added", VaultItems),
        ("Site Changed", VaultItems),
        ("Site deleted", VaultItems),
        ("Deleted Sites", VaultItems),
        ("Password Changed", VaultItems),
        ("Add Secure Note", VaultItems),
        ("Edit Secure Note", VaultItems),
        ("Open Secure Note", VaultItems),
        ("Form Filled", VaultItems),
        ("Data export", VaultItems),
        ("Data import", VaultItems),
        ("Data printed", VaultItems),
        ("History cleared", VaultItems),
        ("Personal Share", VaultItems),
        // Shared folders
        ("Created Shared Folder", SharedFolders),
        ("Deleted Shared Folder", SharedFolders),
        ("Delete shared folder", SharedFolders),
        ("Permanently Deleted Shared Folder", SharedFolders),
        ("Restored Shared Folder", SharedFolders),
        ("Renamed Shared Folder", SharedFolders),
        ("Add to Shared Folder", SharedFolders),
        ("Removed From Shared Folder", SharedFolders),
        ("Move to Shared Folder", SharedFolders),
        ("Move from Shared Folder", SharedFolders),
        ("Limit Shared Folder", SharedFolders),
        ("Update Folder Permissions", SharedFolders),
        ("Delete Shared Sites", SharedFolders),
        // §4.1 sentence-case spellings and localised variants
        ("Failed login attempt", Authentication),
        ("Site added", VaultItems),
        ("Remove from group", Groups),
        ("Rename group", Groups),
        ("Adding user to group", Groups),
        ("Password changed", VaultItems),
        ("Username changed", UserLifecycle),
        ("従業員のアカウントを作成しました", UserLifecycle),
        ("ポリシーの編集", Policy),
        // The sandbox's own actions (crates/sandbox/EMULATOR.md)
        ("Update User", UserLifecycle),
        ("Email Change Requested", UserLifecycle),
        ("Employee Uninvited", UserLifecycle),
        ("Accept Invitation", UserLifecycle),
        ("Push Sites To Users", Admin),
        ("Expired Master Password List", Api),
    ];
    let title = |s: &str| {
        s.split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| {
                        f.to_uppercase()
                            .chain(c.flat_map(char::to_lowercase))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join(" ")
    };
    for (action, want) in table {
        for variant in [
            action.to_string(),
            action.to_lowercase(),
            action.to_uppercase(),
            title(action),
            format!("  {}  ", action.replace(' ', "  ")),
        ] {
            assert_eq!(
                Category::of_action(&variant),
                *want,
                "{variant:?} (from {action:?})"
            );
        }
    }
    // Every category but `other` is reachable from the vocabulary.
    let reached: HashSet<Category> = table.iter().map(|(_, c)| *c).collect();
    assert_eq!(reached.len(), Category::ALL.len() - 1);
}

// ---------------------------------------------------------------------------------------------
// A model of `reporting`
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ModelEvent {
    /// µs since the epoch, unique (the sandbox bumps collisions by 1 µs).
    at: i64,
    /// Second (UTC) from which LastPass lists it (late events arrive after their time).
    visible_from: i64,
    user: u8,
    data: u8,
}

struct Lp {
    tz: Tz,
    events: Vec<ModelEvent>, // sorted by `at`
}

impl Lp {
    fn wire(&self, e: &ModelEvent) -> lastpass::Event {
        let t = DateTime::from_timestamp_micros(e.at).expect("model time");
        lastpass::Event {
            time: utc_to_local(t, self.tz),
            username: format!("user{}@acme.test", e.user),
            ip_address: "10.0.0.1".into(),
            action: "Log in".into(),
            data: if e.data == 0 {
                String::new()
            } else {
                "lastpass.com".into()
            },
            id: None,
        }
    }

    /// One `reporting` page: events in `[from, min(to, next)]` visible at `now`, newest first,
    /// at most `size`, cut anywhere (even inside a second) with a µs `next`.
    fn page(
        &self,
        w: Window,
        next: Option<i64>,
        now: i64,
        size: usize,
    ) -> (Vec<lastpass::Event>, Option<i64>) {
        // Invariant 1: the core only ever sends unambiguous bounds.
        assert!(!is_ambiguous(w.from, self.tz), "ambiguous from {}", w.from);
        assert!(!is_ambiguous(w.to, self.tz), "ambiguous to {}", w.to);
        let lo = local_to_utc(w.from, self.tz).timestamp_micros();
        let mut hi = local_to_utc(w.to, self.tz).timestamp_micros() + 999_999;
        if let Some(n) = next {
            hi = hi.min(n);
        }
        let mut hits: Vec<&ModelEvent> = self
            .events
            .iter()
            .filter(|e| e.at >= lo && e.at <= hi && e.visible_from <= now)
            .collect();
        hits.reverse();
        let more = hits.len() > size;
        hits.truncate(size);
        let next = if more {
            hits.last().map(|e| e.at - 1)
        } else {
            None
        };
        (hits.into_iter().map(|e| self.wire(e)).collect(), next)
    }
}

fn key(r: &EventRecord) -> (String, String, String) {
    (
        r.time.format(WIRE_FORMAT).to_string(),
        r.username.clone(),
        r.data.clone(),
    )
}

/// Random choices the driver consumes in order (so proptest can shrink them).
struct Dice {
    rolls: Vec<u32>,
    i: usize,
}

impl Dice {
    fn roll(&mut self, n: u32) -> u32 {
        let r = self
            .rolls
            .get(self.i % self.rolls.len().max(1))
            .copied()
            .unwrap_or(0);
        self.i += 1;
        if n == 0 { 0 } else { r % n }
    }
}

struct Outcome {
    delivered: Vec<EventRecord>,
    state: DedupState,
    max_remembered: usize,
}

/// Runs a watcher over the model until everything is delivered: random poll steps, page sizes,
/// per-cycle page limits and crashes (the in-memory state is dropped and reloaded from the last
/// committed JSON; what the crashed page produced is dropped with it, as an outbox would).
fn run_watcher(lp: &Lp, start: DateTime<Utc>, overlap: Duration, dice: &mut Dice) -> Outcome {
    let tz = lp.tz;
    let mut state = DedupState::starting_at(start, tz);
    let mut committed = state.to_json();
    let mut delivered: Vec<EventRecord> = Vec::new();
    let last_visible = lp.events.iter().map(|e| e.visible_from).max().unwrap_or(0);
    let last_at = lp
        .events
        .iter()
        .map(|e| e.at / 1_000_000)
        .max()
        .unwrap_or(0);
    let stop = last_visible.max(last_at) + 7_200 + overlap.num_seconds();
    let mut now = start.timestamp();
    let mut max_remembered = 0;
    let mut calm = 0; // final crash-free cycles
    while now <= stop || calm < 2 {
        if now > stop {
            calm += 1;
        }
        now += i64::from(dice.roll(900)) + 1;
        let chaos = now <= stop;
        if chaos && dice.roll(8) == 0 {
            state = DedupState::from_json(&committed).expect("reload");
        }
        let now_t = DateTime::from_timestamp(now, 0).expect("now");
        let Some(w) = state.plan(now_t, tz, overlap) else {
            continue;
        };
        committed = state.to_json();
        let limit = if chaos { dice.roll(6) } else { 0 }; // 0: no per-cycle limit
        let mut next = None;
        let mut pages = 0;
        loop {
            let size = dice.roll(40) as usize + 1;
            let (events, n) = lp.page(w, next, now, size);
            let obs = state.observe(events, tz).expect("observe");
            assert_eq!(obs.below_floor, 0);
            if chaos && dice.roll(10) == 0 {
                // Crash before the transaction commits.
                state = DedupState::from_json(&committed).expect("reload");
                break;
            }
            delivered.extend(obs.new);
            committed = state.to_json();
            max_remembered = max_remembered.max(state.remembered());
            pages += 1;
            match n {
                None => {
                    state.complete();
                    committed = state.to_json();
                    break;
                }
                Some(n) => next = Some(n),
            }
            if limit != 0 && pages >= limit {
                break;
            }
        }
    }
    Outcome {
        delivered,
        state,
        max_remembered,
    }
}

fn check_exactly_once(lp: &Lp, out: &Outcome) {
    // The same multiset of events...
    let mut want: HashMap<(String, String, String), u32> = HashMap::new();
    for e in &lp.events {
        let w = lp.wire(e);
        *want
            .entry((w.time.format(WIRE_FORMAT).to_string(), w.username, w.data))
            .or_default() += 1;
    }
    let mut got: HashMap<(String, String, String), u32> = HashMap::new();
    for r in &out.delivered {
        *got.entry(key(r)).or_default() += 1;
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, n)| got.get(*k) != Some(n))
        .map(|(k, n)| (k.clone(), *n, got.get(k).copied().unwrap_or(0)))
        .collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "count mismatch (key, want, got): {missing:?}; unexpected: {extra:?}"
    );
    // ...with distinct ids, occurrences 0..c-1 per identical group.
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for r in &out.delivered {
        groups
            .entry(r.id.content.to_hex())
            .or_default()
            .push(r.id.occurrence);
    }
    for (h, mut occ) in groups {
        occ.sort_unstable();
        let expect: Vec<u32> = (0..occ.len() as u32).collect();
        assert_eq!(occ, expect, "occurrences of {h}");
    }
    // Bounded memory: nothing below the floor is remembered.
    let v: serde_json::Value = serde_json::from_str(&out.state.to_json()).expect("json");
    let floor = out.state.floor().format(WIRE_FORMAT).to_string();
    if let Some(seen) = v["seen"].as_object() {
        for k in seen.keys() {
            assert!(*k >= floor, "{k} remembered below the floor {floor}");
        }
    }
}

/// (zone, centre of the event range): a fold (or none) in the middle of it.
fn zone(i: u8) -> (Tz, DateTime<Utc>) {
    match i % 3 {
        // New York falls back at 2025-11-02T06:00Z (01:00–01:59 happens twice).
        0 => (
            chrono_tz::America::New_York,
            Utc.with_ymd_and_hms(2025, 11, 2, 6, 0, 0).unwrap(),
        ),
        // Lord Howe folds half an hour at 2025-04-05T15:00Z.
        1 => (
            chrono_tz::Australia::Lord_Howe,
            Utc.with_ymd_and_hms(2025, 4, 5, 15, 0, 0).unwrap(),
        ),
        _ => (Tz::UTC, Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    zone: u8,
    /// (second offset from the centre, twin an hour later?, µs, user, data, delay)
    events: Vec<(i32, bool, u32, u8, u8, u8)>,
    max_delay: u8,
    extra_overlap: u8,
    rolls: Vec<u32>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0u8..3,
        // Few distinct seconds → many identical events.
        prop::collection::vec(-5400i32..5400, 1..12),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<bool>(),
                0u32..1_000_000,
                0u8..2,
                0u8..2,
                any::<u8>(),
            ),
            0..160,
        ),
        0u8..40,
        0u8..60,
        prop::collection::vec(any::<u32>(), 1..400),
    )
        .prop_map(
            |(zone, seconds, picks, max_delay, extra_overlap, rolls)| Scenario {
                zone,
                events: picks
                    .into_iter()
                    .map(|(i, twin, us, user, data, delay)| {
                        (*i.get(&seconds), twin, us, user, data, delay)
                    })
                    .collect(),
                max_delay,
                extra_overlap,
                rolls,
            },
        )
}

fn build(s: &Scenario) -> (Lp, DateTime<Utc>, Duration) {
    let (tz, centre) = zone(s.zone);
    let mut events: Vec<ModelEvent> = s
        .events
        .iter()
        .map(|&(sec, twin, us, user, data, delay)| {
            // A twin lands an hour later: in a fold, the same wall-clock second twice.
            let sec = i64::from(sec) + if twin { 3600 } else { 0 };
            let at = (centre.timestamp() + sec) * 1_000_000 + i64::from(us);
            let delay = i64::from(delay) % (i64::from(s.max_delay) + 1);
            ModelEvent {
                at,
                visible_from: at / 1_000_000 + 1 + delay,
                user,
                data,
            }
        })
        .collect();
    events.sort_by_key(|e| e.at);
    for i in 1..events.len() {
        if events[i].at <= events[i - 1].at {
            events[i].at = events[i - 1].at + 1;
        }
    }
    let start = centre - Duration::seconds(6000);
    let overlap = Duration::seconds(i64::from(s.max_delay) + 1 + i64::from(s.extra_overlap));
    (Lp { tz, events }, start, overlap)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Every event exactly once: overlapping windows, identical events, page cuts inside
    /// seconds, late events within the overlap, per-cycle limits, crashes + reloads, DST folds.
    #[test]
    fn every_event_is_delivered_exactly_once(s in scenario()) {
        let (lp, start, overlap) = build(&s);
        let mut dice = Dice { rolls: s.rolls.clone(), i: 0 };
        let out = run_watcher(&lp, start, overlap, &mut dice);
        check_exactly_once(&lp, &out);
        // Memory is bounded by what the overlap (+ a fold + a page) can hold, not the backlog.
        prop_assert!(out.max_remembered <= lp.events.len());
    }

    /// Ids do not depend on how the stream was windowed, paged or interrupted.
    #[test]
    fn ids_are_independent_of_the_schedule(s in scenario(), other in prop::collection::vec(any::<u32>(), 1..400)) {
        let (lp, start, overlap) = build(&s);
        let a = run_watcher(&lp, start, overlap, &mut Dice { rolls: s.rolls.clone(), i: 0 });
        let b = run_watcher(&lp, start, overlap + Duration::seconds(17), &mut Dice { rolls: other, i: 0 });
        let ids = |o: &Outcome| o.delivered.iter().map(|r| r.id.to_string()).collect::<HashSet<_>>();
        prop_assert_eq!(ids(&a), ids(&b));
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, WIRE_FORMAT).expect("test time")
}

fn ev(time: &str, user: &str) -> lastpass::Event {
    lastpass::Event {
        time: t(time),
        username: user.into(),
        ip_address: "10.0.0.1".into(),
        action: "Log in".into(),
        data: String::new(),
        id: None,
    }
}

#[test]
fn overlapping_windows_emit_only_the_new_copies_of_identical_events() {
    let tz = Tz::UTC;
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
    let mut st = DedupState::starting_at(start, tz);
    let overlap = Duration::seconds(60);

    let w = st
        .plan(start + Duration::seconds(11), tz, overlap)
        .expect("window");
    assert_eq!(
        (w.from, w.to),
        (t("2026-01-01 10:00:00"), t("2026-01-01 10:00:10"))
    );
    let o = st
        .observe(
            vec![
                ev("2026-01-01 10:00:05", "a"),
                ev("2026-01-01 10:00:05", "a"),
            ],
            tz,
        )
        .expect("observe");
    assert_eq!(o.new.len(), 2);
    st.complete();

    // A third identical event shows up late in the same second: only it is new.
    let w = st
        .plan(start + Duration::seconds(21), tz, overlap)
        .expect("window");
    assert_eq!(
        (w.from, w.to),
        (t("2026-01-01 10:00:00"), t("2026-01-01 10:00:20"))
    );
    let page = vec![
        ev("2026-01-01 10:00:15", "b"),
        ev("2026-01-01 10:00:05", "a"),
        ev("2026-01-01 10:00:05", "a"),
        ev("2026-01-01 10:00:05", "a"),
    ];
    let o = st.observe(page, tz).expect("observe");
    let ids: Vec<String> = o.new.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(o.new.len(), 2, "{ids:?}");
    assert_eq!(o.duplicates, 2);
    assert!(ids[1].ends_with("-2"));
    st.complete();

    // State survives JSON, and windows move on.
    let json = st.to_json();
    let mut back = DedupState::from_json(&json).expect("reload");
    assert_eq!(back, st);
    let w = back
        .plan(start + Duration::seconds(200), tz, overlap)
        .expect("window");
    assert_eq!(w.from, t("2026-01-01 10:00:00"));
    back.complete();
    assert_eq!(back.remembered(), 0, "{}", back.to_json());
}

#[test]
fn a_crash_mid_window_resumes_at_a_whole_second() {
    let tz = Tz::UTC;
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
    let mut st = DedupState::starting_at(start, tz);
    let w = st
        .plan(start + Duration::seconds(11), tz, Duration::zero())
        .expect("window");
    // Page 1 is cut inside 10:00:03.
    let o = st
        .observe(
            vec![
                ev("2026-01-01 10:00:07", "a"),
                ev("2026-01-01 10:00:03", "a"),
            ],
            tz,
        )
        .expect("observe");
    assert_eq!(o.new.len(), 2);
    let saved = st.to_json();
    let mut st = DedupState::from_json(&saved).expect("reload");
    let r = st
        .plan(start + Duration::seconds(99), tz, Duration::zero())
        .expect("resume");
    assert_eq!((r.from, r.to), (w.from, t("2026-01-01 10:00:03")));
    let o = st
        .observe(
            vec![
                ev("2026-01-01 10:00:03", "a"),
                ev("2026-01-01 10:00:03", "a"),
                ev("2026-01-01 10:00:01", "a"),
            ],
            tz,
        )
        .expect("observe");
    let ids: Vec<String> = o.new.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids[0].ends_with("-1"));
    st.complete();
    // No overlap: nothing is remembered afterwards, the next window starts right after.
    assert_eq!(st.remembered(), 0);
    let w = st
        .plan(start + Duration::seconds(99), tz, Duration::zero())
        .expect("window");
    assert_eq!(w.from, t("2026-01-01 10:00:11"));
}

#[test]
fn windows_wait_for_a_dst_fold_to_end_and_then_read_both_passes() {
    let tz = chrono_tz::America::New_York;
    let start = Utc.with_ymd_and_hms(2025, 11, 2, 4, 0, 0).unwrap(); // 00:00 EDT
    let mut st = DedupState::starting_at(start, tz);
    let overlap = Duration::minutes(5);
    // 05:30Z is 01:30 EDT, inside the fold: the window stops at 00:59:59.
    let w = st
        .plan(
            Utc.with_ymd_and_hms(2025, 11, 2, 5, 30, 0).unwrap(),
            tz,
            overlap,
        )
        .expect("window");
    assert_eq!(w.to, t("2025-11-02 00:59:59"));
    st.complete();
    // 06:30Z is 01:30 EST: still inside the fold, nothing to read yet past 00:59:59.
    let w = st
        .plan(
            Utc.with_ymd_and_hms(2025, 11, 2, 6, 30, 0).unwrap(),
            tz,
            overlap,
        )
        .expect("window");
    assert_eq!(w.to, t("2025-11-02 00:59:59"));
    st.complete();
    // After the fold: one window holds both passes, identical events in both are two events.
    let w = st
        .plan(
            Utc.with_ymd_and_hms(2025, 11, 2, 7, 0, 5).unwrap(),
            tz,
            overlap,
        )
        .expect("window");
    assert_eq!(w.to, t("2025-11-02 02:00:04"));
    let page = vec![
        ev("2025-11-02 01:30:00", "a"), // EST pass
        ev("2025-11-02 01:10:00", "a"), // EST pass
        ev("2025-11-02 01:30:00", "a"), // EDT pass
    ];
    let o = st.observe(page, tz).expect("observe");
    assert_eq!(o.new.len(), 3);
    assert_eq!(o.new[2].id.occurrence, 1);
    // The UTC time of a folded second is its earlier instant (documented rule).
    assert_eq!(
        o.new[0].time_utc,
        Utc.with_ymd_and_hms(2025, 11, 2, 5, 30, 0).unwrap()
    );
    st.complete();
}

#[test]
fn a_backfill_reads_its_range_once_and_stops() {
    let tz = Tz::UTC;
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2026, 1, 1, 23, 59, 59).unwrap();
    let mut st = DedupState::backfill(from, to, tz);
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let w = st.plan(now, tz, Duration::minutes(5)).expect("window");
    assert_eq!(
        (w.from, w.to),
        (t("2026-01-01 00:00:00"), t("2026-01-01 23:59:59"))
    );
    st.complete();
    assert!(st.is_done());
    assert_eq!(st.plan(now, tz, Duration::minutes(5)), None);
    // A backfill ending inside a fold reads past it rather than stopping short.
    let ny = chrono_tz::America::New_York;
    let mut st = DedupState::backfill(
        Utc.with_ymd_and_hms(2025, 11, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2025, 11, 2, 5, 30, 0).unwrap(),
        ny,
    );
    let w = st.plan(now, ny, Duration::zero()).expect("window");
    assert_eq!(w.to, t("2025-11-02 02:00:00"));
}

#[test]
fn observe_without_a_window_and_bad_state_are_errors() {
    let tz = Tz::UTC;
    let mut st = DedupState::starting_at(Utc::now(), tz);
    assert!(st.observe(vec![], tz).is_err());
    assert!(DedupState::from_json("{\"v\":99}").is_err());
    assert!(DedupState::from_json("not json").is_err());
}

#[test]
fn memory_is_bounded_by_the_overlap_not_the_backlog() {
    // 30,000 events, one every 2 s over ~17 h, read as a backlog then followed live.
    let tz = chrono_tz::Europe::Berlin;
    let t0 = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let events: Vec<ModelEvent> = (0..30_000i64)
        .map(|i| ModelEvent {
            at: (t0.timestamp() + 2 * i) * 1_000_000 + (i % 7) * 1000,
            visible_from: t0.timestamp() + 2 * i + 1,
            user: (i % 3) as u8,
            data: 0,
        })
        .collect();
    let end = t0.timestamp() + 60_000;
    let lp = Lp { tz, events };
    let overlap = Duration::minutes(2);
    let mut st = DedupState::starting_at(t0, tz);
    let mut delivered = 0usize;
    let mut max_remembered = 0usize;
    let mut now = end - 3600; // the first window holds a ~16 h backlog
    while now <= end + 600 {
        let now_t = DateTime::from_timestamp(now, 0).expect("now");
        if let Some(w) = st.plan(now_t, tz, overlap) {
            let mut next = None;
            loop {
                let (page, n) = lp.page(w, next, now, 1000);
                delivered += st.observe(page, tz).expect("observe").new.len();
                max_remembered = max_remembered.max(st.remembered());
                match n {
                    None => break,
                    some => next = some,
                }
            }
            st.complete();
        }
        now += 60;
    }
    assert_eq!(delivered, 30_000);
    // Two minutes of events (60) plus one page (1000), far below the backlog.
    assert!(
        max_remembered <= 60 + 1000 + 1,
        "remembered {max_remembered}"
    );
    assert!(st.remembered() <= 61, "remembered {}", st.remembered());
}
