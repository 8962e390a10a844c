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
/// differ: a codec or parameter change) opens a new Period at its start, with its number as
/// id, unless the other track opened one for the same session already: a session whose
/// codecs changed on both tracks is one Period. Segments are otherwise in the newest Period
/// opened at or before their session, so an input switch with unchanged inits (a new session
/// with the same init) stays in its Period, and a straggling segment of an older session stays
/// in its own.
///
/// When a Period opens, the other track may already have listed a segment of its session that
/// reaches past the new start in the old Period ([`Assigned::opened`]): the caller moves it
/// with [`Timeline::retag`](crate::Timeline::retag) and lowers the start with
/// [`start_at`](Self::start_at), so the new Period's tracks start together.
#[derive(Debug, Clone, Default)]
pub struct Periods {
    /// The open Periods, oldest first.
    marks: VecDeque<PeriodMark>,
    /// The last init of each track: video, audio.
    inits: [Option<InitName>; 2],
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
        if self.marks.is_empty() {
            self.open(0, Ts90(0), segment.session);
        } else if changed {
            // Joins the Period the other track opened for this session, unless that one
            // already has another init of this track (a second change within the session).
            let joins = self
                .marks
                .iter()
                .rev()
                .find(|m| m.session == segment.session)
                .is_some_and(|m| m.inits[track].is_none_or(|kept| kept == init));
            if !joins {
                self.open(segment.number, segment.start, segment.session);
                self.marks.back_mut().expect("just opened").inits[track] = Some(init);
                return Assigned {
                    period: segment.number,
                    opened: true,
                };
            }
        }
        let newest = self.marks.len() - 1;
        let index = self
            .marks
            .iter()
            .rposition(|m| m.session.0 <= segment.session.0)
            .unwrap_or(0)
            .min(newest);
        let mark = &mut self.marks[index];
        mark.inits[track].get_or_insert(init);
        Assigned {
            period: mark.id,
            opened: false,
        }
    }

    /// Moves the start of Period `id` back to `start` (segments of its session listed
    /// before it opened, moved into it).
    pub fn start_at(&mut self, id: u64, start: Ts90) {
        if let Some(mark) = self.marks.iter_mut().find(|m| m.id == id && m.id != 0) {
            mark.start = mark.start.min(start);
        }
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
