//! One delivery try of one batch: an HTTP POST or an append to a file.
//!
//! **HTTP.** The request goes out over [`tributary_net::connect`], the one dialer, so the SSRF
//! guard checks every address the hook's host resolves to (an address written in the URL
//! included) before anything is sent, and TLS uses the system's roots. The client is a few
//! lines of HTTP/1.1 on purpose: a webhook is one POST per connection (`Connection: close`),
//! where only the status line of the answer matters, so there is no pool, no redirect
//! following (a 3xx is a failed try, SPEC §Hooks) and no body to read. The whole try, from
//! resolving to the status line, has the hook's `timeout_sec`.
//!
//! **File.** The target resolves inside `hooks.file_root` with its directory's symlinks
//! resolved; a target that is itself a symlink is refused, so a file hook cannot be turned
//! into a write anywhere on the host. Lines are appended with `O_APPEND` in one write per
//! batch, under a lock per path so two hooks on one file never interleave partial lines; the
//! file is created with mode 0600.

use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_net::{Dial, SsrfGuard, Target, Tls};

use crate::lock;

/// What one try came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The HTTP status answered, if an answer came.
    pub(crate) http_status: Option<u16>,
    /// Why the try failed; `None` when it succeeded.
    pub(crate) error: Option<String>,
}

/// An HTTP request's parts that do not change between tries.
pub(crate) struct Post<'a> {
    /// The hook's URL.
    pub(crate) url: &'a str,
    /// The JSON array.
    pub(crate) body: &'a [u8],
    /// Extra headers (batch size, event ids, signature).
    pub(crate) headers: &'a [(&'static str, String)],
    /// The budget of the whole try.
    pub(crate) timeout: Duration,
    /// Which addresses may be dialed.
    pub(crate) guard: &'a SsrfGuard,
}

/// The locks that keep two appends to one file from interleaving. One entry per file path a
/// hook has written; hooks are few, so the map stays small.
#[derive(Default)]
pub(crate) struct FileLocks(Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>);

impl Outcome {
    fn failed(http_status: Option<u16>, error: String) -> Self {
        Self {
            http_status,
            error: Some(error),
        }
    }
}

/// One POST; 2xx is success, anything else (a redirect included) a failure naming it.
pub(crate) async fn post(request: Post<'_>) -> Outcome {
    let timeout = request.timeout;
    match tokio::time::timeout(timeout, exchange(&request)).await {
        Ok(Ok(status)) if (200..300).contains(&status) => Outcome {
            http_status: Some(status),
            error: None,
        },
        Ok(Ok(status)) if (300..400).contains(&status) => Outcome::failed(
            Some(status),
            format!("HTTP {status}: redirects are not followed (SPEC §Hooks); use the final URL"),
        ),
        Ok(Ok(status)) => Outcome::failed(Some(status), format!("HTTP {status}")),
        Ok(Err(error)) => Outcome::failed(None, error),
        Err(_) => Outcome::failed(
            None,
            format!("no answer within {} s (timeout_sec)", timeout.as_secs_f32()),
        ),
    }
}

impl FileLocks {
    /// Appends `lines` (each ending in `\n`) to `path` in one write, under its lock. Runs on
    /// a blocking thread.
    pub(crate) fn append(&self, path: &Path, lines: &[u8]) -> Outcome {
        let file_lock = Arc::clone(lock(&self.0).entry(path.to_owned()).or_default());
        let _held = lock(&file_lock);
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Outcome::failed(
                None,
                format!(
                    "{} is a symlink; file hooks do not follow them",
                    path.display()
                ),
            );
        }
        let written = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| file.write_all(lines));
        match written {
            Ok(()) => Outcome {
                http_status: None,
                error: None,
            },
            Err(e) => Outcome::failed(None, format!("appending to {}: {e}", path.display())),
        }
    }
}

/// Where a file hook's `target` lands: inside `root` (created 0700 if missing), with the
/// directories between resolved (symlinks included) and checked to stay inside it. A relative
/// target is taken under `root`; an absolute one must already lie inside it.
pub(crate) fn file_path(root: &Path, target: &str) -> Result<PathBuf, String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| format!("creating hooks.file_root {}: {e}", root.display()))?;
    let root = root
        .canonicalize()
        .map_err(|e| format!("resolving hooks.file_root {}: {e}", root.display()))?;
    let target = Path::new(target);
    let joined = if target.is_absolute() {
        target.to_owned()
    } else {
        root.join(target)
    };
    let (Some(dir), Some(name)) = (joined.parent(), joined.file_name()) else {
        return Err(format!("{} names no file", joined.display()));
    };
    let outside = || {
        format!(
            "{} is outside hooks.file_root {} (symlinks resolved)",
            joined.display(),
            root.display()
        )
    };
    // Missing directories are made only below an existing one that resolves inside the root,
    // so a symlink in the path never gets a directory created outside it.
    let existing = dir
        .ancestors()
        .find_map(|a| a.canonicalize().ok())
        .ok_or_else(outside)?;
    if !existing.starts_with(&root) {
        return Err(outside());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let dir = dir.canonicalize().map_err(|_| outside())?;
    if !dir.starts_with(&root) {
        return Err(outside());
    }
    Ok(dir.join(name))
}

/// Connects, sends the request, reads the status line.
async fn exchange(request: &Post<'_>) -> Result<u16, String> {
    let url = url::Url::parse(request.url).map_err(|e| format!("not a URL: {e}"))?;
    let tls = match url.scheme() {
        "https" => Tls::Verify,
        "http" => Tls::Off,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(v6)) => v6.to_string(),
        Some(host) => host.to_string(),
        None => return Err("the URL names no host".into()),
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let dial = Dial {
        tls,
        timeout: request.timeout,
        guard: request.guard.clone(),
    };
    let (mut io, _peer) = tributary_net::connect(&Target::new(host, port), &dial)
        .await
        .map_err(|e| e.to_string())?;
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: tributary/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION"),
        request.body.len()
    );
    for (name, value) in request.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let io_error = |e: std::io::Error| format!("{host_port}: {e}", host_port = authority);
    io.write_all(head.as_bytes()).await.map_err(io_error)?;
    io.write_all(request.body).await.map_err(io_error)?;
    io.flush().await.map_err(io_error)?;
    // The status line is all that is read: "HTTP/1.1 204 No Content\r\n".
    let mut answer = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = io.read(&mut chunk).await.map_err(io_error)?;
        if n == 0 {
            return Err(format!(
                "{authority}: connection closed before an HTTP answer"
            ));
        }
        answer.extend_from_slice(&chunk[..n]);
        if answer.len() > MAX_STATUS_LINE {
            return Err(format!("{authority}: no HTTP status line in the answer"));
        }
    }
    status_code(&answer).ok_or_else(|| format!("{authority}: not an HTTP answer"))
}

/// The status of an answer starting `HTTP/1.x NNN`.
fn status_code(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
}

/// The longest status line read before giving up.
const MAX_STATUS_LINE: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 abc\r\n"), None);
    }

    #[test]
    fn file_targets_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("hooks");
        let path = file_path(&root, "a/events.jsonl").unwrap();
        assert!(path.starts_with(root.canonicalize().unwrap()));
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let err = file_path(&root, "link/x.jsonl").unwrap_err();
        assert!(err.contains("outside hooks.file_root"), "{err}");
        // Nothing is created behind the link.
        let err = file_path(&root, "link/new/x.jsonl").unwrap_err();
        assert!(err.contains("outside hooks.file_root"), "{err}");
        assert!(!outside.join("new").exists());
        let err = file_path(&root, outside.join("x.jsonl").to_str().unwrap()).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        let locks = FileLocks::default();
        assert_eq!(locks.append(&path, b"{}\n").error, None);
        assert_eq!(locks.append(&path, b"{}\n").error, None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n{}\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
