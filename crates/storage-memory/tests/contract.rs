//! The storage contract, run on the memory adapter.

storage_contract::contract_tests!(async {
    crm_core::Storage::new(std::sync::Arc::new(storage_memory::MemoryStore::new()))
});
