//! Where attachment bytes live: the local-disk `BlobStore` (`<dir>/<workspaceId>/<key>`) and the
//! choice of directory from the configuration (ADR 0013).

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use crm_core::blob::{BlobStore, MemoryBlobStore};
use crm_core::{Error, ObjectId, Result, WorkspaceId};

use crate::config::StorageUri;

/// Where blobs go when `blob_dir` is not set and the store has no directory of its own.
pub const DEFAULT_BLOB_DIR: &str = "./data/blobs";

/// Prefix of files being written; never a key (keys are 24 hex digits).
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// Throwaway stores keep their blobs in memory too.
    Memory,
    Dir(PathBuf),
}

/// `blob_dir` when set; else `blobs` next to the SQLite file, memory for the throwaway stores,
/// and [`DEFAULT_BLOB_DIR`] for MongoDB.
pub fn location(blob_dir: &str, storage: &StorageUri) -> BlobLocation {
    let dir = blob_dir.trim();
    if !dir.is_empty() {
        return BlobLocation::Dir(dir.into());
    }
    match storage {
        StorageUri::Sqlite(db) => BlobLocation::Dir(
            db.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("blobs"),
        ),
        StorageUri::Mongo(_) => BlobLocation::Dir(DEFAULT_BLOB_DIR.into()),
        StorageUri::SqliteInMemory | StorageUri::Memory => BlobLocation::Memory,
    }
}

/// The store for `loc`; a directory is created now, so a bad path stops the start-up.
pub fn open(loc: &BlobLocation) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match loc {
        BlobLocation::Memory => Arc::new(MemoryBlobStore::new()),
        BlobLocation::Dir(dir) => Arc::new(DiskBlobStore::open(dir)?),
    })
}

/// Blobs as files. A write goes to a temporary file that is synced and then renamed over the
/// final name, so a reader (or a crash) never sees half a file; temporaries left by a crash are
/// removed at the next start.
#[derive(Debug)]
pub struct DiskBlobStore {
    root: PathBuf,
}

fn io(e: std::io::Error) -> Error {
    Error::Unavailable(format!("blob store: {e}"))
}

/// Runs file I/O off the async workers; a missing file is `NotFound`.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::NotFound,
            _ => io(e),
        })
}

impl DiskBlobStore {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the blob directory {}", root.display()))?;
        remove_temporaries(root)
            .with_context(|| format!("cannot tidy the blob directory {}", root.display()))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    fn dir(&self, ws: WorkspaceId) -> PathBuf {
        self.root.join(ws.to_string())
    }
}

fn remove_temporaries(root: &Path) -> std::io::Result<()> {
    for ws in std::fs::read_dir(root)? {
        let ws = ws?;
        if !ws.file_type()?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(ws.path())? {
            let f = f?;
            if f.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                std::fs::remove_file(f.path())?;
            }
        }
    }
    Ok(())
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{TEMP_PREFIX}{name}-{}", ObjectId::new()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[async_trait]
impl BlobStore for DiskBlobStore {
    async fn put(&self, ws: WorkspaceId, key: ObjectId, bytes: Vec<u8>) -> Result<()> {
        let dir = self.dir(ws);
        blocking(move || write_atomically(&dir, &key.to_hex(), &bytes)).await
    }

    async fn get(&self, ws: WorkspaceId, key: ObjectId) -> Result<Vec<u8>> {
        let path = self.dir(ws).join(key.to_hex());
        blocking(move || std::fs::read(path)).await
    }

    async fn delete(&self, ws: WorkspaceId, key: ObjectId) -> Result<()> {
        let path = self.dir(ws).join(key.to_hex());
        match blocking(move || std::fs::remove_file(path)).await {
            Err(Error::NotFound) => Ok(()),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disk_store_keeps_the_contract_and_lays_out_files_by_workspace() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let s = DiskBlobStore::open(tmp.path())?;
        crm_core::blob::check_contract(&s).await?;

        let (ws, key) = (WorkspaceId::new(), ObjectId::new());
        s.put(ws, key, b"bytes".to_vec()).await?;
        let file = tmp.path().join(ws.to_string()).join(key.to_hex());
        assert_eq!(std::fs::read(&file)?, b"bytes");
        let names: Vec<_> = std::fs::read_dir(file.parent().unwrap_or(tmp.path()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        assert_eq!(names.len(), 1, "no temporary left: {names:?}");
        Ok(())
    }

    #[test]
    fn a_crash_leaves_no_half_file_and_temporaries_go_at_start() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join(WorkspaceId::new().to_string());
        std::fs::create_dir_all(&dir)?;
        let half = dir.join(format!("{TEMP_PREFIX}abc-1"));
        std::fs::write(&half, b"hal")?;
        std::fs::write(dir.join("kept"), b"whole")?;
        DiskBlobStore::open(tmp.path())?;
        assert!(!half.exists());
        assert_eq!(std::fs::read(dir.join("kept"))?, b"whole");
        Ok(())
    }

    #[test]
    fn location_follows_the_store() {
        let sqlite = StorageUri::Sqlite("/var/lib/clianta/clianta.db".into());
        assert_eq!(
            location("", &sqlite),
            BlobLocation::Dir("/var/lib/clianta/blobs".into())
        );
        assert_eq!(
            location("", &StorageUri::Sqlite("clianta.db".into())),
            BlobLocation::Dir("./blobs".into())
        );
        assert_eq!(
            location(" /srv/files ", &sqlite),
            BlobLocation::Dir("/srv/files".into())
        );
        assert_eq!(
            location("", &StorageUri::Mongo("mongodb://db/x".into())),
            BlobLocation::Dir(DEFAULT_BLOB_DIR.into())
        );
        assert_eq!(location("", &StorageUri::Memory), BlobLocation::Memory);
        assert_eq!(
            location("", &StorageUri::SqliteInMemory),
            BlobLocation::Memory
        );
    }
}
