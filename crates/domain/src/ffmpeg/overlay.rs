//! Watermarks (SPEC §Domain "Watermark", §Transcoder "Watermark", §Security "Filter-graph
//! safety"): the record parsed into an [`Overlay`], and the filters that draw it.
//!
//! Every operator value that reaches the filter graph is either checked against a closed
//! alphabet at save (colours, custom `x`/`y`) or escaped at both levels FFmpeg parses (paths);
//! the text itself never reaches the graph at all: the transcoder writes it to a file and
//! `drawtext` reads that file, so no quote, colon or newline in it can change the graph.

use crate::stream::Watermark;
use crate::validate::{ErrorCode, FieldError};

use super::escape::filter_value;

/// A watermark that is enabled and valid: what the transcoder draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay {
    /// Text or image.
    pub kind: OverlayKind,
    /// Where it sits.
    pub position: Position,
    /// Pixels from the left or right edge (SPEC: 0 → 10).
    pub offset_x: i32,
    /// Pixels from the top or bottom edge (SPEC: 0 → 10).
    pub offset_y: i32,
    /// 0..=1 (SPEC: 0 → 1.0).
    pub opacity: f64,
    /// Scale font size, offsets and image by rung width / widest rung.
    pub resize: bool,
}

/// What an overlay draws.
#[derive(Debug, Clone, PartialEq)]
pub enum OverlayKind {
    /// `drawtext`, the text read from a file (strftime sequences expanded).
    Text {
        /// The text; the transcoder writes it to the file `drawtext` reads.
        text: String,
        /// Absolute font path; `None` = FFmpeg's default font.
        font_file: Option<String>,
        /// Points (SPEC: 0 → 24).
        font_size: u32,
        /// A colour name, `#RRGGBB[AA]` or `0xRRGGBB[AA]`, optionally `@alpha`.
        font_color: String,
    },
    /// `movie` + `colorchannelmixer` + `overlay`.
    Image(ImageSource),
}

/// Where an image watermark comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An absolute path.
    Path(String),
    /// A watermark library asset (`[A-Za-z0-9_-]{1,64}`), resolved to a path at start.
    Asset(String),
}

/// A position preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Offsets from the top left corner.
    TopLeft,
    /// Offsets from the top right corner.
    TopRight,
    /// Offsets from the bottom left corner.
    BottomLeft,
    /// Offsets from the bottom right corner (the default).
    BottomRight,
    /// Centred; offsets ignored.
    Center,
    /// Operator expressions (letters, digits, spaces and `_ + - * / ( ) . ,` only); an axis
    /// left empty is placed at its offset from the top or left edge.
    Custom {
        /// The x expression.
        x: Option<String>,
        /// The y expression.
        y: Option<String>,
    },
}

impl Overlay {
    /// Parses an enabled watermark (SPEC's rules; 422 `INVALID_WATERMARK` naming each failing
    /// field). A disabled watermark is no overlay: the caller does not parse it.
    pub fn parse(w: &Watermark) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError::new(
                format!("watermark.{field}"),
                ErrorCode::InvalidWatermark,
                message,
            ));
        };
        let kind = match w.kind.as_str() {
            "text" => {
                if w.text.trim().is_empty() {
                    bad("text", "a text watermark needs non-blank text");
                }
                Some(OverlayKind::Text {
                    text: w.text.clone(),
                    font_file: (!w.font_file.is_empty()).then(|| w.font_file.clone()),
                    font_size: if w.font_size == 0 { 24 } else { w.font_size },
                    font_color: if w.font_color.is_empty() {
                        "white".to_owned()
                    } else {
                        w.font_color.clone()
                    },
                })
            }
            "image" => match (w.image_path.is_empty(), w.asset_id.is_empty()) {
                (true, true) | (false, false) => {
                    bad(
                        "image_path",
                        "an image watermark needs exactly one of image_path and asset_id",
                    );
                    None
                }
                (false, true) => {
                    if !w.image_path.starts_with('/') {
                        bad("image_path", "must be an absolute path");
                    }
                    Some(OverlayKind::Image(ImageSource::Path(w.image_path.clone())))
                }
                (true, false) => {
                    let ok = w.asset_id.len() <= 64
                        && w.asset_id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !ok {
                        bad("asset_id", "must match [A-Za-z0-9_-]{1,64}");
                    }
                    Some(OverlayKind::Image(ImageSource::Asset(w.asset_id.clone())))
                }
            },
            other => {
                bad(
                    "type",
                    &format!("must be \"text\" or \"image\", got {other:?}"),
                );
                None
            }
        };
        if !(0.0..=1.0).contains(&w.opacity) {
            bad("opacity", "must be within [0, 1]");
        }
        let position = match w.position.as_str() {
            "top_left" => Some(Position::TopLeft),
            "top_right" => Some(Position::TopRight),
            "bottom_left" => Some(Position::BottomLeft),
            "" | "bottom_right" => Some(Position::BottomRight),
            "center" => Some(Position::Center),
            "custom" => {
                if w.x.is_empty() && w.y.is_empty() {
                    bad("x", "a custom position needs x or y");
                }
                Some(Position::Custom {
                    x: (!w.x.is_empty()).then(|| w.x.clone()),
                    y: (!w.y.is_empty()).then(|| w.y.clone()),
                })
            }
            _ => {
                bad(
                    "position",
                    "must be top_left, top_right, bottom_left, bottom_right, center or custom",
                );
                None
            }
        };
        for (field, expr) in [("x", &w.x), ("y", &w.y)] {
            let ok = expr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _+-*/().,".contains(c));
            if !ok {
                bad(
                    field,
                    "may use only letters, digits, spaces and _ + - * / ( ) . ,",
                );
            }
        }
        if !w.font_color.is_empty() && !valid_color(&w.font_color) {
            bad(
                "font_color",
                "must be a colour name, #RRGGBB[AA] or 0xRRGGBB[AA], optionally @alpha",
            );
        }
        if !w.font_file.is_empty() && !w.font_file.starts_with('/') {
            bad("font_file", "must be an absolute path");
        }
        match (kind, position) {
            (Some(kind), Some(position)) if errors.is_empty() => Ok(Self {
                kind,
                position,
                offset_x: if w.offset_x == 0 { 10 } else { w.offset_x },
                offset_y: if w.offset_y == 0 { 10 } else { w.offset_y },
                opacity: if w.opacity == 0.0 { 1.0 } else { w.opacity },
                resize: w.resize,
            }),
            _ => Err(errors),
        }
    }

    /// The filters that draw this overlay, reading `file` (the text file for text, the
    /// image for an image), scaled by `scale` when [`resize`](Self::resize) is on.
    pub(super) fn filters(&self, file: &str, scale: f64) -> OverlayFilters {
        let scale = if self.resize { scale } else { 1.0 };
        let scaled = |n: i32| (f64::from(n) * scale).round() as i64;
        let (ox, oy) = (scaled(self.offset_x), scaled(self.offset_y));
        match &self.kind {
            OverlayKind::Text {
                font_file,
                font_size,
                font_color,
                ..
            } => {
                let (x, y) = self.xy(("w", "h"), ("tw", "th"), ox, oy);
                let size = ((f64::from(*font_size) * scale).round() as u32).max(1);
                let mut text = format!(
                    "drawtext=textfile={}:expansion=strftime:fontsize={size}:fontcolor={}:x={}:y={}",
                    filter_value(file),
                    filter_value(font_color),
                    filter_value(&x),
                    filter_value(&y),
                );
                if let Some(font) = font_file {
                    text.push_str(":fontfile=");
                    text.push_str(&filter_value(font));
                }
                if self.opacity < 1.0 {
                    text.push_str(&format!(":alpha={}", decimal(self.opacity)));
                }
                OverlayFilters::Chain(text)
            }
            OverlayKind::Image(_) => {
                let (x, y) = self.xy(("W", "H"), ("w", "h"), ox, oy);
                let mut source = format!("movie=filename={}", filter_value(file));
                if scale != 1.0 {
                    source.push_str(&format!(",scale=w=iw*{}:h=-1", decimal(scale)));
                }
                source.push_str(&format!(
                    ",format=rgba,colorchannelmixer=aa={}",
                    decimal(self.opacity)
                ));
                OverlayFilters::Source {
                    source,
                    overlay: format!("overlay=x={}:y={}", filter_value(&x), filter_value(&y)),
                }
            }
        }
    }

    /// The x and y expressions: `main` are the frame's width and height variables, `item` the
    /// drawn item's.
    fn xy(&self, main: (&str, &str), item: (&str, &str), ox: i64, oy: i64) -> (String, String) {
        let far = |size: &str, own: &str, offset: i64| format!("{size}-{own}{}", minus(offset));
        let (x, y) = (ox.to_string(), oy.to_string());
        match &self.position {
            Position::TopLeft => (x, y),
            Position::TopRight => (far(main.0, item.0, ox), y),
            Position::BottomLeft => (x, far(main.1, item.1, oy)),
            Position::BottomRight => (far(main.0, item.0, ox), far(main.1, item.1, oy)),
            Position::Center => (
                format!("({}-{})/2", main.0, item.0),
                format!("({}-{})/2", main.1, item.1),
            ),
            Position::Custom { x: cx, y: cy } => (cx.clone().unwrap_or(x), cy.clone().unwrap_or(y)),
        }
    }
}

/// The filter text of an overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OverlayFilters {
    /// One filter appended to the video chain (`drawtext=…`).
    Chain(String),
    /// A source chain (`movie=…`) and the filter that lays it over the video (`overlay=…`).
    Source {
        /// `movie=…,format=rgba,colorchannelmixer=…`.
        source: String,
        /// `overlay=x=…:y=…`.
        overlay: String,
    },
}

/// `-n` for n ≥ 0, `+|n|` below: `w-tw-10`, `w-tw+5`.
fn minus(n: i64) -> String {
    if n >= 0 {
        format!("-{n}")
    } else {
        format!("+{}", -n)
    }
}

/// A short decimal: `0.5`, `0.3333`, `1`.
pub(super) fn decimal(v: f64) -> String {
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn valid_color(text: &str) -> bool {
    let (color, alpha) = match text.split_once('@') {
        Some((c, a)) => (c, Some(a)),
        None => (text, None),
    };
    if let Some(a) = alpha
        && !a.parse::<f64>().is_ok_and(|v| (0.0..=1.0).contains(&v))
    {
        return false;
    }
    let hex = color.strip_prefix('#').or_else(|| color.strip_prefix("0x"));
    match hex {
        Some(h) => matches!(h.len(), 6 | 8) && h.bytes().all(|b| b.is_ascii_hexdigit()),
        None => {
            !color.is_empty() && color.len() <= 32 && color.bytes().all(|b| b.is_ascii_alphabetic())
        }
    }
}
