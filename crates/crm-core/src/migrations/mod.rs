//! Serving a database the original wrote (issue 7, ADR 0025): which stored documents do not fit
//! the typed model (and why, by field), the raw all-tenant port that `doctor` and the cut-over
//! migrations read through, and those migrations' logic.

pub mod contact_email;
pub mod deals;
pub mod doctor;
pub mod fit;

use async_trait::async_trait;
use serde_json::Value;

use crate::engine::Document;
use crate::error::Result;
use crate::schema::EntityDef;
use crate::store::DocumentStore;

pub use fit::{Unfit, check_document, decode_reporting};

/// An index as the store reports it: keys in order with 1 / -1 (or "text").
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub name: String,
    pub keys: Vec<(String, Value)>,
    pub unique: bool,
    pub sparse: bool,
    pub partial: Option<Value>,
}

impl IndexInfo {
    /// `{workspaceId: 1, email: 1}`, for reports.
    pub fn key_text(&self) -> String {
        key_text(&self.keys)
    }
}

pub fn key_text(keys: &[(String, Value)]) -> String {
    let inner: Vec<String> = keys.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Maintenance over every tenant of a database that another program (the original) may have
/// written: raw reads by collection name, and index management. Only admin tools and migrations
/// reach it, through [`crate::store::StoreAdmin::legacy`]; never a request handler.
#[async_trait]
pub trait LegacyAdmin: Send + Sync {
    /// The collections (tables) that exist.
    async fn collections(&self) -> Result<Vec<String>>;
    /// Up to `limit` documents of `collection`, every tenant, in `_id` order after `after` (an
    /// `_id` as read). Documents read as the adapter reads any document (`def` gives the kinds
    /// where the adapter needs them), so a check over them sees what the server would see.
    async fn scan_page(
        &self,
        collection: &str,
        def: Option<&'static EntityDef>,
        after: Option<&Value>,
        limit: usize,
    ) -> Result<Vec<Document>>;
    /// Visits every document of `collection` in `_id` order, holding one page at a time.
    /// MongoDB overrides it with one cursor (pages by `_id` cost a seek each).
    async fn scan(
        &self,
        collection: &str,
        def: Option<&'static EntityDef>,
        visit: &mut (dyn FnMut(Document) + Send),
    ) -> Result<u64> {
        let mut n = 0;
        let mut after: Option<Value> = None;
        loop {
            let page = self
                .scan_page(collection, def, after.as_ref(), doctor::PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.get(crate::schema::ID_FIELD).cloned();
            let full = page.len() == doctor::PAGE;
            for d in page {
                n += 1;
                visit(d);
            }
            if !full {
                break;
            }
        }
        Ok(n)
    }
    /// The indexes of a collection; `None` where the store's indexes are its own (SQLite) and so
    /// cannot differ from the declarations in the original's way.
    async fn indexes(&self, collection: &str) -> Result<Option<Vec<IndexInfo>>>;
    async fn drop_index(&self, collection: &str, name: &str) -> Result<()>;
    /// Creates an index exactly as described (used to put the original's index back on `down`).
    async fn create_index(&self, collection: &str, index: &IndexInfo) -> Result<()>;
    /// The same store's tenant-checked port, for migrations that write records (each write
    /// names its workspace, as every write does).
    fn documents(&self) -> &dyn DocumentStore;
}
