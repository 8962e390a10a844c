//! The crate's one error type.

use tributary_media::{Codec, TrackId};

/// What went wrong while demuxing or muxing.
///
/// Demuxer errors carry the PID and the byte offset (counted from the first byte ever pushed)
/// of the TS packet where the problem was seen, so a log line leads straight to the capture.
/// None of them is fatal: the demuxer skips the damaged unit and continues with the next push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that are not TS packets were skipped to find the next sync byte (0x47).
    #[error("lost sync at byte {offset}: skipped {skipped} bytes to the next 0x47")]
    Sync {
        /// Offset of the first skipped byte.
        offset: u64,
        /// How many bytes were skipped.
        skipped: u64,
    },
    /// A packet had its transport_error_indicator set and was dropped.
    #[error("PID {pid:#06x}: transport error indicator set in packet at byte {offset}")]
    TransportError {
        /// The packet's PID.
        pid: u16,
        /// Offset of the packet.
        offset: u64,
    },
    /// A packet's adaptation field claims more bytes than the packet has.
    #[error("PID {pid:#06x}: adaptation field of {len} bytes overruns packet at byte {offset}")]
    AdaptationField {
        /// The packet's PID.
        pid: u16,
        /// Offset of the packet.
        offset: u64,
        /// The claimed adaptation_field_length.
        len: u8,
    },
    /// A PSI section (PAT, PMT, SCTE-35) failed its CRC32; the table was ignored.
    #[error("PID {pid:#06x}: {table} CRC mismatch in section starting at byte {offset}")]
    Crc {
        /// The PID carrying the section.
        pid: u16,
        /// Which table (`PAT`, `PMT`, `SCTE-35`).
        table: &'static str,
        /// Offset of the packet where the section started.
        offset: u64,
    },
    /// A PSI section was structurally invalid; it was ignored.
    #[error("PID {pid:#06x}: malformed {table} section at byte {offset}: {reason}")]
    Section {
        /// The PID carrying the section.
        pid: u16,
        /// Which table (`PAT`, `PMT`, `SCTE-35`).
        table: &'static str,
        /// Offset of the packet where the section started.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The PAT does not list the program [`crate::DemuxerConfig::program`] asks for.
    #[error("program {program} is not in the PAT (at byte {offset})")]
    ProgramNotFound {
        /// The requested program_number.
        program: u16,
        /// Offset of the packet where the PAT started.
        offset: u64,
    },
    /// A PES packet was malformed; the access unit was dropped.
    #[error("PID {pid:#06x}: malformed PES starting at byte {offset}: {reason}")]
    Pes {
        /// The elementary stream's PID.
        pid: u16,
        /// Offset of the packet where the PES started.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A PES grew beyond the demuxer's limit without ending; it was dropped.
    #[error("PID {pid:#06x}: PES starting at byte {offset} exceeds {limit} bytes")]
    PesTooLarge {
        /// The elementary stream's PID.
        pid: u16,
        /// Offset of the packet where the PES started.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// The unfinished PES of all streams together would exceed the demuxer's budget; the one
    /// growing was dropped.
    #[error(
        "PID {pid:#06x}: PES starting at byte {offset} dropped: unfinished PES on all PIDs would exceed {budget} bytes"
    )]
    PesBudget {
        /// The elementary stream's PID.
        pid: u16,
        /// Offset of the packet where the PES started.
        offset: u64,
        /// The budget in bytes.
        budget: usize,
    },
    /// An elementary stream's framing (ADTS, Opus control header) was malformed.
    #[error("PID {pid:#06x}: malformed {codec} framing in PES starting at byte {offset}: {reason}")]
    Framing {
        /// The elementary stream's PID.
        pid: u16,
        /// The track's codec.
        codec: Codec,
        /// Offset of the packet where the PES started.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The muxer was given a frame for a track that is not in its track table.
    #[error("track {}: not in the muxer's track table", track.0)]
    UnknownTrack {
        /// The frame's track.
        track: TrackId,
    },
    /// An AAC frame reached the muxer with no AudioSpecificConfig, neither on the frame nor
    /// in the track table, so no ADTS header can be written.
    #[error("track {}: AAC frame without an AudioSpecificConfig", track.0)]
    MissingConfig {
        /// The frame's track.
        track: TrackId,
    },
    /// The muxer cannot carry this codec.
    #[error("track {}: the muxer does not support codec {codec}", track.0)]
    UnsupportedCodec {
        /// The track.
        track: TrackId,
        /// Its codec.
        codec: Codec,
    },
    /// A frame's codec differs from its track's codec in the muxer's table.
    #[error("track {}: frame codec {got} differs from track codec {want}", track.0)]
    CodecMismatch {
        /// The track.
        track: TrackId,
        /// The codec in the track table.
        want: Codec,
        /// The codec of the frame.
        got: Codec,
    },
    /// A track in the muxer's table is invalid.
    #[error("track {}: {reason}", track.0)]
    InvalidTrack {
        /// The track.
        track: TrackId,
        /// What is wrong.
        reason: &'static str,
    },
    /// The muxer's configuration is invalid as a whole.
    #[error("invalid muxer configuration: {reason}")]
    InvalidMuxerConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// A frame is too large for its wrapper (ADTS frames hold at most 8191 bytes).
    #[error("track {}: frame of {len} bytes is too large for its {codec} framing", track.0)]
    FrameTooLarge {
        /// The track.
        track: TrackId,
        /// Its codec.
        codec: Codec,
        /// The payload length.
        len: usize,
    },
}
