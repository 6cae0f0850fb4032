//! Fixed-window request counters kept in the store, so every server process sharing the store
//! shares the limits. One atomic upsert with `$inc` per hit; a TTL index drops old windows.

use crate::engine::Document;
use crate::error::{Error, Result};
use crate::query::{Filter, FindOptions, Update};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::store::{DocumentStore, Tenant};
use crate::time::Timestamp;

pub static RATE_LIMIT_BUCKET: EntityDef = EntityDef {
    name: "RateLimitBucket",
    collection: "ratelimitbuckets",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[
        f("bucket", Text).required(),
        f("window", Number).required(),
        f("count", Number).required(),
        f("expiresAt", Date).required(),
    ],
    unique: &[UniqueKey {
        name: "bucket_window",
        fields: &["bucket", "window"],
    }],
    indexes: &[IndexDef::ttl(&[("expiresAt", Asc)], 0)],
    text: &[],
};

/// The entities this module declares, for schema creation.
pub fn entities() -> Vec<&'static EntityDef> {
    vec![&RATE_LIMIT_BUCKET]
}

/// At most `max` hits per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window_secs: u64,
}

impl Limit {
    pub const fn new(max: u64, window_secs: u64) -> Self {
        Self { max, window_secs }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u64 },
    Limited { retry_after_secs: u64 },
}

/// The window containing `now`: its number and its end.
fn window_of(limit: Limit, now: Timestamp) -> Result<(i64, Timestamp)> {
    let window_ms = i64::try_from(limit.window_secs.max(1))
        .map_err(|_| Error::internal("rate-limit window too long"))?
        .saturating_mul(1000);
    let window = now.millis().div_euclid(window_ms);
    Ok((
        window,
        Timestamp::from_millis((window + 1).saturating_mul(window_ms)),
    ))
}

fn key(bucket: &str, window: i64) -> Filter {
    Filter::eq("bucket", bucket).and(Filter::eq("window", window))
}

fn count_of(doc: &Document) -> u64 {
    doc.get("count")
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|x| x as u64)))
        .unwrap_or(u64::MAX)
}

fn decide(count: u64, max: u64, now: Timestamp, window_end: Timestamp) -> Decision {
    if count <= max {
        return Decision::Allowed {
            remaining: max - count,
        };
    }
    let left_ms = (window_end.millis() - now.millis()).max(0);
    Decision::Limited {
        retry_after_secs: u64::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1),
    }
}

/// Counts one hit on `bucket` in the window containing `now` and says whether it is allowed.
pub async fn hit(
    store: &dyn DocumentStore,
    bucket: &str,
    limit: Limit,
    now: Timestamp,
) -> Result<Decision> {
    let (window, window_end) = window_of(limit, now)?;
    let filter = key(bucket, window);
    let update = Update::new()
        .inc("count", 1)
        .set_on_insert("expiresAt", window_end.to_canonical());
    let doc = match store
        .find_one_and_update(Tenant::Global, &RATE_LIMIT_BUCKET, &filter, &update, true)
        .await
    {
        // Lost an upsert race on a store that inserts after a missed update: the row exists now.
        Err(Error::Conflict { .. }) => {
            store
                .find_one_and_update(Tenant::Global, &RATE_LIMIT_BUCKET, &filter, &update, true)
                .await?
        }
        r => r?,
    }
    .ok_or_else(|| Error::internal("the rate-limit upsert returned nothing"))?;
    Ok(decide(count_of(&doc), limit.max, now, window_end))
}

/// Whether one more hit would be allowed, without counting it.
pub async fn peek(
    store: &dyn DocumentStore,
    bucket: &str,
    limit: Limit,
    now: Timestamp,
) -> Result<Decision> {
    let (window, window_end) = window_of(limit, now)?;
    let one = FindOptions {
        limit: Some(1),
        ..FindOptions::default()
    };
    let count = store
        .find(
            Tenant::Global,
            &RATE_LIMIT_BUCKET,
            &key(bucket, window),
            &one,
        )
        .await?
        .first()
        .map_or(0, count_of);
    Ok(decide(count.saturating_add(1), limit.max, now, window_end))
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
}
