//! VOD mounts behind the API (SPEC §API `/vod`, §Security "File serving"): mount records in
//! the store, their directories on disk, browsing, uploads streamed to disk, deletes, and the
//! files opened for Range serving.
//!
//! Every path a client names is checked twice: as written ([`roots::relative`]: no `..`,
//! backslash, NUL or absolute path), then as resolved with every symlink
//! ([`roots::resolve_inside`]) against the mount's storage, itself resolved inside
//! `security.storage_roots` on every use, so a symlink planted in a mount (or a storage swapped
//! for a link) cannot lead a request out. Only video files (by extension, of the resolved
//! name too) are listed, served or accepted.
//!
//! An upload is written to a hidden temporary file next to its target and linked into place
//! only when complete (`link` refuses an existing name, which is 409 `FILE_EXISTS` even
//! against a racing upload); a failed or abandoned upload removes its temporary file. Nothing
//! is held in memory beyond the chunk being written, and the file is capped at
//! [`VOD_UPLOAD_CAP`].
//!
//! The mounts are also the parse context of `file://<mount>/<path>` inputs
//! ([`crate::supported`]): a save, replace or delete updates it, so the next stream parse
//! resolves through the new table.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tributary_domain::roots::{self, PathError};
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors};
use tributary_domain::vod::{self, VodEntry, VodMount};
use tributary_store::StoreError;

use crate::EngineHandle;

/// The largest file an upload may write (SPEC §Security "Body caps": 10 GiB).
pub const VOD_UPLOAD_CAP: u64 = 10 << 30;

/// Why a VOD operation failed; each variant is one API status.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VodError {
    /// The mount does not validate (422, every failing field named).
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// A mount with this name exists (409 `ALREADY_EXISTS`).
    #[error("VOD mount {0} already exists")]
    Exists(String),
    /// No such mount, file or directory, or a path that leaves the mount (404).
    #[error("{0}")]
    NotFound(String),
    /// The upload's target exists (409 `FILE_EXISTS`).
    #[error("{0} already exists")]
    FileExists(String),
    /// A bad `?path=` (400 `INVALID_QUERY`).
    #[error("path: {0}")]
    BadQuery(String),
    /// An upload that is not a video file or has no name (422 naming `file`).
    #[error("file: {0}")]
    NotVideo(String),
    /// The upload passed [`VOD_UPLOAD_CAP`] (413 `UPLOAD_TOO_LARGE`).
    #[error("the upload is larger than {} bytes (10 GiB)", VOD_UPLOAD_CAP)]
    TooLarge,
    /// Signed play URLs are on and the request's signature does not hold (403).
    #[error("{0}")]
    Forbidden(String),
    /// The disk failed (500).
    #[error("{0}")]
    Io(String),
    /// The store failed (500 `STORE_ERROR`).
    #[error("store: {0}")]
    Store(String),
}

/// A VOD file opened for serving.
#[derive(Debug)]
pub struct VodFile {
    /// The open file (never a symlink).
    pub file: tokio::fs::File,
    /// Its size in bytes.
    pub size: u64,
    /// Its `Content-Type`, by extension.
    pub content_type: &'static str,
}

/// An upload in progress: [`write`](Self::write) each chunk, then [`finish`](Self::finish).
/// Dropped unfinished (the client went away, a write failed), it removes its temporary file.
#[derive(Debug)]
pub struct VodUpload {
    /// The hidden temporary file being written (removed when the upload ends, linked into
    /// place or not).
    tmp: Partial,
    /// Where it goes when complete.
    dest: PathBuf,
    file: tokio::fs::File,
    /// Bytes written so far.
    written: u64,
    /// The most it may write ([`VOD_UPLOAD_CAP`]).
    cap: u64,
    /// The mount and the path inside it, for the listing entry.
    mount: String,
    rel: String,
}

impl VodUpload {
    /// Appends `chunk`; past [`VOD_UPLOAD_CAP`] the upload fails (and is removed when dropped).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), VodError> {
        self.written += chunk.len() as u64;
        if self.written > self.cap {
            return Err(VodError::TooLarge);
        }
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| VodError::Io(format!("writing {}: {e}", self.rel)))
    }

    /// Syncs the file and links it into place; 409 `FILE_EXISTS` if its name was taken
    /// meanwhile. Returns its listing entry.
    pub async fn finish(self) -> Result<VodEntry, VodError> {
        let io = |e: io::Error| VodError::Io(format!("writing {}: {e}", self.rel));
        self.file.sync_all().await.map_err(io)?;
        match tokio::fs::hard_link(self.tmp.path(), &self.dest).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(VodError::FileExists(self.rel.clone()));
            }
            Err(e) => return Err(io(e)),
        }
        let modified = modified_unix(&self.file.metadata().await.map_err(io)?);
        Ok(VodEntry::new(
            &self.mount,
            &self.rel,
            self.written,
            false,
            modified,
        ))
    }
}

impl EngineHandle {
    /// Every mount, sorted by name.
    pub async fn list_vod(&self) -> Result<Vec<VodMount>, VodError> {
        let store = self.shared.vod_store.clone();
        blocking(move || store.list_mounts().map_err(store_error)).await
    }

    /// The mount with this name.
    pub async fn vod(&self, name: &str) -> Result<Option<VodMount>, VodError> {
        let store = self.shared.vod_store.clone();
        let name = name.to_owned();
        blocking(move || store.mount(&name).map_err(store_error)).await
    }

    /// Saves `mount` (with `create_only`, 409 `ALREADY_EXISTS` when the name is taken): its
    /// storage must lie inside `security.storage_roots` (symlinks resolved), is created if
    /// missing and must be writable (a probe file is written and removed). Returns whether it
    /// was created.
    pub async fn put_vod(&self, mount: VodMount, create_only: bool) -> Result<bool, VodError> {
        let _one = self.shared.vod_writes.lock().await;
        let store = self.shared.vod_store.clone();
        let roots = self.shared.media.roots.get();
        let created = blocking(move || {
            if create_only && store.mount(&mount.name).map_err(store_error)?.is_some() {
                return Err(VodError::Exists(mount.name));
            }
            prepare_storage("storage", &mount.storage, &roots.storage)?;
            store.put_mount(&mount, create_only).map_err(|e| match e {
                StoreError::MountExists { name } => VodError::Exists(name),
                e => store_error(e),
            })
        })
        .await?;
        self.refresh_mounts().await?;
        Ok(created)
    }

    /// Checks that `mount`'s storage lies inside `security.storage_roots`, as
    /// [`put_vod`](Self::put_vod) would, without creating it.
    pub async fn check_vod(&self, mount: &VodMount) -> Result<(), VodError> {
        let roots = self.shared.media.roots.get();
        let storage = PathBuf::from(&mount.storage);
        blocking(move || check_storage("storage", &storage, &roots.storage)).await
    }

    /// Deletes a mount (its files stay on disk); `false` if there was none.
    pub async fn delete_vod(&self, name: &str) -> Result<bool, VodError> {
        let _one = self.shared.vod_writes.lock().await;
        let store = self.shared.vod_store.clone();
        let name = name.to_owned();
        let deleted = blocking(move || store.delete_mount(&name).map_err(store_error)).await?;
        self.refresh_mounts().await?;
        Ok(deleted)
    }

    /// The video files and directories directly inside `path` (`""`: the mount's top),
    /// directories first, each sorted by name. Hidden entries, other files and symlinks that
    /// lead out of the mount are left out.
    pub async fn vod_files(&self, name: &str, path: &str) -> Result<Vec<VodEntry>, VodError> {
        let rel = roots::relative(path).map_err(|e| VodError::BadQuery(e.to_string()))?;
        let root = self.mount_root(name).await?;
        let name = name.to_owned();
        blocking(move || {
            let dir = inside_mount(&root, &rel)?;
            let read = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                    VodError::NotFound(format!("no directory {:?} in VOD mount {name}", rel))
                }
                _ => VodError::Io(format!("listing {}: {e}", dir.display())),
            })?;
            let mut entries = Vec::new();
            for entry in read.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if file_name.starts_with('.') {
                    continue;
                }
                let Ok(resolved) = inside_mount(&root, &rel.join(&file_name)) else {
                    continue;
                };
                let Ok(meta) = std::fs::metadata(&resolved) else {
                    continue;
                };
                let shown = meta.is_dir() || (meta.is_file() && served(&file_name, &resolved));
                if !shown {
                    continue;
                }
                let path = join_rel(&rel, &file_name);
                let size = if meta.is_dir() { 0 } else { meta.len() };
                entries.push(VodEntry::new(
                    &name,
                    &path,
                    size,
                    meta.is_dir(),
                    modified_unix(&meta),
                ));
            }
            entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
            Ok(entries)
        })
        .await
    }

    /// Starts an upload into mount `name` at `path`: a file path with a video extension, or a
    /// directory (`""`: the top) that `file_name` (the multipart part's name) goes into.
    /// Missing directories are created. 409 `FILE_EXISTS` when the target exists.
    pub async fn vod_upload(
        &self,
        name: &str,
        path: &str,
        file_name: Option<&str>,
    ) -> Result<VodUpload, VodError> {
        let not_found = |e: PathError| VodError::NotFound(format!("upload path: {e}"));
        let mut rel = roots::relative(path).map_err(not_found)?;
        let last = path.rsplit('/').next().unwrap_or_default();
        if last.contains('.') && !vod::is_video(last) {
            return Err(VodError::NotVideo(format!(
                "{last:?} is not a video file ({})",
                vod::VIDEO_EXTENSIONS.join(", ")
            )));
        }
        if !vod::is_video(path) {
            let Some(file_name) = file_name.filter(|n| !n.is_empty()) else {
                return Err(VodError::NotVideo(format!(
                    "{path:?} is not a video file name and the part has no filename"
                )));
            };
            let one = roots::relative(file_name)
                .ok()
                .filter(|p| p.components().count() == 1)
                .ok_or_else(|| {
                    VodError::NotVideo(format!("filename {file_name:?} is not a plain file name"))
                })?;
            rel.push(one);
        }
        let rel_text = rel.to_string_lossy().into_owned();
        if !vod::is_video(&rel_text) {
            return Err(VodError::NotVideo(format!(
                "{rel_text:?} is not a video file ({})",
                vod::VIDEO_EXTENSIONS.join(", ")
            )));
        }
        let root = self.mount_root(name).await?;
        let (tmp, dest) = blocking(move || {
            let dir_rel = rel.parent().unwrap_or(Path::new(""));
            let dir = inside_mount(&root, dir_rel)?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| VodError::Io(format!("creating {}: {e}", dir.display())))?;
            // Resolved again now that it exists: a link in the new chain is caught here.
            let dir = inside_mount(&root, dir_rel)?;
            let base = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = dir.join(&base);
            if std::fs::symlink_metadata(&dest).is_ok() {
                return Err(VodError::FileExists(rel.to_string_lossy().into_owned()));
            }
            let tmp = dir.join(format!(".{base}.upload-{}", uuid_like()));
            Ok((tmp, dest))
        })
        .await?;
        let (tmp, file) = Partial::create(tmp).await.map_err(VodError::Io)?;
        Ok(VodUpload {
            tmp,
            dest,
            file,
            written: 0,
            cap: VOD_UPLOAD_CAP,
            mount: name.to_owned(),
            rel: rel_text,
        })
    }

    /// Deletes the video file at `path` in mount `name`.
    pub async fn vod_delete_file(&self, name: &str, path: &str) -> Result<(), VodError> {
        let root = self.mount_root(name).await?;
        let missing = || VodError::NotFound(format!("no video file {path:?} in VOD mount {name}"));
        let rel = roots::relative(path).map_err(|_| missing())?;
        let file = blocking(move || inside_mount(&root, &rel)).await?;
        let meta = tokio::fs::symlink_metadata(&file)
            .await
            .map_err(|_| missing())?;
        if !meta.is_file() || !served(path, &file) {
            return Err(missing());
        }
        tokio::fs::remove_file(&file)
            .await
            .map_err(|e| VodError::Io(format!("deleting {path}: {e}")))
    }

    /// Opens the video file at `path` of mount `name` for `GET /vod/{name}/raw/{path}` by
    /// `peer` with `query`: with signed play URLs on, the query must sign `vod/<name>`.
    pub async fn vod_raw(
        &self,
        name: &str,
        path: &str,
        query: &str,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<VodFile, VodError> {
        if let Some(signer) = self.shared.media.signer.get() {
            let ip = peer.map_or(crate::UNKNOWN_PEER, |p| p.ip());
            signer
                .verify_subject(&format!("vod/{name}"), query, ip, crate::router::unix_now())
                .map_err(|e| VodError::Forbidden(e.to_string()))?;
        }
        let missing = || VodError::NotFound(format!("no video file {path:?} in VOD mount {name}"));
        let rel = roots::relative(path).map_err(|_| missing())?;
        if !vod::is_video(path) {
            return Err(missing());
        }
        let root = self.mount_root(name).await?;
        let resolved = blocking(move || inside_mount(&root, &rel)).await?;
        if !served(path, &resolved) {
            return Err(missing());
        }
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&resolved)
            .await
            .map_err(|_| missing())?;
        let meta = file.metadata().await.map_err(|_| missing())?;
        if !meta.is_file() {
            return Err(missing());
        }
        Ok(VodFile {
            file,
            size: meta.len(),
            content_type: vod::content_type(path),
        })
    }

    /// Mount `name`'s storage, resolved inside `security.storage_roots`.
    async fn mount_root(&self, name: &str) -> Result<PathBuf, VodError> {
        let mount = self
            .vod(name)
            .await?
            .ok_or_else(|| VodError::NotFound(format!("no VOD mount {name}")))?;
        let roots = self.shared.media.roots.get();
        blocking(move || {
            roots::resolve_inside(Path::new(&mount.storage), &roots.storage, canonicalize)
                .map_err(|e| VodError::Io(format!("VOD mount {}: storage {e}", mount.name)))
        })
        .await
    }

    /// Hands the current mounts to the stream parser (`file://<mount>/<path>`).
    async fn refresh_mounts(&self) -> Result<(), VodError> {
        let mounts = self.list_vod().await?;
        self.shared.supported.set_vod_mounts(table(&mounts));
        Ok(())
    }
}

/// The mounts as the stream parser reads them: name → storage.
pub(crate) fn table(mounts: &[VodMount]) -> BTreeMap<String, PathBuf> {
    mounts
        .iter()
        .map(|m| (m.name.clone(), PathBuf::from(&m.storage)))
        .collect()
}

/// `security.storage_roots` as paths; absent: the data directory (made absolute).
pub(crate) fn storage_roots(config: &tributary_domain::config::ServerConfig) -> Vec<PathBuf> {
    match &config.security.storage_roots {
        Some(roots) => roots.iter().map(PathBuf::from).collect(),
        None => vec![
            std::path::absolute(&config.data_dir)
                .unwrap_or_else(|_| PathBuf::from(&config.data_dir)),
        ],
    }
}

/// A directory the server writes into for API clients (a mount's `storage`,
/// `watermarks.dir`) outside `security.storage_roots`; the error names `field`.
fn outside_roots(field: &str, e: PathError) -> VodError {
    VodError::Invalid(ValidationErrors(vec![FieldError::new(
        field,
        ErrorCode::InvalidField,
        format!("must lie inside security.storage_roots (default: the data directory): {e}"),
    )]))
}

/// Checks that `path` (the value of `field`) lies inside `roots`, symlinks resolved, without
/// creating it.
pub(crate) fn check_storage(field: &str, path: &Path, roots: &[PathBuf]) -> Result<(), VodError> {
    roots::resolve_inside(path, roots, canonicalize)
        .map(drop)
        .map_err(|e| outside_roots(field, e))
}

/// Checks `storage` (the value of `field`: a mount's `storage`, `watermarks.dir`) against
/// `roots`, creates it and writes a probe file into it. Errors name `field`.
pub(crate) fn prepare_storage(
    field: &str,
    storage: &str,
    roots: &[PathBuf],
) -> Result<(), VodError> {
    let invalid = |message: String| {
        VodError::Invalid(ValidationErrors(vec![FieldError::new(
            field,
            ErrorCode::InvalidField,
            message,
        )]))
    };
    let outside = |e| outside_roots(field, e);
    let path = Path::new(storage);
    roots::resolve_inside(path, roots, canonicalize).map_err(outside)?;
    std::fs::create_dir_all(path).map_err(|e| invalid(format!("cannot create {storage}: {e}")))?;
    // Resolved again once it exists: the whole chain is real now.
    let dir = roots::resolve_inside(path, roots, canonicalize).map_err(outside)?;
    if !dir.is_dir() {
        return Err(invalid(format!("{storage} is not a directory")));
    }
    let probe = dir.join(format!(".tributary-probe-{}", uuid_like()));
    std::fs::write(&probe, b"probe")
        .map_err(|e| invalid(format!("{storage} is not writable: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// `rel` inside the resolved mount `root`, resolved with every symlink; a path that leads out
/// is "not found", as a name that is not there.
fn inside_mount(root: &Path, rel: &Path) -> Result<PathBuf, VodError> {
    roots::resolve_inside(&root.join(rel), &[root.to_owned()], canonicalize)
        .map_err(|_| VodError::NotFound(format!("no {} in the VOD mount", rel.display())))
}

/// Whether a file asked for as `asked` and resolved to `resolved` is served: both names are
/// video names (a link `a.mp4` to `notes.txt` is not).
fn served(asked: &str, resolved: &Path) -> bool {
    vod::is_video(asked)
        && resolved
            .file_name()
            .is_some_and(|n| vod::is_video(&n.to_string_lossy()))
}

fn join_rel(dir: &Path, name: &str) -> String {
    if dir.as_os_str().is_empty() {
        name.to_owned()
    } else {
        format!("{}/{name}", dir.display())
    }
}

fn modified_unix(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    path.canonicalize()
}

/// A name part unique enough for a temporary file (random, not a secret).
fn uuid_like() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn store_error(e: StoreError) -> VodError {
    VodError::Store(e.to_string())
}

async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, VodError> + Send + 'static,
) -> Result<T, VodError> {
    on_blocking_pool(call, VodError::Io).await
}

/// Runs `call` (file system work) on the blocking pool; a panic there is `failed`'s error.
pub(crate) async fn on_blocking_pool<T: Send + 'static, E: Send + 'static>(
    call: impl FnOnce() -> Result<T, E> + Send + 'static,
    failed: fn(String) -> E,
) -> Result<T, E> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| failed(e.to_string()))?
}

/// An upload's hidden temporary file: removed when dropped (the upload failed or was
/// abandoned) unless it was [`kept`](Self::kept) in place.
#[derive(Debug)]
pub(crate) struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Partial {
    /// Creates the file at `path` (0600, never over an existing one), open for writing; the
    /// error names the path.
    pub(crate) async fn create(path: PathBuf) -> Result<(Self, tokio::fs::File), String> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok((Self { path, kept: false }, file))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// It was renamed into place: nothing to remove.
    pub(crate) fn kept(&mut self) {
        self.kept = true;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tributary_domain::config::Layers;

    use super::*;
    use crate::Engine;

    /// Names of the hidden (temporary) files in `dir`.
    fn hidden(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    #[tokio::test]
    async fn uploads_over_the_cap_or_racing_for_a_name_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let file = serde_json::json!({"data_dir": dir.path().display().to_string()});
        let layers = Layers::new(file, Value::Null, Value::Null);
        let engine = Engine::open(layers).expect("open").handle();
        let storage = dir.path().join("vod");
        let mount = VodMount {
            name: "m".into(),
            storage: storage.display().to_string(),
            comment: String::new(),
        };
        assert!(engine.put_vod(mount, true).await.expect("create"));

        // Over the cap: refused, and the partial file goes with the upload.
        let mut big = engine
            .vod_upload("m", "big.mp4", None)
            .await
            .expect("start");
        big.cap = 8;
        big.write(b"01234").await.expect("under the cap");
        assert!(matches!(big.write(b"56789").await, Err(VodError::TooLarge)));
        drop(big);
        assert_eq!(hidden(&storage), Vec::<String>::new());
        assert!(!storage.join("big.mp4").exists());

        // Two uploads of one name: the first to finish wins, the second is FILE_EXISTS.
        let mut first = engine.vod_upload("m", "a.mp4", None).await.expect("start");
        let mut second = engine.vod_upload("m", "a.mp4", None).await.expect("start");
        first.write(b"first").await.unwrap();
        second.write(b"second").await.unwrap();
        let entry = first.finish().await.expect("finish");
        assert_eq!((entry.path.as_str(), entry.size), ("a.mp4", 5));
        assert!(matches!(
            second.finish().await,
            Err(VodError::FileExists(_))
        ));
        assert_eq!(std::fs::read(storage.join("a.mp4")).unwrap(), b"first");
        assert_eq!(hidden(&storage), Vec::<String>::new());
        // Now it exists: refused before a byte is sent.
        assert!(matches!(
            engine.vod_upload("m", "a.mp4", None).await,
            Err(VodError::FileExists(_))
        ));
    }
}
