//! `Idempotency-Key` records kept in the store, so a retry reaching another server process still
//! replays the first answer. A unique key on `scope` makes the first request the only owner; later
//! ones see its fingerprint, its in-flight marker or its stored answer.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::query::{Filter, FindOptions, Update};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::store::{DocumentStore, Tenant};
use crate::time::Timestamp;

pub static IDEMPOTENCY_RECORD: EntityDef = EntityDef {
    name: "IdempotencyRecord",
    collection: "idempotencyrecords",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[
        f("scope", Text).required(),
        f("fingerprint", Text).required(),
        f("state", Text).required(),
        f("status", Number),
        f("headers", Any),
        f("body", Text),
        f("expiresAt", Date).required(),
        f("lockedUntil", Date).required(),
    ],
    unique: &[UniqueKey {
        name: "scope",
        fields: &["scope"],
    }],
    indexes: &[IndexDef::ttl(&[("expiresAt", Asc)], 0)],
    text: &[],
};

/// The entities this module declares, for schema creation.
pub fn entities() -> Vec<&'static EntityDef> {
    vec![&IDEMPOTENCY_RECORD]
}

/// How long a first answer is replayed.
pub const RETENTION_SECS: i64 = 24 * 60 * 60;
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

const PENDING: &str = "pending";
const DONE: &str = "done";

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Checks a client key: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn check_key(key: &str) -> Result<()> {
    let ok =
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ))
    }
}

/// Whose key this is: the same client key from two credentials or on two routes never collides.
pub fn scope_of(credential: &str, key: &str, method: &str, path: &str) -> String {
    sha256_hex(&[
        credential.as_bytes(),
        key.as_bytes(),
        method.as_bytes(),
        path.as_bytes(),
    ])
}

/// What makes two requests "the same": the query string and the body bytes.
pub fn fingerprint(query: &str, body: &[u8]) -> String {
    sha256_hex(&[query.as_bytes(), body])
}

/// A first answer, as replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    /// The headers worth replaying (content type, location, etag), lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This request owns the key: run it, then [`complete`] or [`abandon`].
    Started,
    Replay(StoredResponse),
    /// The first request with this key has not answered yet.
    InFlight,
    /// The key was used with another request.
    Mismatch,
}

fn text<'a>(d: &'a serde_json::Map<String, Value>, k: &str) -> &'a str {
    d.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn by_scope(scope: &str) -> Filter {
    Filter::eq("scope", scope)
}

/// Claims `scope` for a request with `fingerprint`, or says what the first request left.
/// `lock_secs` bounds how long an in-flight marker blocks others if its owner dies.
pub async fn begin(
    store: &dyn DocumentStore,
    scope: &str,
    fingerprint: &str,
    now: Timestamp,
    lock_secs: i64,
) -> Result<Begin> {
    let def = &IDEMPOTENCY_RECORD;
    let locked_until = now.plus_seconds(lock_secs).to_canonical();
    // A few rounds cover a record expiring or being abandoned between our insert and read.
    for _ in 0..3 {
        let doc = json!({
            "scope": scope,
            "fingerprint": fingerprint,
            "state": PENDING,
            "expiresAt": now.plus_seconds(RETENTION_SECS).to_canonical(),
            "lockedUntil": locked_until,
        });
        let Value::Object(doc) = doc else {
            return Err(Error::internal("idempotency record is not an object"));
        };
        match store.insert(Tenant::Global, def, doc).await {
            Ok(_) => return Ok(Begin::Started),
            Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let one = FindOptions {
            limit: Some(1),
            ..FindOptions::default()
        };
        let Some(found) = store
            .find(Tenant::Global, def, &by_scope(scope), &one)
            .await?
            .into_iter()
            .next()
        else {
            continue;
        };
        let expires = Timestamp::parse(text(&found, "expiresAt"))?;
        if expires <= now {
            // Stores without TTL keep expired records; only this expired one is removed.
            let stale = by_scope(scope).and(Filter::eq("expiresAt", text(&found, "expiresAt")));
            store.delete_many(Tenant::Global, def, &stale).await?;
            continue;
        }
        if text(&found, "fingerprint") != fingerprint {
            return Ok(Begin::Mismatch);
        }
        if text(&found, "state") == DONE {
            let stored = StoredResponse {
                status: found
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or_else(|| Error::internal("idempotency record without status"))?,
                headers: serde_json::from_value(found.get("headers").cloned().unwrap_or_default())
                    .unwrap_or_default(),
                body: text(&found, "body").to_owned(),
            };
            return Ok(Begin::Replay(stored));
        }
        let held_until = text(&found, "lockedUntil");
        if Timestamp::parse(held_until)? > now {
            return Ok(Begin::InFlight);
        }
        // The owner died mid-request: take over, unless someone else just did.
        let take = by_scope(scope)
            .and(Filter::eq("state", PENDING))
            .and(Filter::eq("lockedUntil", held_until));
        let u = Update::new().set("lockedUntil", locked_until.clone());
        if store
            .find_one_and_update(Tenant::Global, def, &take, &u, false)
            .await?
            .is_some()
        {
            return Ok(Begin::Started);
        }
        return Ok(Begin::InFlight);
    }
    Ok(Begin::InFlight)
}

/// Stores the first answer for replay.
pub async fn complete(store: &dyn DocumentStore, scope: &str, res: &StoredResponse) -> Result<()> {
    let headers =
        serde_json::to_value(&res.headers).map_err(|e| Error::internal(format!("headers: {e}")))?;
    let u = Update::new()
        .set("state", DONE)
        .set("status", u64::from(res.status))
        .set("headers", headers)
        .set("body", res.body.clone());
    let owned = by_scope(scope).and(Filter::eq("state", PENDING));
    store
        .find_one_and_update(Tenant::Global, &IDEMPOTENCY_RECORD, &owned, &u, false)
        .await?;
    Ok(())
}

/// Frees the key so a retry runs again (server errors, answers too large to keep).
pub async fn abandon(store: &dyn DocumentStore, scope: &str) -> Result<()> {
    let owned = by_scope(scope).and(Filter::eq("state", PENDING));
    store
        .delete_many(Tenant::Global, &IDEMPOTENCY_RECORD, &owned)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_valid() {
        for d in entities() {
            d.validate().unwrap();
        }
    }

    #[test]
    fn scopes_and_fingerprints_separate_their_parts() {
        assert_ne!(
            scope_of("u", "k", "POST", "/a"),
            scope_of("u", "k", "POST", "/b")
        );
        assert_ne!(
            scope_of("u1", "k", "POST", "/a"),
            scope_of("u", "1k", "POST", "/a")
        );
        assert_ne!(fingerprint("", b"{}"), fingerprint("", b"{ }"));
        assert!(check_key("abc-123").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("a b").is_err());
        assert!(check_key(&"x".repeat(256)).is_err());
    }
}
