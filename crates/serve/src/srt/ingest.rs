//! A publisher's SRT payloads → hub frames: the TS demuxer fed as one byte stream (payloads
//! are not 188-byte aligned), then SPEC §Ingest "Parameter sets": every keyframe leaves with
//! its SPS/PPS (in-band, else remembered from earlier frames), a keyframe with none known is
//! dropped and counted, pictures before the first keyframe are dropped, and new parameter-set
//! values start a new session (`config_change`).
//!
//! Push [`push`](TsIngest::push) each payload, then take [`next`](TsIngest::next) until
//! `None`.

use std::time::Instant;

use tributary_media::codec::{Observed, ParamChange, ParamSets};
use tributary_media::{Frame, MediaKind, TrackId};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig};

/// The demuxer of one publisher and the parameter-set keeper of each of its video tracks.
pub(super) struct TsIngest {
    demuxer: Demuxer,
    /// Per video track: its keeper, and whether a keyframe has gone out (frames before it
    /// cannot be decoded).
    video: Vec<(TrackId, ParamSets, bool)>,
    /// Keyframes dropped for want of parameter sets.
    pub(super) dropped_keyframes: u64,
    /// Demux errors (the demuxer resynchronises after each).
    pub(super) errors: u64,
}

/// One frame for the hub, and whether it starts a new codec configuration.
pub(super) struct Ingested {
    pub(super) frame: Frame,
    pub(super) config_change: bool,
}

impl TsIngest {
    pub(super) fn new() -> Self {
        Self {
            demuxer: Demuxer::new(DemuxerConfig::default()),
            video: Vec::new(),
            dropped_keyframes: 0,
            errors: 0,
        }
    }

    /// Feeds one payload that arrived at `arrival`.
    pub(super) fn push(&mut self, payload: &[u8], arrival: Instant) {
        self.demuxer.push(payload, arrival);
    }

    /// The next frame for the hub, if the demuxer has one.
    pub(super) fn next(&mut self) -> Option<Ingested> {
        loop {
            let mut frame = match self.demuxer.pull()? {
                Ok(DemuxEvent::Frame(frame)) => frame,
                Ok(DemuxEvent::Tracks { program, tracks }) => {
                    tracing::info!(program, ?tracks, "track table");
                    continue;
                }
                Err(e) => {
                    self.errors += 1;
                    if self.errors % LOG_EVERY == 1 {
                        tracing::warn!(errors = self.errors, "demux error (resynchronising): {e}");
                    }
                    continue;
                }
            };
            if frame.codec.kind() != MediaKind::Video {
                return Some(Ingested {
                    frame,
                    config_change: false,
                });
            }
            let at = match self.video.iter().position(|(t, ..)| *t == frame.track) {
                Some(at) => at,
                None => {
                    let Some(keeper) = ParamSets::for_codec(frame.codec) else {
                        return Some(Ingested {
                            frame,
                            config_change: false,
                        });
                    };
                    self.video.push((frame.track, keeper, false));
                    self.video.len() - 1
                }
            };
            let (_, keeper, synced) = &mut self.video[at];
            match keeper.observe(frame.payload.clone()) {
                Observed::Write {
                    au,
                    keyframe,
                    change,
                    ..
                } => {
                    if !keyframe && !*synced {
                        continue;
                    }
                    *synced = true;
                    frame.payload = au;
                    frame.keyframe = keyframe;
                    return Some(Ingested {
                        frame,
                        config_change: change == ParamChange::Changed,
                    });
                }
                Observed::DropKeyframe { .. } => {
                    self.dropped_keyframes += 1;
                    if self.dropped_keyframes % LOG_EVERY == 1 {
                        tracing::warn!(
                            track = frame.track.0,
                            dropped = self.dropped_keyframes,
                            "keyframe dropped: no parameter sets known yet"
                        );
                    }
                }
            }
        }
    }
}

/// Demux errors and dropped keyframes are logged the first time and every this many.
const LOG_EVERY: u64 = 100;
