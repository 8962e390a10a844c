//! FFmpeg's stderr: lines split out, decoder chatter told apart from real errors, and the tail
//! that explains a crash (SPEC §Transcoder "Supervision").
//!
//! A live input with a hiccup makes decoders print hundreds of lines (timestamp resyncs,
//! corrupt packets, missing references) that say nothing about why FFmpeg died. They are
//! logged at debug and kept out of the tail, so a crash's error is the last 8 lines that
//! matter, joined with ` | `. Object addresses (`[h264 @ 0x55d0c…]`) are removed, so the same
//! error reads the same on every crash (the supervisor counts identical errors).

use std::collections::VecDeque;

/// One stderr line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text, without addresses, at most [`MAX_LINE`] bytes.
    pub text: String,
    /// Decoder chatter: log at debug, keep out of errors.
    pub noise: bool,
}

/// Splits stderr into [`Line`]s and keeps the tail of the lines that are not noise.
///
/// Push the bytes read, then pull lines until `None` (to log them); [`tail`](Self::tail) is
/// the error text of a crash.
#[derive(Debug, Default)]
pub struct StderrTail {
    /// The unfinished line (bounded: longer lines are cut at [`MAX_LINE`]).
    partial: Vec<u8>,
    /// The last [`TAIL_LINES`] lines that are not noise.
    tail: VecDeque<String>,
    /// Lines not yet pulled; the oldest is dropped past [`MAX_PENDING`].
    pending: VecDeque<Line>,
}

impl StderrTail {
    /// An empty tail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes read from stderr.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.finish_line();
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            }
        }
    }

    /// Ends the unfinished line (stderr closed).
    pub fn finish(&mut self) {
        self.finish_line();
    }

    /// The next line, oldest first.
    pub fn pull(&mut self) -> Option<Line> {
        self.pending.pop_front()
    }

    /// The last lines that are not noise, joined with ` | `; empty when there were none.
    pub fn tail(&self) -> String {
        let parts: Vec<&str> = self.tail.iter().map(String::as_str).collect();
        parts.join(" | ")
    }

    fn finish_line(&mut self) {
        if self.partial.is_empty() {
            return;
        }
        let text = strip_addresses(String::from_utf8_lossy(&self.partial).trim());
        self.partial.clear();
        if text.is_empty() {
            return;
        }
        let noise = is_noise(&text);
        if !noise {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(text.clone());
        }
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Line { text, noise });
    }
}

/// Whether a line is decoder chatter (SPEC's list: timestamp resync, corrupt packet, PES size
/// mismatch, missing PPS or reference, "no frame!", codec-parameter and pixel-format hints,
/// "Invalid timestamps", "Last message repeated").
pub fn is_noise(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    NOISE.iter().any(|pattern| lower.contains(pattern))
}

/// `[h264 @ 0x55d0c2a3b4c0] error` → `[h264] error`.
fn strip_addresses(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(" @ 0x") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 5..];
        let hex = after
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(after.len());
        rest = &after[hex..];
    }
    out.push_str(rest);
    out
}

/// Lower-case fragments of decoder chatter.
const NOISE: &[&str] = &[
    "resync",
    "timestamp discontinuity",
    "non-monotonous dts",
    "non monotonically increasing dts",
    "corrupt",
    "pes packet size mismatch",
    "non-existing pps",
    "no frame!",
    "missing reference",
    "reference picture missing",
    "missing picture in access unit",
    "mmco: unref short failure",
    "decode_slice_header error",
    "error while decoding mb",
    "concealing",
    "could not find codec parameters",
    "consider increasing the value for the 'analyzeduration'",
    "pixel format",
    "invalid timestamps",
    "last message repeated",
];

/// Lines in a crash's error text (SPEC §Defaults "stderr tail").
pub const TAIL_LINES: usize = 8;

/// Longest line kept, bytes; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 512;

/// Lines kept when the caller does not pull.
const MAX_PENDING: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatter_is_pulled_as_noise_and_kept_out_of_the_tail() {
        let mut tail = StderrTail::new();
        tail.push(
            b"[h264 @ 0x55d0c2a3b4c0] non-existing PPS 0 referenced\n\
              [mpegts @ 0x5600] PES packet size mismatch\r\n\
              [h264 @ 0x1] error while decoding MB 10 20, bytestream -5\n\
              [h264 @ 0x1] concealing 200 DC, 200 AC, 200 MV errors in P frame\n\
              Last message repeated 3 times\n\
              [vost#0:0/libx264 @ 0x2] Error initializing output stream: Invalid argument\n\
              Conversion failed!",
        );
        tail.finish();
        let lines: Vec<Line> = std::iter::from_fn(|| tail.pull()).collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines.iter().filter(|l| l.noise).count(), 5);
        assert_eq!(lines[0].text, "[h264] non-existing PPS 0 referenced");
        assert_eq!(
            tail.tail(),
            "[vost#0:0/libx264] Error initializing output stream: Invalid argument | \
             Conversion failed!"
        );
    }

    #[test]
    fn the_tail_keeps_the_last_8_lines_and_long_lines_are_cut() {
        let mut tail = StderrTail::new();
        for i in 0..20 {
            tail.push(format!("error {i}\n").as_bytes());
        }
        tail.push(&[b'x'; 2000]);
        tail.push(b"\n");
        let kept = tail.tail();
        assert!(kept.starts_with("error 13 | "), "{kept}");
        assert!(kept.ends_with(&"x".repeat(MAX_LINE)), "cut at {MAX_LINE}");
        let pulled = std::iter::from_fn(|| tail.pull()).count();
        assert_eq!(pulled, 21);
    }

    #[test]
    fn addresses_are_removed() {
        assert_eq!(strip_addresses("[a @ 0xdeadBEEF] x @ 0x1 y"), "[a] x y");
        assert_eq!(strip_addresses("no address"), "no address");
    }
}
