//! The contract suite must stay cheap enough for the MongoDB test server (~800 operations/s).

mod common;

use std::sync::atomic::Ordering;

use common::Wrapped;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_contract_suite_stays_within_its_operation_budget() {
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
    // The tenancy cases and the schema case cost a few operations per declared entity, and the
    // domain crates keep declaring more; the rest of the suite has a fixed budget.
    let entities = storage_contract::thing::all_defs().len();
    let budget = 1000 + 30 * entities as u64;
    println!(
        "{total:5} in all, {} cases, {entities} entities, budget {budget}",
        per_case.len()
    );
    assert!(per_case.len() >= 43);
    assert!(total <= budget, "the suite makes {total} operations");
}
