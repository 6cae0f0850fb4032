//! Helpers for the HTTP tests: an app over the store `CLIANTA_TEST_API_STORE` names (`memory`,
//! the default, `sqlite` or `mongo`), requests, and account shortcuts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use clianta_api::{ApiConfig, AppState, PROBLEM_JSON, router};
use crm_core::accounts::{Role, membership};
use crm_core::entities::team_member::{MemberStatus, TeamMember};
use crm_core::repo::WorkspaceEntity;
use crm_core::store::AppliedMigration;
use crm_core::{
    Clock, Document, DocumentStore, EntityDef, Filter, FindOptions, GroupBy, GroupRow, ObjectId,
    Result, Storage, StoreAdmin, Tenant, Timestamp, Update, UserId, WorkspaceId,
};
use serde_json::{Value, json};
use storage_memory::MemoryStore;
use storage_mongo::MongoStore;
use storage_sqlite::SqliteStore;
use tower::ServiceExt;

/// A clock tests move by hand.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(Timestamp::now().millis())))
    }
    pub fn advance_secs(&self, s: i64) {
        self.0.fetch_add(s * 1000, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

pub struct TestApp {
    pub state: AppState,
    pub app: Router,
    pub clock: Arc<TestClock>,
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(storage(), ApiConfig::default())
    }

    pub fn with(storage: Storage, mut config: ApiConfig) -> Self {
        // A new pooled MongoDB database builds its schema inside the first request.
        if std::env::var("CLIANTA_TEST_API_STORE").as_deref() == Ok("mongo")
            && config.request_timeout == ApiConfig::default().request_timeout
        {
            config.request_timeout = Duration::from_secs(600);
        }
        let clock = TestClock::new();
        let state = AppState::with_clock(storage, clock.clone(), config);
        Self {
            app: router(state.clone()),
            state,
            clock,
        }
    }

    /// Lets automation happen: relays pending domain events and runs every job due at the
    /// test clock's now, until nothing is left (advance `clock` for delays and retries).
    pub async fn run_jobs(&self) -> automation::runtime::IdleReport {
        self.state.automation.run_until_idle().await.unwrap()
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, uri, token, Some(body)).await
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, uri, token, None).await
    }

    pub async fn patch(&self, uri: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::PATCH, uri, token, Some(body)).await
    }

    pub async fn delete(&self, uri: &str, token: Option<&str>) -> Resp {
        self.call(Method::DELETE, uri, token, None).await
    }

    /// Registers `email` with a valid password; returns (user id, access token, refresh token).
    pub async fn register(&self, email: &str) -> Account {
        let r = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": "Test User"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        Account {
            id: r.body["user"]["_id"].as_str().unwrap().to_owned(),
            access: r.body["tokens"]["accessToken"].as_str().unwrap().to_owned(),
            refresh: r.body["tokens"]["refreshToken"]
                .as_str()
                .unwrap()
                .to_owned(),
        }
    }

    /// Creates a workspace as `owner`; returns its id.
    pub async fn workspace(&self, owner: &Account, name: &str) -> String {
        let r = self
            .post(
                "/api/v1/workspaces",
                Some(&owner.access),
                json!({"name": name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["_id"].as_str().unwrap().to_owned()
    }
}

/// A fresh, empty store of the kind `CLIANTA_TEST_API_STORE` selects.
pub fn storage() -> Storage {
    match std::env::var("CLIANTA_TEST_API_STORE").as_deref() {
        Err(_) | Ok("" | "memory") => Storage::new(Arc::new(MemoryStore::new())),
        Ok("sqlite") => {
            let store = SqliteStore::open_in_memory().unwrap();
            // Helpers are sync and called inside a runtime, so the schema is made on a thread of
            // its own rather than by blocking this one.
            std::thread::scope(|s| {
                s.spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap()
                        .block_on(store.ensure_schema(&clianta_catalog::all_entities()))
                })
                .join()
                .unwrap()
            })
            .unwrap();
            Storage::new(Arc::new(store))
        }
        Ok("mongo") => Storage::new(Arc::new(LazyMongo::new())),
        Ok(other) => panic!("CLIANTA_TEST_API_STORE={other}: expected memory, sqlite or mongo"),
    }
}

/// The URI of the MongoDB the `mongo` store uses: `CLIANTA_TEST_MONGODB_URI`, default the one
/// `scripts/mongo-test-server.sh start` serves.
pub fn mongo_uri() -> String {
    std::env::var("CLIANTA_TEST_MONGODB_URI")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned())
}

/// An empty MongoDB database with the full schema, connected on first use: `storage()` is sync,
/// and the driver's background tasks must live on the test's own runtime.
///
/// Databases come from a pool shared by the test processes (`clianta_api_pool_<n>`, claimed
/// with a lock file): building the schema means some 600 indexes, each a table in the test
/// server, which takes longer than most tests. A claimed database is emptied (its indexes
/// kept) and its schema ensured again, so every test starts from nothing.
#[derive(Debug)]
pub struct LazyMongo {
    name: String,
    _slot: std::fs::File,
    store: tokio::sync::OnceCell<MongoStore>,
}

/// The first free slot of the pool, held until the returned file is dropped (or the process
/// ends).
fn claim_pool_slot() -> (String, std::fs::File) {
    let dir = std::env::temp_dir().join("clianta-api-mongo-pool");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..256 {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{i}.lock")))
            .unwrap();
        if f.try_lock().is_ok() {
            return (format!("clianta_api_pool_{i}"), f);
        }
    }
    panic!("all 256 pooled test databases are in use");
}

impl LazyMongo {
    pub fn new() -> Self {
        let (name, slot) = claim_pool_slot();
        Self {
            name,
            _slot: slot,
            store: tokio::sync::OnceCell::new(),
        }
    }

    pub fn database_name(&self) -> &str {
        &self.name
    }

    async fn store(&self) -> &MongoStore {
        self.store
            .get_or_init(|| async {
                let uri = mongo_uri();
                let unreachable = |e: &dyn std::fmt::Display| -> ! {
                    panic!(
                        "cannot reach the MongoDB test server at {uri}: {e}\n\
                         Start one with `scripts/mongo-test-server.sh start`, or point \
                         CLIANTA_TEST_MONGODB_URI at a MongoDB."
                    )
                };
                empty_database(&uri, &self.name)
                    .await
                    .unwrap_or_else(|e| unreachable(&e));
                let store = MongoStore::connect_db(&uri, &self.name)
                    .await
                    .unwrap_or_else(|e| unreachable(&e));
                store
                    .ensure_schema(&clianta_catalog::all_entities())
                    .await
                    .unwrap();
                store
            })
            .await
    }
}

/// Deletes every document of every collection, keeping collections and indexes.
// Whole test databases, not tenant data: the raw-module rule does not apply here.
#[allow(clippy::disallowed_methods)]
async fn empty_database(uri: &str, name: &str) -> mongodb::error::Result<()> {
    let client = mongodb::Client::with_uri_str(uri).await?;
    let db = client.database(name);
    for c in db.list_collection_names().await? {
        db.collection::<mongodb::bson::Document>(&c)
            .delete_many(mongodb::bson::doc! {})
            .await?;
    }
    Ok(())
}

#[async_trait]
impl DocumentStore for LazyMongo {
    async fn insert(&self, t: Tenant, d: &'static EntityDef, doc: Document) -> Result<Document> {
        self.store().await.insert(t, d, doc).await
    }
    async fn insert_many(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        self.store().await.insert_many(t, d, docs).await
    }
    async fn get(&self, t: Tenant, d: &'static EntityDef, id: ObjectId) -> Result<Document> {
        self.store().await.get(t, d, id).await
    }
    async fn find(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        f: &Filter,
        o: &FindOptions,
    ) -> Result<Vec<Document>> {
        self.store().await.find(t, d, f, o).await
    }
    async fn count(&self, t: Tenant, d: &'static EntityDef, f: &Filter) -> Result<u64> {
        self.store().await.count(t, d, f).await
    }
    async fn update_one(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        id: ObjectId,
        u: &Update,
    ) -> Result<Document> {
        self.store().await.update_one(t, d, id, u).await
    }
    async fn update_many(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        f: &Filter,
        u: &Update,
    ) -> Result<u64> {
        self.store().await.update_many(t, d, f, u).await
    }
    async fn find_one_and_update(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        f: &Filter,
        u: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.store()
            .await
            .find_one_and_update(t, d, f, u, upsert)
            .await
    }
    async fn delete_one(&self, t: Tenant, d: &'static EntityDef, id: ObjectId) -> Result<()> {
        self.store().await.delete_one(t, d, id).await
    }
    async fn delete_many(&self, t: Tenant, d: &'static EntityDef, f: &Filter) -> Result<u64> {
        self.store().await.delete_many(t, d, f).await
    }
    async fn aggregate(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        g: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        self.store().await.aggregate(t, d, g).await
    }
}

#[async_trait]
impl StoreAdmin for LazyMongo {
    async fn ping(&self) -> Result<()> {
        self.store().await.ping().await
    }
    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()> {
        self.store().await.ensure_schema(defs).await
    }
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        self.store().await.applied_migrations().await
    }
    async fn record_migration(&self, m: &AppliedMigration) -> Result<()> {
        self.store().await.record_migration(m).await
    }
    async fn forget_migration(&self, version: u32) -> Result<()> {
        self.store().await.forget_migration(version).await
    }
    async fn update_all_tenants(
        &self,
        d: &'static EntityDef,
        f: &Filter,
        u: &Update,
    ) -> Result<u64> {
        self.store().await.update_all_tenants(d, f, u).await
    }
    fn backend(&self) -> &'static str {
        "mongo"
    }
}

/// Inserts `e` into `ws` through the typed repository, as the routes would; returns its id.
pub async fn seed<E: WorkspaceEntity>(t: &TestApp, ws: &str, e: &E) -> String {
    let ws: WorkspaceId = ws.parse().unwrap();
    let e = t
        .state
        .stores
        .workspace(ws)
        .repo::<E>()
        .insert(e)
        .await
        .unwrap();
    serde_json::to_value(&e).unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Adds `who` to `ws` as an active member with `role`, as an accepted invite would.
pub async fn add_member(t: &TestApp, ws: &str, who: &Account, role: Role) {
    add_member_as(t, ws, who, role, MemberStatus::Active).await;
}

/// Adds `who` to `ws` with `role` and `status`; only active members get a membership record.
pub async fn add_member_as(t: &TestApp, ws: &str, who: &Account, role: Role, status: MemberStatus) {
    let ws: WorkspaceId = ws.parse().unwrap();
    let user: UserId = who.id.parse().unwrap();
    let now = t.state.stores.clock().now();
    let mut m = TeamMember::new(ws, role, now);
    m.user_id = Some(user);
    m.status = status;
    m.joined_at = Some(now);
    t.state
        .stores
        .workspace(ws)
        .repo::<TeamMember>()
        .insert(&m)
        .await
        .unwrap();
    if status == MemberStatus::Active {
        membership::record(&t.state.stores, user, ws, role)
            .await
            .unwrap();
    }
}

/// An app with one registered owner and the owner's workspace.
pub struct World {
    pub t: TestApp,
    pub owner: Account,
    pub ws: String,
}

impl World {
    pub fn tok(&self) -> Option<&str> {
        Some(&self.owner.access)
    }
}

pub async fn world() -> World {
    world_with(TestApp::new()).await
}

pub async fn world_with(t: TestApp) -> World {
    let owner = t.register("owner@example.com").await;
    let ws = t.workspace(&owner, "Acme Sales").await;
    World { t, owner, ws }
}

pub const PASSWORD: &str = "Correct-h0rse";

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub access: String,
    pub refresh: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            PROBLEM_JSON,
            "{}",
            self.body
        );
        assert_eq!(self.body["code"], code, "{}", self.body);
        self
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        &self.body
    }
}

/// How `SlowStore` holds an operation back before passing it on.
#[derive(Debug, Clone, Copy)]
pub enum Pause {
    Sleep(Duration),
    Yield,
}

/// The memory store, pausing before operations so concurrent requests interleave between their
/// reads and writes (as they would over a network store), and counting calls per (op,
/// collection).
#[derive(Debug)]
pub struct SlowStore {
    inner: Arc<MemoryStore>,
    pause: Option<Pause>,
    /// The ops that pause; `None`: all of them.
    paused_ops: Option<&'static [&'static str]>,
    calls: Mutex<HashMap<(&'static str, &'static str), u64>>,
}

impl SlowStore {
    /// Sleeps `pause` before every operation.
    pub fn new(inner: Arc<MemoryStore>, pause: Duration) -> Self {
        Self {
            inner,
            pause: Some(Pause::Sleep(pause)),
            paused_ops: None,
            calls: Mutex::default(),
        }
    }

    /// Only counts.
    pub fn counting() -> Self {
        Self {
            inner: Arc::new(MemoryStore::new()),
            pause: None,
            paused_ops: None,
            calls: Mutex::default(),
        }
    }

    /// Counts, and yields to the scheduler before the named ops.
    pub fn yielding_before(ops: &'static [&'static str]) -> Self {
        Self {
            pause: Some(Pause::Yield),
            paused_ops: Some(ops),
            ..Self::counting()
        }
    }

    /// Storage whose documents go through a `SlowStore` over `mem` (admin calls go straight).
    pub fn storage(mem: Arc<MemoryStore>, pause: Duration) -> Storage {
        Storage {
            docs: Arc::new(Self::new(mem.clone(), pause)),
            admin: mem,
        }
    }

    /// Calls of `op` on `collection`.
    pub fn calls(&self, op: &str, collection: &str) -> u64 {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|((o, c), _)| *o == op && *c == collection)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls of `op` on any collection.
    pub fn calls_of_op(&self, op: &str) -> u64 {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }

    /// The reads (`get`, `find`, `count`) of `collection` per op, sorted.
    pub fn reads_of(&self, collection: &str) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|((op, c), _)| *c == collection && matches!(*op, "get" | "find" | "count"))
            .map(|((op, _), n)| (*op, *n))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }

    async fn before(&self, op: &'static str, d: &'static EntityDef) {
        *self
            .calls
            .lock()
            .unwrap()
            .entry((op, d.collection))
            .or_default() += 1;
        if self.paused_ops.is_some_and(|ops| !ops.contains(&op)) {
            return;
        }
        match self.pause {
            Some(Pause::Sleep(p)) => tokio::time::sleep(p).await,
            Some(Pause::Yield) => tokio::task::yield_now().await,
            None => {}
        }
    }
}

#[async_trait]
impl DocumentStore for SlowStore {
    async fn insert(&self, t: Tenant, d: &'static EntityDef, doc: Document) -> Result<Document> {
        self.before("insert", d).await;
        self.inner.insert(t, d, doc).await
    }
    async fn insert_many(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        self.before("insert_many", d).await;
        self.inner.insert_many(t, d, docs).await
    }
    async fn get(&self, t: Tenant, d: &'static EntityDef, id: ObjectId) -> Result<Document> {
        self.before("get", d).await;
        self.inner.get(t, d, id).await
    }
    async fn find(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        f: &Filter,
        o: &FindOptions,
    ) -> Result<Vec<Document>> {
        self.before("find", d).await;
        self.inner.find(t, d, f, o).await
    }
    async fn count(&self, t: Tenant, d: &'static EntityDef, f: &Filter) -> Result<u64> {
        self.before("count", d).await;
        self.inner.count(t, d, f).await
    }
    async fn update_one(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        id: ObjectId,
        u: &Update,
    ) -> Result<Document> {
        self.before("update_one", d).await;
        self.inner.update_one(t, d, id, u).await
    }
    async fn update_many(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        f: &Filter,
        u: &Update,
    ) -> Result<u64> {
        self.before("update_many", d).await;
        self.inner.update_many(t, d, f, u).await
    }
    async fn find_one_and_update(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        f: &Filter,
        u: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.before("find_one_and_update", d).await;
        self.inner.find_one_and_update(t, d, f, u, upsert).await
    }
    async fn delete_one(&self, t: Tenant, d: &'static EntityDef, id: ObjectId) -> Result<()> {
        self.before("delete_one", d).await;
        self.inner.delete_one(t, d, id).await
    }
    async fn delete_many(&self, t: Tenant, d: &'static EntityDef, f: &Filter) -> Result<u64> {
        self.before("delete_many", d).await;
        self.inner.delete_many(t, d, f).await
    }
    async fn aggregate(
        &self,
        t: Tenant,
        d: &'static EntityDef,
        g: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        self.before("aggregate", d).await;
        self.inner.aggregate(t, d, g).await
    }
    /// Passed through whole (the default would run it op by op, not atomically), counted under
    /// its first op's collection.
    async fn write_batch(
        &self,
        ops: Vec<crm_core::store::WriteOp>,
    ) -> Result<Vec<Option<Document>>> {
        use crm_core::store::WriteOp;
        if let Some(
            WriteOp::Insert { def, .. } | WriteOp::Update { def, .. } | WriteOp::Delete { def, .. },
        ) = ops.first()
        {
            self.before("write_batch", def).await;
        }
        self.inner.write_batch(ops).await
    }
}

#[async_trait]
impl StoreAdmin for SlowStore {
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()> {
        self.inner.ensure_schema(defs).await
    }
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        self.inner.applied_migrations().await
    }
    async fn record_migration(&self, m: &AppliedMigration) -> Result<()> {
        self.inner.record_migration(m).await
    }
    async fn forget_migration(&self, version: u32) -> Result<()> {
        self.inner.forget_migration(version).await
    }
    async fn update_all_tenants(
        &self,
        d: &'static EntityDef,
        f: &Filter,
        u: &Update,
    ) -> Result<u64> {
        self.inner.update_all_tenants(d, f, u).await
    }
    fn backend(&self) -> &'static str {
        "counting"
    }
}
