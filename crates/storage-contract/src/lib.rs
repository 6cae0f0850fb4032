//! The storage contract: one suite of cases every adapter of crm_core's ports must pass, and a
//! differential property test that holds several adapters to the same answers.
//!
//! An adapter's test file is one line:
//!
//! ```text
//! storage_contract::contract_tests!(async {
//!     crm_core::Storage::new(std::sync::Arc::new(storage_memory::MemoryStore::new()))
//! });
//! ```
//!
//! The expression is evaluated once per test and must yield an isolated store (the migrations
//! case changes every tenant's data); the calling crate needs `tokio` as a dev-dependency. Every
//! case calls `ensure_schema` for the entities it uses and works in fresh workspaces.

pub mod batch;
pub mod cases;
pub mod differential;
pub mod support;
pub mod thing;

pub use differential::{DiffConfig, DiffReport, differential_check, try_differential_check};
pub use thing::THING;

#[doc(hidden)]
pub use crm_core as __crm_core;

/// Expands to one `#[tokio::test]` per contract case, each given a fresh `Storage` from `$make`
/// (an expression of a future yielding `crm_core::Storage`).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::__with_case_names!(__contract_cases { $make });
    };
}

/// Calls `$crate::$callback!` with the given tokens, `;`, and every case name: the one list.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_case_names {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { $($args)* ;
            tenancy_reads_never_see_another_workspace_for_every_entity,
            tenancy_writes_never_touch_another_workspace_for_every_entity,
            tenancy_global_entities_need_global_tenant_and_scoped_need_a_workspace,
            unique_email_conflicts_within_one_workspace_but_not_across,
            unique_email_allows_many_contacts_without_one_absent_or_null,
            unique_conflict_on_update_changes_nothing,
            insert_many_with_a_duplicate_inserts_nothing,
            missing_ids_are_not_found_and_taken_ids_conflict,
            invalid_ids_and_foreign_tenant_values_are_refused,
            updates_of_id_and_tenant_field_are_refused,
            query_eq_matches_array_elements_and_null_matches_missing,
            query_ne_in_and_nin_treat_missing_as_null,
            query_ordered_comparisons_only_match_the_operand_type,
            query_exists_counts_null_as_present,
            query_contains_is_case_insensitive_and_never_a_pattern,
            query_all_requires_every_value_in_the_array,
            query_and_or_not_combine_and_nest,
            query_dotted_paths_reach_custom_fields_and_embedded_objects,
            query_text_search_needs_every_word_in_the_text_fields,
            sort_orders_nulls_first_ascending_and_last_descending,
            sort_by_several_keys_then_by_id,
            skip_and_limit_slice_the_sorted_results,
            update_set_creates_dotted_paths_and_unset_removes,
            update_inc_push_add_to_set_and_pull,
            update_set_on_insert_applies_only_when_an_upsert_inserts,
            update_many_counts_every_matched_record,
            find_one_and_update_takes_the_first_match_by_id,
            find_one_and_update_upsert_is_an_atomic_counter,
            delete_one_and_delete_many_remove_only_what_they_name,
            aggregate_groups_by_key_with_count_and_sums,
            offset_pages_report_page_limit_total_and_pages,
            cursor_pages_ascending_list_every_record_once_while_inserting,
            cursor_pages_descending_list_every_record_once_while_inserting,
            cursor_pages_on_two_keys_list_every_record_once_while_inserting,
            cursor_that_is_garbage_or_from_another_sort_is_invalid,
            migrations_up_down_and_up_again_change_data_and_status,
            typed_contact_repo_stamps_timestamps_end_to_end,
            admin_ping_backend_and_idempotent_schema,
            batch_applies_ops_in_order_and_returns_each_result,
            batch_that_fails_at_its_third_op_writes_nothing,
            batch_guards_are_checked_against_the_stored_record,
            batch_mixes_global_and_workspace_tenants,
            batch_never_reaches_another_workspace,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($make:expr ; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let storage: $crate::__crm_core::Storage = $make.await;
                $crate::cases::$case(storage).await;
            }
        )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_table {
    (; $($case:ident),+ $(,)?) => {
        vec![$(
            (
                stringify!($case),
                (|s| Box::pin($crate::cases::$case(s)) as CaseFuture) as CaseFn,
            )
        ),+]
    };
}

/// A running contract case.
pub type CaseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
/// A contract case: given a fresh store, panics when the adapter breaks the contract.
pub type CaseFn = fn(crm_core::Storage) -> CaseFuture;

/// Every case with its name, for callers that drive the suite themselves (e.g. to measure it).
pub fn all_cases() -> Vec<(&'static str, CaseFn)> {
    __with_case_names!(__case_table {})
}
