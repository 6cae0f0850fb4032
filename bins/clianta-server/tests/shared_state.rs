//! The store-kept request state (rate-limit windows, idempotency records) on the embedded SQLite
//! store the server uses by default: upserts count, unique keys refuse a second owner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crm_core::services::idempotency::{self, Begin, StoredResponse};
use crm_core::services::ratelimit::{self, Decision, Limit};
use crm_core::{StoreAdmin, Timestamp};
use storage_sqlite::SqliteStore;

async fn store() -> SqliteStore {
    let s = SqliteStore::open_in_memory().unwrap();
    let mut defs = ratelimit::entities();
    defs.extend(idempotency::entities());
    s.ensure_schema(&defs).await.unwrap();
    s
}

#[tokio::test]
async fn rate_limit_windows_count_on_sqlite() {
    let s = store().await;
    let now = Timestamp::parse("2026-01-02T03:04:05.000Z").unwrap();
    let limit = Limit::new(2, 60);
    for left in [1, 0] {
        let d = ratelimit::hit(&s, "user:a", limit, now).await.unwrap();
        assert_eq!(d, Decision::Allowed { remaining: left });
    }
    let d = ratelimit::hit(&s, "user:a", limit, now).await.unwrap();
    assert_eq!(
        d,
        Decision::Limited {
            retry_after_secs: 55
        }
    );
    assert_eq!(
        ratelimit::peek(&s, "user:a", limit, now).await.unwrap(),
        Decision::Limited {
            retry_after_secs: 55
        }
    );
    assert!(matches!(
        ratelimit::hit(&s, "user:b", limit, now).await.unwrap(),
        Decision::Allowed { .. }
    ));
    let next = Timestamp::from_millis(now.millis() + 55_000);
    assert!(matches!(
        ratelimit::hit(&s, "user:a", limit, next).await.unwrap(),
        Decision::Allowed { .. }
    ));
}

#[tokio::test]
async fn idempotency_records_have_one_owner_on_sqlite() {
    let s = store().await;
    let now = Timestamp::parse("2026-01-02T03:04:05.000Z").unwrap();
    assert_eq!(
        idempotency::begin(&s, "sc", "fp", now, 30).await.unwrap(),
        Begin::Started
    );
    assert_eq!(
        idempotency::begin(&s, "sc", "fp", now, 30).await.unwrap(),
        Begin::InFlight
    );
    assert_eq!(
        idempotency::begin(&s, "sc", "other", now, 30)
            .await
            .unwrap(),
        Begin::Mismatch
    );
    let answer = StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body: "{\"ok\":true}".into(),
    };
    idempotency::complete(&s, "sc", &answer).await.unwrap();
    assert_eq!(
        idempotency::begin(&s, "sc", "fp", now, 30).await.unwrap(),
        Begin::Replay(answer)
    );
    let tomorrow = Timestamp::from_millis(now.millis() + 86_400_001);
    assert_eq!(
        idempotency::begin(&s, "sc", "fp", tomorrow, 30)
            .await
            .unwrap(),
        Begin::Started
    );
}
