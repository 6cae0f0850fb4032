//! The blob port: file bytes kept outside the document store (attachments). Every call names the
//! workspace, and adapters keep each workspace's blobs apart, so a key of workspace B is
//! unreachable through workspace A even when the key is known. Keys are ids, never caller text,
//! so they cannot name a path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::id::{ObjectId, WorkspaceId};

#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `(ws, key)`, replacing any earlier blob. A reader sees the old blob
    /// or the new one, never a part.
    async fn put(&self, ws: WorkspaceId, key: ObjectId, bytes: Vec<u8>) -> Result<()>;
    /// The blob, or `NotFound` (also for another workspace's key).
    async fn get(&self, ws: WorkspaceId, key: ObjectId) -> Result<Vec<u8>>;
    /// Removes the blob; a missing one is not an error, so a retried delete succeeds.
    async fn delete(&self, ws: WorkspaceId, key: ObjectId) -> Result<()>;
}

type Blobs = HashMap<(WorkspaceId, ObjectId), Arc<[u8]>>;

/// Blobs in process memory: tests and throwaway stores.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<Blobs>,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many blobs are held (tests check that nothing is left behind).
    pub fn len(&self) -> usize {
        self.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Blobs>> {
        self.blobs
            .lock()
            .map_err(|_| Error::internal("blob store lock poisoned"))
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, ws: WorkspaceId, key: ObjectId, bytes: Vec<u8>) -> Result<()> {
        self.lock()?.insert((ws, key), bytes.into());
        Ok(())
    }

    async fn get(&self, ws: WorkspaceId, key: ObjectId) -> Result<Vec<u8>> {
        self.lock()?
            .get(&(ws, key))
            .map(|b| b.to_vec())
            .ok_or(Error::NotFound)
    }

    async fn delete(&self, ws: WorkspaceId, key: ObjectId) -> Result<()> {
        self.lock()?.remove(&(ws, key));
        Ok(())
    }
}

/// The behaviour every adapter must show; adapters' tests call it.
pub async fn check_contract(store: &dyn BlobStore) -> Result<()> {
    let (a, b) = (WorkspaceId::new(), WorkspaceId::new());
    let key = ObjectId::new();
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    store.put(a, key, bytes.clone()).await?;
    assert_eq!(store.get(a, key).await?, bytes);
    assert_eq!(
        store.get(b, key).await,
        Err(Error::NotFound),
        "other workspace"
    );
    store.delete(b, key).await?;
    assert_eq!(
        store.get(a, key).await?,
        bytes,
        "a delete in B left A alone"
    );
    store.put(a, key, b"second".to_vec()).await?;
    assert_eq!(store.get(a, key).await?, b"second");
    store.put(a, key, Vec::new()).await?;
    assert_eq!(store.get(a, key).await?, Vec::<u8>::new());
    store.delete(a, key).await?;
    assert_eq!(store.get(a, key).await, Err(Error::NotFound));
    store.delete(a, key).await?;
    assert_eq!(
        store.get(a, ObjectId::new()).await,
        Err(Error::NotFound),
        "never written"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_keeps_the_contract() -> Result<()> {
        let s = MemoryBlobStore::new();
        check_contract(&s).await?;
        assert!(s.is_empty());
        Ok(())
    }
}
