//! Lip sync of an RTSP pull from RTCP sender reports (RFC 3550 §6.4.1; SPEC §Ingest "RTCP
//! sender reports align tracks").
//!
//! Each track's RTP clock starts anywhere. PLAY's `RTP-Info` maps every track to one instant
//! when the server sends it; when it does not, retina starts each track at 0 at its first
//! packet, so audio and video are off by however far apart their first packets were sent. A
//! sender report ties one RTP timestamp of a track to the sender's wall clock (NTP); with one
//! report of each track, both tracks' zero points are known on that one clock, and the audio
//! is moved onto the video's axis by their difference. A server that sends `RTP-Info`
//! consistently gets a difference of about zero, and nothing moves.
//!
//! The shift is recomputed at every report (the two RTP clocks drift apart on long runs) and
//! applied when it moved by [`MIN_CHANGE`] or more, so report jitter does not churn the audio
//! timeline. A report whose wall clock is zero (a sender without one) or that would move the
//! audio by more than [`MAX_SHIFT`] (two clocks that are not one) is ignored.

use tributary_media::Ts90;

/// Which track a report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Track {
    Video,
    Audio,
}

/// The latest sender report of each track and the shift applied to the audio.
#[derive(Debug, Default)]
pub(super) struct SrSync {
    /// Per track (video, audio): its zero point on the sender's clock, in NTP units (1/2^32 s).
    zero: [Option<i128>; 2],
    /// What is added to every audio timestamp.
    shift: Ts90,
}

impl SrSync {
    /// Takes a sender report of `track`: `rtp` is its RTP timestamp on the track's axis (90
    /// kHz ticks since the track's zero), `ntp` its wall clock (NTP 32.32 fixed point). Returns
    /// the new audio shift when it changed.
    pub(super) fn report(&mut self, track: Track, rtp: Ts90, ntp: u64) -> Option<Ts90> {
        if ntp == 0 {
            return None;
        }
        let zero = i128::from(ntp) - i128::from(rtp.0) * NTP_PER_SEC / i128::from(Ts90::HZ);
        self.zero[track as usize] = Some(zero);
        let [Some(video), Some(audio)] = self.zero else {
            return None;
        };
        // Rounded to the nearest tick.
        let ticks =
            ((audio - video) * i128::from(Ts90::HZ) + NTP_PER_SEC / 2).div_euclid(NTP_PER_SEC);
        let shift = Ts90(i64::try_from(ticks).ok()?);
        if shift.0.abs() > MAX_SHIFT.0 || (shift.0 - self.shift.0).abs() < MIN_CHANGE.0 {
            return None;
        }
        self.shift = shift;
        Some(shift)
    }

    /// What to add to an audio timestamp to put it on the video's axis.
    pub(super) fn audio_shift(&self) -> Ts90 {
        self.shift
    }
}

/// NTP units per second (32.32 fixed point).
const NTP_PER_SEC: i128 = 1 << 32;
/// The smallest change of the shift applied: below an AAC frame at 48 kHz (21.3 ms).
const MIN_CHANGE: Ts90 = Ts90(90 * 20);
/// The largest shift believed: farther apart, the two reports are not on one clock.
const MAX_SHIFT: Ts90 = Ts90(90_000 * 10);

#[cfg(test)]
mod tests {
    use super::*;

    /// NTP time of `secs` seconds after an arbitrary epoch.
    fn ntp(secs: f64) -> u64 {
        let base: u64 = 3_900_000_000 << 32;
        base + (secs * NTP_PER_SEC as f64) as u64
    }

    #[test]
    fn no_shift_until_both_tracks_reported() {
        let mut sync = SrSync::default();
        assert_eq!(sync.report(Track::Video, Ts90(90_000), ntp(10.0)), None);
        assert_eq!(sync.audio_shift(), Ts90(0));
        // More video reports: still no audio report.
        assert_eq!(sync.report(Track::Video, Ts90(180_000), ntp(11.0)), None);
        assert_eq!(sync.audio_shift(), Ts90(0));
    }

    #[test]
    fn tracks_started_apart_are_aligned() {
        // Without RTP-Info, both tracks start at 0 at their first packet; the audio's first
        // packet was sent 300 ms after the video's, so audio at 0 is video at 0.3 s.
        let mut sync = SrSync::default();
        // Video zero at wall 100.0 s: its report at 2 s on its axis says wall 102.0 s.
        sync.report(Track::Video, Ts90(180_000), ntp(102.0));
        // Audio zero at wall 100.3 s: its report at 1 s on its axis says wall 101.3 s.
        let shift = sync.report(Track::Audio, Ts90(90_000), ntp(101.3));
        assert_eq!(shift, Some(Ts90(27_000)));
        assert_eq!(sync.audio_shift(), Ts90(27_000));
        // And the other way round: audio first.
        let mut sync = SrSync::default();
        sync.report(Track::Audio, Ts90(0), ntp(50.0));
        let shift = sync.report(Track::Video, Ts90(45_000), ntp(50.75));
        assert_eq!(
            shift,
            Some(Ts90(-22_500)),
            "audio zero 0.25 s before video zero"
        );
    }

    #[test]
    fn consistent_rtp_info_moves_nothing() {
        // Both tracks on one axis already (RTP-Info): the zero points agree.
        let mut sync = SrSync::default();
        sync.report(Track::Video, Ts90(450_000), ntp(205.0));
        assert_eq!(sync.report(Track::Audio, Ts90(449_100), ntp(204.99)), None);
        assert_eq!(sync.audio_shift(), Ts90(0));
    }

    #[test]
    fn jitter_is_ignored_and_drift_is_followed() {
        let mut sync = SrSync::default();
        sync.report(Track::Video, Ts90(0), ntp(0.0));
        assert_eq!(
            sync.report(Track::Audio, Ts90(0), ntp(0.5)),
            Some(Ts90(45_000))
        );
        // 5 ms of report jitter: no change.
        assert_eq!(sync.report(Track::Audio, Ts90(450_000), ntp(5.505)), None);
        assert_eq!(sync.audio_shift(), Ts90(45_000));
        // The audio clock drifted 30 ms: followed.
        assert_eq!(
            sync.report(Track::Audio, Ts90(900_000), ntp(10.53)),
            Some(Ts90(47_700))
        );
        // A new video report that agrees keeps it.
        assert_eq!(sync.report(Track::Video, Ts90(900_000), ntp(10.0)), None);
    }

    #[test]
    fn reports_without_a_clock_or_far_apart_are_ignored() {
        let mut sync = SrSync::default();
        sync.report(Track::Video, Ts90(0), ntp(0.0));
        assert_eq!(
            sync.report(Track::Audio, Ts90(0), 0),
            None,
            "NTP zero: no clock"
        );
        assert_eq!(
            sync.report(Track::Audio, Ts90(0), ntp(11.0)),
            None,
            "11 s apart"
        );
        assert_eq!(sync.audio_shift(), Ts90(0));
        // Extreme values do not overflow.
        assert_eq!(sync.report(Track::Audio, Ts90(i64::MAX), u64::MAX), None);
        assert_eq!(sync.report(Track::Video, Ts90(i64::MIN), 1), None);
    }
}
