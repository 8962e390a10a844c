//! The watermark library's vocabulary (SPEC §Domain "Watermark asset", §API `/watermarks`):
//! asset ids, the image types an upload may be, and the asset record the API shows.
//!
//! An upload's type is decided by its first bytes ([`ImageType::sniff`]), never by the file
//! name or the `Content-Type` the client sent: the file ends up in FFmpeg's `movie` filter,
//! and a name that says `.png` in front of anything else would only fail later, inside a
//! running stream's transcoder. An id ([`AssetId`]) is parsed before it is joined onto the
//! library's directory, so no client value with `/`, `..` or NUL ever reaches a path.
//!
//! ```
//! use tributary_domain::watermark::{AssetId, ImageType};
//!
//! assert_eq!(ImageType::sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageType::Png));
//! assert_eq!(ImageType::sniff(b"<svg"), None);
//! assert!(AssetId::parse("0123456789abcdef").is_some());
//! assert!(AssetId::parse("../../etc/passwd").is_none());
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A library asset's id: 16 lower-case hex characters (64 random bits, drawn by the engine).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetId(String);

impl AssetId {
    /// The id `text` spells, if it is 16 lower-case hex characters; anything else (a path, an
    /// upper-case spelling, a stream's free-form `asset_id`) is no library id.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(text.to_owned()))
    }

    /// The id of 64 random bits (the caller draws them).
    pub fn from_bits(bits: u64) -> Self {
        Self(format!("{bits:016x}"))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The image types the library accepts (what FFmpeg's `movie` filter reads as a still).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageType {
    /// `\x89PNG\r\n\x1a\n`.
    Png,
    /// `\xff\xd8\xff`.
    Jpeg,
    /// `GIF87a` or `GIF89a`.
    Gif,
}

impl ImageType {
    /// Every accepted type.
    pub const ALL: [Self; 3] = [Self::Png, Self::Jpeg, Self::Gif];

    /// The type `head` (a file's first bytes; [`SNIFF_LEN`] are enough) starts like, if any.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.starts_with(b"\xff\xd8\xff") {
            Some(Self::Jpeg)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else {
            None
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
        }
    }

    /// The extension its file is stored with (no dot).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
        }
    }

    /// The type stored with `extension` (no dot).
    pub fn from_extension(extension: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.extension() == extension)
    }
}

/// A library asset as the API shows it (SPEC §Domain "Watermark asset").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WatermarkAsset {
    /// 16 random hex characters; what a stream's `watermark.asset_id` names.
    pub id: String,
    /// A label, at most 128 characters; the uploaded file's name unless `?name=` gave one.
    pub name: String,
    /// The uploaded file's name (the multipart part's filename).
    pub file_name: String,
    /// `image/png`, `image/jpeg` or `image/gif`, from the file's first bytes.
    pub content_type: String,
    /// Bytes.
    pub size_bytes: u64,
    /// RFC 3339, UTC, milliseconds.
    pub uploaded_at: String,
}

/// Checks an asset's `name` (the `?name=` of an upload, or the file name it defaults to):
/// not blank, at most [`NAME_MAX`] characters, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be blank".into());
    }
    let chars = name.chars().count();
    if chars > NAME_MAX {
        return Err(format!(
            "must be at most {NAME_MAX} characters, got {chars}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// The longest asset name, in characters (SPEC: ≤ 128).
pub const NAME_MAX: usize = 128;

/// How many leading bytes [`ImageType::sniff`] needs.
pub const SNIFF_LEN: usize = 8;

/// An id's length.
const ID_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_knows_png_jpeg_and_gif_by_their_magic_and_nothing_else() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(ImageType::sniff(png), Some(ImageType::Png));
        assert_eq!(
            ImageType::sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"),
            Some(ImageType::Jpeg)
        );
        assert_eq!(ImageType::sniff(b"GIF89a\x01\0"), Some(ImageType::Gif));
        assert_eq!(ImageType::sniff(b"GIF87a\x01\0"), Some(ImageType::Gif));
        for other in [
            &b""[..],
            b"\x89PNG",            // cut short
            b"GIF88a",             // no such version
            b"<svg xmlns=",        // SVG is text: a script carrier, refused
            b"BM6\0\0\0",          // BMP
            b"RIFF\0\0\0\0WEBP",   // WebP
            b"\0\0\0\x18ftypmp42", // MP4
        ] {
            assert_eq!(ImageType::sniff(other), None, "{other:?}");
        }
        for t in ImageType::ALL {
            assert_eq!(ImageType::from_extension(t.extension()), Some(t));
            assert!(t.content_type().starts_with("image/"));
        }
        assert_eq!(ImageType::from_extension("svg"), None);
    }

    #[test]
    fn ids_are_sixteen_lower_case_hex_characters_and_nothing_that_could_be_a_path() {
        let id = AssetId::from_bits(0x00ab_cdef_0123_4567);
        assert_eq!(id.as_str(), "00abcdef01234567");
        assert_eq!(AssetId::parse(id.as_str()), Some(id));
        for bad in [
            "",
            "0123456789abcde",   // 15
            "0123456789abcdef0", // 17
            "0123456789ABCDEF",
            "0123456789abcdeg",
            "../../etc/passwd",
            "..%2F..%2Fetc%2Fpa",
            "01234567/9abcdef",
            "0123456789abcde\0",
            "0123456789abcdé",
            "logo",
        ] {
            assert_eq!(AssetId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_are_bounded_and_printable() {
        assert!(check_name("logo.png").is_ok());
        assert!(
            check_name(&"é".repeat(NAME_MAX)).is_ok(),
            "characters, not bytes"
        );
        let long = check_name(&"a".repeat(NAME_MAX + 1)).unwrap_err();
        assert!(long.contains("128"), "{long}");
        assert!(check_name("  ").is_err());
        assert!(check_name("a\nb").is_err());
    }
}
