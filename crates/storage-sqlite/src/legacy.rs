//! The all-tenant admin path `doctor` reads through (ADR 0025). The SQLite file is only ever
//! written by this server, so its indexes are its own: only documents are checked here.

use async_trait::async_trait;
use crm_core::migrations::{IndexInfo, LegacyAdmin};
use crm_core::{Document, EntityDef, Error, Result};
use rusqlite::params;
use serde_json::Value;

use crate::sql::quote_ident;
use crate::{SqliteStore, map_err, parse_doc, scan};

#[async_trait]
impl LegacyAdmin for SqliteStore {
    async fn collections(&self) -> Result<Vec<String>> {
        scan(|| {
            self.inner.read(|c| {
                let mut st = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .map_err(map_err)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(map_err)
            })
        })
    }

    async fn scan_page(
        &self,
        collection: &str,
        _def: Option<&'static EntityDef>,
        after: Option<&Value>,
        limit: usize,
    ) -> Result<Vec<Document>> {
        let after = match after {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        let sql = format!(
            "SELECT doc FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
            quote_ident(collection)
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let texts: Vec<String> = scan(|| {
            self.inner.read(|c| {
                let mut st = c.prepare(&sql).map_err(map_err)?;
                let rows = st
                    .query_map(params![after, limit], |r| r.get(0))
                    .map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(map_err)
            })
        })?;
        texts.iter().map(|t| parse_doc(t)).collect()
    }

    async fn indexes(&self, _collection: &str) -> Result<Option<Vec<IndexInfo>>> {
        Ok(None)
    }

    async fn drop_index(&self, _collection: &str, _name: &str) -> Result<()> {
        Err(Error::internal("SQLite keeps its own indexes"))
    }

    async fn create_index(&self, _collection: &str, _index: &IndexInfo) -> Result<()> {
        Err(Error::internal("SQLite keeps its own indexes"))
    }

    fn documents(&self) -> &dyn crm_core::DocumentStore {
        self
    }
}
