//! The per-connection directory snapshot: one streamed `getuserdata` sweep (users, pending
//! invitees, group memberships) and, on first need, one `getsfdata` (shared folders).
//!
//! Each part has a TTL and a single-flight refresh: N concurrent readers of a stale part cause
//! one upstream sweep, and the others wait for its result. lpbridge's own writes either patch
//! the snapshot in place ([`Snapshots::modify_directory`]) or invalidate it
//! ([`Snapshots::invalidate`]); a sweep that was running while a write invalidated it is handed
//! to its waiters but not trusted afterwards.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use lastpass::{Client, SharedFolder, User, UserId, UserQuery};
use lp_types::ConnectionId;
use parking_lot::{Mutex, RwLock};

/// The page size of a sweep: LastPass's maximum, so a sweep makes ceil(users / 2000) calls (one
/// more for the group map when there are pending invitees).
pub const SWEEP_PAGE_SIZE: u32 = lastpass::MAX_USER_PAGE_SIZE;

/// One connection's users and groups at one moment.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Every user and pending invitee, sorted by lower-cased username (the cursor order).
    pub users: Vec<User>,
    /// Lower-cased username → index in `users`.
    index: HashMap<String, usize>,
    /// Group name → lower-cased member usernames, sorted.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Upstream calls the sweep made.
    pub calls: u64,
}

impl Directory {
    /// Builds the indexes from swept users and invitee names.
    pub fn from_parts(mut users: Vec<User>, invited: Vec<String>) -> Self {
        let mut seen: HashSet<String> = users.iter().map(|u| u.username.to_lowercase()).collect();
        for name in invited {
            if seen.insert(name.to_lowercase()) {
                users.push(bare_invitee(name));
            }
        }
        users.sort_by_cached_key(|u| u.username.to_lowercase());
        // Offset paging can list a user twice when the directory changes mid-sweep; one key,
        // one user (the index, the cursor and `remove` all assume it).
        users.dedup_by(|a, b| a.username.to_lowercase() == b.username.to_lowercase());
        let mut d = Directory {
            users,
            ..Directory::default()
        };
        d.reindex();
        d
    }

    fn reindex(&mut self) {
        self.index = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.username.to_lowercase(), i))
            .collect();
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for u in &self.users {
            for g in &u.groups {
                groups
                    .entry(g.clone())
                    .or_default()
                    .push(u.username.to_lowercase());
            }
        }
        self.groups = groups;
    }

    /// A user by username (case-insensitive).
    pub fn user(&self, username: &str) -> Option<&User> {
        self.index
            .get(&username.to_lowercase())
            .map(|&i| &self.users[i])
    }

    /// A user by LastPass id (a scan: ids are not the listing order).
    pub fn user_by_id(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id.as_str() == id)
    }

    /// The position of the first user whose lower-cased username sorts after `key`.
    pub fn position_after(&self, key: &str) -> usize {
        self.users
            .partition_point(|u| u.username.to_lowercase().as_str() <= key)
    }

    /// Gives pending invitees their memberships from a `Groups` map (group → usernames).
    pub fn add_invitee_groups(&mut self, map: &BTreeMap<String, Vec<String>>) {
        let mut changed = false;
        for (group, members) in map {
            for m in members {
                if let Some(&i) = self.index.get(&m.to_lowercase()) {
                    let u = &mut self.users[i];
                    if u.invited && !u.groups.contains(group) {
                        u.groups.push(group.clone());
                        changed = true;
                    }
                }
            }
        }
        if changed {
            self.reindex();
        }
    }

    /// Replaces (or inserts) a user and rebuilds the indexes.
    pub fn upsert(&mut self, user: User) {
        let key = user.username.to_lowercase();
        match self.index.get(&key) {
            Some(&i) => self.users[i] = user,
            None => {
                let at = self.position_after(&key);
                self.users.insert(at, user);
            }
        }
        self.reindex();
    }

    /// Removes a user; false when absent.
    pub fn remove(&mut self, username: &str) -> bool {
        match self.index.get(&username.to_lowercase()) {
            Some(&i) => {
                self.users.remove(i);
                self.reindex();
                true
            }
            None => false,
        }
    }
}

/// A pending invitee listed only by name in `invited`.
pub fn bare_invitee(name: String) -> User {
    User {
        // Invitees have no LastPass id yet; the username stands in (never empty here).
        id: UserId::new(name.clone()).unwrap_or_else(|_| {
            UserId::new("invitee").unwrap_or_else(|_| unreachable!("a non-empty literal"))
        }),
        username: name,
        fullname: String::new(),
        mpstrength: None,
        totalscore: None,
        created: None,
        last_pw_change: None,
        last_login: None,
        never_logged_in: true,
        disabled: false,
        admin: false,
        duo_username: None,
        linked: None,
        multifactor: None,
        has_sharing_keys: None,
        sites: None,
        notes: None,
        formfills: None,
        applications: None,
        attachments: None,
        password_reset_required: false,
        groups: Vec::new(),
        attribs: BTreeMap::new(),
        invited: true,
    }
}

/// One full sweep: every `getuserdata` page at the maximum page size.
pub async fn sweep(client: &Client) -> Result<Directory, lastpass::Error> {
    let before = client.stats().requests;
    let mut users = Vec::new();
    let mut invited = Vec::new();
    let mut pages = client.user_pages(UserQuery::default(), SWEEP_PAGE_SIZE);
    while let Some(page) = pages.try_next().await? {
        users.extend(page.users);
        invited.extend(page.invited);
    }
    // Paged answers carry no `Groups` map, and an invitee is listed by name only: its
    // memberships are in the map of one unpaged answer. Read it only when there are invitees.
    let invitee_groups = if invited.is_empty() {
        None
    } else {
        client.groups().await?
    };
    let mut d = Directory::from_parts(users, invited);
    if let Some(map) = invitee_groups {
        d.add_invitee_groups(&map);
    }
    d.calls = client.stats().requests.saturating_sub(before);
    Ok(d)
}

/// A cached value with a TTL, a generation (bumped by invalidation) and a single-flight lock.
struct Cached<T> {
    current: RwLock<Option<Entry<T>>>,
    refresh: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

struct Entry<T> {
    value: Arc<T>,
    at: Instant,
    generation: u64,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Self {
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<T: Clone> Cached<T> {
    fn fresh(&self, ttl: Duration) -> Option<Arc<T>> {
        let generation = self.generation.load(Ordering::Acquire);
        let cur = self.current.read();
        cur.as_ref()
            .filter(|e| e.generation == generation && e.at.elapsed() < ttl)
            .map(|e| e.value.clone())
    }

    async fn get<E, Fut>(&self, ttl: Duration, load: impl FnOnce() -> Fut) -> Result<Arc<T>, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.fresh(ttl) {
            return Ok(v);
        }
        let _flight = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(v) = self.fresh(ttl) {
            return Ok(v);
        }
        self.load_and_store(load).await
    }

    /// Loads without consulting the cache (this caller wants its own upstream calls) and
    /// stores the result.
    async fn load_and_store<E, Fut>(&self, load: impl FnOnce() -> Fut) -> Result<Arc<T>, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        let value = Arc::new(load().await?);
        *self.current.write() = Some(Entry {
            value: value.clone(),
            at: Instant::now(),
            generation,
        });
        Ok(value)
    }

    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Applies `f` to a copy of the current value if it is still trusted; otherwise the next
    /// read sweeps again anyway. Starts a new generation either way, so a load that began
    /// before the change (and so cannot contain it) is not trusted when it lands.
    fn modify(&self, f: impl FnOnce(&mut T)) {
        let mut cur = self.current.write();
        let before = self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(e) = cur.as_mut().filter(|e| e.generation == before) {
            let mut copy = (*e.value).clone();
            f(&mut copy);
            e.value = Arc::new(copy);
            e.generation = before + 1;
        }
    }
}

/// The store versions a slot accounts for: every version up to `known`, plus this replica's own
/// writes above it (a write's bump and the requests that see it race).
#[derive(Debug)]
struct Versions {
    /// `i64::MIN`: nothing seen yet.
    known: i64,
    own: std::collections::BTreeSet<i64>,
    in_flight: u32,
    /// The highest version seen while own writes were in flight and not yet accounted for.
    pending: i64,
}

impl Default for Versions {
    fn default() -> Self {
        Self {
            known: i64::MIN,
            own: Default::default(),
            in_flight: 0,
            pending: i64::MIN,
        }
    }
}

impl Versions {
    /// Moves `known` up over this replica's own versions.
    fn absorb(&mut self) {
        while self.own.remove(&(self.known + 1)) {
            self.known += 1;
        }
        let known = self.known;
        self.own.retain(|&x| x > known);
    }

    /// Whether seeing `version` means someone else wrote (invalidate).
    fn observe(&mut self, version: i64) -> bool {
        if self.known == i64::MIN {
            self.known = version;
            return false;
        }
        self.absorb();
        if version <= self.known {
            return false;
        }
        if self.in_flight > 0 {
            // Perhaps our own write's version, not yet recorded: decided at `end_write`.
            self.pending = self.pending.max(version);
            return false;
        }
        self.known = version;
        self.absorb();
        true
    }

    fn end_write(&mut self, version: Option<i64>) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(v) = version {
            if self.known == i64::MIN {
                self.known = v;
            } else if v > self.known {
                self.own.insert(v);
            }
        }
        self.absorb();
        if self.in_flight > 0 {
            return false;
        }
        // Every own write is recorded: a version above them is someone else's.
        let top = self
            .pending
            .max(self.own.last().copied().unwrap_or(i64::MIN));
        self.pending = i64::MIN;
        if top > self.known {
            self.known = top;
            self.own.clear();
            return true;
        }
        false
    }
}

struct Slot {
    directory: Cached<Directory>,
    folders: Cached<Vec<SharedFolder>>,
    /// Which store `directory_version`s this slot's contents account for.
    version: Mutex<Versions>,
}

impl Slot {
    fn invalidate(&self) {
        self.directory.invalidate();
        self.folders.invalidate();
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            directory: Cached::default(),
            folders: Cached::default(),
            version: Mutex::new(Versions::default()),
        }
    }
}

/// Every connection's snapshot.
pub struct Snapshots {
    ttl: Duration,
    slots: Mutex<HashMap<ConnectionId, Arc<Slot>>>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Snapshots {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn slot(&self, conn: &ConnectionId) -> Arc<Slot> {
        self.slots.lock().entry(conn.clone()).or_default().clone()
    }

    /// The connection's directory, swept when missing, stale or invalidated.
    pub async fn directory(
        &self,
        conn: &ConnectionId,
        client: &Client,
    ) -> Result<Arc<Directory>, lastpass::Error> {
        self.slot(conn)
            .directory
            .get(self.ttl, || sweep(client))
            .await
    }

    /// A fresh sweep through `client` (e.g. a tapped one for `raw=true`), stored for others.
    pub async fn sweep_now(
        &self,
        conn: &ConnectionId,
        client: &Client,
    ) -> Result<Arc<Directory>, lastpass::Error> {
        self.slot(conn)
            .directory
            .load_and_store(|| sweep(client))
            .await
    }

    /// The connection's shared folders (`getsfdata`), cached like the directory.
    pub async fn folders(
        &self,
        conn: &ConnectionId,
        client: &Client,
        fresh: bool,
    ) -> Result<Arc<Vec<SharedFolder>>, lastpass::Error> {
        let slot = self.slot(conn);
        if fresh {
            return slot
                .folders
                .load_and_store(|| client.shared_folders())
                .await;
        }
        slot.folders.get(self.ttl, || client.shared_folders()).await
    }

    /// The directory if a trusted, unexpired one is cached; never sweeps.
    pub fn cached_directory(&self, conn: &ConnectionId) -> Option<Arc<Directory>> {
        self.slot(conn).directory.fresh(self.ttl)
    }

    /// Patches the directory after a write lpbridge made (no-op when nothing trusted is cached).
    pub fn modify_directory(&self, conn: &ConnectionId, f: impl FnOnce(&mut Directory)) {
        self.slot(conn).directory.modify(f);
    }

    /// Forgets everything cached for the connection (after writes whose effect is not known
    /// exactly, and when the connection itself changes).
    pub fn invalidate(&self, conn: &ConnectionId) {
        self.slot(conn).invalidate();
    }

    /// Compares the store's `directory_version` (read with the connection on every request)
    /// with the ones this snapshot accounts for: another replica's write invalidates it here.
    /// Versions only grow, so a stale read (older than what is known) says nothing.
    pub fn observe_version(&self, conn: &ConnectionId, version: i64) {
        let slot = self.slot(conn);
        let mut v = slot.version.lock();
        if v.observe(version) {
            slot.invalidate();
        }
    }

    /// Before this replica bumps the connection's `directory_version` for its own write: until
    /// [`end_write`](Self::end_write), a newer version seen on a request may be that write's.
    pub fn begin_write(&self, conn: &ConnectionId) {
        self.slot(conn).version.lock().in_flight += 1;
    }

    /// After the bump: records the version this replica's own write produced (its snapshot is
    /// already patched or invalidated), so it does not count as someone else's change. Versions
    /// nobody here produced mean another replica wrote: that change is not in the snapshot, so
    /// it is invalidated.
    pub fn end_write(&self, conn: &ConnectionId, version: Option<i64>) {
        let slot = self.slot(conn);
        let mut v = slot.version.lock();
        if v.end_write(version) {
            slot.invalidate();
        }
    }

    /// [`begin_write`](Self::begin_write) and [`end_write`](Self::end_write) at once.
    pub fn own_version(&self, conn: &ConnectionId, version: i64) {
        self.begin_write(conn);
        self.end_write(conn, Some(version));
    }

    /// Drops a removed connection's slot.
    pub fn forget(&self, conn: &ConnectionId) {
        if let Some(slot) = self.slots.lock().remove(conn) {
            slot.invalidate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn user(name: &str, groups: &[&str]) -> User {
        let mut u = bare_invitee(name.to_string());
        u.invited = false;
        u.groups = groups.iter().map(|g| g.to_string()).collect();
        u
    }

    #[test]
    fn directory_sorts_merges_invitees_and_derives_groups() {
        let d = Directory::from_parts(
            vec![
                user("b@x.com", &["Sales"]),
                user("A@x.com", &["Sales", "Ops"]),
            ],
            vec!["c@x.com".into(), "a@x.com".into()],
        );
        let names: Vec<_> = d.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["A@x.com", "b@x.com", "c@x.com"]);
        assert!(d.user("C@X.COM").is_some_and(|u| u.invited));
        assert!(d.user("a@x.com").is_some_and(|u| !u.invited));
        assert_eq!(d.groups["Sales"], ["a@x.com", "b@x.com"]);
        assert_eq!(d.groups["Ops"], ["a@x.com"]);
        assert_eq!(d.position_after("a@x.com"), 1);
        assert_eq!(d.position_after(""), 0);
        assert_eq!(d.position_after("zzz"), 3);
    }

    #[test]
    fn upsert_and_remove_keep_order_and_groups() {
        let mut d = Directory::from_parts(vec![user("b@x.com", &["G"])], vec![]);
        d.upsert(user("a@x.com", &["G"]));
        assert_eq!(d.users[0].username, "a@x.com");
        assert_eq!(d.groups["G"].len(), 2);
        assert!(d.remove("B@x.com"));
        assert!(!d.remove("b@x.com"));
        assert_eq!(d.groups["G"], ["a@x.com"]);
    }

    #[tokio::test]
    async fn a_version_change_from_elsewhere_invalidates_but_our_own_does_not() {
        let (snaps, id, slot) = warm_at_version_3().await;
        let ttl = TTL;
        snaps.observe_version(&id, 3);
        assert!(slot.directory.fresh(ttl).is_some());
        snaps.own_version(&id, 4);
        snaps.observe_version(&id, 4);
        assert!(slot.directory.fresh(ttl).is_some(), "our own write");
        snaps.observe_version(&id, 5);
        assert!(
            slot.directory.fresh(ttl).is_none(),
            "another replica's write"
        );
    }

    #[test]
    fn a_user_listed_twice_by_the_sweep_is_kept_once() {
        let mut d = Directory::from_parts(
            vec![
                user("a@x.com", &["G"]),
                user("b@x.com", &[]),
                user("A@x.com", &["G"]),
            ],
            vec![],
        );
        assert_eq!(d.users.len(), 2);
        assert_eq!(d.groups["G"], ["a@x.com"]);
        assert!(d.remove("a@x.com"));
        assert!(d.user("a@x.com").is_none(), "no second copy left behind");
    }

    #[tokio::test]
    async fn a_load_that_began_before_a_patch_is_not_trusted() {
        let cache: Arc<Cached<u32>> = Arc::new(Cached::default());
        let ttl = Duration::from_secs(60);
        cache.get::<(), _>(ttl, || async { Ok(1) }).await.unwrap();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let c = cache.clone();
        // A sweep that read the directory before the write below.
        let load = tokio::spawn(async move {
            c.load_and_store::<(), _>(|| async move {
                let _ = go_rx.await;
                Ok(1)
            })
            .await
        });
        tokio::task::yield_now().await;
        // lpbridge's write patches the snapshot meanwhile.
        cache.modify(|v| *v = 2);
        go_tx.send(()).unwrap();
        assert_eq!(*load.await.unwrap().unwrap(), 1, "handed to its caller");
        assert_eq!(
            *cache.get::<(), _>(ttl, || async { Ok(3) }).await.unwrap(),
            3,
            "the pre-write sweep is not served afterwards"
        );
    }

    const TTL: Duration = Duration::from_secs(60);

    /// A connection's snapshot, loaded at store version 3.
    async fn warm_at_version_3() -> (Snapshots, ConnectionId, Arc<Slot>) {
        let snaps = Snapshots::new(TTL);
        let id = ConnectionId::new("c").unwrap();
        snaps.observe_version(&id, 3);
        let slot = snaps.slot(&id);
        slot.directory
            .get::<(), _>(TTL, || async { Ok(Directory::default()) })
            .await
            .unwrap();
        (snaps, id, slot)
    }

    #[tokio::test]
    async fn a_request_that_sees_our_write_before_we_record_it_does_not_invalidate() {
        let (snaps, id, slot) = warm_at_version_3().await;
        let ttl = TTL;
        // Two concurrent writes here bump to 4 and 5; requests see 5, then a stale 3.
        snaps.begin_write(&id);
        snaps.begin_write(&id);
        snaps.observe_version(&id, 5);
        snaps.observe_version(&id, 3);
        snaps.end_write(&id, Some(5));
        assert!(
            slot.directory.fresh(ttl).is_some(),
            "5 is ours, 4 in flight"
        );
        snaps.end_write(&id, Some(4));
        assert!(slot.directory.fresh(ttl).is_some(), "both ours");
        snaps.observe_version(&id, 5);
        assert!(slot.directory.fresh(ttl).is_some());
        // A version seen during our write that is not ours: someone else wrote.
        snaps.begin_write(&id);
        snaps.observe_version(&id, 7);
        assert!(
            slot.directory.fresh(ttl).is_some(),
            "undecided while in flight"
        );
        snaps.end_write(&id, Some(6));
        assert!(
            slot.directory.fresh(ttl).is_none(),
            "7 was another replica's"
        );
    }

    #[tokio::test]
    async fn an_own_write_that_skips_a_version_invalidates() {
        let (snaps, id, slot) = warm_at_version_3().await;
        let ttl = TTL;
        // Another replica wrote (4) before this one's own write (5).
        snaps.own_version(&id, 5);
        assert!(slot.directory.fresh(ttl).is_none());
    }

    #[tokio::test]
    async fn concurrent_stale_readers_share_one_load() {
        let cache: Arc<Cached<u32>> = Arc::new(Cached::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let cache = cache.clone();
            let loads = loads.clone();
            let mut go = go_rx.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get::<(), _>(Duration::from_secs(60), || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        // Hold the flight until every reader is queued behind it.
                        let _ = go.wait_for(|g| *g).await;
                        Ok(7)
                    })
                    .await
            }));
        }
        tokio::task::yield_now().await;
        go_tx.send(true).unwrap();
        for t in tasks {
            assert_eq!(*t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidation_and_ttl_force_a_reload_and_modify_patches() {
        let cache: Cached<u32> = Cached::default();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            *cache.get::<(), _>(ttl, || async { Ok(1) }).await.unwrap(),
            1
        );
        assert_eq!(
            *cache.get::<(), _>(ttl, || async { Ok(2) }).await.unwrap(),
            1
        );
        cache.modify(|v| *v += 10);
        assert_eq!(
            *cache.get::<(), _>(ttl, || async { Ok(2) }).await.unwrap(),
            11
        );
        cache.invalidate();
        // A modify after invalidation must not resurrect the distrusted value.
        cache.modify(|v| *v += 100);
        assert_eq!(
            *cache.get::<(), _>(ttl, || async { Ok(3) }).await.unwrap(),
            3
        );
        let zero = Duration::ZERO;
        assert_eq!(
            *cache.get::<(), _>(zero, || async { Ok(4) }).await.unwrap(),
            4
        );
        // Errors are not cached.
        assert!(
            cache
                .get::<&str, _>(zero, || async { Err("down") })
                .await
                .is_err()
        );
    }
}
