//! VOD mounts (SPEC §Domain "VOD mount", §API `/vod`): named directories of video files that
//! the API browses, uploads into and serves with byte ranges, and that `file://<mount>/<path>`
//! inputs play from.
//!
//! A mount is a record `{name, storage, comment}`; its files are whatever lies in `storage`.
//! What a client may name inside it is checked by [`crate::roots::relative`], and which files
//! are served or accepted by [`is_video`]: VOD raw serving is for video, never for whatever
//! else an operator keeps next to it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::roots::plain_absolute;
use crate::validate::{ErrorCode, FieldError, ValidationErrors, decode_strict, object_body};

/// A VOD mount as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VodMount {
    /// `[A-Za-z0-9_-]{1,64}`; from the URL path on `PUT /vod/{name}`.
    pub name: String,
    /// The absolute directory holding the files; created and write-probed when the mount is
    /// saved; must lie inside `security.storage_roots`.
    pub storage: String,
    /// Free text.
    #[serde(default)]
    pub comment: String,
}

/// One entry of a mount's listing (`GET /vod/{name}/files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VodEntry {
    /// The file or directory name.
    pub name: String,
    /// Its path inside the mount (`movies/a.mp4`).
    pub path: String,
    /// Bytes (0 for a directory).
    pub size: u64,
    /// A directory.
    pub is_dir: bool,
    /// Last modification, Unix seconds.
    pub mod_time_unix: i64,
    /// `/vod/{name}/raw/{path}` (empty for a directory).
    pub play_url: String,
    /// `file://{name}/{path}`, the input URL that plays it as a stream (empty for a directory).
    pub ingest_url: String,
}

impl VodEntry {
    /// The entry of `path` (inside mount `mount`).
    pub fn new(mount: &str, path: &str, size: u64, is_dir: bool, mod_time_unix: i64) -> Self {
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        let (play_url, ingest_url) = if is_dir {
            (String::new(), String::new())
        } else {
            (
                format!("/vod/{mount}/raw/{path}"),
                format!("file://{mount}/{path}"),
            )
        };
        Self {
            name,
            path: path.to_owned(),
            size,
            is_dir,
            mod_time_unix,
            play_url,
            ingest_url,
        }
    }
}

/// The extensions VOD raw serves and uploads accept (SPEC §Security "File serving"), lower
/// case, without the dot.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "flv", "ts", "mts", "m2ts", "mpg", "mpeg", "wmv",
    "3gp",
];

/// Whether `name` ends with a video extension (any case).
pub fn is_video(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && VIDEO_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(ext))
    })
}

/// The `Content-Type` of a video file by its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "flv" => "video/x-flv",
        "ts" | "mts" | "m2ts" => "video/mp2t",
        "mpg" | "mpeg" => "video/mpeg",
        "wmv" => "video/x-ms-wmv",
        "3gp" => "video/3gpp",
        _ => "application/octet-stream",
    }
}

/// Whether `name` is a valid mount name (`[A-Za-z0-9_-]{1,64}`).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Decodes a mount body strictly (unknown field → 422 naming it). `name`, when given (from
/// the URL path), replaces any `name` in the body.
pub fn decode_mount(name: Option<&str>, mut body: Value) -> Result<VodMount, ValidationErrors> {
    let map = object_body(&mut body, "a VOD mount")?;
    if let Some(name) = name {
        map.insert("name".into(), Value::String(name.to_owned()));
    }
    let mount: VodMount = decode_strict(body)?;
    let mut errors = Vec::new();
    if !valid_name(&mount.name) {
        errors.push(FieldError::new(
            "name",
            ErrorCode::InvalidField,
            format!(
                "a mount name is 1-64 of A-Z, a-z, 0-9, _ and -, got {:?}",
                mount.name
            ),
        ));
    }
    if !plain_absolute(std::path::Path::new(&mount.storage)) {
        errors.push(FieldError::new(
            "storage",
            ErrorCode::InvalidField,
            format!(
                "must be an absolute directory without \"..\", got {:?}",
                mount.storage
            ),
        ));
    }
    if mount.comment.len() > 4096 {
        errors.push(FieldError::new(
            "comment",
            ErrorCode::InvalidField,
            "must be at most 4 KiB",
        ));
    }
    if errors.is_empty() {
        Ok(mount)
    } else {
        Err(ValidationErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mounts_decode_strictly_and_name_their_fields() {
        let mount =
            decode_mount(None, json!({"name": "films", "storage": "/srv/films"})).expect("decodes");
        assert_eq!(mount.comment, "");
        let mount = decode_mount(Some("b"), json!({"name": "a", "storage": "/srv"})).unwrap();
        assert_eq!(mount.name, "b");
        let paths = |body| -> Vec<String> {
            decode_mount(None, body)
                .unwrap_err()
                .0
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        assert_eq!(
            paths(json!({"name": "a b", "storage": "rel"})),
            ["name", "storage"]
        );
        assert_eq!(
            paths(json!({"name": "a", "storage": "/x/../y"})),
            ["storage"]
        );
        assert_eq!(
            paths(json!({"name": "a", "storage": "/x", "bogus": 1})),
            ["bogus"]
        );
    }

    #[test]
    fn only_video_names_are_video() {
        assert!(is_video("a.mp4") && is_video("B.TS") && is_video("x.y.m2ts"));
        assert!(
            !is_video("a.txt") && !is_video(".mp4") && !is_video("mp4") && !is_video("a.mp4.part")
        );
        assert_eq!(content_type("a.MP4"), "video/mp4");
    }

    #[test]
    fn entries_carry_their_urls() {
        let file = VodEntry::new("films", "dir/a.mp4", 10, false, 5);
        assert_eq!(file.name, "a.mp4");
        assert_eq!(file.play_url, "/vod/films/raw/dir/a.mp4");
        assert_eq!(file.ingest_url, "file://films/dir/a.mp4");
        assert_eq!(VodEntry::new("films", "dir", 0, true, 5).play_url, "");
    }
}
