//! Admin token and data-directory hygiene (SPEC §Security).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine as _;
use rand::RngCore;

use crate::OpenError;

/// The bearer token admin routes require from non-loopback peers.
///
/// Its `Debug` and `Display` print `****`, so it cannot leak into logs by accident.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// The configured token, else `<data_dir>/admin-token`, else a new one generated there
    /// (32 random bytes, base64url, mode 0600); its path, never the token, is logged once at
    /// WARN.
    pub(crate) fn load(configured: &str, data_dir: &Path) -> Result<Self, OpenError> {
        if !configured.trim().is_empty() {
            return Ok(Self(configured.trim().to_owned()));
        }
        let path = data_dir.join("admin-token");
        let token_err = |error| OpenError::Token {
            path: path.clone(),
            error,
        };
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(Self(text.trim().to_owned())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(token_err(e)),
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        write_private(&path, token.as_bytes()).map_err(token_err)?;
        tracing::warn!(
            path = %path.display(),
            "generated the admin token and wrote it to this file (mode 0600; \
             non-loopback admin requests need 'Authorization: Bearer <token>')"
        );
        Ok(Self(token))
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        let a = self.0.as_bytes();
        let b = presented.as_bytes();
        let mut diff = a.len() ^ b.len();
        for i in 0..a.len().max(b.len()) {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0);
            diff |= usize::from(x ^ y);
        }
        diff == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(****)")
    }
}

/// Creates the data directory if needed, mode 0700.
pub(crate) fn secure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = AdminToken::load("", dir.path()).unwrap();
        let again = AdminToken::load("", dir.path()).unwrap();
        assert!(first.matches(&again.0));
        assert_eq!(first.0.len(), 43);
        assert!(!first.matches("nope"));
        assert!(!first.matches(""));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("admin-token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let configured = AdminToken::load(" s3cret ", dir.path()).unwrap();
        assert!(configured.matches("s3cret"));
        assert_eq!(format!("{configured:?}"), "AdminToken(****)");
    }
}
