//! Settings: defaults, then an optional TOML file, then `CLIANTA_*` environment variables, parsed
//! once into typed values so nothing later re-reads or re-validates them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clianta_api::ratelimit::RateLimitCounters;
use clianta_api::{ApiConfig, AuthConfig, IdempotencyConfig, JwtSecret, RateLimitConfig};
use crm_core::services::ratelimit::Limit;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Where the embedded store lives when no storage URI is given.
pub const DEFAULT_SQLITE_PATH: &str = "./data/clianta.db";
/// Read when neither `--config` nor `CLIANTA_CONFIG` names a file.
pub const DEFAULT_CONFIG_FILE: &str = "clianta.toml";
pub const CONFIG_ENV: &str = "CLIANTA_CONFIG";

/// The file/environment keys (env: `CLIANTA_` + upper case). Only these are read from the
/// environment, so unrelated `CLIANTA_*` variables (e.g. test settings) are not errors.
const KEYS: &[&str] = &[
    "listen",
    "storage_uri",
    "log",
    "log_format",
    "migrate_on_start",
    "body_limit_bytes",
    "request_timeout_secs",
    "connect_timeout_secs",
    "shutdown_grace_secs",
    "jwt_secret",
    "require_email_verification",
    "mail_transport",
    "access_token_ttl_secs",
    "refresh_token_ttl_secs",
    "rate_limit_enabled",
    "rate_limit_window_secs",
    "rate_limit_per_credential",
    "rate_limit_per_workspace",
    "rate_limit_auth",
    "rate_limit_auth_window_secs",
    "rate_limit_trust_forwarded_for",
    "rate_limit_counters",
    "member_cache_ttl_secs",
    "idempotency_max_response_bytes",
    "blob_dir",
    "workers",
    "job_poll_ms",
    "encryption_key",
];

/// How account mails leave the server (`CLIANTA_MAIL_TRANSPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Mails are only logged (recipient and subject; their secrets at `debug`).
    Log,
}

impl MailTransport {
    /// Whether mails reach their recipients; only then can verification be required by default.
    pub fn delivers(self) -> bool {
        match self {
            Self::Log => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where rate-limit counters live (`CLIANTA_RATE_LIMIT_COUNTERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountersSetting {
    /// In process on the embedded stores (one process owns them), in the store on MongoDB.
    Auto,
    Store,
    Process,
}

/// The settings as written, before parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    storage_uri: String,
    log: String,
    log_format: LogFormat,
    migrate_on_start: bool,
    body_limit_bytes: usize,
    request_timeout_secs: u64,
    connect_timeout_secs: u64,
    shutdown_grace_secs: u64,
    /// Empty: generate one and keep it in the store.
    jwt_secret: String,
    /// Unset: required exactly when the mail transport delivers.
    require_email_verification: Option<bool>,
    mail_transport: MailTransport,
    access_token_ttl_secs: u64,
    refresh_token_ttl_secs: u64,
    rate_limit_enabled: bool,
    rate_limit_window_secs: u64,
    rate_limit_per_credential: u64,
    rate_limit_per_workspace: u64,
    rate_limit_auth: u64,
    rate_limit_auth_window_secs: u64,
    rate_limit_trust_forwarded_for: bool,
    rate_limit_counters: CountersSetting,
    member_cache_ttl_secs: u64,
    idempotency_max_response_bytes: usize,
    /// Empty: derived from the storage URI (`blobs::location`).
    blob_dir: String,
    /// Background jobs run at once by this process; 0 runs none (no worker, relay or
    /// periodic jobs here).
    workers: usize,
    /// How often idle workers and the event relay look for work.
    job_poll_ms: u64,
    /// Seals integration credentials (32 bytes, hex or base64). Empty: a public development key,
    /// with a warning on MongoDB (ADR 0023).
    encryption_key: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        let api = ApiConfig::default();
        let auth = AuthConfig::default();
        Self {
            listen: "127.0.0.1:8080".into(),
            storage_uri: String::new(),
            log: "info".into(),
            log_format: LogFormat::Text,
            migrate_on_start: true,
            body_limit_bytes: api.body_limit,
            request_timeout_secs: api.request_timeout.as_secs(),
            connect_timeout_secs: 30,
            shutdown_grace_secs: 30,
            jwt_secret: String::new(),
            require_email_verification: None,
            mail_transport: MailTransport::Log,
            access_token_ttl_secs: auth.access_token_ttl.as_secs(),
            refresh_token_ttl_secs: auth.refresh_token_ttl.as_secs(),
            rate_limit_enabled: api.rate_limit.enabled,
            rate_limit_window_secs: api.rate_limit.per_credential.window_secs,
            rate_limit_per_credential: api.rate_limit.per_credential.max,
            rate_limit_per_workspace: api.rate_limit.per_workspace.max,
            rate_limit_auth: api.rate_limit.auth.max,
            rate_limit_auth_window_secs: api.rate_limit.auth.window_secs,
            rate_limit_trust_forwarded_for: api.rate_limit.trust_forwarded_for,
            rate_limit_counters: CountersSetting::Auto,
            member_cache_ttl_secs: api.member_cache_ttl.as_secs(),
            idempotency_max_response_bytes: api.idempotency.max_response_bytes,
            blob_dir: String::new(),
            workers: automation::runtime::RuntimeConfig::default().concurrency,
            job_poll_ms: 500,
            encryption_key: String::new(),
        }
    }
}

/// Which store to open, parsed once from `CLIANTA_STORAGE_URI`.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageUri {
    /// The embedded store in this file (created with its directories).
    Sqlite(PathBuf),
    /// An in-memory SQLite database (`sqlite::memory:`), for trials.
    SqliteInMemory,
    /// `mongodb://` or `mongodb+srv://`, kept whole for the driver.
    Mongo(String),
    /// Throwaway in-process maps.
    Memory,
}

impl FromStr for StorageUri {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::Sqlite(DEFAULT_SQLITE_PATH.into()));
        }
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            return match path {
                "" => bail!("storage URI `sqlite:` needs a path, e.g. sqlite:./data/clianta.db"),
                ":memory:" => Ok(Self::SqliteInMemory),
                p => Ok(Self::Sqlite(p.into())),
            };
        }
        if s == "memory:" || s == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(rest) = s
            .strip_prefix("mongodb://")
            .or_else(|| s.strip_prefix("mongodb+srv://"))
        {
            let before_query = rest.split('?').next().unwrap_or_default();
            let hosts = before_query
                .rsplit_once('@')
                .map_or(before_query, |(_, h)| h);
            if hosts.split('/').next().unwrap_or_default().is_empty() {
                bail!("storage URI {} has no host", redact(s));
            }
            return Ok(Self::Mongo(s.to_owned()));
        }
        // Only the scheme is echoed: the rest may hold a password.
        match s.split_once(':') {
            Some((scheme, _)) if !scheme.is_empty() && !scheme.contains(['/', '@']) => bail!(
                "unsupported storage URI scheme `{scheme}:` (use sqlite:<path>, mongodb://..., \
                 mongodb+srv://... or memory:)"
            ),
            _ => bail!(
                "storage URI has no scheme (use sqlite:<path>, mongodb://..., mongodb+srv://... \
                 or memory:)"
            ),
        }
    }
}

/// Safe to log: the password and secret query parameters are masked.
impl fmt::Display for StorageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Self::SqliteInMemory => f.write_str("sqlite::memory:"),
            Self::Mongo(uri) => f.write_str(&redact(uri)),
            Self::Memory => f.write_str("memory:"),
        }
    }
}

impl fmt::Debug for StorageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageUri({self})")
    }
}

fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "authmechanismproperties",
        "tlscertificatekeyfilepassword",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The password of `user:password@`, if the URI has one.
pub fn uri_password(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let before_query = rest.split('?').next().unwrap_or(rest);
    // The last `@` ends the user info: hosts cannot contain one, careless passwords can.
    let at = before_query.rfind('@')?;
    let (_, password) = before_query[..at].split_once(':')?;
    Some(password).filter(|p| !p.is_empty())
}

/// Masks the password and secret-looking query parameters of a URI.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let main = match main.rfind('@') {
        Some(at) => {
            let (userinfo, host) = (&main[..at], &main[at + 1..]);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => main.to_owned(),
            }
        }
        None => main.to_owned(),
    };
    let mut out = format!("{scheme}://{main}");
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub storage: StorageUri,
    pub log: String,
    pub log_format: LogFormat,
    pub migrate_on_start: bool,
    pub api: ApiConfig,
    pub connect_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Where attachment bytes live.
    pub blobs: crate::blobs::BlobLocation,
    /// How the automation loops run; `concurrency` 0: none in this process.
    pub automation: automation::runtime::RuntimeConfig,
}

impl Config {
    /// Loads from the given file (else `CLIANTA_CONFIG`, else `./clianta.toml` when present) and
    /// the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::from_figment(&figment(file)?)
    }

    fn from_figment(f: &Figment) -> anyhow::Result<Self> {
        let raw: RawConfig = f
            .extract()
            .map_err(|e| anyhow!("invalid configuration: {e}"))?;
        raw.try_into()
    }
}

fn figment(file: Option<&Path>) -> anyhow::Result<Figment> {
    let mut f = Figment::from(Serialized::defaults(RawConfig::default()));
    let explicit = file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty());
    match explicit {
        Some(p) => {
            if !p.is_file() {
                bail!("configuration file {} does not exist", p.display());
            }
            f = f.merge(Toml::file_exact(p));
        }
        None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
            f = f.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
        }
        None => {}
    }
    Ok(f.merge(Env::prefixed("CLIANTA_").only(KEYS)))
}

impl TryFrom<RawConfig> for Config {
    type Error = anyhow::Error;

    fn try_from(raw: RawConfig) -> anyhow::Result<Self> {
        let listen = raw.listen.trim().parse().map_err(|_| {
            anyhow!(
                "invalid listen address `{}` (expected IP:port, e.g. 127.0.0.1:8080)",
                raw.listen
            )
        })?;
        let storage = raw.storage_uri.parse()?;
        tracing_subscriber::EnvFilter::try_new(&raw.log)
            .with_context(|| format!("invalid log filter `{}`", raw.log))?;
        if raw.body_limit_bytes == 0 {
            bail!("body_limit_bytes must be above 0");
        }
        if raw.request_timeout_secs == 0 || raw.connect_timeout_secs == 0 {
            bail!("request_timeout_secs and connect_timeout_secs must be above 0");
        }
        if raw.access_token_ttl_secs == 0 || raw.refresh_token_ttl_secs == 0 {
            bail!("access_token_ttl_secs and refresh_token_ttl_secs must be above 0");
        }
        if raw.rate_limit_window_secs == 0 || raw.rate_limit_auth_window_secs == 0 {
            bail!("rate_limit_window_secs and rate_limit_auth_window_secs must be above 0");
        }
        // The value is never echoed: it is a secret.
        let jwt_secret = match raw.jwt_secret.as_str() {
            "" => None,
            s => Some(JwtSecret::new(s.as_bytes()).map_err(|_| {
                anyhow!(
                    "jwt_secret must be at least {} bytes long (or unset to generate one)",
                    JwtSecret::MIN_BYTES
                )
            })?),
        };
        let blobs = crate::blobs::location(&raw.blob_dir, &storage);
        if raw.job_poll_ms == 0 {
            bail!("job_poll_ms must be above 0");
        }
        let mut automation = automation::runtime::RuntimeConfig {
            concurrency: raw.workers,
            ..Default::default()
        };
        automation.worker.poll_interval = Duration::from_millis(raw.job_poll_ms);
        let rate_limit_counters = match (raw.rate_limit_counters, &storage) {
            (CountersSetting::Store, _) | (CountersSetting::Auto, StorageUri::Mongo(_)) => {
                RateLimitCounters::Store
            }
            (CountersSetting::Process, _) | (CountersSetting::Auto, _) => {
                RateLimitCounters::Process
            }
        };
        let encryption_key = encryption_key(&raw.encryption_key, &storage)?;
        Ok(Self {
            listen,
            storage,
            log: raw.log,
            log_format: raw.log_format,
            migrate_on_start: raw.migrate_on_start,
            api: ApiConfig {
                body_limit: raw.body_limit_bytes,
                request_timeout: Duration::from_secs(raw.request_timeout_secs),
                auth: AuthConfig {
                    jwt_secret,
                    require_email_verification: raw
                        .require_email_verification
                        .unwrap_or(raw.mail_transport.delivers()),
                    access_token_ttl: Duration::from_secs(raw.access_token_ttl_secs),
                    refresh_token_ttl: Duration::from_secs(raw.refresh_token_ttl_secs),
                },
                rate_limit: RateLimitConfig {
                    enabled: raw.rate_limit_enabled,
                    per_credential: Limit::new(
                        raw.rate_limit_per_credential,
                        raw.rate_limit_window_secs,
                    ),
                    per_workspace: Limit::new(
                        raw.rate_limit_per_workspace,
                        raw.rate_limit_window_secs,
                    ),
                    auth: Limit::new(raw.rate_limit_auth, raw.rate_limit_auth_window_secs),
                    trust_forwarded_for: raw.rate_limit_trust_forwarded_for,
                },
                rate_limit_counters,
                member_cache_ttl: Duration::from_secs(raw.member_cache_ttl_secs),
                idempotency: IdempotencyConfig {
                    max_response_bytes: raw.idempotency_max_response_bytes,
                },
                encryption_key,
                ..ApiConfig::default()
            },
            connect_timeout: Duration::from_secs(raw.connect_timeout_secs),
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_secs),
            blobs,
            automation,
        })
    }
}

/// The credentials' key. Unset on MongoDB (shared, long-lived data) it is still the public
/// development key, so existing deployments start, but the log says so at every start.
fn encryption_key(
    raw: &str,
    storage: &StorageUri,
) -> anyhow::Result<integrations::crypto::MasterKey> {
    let key = integrations::crypto::MasterKey::from_setting(raw, false)
        .map_err(|e| anyhow!("invalid CLIANTA_ENCRYPTION_KEY: {e}"))?;
    if raw.trim().is_empty() && matches!(storage, StorageUri::Mongo(_)) {
        tracing::warn!(
            "CLIANTA_ENCRYPTION_KEY is not set: integration credentials are sealed with the public \
             development key; set a 32-byte key before storing real credentials"
        );
    }
    Ok(key)
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures must return figment::Error"
)]
mod tests {
    use figment::Jail;

    use super::*;

    fn load() -> Result<Config, figment::Error> {
        Config::load(None).map_err(|e| format!("{e:#}").into())
    }

    #[test]
    fn defaults() {
        Jail::expect_with(|_| {
            let c = load()?;
            assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(c.storage, StorageUri::Sqlite(DEFAULT_SQLITE_PATH.into()));
            assert_eq!(c.log, "info");
            assert_eq!(c.log_format, LogFormat::Text);
            assert!(c.migrate_on_start);
            // The embedded store is one process's: its rate-limit counters stay in process.
            assert_eq!(
                c.api,
                ApiConfig {
                    rate_limit_counters: RateLimitCounters::Process,
                    ..ApiConfig::default()
                }
            );
            Ok(())
        });
    }

    #[test]
    fn the_encryption_key_is_read_and_checked() {
        Jail::expect_with(|jail| {
            let dev = integrations::crypto::MasterKey::dev_default();
            assert_eq!(load()?.api.encryption_key, dev);
            jail.set_env("CLIANTA_ENCRYPTION_KEY", "ab".repeat(32));
            assert_ne!(load()?.api.encryption_key, dev);
            jail.set_env("CLIANTA_STORAGE_URI", "mongodb://127.0.0.1:1/clianta");
            assert_ne!(load()?.api.encryption_key, dev);
            jail.set_env("CLIANTA_ENCRYPTION_KEY", "too-short");
            assert!(load().is_err());
            Ok(())
        });
    }

    #[test]
    fn background_job_settings() {
        Jail::expect_with(|jail| {
            let c = load()?;
            assert_eq!(c.automation.concurrency, 4);
            assert_eq!(
                c.automation.worker.poll_interval,
                Duration::from_millis(500)
            );
            jail.set_env("CLIANTA_WORKERS", "0");
            jail.set_env("CLIANTA_JOB_POLL_MS", "50");
            let c = load()?;
            assert_eq!(c.automation.concurrency, 0);
            assert_eq!(c.automation.worker.poll_interval, Duration::from_millis(50));
            jail.set_env("CLIANTA_JOB_POLL_MS", "0");
            assert!(load().is_err());
            jail.set_env("CLIANTA_JOB_POLL_MS", "10");
            jail.set_env("CLIANTA_WORKERS", "-1");
            assert!(load().is_err());
            Ok(())
        });
    }

    #[test]
    fn env_overrides_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "clianta.toml",
                r#"
                listen = "0.0.0.0:9000"
                storage_uri = "memory:"
                log = "debug"
                log_format = "json"
                migrate_on_start = false
                "#,
            )?;
            let c = load()?;
            assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
            assert_eq!(c.storage, StorageUri::Memory);
            assert_eq!(c.log_format, LogFormat::Json);
            assert!(!c.migrate_on_start);

            jail.set_env("CLIANTA_LISTEN", "127.0.0.1:7000");
            jail.set_env("CLIANTA_STORAGE_URI", "sqlite:/tmp/x.db");
            jail.set_env("CLIANTA_MIGRATE_ON_START", "true");
            jail.set_env("CLIANTA_LOG", "warn,clianta_api=debug");
            jail.set_env("CLIANTA_REQUEST_TIMEOUT_SECS", "5");
            jail.set_env("CLIANTA_RATE_LIMIT_ENABLED", "false");
            jail.set_env("CLIANTA_RATE_LIMIT_AUTH", "5");
            let c = load()?;
            assert!(!c.api.rate_limit.enabled);
            assert_eq!(c.api.rate_limit.auth, Limit::new(5, 900));
            assert_eq!(c.listen, "127.0.0.1:7000".parse().unwrap());
            assert_eq!(c.storage, StorageUri::Sqlite("/tmp/x.db".into()));
            assert!(c.migrate_on_start);
            assert_eq!(c.log, "warn,clianta_api=debug");
            assert_eq!(c.log_format, LogFormat::Json, "still from the file");
            assert_eq!(c.api.request_timeout, Duration::from_secs(5));

            jail.set_env("CLIANTA_STORAGE_URI", "mongodb://db:27017/clianta");
            let c = load()?;
            assert_eq!(c.api.rate_limit_counters, RateLimitCounters::Store);
            jail.set_env("CLIANTA_RATE_LIMIT_COUNTERS", "process");
            jail.set_env("CLIANTA_MEMBER_CACHE_TTL_SECS", "0");
            let c = load()?;
            assert_eq!(c.api.rate_limit_counters, RateLimitCounters::Process);
            assert_eq!(c.api.member_cache_ttl, Duration::ZERO);
            Ok(())
        });
    }

    #[test]
    fn config_file_from_env_and_unrelated_env_is_ignored() {
        Jail::expect_with(|jail| {
            jail.create_file("clianta.toml", "listen = \"127.0.0.1:1111\"")?;
            jail.create_file("other.toml", "listen = \"127.0.0.1:2222\"")?;
            jail.set_env("CLIANTA_CONFIG", "other.toml");
            jail.set_env("CLIANTA_TEST_MONGODB_URI", "mongodb://x");
            assert_eq!(load()?.listen.port(), 2222);

            jail.set_env("CLIANTA_CONFIG", "missing.toml");
            let err = load().unwrap_err().to_string();
            assert!(err.contains("missing.toml does not exist"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file("clianta.toml", "lisen = \"127.0.0.1:1\"")?;
            assert!(load().unwrap_err().to_string().contains("lisen"));

            jail.create_file("clianta.toml", "")?;
            jail.set_env("CLIANTA_MIGRATE_ON_START", "sometimes");
            assert!(load().is_err());
            jail.set_env("CLIANTA_MIGRATE_ON_START", "false");

            jail.set_env("CLIANTA_LISTEN", "localhost");
            assert!(load().unwrap_err().to_string().contains("listen address"));
            jail.set_env("CLIANTA_LISTEN", "127.0.0.1:0");

            jail.set_env("CLIANTA_LOG_FORMAT", "xml");
            assert!(load().is_err());
            jail.set_env("CLIANTA_LOG_FORMAT", "json");

            // Only the log transport exists yet.
            jail.set_env("CLIANTA_MAIL_TRANSPORT", "smtp");
            assert!(load().unwrap_err().to_string().contains("smtp"));
            jail.set_env("CLIANTA_MAIL_TRANSPORT", "log");

            jail.set_env("CLIANTA_LOG", "info,=[");
            assert!(load().unwrap_err().to_string().contains("log filter"));
            jail.set_env("CLIANTA_LOG", "info");
            assert!(load().is_ok());
            Ok(())
        });
    }

    #[test]
    fn empty_storage_uri_means_the_embedded_default() {
        Jail::expect_with(|jail| {
            jail.set_env("CLIANTA_STORAGE_URI", "");
            assert_eq!(
                load()?.storage,
                StorageUri::Sqlite(DEFAULT_SQLITE_PATH.into())
            );
            Ok(())
        });
    }

    #[test]
    fn auth_settings() {
        Jail::expect_with(|jail| {
            let c = load()?;
            assert_eq!(c.api.auth, AuthConfig::default());
            assert!(c.api.auth.jwt_secret.is_none());
            assert!(!c.api.auth.require_email_verification);
            assert_eq!(c.api.auth.access_token_ttl, Duration::from_secs(900));

            let secret = "x".repeat(40);
            jail.set_env("CLIANTA_JWT_SECRET", &secret);
            jail.set_env("CLIANTA_REQUIRE_EMAIL_VERIFICATION", "true");
            jail.set_env("CLIANTA_ACCESS_TOKEN_TTL_SECS", "60");
            let c = load()?;
            assert_eq!(
                c.api.auth.jwt_secret,
                Some(JwtSecret::new(secret.as_bytes()).unwrap())
            );
            assert!(c.api.auth.require_email_verification);
            assert_eq!(c.api.auth.access_token_ttl, Duration::from_secs(60));
            assert!(!format!("{c:?}").contains(&secret), "secret not printed");

            jail.set_env("CLIANTA_JWT_SECRET", "hunter2");
            let err = load().unwrap_err().to_string();
            assert!(err.contains("at least 32 bytes"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");

            jail.set_env("CLIANTA_JWT_SECRET", "");
            jail.set_env("CLIANTA_REFRESH_TOKEN_TTL_SECS", "0");
            assert!(load().is_err());
            Ok(())
        });
    }

    #[test]
    fn storage_uri_variants() {
        let ok = |s: &str| s.parse::<StorageUri>().unwrap();
        assert_eq!(ok(""), StorageUri::Sqlite(DEFAULT_SQLITE_PATH.into()));
        assert_eq!(ok("  "), StorageUri::Sqlite(DEFAULT_SQLITE_PATH.into()));
        assert_eq!(
            ok("sqlite:data/a.db"),
            StorageUri::Sqlite("data/a.db".into())
        );
        assert_eq!(
            ok("sqlite:///var/lib/a.db"),
            StorageUri::Sqlite("/var/lib/a.db".into())
        );
        assert_eq!(ok("sqlite::memory:"), StorageUri::SqliteInMemory);
        assert_eq!(ok("memory:"), StorageUri::Memory);
        assert_eq!(
            ok("mongodb://db:27017/crm"),
            StorageUri::Mongo("mongodb://db:27017/crm".into())
        );
        assert_eq!(
            ok("mongodb+srv://u:p@cluster.example.net/crm"),
            StorageUri::Mongo("mongodb+srv://u:p@cluster.example.net/crm".into())
        );
    }

    #[test]
    fn bad_storage_uris_are_errors_without_secrets() {
        for (uri, expect) in [
            (
                "postgres://u:hunter2@h/db",
                "unsupported storage URI scheme `postgres:`",
            ),
            ("hunter2", "no scheme"),
            ("sqlite:", "needs a path"),
            ("mongodb://", "has no host"),
            ("mongodb://u:hunter2@/x", "has no host"),
        ] {
            let err = uri.parse::<StorageUri>().unwrap_err().to_string();
            assert!(err.contains(expect), "{uri}: {err}");
            assert!(!err.contains("hunter2"), "{uri}: {err}");
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("mongodb://admin:s3cret@db1:27017,db2:27017/crm?replicaSet=rs0"),
            "mongodb://admin:***@db1:27017,db2:27017/crm?replicaSet=rs0"
        );
        assert_eq!(
            redact("mongodb://admin:p/a@ss@db/crm"),
            "mongodb://admin:***@db/crm"
        );
        assert_eq!(redact("mongodb://user@db/crm"), "mongodb://user@db/crm");
        assert_eq!(redact("mongodb://db:27017"), "mongodb://db:27017");
        assert_eq!(
            redact(
                "mongodb+srv://c.example.net/?authMechanismProperties=AWS_SESSION_TOKEN:abc&w=1"
            ),
            "mongodb+srv://c.example.net/?authMechanismProperties=***&w=1"
        );
        let shown = StorageUri::Mongo("mongodb://a:s3cret@h/db".into());
        assert!(!format!("{shown} {shown:?}").contains("s3cret"));
        assert_eq!(uri_password("mongodb://a:s3cret@h/db"), Some("s3cret"));
        assert_eq!(uri_password("mongodb://a@h/db"), None);
    }
}
