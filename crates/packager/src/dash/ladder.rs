//! Ladder changes as DASH Periods (SPEC §DASH "Periods", §Hot reload: "DASH opens a new Period
//! with the new ladder").
//!
//! Why a Period: a player picked its Representations from the Period it entered; a rung added
//! mid-Period would be a Representation whose timeline starts long after its Period does (the
//! player may switch to it and find no segment), and a rung removed would vanish from under a
//! player on it. A new Period with the new set of Representations makes the player choose
//! again at a segment boundary, while the stream keeps its `availabilityStartTime` and every
//! kept rung keeps its packager, numbers and segments.
//!
//! Why it is decided here and not by each rung's [`Periods`](crate::Periods): the rungs are
//! separate packagers that learn of the change at different moments, and the new rung's first
//! segment comes out when its encoder has started. The Period must start at one number for
//! the whole ladder, where every rung of the new ladder has a segment: the first number that
//! is past every segment listed when the change happened (the floor) and that the new rungs
//! have. So a change stays *pending* (its new rungs unlisted, the old ladder playing on)
//! until each new rung has published its first video segment, and the MPD, rendered on
//! request, then moves every entry from that number on into the new Period. Rungs cut on one
//! keyframe grid number the same instant alike, so the kept rungs have that number too.

use std::collections::VecDeque;

use tributary_media::Ts90;

/// The ladder changes of one stream, oldest first (at most 16).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ladder {
    changes: VecDeque<LadderChange>,
}

/// One change of the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LadderChange {
    /// One past the newest segment number any rung had listed when the ladder changed.
    floor: u64,
    /// The rungs of the old ladder.
    before: u16,
    /// The rungs of the new ladder (rung *i* is `track_{i+1}`).
    rungs: u16,
    /// The rungs new in it, which the Period waits for.
    added: std::ops::Range<u16>,
}

/// A ladder change the MPD shows: a Period from segment `from` on with rungs `0..rungs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderCut {
    /// The first video segment number of the new Period, and its id.
    pub from: u64,
    /// The rungs listed before it (from the previous cut on).
    pub before: u16,
    /// The rungs listed in it.
    pub rungs: u16,
    /// The media time it starts at: the start of video segment `from` (`None` while no rung
    /// lists it). Audio, numbered on its own, is placed by time: a segment that ends after
    /// in the new Period too (players trim it to each Period).
    pub start: Option<Ts90>,
}

/// The ladder changes as one rendering of the MPD sees them ([`Ladder::cuts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LadderCuts {
    /// The decided changes, in order of `from`.
    cuts: Vec<LadderCut>,
    /// Rungs added by a change still pending: not listed yet.
    hidden: Vec<u16>,
}

/// Changes remembered at most: each lives as long as segments before and after it are listed
/// (a window of segments), so more than a handful means a ladder edited every few seconds.
const MAX_CHANGES: usize = 16;

impl Ladder {
    /// No change yet: one Period per codec change, as [`Periods`](crate::Periods) says.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ladder went from `old_rungs` to `rungs` rungs when the newest video segment any
    /// rung had listed was `last_listed` (`None`: none yet).
    pub fn change(&mut self, last_listed: Option<u64>, old_rungs: u16, rungs: u16) {
        if self.changes.len() == MAX_CHANGES {
            self.changes.pop_front();
        }
        self.changes.push_back(LadderChange {
            floor: last_listed.map_or(0, |n| n.saturating_add(1)),
            before: old_rungs,
            rungs,
            added: old_rungs.min(rungs)..rungs,
        });
    }

    /// The changes as they stand, given each rung's first video segment number (`None`: the
    /// rung has not published one) and the start of the first listed video segment numbered
    /// at least N, of any rung. A change is decided once each rung it added has a segment;
    /// its Period starts at the largest of their second numbers and its floor. Not their
    /// first: a new rung's encoder starts mid-cell, so its first segment starts later than
    /// the kept rungs' segment of that number (a hole at the Period start); from its second
    /// on, its keyframes sit on the shared grid and its segments line up with the others'.
    pub fn cuts(
        &self,
        first: impl Fn(u16) -> Option<u64>,
        start: impl Fn(u64) -> Option<Ts90>,
    ) -> LadderCuts {
        let mut out = LadderCuts::default();
        for change in &self.changes {
            let firsts: Option<Vec<u64>> = change.added.clone().map(&first).collect();
            match firsts {
                Some(firsts) => {
                    let from = firsts
                        .into_iter()
                        .map(|n| n.saturating_add(1))
                        .fold(change.floor, u64::max);
                    out.cuts.push(LadderCut {
                        from,
                        before: change.before,
                        rungs: change.rungs,
                        start: start(from),
                    });
                }
                None => out.hidden.extend(change.added.clone()),
            }
        }
        // A later change may be decided at a lower number than an earlier pending-then-decided
        // one: each Period ends where the next starts.
        out.cuts.sort_by_key(|c| c.from);
        out
    }
}

impl LadderCuts {
    /// The decided changes, in order of their first number.
    pub fn cuts(&self) -> &[LadderCut] {
        &self.cuts
    }

    /// The Period of video segment `number` of `rung`, which its rung listed in Period `own`
    /// (a codec Period, [`Periods`](crate::Periods)): the newer of `own` and the last cut at
    /// or before it (both ids are the numbers of the segments that opened them). `None`: not
    /// listed (its rung is added by a pending change, or removed by the cut).
    pub fn video(&self, rung: u16, number: u64, own: u64) -> Option<u64> {
        let cut = self.cuts.iter().rev().find(|c| c.from <= number);
        self.place(rung, cut, own)
    }

    /// The Periods an audio segment of `rung` from `start` to `end`, listed in Period `own`,
    /// is in (as [`video`](Self::video), placed by time): the one it starts in and, when it
    /// reaches past the start of a later one, that one too. Audio is cut on its own frames,
    /// so one segment usually straddles a cut; listed in both Periods, each player trims it
    /// to its Period and the audio has no hole at the cut.
    pub fn audio(&self, rung: u16, start: Ts90, end: Ts90, own: u64) -> [Option<u64>; 2] {
        let at = |t: Ts90, strictly: bool| {
            let cut = self.cuts.iter().rev().find(|c| {
                c.start
                    .is_some_and(|s| if strictly { t.0 > s.0 } else { t.0 >= s.0 })
            });
            self.place(rung, cut, own)
        };
        let first = at(start, false);
        let last = at(end, true);
        [first, last.filter(|p| Some(*p) != first)]
    }

    fn place(&self, rung: u16, cut: Option<&LadderCut>, own: u64) -> Option<u64> {
        match cut {
            Some(cut) => (rung < cut.rungs).then_some(cut.from.max(own)),
            // Before the first cut: the ladder before it, without a rung still pending.
            None => {
                let before = self.cuts.first().is_none_or(|first| rung < first.before);
                (before && !self.hidden.contains(&rung)).then_some(own)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_rung_waits_hidden_and_opens_the_period_at_its_second_segment() {
        let mut ladder = Ladder::new();
        ladder.change(Some(104), 2, 3);
        let start = |n: u64| Some(Ts90(n as i64 * 1000));
        let pending = ladder.cuts(|_| None, start);
        assert!(pending.cuts().is_empty());
        assert_eq!(pending.video(0, 105, 0), Some(0));
        assert_eq!(pending.video(1, 200, 0), Some(0));
        assert_eq!(
            pending.video(2, 107, 0),
            None,
            "a pending rung is not listed"
        );

        // The new rung's first segment is 106: the Period opens at its second for every rung,
        // its first listed nowhere.
        let cuts = ladder.cuts(|rung| (rung == 2).then_some(106), start);
        assert_eq!(
            cuts.cuts(),
            &[LadderCut {
                from: 107,
                before: 2,
                rungs: 3,
                start: Some(Ts90(107_000))
            }]
        );
        assert_eq!(cuts.video(2, 106, 0), None);
        assert_eq!(cuts.video(0, 106, 0), Some(0));
        assert_eq!(cuts.video(0, 107, 0), Some(107));
        assert_eq!(cuts.video(2, 107, 0), Some(107));
        // A codec Period opened later stays its own; one opened before ends at the cut.
        assert_eq!(cuts.video(1, 110, 109), Some(109));
        assert_eq!(cuts.video(1, 110, 103), Some(107));
        // Audio by time: a segment straddling the cut's start is in both Periods.
        assert_eq!(
            cuts.audio(0, Ts90(105_000), Ts90(107_000), 0),
            [Some(0), None]
        );
        assert_eq!(
            cuts.audio(0, Ts90(105_000), Ts90(107_001), 0),
            [Some(0), Some(107)]
        );
        assert_eq!(
            cuts.audio(0, Ts90(107_000), Ts90(109_000), 0),
            [Some(107), None]
        );
    }

    #[test]
    fn a_removed_rung_stays_in_the_old_period_only() {
        let mut ladder = Ladder::new();
        ladder.change(Some(50), 3, 2);
        let cuts = ladder.cuts(|_| None, |_| None);
        assert_eq!(cuts.cuts()[0].from, 51);
        assert_eq!(cuts.video(2, 50, 0), Some(0));
        assert_eq!(cuts.video(2, 51, 0), None);
        assert_eq!(cuts.video(1, 51, 0), Some(51));
        // Not listed yet anywhere: audio stays where it is.
        assert_eq!(cuts.audio(0, Ts90(0), Ts90(i64::MAX), 0), [Some(0), None]);
        // A new rung that published before the floor opens at the floor.
        let mut ladder = Ladder::new();
        ladder.change(Some(50), 1, 2);
        assert_eq!(ladder.cuts(|_| Some(48), |_| None).cuts()[0].from, 51);
        assert_eq!(ladder.cuts(|_| Some(51), |_| None).cuts()[0].from, 52);
    }

    #[test]
    fn changes_are_bounded() {
        let mut ladder = Ladder::new();
        for i in 0..40 {
            ladder.change(Some(i * 10), 2, 2);
        }
        let cuts = ladder.cuts(|_| Some(0), |_| None);
        assert_eq!(cuts.cuts().len(), MAX_CHANGES);
        assert_eq!(cuts.cuts()[0].from, 241);
    }
}
