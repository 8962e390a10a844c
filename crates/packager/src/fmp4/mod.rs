//! The fMP4 / CMAF writer: init segments (`ftyp` + `moov`) and media segments (`moof` +
//! `mdat`) from the [`Frame`]s a packager receives, sans-IO.
//!
//! - [`Fmp4Track::from_frame`] describes a track from its first frame: a video keyframe's
//!   in-band parameter sets give `avcC` / `hvcC`, an AV1 keyframe's sequence header OBU
//!   gives `av1C`, a VP9 keyframe's uncompressed header gives `vpcC`, an AAC frame's
//!   AudioSpecificConfig gives
//!   `esds`, an Opus packet's TOC gives `dOps`, an AC-3 / E-AC-3 syncframe header gives
//!   `dac3` / `dec3`.
//! - [`write_init`] writes the init segment of a set of tracks.
//! - [`Fragmenter`] collects the samples of one segment per track and writes them as one
//!   `moof` (an `mfhd`, then per track a `traf` with `tfhd`, `tfdt` and `trun`) followed by
//!   one `mdat`.
//!
//! # Decisions
//!
//! - **Written here, not with `mp4-atom`.** `mp4-atom` (kixelated) reads and writes every box
//!   this module needs, `dac3` and `dec3` included, and it is what the tests read our output
//!   with. It is not the writer because: its encoder works from a typed tree, so a media
//!   segment would first copy every sample into an `Mdat { data: Vec<u8> }` and build one
//!   `TrunEntry` per sample, where this module converts each access unit once, straight into
//!   the segment's buffer; it brings `tracing`, `num`, `derive_more` and `pastey` into an L0
//!   crate for about twenty fixed boxes; its 0.17 line needs Rust 1.88, above the workspace's
//!   1.85; and a reader independent of the writer is what makes the round-trip tests mean
//!   something (a shared library's misreading of a box would round-trip unnoticed).
//! - **Timescales.** Video tracks count in 90 kHz, the hub's clock, so times and composition
//!   offsets are exact. Audio tracks count in their output sample rate (48 000 for Opus), so
//!   an AAC frame lasts exactly 1024 (2048 for HE-AAC at the SBR rate); a sample's time is its
//!   DTS converted (rounded down), and its duration the distance to the next sample's time,
//!   so rounding never accumulates.
//! - **Durations at a segment's end.** The last sample of a track in a segment lasts as long
//!   as the sample before it (the track's last measured step; the codec's frame length before
//!   any), because the next sample of that track has not arrived yet. The next segment's
//!   `tfdt` is still the exact converted DTS of its first sample.
//! - **Parameter sets** are in the sample entry (`avc1`, `hvc1`, as Apple's players want)
//!   and taken out of the samples where they repeat the entry's; access unit delimiters are
//!   dropped. A keyframe whose parameter sets differ from the track's is refused by
//!   [`Fragmenter::push`] with [`Fmp4Error::ConfigChanged`]: the caller starts a new init.
//! - **AAC** keeps the source's AudioSpecificConfig byte for byte in `esds`, so HE-AAC and
//!   HE-AACv2 stay signalled as the encoder signalled them (explicit SBR / PS); the sample
//!   entry carries the output rate and channels (SBR rate, 2 for parametric stereo).
//! - **Opus**: one channel or two from the first packet's TOC, mapping family 0, pre-skip 0
//!   (a live source gives no OpusHead to take it from).
//! - **AC-3 / E-AC-3**: a frame carrying several syncframes (MPEG-TS muxers bundle them in
//!   one PES) becomes one sample per syncframe. `dec3` describes one independent substream;
//!   its `bsmod` is 0 (main audio).
//! - **AV1**: the sample entry is `av01` with `av1C`, whose `configOBUs` is the keyframe's
//!   sequence header OBU. A sample is the temporal unit without its temporal delimiter and
//!   padding OBUs (AV1-ISOBMFF §2.4 wants them out; FFmpeg's muxer takes out the same);
//!   sequence headers stay in keyframes, which the binding allows. A keyframe with another
//!   sequence header is [`Fmp4Error::ConfigChanged`].
//! - **VP9**: `vp09` with a version-1 `vpcC` from the keyframe's uncompressed header (the
//!   level derived from the picture size, [`vp9::KeyFrame::level`]); a sample is the frame
//!   (superframe) as it came. A keyframe whose record or size differs is
//!   [`Fmp4Error::ConfigChanged`].
//!
//! ```
//! use std::time::Instant;
//!
//! use bytes::{Bytes, BytesMut};
//! use tributary_media::{Codec, Frame, SessionId, TrackConfig, TrackId, Ts90};
//! use tributary_packager::{Fmp4Track, Fragmenter, write_init};
//!
//! let asc = Bytes::from_static(&[0x11, 0x90]); // AAC LC, 48 kHz, stereo
//! let frame = |i: i64| Frame {
//!     track: TrackId(0x101),
//!     codec: Codec::Aac,
//!     pts: Ts90(i * 1920),
//!     dts: Ts90(i * 1920),
//!     keyframe: true,
//!     session: SessionId(1),
//!     arrival: Instant::now(),
//!     payload: Bytes::from_static(&[0x21, 0x10, 0x04]),
//!     config: TrackConfig::aac(asc.clone()).map(std::sync::Arc::new),
//! };
//! let track = Fmp4Track::from_frame(1, &frame(0)).unwrap();
//! assert_eq!(track.codec_string(), "mp4a.40.2");
//! let mut init = BytesMut::new();
//! write_init(&[track.clone()], &mut init);
//! assert_eq!(&init[4..8], b"ftyp");
//!
//! let mut fragmenter = Fragmenter::new(&[track]);
//! for i in 0..25 {
//!     fragmenter.push(0, &frame(i)).unwrap();
//! }
//! let mut segment = BytesMut::new();
//! fragmenter.write(1, &mut segment);
//! assert_eq!(&segment[4..8], b"moof");
//! ```

mod ac3;
mod boxes;
mod entry;

use bytes::{BufMut, Bytes, BytesMut};
use tributary_media::codec::aac::AudioSpecificConfig;
use tributary_media::codec::{CodecError, av1, h264, h265, nal, opus, vp9};
use tributary_media::{Codec, Frame, MediaKind, Ts90};

use self::ac3::SyncFrame;
use self::boxes::{MATRIX, close, open, open_full, patch_u32};
use self::entry::write_sample_entry;

/// One track of an fMP4 presentation: what its init segment says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmp4Track {
    /// `track_ID` (from 1).
    id: u32,
    /// The codec.
    codec: Codec,
    /// Ticks per second of the track's media time.
    timescale: u32,
    /// The sample entry and its codec configuration box.
    entry: SampleEntry,
    /// The RFC 6381 `codecs` string.
    codec_string: String,
    /// The parameter sets in the sample entry (NAL header included), taken out of samples.
    params: Vec<Bytes>,
    /// How long a sample lasts when nothing else tells (timescale ticks).
    default_duration: u32,
}

/// The sample entry of a track, with what its configuration box needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SampleEntry {
    Avc {
        record: Bytes,
        width: u16,
        height: u16,
    },
    Hevc {
        record: Bytes,
        width: u16,
        height: u16,
    },
    /// `record` is the whole `AV1CodecConfigurationRecord`.
    Av1 {
        record: Bytes,
        width: u16,
        height: u16,
    },
    /// `record` is the `VPCodecConfigurationRecord` after `vpcC`'s version and flags.
    Vp9 {
        record: [u8; 8],
        width: u16,
        height: u16,
    },
    Aac {
        asc: Bytes,
        rate: u32,
        channels: u16,
    },
    Opus {
        channels: u8,
    },
    Ac3 {
        dac3: [u8; 3],
        rate: u32,
        channels: u16,
    },
    Eac3 {
        dec3: [u8; 5],
        rate: u32,
        channels: u16,
    },
}

impl Fmp4Track {
    /// Describes track `id` (from 1) from a frame of it: for video a keyframe carrying its
    /// parameter sets (every keyframe in the hub does; an AV1 keyframe its sequence header, a
    /// VP9 keyframe its uncompressed header), for AAC a frame with its
    /// configuration, for Opus, AC-3 and E-AC-3 any frame.
    pub fn from_frame(id: u32, frame: &Frame) -> Result<Self, Fmp4Error> {
        let codec = frame.codec;
        let bad = |source| Fmp4Error::Codec { codec, source };
        let (entry, timescale, codec_string, params, default_duration) = match codec {
            Codec::H264 => {
                let (sps, pps) = (first_nal(frame, 7), first_nal(frame, 8));
                let (Some(sps), Some(pps)) = (sps, pps) else {
                    return Err(Fmp4Error::NoParameterSets { codec });
                };
                let record = h264::AvcConfig::from_parameter_sets(sps, pps).map_err(bad)?;
                let parsed = h264::Sps::parse(sps).map_err(bad)?;
                let params = vec![Bytes::copy_from_slice(sps), Bytes::copy_from_slice(pps)];
                let entry = SampleEntry::Avc {
                    record: Bytes::from(record.to_vec().map_err(bad)?),
                    width: dimension(parsed.width),
                    height: dimension(parsed.height),
                };
                (entry, VIDEO_TIMESCALE, record.codec_string(), params, 3000)
            }
            Codec::H265 => {
                let (vps, sps, pps) = (
                    first_nal(frame, 32),
                    first_nal(frame, 33),
                    first_nal(frame, 34),
                );
                let (Some(vps), Some(sps), Some(pps)) = (vps, sps, pps) else {
                    return Err(Fmp4Error::NoParameterSets { codec });
                };
                let record = h265::HevcConfig::from_parameter_sets(vps, sps, pps).map_err(bad)?;
                let parsed = h265::Sps::parse(sps).map_err(bad)?;
                let params = [vps, sps, pps].map(Bytes::copy_from_slice).to_vec();
                let entry = SampleEntry::Hevc {
                    record: Bytes::from(record.to_vec().map_err(bad)?),
                    width: dimension(parsed.width),
                    height: dimension(parsed.height),
                };
                (entry, VIDEO_TIMESCALE, record.codec_string(), params, 3000)
            }
            Codec::Av1 => {
                let obu = av1::obus(&frame.payload)
                    .find(|o| o.kind == av1::OBU_SEQUENCE_HEADER)
                    .ok_or(Fmp4Error::NoParameterSets { codec })?;
                let header = av1::SequenceHeader::parse(obu.payload).map_err(bad)?;
                let entry = SampleEntry::Av1 {
                    record: Bytes::from(header.config_record(obu.data)),
                    width: dimension(header.max_width),
                    height: dimension(header.max_height),
                };
                let params = vec![Bytes::copy_from_slice(obu.data)];
                (entry, VIDEO_TIMESCALE, header.codec_string(), params, 3000)
            }
            Codec::Vp9 => {
                if !vp9::is_keyframe(&frame.payload) {
                    return Err(Fmp4Error::NoParameterSets { codec });
                }
                let key = vp9::KeyFrame::parse(&frame.payload).map_err(bad)?;
                let config = key.config();
                let entry = SampleEntry::Vp9 {
                    record: config.to_bytes(),
                    width: dimension(key.width),
                    height: dimension(key.height),
                };
                (
                    entry,
                    VIDEO_TIMESCALE,
                    config.codec_string(),
                    Vec::new(),
                    3000,
                )
            }
            Codec::Aac => {
                let asc = frame
                    .config
                    .as_ref()
                    .map(|c| c.decoder_config.clone())
                    .ok_or(Fmp4Error::NoConfig { codec })?;
                let parsed = AudioSpecificConfig::parse(&asc).map_err(bad)?;
                let rate = parsed.output_sample_rate();
                let frame_len = if parsed.frame_length_960 { 960 } else { 1024 };
                let duration = frame_len * (rate / parsed.sample_rate.max(1)).max(1);
                let entry = SampleEntry::Aac {
                    asc,
                    rate,
                    channels: u16::from(parsed.channels().unwrap_or(2)),
                };
                (entry, rate, parsed.codec_string(), Vec::new(), duration)
            }
            Codec::Opus => {
                let toc = frame.payload.first().copied().unwrap_or(0);
                let channels = if toc & 0x04 != 0 { 2 } else { 1 };
                let duration = match opus::packet_samples(&frame.payload) {
                    0 => 960,
                    samples => samples,
                };
                let entry = SampleEntry::Opus { channels };
                (entry, OPUS_RATE, "opus".to_owned(), Vec::new(), duration)
            }
            Codec::Ac3 | Codec::Eac3 => {
                let sync =
                    SyncFrame::parse(&frame.payload).ok_or(Fmp4Error::NoSyncFrame { codec })?;
                let (rate, channels) = (sync.sample_rate, sync.channels());
                let (entry, name) = if codec == Codec::Ac3 {
                    (
                        SampleEntry::Ac3 {
                            dac3: sync.dac3(),
                            rate,
                            channels,
                        },
                        "ac-3",
                    )
                } else {
                    (
                        SampleEntry::Eac3 {
                            dec3: sync.dec3(),
                            rate,
                            channels,
                        },
                        "ec-3",
                    )
                };
                (entry, rate, name.to_owned(), Vec::new(), sync.samples)
            }
            _ => return Err(Fmp4Error::Unsupported { codec }),
        };
        Ok(Self {
            id,
            codec,
            timescale: timescale.max(1),
            entry,
            codec_string,
            params,
            default_duration,
        })
    }

    /// `track_ID`.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Ticks per second of the track's media time (`mdhd` timescale).
    pub fn timescale(&self) -> u32 {
        self.timescale
    }

    /// The RFC 6381 `codecs` string (`avc1.64001f`, `hvc1.1.6.L93.B0`, `av01.0.08M.08`,
    /// `vp09.00.31.08`, `mp4a.40.5`, `opus`, `ac-3`, `ec-3`).
    pub fn codec_string(&self) -> &str {
        &self.codec_string
    }

    /// Whether `frame` fits this track's init: same codec, and for a video keyframe
    /// parameter sets the sample entry has (or none; for VP9 the same record and size), for
    /// AAC the same configuration.
    pub fn fits(&self, frame: &Frame) -> bool {
        if frame.codec != self.codec {
            return false;
        }
        match &self.entry {
            SampleEntry::Avc { .. }
            | SampleEntry::Hevc { .. }
            | SampleEntry::Av1 { .. }
            | SampleEntry::Vp9 { .. }
                if frame.keyframe =>
            {
                keyframe_fits(&self.entry, &self.params, frame)
            }
            SampleEntry::Aac { asc, .. } => frame
                .config
                .as_ref()
                .is_none_or(|c| c.decoder_config == *asc),
            _ => true,
        }
    }

    fn kind(&self) -> MediaKind {
        self.codec.kind()
    }
}

/// Whether a video keyframe carries only parameter sets (sequence headers) in `params`, or
/// for VP9 implies the entry's record and size.
fn keyframe_fits(entry: &SampleEntry, params: &[Bytes], frame: &Frame) -> bool {
    match entry {
        SampleEntry::Av1 { .. } => av1::obus(&frame.payload)
            .filter(|o| o.kind == av1::OBU_SEQUENCE_HEADER)
            .all(|o| params.iter().any(|p| p[..] == *o.data)),
        SampleEntry::Vp9 {
            record,
            width,
            height,
        } => vp9::KeyFrame::parse(&frame.payload).is_ok_and(|key| {
            key.config().to_bytes() == *record
                && (dimension(key.width), dimension(key.height)) == (*width, *height)
        }),
        _ => nal::annex_b_nals(&frame.payload)
            .filter(|n| is_param(frame.codec, n))
            .all(|n| params.iter().any(|p| p[..] == *n)),
    }
}

/// Writes the init segment of `tracks` (`ftyp`, then `moov` with one `trak` each and an
/// `mvex` announcing fragments), appending to `out`.
pub fn write_init(tracks: &[Fmp4Track], out: &mut BytesMut) {
    let ftyp = open(out, b"ftyp");
    out.put_slice(b"iso6");
    out.put_u32(0);
    for brand in [b"iso6", b"cmfc", b"mp41"] {
        out.put_slice(brand);
    }
    close(out, ftyp);

    let moov = open(out, b"moov");
    let mvhd = open_full(out, b"mvhd", 0, 0);
    out.put_u32(0); // creation_time
    out.put_u32(0); // modification_time
    out.put_u32(1000); // timescale
    out.put_u32(0); // duration: fragmented
    out.put_u32(0x0001_0000); // rate 1.0
    out.put_u16(0x0100); // volume 1.0
    out.put_bytes(0, 10);
    MATRIX.iter().for_each(|m| out.put_u32(*m));
    out.put_bytes(0, 24); // pre_defined
    out.put_u32(tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1);
    close(out, mvhd);
    for track in tracks {
        write_trak(track, out);
    }
    let mvex = open(out, b"mvex");
    for track in tracks {
        let trex = open_full(out, b"trex", 0, 0);
        out.put_u32(track.id);
        out.put_u32(1); // default_sample_description_index
        out.put_u32(0); // default_sample_duration
        out.put_u32(0); // default_sample_size
        out.put_u32(0); // default_sample_flags
        close(out, trex);
    }
    close(out, mvex);
    close(out, moov);
}

/// Collects the samples of one media segment per track and writes them as `moof` + `mdat`.
///
/// # Driving it
///
/// [`push`](Self::push) every frame of the segment, in decode order per track, with the
/// index of its track in the slice given to [`new`](Self::new); then
/// [`write`](Self::write) appends the segment and empties the fragmenter for the next one.
/// Frames are held as `Bytes` clones until then (no copy): each is copied once, converted to
/// length-prefixed NAL units for video, by `write`.
#[derive(Debug)]
pub struct Fragmenter {
    tracks: Vec<Run>,
}

/// One track's samples in the open segment.
#[derive(Debug)]
struct Run {
    id: u32,
    codec: Codec,
    timescale: u32,
    /// Parameter sets to leave out of samples (they are in the sample entry).
    params: Vec<Bytes>,
    /// The sample entry, which a keyframe must fit.
    entry: SampleEntry,
    /// The duration of a sample when nothing measured tells.
    default_duration: u32,
    /// The last measured sample duration.
    last_duration: Option<u32>,
    samples: Vec<Sample>,
}

/// One sample of a run.
#[derive(Debug)]
struct Sample {
    /// The frame's payload (one syncframe of it for AC-3 / E-AC-3).
    data: Bytes,
    /// Decode time in the track's timescale.
    time: i64,
    /// Composition offset (PTS − DTS) in the track's timescale.
    cts: i32,
    /// Size in the `mdat` (length-prefixed for video).
    size: u32,
    /// Duration in the track's timescale; 0 until the next sample (or the segment's end).
    duration: u32,
    /// A sync sample.
    key: bool,
}

impl Fragmenter {
    /// An empty fragmenter for `tracks` (the init segment's tracks, in its order).
    pub fn new(tracks: &[Fmp4Track]) -> Self {
        Self {
            tracks: tracks
                .iter()
                .map(|t| Run {
                    id: t.id,
                    codec: t.codec,
                    timescale: t.timescale,
                    params: t.params.clone(),
                    entry: t.entry.clone(),
                    default_duration: t.default_duration,
                    last_duration: None,
                    samples: Vec::new(),
                })
                .collect(),
        }
    }

    /// Adds `frame` to the run of track `index`.
    ///
    /// Fails, adding nothing, when `index` names no track, the frame's codec is not the
    /// track's, a video keyframe carries parameter sets the track's init does not
    /// ([`Fmp4Error::ConfigChanged`]), or an access unit is too large for a sample.
    pub fn push(&mut self, index: usize, frame: &Frame) -> Result<(), Fmp4Error> {
        let codec = frame.codec;
        let run = self
            .tracks
            .get_mut(index)
            .filter(|r| r.codec == codec)
            .ok_or(Fmp4Error::NoTrack { codec })?;
        let time = track_time(frame.dts, run.timescale);
        let cts = track_time(Ts90(frame.pts.0 - frame.dts.0), run.timescale);
        let cts = i32::try_from(cts).map_err(|_| Fmp4Error::TooLarge { codec })?;
        match codec {
            Codec::H264 | Codec::H265 => {
                let mut size: u64 = 0;
                for unit in nal::annex_b_nals(&frame.payload) {
                    if is_param(codec, unit) && !run.params.iter().any(|p| p[..] == *unit) {
                        if frame.keyframe {
                            return Err(Fmp4Error::ConfigChanged { codec });
                        }
                    } else if !kept(codec, unit, &run.params) {
                        continue;
                    }
                    size += 4 + unit.len() as u64;
                }
                let size = u32::try_from(size).map_err(|_| Fmp4Error::TooLarge { codec })?;
                run.add(frame.payload.clone(), time, cts, size, frame.keyframe);
            }
            Codec::Av1 | Codec::Vp9 => {
                if frame.keyframe && !keyframe_fits(&run.entry, &run.params, frame) {
                    return Err(Fmp4Error::ConfigChanged { codec });
                }
                let size = if codec == Codec::Av1 {
                    av1::obus(&frame.payload)
                        .filter(|o| kept_obu(o.kind))
                        .map(|o| o.data.len() as u64)
                        .sum()
                } else {
                    frame.payload.len() as u64
                };
                let size = u32::try_from(size).map_err(|_| Fmp4Error::TooLarge { codec })?;
                run.add(frame.payload.clone(), time, cts, size, frame.keyframe);
            }
            Codec::Ac3 | Codec::Eac3 => {
                let mut at = 0;
                let mut time = time;
                while at < frame.payload.len() {
                    let rest = &frame.payload[at..];
                    let sync = SyncFrame::parse(rest).filter(|s| s.len <= rest.len());
                    let len = sync.map_or(rest.len(), |s| s.len);
                    let size = u32::try_from(len).map_err(|_| Fmp4Error::TooLarge { codec })?;
                    run.add(frame.payload.slice(at..at + len), time, 0, size, true);
                    time += i64::from(sync.map_or(run.default_duration, |s| s.samples));
                    at += len;
                }
            }
            _ => {
                let size = u32::try_from(frame.payload.len())
                    .map_err(|_| Fmp4Error::TooLarge { codec })?;
                run.add(frame.payload.clone(), time, cts, size, true);
            }
        }
        Ok(())
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.tracks.iter().all(|r| r.samples.is_empty())
    }

    /// Appends the held samples to `out` as one `moof` (sequence number `sequence`) and one
    /// `mdat`, and empties the fragmenter. Tracks without samples get no `traf`; with no
    /// sample at all nothing is written.
    pub fn write(&mut self, sequence: u32, out: &mut BytesMut) {
        if self.is_empty() {
            return;
        }
        let moof = open(out, b"moof");
        let mfhd = open_full(out, b"mfhd", 0, 0);
        out.put_u32(sequence);
        close(out, mfhd);
        let mut offsets = Vec::with_capacity(self.tracks.len());
        for run in &mut self.tracks {
            let Some(last) = run.samples.last_mut() else {
                continue;
            };
            last.duration = run.last_duration.unwrap_or(run.default_duration);
            let video = run.codec.kind() == MediaKind::Video;
            let traf = open(out, b"traf");
            let flags = DEFAULT_BASE_IS_MOOF | if video { 0 } else { DEFAULT_FLAGS_PRESENT };
            let tfhd = open_full(out, b"tfhd", 0, flags);
            out.put_u32(run.id);
            if !video {
                out.put_u32(SYNC_FLAGS);
            }
            close(out, tfhd);
            let tfdt = open_full(out, b"tfdt", 1, 0);
            out.put_u64(u64::try_from(run.samples[0].time).unwrap_or(0));
            close(out, tfdt);
            let mut flags = DATA_OFFSET | SAMPLE_DURATION | SAMPLE_SIZE;
            if video {
                flags |= SAMPLE_FLAGS | SAMPLE_CTS;
            }
            let trun = open_full(out, b"trun", 1, flags);
            out.put_u32(u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
            offsets.push(out.len());
            out.put_u32(0); // data_offset, patched below
            for sample in &run.samples {
                out.put_u32(sample.duration);
                out.put_u32(sample.size);
                if video {
                    out.put_u32(if sample.key {
                        SYNC_FLAGS
                    } else {
                        NON_SYNC_FLAGS
                    });
                    out.put_i32(sample.cts);
                }
            }
            close(out, trun);
            close(out, traf);
        }
        close(out, moof);
        let moof_size = out.len() - moof;
        let data: u64 = self
            .tracks
            .iter()
            .flat_map(|r| &r.samples)
            .map(|s| u64::from(s.size))
            .sum();
        let mut offset = moof_size as u64;
        if data + 8 > u64::from(u32::MAX) {
            out.put_u32(1);
            out.put_slice(b"mdat");
            out.put_u64(data + 16);
            offset += 16;
        } else {
            out.put_u32(u32::try_from(data + 8).unwrap_or(u32::MAX));
            out.put_slice(b"mdat");
            offset += 8;
        }
        out.reserve(usize::try_from(data).unwrap_or(0));
        let mut slots = offsets.into_iter();
        for run in &mut self.tracks {
            if run.samples.is_empty() {
                continue;
            }
            if let Some(slot) = slots.next() {
                patch_u32(out, slot, u32::try_from(offset).unwrap_or(u32::MAX));
            }
            for sample in run.samples.drain(..) {
                offset += u64::from(sample.size);
                if matches!(run.codec, Codec::H264 | Codec::H265) {
                    for unit in nal::annex_b_nals(&sample.data) {
                        if kept(run.codec, unit, &run.params) {
                            out.put_u32(u32::try_from(unit.len()).unwrap_or(u32::MAX));
                            out.put_slice(unit);
                        }
                    }
                } else if run.codec == Codec::Av1 {
                    for obu in av1::obus(&sample.data).filter(|o| kept_obu(o.kind)) {
                        out.put_slice(obu.data);
                    }
                } else {
                    out.put_slice(&sample.data);
                }
            }
        }
    }
}

impl Run {
    /// Appends a sample; the previous one's duration is now known.
    fn add(&mut self, data: Bytes, time: i64, cts: i32, size: u32, key: bool) {
        if let Some(previous) = self.samples.last_mut() {
            let step = time - previous.time;
            if let Ok(step) = u32::try_from(step)
                && step > 0
            {
                previous.duration = step;
                self.last_duration = Some(step);
            } else {
                previous.duration = self.last_duration.unwrap_or(self.default_duration);
            }
        }
        self.samples.push(Sample {
            data,
            time,
            cts,
            size,
            duration: 0,
            key,
        });
    }
}

/// Why a track or a sample cannot be written as fMP4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fmp4Error {
    /// A video keyframe without the parameter sets a sample entry needs (an AV1 keyframe
    /// without its sequence header; for VP9 a frame that is no keyframe).
    #[error("{codec} keyframe without its parameter sets")]
    NoParameterSets {
        /// The codec.
        codec: Codec,
    },
    /// An AAC frame without its AudioSpecificConfig.
    #[error("{codec} frame without its decoder configuration")]
    NoConfig {
        /// The codec.
        codec: Codec,
    },
    /// An AC-3 / E-AC-3 frame that does not start with a syncframe header.
    #[error("{codec} frame does not start with a syncframe header")]
    NoSyncFrame {
        /// The codec.
        codec: Codec,
    },
    /// The codec configuration does not parse.
    #[error("{codec} configuration: {source}")]
    Codec {
        /// The codec.
        codec: Codec,
        /// What the parser said.
        source: CodecError,
    },
    /// fMP4 carries no such codec here.
    #[error("fMP4 cannot carry {codec}")]
    Unsupported {
        /// The codec.
        codec: Codec,
    },
    /// A frame for a track the fragmenter does not have (or of another codec).
    #[error("no {codec} track at that index")]
    NoTrack {
        /// The codec.
        codec: Codec,
    },
    /// A video keyframe whose parameter sets are not the init segment's: a new init is due.
    #[error("{codec} parameter sets changed")]
    ConfigChanged {
        /// The codec.
        codec: Codec,
    },
    /// An access unit or composition offset too large for a sample.
    #[error("{codec} access unit too large for an fMP4 sample")]
    TooLarge {
        /// The codec.
        codec: Codec,
    },
}

/// Writes one `trak`.
fn write_trak(track: &Fmp4Track, out: &mut BytesMut) {
    let video = track.kind() == MediaKind::Video;
    let trak = open(out, b"trak");
    let tkhd = open_full(out, b"tkhd", 0, 0x3); // enabled, in movie
    out.put_u32(0); // creation_time
    out.put_u32(0); // modification_time
    out.put_u32(track.id);
    out.put_u32(0); // reserved
    out.put_u32(0); // duration
    out.put_bytes(0, 8);
    out.put_u16(0); // layer
    out.put_u16(0); // alternate_group
    out.put_u16(if video { 0 } else { 0x0100 }); // volume
    out.put_u16(0);
    MATRIX.iter().for_each(|m| out.put_u32(*m));
    let (width, height) = match &track.entry {
        SampleEntry::Avc { width, height, .. }
        | SampleEntry::Hevc { width, height, .. }
        | SampleEntry::Av1 { width, height, .. }
        | SampleEntry::Vp9 { width, height, .. } => (*width, *height),
        _ => (0, 0),
    };
    out.put_u32(u32::from(width) << 16);
    out.put_u32(u32::from(height) << 16);
    close(out, tkhd);

    let mdia = open(out, b"mdia");
    let mdhd = open_full(out, b"mdhd", 0, 0);
    out.put_u32(0);
    out.put_u32(0);
    out.put_u32(track.timescale);
    out.put_u32(0); // duration
    out.put_u16(UND); // language
    out.put_u16(0);
    close(out, mdhd);
    let hdlr = open_full(out, b"hdlr", 0, 0);
    out.put_u32(0); // pre_defined
    out.put_slice(if video { b"vide" } else { b"soun" });
    out.put_bytes(0, 12);
    out.put_slice(if video {
        b"VideoHandler\0"
    } else {
        b"SoundHandler\0"
    });
    close(out, hdlr);

    let minf = open(out, b"minf");
    if video {
        let vmhd = open_full(out, b"vmhd", 0, 1);
        out.put_bytes(0, 8); // graphicsmode, opcolor
        close(out, vmhd);
    } else {
        let smhd = open_full(out, b"smhd", 0, 0);
        out.put_u32(0); // balance, reserved
        close(out, smhd);
    }
    let dinf = open(out, b"dinf");
    let dref = open_full(out, b"dref", 0, 0);
    out.put_u32(1);
    let url = open_full(out, b"url ", 0, 1); // media in this file
    close(out, url);
    close(out, dref);
    close(out, dinf);

    let stbl = open(out, b"stbl");
    let stsd = open_full(out, b"stsd", 0, 0);
    out.put_u32(1);
    write_sample_entry(&track.entry, out);
    close(out, stsd);
    for kind in [b"stts", b"stsc", b"stco"] {
        let empty = open_full(out, kind, 0, 0);
        out.put_u32(0);
        close(out, empty);
    }
    let stsz = open_full(out, b"stsz", 0, 0);
    out.put_u64(0); // sample_size, sample_count
    close(out, stsz);
    close(out, stbl);
    close(out, minf);
    close(out, mdia);
    close(out, trak);
}

/// Whether an AV1 OBU goes into the sample: not a temporal delimiter, not padding.
fn kept_obu(kind: u8) -> bool {
    kind != av1::OBU_TEMPORAL_DELIMITER && kind != av1::OBU_PADDING
}

/// The first NAL unit of type `kind` (H.264 `nal_unit_type`, H.265 `nal_unit_type`) in a
/// video frame.
fn first_nal(frame: &Frame, kind: u8) -> Option<&[u8]> {
    nal::annex_b_nals(&frame.payload).find(|n| nal_type(frame.codec, n) == Some(kind))
}

fn nal_type(codec: Codec, unit: &[u8]) -> Option<u8> {
    let head = *unit.first()?;
    Some(match codec {
        Codec::H265 => (head >> 1) & 0x3f,
        _ => head & 0x1f,
    })
}

/// A parameter set NAL unit (SPS, PPS; VPS for H.265).
fn is_param(codec: Codec, unit: &[u8]) -> bool {
    match (codec, nal_type(codec, unit)) {
        (Codec::H264, Some(t)) => t == 7 || t == 8,
        (Codec::H265, Some(t)) => (32..=34).contains(&t),
        _ => false,
    }
}

/// Whether a NAL unit goes into the sample: not an access unit delimiter, not a parameter
/// set the sample entry already has.
fn kept(codec: Codec, unit: &[u8], params: &[Bytes]) -> bool {
    let aud = match codec {
        Codec::H265 => 35,
        _ => 9,
    };
    if unit.is_empty() || nal_type(codec, unit) == Some(aud) {
        return false;
    }
    !(is_param(codec, unit) && params.iter().any(|p| p[..] == *unit))
}

/// A 90 kHz time in a track's timescale, rounded down.
fn track_time(t: Ts90, timescale: u32) -> i64 {
    let scaled = i128::from(t.0) * i128::from(timescale);
    i64::try_from(scaled.div_euclid(i128::from(Ts90::HZ))).unwrap_or(i64::MAX)
}

/// A picture dimension as the 16-bit field of a visual sample entry (saturating).
fn dimension(pixels: u32) -> u16 {
    u16::try_from(pixels).unwrap_or(u16::MAX)
}

/// Video media time: the hub's clock.
const VIDEO_TIMESCALE: u32 = 90_000;
/// Opus always decodes at 48 kHz (RFC 7845 §4).
const OPUS_RATE: u32 = 48_000;
/// `und`, packed ISO 639-2/T.
const UND: u16 = 0x55c4;
/// `tfhd`: offsets count from the `moof`'s first byte.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `tfhd`: default-sample-flags present.
const DEFAULT_FLAGS_PRESENT: u32 = 0x20;
/// `trun` flags.
const DATA_OFFSET: u32 = 0x1;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_SIZE: u32 = 0x200;
const SAMPLE_FLAGS: u32 = 0x400;
const SAMPLE_CTS: u32 = 0x800;
/// Sample flags: depends on no other sample (a sync sample).
const SYNC_FLAGS: u32 = 0x0200_0000;
/// Sample flags: depends on others, not a sync sample.
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

#[cfg(test)]
mod tests;
