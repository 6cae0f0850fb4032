//! Refresh-token sessions (`sessions`). A token is 32 random bytes given to the client once; only
//! its SHA-256 is stored. Every refresh revokes the presented token and issues a successor in the
//! same family; presenting a revoked token again means it was stolen (or replayed), so the whole
//! family is revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::id::{ObjectId, UserId};
use crate::query::{Filter, Update};
use crate::repo::{Entity, GlobalEntity, Repo, Stores};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

pub static SESSION: EntityDef = EntityDef {
    name: "Session",
    collection: "sessions",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("familyId", Id).required(),
        f("tokenHash", Text).required(),
        f("expiresAt", Date).required(),
        f("revokedAt", Date),
        f("replacedBy", Id),
        f("reusedAt", Date),
    ],
    unique: &[UniqueKey {
        name: "tokenHash",
        fields: &["tokenHash"],
    }],
    indexes: &[
        // Expired sessions are dropped by the store where it supports TTL (MongoDB); elsewhere
        // they are only refused.
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
        IndexDef::on(&[("familyId", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: UserId,
    /// The first session of a login; every rotation keeps it.
    pub family_id: ObjectId,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<ObjectId>,
    /// Set when a revoked token came back; the winner of a concurrent refresh checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Session {
    const DEF: &'static EntityDef = &SESSION;
}
impl GlobalEntity for Session {}

/// What the client keeps: shown once, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRefresh {
    pub token: String,
    pub expires_at: Timestamp,
    pub session_id: ObjectId,
    pub family_id: ObjectId,
}

/// Why a refresh token was refused. Clients get the same answer for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejected {
    Unknown,
    Expired,
    /// A revoked token came back; its family is now revoked.
    Reused,
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Refresh-token sessions over the global store.
#[derive(Debug, Clone)]
pub struct Sessions {
    stores: Stores,
    ttl_secs: i64,
}

impl Sessions {
    pub fn new(stores: Stores, ttl_secs: i64) -> Self {
        Self { stores, ttl_secs }
    }

    fn repo(&self) -> Repo<Session> {
        self.stores.global::<Session>()
    }

    fn now(&self) -> Timestamp {
        self.stores.clock().now()
    }

    async fn issue(&self, user: UserId, family: Option<ObjectId>) -> Result<IssuedRefresh> {
        let token = new_token();
        let id = ObjectId::new();
        let family_id = family.unwrap_or(id);
        let expires_at = self.now().plus_seconds(self.ttl_secs);
        self.repo()
            .insert(&Session {
                id,
                user_id: user,
                family_id,
                token_hash: token_hash(&token),
                expires_at,
                revoked_at: None,
                replaced_by: None,
                reused_at: None,
                created_at: None,
                updated_at: None,
            })
            .await?;
        Ok(IssuedRefresh {
            token,
            expires_at,
            session_id: id,
            family_id,
        })
    }

    /// A new family, at login or registration.
    pub async fn start(&self, user: UserId) -> Result<IssuedRefresh> {
        self.issue(user, None).await
    }

    /// Revokes `token` and issues its successor. The revocation is one atomic conditional write,
    /// so of two concurrent refreshes with the same token only one wins; the other counts as reuse.
    pub async fn rotate(
        &self,
        token: &str,
    ) -> Result<std::result::Result<(UserId, IssuedRefresh), RefreshRejected>> {
        let hash = token_hash(token);
        let now = self.now();
        let claimed = self
            .repo()
            .find_one_and_update(
                &Filter::eq("tokenHash", hash.clone()).and(Filter::eq("revokedAt", Value::Null)),
                &Update::new().set("revokedAt", now.to_canonical()),
                false,
            )
            .await?;
        let Some(old) = claimed else {
            let found = self
                .repo()
                .find(&Filter::eq("tokenHash", hash), &Default::default())
                .await?;
            return match found.into_iter().next() {
                None => Ok(Err(RefreshRejected::Unknown)),
                Some(s) => {
                    // Mark before revoking: a concurrent winner that inserted its successor after
                    // our family revocation started reads this mark and revokes it itself.
                    self.repo()
                        .update(s.id, &Update::new().set("reusedAt", now.to_canonical()))
                        .await?;
                    self.revoke_family(s.family_id).await?;
                    Ok(Err(RefreshRejected::Reused))
                }
            };
        };
        if old.expires_at <= now {
            return Ok(Err(RefreshRejected::Expired));
        }
        let next = self.issue(old.user_id, Some(old.family_id)).await?;
        // Either we see a loser's reuse mark here, or its family revocation ran after our insert
        // and already covers the successor: no live token survives a detected reuse.
        if self.repo().get(old.id).await?.reused_at.is_some() {
            self.revoke_family(old.family_id).await?;
            return Ok(Err(RefreshRejected::Reused));
        }
        // Only for auditing the chain; a failure here must not lose the new token.
        let _ = self
            .repo()
            .update(
                old.id,
                &Update::new().set("replacedBy", next.session_id.to_hex()),
            )
            .await;
        Ok(Ok((old.user_id, next)))
    }

    /// Revokes every live session of a family.
    pub async fn revoke_family(&self, family: ObjectId) -> Result<u64> {
        self.repo()
            .update_many(
                &Filter::eq("familyId", family.to_hex()).and(Filter::eq("revokedAt", Value::Null)),
                &Update::new().set("revokedAt", self.now().to_canonical()),
            )
            .await
    }

    /// Logout: revokes the token's family. Unknown tokens are not an error (logout is idempotent).
    /// Returns the user the token belonged to.
    pub async fn revoke(&self, token: &str) -> Result<Option<UserId>> {
        let found = self
            .repo()
            .find(
                &Filter::eq("tokenHash", token_hash(token)),
                &Default::default(),
            )
            .await?;
        match found.into_iter().next() {
            None => Ok(None),
            Some(s) => {
                self.revoke_family(s.family_id).await?;
                Ok(Some(s.user_id))
            }
        }
    }

    /// Every session of a user, e.g. after a password change.
    pub async fn revoke_user(&self, user: UserId) -> Result<u64> {
        self.repo()
            .update_many(
                &Filter::eq("userId", user.to_string()).and(Filter::eq("revokedAt", Value::Null)),
                &Update::new().set("revokedAt", self.now().to_canonical()),
            )
            .await
    }
}
