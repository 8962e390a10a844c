//! Which DASH Period a segment belongs to (SPEC §DASH "Periods").

use std::collections::VecDeque;

use tributary_media::{SessionId, Ts90};

use crate::{InitName, Segment};

/// The Periods of one rung's video and audio tracks.
///
/// Feed it every finished segment of either track in the order the segmenters give them,
/// through [`assign`](Self::assign); list the segment in the Period it returns. Then call
/// [`retain`](Self::retain) with the Periods still listed, so marks of Periods that slid out
/// are forgotten.
///
/// The first Period has id 0 and starts at media time 0. A segment whose init differs from
/// the previous segment's of its track (the segmenter names a new init only when its bytes
/// differ: a codec or parameter change) starts a new Period, at a video segment boundary when
/// the rung has video: a video segment with a new init opens it at its start, with its number
/// as id; an audio segment with a new init makes the next video segment of its session open
/// it (or joins the one video opened for the session). Audio alone opens Periods itself.
/// A new S ([`resegment`](Self::resegment), after the segmenter's
/// [`HlsEvent::SegmentLength`](crate::HlsEvent::SegmentLength)) opens a Period the same way:
/// at the track's next segment, the first cut with it; video leads, audio alone opens its
/// own. Segments are otherwise in the newest Period opened at or before their session, so an
/// input switch with unchanged inits (a new session with the same init) stays in its Period,
/// and a straggling segment of an older session stays in its own.
///
/// A Representation lists, in a Period, only its segments with the init of its first one
/// there: an audio segment with a new init listed before video opened its Period is left
/// out until it is moved. When a Period opens, the other track may already have listed
/// segments of its session that reach past the new start ([`Assigned::opened`]): the caller
/// moves them with [`Timeline::retag`](crate::Timeline::retag), so the new Period's tracks
/// start together (audio up to one segment before the Period, which players trim).
#[derive(Debug, Clone, Default)]
pub struct Periods {
    /// The open Periods, oldest first.
    marks: VecDeque<PeriodMark>,
    /// The last init of each track: video, audio.
    inits: [Option<InitName>; 2],
    /// The session whose audio changed init beside video: the next video segment of it (or
    /// of a later one) opens a Period.
    pending: Option<SessionId>,
    /// Whether each track (video, audio) cut with a new S from its next segment on.
    resegmented: [bool; 2],
}

/// Where a Period starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodMark {
    /// Its id: 0 for the first, else the number of the segment that opened it.
    pub id: u64,
    /// Its start in media time.
    pub start: Ts90,
    /// The session that opened it.
    pub session: SessionId,
    /// The init of each track (video, audio) in it, once it has a segment of the track.
    inits: [Option<InitName>; 2],
}

/// The Period of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    /// The Period's id.
    pub period: u64,
    /// Whether this segment opened it.
    pub opened: bool,
}

impl Periods {
    /// No Period yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The Period of a finished `segment` of the video (`video`) or audio track.
    pub fn assign(&mut self, video: bool, segment: &Segment) -> Assigned {
        let track = usize::from(!video);
        let init = segment.init.unwrap_or(InitName::First);
        let changed = self.inits[track]
            .replace(init)
            .is_some_and(|last| last != init);
        let resegmented = std::mem::take(&mut self.resegmented[track]);
        let session = segment.session;
        if self.marks.is_empty() {
            self.open(0, Ts90(0), session);
        } else if video {
            // Video leads: a Period opens at a video segment, for its own change (of init or
            // of S) or for one of the audio in this session or an earlier one.
            let pending = self.pending.take_if(|s| s.0 <= session.0).is_some();
            if changed || pending || resegmented {
                self.open(segment.number, segment.start, session);
                self.marks.back_mut().expect("just opened").inits[track] = Some(init);
                return Assigned {
                    period: segment.number,
                    opened: true,
                };
            }
        } else if self.inits[0].is_none() && (changed || resegmented) {
            // Audio alone opens its Periods: at a new S, or at a new init unless one for this
            // session has it.
            let joins = !resegmented
                && self
                    .marks
                    .iter()
                    .rev()
                    .find(|m| m.session == session)
                    .is_some_and(|m| m.inits[track].is_none_or(|kept| kept == init));
            if !joins {
                self.open(segment.number, segment.start, session);
                self.marks.back_mut().expect("just opened").inits[track] = Some(init);
                return Assigned {
                    period: segment.number,
                    opened: true,
                };
            }
        } else if changed {
            // Audio beside video: joins the Period video opened for this session, else waits
            // for the next video segment to open one.
            let joins = self
                .marks
                .back()
                .is_some_and(|m| m.session == session && m.inits[track].is_none());
            if !joins {
                self.pending = Some(session);
            }
        }
        let newest = self.marks.len() - 1;
        let index = self
            .marks
            .iter()
            .rposition(|m| m.session.0 <= session.0)
            .unwrap_or(0)
            .min(newest);
        let mark = &mut self.marks[index];
        mark.inits[track].get_or_insert(init);
        Assigned {
            period: mark.id,
            opened: false,
        }
    }

    /// The video (`video`) or audio track's segmenter cuts with a new S from its next
    /// segment on: that segment opens a Period (video leads; audio only on a rung without
    /// video), so each Period's segments share one S (SPEC §Config "Hot apply").
    pub fn resegment(&mut self, video: bool) {
        self.resegmented[usize::from(!video)] = true;
    }

    /// Forgets the Periods `listed` says are no longer listed (the newest is always kept).
    pub fn retain(&mut self, mut listed: impl FnMut(u64) -> bool) {
        while self.marks.len() > 1 && self.marks.front().is_some_and(|m| !listed(m.id)) {
            self.marks.pop_front();
        }
    }

    fn open(&mut self, id: u64, start: Ts90, session: SessionId) {
        self.marks.push_back(PeriodMark {
            id,
            start,
            session,
            inits: [None; 2],
        });
    }

    /// The Periods, oldest first.
    pub fn marks(&self) -> impl ExactSizeIterator<Item = &PeriodMark> + '_ {
        self.marks.iter()
    }
}
