//! FFmpeg's `-progress` output, parsed (SPEC §Transcoder "Progress").
//!
//! FFmpeg writes a block of `key=value` lines every `-stats_period` (1 s) and ends each block
//! with `progress=continue` (or `progress=end` as it exits). [`ProgressParser`] is a pure
//! push/pull transformer: push the bytes read from the pipe, then pull finished reports until
//! `None`. Lines longer than [`MAX_LINE`] are dropped whole, so a misbehaving child cannot make
//! it buffer without bound.

use std::collections::VecDeque;

/// One progress block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Frames encoded so far (`frame`).
    pub frame: u64,
    /// Encoding rate, frames per second (`fps`).
    pub fps: f64,
    /// Encoding speed, × real time (`speed=1.01x`); `None` while FFmpeg reports `N/A`.
    pub speed: Option<f64>,
    /// Frames dropped by the output frame-rate logic (`drop_frames`).
    pub dropped_frames: u64,
    /// Frames duplicated by it (`dup_frames`).
    pub dup_frames: u64,
    /// Output position, microseconds (`out_time_us`).
    pub out_time_us: Option<i64>,
    /// Bytes written (`total_size`).
    pub total_size: Option<u64>,
    /// `progress=end`: FFmpeg is finishing.
    pub end: bool,
}

/// Turns the bytes of a `-progress` pipe into [`Progress`] reports.
#[derive(Debug, Default)]
pub struct ProgressParser {
    /// The unfinished line.
    line: Vec<u8>,
    /// The current line is past [`MAX_LINE`] and is being skipped to its end.
    skipping: bool,
    /// The block being read.
    block: Progress,
    /// Finished blocks not yet pulled (at most a few: one per `progress=` line pushed).
    ready: VecDeque<Progress>,
}

impl ProgressParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes read from the pipe. Pull every report before the next push.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => {
                    if !self.skipping {
                        let line = std::mem::take(&mut self.line);
                        self.line_done(&line);
                        self.line = line;
                    }
                    self.line.clear();
                    self.skipping = false;
                }
                _ if self.skipping => {}
                _ if self.line.len() >= MAX_LINE => {
                    self.skipping = true;
                    self.line.clear();
                }
                _ => self.line.push(b),
            }
        }
    }

    /// The next finished report, oldest first.
    pub fn pull(&mut self) -> Option<Progress> {
        self.ready.pop_front()
    }

    fn line_done(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let Some((key, value)) = line.trim_end_matches('\r').split_once('=') else {
            return;
        };
        let value = value.trim();
        let b = &mut self.block;
        match key.trim() {
            "frame" => b.frame = value.parse().unwrap_or(b.frame),
            "fps" => b.fps = value.parse().unwrap_or(b.fps),
            "drop_frames" => b.dropped_frames = value.parse().unwrap_or(b.dropped_frames),
            "dup_frames" => b.dup_frames = value.parse().unwrap_or(b.dup_frames),
            "out_time_us" => b.out_time_us = value.parse().ok(),
            "total_size" => b.total_size = value.parse().ok(),
            "speed" => {
                b.speed = value
                    .trim_end_matches('x')
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite())
            }
            "progress" => {
                b.end = value == "end";
                let done = std::mem::take(&mut self.block);
                if self.ready.len() >= MAX_READY {
                    self.ready.pop_front();
                }
                self.ready.push_back(done);
            }
            _ => {}
        }
    }
}

/// Longest line kept, bytes; FFmpeg's lines are well under 100.
pub const MAX_LINE: usize = 1024;

/// Reports kept when the caller does not pull; the oldest goes first.
const MAX_READY: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// Two blocks as FFmpeg 6 writes them with `-progress pipe:1 -stats_period 1`.
    const OUTPUT: &str = "frame=48\nfps=47.52\nstream_0_0_q=28.0\nbitrate= 812.3kbits/s\n\
        total_size=203040\nout_time_us=2000000\nout_time_ms=2000000\n\
        out_time=00:00:02.000000\ndup_frames=1\ndrop_frames=0\nspeed=1.98x\nprogress=continue\n\
        frame=79\nfps=39.1\nstream_0_0_q=-1.0\nbitrate=N/A\ntotal_size=N/A\n\
        out_time_us=N/A\nout_time_ms=N/A\nout_time=N/A\ndup_frames=2\ndrop_frames=3\n\
        speed=N/A\nprogress=end\n";

    #[test]
    fn blocks_parse_whatever_the_read_boundaries() {
        for chunk in [1, 7, 64, OUTPUT.len()] {
            let mut parser = ProgressParser::new();
            let mut got = Vec::new();
            for piece in OUTPUT.as_bytes().chunks(chunk) {
                parser.push(piece);
                got.extend(std::iter::from_fn(|| parser.pull()));
            }
            assert_eq!(
                got,
                [
                    Progress {
                        frame: 48,
                        fps: 47.52,
                        speed: Some(1.98),
                        dropped_frames: 0,
                        dup_frames: 1,
                        out_time_us: Some(2_000_000),
                        total_size: Some(203_040),
                        end: false,
                    },
                    Progress {
                        frame: 79,
                        fps: 39.1,
                        speed: None,
                        dropped_frames: 3,
                        dup_frames: 2,
                        out_time_us: None,
                        total_size: None,
                        end: true,
                    }
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn garbage_and_overlong_lines_are_skipped() {
        let mut parser = ProgressParser::new();
        parser.push(&[0xff, 0xfe, b'\n']);
        parser.push("x".repeat(5000).as_bytes());
        parser.push(b"=1\nspeed=inf\nspeed= 0.5x \nno equals sign\nprogress=continue\n");
        let p = parser.pull().expect("a block");
        assert_eq!(p.speed, Some(0.5));
        assert_eq!(parser.pull(), None);
    }

    #[test]
    fn unpulled_reports_are_bounded() {
        let mut parser = ProgressParser::new();
        for i in 0..100 {
            parser.push(format!("frame={i}\nprogress=continue\n").as_bytes());
        }
        let frames: Vec<u64> = std::iter::from_fn(|| parser.pull())
            .map(|p| p.frame)
            .collect();
        assert_eq!(frames, (92..100).collect::<Vec<_>>());
    }
}
