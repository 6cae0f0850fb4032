//! Per-workspace API keys (ADR 0010). A key reads `clk_<workspace id>_<secret>`: the secret is 43
//! base62 characters (256 bits); the workspace id lets authentication look the key up inside its
//! own workspace, so no query ever crosses tenants. Only the SHA-256 of the key text is stored: a
//! key has full entropy, so a slow password hash would add latency and no strength.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

use crate::entities::api_key::{ApiKey, ApiKeyId, KeyRole};
use crate::entities::team_member::Role;
use crate::error::{Error, Result};
use crate::id::{UserId, WorkspaceId};
use crate::query::{Filter, FindOptions, Update};
use crate::repo::{Stores, WorkspaceScope};
use crate::services::tasks::text;
use crate::time::Timestamp;

pub const KEY_PREFIX: &str = "clk_";
const SECRET_LEN: usize = 43;
const WS_HEX_LEN: usize = 24;
/// Characters of the secret kept in `prefix`: enough to tell keys apart, far too few to guess
/// the rest.
const SHOWN_SECRET_CHARS: usize = 6;
/// `lastUsedAt` is written at most this often per key, not on every request.
pub const TOUCH_INTERVAL_SECONDS: i64 = 60;
const NAME_MAX: usize = 100;

/// A key as created: the record, and the key text the caller sees this once.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub record: ApiKey,
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub role: KeyRole,
    pub expires_at: Option<Timestamp>,
}

/// Whether a credential is meant as an API key (rather than an access token).
pub fn is_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
}

/// The workspace a well-formed key text names.
pub fn workspace_of(key: &str) -> Option<WorkspaceId> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (ws, secret) = (rest.get(..WS_HEX_LEN)?, rest.get(WS_HEX_LEN..)?);
    let secret = secret.strip_prefix('_')?;
    let well_formed =
        secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| ws.parse().ok()).flatten()
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn new_key(ws: WorkspaceId) -> String {
    let secret: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect();
    format!("{KEY_PREFIX}{ws}_{secret}")
}

/// The role a key's requests get: the weaker of the key's role and its creator's current one, so
/// a key never outranks the person who answers for it (nor survives their demotion).
pub fn effective_role(key: KeyRole, creator: Role) -> Role {
    // `Role` orders from owner (strongest) to viewer.
    Role::from(key).max(creator)
}

/// Creates a key for `scope` on behalf of `creator`, whose role must be at least the key's.
pub async fn create(
    scope: &WorkspaceScope,
    creator: UserId,
    creator_role: Role,
    new: NewApiKey,
    now: Timestamp,
) -> Result<IssuedKey> {
    let name = text("name", &new.name, NAME_MAX, true)?;
    if effective_role(new.role, creator_role) != Role::from(new.role) {
        return Err(Error::Forbidden(
            "a key cannot carry a role above its creator's".into(),
        ));
    }
    if new.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::invalid("expiresAt", "must be in the future"));
    }
    let key = new_key(scope.id());
    let prefix: String = key
        .chars()
        .take(KEY_PREFIX.len() + WS_HEX_LEN + 1 + SHOWN_SECRET_CHARS)
        .collect();
    let mut record = ApiKey::new(scope.id(), name, prefix, hash_key(&key), new.role, creator);
    record.expires_at = new.expires_at;
    let record = scope.repo::<ApiKey>().insert(&record).await?;
    Ok(IssuedKey { record, key })
}

/// The live key `key` names, looked up in the workspace its text carries; `None` when malformed,
/// unknown, revoked or expired. The lookup is by hash, so the secret is never compared in code.
pub async fn resolve(stores: &Stores, key: &str, now: Timestamp) -> Result<Option<ApiKey>> {
    let Some(ws) = workspace_of(key) else {
        return Ok(None);
    };
    let one = FindOptions {
        limit: Some(1),
        ..FindOptions::default()
    };
    let found = stores
        .workspace(ws)
        .repo::<ApiKey>()
        .find(&Filter::eq("keyHash", hash_key(key)), &one)
        .await?;
    Ok(found.into_iter().next().filter(|k| k.is_live(now)))
}

/// Records a use of `key`, at most once per [`TOUCH_INTERVAL_SECONDS`]: the record's own
/// `lastUsedAt` decides without a write, and the conditional update keeps concurrent requests
/// (and processes) from writing twice.
pub async fn touch(scope: &WorkspaceScope, key: &ApiKey, now: Timestamp) -> Result<()> {
    let cutoff = now.plus_seconds(-TOUCH_INTERVAL_SECONDS);
    if key.last_used_at.is_some_and(|t| t > cutoff) {
        return Ok(());
    }
    let stale = Filter::Or(vec![
        Filter::eq("lastUsedAt", serde_json::Value::Null),
        Filter::Lte("lastUsedAt".into(), cutoff.to_canonical().into()),
    ]);
    scope
        .repo::<ApiKey>()
        .update_many(
            &Filter::eq("_id", key.id.to_string()).and(stale),
            &Update::new().set("lastUsedAt", now.to_canonical()),
        )
        .await?;
    Ok(())
}

/// Revokes a key for good; revoking a revoked key changes nothing. `NotFound` for an id of
/// another workspace.
pub async fn revoke(
    scope: &WorkspaceScope,
    id: ApiKeyId,
    by: UserId,
    now: Timestamp,
) -> Result<ApiKey> {
    let repo = scope.repo::<ApiKey>();
    let live =
        Filter::eq("_id", id.to_string()).and(Filter::eq("revokedAt", serde_json::Value::Null));
    let update = Update::new()
        .set("revokedAt", now.to_canonical())
        .set("revokedBy", by.to_string());
    match repo.find_one_and_update(&live, &update, false).await? {
        Some(k) => Ok(k),
        None => repo.get(id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_workspace_and_carry_256_bits() {
        let ws = WorkspaceId::new();
        let k = new_key(ws);
        assert_eq!(k.len(), KEY_PREFIX.len() + WS_HEX_LEN + 1 + SECRET_LEN);
        assert_eq!(workspace_of(&k), Some(ws));
        assert!(is_key(&k));
        assert_ne!(new_key(ws), k);
        // 43 base62 characters hold at least 256 bits.
        assert!(SECRET_LEN as f64 * 62f64.log2() >= 256.0);
    }

    #[test]
    fn malformed_keys_name_no_workspace() {
        let ws = WorkspaceId::new();
        let k = new_key(ws);
        for bad in [
            "",
            "clk_",
            &k[..k.len() - 1],
            &format!("{k}x"),
            &k.replacen("clk_", "clx_", 1),
            &format!("clk_{}-{}", ws, "a".repeat(SECRET_LEN)),
            &format!("clk_{}_{}", ws, "-".repeat(SECRET_LEN)),
            &format!("clk_{}_{}", "z".repeat(WS_HEX_LEN), "a".repeat(SECRET_LEN)),
            &format!("clk_{}_{}é", ws, "a".repeat(SECRET_LEN - 2)),
        ] {
            assert_eq!(workspace_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_key_never_outranks_its_creator() {
        assert_eq!(effective_role(KeyRole::Admin, Role::Owner), Role::Admin);
        assert_eq!(effective_role(KeyRole::Viewer, Role::Owner), Role::Viewer);
        assert_eq!(effective_role(KeyRole::Admin, Role::Member), Role::Member);
        assert_eq!(effective_role(KeyRole::Member, Role::Viewer), Role::Viewer);
        assert_eq!(effective_role(KeyRole::Member, Role::Admin), Role::Member);
    }
}
