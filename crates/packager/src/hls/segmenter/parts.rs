//! LL-HLS parts: where the segmenter cuts each fMP4 segment into parts.
//!
//! A part is one `moof` + `mdat` of the open segment, written as soon as it is complete, so a
//! player can fetch it ~`part_sec` after its first frame arrived instead of waiting a whole
//! segment. The segment's bytes stay its parts' bytes in order: a part is copied out of the
//! segment's buffer once (one `Bytes` per part, every `part_sec`), the segment is not rebuilt.
//!
//! **Where a part ends.** Parts are timed on the DTS of the track that cuts segments (video,
//! else audio): before a frame of that track whose end (DTS + its track's frame duration)
//! would take the open part past PART-TARGET, the part is written and the frame starts the
//! next one. So no part is longer than PART-TARGET (RFC 8216bis §4.4.4.9), and every part
//! but a segment's last lasts at least PART-TARGET − one frame (≥ 85 % of it for frames up
//! to 75 ms apart at 0.5 s parts). A segment's last part is written when the segment closes
//! (a keyframe, a forced cut, a new session); its duration is the segment's `#EXTINF` less
//! the parts before it, so parts add up to their segment exactly. A video keyframe in the
//! middle of a segment does not cut a part (that would leave a runt before it); a part that
//! happens to start with one is `INDEPENDENT=YES`, as is every segment's first part and every
//! audio-only part.
//!
//! **Preload hint.** The part being filled always holds at least one frame (the frame that
//! cut the previous part, or the keyframe that opened the segment), so the part a playlist
//! hints at ([`HlsSegmenter::open_part`]) always comes out next.

use bytes::Bytes;
use tributary_media::{MediaKind, Ts90};

use super::{HlsEvent, HlsSegmenter, OpenSegment};
use crate::UnixMillis;
use crate::hls::playlist::InitName;

/// A complete LL-HLS part of the open segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The number of the segment it belongs to (`_HLS_msn`).
    pub segment: u64,
    /// Its index within the segment, from 0 (`_HLS_part`).
    pub index: u32,
    /// Its duration (`EXT-X-PART:DURATION`).
    pub duration: Ts90,
    /// Whether it starts with a video keyframe, or carries no video
    /// (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Its segment's init (`#EXT-X-MAP`).
    pub init: Option<InitName>,
    /// Whether its segment follows a discontinuity.
    pub discontinuity: bool,
    /// Its segment's `#EXT-X-PROGRAM-DATE-TIME`.
    pub program_date_time: UnixMillis,
    /// One `moof` + `mdat`.
    pub bytes: Bytes,
}

/// The part being filled.
#[derive(Debug)]
pub(super) struct PartState {
    /// PART-TARGET in 90 kHz ticks.
    target: i64,
    /// The DTS of the part's first frame of the cutting track; `None` until it has one.
    start: Option<i64>,
    /// The part's index in its segment.
    index: u32,
    /// Where the part starts in the segment's bytes.
    offset: usize,
    /// Whether it starts with a keyframe (or the stream has no video).
    independent: bool,
    /// The durations of the segment's parts already written.
    written: i64,
}

impl PartState {
    /// No part open yet; parts of at most `target`.
    pub(super) fn new(target: std::time::Duration) -> Self {
        Self {
            target: Ts90::from_duration(target).0.max(MIN_PART),
            start: None,
            index: 0,
            offset: 0,
            independent: true,
            written: 0,
        }
    }
}

impl PartState {
    /// The open part of `open`, lasting `duration`, out of its segment's bytes (the part
    /// after it starts where they end now).
    fn take(&mut self, open: &OpenSegment, duration: Ts90) -> Part {
        let part = Part {
            segment: open.number,
            index: self.index,
            duration,
            independent: self.independent,
            init: open.init,
            discontinuity: open.discontinuity,
            program_date_time: open.program_date_time,
            bytes: Bytes::copy_from_slice(&open.bytes[self.offset..]),
        };
        self.index += 1;
        self.offset = open.bytes.len();
        part
    }
}

impl HlsSegmenter {
    /// The open part as (segment number, part index): what `#EXT-X-PRELOAD-HINT` names. `None`
    /// without parts or while no segment is open.
    pub fn open_part(&self) -> Option<(u64, u32)> {
        let parts = self.parts.as_ref()?;
        let open = self.open.as_ref()?;
        self.fmp4.as_ref()?;
        Some((open.number, parts.index))
    }

    /// The `mfhd` sequence number of the next fragment written into segment `number`: its
    /// low 32 bits without parts; with parts, the low 24 bits of the number then the part
    /// index, so each fragment of a run gets its own.
    pub(super) fn part_sequence(&self, number: u64) -> u32 {
        match &self.parts {
            Some(parts) => sequence(number, parts.index),
            None => number as u32,
        }
    }

    /// A segment opened with `frame`: its first part starts there.
    pub(super) fn start_parts(&mut self, frame: &tributary_media::Frame) {
        let video = self.video;
        let Some(parts) = self.parts.as_mut() else {
            return;
        };
        parts.index = 0;
        parts.offset = 0;
        parts.written = 0;
        parts.start = cuts(video, frame.codec.kind()).then_some(frame.dts.0);
        parts.independent = !video || frame.keyframe;
    }

    /// Writes the open part if `frame` (not yet written) would take it past PART-TARGET.
    pub(super) fn cut_part(&mut self, frame: &tributary_media::Frame) {
        let video = self.video;
        if self.parts.is_none() || !cuts(video, frame.codec.kind()) {
            return;
        }
        let step = self
            .timing
            .iter()
            .find(|t| t.track == frame.track)
            .map_or(0, |t| t.step);
        let (Some(parts), Some(open), Some(writer)) =
            (self.parts.as_mut(), self.open.as_mut(), self.fmp4.as_mut())
        else {
            return;
        };
        let Some(start) = parts.start else {
            parts.start = Some(frame.dts.0);
            return;
        };
        if frame.dts.0 + step - start <= parts.target || writer.fragmenter.is_empty() {
            return;
        }
        writer
            .fragmenter
            .write(sequence(open.number, parts.index), &mut open.bytes);
        let duration = frame.dts.0 - start;
        let part = parts.take(open, Ts90(duration));
        parts.written += duration;
        parts.start = Some(frame.dts.0);
        parts.independent = !video || frame.keyframe;
        self.events.push_back(HlsEvent::Part(part));
    }

    /// The segment `open` closed with `duration`: its last part (what was written since the
    /// previous part) comes out before it.
    pub(super) fn final_part(&mut self, open: &OpenSegment, duration: Ts90) {
        let Some(parts) = self.parts.as_mut() else {
            return;
        };
        if self.fmp4.is_none() || open.bytes.len() <= parts.offset {
            return;
        }
        let part = parts.take(open, Ts90((duration.0 - parts.written).max(0)));
        self.events.push_back(HlsEvent::Part(part));
    }
}

/// The `mfhd` sequence number of part `index` of segment `number`.
fn sequence(number: u64, index: u32) -> u32 {
    ((number as u32) << 8) | (index & 0xff)
}

/// Whether frames of `kind` time the parts: video, or audio when there is no video.
fn cuts(video: bool, kind: MediaKind) -> bool {
    if video {
        kind == MediaKind::Video
    } else {
        kind == MediaKind::Audio
    }
}

/// The shortest part: 10 ms.
const MIN_PART: i64 = Ts90::HZ / 100;

#[cfg(test)]
mod tests;
