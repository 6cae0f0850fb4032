//! The differential harness: the SQLite adapter (in memory and on a file) against the reference
//! memory adapter, on random documents, filters, sorts, aggregations and writes.

use std::sync::Arc;

use crm_core::{ObjectId, Storage};
use storage_contract::differential_check;
use storage_memory::MemoryStore;
use storage_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_like_the_reference() {
    let dir = std::env::temp_dir().join(format!("storage-sqlite-diff-{}", ObjectId::new()));
    let stores = [
        ("memory", Storage::new(Arc::new(MemoryStore::new()))),
        (
            "sqlite-memory",
            Storage::new(Arc::new(SqliteStore::open_in_memory().unwrap())),
        ),
        (
            "sqlite-file",
            Storage::new(Arc::new(SqliteStore::open(&dir.join("diff.db")).unwrap())),
        ),
    ];
    let report = differential_check(&stores, 64).await;
    assert!(report.partial_finds >= 5, "{report:?}");
    assert!(report.effective_writes >= 15, "{report:?}");
    drop(stores);
    std::fs::remove_dir_all(&dir).unwrap();
}
