//! The contract's batch cases tell an atomic `write_batch` from the port's op-by-op default.

mod common;

use common::Wrapped;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_or_nothing_cases_fail_on_op_by_op_batches() {
    let cases: Vec<_> = storage_contract::all_cases()
        .into_iter()
        .filter(|(name, _)| {
            [
                "batch_that_fails_at_its_third_op_writes_nothing",
                "batch_mixes_global_and_workspace_tenants",
                "batch_never_reaches_another_workspace",
            ]
            .contains(name)
        })
        .collect();
    assert_eq!(cases.len(), 3);
    for (name, case) in cases {
        let partial = Wrapped {
            op_by_op_batches: true,
            ..Wrapped::default()
        };
        let run = tokio::spawn(case(partial.storage())).await;
        assert!(
            run.is_err_and(|e| e.is_panic()),
            "{name} passed on a store that keeps part of a failed batch"
        );
        // The same case passes on the store's own batches.
        case(Wrapped::default().storage()).await;
    }
}
