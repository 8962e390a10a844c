//! The parameter-set keeper of one video track (SPEC §Ingest "Parameter sets").

use bytes::{Bytes, BytesMut};

use super::nal::{START_CODE, annex_b_nals};
use super::{CodecError, TrackInfo, h264, h265};
use crate::Codec;

/// Keeps the latest parameter sets of one H.264 or H.265 track and puts them in front of every
/// keyframe that arrives without them, so that each keyframe written to the hub can start a
/// decoder (SPEC §Buffer hub "Packet").
///
/// Call order: feed out-of-band parameter sets (SDP `sprop-*`, an RTMP sequence header, an MP4
/// `avcC`) with [`ParamSets::insert`] when they arrive, and pass every Annex-B access unit of the
/// track, in decode order, through [`ParamSets::observe`] before writing it. Parameter sets
/// found in-band replace the remembered ones.
///
/// Sets are remembered per kind and id (`seq_parameter_set_id`, ...), which bounds the memory to
/// what the standard allows. A set is copied out of the access unit only when its value changes,
/// so a long-lived keeper never pins a large keyframe buffer.
///
/// Decisions left to the caller: what to do with a [`Observed::DropKeyframe`] (drop and count
/// it, per SPEC), and whether a [`ParamChange::Changed`] starts a new timeline session
/// (`config_change`).
#[derive(Debug, Clone)]
pub struct ParamSets {
    /// Which codec's NAL header and parameter-set syntax to use.
    codec: VideoCodec,
    /// Video parameter sets by id (H.265 only), sorted by id.
    vps: Vec<(u8, Bytes)>,
    /// Sequence parameter sets by id, sorted by id.
    sps: Vec<(u8, Bytes)>,
    /// Picture parameter sets by id, sorted by id.
    pps: Vec<(u8, Bytes)>,
}

/// What [`ParamSets::observe`] decided about one access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Write this access unit.
    Write {
        /// The access unit: the input itself, or a new buffer with the remembered parameter
        /// sets inserted after a leading access unit delimiter (or at the start).
        au: Bytes,
        /// Whether the access unit is a keyframe (an H.264 IDR or an H.265 IRAP picture).
        keyframe: bool,
        /// Whether the parameter sets were inserted (for a metric; `au` is a new buffer then).
        prepended: bool,
        /// Whether this access unit brought new parameter-set values.
        change: ParamChange,
    },
    /// A keyframe without parameter sets arrived before any were known (for H.265: before a
    /// VPS, SPS and PPS were all known). It cannot start a decoder: drop and count it.
    DropKeyframe {
        /// Whether this access unit brought new parameter-set values (some, not all).
        change: ParamChange,
    },
}

/// Whether an access unit (or an inserted set) changed the remembered parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamChange {
    /// Nothing new: no parameter sets, or the same values again.
    Unchanged,
    /// The track's first parameter sets were learned.
    First,
    /// A parameter set took a new value, or a set with a new id appeared beside known ones:
    /// a codec configuration change (SPEC §Timeline `config_change`; downstream configuration
    /// records must be re-sent).
    Changed,
}

impl ParamChange {
    /// The stronger of two changes (`Changed` over `First` over `Unchanged`).
    fn stronger(self, other: Self) -> Self {
        match (self, other) {
            (Self::Changed, _) | (_, Self::Changed) => Self::Changed,
            (Self::First, _) | (_, Self::First) => Self::First,
            _ => Self::Unchanged,
        }
    }
}

impl ParamSets {
    /// A keeper for an H.264 track.
    pub fn h264() -> Self {
        Self::new(VideoCodec::H264)
    }

    /// A keeper for an H.265 track.
    pub fn h265() -> Self {
        Self::new(VideoCodec::H265)
    }

    /// A keeper for `codec`; `None` unless it is H.264 or H.265.
    pub fn for_codec(codec: Codec) -> Option<Self> {
        match codec {
            Codec::H264 => Some(Self::h264()),
            Codec::H265 => Some(Self::h265()),
            _ => None,
        }
    }

    /// Remembers one parameter set given out of band (NAL header first, no start code).
    ///
    /// Units that are not parameter sets of this codec, and sets whose id cannot be read, are
    /// ignored and reported as [`ParamChange::Unchanged`].
    pub fn insert(&mut self, nal: &[u8]) -> ParamChange {
        self.remember(nal)
    }

    /// Observes one Annex-B access unit: remembers the parameter sets it carries and, for a
    /// keyframe lacking some, inserts the remembered ones (one allocation, only then).
    pub fn observe(&mut self, au: Bytes) -> Observed {
        let mut change = ParamChange::Unchanged;
        let mut keyframe = false;
        let mut present = [false; 3];
        for nal in annex_b_nals(&au) {
            if let Some(kind) = self.kind(nal) {
                present[kind as usize] = true;
                change = change.stronger(self.remember(nal));
            }
            keyframe |= self.is_keyframe_nal(nal);
        }
        if !keyframe {
            return Observed::Write {
                au,
                keyframe,
                prepended: false,
                change,
            };
        }
        let needed = self.needed();
        let missing: Vec<Kind> = needed
            .iter()
            .copied()
            .filter(|&k| !present[k as usize])
            .collect();
        if missing.is_empty() {
            return Observed::Write {
                au,
                keyframe,
                prepended: false,
                change,
            };
        }
        if missing.iter().any(|&k| self.sets(k).is_empty()) {
            return Observed::DropKeyframe { change };
        }
        Observed::Write {
            au: self.prepend(&au, &missing),
            keyframe,
            prepended: true,
            change,
        }
    }

    /// The remembered video parameter sets (H.265 only), by ascending id.
    pub fn vps(&self) -> impl Iterator<Item = &Bytes> {
        self.vps.iter().map(|(_, nal)| nal)
    }

    /// The remembered sequence parameter sets, by ascending id.
    pub fn sps(&self) -> impl Iterator<Item = &Bytes> {
        self.sps.iter().map(|(_, nal)| nal)
    }

    /// The remembered picture parameter sets, by ascending id.
    pub fn pps(&self) -> impl Iterator<Item = &Bytes> {
        self.pps.iter().map(|(_, nal)| nal)
    }

    /// Whether every kind of parameter set a keyframe needs is known.
    pub fn is_complete(&self) -> bool {
        self.needed().iter().all(|&k| !self.sets(k).is_empty())
    }

    /// The track description from the lowest-id SPS, if one is known.
    pub fn track_info(&self) -> Option<Result<TrackInfo, CodecError>> {
        let (_, sps) = self.sps.first()?;
        Some(match self.codec {
            VideoCodec::H264 => h264::Sps::parse(sps).map(|s| s.track_info()),
            VideoCodec::H265 => h265::Sps::parse(sps).map(|s| s.track_info()),
        })
    }

    /// Forgets every remembered set (a new source: its sets must come again).
    pub fn clear(&mut self) {
        self.vps.clear();
        self.sps.clear();
        self.pps.clear();
    }

    fn new(codec: VideoCodec) -> Self {
        Self {
            codec,
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
        }
    }

    /// Stores a copy of `nal` if its value is new.
    fn remember(&mut self, nal: &[u8]) -> ParamChange {
        let Some(kind) = self.kind(nal) else {
            return ParamChange::Unchanged;
        };
        let id = match (self.codec, kind) {
            (VideoCodec::H264, Kind::Sps) => h264::sps_id(nal),
            (VideoCodec::H264, _) => h264::pps_id(nal),
            (VideoCodec::H265, Kind::Vps) => h265::vps_id(nal),
            (VideoCodec::H265, Kind::Sps) => h265::sps_id(nal),
            (VideoCodec::H265, Kind::Pps) => h265::pps_id(nal),
        };
        let Ok(id) = id else {
            return ParamChange::Unchanged;
        };
        let first = self.vps.is_empty() && self.sps.is_empty() && self.pps.is_empty();
        let sets = self.sets_mut(kind);
        match sets.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(i) if sets[i].1 == nal => ParamChange::Unchanged,
            Ok(i) => {
                sets[i].1 = Bytes::copy_from_slice(nal);
                ParamChange::Changed
            }
            Err(i) => {
                let known = !sets.is_empty();
                sets.insert(i, (id, Bytes::copy_from_slice(nal)));
                if known {
                    ParamChange::Changed
                } else if first {
                    ParamChange::First
                } else {
                    // Completing the first configuration (a PPS after the SPS).
                    ParamChange::Unchanged
                }
            }
        }
    }

    /// A new access unit: `au` with the remembered sets of the `missing` kinds inserted after
    /// a leading AUD, or before the first NAL unit.
    fn prepend(&self, au: &Bytes, missing: &[Kind]) -> Bytes {
        let base = au.as_ptr() as usize;
        let mut nals = annex_b_nals(au);
        let first = nals.next();
        let (head, rest) = match first {
            Some(nal) if self.is_aud(nal) => {
                let end = nal.as_ptr() as usize - base + nal.len();
                (&au[..end], &au[end..])
            }
            Some(nal) => {
                // Back up over the start code, dropping any bytes before it.
                let start = (nal.as_ptr() as usize - base).saturating_sub(START_CODE.len());
                let start = if au[start] == 0 { start } else { start + 1 };
                (&au[..0], &au[start..])
            }
            None => (&au[..0], &au[..]),
        };
        let sets: Vec<&Bytes> = missing
            .iter()
            .flat_map(|&k| self.sets(k).iter().map(|(_, nal)| nal))
            .collect();
        let extra: usize = sets.iter().map(|nal| START_CODE.len() + nal.len()).sum();
        let mut out = BytesMut::with_capacity(head.len() + extra + rest.len());
        out.extend_from_slice(head);
        for nal in sets {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
        out.extend_from_slice(rest);
        out.freeze()
    }

    fn kind(&self, nal: &[u8]) -> Option<Kind> {
        match self.codec {
            VideoCodec::H264 => match h264::NalType::of(nal)? {
                h264::NalType::SPS => Some(Kind::Sps),
                h264::NalType::PPS => Some(Kind::Pps),
                _ => None,
            },
            VideoCodec::H265 => match h265::NalType::of(nal)? {
                h265::NalType::VPS => Some(Kind::Vps),
                h265::NalType::SPS => Some(Kind::Sps),
                h265::NalType::PPS => Some(Kind::Pps),
                _ => None,
            },
        }
    }

    fn is_keyframe_nal(&self, nal: &[u8]) -> bool {
        match self.codec {
            VideoCodec::H264 => h264::NalType::of(nal) == Some(h264::NalType::IDR),
            VideoCodec::H265 => h265::NalType::of(nal).is_some_and(h265::NalType::is_irap),
        }
    }

    fn is_aud(&self, nal: &[u8]) -> bool {
        match self.codec {
            VideoCodec::H264 => h264::NalType::of(nal) == Some(h264::NalType::AUD),
            VideoCodec::H265 => h265::NalType::of(nal) == Some(h265::NalType::AUD),
        }
    }

    fn needed(&self) -> &'static [Kind] {
        match self.codec {
            VideoCodec::H264 => &[Kind::Sps, Kind::Pps],
            VideoCodec::H265 => &[Kind::Vps, Kind::Sps, Kind::Pps],
        }
    }

    fn sets(&self, kind: Kind) -> &[(u8, Bytes)] {
        match kind {
            Kind::Vps => &self.vps,
            Kind::Sps => &self.sps,
            Kind::Pps => &self.pps,
        }
    }

    fn sets_mut(&mut self, kind: Kind) -> &mut Vec<(u8, Bytes)> {
        match kind {
            Kind::Vps => &mut self.vps,
            Kind::Sps => &mut self.sps,
            Kind::Pps => &mut self.pps,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoCodec {
    H264,
    H265,
}

/// A kind of parameter set, in the order they go before a keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Vps = 0,
    Sps = 1,
    Pps = 2,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const H264: &[u8] = include_bytes!("../../testdata/ffmpeg_x264_high_1280x720_30fps.h264");
    const H265: &[u8] = include_bytes!("../../testdata/ffmpeg_x265_main_1280x720_30fps.h265");

    /// The access unit without its parameter sets, behind an AUD when `aud` is set.
    fn strip(stream: &[u8], keep: impl Fn(&[u8]) -> bool, aud: Option<&[u8]>) -> Bytes {
        let mut out = Vec::new();
        if let Some(aud) = aud {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(aud);
        }
        for nal in annex_b_nals(stream).filter(|n| keep(n)) {
            out.extend_from_slice(&[0, 0, 1]);
            out.extend_from_slice(nal);
        }
        Bytes::from(out)
    }

    fn h264_not_ps(nal: &[u8]) -> bool {
        !h264::NalType::of(nal).is_some_and(h264::NalType::is_parameter_set)
    }

    #[test]
    fn h264_keyframe_gets_parameter_sets() {
        let mut keeper = ParamSets::h264();
        let bare = strip(H264, h264_not_ps, Some(&[0x09, 0xf0]));

        // Nothing known yet: drop.
        assert_eq!(
            keeper.observe(bare.clone()),
            Observed::DropKeyframe {
                change: ParamChange::Unchanged
            }
        );

        // The full access unit passes through untouched and teaches the keeper.
        let full = Bytes::from_static(H264);
        let Observed::Write {
            au,
            keyframe: true,
            prepended: false,
            change: ParamChange::First,
        } = keeper.observe(full.clone())
        else {
            panic!("full keyframe not written as is");
        };
        assert_eq!(au.as_ptr(), full.as_ptr());
        assert!(keeper.is_complete());

        // Now the bare keyframe gets them, after its AUD.
        let Observed::Write {
            au,
            keyframe: true,
            prepended: true,
            change: ParamChange::Unchanged,
        } = keeper.observe(bare)
        else {
            panic!("bare keyframe not repaired");
        };
        let types: Vec<u8> = annex_b_nals(&au).map(|n| n[0] & 0x1f).collect();
        assert_eq!(types, [9, 7, 8, 6, 5]);
        assert_eq!(keeper.track_info().unwrap().unwrap().width, Some(1280));

        // Same sets again: no change. A new SPS value: a change.
        assert!(matches!(
            keeper.observe(full),
            Observed::Write {
                change: ParamChange::Unchanged,
                ..
            }
        ));
        let other = include_bytes!("../../testdata/ffmpeg_x264_high_1920x1080_25fps.h264");
        assert!(matches!(
            keeper.observe(Bytes::from_static(other)),
            Observed::Write {
                change: ParamChange::Changed,
                prepended: false,
                ..
            }
        ));
        assert_eq!(keeper.track_info().unwrap().unwrap().height, Some(1080));
    }

    #[test]
    fn h264_non_keyframe_passes_through() {
        let mut keeper = ParamSets::h264();
        let p = Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9a, 0x00, 0x10]);
        assert_eq!(
            keeper.observe(p.clone()),
            Observed::Write {
                au: p,
                keyframe: false,
                prepended: false,
                change: ParamChange::Unchanged
            }
        );
    }

    #[test]
    fn h265_out_of_band_sets() {
        let mut keeper = ParamSets::h265();
        let is_ps = |n: &[u8]| h265::NalType::of(n).is_some_and(h265::NalType::is_parameter_set);
        let mut changes = Vec::new();
        for nal in annex_b_nals(H265).filter(|n| is_ps(n)) {
            changes.push(keeper.insert(nal));
        }
        assert_eq!(
            changes,
            [
                ParamChange::First,
                ParamChange::Unchanged,
                ParamChange::Unchanged
            ]
        );
        let bare = strip(H265, |n| !is_ps(n), None);
        let Observed::Write {
            au,
            keyframe: true,
            prepended: true,
            ..
        } = keeper.observe(bare)
        else {
            panic!("bare IRAP not repaired");
        };
        let types: Vec<u8> = annex_b_nals(&au).map(|n| (n[0] >> 1) & 0x3f).collect();
        assert_eq!(&types[..3], [32, 33, 34]);
        assert!(h265::NalType(types[types.len() - 1]).is_irap());
        assert_eq!(keeper.track_info().unwrap().unwrap().width, Some(1280));
    }

    #[test]
    fn h265_without_vps_is_dropped() {
        let mut keeper = ParamSets::h265();
        let no_vps = strip(
            H265,
            |n| h265::NalType::of(n) != Some(h265::NalType::VPS),
            None,
        );
        assert!(matches!(
            keeper.observe(no_vps),
            Observed::DropKeyframe {
                change: ParamChange::First
            }
        ));
    }

    proptest! {
        #[test]
        fn observe_never_panics(data in prop::collection::vec(any::<u8>(), 0..300), h265 in any::<bool>()) {
            let mut keeper = if h265 { ParamSets::h265() } else { ParamSets::h264() };
            // Seed with real sets so that prepending is exercised too.
            let stream = if h265 { H265 } else { H264 };
            keeper.observe(Bytes::from_static(stream));
            let _ = keeper.observe(Bytes::from(data.clone()));
            let _ = keeper.insert(&data);
            let _ = keeper.track_info();
        }
    }
}
