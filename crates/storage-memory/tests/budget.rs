//! The contract suite must stay cheap enough for the MongoDB test server (~800 operations/s).

mod common;

use std::sync::atomic::Ordering;

use common::Wrapped;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_contract_suite_makes_at_most_two_thousand_operations() {
    let mut total = 0;
    let mut per_case = Vec::new();
    for (name, case) in storage_contract::all_cases() {
        let store = Wrapped::default();
        let ops = store.ops.clone();
        case(store.storage()).await;
        let n = ops.load(Ordering::Relaxed);
        per_case.push((n, name));
        total += n;
    }
    per_case.sort_unstable();
    for (n, name) in &per_case {
        println!("{n:5} {name}");
    }
    println!("{total:5} in all, {} cases", per_case.len());
    assert!(per_case.len() >= 38);
    assert!(total <= 2000, "the suite makes {total} operations");
}
