//! The storage contract, run on the SQLite adapter: in memory (one test per case) and on files.

use std::sync::Arc;

use crm_core::{ObjectId, Storage};
use storage_sqlite::SqliteStore;

storage_contract::contract_tests!(async {
    Storage::new(Arc::new(SqliteStore::open_in_memory().unwrap()))
});

/// Every case again on a fresh database file (WAL, reader pool, reopen-free), cleaned up after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_on_a_file_store() {
    let dir = std::env::temp_dir().join(format!("storage-sqlite-contract-{}", ObjectId::new()));
    for (i, (_name, case)) in storage_contract::all_cases().into_iter().enumerate() {
        let store = SqliteStore::open(&dir.join(format!("case-{i}.db"))).unwrap();
        case(Storage::new(Arc::new(store))).await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
