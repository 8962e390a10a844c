//! The storage of one buffer: a ring of recent frames shared by every subscriber, with the GOP
//! cache as an index into it. Private; [`crate::Writer`] pushes, [`crate::Subscriber`] reads.

use std::collections::VecDeque;

use tributary_media::{Frame, MediaKind, SessionId};

/// The frames of one buffer, oldest first, numbered by a sequence that never repeats.
///
/// A frame's sequence number is its position in the write order of the buffer: `first_seq` is
/// the oldest frame still held and `head()` is one past the newest. A subscriber's cursor is a
/// sequence number, so "it fell behind" is `cursor < first_seq`, computed without the writer
/// knowing about it.
#[derive(Debug)]
pub(crate) struct Ring {
    /// The frames held, oldest first, each with its precomputed sync-point flag.
    slots: VecDeque<Slot>,
    /// Sequence number of `slots[0]`.
    first_seq: u64,
    /// Sum of the payload sizes in `slots`, kept under `max_bytes`.
    bytes: usize,
    /// At most this many frames are held (a subscriber's backlog bound).
    capacity: usize,
    /// At most this many payload bytes are held (the 64 MiB backlog bound).
    max_bytes: usize,
    /// The writer's current session, for stats.
    pub(crate) session: Option<SessionId>,
    /// Sequence number of the first frame written in the current session: the GOP cache never
    /// reaches back before it, so a new subscriber starts inside the current session.
    session_start: u64,
    /// Whether the current session has carried video: then only video keyframes are sync
    /// points; before that (audio-only so far) every audio frame is one.
    session_has_video: bool,
    /// Sequence number of the latest video keyframe of the current session: the GOP cache.
    last_video_key: Option<u64>,
    /// Set by delete (or the writer's drop); readers drain what is left, then see the end.
    pub(crate) closed: bool,
}

/// One stored frame.
#[derive(Debug)]
struct Slot {
    frame: Frame,
    /// Where a subscriber may start or resume: a video keyframe, or an audio frame while the
    /// session has carried no video.
    sync: bool,
}

/// Where a subscriber is in a [`Ring`], owned by the subscriber (no lock needed to update it).
#[derive(Debug)]
pub(crate) struct Cursor {
    /// Sequence number of the next frame to deliver.
    pub(crate) next: u64,
    /// Skipping forward to the next sync point (after a loss, or a start with no cached GOP).
    seeking: bool,
    /// Whether frames skipped while seeking are losses (after a lag) or simply not yet the
    /// subscriber's (a start waiting for its first keyframe).
    counting: bool,
    /// Losses not yet reported as [`Read::Lagged`].
    unreported: u64,
}

/// The outcome of one [`Ring::read`].
#[derive(Debug)]
pub(crate) enum Read {
    /// The next frame.
    Frame(Frame),
    /// This many frames were lost since the last report; the next frame is a sync point.
    Lagged(u64),
    /// Nothing to deliver yet.
    Empty,
    /// The buffer is deleted and everything has been delivered.
    Closed,
}

impl Ring {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            slots: VecDeque::new(),
            first_seq: 0,
            bytes: 0,
            capacity: capacity.max(1),
            max_bytes,
            session: None,
            session_start: 0,
            session_has_video: false,
            last_video_key: None,
            closed: false,
        }
    }

    /// One past the newest frame's sequence number.
    pub(crate) fn head(&self) -> u64 {
        self.first_seq + self.slots.len() as u64
    }

    /// Sequence number of the oldest frame held.
    pub(crate) fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Frames held.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The most frames this ring holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Begins a new session: the GOP cache restarts at the session's next sync point.
    pub(crate) fn start_session(&mut self, session: SessionId) {
        self.session = Some(session);
        self.session_start = self.head();
        self.session_has_video = false;
        self.last_video_key = None;
    }

    /// Sequence number of the GOP cache's keyframe, if the session has one held or pushed.
    pub(crate) fn gop_start(&self) -> Option<u64> {
        self.last_video_key
    }

    /// Lets go of the frames before `seq`: nobody reads them any more (every subscriber's
    /// cursor is at or past it) and a new subscriber would start later. The frame and byte
    /// bounds still apply to what stays; this only stops a buffer whose readers keep up from
    /// holding `capacity` frames of payload that nothing will read again.
    pub(crate) fn release_before(&mut self, seq: u64) {
        while self.first_seq < seq {
            if !self.drop_oldest() {
                break;
            }
        }
    }

    /// Drops the oldest frame, keeping the byte count and `first_seq` in step; false when the
    /// ring is empty.
    fn drop_oldest(&mut self) -> bool {
        let Some(old) = self.slots.pop_front() else {
            return false;
        };
        self.bytes -= old.frame.payload.len();
        self.first_seq += 1;
        true
    }

    /// Appends a frame, evicting the oldest ones beyond the frame and byte bounds (the newest
    /// frame always stays, however large). Amortised O(1); no allocation once the deque has
    /// grown to `capacity`.
    pub(crate) fn push(&mut self, frame: Frame) {
        let kind = frame.codec.kind();
        if kind == MediaKind::Video {
            self.session_has_video = true;
        }
        let sync = frame.keyframe
            && match kind {
                MediaKind::Video => true,
                MediaKind::Audio => !self.session_has_video,
                MediaKind::Data => false,
            };
        if sync && kind == MediaKind::Video {
            self.last_video_key = Some(self.head());
        }
        self.bytes += frame.payload.len();
        self.slots.push_back(Slot { frame, sync });
        while self.slots.len() > self.capacity
            || (self.bytes > self.max_bytes && self.slots.len() > 1)
        {
            if !self.drop_oldest() {
                break;
            }
        }
    }

    /// A cursor for a subscriber that starts at the GOP cache: the latest video keyframe of the
    /// current session, or, while the session is audio-only, the oldest sync point among the
    /// last [`AUDIO_WINDOW`] frames. With no such frame held, the cursor waits at the head for
    /// the next sync point (frames skipped meanwhile are not counted as drops).
    pub(crate) fn cursor_at_gop(&self) -> Cursor {
        let start = if self.session_has_video {
            self.last_video_key.filter(|&seq| seq >= self.first_seq)
        } else {
            let from = self
                .first_seq
                .max(self.session_start)
                .max(self.head().saturating_sub(AUDIO_WINDOW));
            (from..self.head()).find(|&seq| self.slot(seq).is_some_and(|slot| slot.sync))
        };
        match start {
            Some(next) => Cursor {
                next,
                seeking: false,
                counting: false,
                unreported: 0,
            },
            None => Cursor {
                next: self.head(),
                seeking: true,
                counting: false,
                unreported: 0,
            },
        }
    }

    /// A cursor that delivers every frame written from now on.
    pub(crate) fn cursor_at_head(&self) -> Cursor {
        Cursor {
            next: self.head(),
            seeking: false,
            counting: false,
            unreported: 0,
        }
    }

    /// Advances `cursor` by one delivery. Returns it and the number of frames newly lost by
    /// this call (for the drop counters; they are reported to the reader as one
    /// [`Read::Lagged`] just before the sync point it resumes at).
    ///
    /// Cost: O(1), except while seeking, where it scans forward over the frames it skips (each
    /// frame is scanned at most once per subscriber).
    pub(crate) fn read(&self, cursor: &mut Cursor) -> (Read, u64) {
        let mut lost = 0;
        if cursor.next < self.first_seq {
            lost += self.first_seq - cursor.next;
            cursor.next = self.first_seq;
            cursor.seeking = true;
            cursor.counting = true;
        }
        if cursor.seeking {
            while let Some(slot) = self.slot(cursor.next) {
                if slot.sync {
                    cursor.seeking = false;
                    cursor.counting = false;
                    break;
                }
                cursor.next += 1;
                if cursor.counting {
                    lost += 1;
                }
            }
        }
        cursor.unreported += lost;
        if !cursor.seeking {
            if cursor.unreported > 0 {
                return (Read::Lagged(std::mem::take(&mut cursor.unreported)), lost);
            }
            if let Some(slot) = self.slot(cursor.next) {
                cursor.next += 1;
                return (Read::Frame(slot.frame.clone()), lost);
            }
        }
        if !self.closed {
            return (Read::Empty, lost);
        }
        if cursor.unreported > 0 {
            return (Read::Lagged(std::mem::take(&mut cursor.unreported)), lost);
        }
        (Read::Closed, lost)
    }

    fn slot(&self, seq: u64) -> Option<&Slot> {
        let index = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.slots.get(index)
    }
}

/// How many recent frames the GOP cache offers a new subscriber while a session carries no
/// video: about 1.4 s of 48 kHz AAC, enough for a player to start at once.
pub(crate) const AUDIO_WINDOW: u64 = 64;
