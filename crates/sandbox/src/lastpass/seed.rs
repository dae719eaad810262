//! Deterministic seed data (users, groups, shared folders, weeks of events) and simulated user
//! activity. Same `SeedOptions` (and same base time) → identical state.

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::state::{Account, EventRec, Folder, FolderUser, User};
use super::{AccountSpec, SandboxError};

const FIRST: &[&str] = &[
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "chris",
    "nancy",
    "daniel",
    "lisa",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "donald",
    "ashley",
    "steven",
    "kimberly",
    "paul",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenneth",
    "dorothy",
    "kevin",
    "carol",
    "brian",
    "amanda",
    "george",
    "melissa",
    "edward",
    "deborah",
    "ronald",
    "stephanie",
    "timothy",
    "rebecca",
    "jason",
    "sharon",
    "jeffrey",
    "laura",
    "ryan",
    "cynthia",
    "jacob",
    "kathleen",
    "gary",
    "amy",
    "nicholas",
    "shirley",
    "eric",
    "angela",
    "jonathan",
    "helen",
    "stephen",
    "anna",
    "larry",
    "brenda",
    "justin",
    "pamela",
    "scott",
    "nicole",
    "brandon",
    "emma",
    "benjamin",
    "samantha",
    "samuel",
    "katherine",
    "gregory",
    "christine",
    "frank",
    "debra",
    "alexander",
    "rachel",
    "raymond",
    "catherine",
    "patrick",
    "carolyn",
    "jack",
    "janet",
    "dennis",
    "ruth",
    "jerry",
    "maria",
    "tyler",
    "heather",
    "aaron",
    "diane",
    "jose",
    "virginia",
    "adam",
    "julie",
    "henry",
    "joyce",
    "nathan",
    "victoria",
    "douglas",
    "olivia",
    "zachary",
    "kelly",
    "peter",
    "christina",
    "kyle",
    "lauren",
    "walter",
    "joan",
    "ethan",
    "evelyn",
];

const LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
    "reyes",
    "stewart",
    "morris",
    "morales",
    "murphy",
    "cook",
    "rogers",
    "gutierrez",
    "ortiz",
    "morgan",
    "cooper",
    "peterson",
    "bailey",
    "reed",
    "kelly",
    "howard",
    "ramos",
    "kim",
    "cox",
    "ward",
    "richardson",
    "watson",
    "brooks",
    "chavez",
    "wood",
    "james",
    "bennett",
    "gray",
    "mendoza",
    "ruiz",
    "hughes",
    "price",
    "alvarez",
    "castillo",
    "sanders",
    "patel",
    "myers",
    "long",
    "ross",
    "foster",
    "jimenez",
    "powell",
    "jenkins",
    "perry",
    "russell",
    "sullivan",
    "bell",
    "coleman",
    "butler",
    "henderson",
    "barnes",
    "gonzales",
    "fisher",
    "vasquez",
    "simmons",
    "romero",
    "jordan",
    "patterson",
    "alexander",
    "hamilton",
    "graham",
    "reynolds",
    "griffin",
    "wallace",
    "moreno",
];

const GROUPS: &[&str] = &[
    "Engineering",
    "Finance",
    "Sales",
    "Support",
    "Marketing",
    "Human Resources",
    "IT",
    "Legal",
    "Operations",
    "Product",
    "Design",
    "Security",
    "Executives",
    "Contractors",
    "Interns",
    "Domain Admins",
    "Dev Team",
    "Support Team",
    "Customer Success",
    "Procurement",
];

const FOLDERS: &[&str] = &[
    "Shared-Marketing",
    "Shared-Finance",
    "Vendor Logins",
    "Social Media",
    "Dev Ops",
    "Infrastructure",
    "Banking",
    "HR Portals",
    "Sales Tools",
    "Support Tools",
    "Cloud Consoles",
    "Legal Portals",
    "Executive Assistants",
    "Domain Registrars",
    "Network Devices",
];

const DOMAINS: &[&str] = &[
    "salesforce.com",
    "github.com",
    "aws.amazon.com",
    "google.com",
    "slack.com",
    "atlassian.net",
    "zoom.us",
    "dropbox.com",
    "box.com",
    "office.com",
    "linkedin.com",
    "twitter.com",
    "facebook.com",
    "adobe.com",
    "hubspot.com",
    "zendesk.com",
    "stripe.com",
    "paypal.com",
    "chase.com",
    "bankofamerica.com",
    "godaddy.com",
    "cloudflare.com",
    "digitalocean.com",
    "heroku.com",
    "azure.microsoft.com",
    "okta.com",
    "workday.com",
    "adp.com",
    "gusto.com",
    "quickbooks.intuit.com",
    "xero.com",
    "docusign.com",
    "notion.so",
    "asana.com",
    "trello.com",
    "mailchimp.com",
    "shopify.com",
    "wordpress.com",
    "namecheap.com",
    "gitlab.com",
    "bitbucket.org",
    "jira.com",
    "servicenow.com",
    "netsuite.com",
    "expensify.com",
    "concur.com",
    "fedex.com",
    "ups.com",
    "amazon.com",
    "apple.com",
];

const CLIENTS: &[&str] = &[
    "LastPass via Chrome v4.134.0",
    "LastPass via Website",
    "LastPass via Firefox v4.131.0",
    "LastPass via Edge v4.134.0",
    "LastPass via Safari v4.128.0",
    "lastpass.com",
    "LastPass via iOS v5.12.0",
    "LastPass via Android v5.13.0",
];

const MFA: &[&str] = &[
    "lastpassauth",
    "googleauth",
    "duo",
    "microsoftauth",
    "yubikey",
];

const DEPARTMENTS: &[&str] = &[
    "Finance",
    "Engineering",
    "Sales",
    "Support",
    "Marketing",
    "Legal",
];

const POLICIES: &[&str] = &[
    "Length of site passwords",
    "Require passwordless verification via LastPass Authenticator New value: 1",
    "Prohibit sharing outside enterprise",
    "Master password minimum length New value: 12",
];

const US: i64 = 1_000_000;
const DAY: i64 = 86_400 * US;

pub(crate) fn company_domain(name: &str) -> String {
    let slug: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if slug.is_empty() {
        "example.com".into()
    } else {
        format!("{slug}.com")
    }
}

/// A stable, plausible source IP for a user.
pub(crate) fn user_ip(id: u64) -> String {
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24;
    match h % 10 {
        0..=5 => format!(
            "10.{}.{}.{}",
            (h >> 8) % 256,
            (h >> 16) % 256,
            1 + (h >> 24) % 254
        ),
        6 | 7 => format!("203.0.113.{}", 1 + (h >> 8) % 254),
        8 => format!("198.51.100.{}", 1 + (h >> 8) % 254),
        _ => format!("2001:db8::{:x}", (h >> 8) % 65_536),
    }
}

/// The generated account for `spec` (seeded relative to `now_us`, rounded down to the second).
pub(crate) fn generate(spec: AccountSpec, now_us: i64) -> Result<Account, SandboxError> {
    spec.seed.validate()?;
    let o = spec.seed.clone();
    let mut a = Account::empty(spec)?;
    let now = now_us.div_euclid(US) * US;
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ a.spec.cid.rotate_left(29));
    let domain = company_domain(&a.spec.name);

    // Groups.
    for i in 0..o.groups {
        let name = match GROUPS.get(i) {
            Some(n) => (*n).to_owned(),
            None => format!("{} {}", GROUPS[i % GROUPS.len()], i / GROUPS.len() + 1),
        };
        a.ensure_group(&name);
    }

    // Users.
    let mut taken: HashSet<String> = HashSet::with_capacity(o.users);
    let mut next_suffix: HashMap<(&str, &str), u32> = HashMap::new();
    let mut id = 449_000_000 + (a.spec.cid % 1000) * 10_000;
    let mut logged_in: Vec<u64> = Vec::with_capacity(o.users);
    let mut admins: Vec<u64> = Vec::new();
    // `users` counts directory users (what `getuserdata` reports as `total`); pending
    // invitees (~4%) come on top, so N seeded users always page in ceil(N / pagesize) calls.
    let mut directory = 0usize;
    let mut i = 0usize;
    while directory < o.users {
        id += rng.gen_range(1..=37);
        let first = *pick(&mut rng, FIRST);
        let last = *pick(&mut rng, LAST);
        let mut local = format!("{first}.{last}");
        // Resume from the last suffix tried for this name: every smaller one is taken, so the
        // result is the same as counting from 2, without O(users) retries per user.
        let n = next_suffix.entry((first, last)).or_insert(2u32);
        while taken.contains(&local) {
            local = format!("{first}.{last}{n}");
            *n += 1;
        }
        taken.insert(local.clone());
        let username = format!("{local}@{domain}");
        let roll: f64 = rng.r#gen();
        // First user: the super admin who set the account up.
        let (invited, never) = if i == 0 {
            (false, false)
        } else if roll < 0.04 {
            (true, true)
        } else if roll < 0.11 {
            (false, true)
        } else {
            (false, false)
        };
        let created = if invited {
            now - rng.gen_range(US..30 * DAY)
        } else {
            now - rng.gen_range(DAY..730 * DAY)
        };
        let mut u = User::new(id, &username, created);
        if rng.gen_bool(0.95) {
            u.fullname = format!("{} {}", capitalise(first), capitalise(last));
        }
        u.invited = invited;
        u.admin = i == 0 || (!invited && rng.gen_bool(0.02));
        if !never {
            let span = (now - created).max(US);
            u.last_pw_change = created + rng.gen_range(0..span);
            let login_back = rng.gen_range(US..(30 * DAY).min(now - created).max(US + 1));
            u.last_login = Some((now - login_back).max(u.last_pw_change));
            u.mpstrength = rng.gen_range(40..=100);
            u.totalscore = Some(if rng.gen_bool(0.2) {
                rng.gen_range(0..=100) * 10
            } else {
                rng.gen_range(0..=1000)
            });
            u.counters = Some([
                rng.gen_range(0..300),
                rng.gen_range(0..50),
                rng.gen_range(0..5),
                rng.gen_range(0..3),
                rng.gen_range(0..10),
            ]);
            u.password_reset_required = rng.gen_bool(0.03);
            u.disabled = i != 0 && rng.gen_bool(0.05);
            if rng.gen_bool(0.6) {
                let m = *pick(&mut rng, MFA);
                u.multifactor = Some(m.to_owned());
                if m == "duo" {
                    u.duousername = Some(username.clone());
                }
            }
            if !u.disabled && rng.gen_bool(0.005) {
                u.pending_email = Some(format!("{local}.new@{domain}"));
            }
        } else {
            u.password_reset_required = rng.gen_bool(0.7);
            if rng.gen_bool(0.2) {
                u.duousername = Some(username.clone());
            }
        }
        if rng.gen_bool(0.3) {
            u.attribs = vec![
                ("Department".into(), (*pick(&mut rng, DEPARTMENTS)).into()),
                ("EmployeeNumber".into(), format!("{}", 100_000 + i)),
            ];
        }
        if !never && !u.disabled {
            logged_in.push(id);
            if u.admin {
                admins.push(id);
            }
        }
        if !invited {
            directory += 1;
        }
        i += 1;
        a.insert_user(u);
        if o.groups > 0 {
            let k = match rng.gen_range(0..100) {
                0..=24 => 0,
                25..=74 => 1,
                75..=94 => 2,
                _ => 3,
            };
            for _ in 0..k {
                let g = rng.gen_range(0..o.groups) as u32;
                a.join(id, g);
            }
        }
    }
    // Pending email targets must not collide with real usernames.
    let clashes: Vec<u64> = a
        .users
        .values()
        .filter(|u| {
            u.pending_email
                .as_ref()
                .is_some_and(|e| a.by_name.contains_key(&e.to_lowercase()))
        })
        .map(|u| u.id)
        .collect();
    for cid in clashes {
        if let Some(u) = a.users.get_mut(&cid) {
            u.pending_email = None;
        }
    }

    // Shared folders.
    let mut fid = a.next_folder_id;
    let mut folder_names: HashSet<String> = HashSet::new();
    let mut folder_suffix: HashMap<&str, u32> = HashMap::new();
    for i in 0..o.folders {
        let base = *pick(&mut rng, FOLDERS);
        let mut name = base.to_owned();
        // As for usernames: resume from the last suffix tried for this base name.
        let n = folder_suffix.entry(base).or_insert(2u32);
        while folder_names.contains(&name) {
            name = format!("{base} {n}");
            *n += 1;
        }
        folder_names.insert(name.clone());
        let nsites = rng.gen_range(1..=12);
        let mut sites: Vec<String> = DOMAINS
            .choose_multiple(&mut rng, nsites)
            .map(|s| (*s).to_owned())
            .collect();
        sites.sort();
        let mut users: Vec<FolderUser> = Vec::new();
        if !logged_in.is_empty() {
            let k = rng.gen_range(2..=25).min(logged_in.len());
            let mut members: Vec<u64> = logged_in.choose_multiple(&mut rng, k).copied().collect();
            if i % 3 == 0
                && let Some(&adm) = admins.first()
                && !members.contains(&adm)
            {
                members.push(adm);
            }
            for (j, m) in members.into_iter().enumerate() {
                let all: Vec<u16> = (0..sites.len() as u16).collect();
                let fu_sites = if rng.gen_bool(0.85) {
                    all
                } else {
                    let keep = rng.gen_range(0..=sites.len());
                    let mut s: Vec<u16> = all.choose_multiple(&mut rng, keep).copied().collect();
                    s.sort_unstable();
                    s
                };
                users.push(FolderUser {
                    user: m,
                    readonly: j != 0 && rng.gen_bool(0.4),
                    give: j == 0 || rng.gen_bool(0.7),
                    can_administer: j == 0 || rng.gen_bool(0.1),
                    sites: fu_sites,
                });
            }
        }
        a.folders.insert(
            fid,
            Folder {
                id: fid,
                name,
                score: rng.gen_range(0..=100),
                deleted: rng.gen_bool(0.05),
                sites,
                users,
            },
        );
        fid += rng.gen_range(1..=5);
    }
    a.next_folder_id = fid;

    // Events over the past six weeks.
    if o.events > 0 && !logged_in.is_empty() {
        let events = seed_events(&mut a, &mut rng, o.events, now, &logged_in, &admins);
        a.events.merge(events);
    }
    Ok(a)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Weighted event kinds for the seed (weights in tenths of a percent).
const KINDS: &[(&str, u32)] = &[
    ("Log in", 350),
    ("Failed Login Attempt", 60),
    ("Site Added", 80),
    ("Site Changed", 60),
    ("Password Changed", 40),
    ("Open Secure Note", 40),
    ("Add Secure Note", 20),
    ("Form Filled", 20),
    ("Site deleted", 20),
    ("Data export", 2),
    ("Master Password Changed", 10),
    ("Multifactor Enabled", 5),
    ("Move to Shared Folder", 20),
    ("Add to Shared Folder", 10),
    ("Removed From Shared Folder", 5),
    ("Update Folder Permissions", 5),
    ("Created Shared Folder", 3),
    ("Login to Admin Console", 20),
    ("Require Password Change", 3),
    ("Make Admin", 1),
    ("Edit Policy", 3),
    ("Create Group", 1),
    ("Adding user to group", 5),
    ("Remove from group", 2),
    ("Deactivated User", 1),
    ("Employee Invited", 2),
    ("Re-invite User", 1),
    ("Get User Data", 10),
    ("Reporting", 20),
    ("Get Shared Folder Data", 5),
];

struct Picker {
    cumulative: Vec<u32>,
    total: u32,
}

impl Picker {
    fn new(kinds: &[(&str, u32)]) -> Self {
        let mut acc = 0;
        let cumulative = kinds
            .iter()
            .map(|(_, w)| {
                acc += w;
                acc
            })
            .collect();
        Self {
            cumulative,
            total: acc,
        }
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let r = rng.gen_range(0..self.total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

fn seed_events(
    a: &mut Account,
    rng: &mut ChaCha8Rng,
    count: usize,
    now: i64,
    logged_in: &[u64],
    admins: &[u64],
) -> Vec<(i64, EventRec)> {
    let picker = Picker::new(KINDS);
    let window = 42 * DAY;
    let mut out = Vec::with_capacity(count);
    // Interned (username, ip) per user, filled lazily.
    let mut who: std::collections::HashMap<u64, (u32, u32)> = std::collections::HashMap::new();
    let api_user = a.events.names.intern("API");
    let api_collector = a.events.names.intern("API: splunk.collector");
    let api_ip = a.events.names.intern("52.14.102.7");
    let folder_ids: Vec<u64> = a.folders.keys().copied().collect();
    // Every seeded user, invitees included (ids ascend, so this is the creation order).
    let all_ids: Vec<u64> = a.users.keys().copied().collect();
    let empty = a.events.data.intern("");
    let initiated = a.events.data.intern("Initiated by API");
    let action_ids: Vec<u32> = KINDS
        .iter()
        .map(|(k, _)| a.events.actions.intern(k))
        .collect();
    // Latest seeded login per user, to keep `last_login` consistent with the log.
    let mut last_login: std::collections::HashMap<u64, i64> = std::collections::HashMap::new();
    for _ in 0..count {
        let t = now - rng.gen_range(US..window);
        let k = picker.pick(rng);
        let kind = KINDS[k].0;
        let admin_kind = matches!(
            kind,
            "Login to Admin Console"
                | "Require Password Change"
                | "Make Admin"
                | "Edit Policy"
                | "Create Group"
                | "Adding user to group"
                | "Remove from group"
                | "Deactivated User"
                | "Employee Invited"
                | "Re-invite User"
        );
        let api_kind = matches!(
            kind,
            "Get User Data" | "Reporting" | "Get Shared Folder Data"
        );
        let (user, ip) = if api_kind {
            (
                if rng.gen_bool(0.5) {
                    api_user
                } else {
                    api_collector
                },
                api_ip,
            )
        } else {
            let pool = if admin_kind && !admins.is_empty() {
                admins
            } else {
                logged_in
            };
            let uid = *pick(rng, pool);
            if kind == "Log in" {
                let e = last_login.entry(uid).or_insert(t);
                *e = (*e).max(t);
            }
            *who.entry(uid).or_insert_with(|| {
                let name = a.username_of(uid);
                (
                    a.events.names.intern(&name),
                    a.events.names.intern(&user_ip(uid)),
                )
            })
        };
        let target = |rng: &mut ChaCha8Rng, a: &Account| a.username_of(*pick(rng, &all_ids));
        let folder = |rng: &mut ChaCha8Rng, a: &Account| random_folder_name(rng, a, &folder_ids);
        let group = |rng: &mut ChaCha8Rng, a: &Account| -> String {
            if a.groups.is_empty() {
                "Dev Team".to_owned()
            } else {
                pick(rng, &a.groups).name.clone()
            }
        };
        let domain = *pick(rng, DOMAINS);
        let data: Option<String> = match kind {
            "Log in" => Some((*pick(rng, CLIENTS)).to_owned()),
            "Failed Login Attempt" => rng.gen_bool(0.5).then(|| "lastpass.com".to_owned()),
            "Site Added" | "Site Changed" | "Password Changed" | "Site deleted" | "Form Filled" => {
                Some(domain.to_owned())
            }
            "Open Secure Note" | "Add Secure Note" => Some(format!(
                "Secure Note (VID: {})",
                4_901_555_952_779_484_761u64 + rng.gen_range(0..500u64) * 7_919
            )),
            "Data export" | "Master Password Changed" | "Multifactor Enabled" => None,
            "Move to Shared Folder" => Some(format!("{domain} to {}", folder(rng, a))),
            "Add to Shared Folder" | "Removed From Shared Folder" => {
                Some(format!("'{}' '{}'", folder(rng, a), target(rng, a)))
            }
            "Update Folder Permissions" => Some(format!(
                "'{}' '{}' 'Read only:{} Admin:{} Hide PW:{}'",
                folder(rng, a),
                target(rng, a),
                yes_no(rng.gen_bool(0.4)),
                yes_no(rng.gen_bool(0.1)),
                yes_no(rng.gen_bool(0.3))
            )),
            "Created Shared Folder" => Some(folder(rng, a)),
            "Login to Admin Console" => Some(a.events.names.get(user).to_owned()),
            "Require Password Change"
            | "Make Admin"
            | "Deactivated User"
            | "Employee Invited"
            | "Re-invite User" => Some(target(rng, a)),
            "Edit Policy" => Some((*pick(rng, POLICIES)).to_owned()),
            "Create Group" => Some(format!("'{}'", group(rng, a))),
            "Adding user to group" => Some(format!("{} - {}", target(rng, a), group(rng, a))),
            "Remove from group" => Some(format!("'{}' '{}'", group(rng, a), target(rng, a))),
            _ => {
                out.push((
                    t,
                    EventRec {
                        user,
                        ip,
                        action: action_ids[k],
                        data: initiated,
                    },
                ));
                continue;
            }
        };
        let data = match data {
            Some(d) => a.events.data.intern(&d),
            None => empty,
        };
        out.push((
            t,
            EventRec {
                user,
                ip,
                action: action_ids[k],
                data,
            },
        ));
    }
    for (uid, t) in last_login {
        if let Some(u) = a.users.get_mut(&uid)
            && u.last_login.is_some_and(|l| l < t)
        {
            u.last_login = Some(t);
        }
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A uniformly drawn element of `xs` (which must not be empty).
fn pick<'a, T>(rng: &mut ChaCha8Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

/// The name of a folder drawn from `ids` (`Shared-Default` when there is none).
fn random_folder_name(rng: &mut ChaCha8Rng, a: &Account, ids: &[u64]) -> String {
    if ids.is_empty() {
        return "Shared-Default".to_owned();
    }
    a.folders
        .get(pick(rng, ids))
        .map(|f| f.name.clone())
        .unwrap_or_default()
}

/// One login of user `id` at `t`: accepts a pending invitation, completes a pending email
/// change, updates the login fields, and writes the events (into `out`).
fn login_into(
    a: &mut Account,
    id: u64,
    t: i64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<(i64, EventRec)>,
) {
    let Some(u) = a.users.get(&id) else {
        return;
    };
    let ip = user_ip(id);
    let old = u.username.clone();
    let mut push = |a: &mut Account, t: i64, user: &str, action: &str, data: &str| {
        let rec = EventRec {
            user: a.events.names.intern(user),
            ip: a.events.names.intern(&ip),
            action: a.events.actions.intern(action),
            data: a.events.data.intern(data),
        };
        out.push((t, rec));
    };
    if u.disabled {
        push(a, t, &old, "Failed Login Attempt", "lastpass.com");
        return;
    }
    let was_invited = u.invited;
    let pending = u.pending_email.clone();
    let client = *pick(rng, CLIENTS);
    if was_invited {
        push(a, t, &old, "Created LastPass Account", "");
    }
    push(a, t, &old, "Log in", client);
    if let Some(new) = pending {
        if a.user_id(&new).is_none() {
            a.rename_user(id, &new);
            push(a, t, &new, "Username Changed", &format!("'{old}' '{new}'"));
        }
        if let Some(u) = a.users.get_mut(&id) {
            u.pending_email = None;
        }
    }
    if let Some(u) = a.users.get_mut(&id) {
        if u.invited {
            u.invited = false;
            u.last_pw_change = t;
            u.mpstrength = rng.gen_range(40..=100);
        }
        u.last_login = Some(t);
        u.counters.get_or_insert([0; 5]);
        u.totalscore.get_or_insert(0);
        if u.mpstrength == 0 {
            u.mpstrength = rng.gen_range(40..=100);
        }
    }
}

/// [`super::LastPass::simulate_login`].
pub(crate) fn login(a: &mut Account, id: u64, now: i64) {
    let mut rng = ChaCha8Rng::seed_from_u64(id ^ now as u64);
    let mut out = Vec::new();
    login_into(a, id, now, &mut rng, &mut out);
    a.events.merge(out);
}

const ACTIVITY: &[(&str, u32)] = &[
    ("Log in", 450),
    ("Failed Login Attempt", 80),
    ("Site Added", 120),
    ("Site Changed", 100),
    ("Password Changed", 50),
    ("Open Secure Note", 60),
    ("Form Filled", 30),
    ("Site deleted", 20),
    ("Move to Shared Folder", 40),
    ("Add to Shared Folder", 20),
    ("Removed From Shared Folder", 10),
    ("Accept Invitation", 20),
];

/// [`super::LastPass::simulate_activity`].
pub(crate) fn simulate(
    a: &mut Account,
    from_us: i64,
    to_us: i64,
    per_hour: f64,
    seed: u64,
) -> usize {
    if to_us <= from_us || !per_hour.is_finite() || per_hour <= 0.0 {
        return 0;
    }
    // In f64: `to_us - from_us` can overflow i64 (the bounds come from a public API).
    let n = ((to_us as f64 - from_us as f64) / 3_600_000_000.0 * per_hour).round();
    let n = n.clamp(0.0, 20_000_000.0) as usize;
    if n == 0 {
        return 0;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ a.spec.cid.rotate_left(13));
    let mut times: Vec<i64> = (0..n).map(|_| rng.gen_range(from_us..to_us)).collect();
    times.sort_unstable();
    let members: Vec<u64> = a
        .users
        .values()
        .filter(|u| !u.invited)
        .map(|u| u.id)
        .collect();
    let invitees: Vec<u64> = a
        .users
        .values()
        .filter(|u| u.invited)
        .map(|u| u.id)
        .collect();
    if members.is_empty() && invitees.is_empty() {
        return 0;
    }
    let folder_ids: Vec<u64> = a.folders.keys().copied().collect();
    let picker = Picker::new(ACTIVITY);
    let mut out: Vec<(i64, EventRec)> = Vec::with_capacity(n + 16);
    let mut next_invitee = 0usize;
    for t in times {
        let kind = ACTIVITY[picker.pick(&mut rng)].0;
        if kind == "Accept Invitation" || members.is_empty() {
            if let Some(&id) = invitees.get(next_invitee) {
                next_invitee += 1;
                login_into(a, id, t, &mut rng, &mut out);
                continue;
            }
            if members.is_empty() {
                continue;
            }
        }
        let id = *pick(&mut rng, &members);
        let Some(u) = a.users.get(&id) else {
            continue;
        };
        if kind == "Log in" || u.disabled || u.pending_email.is_some() {
            login_into(a, id, t, &mut rng, &mut out);
            continue;
        }
        let name = u.username.clone();
        let domain = *pick(&mut rng, DOMAINS);
        let data = match kind {
            "Failed Login Attempt" => {
                if rng.gen_bool(0.5) {
                    "lastpass.com".to_owned()
                } else {
                    String::new()
                }
            }
            "Open Secure Note" => format!(
                "Secure Note (VID: {})",
                4_901_555_952_779_484_761u64 + rng.gen_range(0..500u64) * 7_919
            ),
            "Move to Shared Folder" | "Add to Shared Folder" | "Removed From Shared Folder" => {
                let fname = random_folder_name(&mut rng, a, &folder_ids);
                if kind == "Move to Shared Folder" {
                    format!("{domain} to {fname}")
                } else {
                    let other = a.username_of(*pick(&mut rng, &members));
                    format!("'{fname}' '{other}'")
                }
            }
            _ => domain.to_owned(),
        };
        if let Some(c) = a.users.get_mut(&id).and_then(|u| u.counters.as_mut()) {
            match kind {
                "Site Added" => c[0] += 1,
                "Site deleted" => c[0] = c[0].saturating_sub(1),
                _ => {}
            }
        }
        let rec = EventRec {
            user: a.events.names.intern(&name),
            ip: a.events.names.intern(&user_ip(id)),
            action: a.events.actions.intern(kind),
            data: a.events.data.intern(&data),
        };
        out.push((t, rec));
    }
    let written = out.len();
    a.events.merge(out);
    written
}
