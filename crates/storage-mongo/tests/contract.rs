//! The shared storage contract and the differential test against the memory store, on the
//! MongoDB-wire server at `CLIANTA_TEST_MONGODB_URI` (default: the one
//! `scripts/mongo-test-server.sh start` runs). Each contract case gets its own database named
//! `clianta_contract_<random>`; the test server keeps them in memory only.
// Setup failures panic on purpose, with the reason.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crm_core::Storage;
use storage_mongo::MongoStore;

const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017/?directConnection=true";

async fn store(prefix: &str) -> MongoStore {
    let uri = std::env::var("CLIANTA_TEST_MONGODB_URI").unwrap_or_else(|_| DEFAULT_URI.to_owned());
    let name = format!("clianta_{prefix}_{:016x}", rand::random::<u64>());
    match MongoStore::connect_db(&uri, &name).await {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot reach the MongoDB test server at {uri}: {e}\n\
             Start one with `scripts/mongo-test-server.sh start`, or point \
             CLIANTA_TEST_MONGODB_URI at a MongoDB."
        ),
    }
}

storage_contract::contract_tests!(async { Storage::new(Arc::new(store("contract").await)) });

/// Random data, filters, sorts, writes and aggregations answer exactly as the reference engine.
#[tokio::test]
async fn differential_against_the_memory_store() {
    let mongo = store("diff").await;
    let memory = Storage::new(Arc::new(storage_memory::MemoryStore::new()));
    let report = storage_contract::differential_check(
        &[
            ("memory", memory),
            ("mongo", Storage::new(Arc::new(mongo.clone()))),
        ],
        48,
    )
    .await;
    mongo.drop_database().await.unwrap();
    assert!(
        report.partial_finds > 0 && report.effective_writes > 0,
        "{report:?}"
    );
}
