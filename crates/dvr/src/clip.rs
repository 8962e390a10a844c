//! Clips (SPEC §DVR "Clip"): `GET /recordings/{rid}/clip.mp4?from=…&to=…` as one fragmented
//! MP4, remuxed from the recorded TS segments without re-encoding.
//!
//! Why fragmented MP4, one fragment per recorded segment: a clip is streamed while it is
//! made (a chunked body, at most one recorded segment and [`CLIP_QUEUE`] fragments in memory,
//! never the whole clip), and a plain MP4's `moov` needs every sample's size before the first
//! byte of media. A fragmented file has a small `moov` up front and `moof` + `mdat` pairs
//! after it, which is exactly what the CMAF writer of HLS fMP4 and DASH
//! ([`tributary_packager::Fragmenter`]) makes, and what every player and editor reads.
//!
//! How a clip is cut:
//! - **Start**: at the video keyframe at or before `from` (the decoder needs it; starting
//!   later would drop the asked-for first second, starting at a non-key frame would show
//!   garbage). Audio starts at that keyframe's presentation time. A recording without video
//!   starts at the last audio frame at or before `from`.
//! - **End**: video frames in decode order while their decode time is before `to` (so every
//!   kept frame's references are kept), audio frames presented before `to`.
//! - **Times**: a segment's frames are placed on wall time through its log entry (`start` is
//!   the wall time of its first frame). The output starts at 0; a discontinuity (a restart, a
//!   loss, a gap, a PTS wrap) is closed up, so the clip plays straight through where the
//!   recording had a hole.
//! - **Tracks**: the first video track and the first audio track, in one `moov`. Codec
//!   parameters that change mid-clip (a new encoder after a restart) cannot be said in one
//!   `moov`: the clip ends there ([`ClipError::ConfigChanged`]).
//!
//! [`clip_window`] parses the query, [`Remuxer`] is the pure TS-to-fMP4 step (bytes in,
//! fragments out), and [`stream`] runs it over the files, one segment at a time on the
//! blocking pool, into a bounded channel the HTTP body drains.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tributary_media::{Frame, MediaKind, StreamCode, TrackId, Ts90};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig};
use tributary_packager::{Fmp4Error, Fmp4Track, Fragmenter, UnixMillis, write_init};

use crate::log::SegmentEntry;
use crate::timeshift::{ParamError, Window, instant, length, param, window_start};

/// The window `GET /recordings/{rid}/clip.mp4?{query}` asks for at `now`, over a log of
/// `entries`, at most `max_ms` long.
///
/// The start is `from` (RFC 3339 or Unix seconds, not in the future) or `offset_sec` (as for
/// timeshift: N ≥ 0 after the first segment's start, N < 0 before the newest segment's end);
/// the end is `to` (RFC 3339 or Unix seconds) or `duration` (seconds after the start). Other
/// parameters (`exp`, `sig`) are ignored. Values are never echoed back.
pub fn clip_window(
    query: &str,
    now: UnixMillis,
    entries: &[SegmentEntry],
    max_ms: u64,
) -> Result<Window, ParamError> {
    let start = window_start("clip.mp4", query, now, entries)?;
    let (end, param_name) = match (param(query, "to"), param(query, "duration")) {
        (Some(_), Some(_)) => {
            return Err(ParamError::new(
                "INVALID_QUERY",
                "duration",
                "give to or duration, not both",
            ));
        }
        (None, None) => {
            return Err(ParamError::new(
                "INVALID_QUERY",
                "to",
                "clip.mp4 needs to (RFC 3339 or Unix seconds) or duration (seconds)",
            ));
        }
        // `to` may lie ahead of now: the clip ends where the recording does.
        (Some(to), None) => (
            instant("INVALID_TO", "to", &to, UnixMillis(i64::MAX))?,
            "to",
        ),
        (None, Some(duration)) => {
            let ms = length("INVALID_DURATION", "duration", &duration, false)?;
            let ms = i64::try_from(ms).unwrap_or(i64::MAX);
            (UnixMillis(start.0.saturating_add(ms)), "duration")
        }
    };
    if end <= start {
        return Err(ParamError::new("INVALID_TO", "to", "to must be after from"));
    }
    let asked = u64::try_from(end.0 - start.0).unwrap_or(u64::MAX);
    if asked > max_ms {
        return Err(ParamError::new(
            "CLIP_TOO_LONG",
            param_name,
            format!(
                "{param_name}: the clip asked for lasts {} s; a clip is at most {} s \
                 (dvr.max_clip_sec)",
                asked.div_ceil(1000),
                max_ms / 1000
            ),
        ));
    }
    Ok(Window { start, end })
}

/// Why a clip could not be made, or ended early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClipError {
    /// No frame to start from in the window (no keyframe, or the segments hold no media).
    #[error("no recorded keyframe to start the clip from in the window")]
    NoMedia,
    /// A segment could not be read.
    #[error("segment {segment}: {source}")]
    Read {
        /// The segment's file name.
        segment: String,
        /// Why.
        source: std::io::Error,
    },
    /// A track cannot be written as fMP4.
    #[error("segment {segment}: {source}")]
    Track {
        /// The segment's file name.
        segment: String,
        /// Why.
        source: Fmp4Error,
    },
    /// The codec parameters change in this segment; one `moov` cannot say both, so the clip
    /// ends before it.
    #[error("segment {segment}: the codec parameters change here; the clip ends before it")]
    ConfigChanged {
        /// The segment's file name.
        segment: String,
    },
}

/// Recorded TS segments in, fMP4 out: the init segment, then one fragment per segment.
///
/// # Driving it
///
/// [`push_segment`](Self::push_segment) each segment of the window in log order, then drain
/// [`pull`](Self::pull); stop once [`ended`](Self::ended) says the window's end was reached.
/// A segment that could not be read is reported with [`skip`](Self::skip), so the next is
/// joined on as after a discontinuity. If nothing was ever output ([`started`](Self::started)
/// is false after the last segment), the window held no keyframe: [`ClipError::NoMedia`].
#[derive(Debug)]
pub struct Remuxer {
    /// The wall-time window asked for.
    window: Window,
    /// The output, once the first keyframe is found.
    out: Option<Output>,
    /// The window's end was reached.
    ended: bool,
    /// The next segment follows a hole (a skipped segment).
    skipped: bool,
    /// Output ready to send.
    chunks: VecDeque<Bytes>,
}

/// The state of a started clip.
#[derive(Debug)]
struct Output {
    /// The tracks' samples of the open fragment.
    fragmenter: Fragmenter,
    /// Source track → index in the fragmenter.
    tracks: Vec<(TrackId, usize)>,
    /// Added to every source timestamp (90 kHz): the clip starts at 0 and closes up holes.
    offset: i64,
    /// The latest output decode time, the first track's latest and the last step between
    /// two of its samples, for joining on after a discontinuity.
    last_dts: i64,
    first_track_dts: i64,
    step: i64,
    /// The next fragment's `mfhd` sequence number.
    sequence: u32,
}

impl Remuxer {
    /// A remuxer for `window`.
    pub fn new(window: Window) -> Self {
        Self {
            window,
            out: None,
            ended: false,
            skipped: false,
            chunks: VecDeque::new(),
        }
    }

    /// Whether the window's end has been reached: no later segment is needed.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether output has begun (the init segment was written).
    pub fn started(&self) -> bool {
        self.out.is_some()
    }

    /// The segment before the next one could not be read: the next is joined on as after a
    /// discontinuity.
    pub fn skip(&mut self) {
        self.skipped = true;
    }

    /// The next piece of output: the init segment first, then one fragment per segment.
    pub fn pull(&mut self) -> Option<Bytes> {
        self.chunks.pop_front()
    }

    /// Remuxes segment `entry` whose bytes are `ts`, read at `arrival`.
    pub fn push_segment(
        &mut self,
        entry: &SegmentEntry,
        ts: &[u8],
        arrival: Instant,
    ) -> Result<(), ClipError> {
        if self.ended || (self.out.is_none() && entry.end() <= self.window.start) {
            return Ok(());
        }
        let frames = demux(ts, arrival);
        let first_video = frames
            .iter()
            .filter(|f| f.codec.kind() == MediaKind::Video)
            .min_by_key(|f| f.dts);
        let Some(anchor) = first_video.or(frames.first()).map(|f| f.pts.0) else {
            return Ok(());
        };
        // Wall time to this segment's PTS: its log start is the wall time of its first frame.
        let pts_at = |wall: UnixMillis| {
            anchor.saturating_add((wall.0 - entry.start.0).saturating_mul(Ts90::HZ / 1000))
        };
        let (start_pts, end_pts) = (pts_at(self.window.start), pts_at(self.window.end));
        let segment = entry.file();

        // The first segment: find the cut, describe the tracks, write the init.
        let mut cut: Option<(usize, i64)> = None;
        if self.out.is_none() {
            let has_video = first_video.is_some();
            let candidates = frames.iter().enumerate().filter(|(_, f)| {
                if has_video {
                    f.codec.kind() == MediaKind::Video && f.keyframe
                } else {
                    f.codec.kind() == MediaKind::Audio
                }
            });
            let mut chosen = None;
            for (index, frame) in candidates {
                if chosen.is_none() || frame.pts.0 <= start_pts {
                    chosen = Some(index);
                }
                if frame.pts.0 > start_pts {
                    break;
                }
            }
            let Some(k) = chosen else {
                return Ok(());
            };
            let key = &frames[k];
            let mut described = vec![key];
            if has_video {
                let audio = frames
                    .iter()
                    .find(|f| f.codec.kind() == MediaKind::Audio && f.pts >= key.pts);
                described.extend(audio);
            }
            let mut tracks = Vec::new();
            let mut table = Vec::new();
            for (index, frame) in described.into_iter().enumerate() {
                let id = u32::try_from(index + 1).unwrap_or(u32::MAX);
                let track =
                    Fmp4Track::from_frame(id, frame).map_err(|source| ClipError::Track {
                        segment: segment.clone(),
                        source,
                    })?;
                tracks.push(track);
                table.push((frame.track, index));
            }
            let mut init = BytesMut::new();
            write_init(&tracks, &mut init);
            self.chunks.push_back(init.freeze());
            self.out = Some(Output {
                fragmenter: Fragmenter::new(&tracks),
                tracks: table,
                offset: -key.dts.0,
                last_dts: 0,
                first_track_dts: 0,
                step: 0,
                sequence: 1,
            });
            cut = Some((k, key.pts.0));
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        if cut.is_none() {
            let first_dts = frames.iter().map(|f| f.dts.0).min().unwrap_or(0);
            let placed = first_dts + out.offset;
            let jump = placed < out.last_dts || placed > out.last_dts + MAX_JUMP;
            if entry.discontinuity || std::mem::take(&mut self.skipped) || jump {
                out.offset = out.last_dts + out.step.max(1) - first_dts;
            }
        }
        let video_track = frames
            .get(cut.map_or(usize::MAX, |(k, _)| k))
            .map(|f| f.track);
        let mut reached_end = false;
        for (index, frame) in frames.iter().enumerate() {
            let Some(&(_, slot)) = out.tracks.iter().find(|(t, _)| *t == frame.track) else {
                continue;
            };
            let video = frame.codec.kind() == MediaKind::Video;
            if let Some((k, cut_pts)) = cut {
                let before = if Some(frame.track) == video_track {
                    index < k
                } else {
                    frame.pts.0 < cut_pts
                };
                if before {
                    continue;
                }
            }
            let time = if video { frame.dts.0 } else { frame.pts.0 };
            if time >= end_pts {
                reached_end = true;
                continue;
            }
            let dts = frame.dts.0 + out.offset;
            if dts < 0 {
                continue;
            }
            let shifted = Frame {
                pts: Ts90(frame.pts.0 + out.offset),
                dts: Ts90(dts),
                ..frame.clone()
            };
            match out.fragmenter.push(slot, &shifted) {
                Ok(()) => {}
                Err(Fmp4Error::ConfigChanged { .. }) => {
                    self.ended = true;
                    let mut fragment = BytesMut::new();
                    out.fragmenter.write(out.sequence, &mut fragment);
                    if !fragment.is_empty() {
                        self.chunks.push_back(fragment.freeze());
                    }
                    return Err(ClipError::ConfigChanged { segment });
                }
                Err(source) => return Err(ClipError::Track { segment, source }),
            }
            if slot == 0 {
                if dts > out.first_track_dts {
                    out.step = dts - out.first_track_dts;
                }
                out.first_track_dts = dts;
            }
            out.last_dts = out.last_dts.max(dts);
        }
        let mut fragment = BytesMut::new();
        out.fragmenter.write(out.sequence, &mut fragment);
        if !fragment.is_empty() {
            out.sequence += 1;
            self.chunks.push_back(fragment.freeze());
        }
        if reached_end || entry.end() >= self.window.end {
            self.ended = true;
        }
        Ok(())
    }
}

/// Streams `window` of the recording in `dir` as fMP4 into a channel of [`CLIP_QUEUE`]:
/// `entries` (the log's segments in the window, in order) are read one at a time and
/// remuxed on the blocking pool; the task ends when the window is done, on an error (sent
/// as the last item) or when the receiver is dropped (the client left). Inside a tokio
/// runtime. `resolve` maps a segment's file name to the path to open (inside the storage
/// root, symlinks resolved) or an error.
pub fn stream(
    code: StreamCode,
    entries: Vec<SegmentEntry>,
    window: Window,
    resolve: impl Fn(&str) -> std::io::Result<PathBuf> + Send + Sync + 'static,
) -> mpsc::Receiver<Result<Bytes, ClipError>> {
    let (tx, rx) = mpsc::channel(CLIP_QUEUE);
    let span = tracing::info_span!("dvr_clip", stream = %code);
    let resolve = std::sync::Arc::new(resolve);
    let task = async move {
        let mut remuxer = Remuxer::new(window);
        let mut sent: u64 = 0;
        for entry in entries {
            let resolve = std::sync::Arc::clone(&resolve);
            let step = tokio::task::spawn_blocking(move || {
                let segment = entry.file();
                let result = match resolve(&segment).and_then(std::fs::read) {
                    Ok(ts) => remuxer.push_segment(&entry, &ts, Instant::now()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Retention took it while the clip was being read: join across.
                        tracing::warn!(%segment, "recorded segment gone; the clip skips it");
                        remuxer.skip();
                        Ok(())
                    }
                    Err(source) => Err(ClipError::Read { segment, source }),
                };
                let chunks: Vec<Bytes> = std::iter::from_fn(|| remuxer.pull()).collect();
                (remuxer, result, chunks)
            })
            .await;
            let Ok((back, result, chunks)) = step else {
                return;
            };
            remuxer = back;
            for chunk in chunks {
                sent += chunk.len() as u64;
                if tx.send(Ok(chunk)).await.is_err() {
                    tracing::debug!(bytes = sent, "clip client left");
                    return;
                }
            }
            match result {
                Ok(()) => {}
                Err(error @ ClipError::ConfigChanged { .. }) => {
                    tracing::info!(%error, bytes = sent, "clip ended early");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, bytes = sent, "clip failed");
                    let _ = tx.send(Err(error)).await;
                    return;
                }
            }
            if remuxer.ended() {
                break;
            }
        }
        if remuxer.started() {
            tracing::info!(bytes = sent, "clip served");
        } else {
            let _ = tx.send(Err(ClipError::NoMedia)).await;
        }
    };
    tokio::spawn(tracing::Instrument::instrument(task, span));
    rx
}

/// Every frame of one segment, in the demuxer's order (decode order within each track).
/// Damaged packets are skipped: a clip carries what can be read.
fn demux(ts: &[u8], arrival: Instant) -> Vec<Frame> {
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    demuxer.push(ts, arrival);
    demuxer.flush();
    let mut frames = Vec::new();
    while let Some(event) = demuxer.pull() {
        if let Ok(DemuxEvent::Frame(frame)) = event {
            frames.push(frame);
        }
    }
    frames
}

/// Fragments queued between the remuxing task and the HTTP body: two segments' worth, so
/// reading the next segment overlaps sending this one and memory stays bounded.
pub const CLIP_QUEUE: usize = 2;

/// A forward jump of decode time between two segments larger than this (90 kHz: 10 s) is
/// a discontinuity even when the log does not mark one (a PTS wrap, a source's reset).
const MAX_JUMP: i64 = 10 * Ts90::HZ;

#[cfg(test)]
mod tests;
