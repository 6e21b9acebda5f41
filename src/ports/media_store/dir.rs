//! Media in a directory: written to a temporary name, synced, then renamed,
//! so a reader never sees half an object.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{MediaStore, MediaStoreError, Opened, valid_key};

pub struct DirMediaStore {
    root: PathBuf,
}

fn io(e: std::io::Error) -> MediaStoreError {
    if e.kind() == std::io::ErrorKind::NotFound { MediaStoreError::NotFound } else { MediaStoreError::Unavailable(e.into()) }
}

impl DirMediaStore {
    pub fn new(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, MediaStoreError> {
        if valid_key(key) { Ok(self.root.join(key)) } else { Err(MediaStoreError::NotFound) }
    }
}

#[async_trait]
impl MediaStore for DirMediaStore {
    fn kind(&self) -> &'static str {
        "directory"
    }

    async fn ping(&self) -> Result<(), MediaStoreError> {
        tokio::fs::metadata(&self.root).await.map(|_| ()).map_err(|e| MediaStoreError::Unavailable(e.into()))
    }

    async fn put_file(&self, key: &str, path: &Path, _content_type: &str) -> Result<(), MediaStoreError> {
        let target = self.path(key)?;
        let partial = self.root.join(format!(".{key}.partial"));
        tokio::fs::copy(path, &partial).await.map_err(io)?;
        tokio::fs::File::open(&partial).await.map_err(io)?.sync_all().await.map_err(io)?;
        tokio::fs::rename(&partial, &target).await.map_err(io)
    }

    async fn open(&self, key: &str, range: Option<(u64, u64)>) -> Result<Opened, MediaStoreError> {
        let mut file = tokio::fs::File::open(self.path(key)?).await.map_err(io)?;
        let total = file.metadata().await.map_err(io)?.len();
        let stream = match range {
            Some((start, end)) => {
                file.seek(SeekFrom::Start(start)).await.map_err(io)?;
                Box::pin(ReaderStream::new(file.take(end + 1 - start))) as super::ByteStream
            }
            None => Box::pin(ReaderStream::new(file)),
        };
        Ok(Opened { total, stream })
    }

    async fn size(&self, key: &str) -> Result<u64, MediaStoreError> {
        Ok(tokio::fs::metadata(self.path(key)?).await.map_err(io)?.len())
    }

    async fn delete(&self, key: &str) -> Result<(), MediaStoreError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}
