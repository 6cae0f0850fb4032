//! The all-tenant admin path `doctor` and the cut-over migrations read through (ADR 0025): raw
//! pages of a collection in `_id` order, converted as every read is, and index management.
// Like `raw::update_all_tenants`, these are deliberate cross-tenant calls; they are reached only
// through `StoreAdmin::legacy`, never from a request, so the raw collection methods are allowed.
#![allow(clippy::disallowed_methods)]

use async_trait::async_trait;
use crm_core::migrations::{IndexInfo, LegacyAdmin};
use crm_core::{Document as JsonDoc, EntityDef, Error, Result};
use futures::TryStreamExt;
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use serde_json::Value;

use crate::MongoStore;
use crate::convert::{from_bson, from_document};
use crate::errors::{self, Ctx};

/// Documents per cursor batch: memory stays one batch.
const BATCH: u32 = 1_000;

/// MongoDB's NamespaceNotFound: the collection does not exist (yet).
const NAMESPACE_NOT_FOUND: i32 = 26;

fn err(e: mongodb::error::Error) -> Error {
    errors::map(e, Ctx::default())
}

fn is_missing(e: &mongodb::error::Error) -> bool {
    matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == NAMESPACE_NOT_FOUND)
}

/// An `_id` as read back (24 hex digits were an ObjectId) to compare with stored ones.
fn id_bson(v: &Value) -> Bson {
    match v {
        Value::String(s) => ObjectId::parse_str(s)
            .map(Bson::ObjectId)
            .unwrap_or_else(|_| Bson::String(s.clone())),
        Value::Number(n) => crate::convert::number(n),
        other => Bson::String(other.to_string()),
    }
}

fn to_json_value(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Bson::Int32(i),
            None => crate::convert::number(n),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(to_json_value).collect()),
        Value::Object(m) => Bson::Document(
            m.iter()
                .map(|(k, x)| (k.clone(), to_json_value(x)))
                .collect(),
        ),
    }
}

fn info(m: IndexModel) -> IndexInfo {
    let opts = m.options.unwrap_or_default();
    IndexInfo {
        name: opts.name.unwrap_or_default(),
        keys: m.keys.into_iter().map(|(k, v)| (k, from_bson(v))).collect(),
        unique: opts.unique.unwrap_or(false),
        sparse: opts.sparse.unwrap_or(false),
        partial: opts
            .partial_filter_expression
            .map(|p| Value::Object(from_document(p))),
    }
}

#[async_trait]
impl LegacyAdmin for MongoStore {
    async fn collections(&self) -> Result<Vec<String>> {
        self.db.db.list_collection_names().await.map_err(err)
    }

    async fn scan_page(
        &self,
        collection: &str,
        _def: Option<&'static EntityDef>,
        after: Option<&Value>,
        limit: usize,
    ) -> Result<Vec<JsonDoc>> {
        let filter = match after {
            Some(a) => doc! { "_id": { "$gt": id_bson(a) } },
            None => doc! {},
        };
        let docs: Vec<Document> = self
            .db
            .db
            .collection::<Document>(collection)
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(err)?
            .try_collect()
            .await
            .map_err(err)?;
        Ok(docs.into_iter().map(from_document).collect())
    }

    async fn scan(
        &self,
        collection: &str,
        _def: Option<&'static EntityDef>,
        visit: &mut (dyn FnMut(JsonDoc) + Send),
    ) -> Result<u64> {
        let mut cursor = self
            .db
            .db
            .collection::<Document>(collection)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .batch_size(BATCH)
            .await
            .map_err(err)?;
        let mut n = 0;
        while let Some(d) = cursor.try_next().await.map_err(err)? {
            n += 1;
            visit(from_document(d));
        }
        Ok(n)
    }

    async fn indexes(&self, collection: &str) -> Result<Option<Vec<IndexInfo>>> {
        let coll = self.db.db.collection::<Document>(collection);
        let cursor = match coll.list_indexes().await {
            Ok(c) => c,
            Err(e) if is_missing(&e) => return Ok(Some(Vec::new())),
            Err(e) => return Err(err(e)),
        };
        let models: Vec<IndexModel> = cursor.try_collect().await.map_err(err)?;
        Ok(Some(
            models
                .into_iter()
                .map(info)
                .filter(|i| i.name != "_id_")
                .collect(),
        ))
    }

    async fn drop_index(&self, collection: &str, name: &str) -> Result<()> {
        self.db
            .db
            .collection::<Document>(collection)
            .drop_index(name)
            .await
            .map_err(err)
    }

    async fn create_index(&self, collection: &str, index: &IndexInfo) -> Result<()> {
        let keys: Document = index
            .keys
            .iter()
            .map(|(k, v)| (k.clone(), to_json_value(v)))
            .collect();
        let mut opts = IndexOptions::builder()
            .name(index.name.clone())
            .unique(index.unique)
            .build();
        if index.sparse {
            opts.sparse = Some(true);
        }
        if let Some(Bson::Document(p)) = index.partial.as_ref().map(to_json_value) {
            opts.partial_filter_expression = Some(p);
        }
        self.db
            .db
            .collection::<Document>(collection)
            .create_index(IndexModel::builder().keys(keys).options(opts).build())
            .await
            .map_err(err)?;
        Ok(())
    }

    fn documents(&self) -> &dyn crm_core::DocumentStore {
        self
    }
}
