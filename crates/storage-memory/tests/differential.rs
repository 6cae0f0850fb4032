//! The differential harness, exercised on two memory stores (and on one that misbehaves, to show
//! it notices).

mod common;

use std::sync::Arc;

use common::Wrapped;
use crm_core::Storage;
use storage_contract::{DiffConfig, differential_check, try_differential_check};
use storage_memory::MemoryStore;

fn memory() -> Storage {
    Storage::new(Arc::new(MemoryStore::new()))
}

#[tokio::test]
async fn two_memory_stores_agree_and_the_generator_covers_the_language() {
    let r = differential_check(&[("memory-a", memory()), ("memory-b", memory())], 64).await;
    println!("{r:?}");
    assert!(r.runs >= 64, "{r:?}");
    // Floors far below what 40 random seeds gave (minimums 23, 27, 55, 3).
    assert!(
        r.partial_finds >= 5,
        "filters rarely select part of the records: {r:?}"
    );
    assert!(
        r.agreed_errors >= 5,
        "failing writes are rarely generated: {r:?}"
    );
    assert!(
        r.effective_writes >= 15,
        "writes rarely change anything: {r:?}"
    );
    assert!(
        r.multi_group_aggregates >= 1,
        "aggregations never group: {r:?}"
    );
}

#[tokio::test]
async fn a_fixed_seed_replays_the_same_run() {
    let cfg = DiffConfig::new(8).with_seed(42);
    let stores = || [("a", memory()), ("b", memory())];
    let first = try_differential_check(&stores(), &cfg).await.unwrap();
    let second = try_differential_check(&stores(), &cfg).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.seed, 42);
}

#[tokio::test]
async fn the_harness_reports_a_store_that_loses_records() {
    let lossy = Wrapped {
        drop_last: true,
        ..Wrapped::default()
    };
    let cfg = DiffConfig::new(64).with_seed(7);
    let err = try_differential_check(&[("memory", memory()), ("lossy", lossy.storage())], &cfg)
        .await
        .expect_err("a store that drops records must be caught");
    assert!(err.contains("seed 7"), "{err}");
    assert!(err.contains("lossy"), "{err}");
    assert!(err.contains("minimal case"), "{err}");
}

/// The MongoDB test server does about 800 operations a second; 16 differential cases must stay
/// a small share of a CI run.
#[tokio::test]
async fn sixteen_differential_cases_stay_within_a_mongo_budget() {
    let counted = Wrapped::default();
    let ops = counted.ops.clone();
    differential_check(&[("memory", memory()), ("counted", counted.storage())], 16).await;
    let n = ops.load(std::sync::atomic::Ordering::Relaxed);
    println!("16 differential cases: {n} operations on the counted store");
    assert!(n < 600, "{n} operations");
}

#[tokio::test]
async fn the_harness_reports_a_store_whose_batches_are_not_atomic() {
    let partial = Wrapped {
        op_by_op_batches: true,
        ..Wrapped::default()
    };
    let cfg = DiffConfig::new(128).with_seed(11);
    let err = try_differential_check(
        &[("memory", memory()), ("partial", partial.storage())],
        &cfg,
    )
    .await
    .expect_err("a store that keeps part of a failed batch must be caught");
    assert!(err.contains("Batch"), "{err}");
    assert!(err.contains("partial"), "{err}");
}
