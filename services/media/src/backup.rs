//! `messenger-media objects export|import`: the media store as one tar
//! stream, for backups (docs/deployment.md, "Backup and restore"). It goes
//! through the service's own storage configuration (a directory, S3, MinIO),
//! so the same commands back up every store, with the media service's own
//! credentials, and restore into a new one.
//!
//! Export writes every stored object but the unfinished uploads (`tmp/`) to
//! standard output; import reads such a stream from standard input and
//! stores each object, refusing a blob whose content does not match the
//! SHA-256 it is named by (a damaged backup is found on restore, not when a
//! download fails months later).

use crate::settings::MediaSettings;
use crate::storage::Storage;
use futures::TryStreamExt;
use object_store::path::Path;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: messenger-media objects export >media.tar | import <media.tar";

/// Runs `objects export` or `objects import` (the words after `objects`).
pub fn main(args: &[String]) -> ExitCode {
    let export = match args.first().map(String::as_str) {
        Some("export") if args.len() == 1 => true,
        Some("import") if args.len() == 1 => false,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    messenger_platform::service::block_on_main(async move {
        let config = messenger_platform::service::load_config().await?;
        let settings: MediaSettings = config.section()?;
        let storage = Storage::from_url(&settings.storage_url)?;
        if export {
            let count = export_objects(&storage, std::io::stdout().lock()).await?;
            eprintln!("exported {count} objects");
        } else {
            let count = import_objects(&storage, std::io::stdin().lock()).await?;
            eprintln!("imported {count} objects");
        }
        Ok(())
    })
}

/// Writes every object but unfinished uploads to `out` as a tar stream;
/// returns how many.
pub async fn export_objects(storage: &Storage, out: impl Write) -> anyhow::Result<u64> {
    let mut paths: Vec<Path> = storage
        .list()
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?;
    paths.retain(|path| !path.as_ref().starts_with("tmp/"));
    paths.sort();
    let mut archive = tar::Builder::new(out);
    for path in &paths {
        let bytes = storage.read_all(path).await?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, path.as_ref(), bytes.as_ref())?;
    }
    archive.into_inner()?.flush()?;
    Ok(paths.len() as u64)
}

/// Stores every object of the tar stream `input`; returns how many.
pub async fn import_objects(storage: &Storage, input: impl Read) -> anyhow::Result<u64> {
    let mut archive = tar::Archive::new(input);
    let mut count = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let path = Path::parse(&name)
            .map_err(|err| anyhow::anyhow!("{name:?} is not an object name: {err}"))?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        check_blob(&path, &bytes)?;
        storage.put(&path, bytes).await?;
        count += 1;
    }
    Ok(count)
}

/// A blob (`blobs/xx/<sha256>`) must hash to its name.
fn check_blob(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut parts = path.parts();
    if parts.next().as_ref().map(|part| part.as_ref()) != Some("blobs") {
        return Ok(());
    }
    let Some(name) = parts.last() else {
        return Ok(());
    };
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != name.as_ref() {
        anyhow::bail!("{path}: the content's SHA-256 is {actual}: the backup is damaged");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Storage, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("media-backup-{}", uuid::Uuid::new_v4()));
        let storage = Storage::from_url(&format!("file://{}", dir.display())).expect("store");
        (storage, dir)
    }

    #[tokio::test]
    async fn a_store_survives_export_and_import_into_an_empty_one() {
        let (source, source_dir) = store();
        let content = b"a picture".to_vec();
        let sha = hex::encode(Sha256::digest(&content));
        source
            .put(&crate::storage::blob(&sha), content.clone())
            .await
            .expect("blob");
        source
            .put(
                &crate::storage::derived(&sha, "thumb-64"),
                b"thumb".to_vec(),
            )
            .await
            .expect("thumbnail");
        source
            .put(
                &crate::storage::temporary(uuid::Uuid::new_v4()),
                b"half".to_vec(),
            )
            .await
            .expect("unfinished upload");

        let mut stream = Vec::new();
        let exported = export_objects(&source, &mut stream).await.expect("export");
        assert_eq!(exported, 2, "unfinished uploads are not backed up");

        let (target, target_dir) = store();
        let imported = import_objects(&target, stream.as_slice())
            .await
            .expect("import");
        assert_eq!(imported, 2);
        let blob = target
            .read_all(&crate::storage::blob(&sha))
            .await
            .expect("blob back");
        assert_eq!(blob.as_ref(), content.as_slice());
        let thumb = target
            .read_all(&crate::storage::derived(&sha, "thumb-64"))
            .await
            .expect("thumbnail back");
        assert_eq!(thumb.as_ref(), b"thumb");
        let _ = std::fs::remove_dir_all(source_dir);
        let _ = std::fs::remove_dir_all(target_dir);
    }

    #[tokio::test]
    async fn a_damaged_blob_is_refused_on_import() {
        let sha = hex::encode(Sha256::digest(b"original"));
        let mut stream = Vec::new();
        {
            let mut archive = tar::Builder::new(&mut stream);
            let mut header = tar::Header::new_gnu();
            header.set_size(7);
            header.set_mode(0o644);
            header.set_cksum();
            let name = crate::storage::blob(&sha);
            archive
                .append_data(&mut header, name.as_ref(), b"altered".as_slice())
                .expect("entry");
            archive.finish().expect("finish");
        }
        let (target, target_dir) = store();
        let err = import_objects(&target, stream.as_slice())
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("damaged"), "{err}");
        let _ = std::fs::remove_dir_all(target_dir);
    }
}
