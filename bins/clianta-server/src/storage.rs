//! Opens the store a [`StorageUri`] names, turning failures into one readable sentence.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use crm_core::{Error, Storage};
use storage_memory::MemoryStore;
use storage_mongo::MongoStore;
use storage_sqlite::SqliteStore;

use crate::config::{StorageUri, uri_password};

pub async fn open(uri: &StorageUri, connect_timeout: Duration) -> anyhow::Result<Storage> {
    match uri {
        StorageUri::Memory => Ok(Storage::new(Arc::new(MemoryStore::new()))),
        StorageUri::SqliteInMemory => SqliteStore::open_in_memory()
            .map(|s| Storage::new(Arc::new(s)))
            .map_err(|e| anyhow!("cannot open an in-memory SQLite database: {e}")),
        StorageUri::Sqlite(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                SqliteStore::open(&path)
                    .map(|s| Storage::new(Arc::new(s)))
                    .map_err(|e| anyhow!("cannot open SQLite database at {}: {e}", path.display()))
            })
            .await
            .map_err(|e| anyhow!("opening the SQLite database failed: {e}"))?
        }
        StorageUri::Mongo(raw) => {
            let shown = uri.to_string();
            let connect = async {
                let store = MongoStore::connect(raw).await?;
                store_ping(&store).await?;
                Ok::<_, Error>(store)
            };
            let store = match tokio::time::timeout(connect_timeout, connect).await {
                Ok(Ok(store)) => store,
                Ok(Err(Error::Invalid { reason, .. })) => {
                    return Err(anyhow!(
                        "invalid MongoDB URI {shown}: {}",
                        scrub(&reason, raw)
                    ));
                }
                Ok(Err(Error::Unavailable(cause))) => {
                    return Err(anyhow!(
                        "cannot reach MongoDB at {shown}: {}",
                        scrub(&cause, raw)
                    ));
                }
                Ok(Err(e)) => {
                    return Err(anyhow!(
                        "cannot open MongoDB at {shown}: {}",
                        scrub(&e.to_string(), raw)
                    ));
                }
                Err(_) => {
                    return Err(anyhow!(
                        "cannot reach MongoDB at {shown}: no answer within {}s",
                        connect_timeout.as_secs()
                    ));
                }
            };
            Ok(Storage::new(Arc::new(store)))
        }
    }
}

async fn store_ping(store: &MongoStore) -> crm_core::Result<()> {
    crm_core::StoreAdmin::ping(store).await
}

/// Driver messages may quote the URI; never print its password.
fn scrub(msg: &str, uri: &str) -> String {
    match uri_password(uri) {
        Some(pw) => msg.replace(pw, "***"),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_opens_and_pings() {
        let s = open(&StorageUri::Memory, Duration::from_secs(1))
            .await
            .unwrap();
        s.admin.ping().await.unwrap();
        assert_eq!(s.admin.backend(), "memory");
    }

    #[tokio::test]
    async fn sqlite_creates_its_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/clianta.db");
        let s = open(&StorageUri::Sqlite(path.clone()), Duration::from_secs(5))
            .await
            .unwrap();
        s.admin.ping().await.unwrap();
        assert!(path.exists());
    }

    #[tokio::test]
    async fn unreachable_mongo_is_one_sentence_without_the_password() {
        let uri: StorageUri = "mongodb://u:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=300"
            .parse()
            .unwrap();
        let err = open(&uri, Duration::from_secs(10)).await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with("cannot reach MongoDB at mongodb://u:***@127.0.0.1:1/"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn scrub_masks_the_password() {
        assert_eq!(
            scrub("auth failed for u:pw1 at h", "mongodb://u:pw1@h/"),
            "auth failed for u:*** at h"
        );
    }
}
