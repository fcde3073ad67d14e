//! Object storage: a local directory by default, any S3-compatible store by
//! configuration. Content is addressed by its SHA-256, so identical uploads
//! are stored once.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};
use std::sync::Arc;

/// Part size of streamed writes (S3's minimum). At most two parts are in
/// flight, so an upload holds about 15 MiB whatever the file's size.
const PART_BYTES: usize = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The directory behind a `file://` store: object_store writes files
    /// without fsync, so durability is added here. (S3 is durable on ack.)
    local_root: Option<std::path::PathBuf>,
}

pub fn blob(sha256: &str) -> Path {
    Path::from(format!("blobs/{}/{sha256}", &sha256[..2.min(sha256.len())]))
}

pub fn derived(sha256: &str, name: &str) -> Path {
    Path::from(format!("derived/{sha256}/{name}"))
}

pub fn temporary(id: uuid::Uuid) -> Path {
    Path::from(format!("tmp/{id}"))
}

impl Storage {
    /// `file://<dir>` (relative paths allowed) or `s3://bucket[/prefix]`.
    pub fn from_url(url: &str) -> anyhow::Result<Storage> {
        let mut local_root = None;
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .map_err(|err| anyhow::anyhow!("media.storage_url: cannot create {dir}: {err}"))?;
            local_root = Some(std::fs::canonicalize(dir)?);
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?)
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            }
        } else {
            anyhow::bail!("media.storage_url must start with file:// or s3://, got {url:?}");
        };
        Ok(Storage { store, local_root })
    }

    pub async fn writer(&self, path: &Path) -> object_store::Result<Writer> {
        let upload = self.store.put_multipart(path).await?;
        Ok(Writer {
            inner: WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
        })
    }

    pub async fn put(&self, path: &Path, bytes: Vec<u8>) -> object_store::Result<()> {
        self.store.put(path, bytes.into()).await.map(|_| ())
    }

    pub async fn read_all(&self, path: &Path) -> object_store::Result<Bytes> {
        self.store.get(path).await?.bytes().await
    }

    /// Moves a finished upload to its content address. Overwriting an
    /// existing blob is harmless: the content is the same.
    pub async fn promote(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.store.rename(from, to).await
    }

    /// Makes an object and its name survive a power loss (fsync of the file
    /// and of its directory) before the upload is acknowledged.
    pub async fn make_durable(&self, path: &Path) -> object_store::Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let file = root.join(path.as_ref());
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&file)?.sync_all()?;
            if let Some(dir) = file.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|err| std::io::Error::other(err.to_string()))
        .and_then(|synced| synced)
        .map_err(|source| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(source),
        })
    }

    pub async fn delete(&self, path: &Path) -> object_store::Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    pub async fn size(&self, path: &Path) -> object_store::Result<u64> {
        Ok(self.store.head(path).await?.size)
    }

    /// The bytes `start..end` of an object, as a stream.
    pub async fn read_range(
        &self,
        path: &Path,
        start: u64,
        end: u64,
    ) -> object_store::Result<impl Stream<Item = object_store::Result<Bytes>> + use<>> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(path, options).await?;
        Ok(result.into_stream().map_err(|err| err))
    }
}

/// A streamed write: parts go out while later bytes are still arriving.
pub struct Writer {
    inner: WriteMultipart,
}

impl Writer {
    /// Takes the chunk without copying it (it becomes part of a part).
    pub async fn write(&mut self, bytes: Bytes) -> object_store::Result<()> {
        self.inner.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.inner.put(bytes);
        Ok(())
    }

    pub async fn finish(self) -> object_store::Result<()> {
        self.inner.finish().await.map(|_| ())
    }

    /// Drops everything written: nothing is left in storage.
    pub async fn abort(self) {
        if let Err(err) = self.inner.abort().await {
            tracing::warn!(%err, "could not abort a partial upload");
        }
    }
}

/// Splits a byte stream into pieces of at most `max` bytes.
pub fn rechunk(
    stream: impl Stream<Item = object_store::Result<Bytes>>,
    max: usize,
) -> impl Stream<Item = object_store::Result<Bytes>> {
    stream
        .map_ok(move |mut bytes| {
            let mut pieces = Vec::new();
            while bytes.len() > max {
                pieces.push(Ok(bytes.split_to(max)));
            }
            if !bytes.is_empty() {
                pieces.push(Ok(bytes));
            }
            futures::stream::iter(pieces)
        })
        .try_flatten()
}
