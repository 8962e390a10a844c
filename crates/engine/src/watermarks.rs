//! The watermark library (SPEC §API `/watermarks`, §Coordinator `start` step 4): images an
//! operator uploads once and streams name by `watermark.asset_id`; at a transcoder's start
//! the id becomes the file's path for FFmpeg's `movie` filter.
//!
//! # The directory is the library
//!
//! There is no table of assets in the store and no index in memory: every listing reads the
//! directory (`watermarks.dir`), so what lies there is what the library holds. A library
//! restored by copying files back, an asset removed by hand, or a new `watermarks.dir`
//! written through the config API (SPEC §Config "Hot apply": rescan) is seen by the next
//! request, with no cache to fall out of step. A library is tens of small images, so reading
//! it per request costs a few `stat`s.
//!
//! An asset is the image `<id>.<png|jpg|gif>` (the extension from the type its first bytes
//! say, never from the client's file name) plus a small JSON sidecar `<id>.json` holding what
//! the bytes cannot: the asset's `name`, the uploaded `file_name` and `uploaded_at`. The
//! sidecar is optional on read (an image copied in without one is listed under its file name
//! and modification time), so the image is the asset and the sidecar only describes it.
//!
//! Writes are atomic: an upload streams into a hidden temporary file (never listed), is
//! synced, its sidecar is written and renamed into place first, and the image is renamed
//! into place last, so a crash leaves either a complete asset or an unlisted leftover, never
//! a half image under an asset id. A delete removes the image first, so the asset disappears
//! at once. Ids are parsed ([`AssetId`]) before they are joined onto the directory: no
//! client value reaches a path.
//!
//! The directory must lie inside `security.storage_roots` (the VOD mounts' check,
//! [`crate::vod::prepare_storage`]). When it does not (a configured `storage_roots` that
//! leaves out the default `<data_dir>/watermarks`), the library is off: its routes answer 422
//! naming `watermarks.dir`, and a stream naming an asset starts without its watermark.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tributary_domain::config::ServerConfig;
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors};
use tributary_domain::watermark::{self, AssetId, ImageType, SNIFF_LEN, WatermarkAsset};

use crate::EngineHandle;

/// The largest image an upload may store (SPEC §Security "Body caps": 8 MiB).
pub const WATERMARK_IMAGE_CAP: u64 = 8 << 20;

/// The largest upload request (SPEC §Security "Body caps": 16 MiB), multipart framing and
/// other parts included.
pub const WATERMARK_REQUEST_CAP: usize = 16 << 20;

/// Why a library operation failed; each variant is one API status.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WatermarkError {
    /// No such asset (404), an id that is not one included.
    #[error("{0}")]
    NotFound(String),
    /// A bad `name`, or the library is off (its directory outside the storage roots): 422,
    /// the field named.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The upload is not a PNG, JPEG or GIF by its first bytes, or has no `file` part (415
    /// `INVALID_IMAGE` naming `file`).
    #[error("file: {0}")]
    NotImage(String),
    /// The image passed [`WATERMARK_IMAGE_CAP`] (413 `UPLOAD_TOO_LARGE` naming `file`).
    #[error("file: the image is larger than {} bytes (8 MiB)", WATERMARK_IMAGE_CAP)]
    TooLarge,
    /// The disk failed (500).
    #[error("{0}")]
    Io(String),
}

/// An asset's image opened for `GET /watermarks/{id}/raw`.
#[derive(Debug)]
pub struct WatermarkFile {
    /// The open file (never a symlink).
    pub file: tokio::fs::File,
    /// Its size in bytes.
    pub size: u64,
    /// Its `Content-Type`, from its first bytes.
    pub content_type: &'static str,
}

/// The library's directory, shared by the API and the transcoders; the config API replaces
/// it. Cheap to clone, every clone sees the same directory.
#[derive(Clone)]
pub(crate) struct Library(Arc<RwLock<Arc<Result<PathBuf, String>>>>);

impl Library {
    /// A library not opened yet (off until [`open`](Self::open)): building the services
    /// creates no directory.
    pub(crate) fn unopened() -> Self {
        Self(Arc::new(RwLock::new(Arc::new(Err(
            "the library is not open yet".to_owned(),
        )))))
    }

    /// Opens the library of `config` at start (`watermarks.dir`, default
    /// `<data_dir>/watermarks`): checked inside `roots` and created. A `watermarks.dir` that
    /// cannot be used stops start-up (the error names it); the default one left out by custom
    /// `storage_roots` only turns the library off (logged), so such a server still starts.
    pub(crate) fn open(
        &self,
        config: &ServerConfig,
        roots: &[PathBuf],
    ) -> Result<(), ValidationErrors> {
        match prepare(config, roots, true) {
            Ok(dir) => self.set(Ok(dir)),
            Err(e) if explicit(config) => return Err(e),
            Err(e) => self.set(Err(e.to_string())),
        }
        Ok(())
    }

    /// A library in `dir`, taken as it is (tests).
    #[cfg(test)]
    pub(crate) fn at(dir: PathBuf) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(Ok(dir)))))
    }

    /// The directory in force, or why the library is off.
    pub(crate) fn dir(&self) -> Result<PathBuf, WatermarkError> {
        let state = Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner));
        state.as_ref().clone().map_err(|e| off(&e))
    }

    /// Applies a configuration change of `watermarks.dir` or `security.storage_roots`: the
    /// new directory is checked inside the new roots and created (with `create`; a dry run
    /// only checks). A configured directory that cannot be used refuses the change; the
    /// default one turns the library off instead (logged). Returns what to install with
    /// [`set`](Self::set) once the change is stored.
    pub(crate) fn reconfigure(
        config: &ServerConfig,
        roots: &[PathBuf],
        create: bool,
    ) -> Result<Result<PathBuf, String>, ValidationErrors> {
        match prepare(config, roots, create) {
            Ok(dir) => Ok(Ok(dir)),
            Err(e) if explicit(config) => Err(e),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Installs what [`reconfigure`](Self::reconfigure) returned: the next request lists the
    /// new directory (SPEC §Config "Hot apply": rescan).
    pub(crate) fn set(&self, state: Result<PathBuf, String>) {
        match &state {
            Ok(dir) => tracing::info!(dir = %dir.display(), "watermark library directory"),
            Err(e) => tracing::warn!(error = %e, "the watermark library is off"),
        }
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
    }

    /// Every asset, newest first (ties by id). Blocking.
    pub(crate) fn list(&self) -> Result<Vec<WatermarkAsset>, WatermarkError> {
        let dir = self.dir()?;
        let read = std::fs::read_dir(&dir)
            .map_err(|e| WatermarkError::Io(format!("listing {}: {e}", dir.display())))?;
        let mut assets: Vec<(DateTime<Utc>, WatermarkAsset)> = read
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let (id, kind) = image_name(name.to_str()?)?;
                load(&dir, &id, kind)
            })
            .collect();
        assets.sort_by(|(a, x), (b, y)| b.cmp(a).then_with(|| x.id.cmp(&y.id)));
        Ok(assets.into_iter().map(|(_, asset)| asset).collect())
    }

    /// The asset `id` and its image's path. Blocking.
    pub(crate) fn asset(&self, id: &str) -> Result<(WatermarkAsset, PathBuf), WatermarkError> {
        let dir = self.dir()?;
        let missing = || WatermarkError::NotFound(format!("no watermark asset {id:?}"));
        let id = AssetId::parse(id).ok_or_else(missing)?;
        ImageType::ALL
            .into_iter()
            .find_map(|kind| {
                let (_, asset) = load(&dir, &id, kind)?;
                Some((asset, dir.join(file_name(&id, kind))))
            })
            .ok_or_else(missing)
    }

    /// The image FFmpeg reads for a stream's `watermark.asset_id`, or why there is none
    /// (SPEC §Coordinator `start` step 4: the caller turns the watermark off and warns).
    pub(crate) fn resolve(&self, asset_id: &str) -> Result<PathBuf, String> {
        match self.asset(asset_id) {
            Ok((_, path)) => Ok(path),
            Err(WatermarkError::NotFound(_)) => match self.dir() {
                Ok(dir) => Err(format!(
                    "no asset {asset_id:?} in the watermark library ({})",
                    dir.display()
                )),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    /// Deletes asset `id` (its image first, so it is gone from listings at once, then its
    /// sidecar). Blocking.
    pub(crate) fn delete(&self, id: &str) -> Result<(), WatermarkError> {
        let (_, path) = self.asset(id)?;
        std::fs::remove_file(&path)
            .map_err(|e| WatermarkError::Io(format!("deleting {}: {e}", path.display())))?;
        let _ = std::fs::remove_file(path.with_extension("json"));
        Ok(())
    }
}

/// An upload in progress: [`write`](Self::write) each chunk, then [`finish`](Self::finish).
/// Dropped unfinished (the client went away, the image was refused), its temporary file is
/// removed.
#[derive(Debug)]
pub struct WatermarkUpload {
    /// The library directory it goes into.
    dir: PathBuf,
    /// The hidden temporary file being written (removed if the upload ends unfinished).
    tmp: crate::vod::Partial,
    file: tokio::fs::File,
    /// The first bytes, until the type is known.
    head: Vec<u8>,
    /// The type the first bytes say.
    kind: Option<ImageType>,
    /// Bytes written so far.
    written: u64,
    /// The most it may write ([`WATERMARK_IMAGE_CAP`]).
    cap: u64,
    /// The asset's name and the part's file name.
    name: String,
    file_name: String,
}

impl WatermarkUpload {
    /// Appends `chunk`: refused as soon as the first bytes are no PNG, JPEG or GIF, or the
    /// image passes [`WATERMARK_IMAGE_CAP`] (the file is removed when the upload is dropped).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), WatermarkError> {
        self.written += chunk.len() as u64;
        if self.written > self.cap {
            return Err(WatermarkError::TooLarge);
        }
        if self.kind.is_none() && self.head.len() < SNIFF_LEN {
            let take = chunk.len().min(SNIFF_LEN - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
            if self.head.len() == SNIFF_LEN {
                self.kind = Some(sniffed(&self.head)?);
            }
        }
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| WatermarkError::Io(format!("writing {}: {e}", self.tmp.path().display())))
    }

    /// Syncs the image, gives it an id, writes its sidecar and renames both into place
    /// (module doc). Returns the asset.
    pub async fn finish(mut self) -> Result<WatermarkAsset, WatermarkError> {
        let kind = match self.kind {
            Some(kind) => kind,
            None => sniffed(&self.head)?,
        };
        let io = |e: io::Error| WatermarkError::Io(format!("storing the watermark: {e}"));
        self.file.sync_all().await.map_err(io)?;
        let uploaded_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let (dir, tmp) = (self.dir.clone(), self.tmp.path().to_owned());
        let sidecar = Sidecar {
            name: self.name.clone(),
            file_name: self.file_name.clone(),
            uploaded_at: uploaded_at.clone(),
        };
        let id = blocking(move || {
            let id = fresh_id(&dir);
            let json = serde_json::to_vec(&sidecar).map_err(|e| io(io::Error::other(e)))?;
            let side_tmp = dir.join(format!(".{id}.json.tmp"));
            write_synced(&side_tmp, &json).map_err(io)?;
            std::fs::rename(&side_tmp, dir.join(format!("{id}.json"))).map_err(io)?;
            std::fs::rename(&tmp, dir.join(file_name(&id, kind))).map_err(io)?;
            // The renames themselves reach the disk.
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
            Ok(id)
        })
        .await?;
        self.tmp.kept();
        Ok(WatermarkAsset {
            id: id.to_string(),
            name: self.name.clone(),
            file_name: self.file_name.clone(),
            content_type: kind.content_type().to_owned(),
            size_bytes: self.written,
            uploaded_at,
        })
    }
}

impl EngineHandle {
    /// Every asset, newest first, and the library directory (`GET /watermarks`).
    pub async fn list_watermarks(&self) -> Result<(Vec<WatermarkAsset>, String), WatermarkError> {
        let library = self.shared.media.watermarks.clone();
        blocking(move || {
            let dir = library.dir()?.display().to_string();
            Ok((library.list()?, dir))
        })
        .await
    }

    /// Asset `id`.
    pub async fn watermark(&self, id: &str) -> Result<WatermarkAsset, WatermarkError> {
        let library = self.shared.media.watermarks.clone();
        let id = id.to_owned();
        blocking(move || library.asset(&id).map(|(asset, _)| asset)).await
    }

    /// Deletes asset `id` (404 when unknown). A stream running with it keeps the image FFmpeg
    /// has loaded; its next start goes without (warned).
    pub async fn delete_watermark(&self, id: &str) -> Result<(), WatermarkError> {
        let library = self.shared.media.watermarks.clone();
        let id = id.to_owned();
        blocking(move || library.delete(&id)).await
    }

    /// Asset `id`'s image, opened.
    pub async fn watermark_raw(&self, id: &str) -> Result<WatermarkFile, WatermarkError> {
        let (asset, path) = {
            let library = self.shared.media.watermarks.clone();
            let id = id.to_owned();
            blocking(move || library.asset(&id)).await?
        };
        let missing = || WatermarkError::NotFound(format!("no watermark asset {id:?}"));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .await
            .map_err(|_| missing())?;
        let meta = file.metadata().await.map_err(|_| missing())?;
        let content_type = ImageType::ALL
            .into_iter()
            .find(|t| t.content_type() == asset.content_type)
            .map_or("application/octet-stream", ImageType::content_type);
        Ok(WatermarkFile {
            file,
            size: meta.len(),
            content_type,
        })
    }

    /// Starts an upload named `name` (`?name=`; default `file_name`, the part's file name):
    /// 422 naming `name` when it is blank or longer than 128 characters, `file` when the
    /// file name is longer than 255 bytes (or names the asset and is blank).
    pub async fn watermark_upload(
        &self,
        name: Option<&str>,
        file_name: Option<&str>,
    ) -> Result<WatermarkUpload, WatermarkError> {
        let file_name = file_name.unwrap_or_default().to_owned();
        if file_name.len() > FILE_NAME_MAX {
            return Err(WatermarkError::Invalid(ValidationErrors(vec![
                FieldError::new(
                    "file",
                    ErrorCode::InvalidField,
                    format!(
                        "the part's filename may be at most {FILE_NAME_MAX} bytes, got {}",
                        file_name.len()
                    ),
                ),
            ])));
        }
        let (field, name) = match name {
            Some(name) => ("name", name.to_owned()),
            None => ("file", file_name.clone()),
        };
        watermark::check_name(&name).map_err(|why| {
            let why = if field == "file" {
                format!("the part's filename names the asset when ?name= is absent: {why}")
            } else {
                why
            };
            WatermarkError::Invalid(ValidationErrors(vec![FieldError::new(
                field,
                ErrorCode::InvalidField,
                why,
            )]))
        })?;
        let dir = self.shared.media.watermarks.dir()?;
        let tmp = dir.join(format!(".upload-{:016x}", rand::random::<u64>()));
        let (tmp, file) = crate::vod::Partial::create(tmp)
            .await
            .map_err(WatermarkError::Io)?;
        Ok(WatermarkUpload {
            dir,
            tmp,
            file,
            head: Vec::with_capacity(SNIFF_LEN),
            kind: None,
            written: 0,
            cap: WATERMARK_IMAGE_CAP,
            name,
            file_name,
        })
    }
}

/// What the sidecar `<id>.json` holds: what the image's bytes cannot say.
#[derive(Serialize, Deserialize)]
struct Sidecar {
    name: String,
    file_name: String,
    uploaded_at: String,
}

/// `watermarks.dir` (or its default) made absolute, checked inside `roots` and, with
/// `create`, created and write-probed; errors name `watermarks.dir`.
fn prepare(
    config: &ServerConfig,
    roots: &[PathBuf],
    create: bool,
) -> Result<PathBuf, ValidationErrors> {
    let section = config.watermarks.clone().unwrap_or_default();
    let dir = section.dir(&config.data_dir);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let checked = if create {
        crate::vod::prepare_storage(FIELD, &dir.to_string_lossy(), roots)
    } else {
        crate::vod::check_storage(FIELD, &dir, roots)
    };
    checked.map_err(|e| match e {
        crate::VodError::Invalid(errors) => errors,
        other => ValidationErrors(vec![FieldError::new(
            FIELD,
            ErrorCode::InvalidField,
            other.to_string(),
        )]),
    })?;
    Ok(dir)
}

/// Whether `watermarks.dir` is set (else the default is in force).
fn explicit(config: &ServerConfig) -> bool {
    config
        .watermarks
        .as_ref()
        .and_then(|w| w.dir.as_deref())
        .is_some_and(|d| !d.trim().is_empty())
}

/// The library is off: 422 naming `watermarks.dir`.
fn off(why: &str) -> WatermarkError {
    WatermarkError::Invalid(ValidationErrors(vec![FieldError::new(
        FIELD,
        ErrorCode::InvalidField,
        format!("the watermark library is off: {why}"),
    )]))
}

/// The asset `<id>.<ext>` names, if it names one.
fn image_name(name: &str) -> Option<(AssetId, ImageType)> {
    let (stem, ext) = name.split_once('.')?;
    Some((AssetId::parse(stem)?, ImageType::from_extension(ext)?))
}

fn file_name(id: &AssetId, kind: ImageType) -> String {
    format!("{id}.{}", kind.extension())
}

/// Asset `id` stored as `kind` in `dir`, with its upload time: a regular file (no symlink)
/// whose first bytes are that type; its sidecar's fields, or the file's name and time.
fn load(dir: &Path, id: &AssetId, kind: ImageType) -> Option<(DateTime<Utc>, WatermarkAsset)> {
    let image = dir.join(file_name(id, kind));
    let meta = std::fs::symlink_metadata(&image).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut head = [0; SNIFF_LEN];
    std::fs::File::open(&image)
        .ok()?
        .read_exact(&mut head)
        .ok()?;
    if ImageType::sniff(&head) != Some(kind) {
        return None;
    }
    let sidecar = std::fs::read(dir.join(format!("{id}.json")))
        .ok()
        .filter(|bytes| bytes.len() <= SIDECAR_MAX)
        .and_then(|bytes| serde_json::from_slice::<Sidecar>(&bytes).ok());
    let modified: DateTime<Utc> = meta.modified().map_or(DateTime::UNIX_EPOCH, Into::into);
    let stored = file_name(id, kind);
    let (name, file_name, at) = match sidecar {
        Some(s) => {
            let at = DateTime::parse_from_rfc3339(&s.uploaded_at)
                .map_or(modified, |t| t.with_timezone(&Utc));
            (s.name, s.file_name, at)
        }
        None => (stored.clone(), stored, modified),
    };
    Some((
        at,
        WatermarkAsset {
            id: id.to_string(),
            name,
            file_name,
            content_type: kind.content_type().to_owned(),
            size_bytes: meta.len(),
            uploaded_at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
        },
    ))
}

/// The type `head` says, or the refusal naming the types accepted.
fn sniffed(head: &[u8]) -> Result<ImageType, WatermarkError> {
    ImageType::sniff(head).ok_or_else(|| {
        WatermarkError::NotImage(
            "not a PNG, JPEG or GIF image (the type is decided by the file's first bytes, not \
             its name)"
                .into(),
        )
    })
}

/// An id no file in `dir` uses yet (64 random bits: a second draw is all but never needed).
fn fresh_id(dir: &Path) -> AssetId {
    loop {
        let id = AssetId::from_bits(rand::random());
        let taken = ImageType::ALL
            .into_iter()
            .any(|kind| dir.join(file_name(&id, kind)).exists())
            || dir.join(format!("{id}.json")).exists();
        if !taken {
            return id;
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, WatermarkError> + Send + 'static,
) -> Result<T, WatermarkError> {
    crate::vod::on_blocking_pool(call, WatermarkError::Io).await
}

/// The configuration key the library's directory errors name.
const FIELD: &str = "watermarks.dir";

/// The longest uploaded file name kept, in bytes (what file systems allow for one name).
const FILE_NAME_MAX: usize = 255;

/// The largest sidecar read (a few hundred bytes are written).
const SIDECAR_MAX: usize = 16 << 10;

#[cfg(test)]
mod tests;
