//! Where served and stored files may live (SPEC §Security "File serving", `storage_roots`).
//!
//! Two questions come back wherever the server touches a path an operator or a client named:
//! is this relative path harmless to join onto a root ([`relative`]), and does this path, with
//! every symlink resolved, lie inside one of these roots ([`resolve_inside`])? They are answered
//! here once, for the VOD mounts, the DVR root and recording files, so each caller cannot get
//! one of them subtly wrong on its own.
//!
//! This crate reads no file system (ARCHITECTURE.md §3): the caller passes the resolver,
//! `std::fs::canonicalize` in production. A path that does not exist yet (a mount's storage
//! before it is created) is resolved through its longest existing ancestor, so a symlink
//! anywhere above it still counts.
//!
//! ```
//! use std::path::{Path, PathBuf};
//! use tributary_domain::roots::{relative, resolve_inside};
//!
//! assert!(relative("movies/a.mp4").is_ok());
//! assert!(relative("../etc/passwd").is_err());
//! // A resolver that maps /srv/link to /etc (a symlink out of the root).
//! let resolve = |p: &Path| -> std::io::Result<PathBuf> {
//!     Ok(match p.strip_prefix("/srv/link") {
//!         Ok(rest) => Path::new("/etc").join(rest),
//!         Err(_) => p.to_owned(),
//!     })
//! };
//! let roots = [PathBuf::from("/srv")];
//! assert!(resolve_inside(Path::new("/srv/vod"), &roots, resolve).is_ok());
//! assert!(resolve_inside(Path::new("/srv/link/passwd"), &roots, resolve).is_err());
//! ```
//!
//! # The roots in force
//!
//! `security.file_input_roots` and `security.storage_roots` change on a running server (SPEC
//! §Config "Hot apply"), and several services read them: stream validation, the file input
//! worker, the DVR, the VOD mounts. Each of them once kept its own copy, and a configuration
//! change had to reach every copy in turn: a new reader that was not added to that fan-out
//! would have kept the boot-time roots without a test noticing. So the lists live in one
//! [`Roots`] value behind one [`LiveRoots`] handle: the engine builds it from the
//! configuration, every reader holds a clone of the handle and reads it where it uses the
//! roots ([`LiveRoots::get`]: a short read lock and an `Arc` clone, never held across an
//! `.await`), and a configuration change writes it once ([`LiveRoots::set`]). The handle is
//! here, beside the path rules, because the readers sit in crates that meet only in `domain`.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// The configured roots, as paths (module doc, "The roots in force").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roots {
    /// `security.file_input_roots`: where `file:///abs/path` inputs may read; empty: anywhere.
    pub file_input: Vec<PathBuf>,
    /// `security.storage_roots` (default: the data directory): where a DVR `storage_path` and
    /// a VOD mount's storage may lie; empty: any plain absolute path.
    pub storage: Vec<PathBuf>,
}

/// The one shared, replaceable [`Roots`] of a server: cheap to clone, every clone sees the
/// same value. [`Default`]: a new handle of its own with no roots (anywhere).
#[derive(Clone, Default)]
pub struct LiveRoots(Arc<RwLock<Arc<Roots>>>);

impl LiveRoots {
    /// A new handle holding `roots`.
    pub fn new(roots: Roots) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(roots))))
    }

    /// The roots in force now: a snapshot the caller keeps for one use (one parse, one file
    /// open, one recording start), so one decision never mixes two configurations.
    pub fn get(&self) -> Arc<Roots> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the roots for this handle and every clone of it: each reader's next
    /// [`get`](Self::get) sees `roots`; snapshots already taken keep the old ones.
    pub fn set(&self, roots: Roots) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(roots);
    }
}

impl std::fmt::Debug for LiveRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveRoots").field(&*self.get()).finish()
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A relative path that could name something outside its root, or nothing.
    #[error("{0}")]
    Unsafe(&'static str),
    /// Not an absolute path without `..`.
    #[error("must be an absolute path without \"..\"")]
    NotAbsolute,
    /// The path resolves (symlinks included) outside every root.
    #[error("{path} resolves to {resolved}, outside {roots}")]
    Outside {
        /// The path as given.
        path: String,
        /// Where it resolves.
        resolved: String,
        /// The roots, for the message.
        roots: String,
    },
    /// The resolver failed on the path's existing part.
    #[error("cannot resolve {path}: {error}")]
    Unresolvable {
        /// The path.
        path: String,
        /// The resolver's error.
        error: String,
    },
}

/// Checks a client-given relative path (`movies/a.mp4`, URL-decoded) and returns it as a
/// path to join onto a root: no `..` or `.` segment, no empty segment (`a//b`, a leading
/// `/`), no backslash, no NUL, no drive or root. The empty string is the root itself.
pub fn relative(rel: &str) -> Result<PathBuf, PathError> {
    if rel.contains('\0') {
        return Err(PathError::Unsafe("the path may not contain NUL"));
    }
    if rel.contains('\\') {
        return Err(PathError::Unsafe("the path may not contain a backslash"));
    }
    let trimmed = rel.strip_suffix('/').unwrap_or(rel);
    if trimmed.is_empty() {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    for segment in trimmed.split('/') {
        match segment {
            "" => {
                return Err(PathError::Unsafe(
                    "the path may not be absolute or hold \"//\"",
                ));
            }
            "." | ".." => {
                return Err(PathError::Unsafe(
                    "the path may not hold \".\" or \"..\" segments",
                ));
            }
            _ => path.push(segment),
        }
    }
    // A segment like `C:` stays a normal component on Unix; anything else is refused.
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(PathError::Unsafe("the path must be relative"));
    }
    Ok(path)
}

/// Whether `path` is absolute and holds no `..` (what a configured root or storage must be).
pub fn plain_absolute(path: &Path) -> bool {
    path.is_absolute() && !path.components().any(|c| c == Component::ParentDir)
}

/// `path` resolved with `resolve` (symlinks included), when it lies inside one of `roots`
/// (each resolved the same way); the resolution is what the caller should open, so a link
/// swapped in later cannot lead out. `path` must be [`plain_absolute`]. A path that does not
/// exist yet is resolved through its longest existing ancestor. An empty `roots` allows no
/// path.
pub fn resolve_inside<R>(path: &Path, roots: &[PathBuf], resolve: R) -> Result<PathBuf, PathError>
where
    R: Fn(&Path) -> io::Result<PathBuf>,
{
    if !plain_absolute(path) {
        return Err(PathError::NotAbsolute);
    }
    let resolved = resolve_lenient(path, &resolve)?;
    let inside = roots
        .iter()
        .filter(|root| plain_absolute(root))
        .filter_map(|root| resolve_lenient(root, &resolve).ok())
        .any(|root| resolved.starts_with(root));
    if inside {
        return Ok(resolved);
    }
    Err(PathError::Outside {
        path: path.display().to_string(),
        resolved: resolved.display().to_string(),
        roots: roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// `path` resolved through its longest ancestor that `resolve` accepts, the rest appended.
fn resolve_lenient<R>(path: &Path, resolve: &R) -> Result<PathBuf, PathError>
where
    R: Fn(&Path) -> io::Result<PathBuf>,
{
    let mut missing = Vec::new();
    let mut current = path;
    loop {
        match resolve(current) {
            Ok(mut resolved) => {
                resolved.extend(missing.iter().rev());
                return Ok(resolved);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (current.parent(), current.file_name()) else {
                    return Err(PathError::Unresolvable {
                        path: path.display().to_string(),
                        error: e.to_string(),
                    });
                };
                missing.push(name);
                current = parent;
            }
            Err(e) => {
                return Err(PathError::Unresolvable {
                    path: path.display().to_string(),
                    error: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system of directories and symlinks, as `canonicalize` sees it.
    fn fs(p: &Path) -> io::Result<PathBuf> {
        let links = [("/data/out", "/etc"), ("/alias", "/data")];
        let known = ["/", "/data", "/data/vod", "/etc", "/etc/passwd", "/other"];
        let mut p = p.to_owned();
        for (link, target) in links {
            if let Ok(rest) = p.strip_prefix(link) {
                p = Path::new(target).join(rest);
            }
        }
        if known.iter().any(|k| Path::new(k) == p) {
            Ok(p)
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }

    #[test]
    fn every_clone_of_live_roots_sees_one_write_and_snapshots_keep_theirs() {
        let live = LiveRoots::new(Roots {
            file_input: vec!["/old".into()],
            storage: vec!["/data".into()],
        });
        let reader = live.clone();
        let before = reader.get();
        live.set(Roots {
            file_input: vec!["/new".into()],
            storage: vec!["/srv".into()],
        });
        assert_eq!(reader.get().file_input, [PathBuf::from("/new")]);
        assert_eq!(reader.get().storage, [PathBuf::from("/srv")]);
        assert_eq!(
            before.file_input,
            [PathBuf::from("/old")],
            "a snapshot stays whole"
        );
        assert_eq!(*LiveRoots::default().get(), Roots::default());
    }

    #[test]
    fn relative_paths_refuse_every_way_out() {
        assert_eq!(relative("a/b.mp4"), Ok(PathBuf::from("a/b.mp4")));
        assert_eq!(relative("dir/"), Ok(PathBuf::from("dir")));
        assert_eq!(relative(""), Ok(PathBuf::new()));
        for bad in [
            "..",
            "a/../b",
            "./a",
            "/etc/passwd",
            "a//b",
            "a\\..\\b",
            "a\0b",
            "//x",
        ] {
            assert!(relative(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn containment_resolves_symlinks_and_missing_tails() {
        let roots = [PathBuf::from("/data")];
        assert_eq!(
            resolve_inside(Path::new("/data/vod/new/dir"), &roots, fs),
            Ok(PathBuf::from("/data/vod/new/dir"))
        );
        // Through a link into the root: fine, and the result is the real place.
        assert_eq!(
            resolve_inside(Path::new("/alias/vod"), &roots, fs),
            Ok(PathBuf::from("/data/vod"))
        );
        // Through a link out of the root.
        assert!(matches!(
            resolve_inside(Path::new("/data/out/passwd"), &roots, fs),
            Err(PathError::Outside { .. })
        ));
        assert!(resolve_inside(Path::new("/other/x"), &roots, fs).is_err());
        assert_eq!(
            resolve_inside(Path::new("/data/../etc"), &roots, fs),
            Err(PathError::NotAbsolute)
        );
        assert_eq!(
            resolve_inside(Path::new("rel"), &roots, fs),
            Err(PathError::NotAbsolute)
        );
        assert!(resolve_inside(Path::new("/data/vod"), &[], fs).is_err());
        // A prefix that is not a path boundary is not inside.
        let roots = [PathBuf::from("/dat")];
        assert!(resolve_inside(Path::new("/data/vod"), &roots, fs).is_err());
    }
}
