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

/// Everything stored for one content: its derived files (cleaned image,
/// thumbnails), then the blob itself.
pub fn content_paths(sha256: &str) -> [Path; 4] {
    [
        derived(sha256, "clean"),
        derived(sha256, "thumb-64"),
        derived(sha256, "thumb-320"),
        blob(sha256),
    ]
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
        if let Some(root) = &self.local_root {
            let path = root.join(path.as_ref());
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await.map_err(local_error)?;
            }
            let file = tokio::fs::File::create(&path).await.map_err(local_error)?;
            return Ok(Writer::Local(LocalWriter {
                file,
                path,
                written: 0,
                flushed: 0,
                syncing: None,
            }));
        }
        let upload = self.store.put_multipart(path).await?;
        Ok(Writer::Remote(WriteMultipart::new_with_chunk_size(
            upload, PART_BYTES,
        )))
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
        .map_err(local_error)
    }

    pub async fn delete(&self, path: &Path) -> object_store::Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Every stored object (for backups).
    pub fn list(
        &self,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.store.list(None)
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

/// A streamed write: bytes go out while later bytes are still arriving.
pub enum Writer {
    /// S3 and the like: parts upload while later bytes arrive.
    Remote(WriteMultipart),
    /// A local file, written as chunks arrive and synced in the background
    /// every few MiB, so the final fsync has little left to wait for.
    Local(LocalWriter),
}

pub struct LocalWriter {
    file: tokio::fs::File,
    path: std::path::PathBuf,
    written: u64,
    flushed: u64,
    /// A background fdatasync of what was written so far: the disk works
    /// while later chunks arrive.
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Bytes written before the disk is asked to start writing them back.
const WRITEBACK_BYTES: u64 = 4 * 1024 * 1024;

impl Writer {
    /// Takes the chunk without copying it (S3: it becomes part of a part).
    pub async fn write(&mut self, bytes: Bytes) -> object_store::Result<()> {
        match self {
            Writer::Remote(inner) => {
                inner.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                inner.put(bytes);
                Ok(())
            }
            Writer::Local(local) => local.write(&bytes).await.map_err(local_error),
        }
    }

    pub async fn finish(self) -> object_store::Result<()> {
        match self {
            Writer::Remote(inner) => inner.finish().await.map(|_| ()),
            Writer::Local(local) => local.finish().await.map_err(local_error),
        }
    }

    /// Drops everything written: nothing is left in storage.
    pub async fn abort(self) {
        let outcome = match self {
            Writer::Remote(inner) => inner.abort().await,
            Writer::Local(local) => {
                if let Some(syncing) = local.syncing {
                    syncing.abort();
                }
                drop(local.file);
                tokio::fs::remove_file(&local.path)
                    .await
                    .map_err(local_error)
            }
        };
        if let Err(err) = outcome {
            tracing::warn!(%err, "could not abort a partial upload");
        }
    }
}

impl LocalWriter {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(bytes).await?;
        self.written += bytes.len() as u64;
        let idle = self.syncing.as_ref().is_none_or(|sync| sync.is_finished());
        if idle && self.written - self.flushed >= WRITEBACK_BYTES {
            if let Some(done) = self.syncing.take() {
                done.await.map_err(std::io::Error::other)??;
            }
            // Everything handed to the file so far must be in the kernel
            // before it is synced.
            self.file.flush().await?;
            let handle = self.file.try_clone().await?;
            self.syncing = Some(tokio::spawn(async move { handle.sync_data().await }));
            self.flushed = self.written;
        }
        Ok(())
    }

    async fn finish(mut self) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        if let Some(done) = self.syncing.take() {
            done.await.map_err(std::io::Error::other)??;
        }
        self.file.sync_all().await
    }
}

fn local_error(source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(source),
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
