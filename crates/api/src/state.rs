//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use automation::runtime::{Ports, Runtime, RuntimeConfig};
use crm_core::accounts::MailerHandle;
use crm_core::blob::{BlobStore, MemoryBlobStore};
use crm_core::outbound::HttpCaller;
use crm_core::repo::Stores;
use crm_core::{Clock, Storage, SystemClock};

use crate::auth::cache::{InvalidatingStore, MemberCache};
use crate::auth::{AuthConfig, SigningKey};
use crate::idempotency::IdempotencyConfig;
use crate::ratelimit::{LocalCounters, RateLimitConfig, RateLimitCounters};

/// Limits the HTTP layer enforces; the server fills them from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes (413 above it).
    pub body_limit: usize,
    /// Longest a request may take before it is answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Longest `/ready` waits for the storage ping.
    pub ready_timeout: Duration,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    /// Where the rate-limit counters live (ADR 0016).
    pub rate_limit_counters: RateLimitCounters,
    /// How long a workspace role is remembered; zero looks it up on every request (ADR 0016).
    pub member_cache_ttl: Duration,
    pub idempotency: IdempotencyConfig,
    /// Seals integration credentials (`CLIANTA_ENCRYPTION_KEY`; a public dev key by default).
    pub encryption_key: integrations::crypto::MasterKey,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            ready_timeout: Duration::from_secs(2),
            auth: AuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
            rate_limit_counters: RateLimitCounters::Store,
            member_cache_ttl: Duration::from_secs(5),
            idempotency: IdempotencyConfig::default(),
            encryption_key: integrations::crypto::MasterKey::dev_default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub storage: Storage,
    pub stores: Stores,
    pub config: ApiConfig,
    /// Account mails; logs them unless [`AppState::with_mailer`] sets a transport.
    pub mailer: MailerHandle,
    /// Attachment bytes; in memory unless [`AppState::with_blobs`] sets a store.
    pub blobs: Arc<dyn BlobStore>,
    /// Job queue, event relay and periodic jobs (ADR 0019), with every handler of
    /// `automation::runtime::standard`; the server spawns its loops, tests call
    /// `run_until_idle`.
    pub automation: Arc<Runtime>,
    /// Outgoing HTTP of automation (webhooks); records and sends nothing unless
    /// [`AppState::with_http`] sets a client.
    pub http: Arc<dyn HttpCaller>,
    signing_key: Arc<SigningKey>,
    pub(crate) members: Arc<MemberCache>,
    /// Set when the counters are kept in this process.
    pub(crate) counters: Option<Arc<LocalCounters>>,
}

impl AppState {
    /// State over `storage` with the system clock.
    pub fn new(storage: Storage, config: ApiConfig) -> Self {
        Self::with_clock(storage, Arc::new(SystemClock), config)
    }

    pub fn with_clock(mut storage: Storage, clock: Arc<dyn Clock>, config: ApiConfig) -> Self {
        let members = Arc::new(MemberCache::new(config.member_cache_ttl));
        storage.docs = Arc::new(InvalidatingStore::new(storage.docs, members.clone()));
        let stores = Stores::new(storage.docs.clone(), clock.clone());
        let ports = Ports::offline(clock);
        let automation = automation_runtime(&stores, &ports, RuntimeConfig::default());
        let counters = (config.rate_limit_counters == RateLimitCounters::Process)
            .then(|| Arc::new(LocalCounters::new(&config.rate_limit)));
        Self {
            storage,
            stores,
            config,
            mailer: MailerHandle::default(),
            blobs: Arc::new(MemoryBlobStore::new()),
            automation,
            http: ports.http,
            signing_key: Arc::default(),
            members,
            counters,
        }
    }

    pub fn with_mailer(mut self, mailer: Arc<dyn crm_core::accounts::Mailer>) -> Self {
        self.mailer = MailerHandle::new(mailer);
        let config = self.automation.config().clone();
        self.rebuild_automation(config)
    }

    /// Sets the outgoing HTTP client of automation (the registered handlers are rebuilt).
    pub fn with_http(mut self, http: Arc<dyn HttpCaller>) -> Self {
        self.http = http;
        let config = self.automation.config().clone();
        self.rebuild_automation(config)
    }

    /// Sets how the automation loops run (concurrency, leases, polling).
    pub fn with_automation_config(self, config: RuntimeConfig) -> Self {
        self.rebuild_automation(config)
    }

    /// Handlers hold their ports, so a new port means a new runtime. Nothing runs before the
    /// server spawns it, so this is only ever done while building the state.
    fn rebuild_automation(mut self, config: RuntimeConfig) -> Self {
        let ports = Ports {
            mailer: self.mailer.clone(),
            http: self.http.clone(),
            clock: self.stores.clock().clone(),
        };
        self.automation = automation_runtime(&self.stores, &ports, config);
        self
    }

    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = blobs;
        self
    }

    /// The access-token signing key: the configured secret, else the one kept in the store.
    pub(crate) async fn signing_key(&self) -> crm_core::Result<Arc<[u8]>> {
        self.signing_key.get(&self.config.auth, &self.stores).await
    }
}

fn automation_runtime(stores: &Stores, ports: &Ports, config: RuntimeConfig) -> Arc<Runtime> {
    let mut rt = Runtime::with_config(stores.clone(), ports.clock.clone(), config);
    automation::runtime::standard(&mut rt, ports);
    // These crates depend on automation, so they register here rather than in `standard`.
    integrations::register(&rt, ports.http.clone());
    ai_memory::register(&rt);
    analytics::register(&rt);
    campaigns::engage::register(&rt, Arc::new(campaigns::engage::LogOutbound));
    campaigns::engage::wire_workflow_sequences(&rt, ports.http.clone());
    Arc::new(rt)
}
