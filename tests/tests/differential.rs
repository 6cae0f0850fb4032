//! The adapters agree: random documents, filters, sorts, pages, updates and aggregations give the
//! same answers on memory (the reference), SQLite and MongoDB.

#![allow(clippy::expect_used, reason = "test helpers")]

use std::sync::Arc;

use crm_core::{ObjectId, Storage};
use storage_contract::{DiffConfig, try_differential_check};
use storage_memory::MemoryStore;
use storage_mongo::MongoStore;
use storage_sqlite::SqliteStore;

fn memory() -> Storage {
    Storage::new(Arc::new(MemoryStore::new()))
}

fn sqlite() -> Storage {
    Storage::new(Arc::new(
        SqliteStore::open_in_memory().expect("sqlite in memory"),
    ))
}

fn mongo_uri() -> String {
    std::env::var("CLIANTA_TEST_MONGODB_URI")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_sqlite_agree_on_random_workloads() {
    let cfg = DiffConfig::new(200);
    let report = try_differential_check(&[("memory", memory()), ("sqlite", sqlite())], &cfg)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.runs >= 200, "{report:?}");
}

/// Bounded: the test MongoDB server does about 800 operations a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_sqlite_and_mongo_agree_on_random_workloads() {
    let uri = mongo_uri();
    let db = format!("clianta_diff_{}", ObjectId::new());
    let mongo = MongoStore::connect_db(&uri, &db).await.unwrap_or_else(|e| {
        panic!("the Mongo differential test needs a server at {uri} (scripts/mongo-test-server.sh start): {e}")
    });
    let mongo = Arc::new(mongo);
    let cfg = DiffConfig::new(16);
    let result = try_differential_check(
        &[
            ("memory", memory()),
            ("sqlite", sqlite()),
            ("mongo", Storage::new(mongo.clone())),
        ],
        &cfg,
    )
    .await;
    let _ = mongo.drop_database().await;
    let report = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.runs >= 16, "{report:?}");
}
