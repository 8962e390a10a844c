//! HTTP-TS play (SPEC §Publisher "HTTP-TS `GET /{code}/mpegts`"): the playback feed of a
//! running stream as one long MPEG-TS body, for every stream (RTMP-fed and transcoded ones
//! too).
//!
//! A play takes a seat under the play caps shared with every other play protocol (256 per
//! stream, 4096 in total; [`crate::caps`]) before anything else exists, then subscribes to the
//! stream's main buffer from its last keyframe (class `mpegts`) and runs the frames through
//! the one live TS writer ([`LiveWriter`]), so the body starts at a keyframe with PAT/PMT.
//!
//! The body is pulled, never pushed: the HTTP server asks for the next chunk only when the
//! client's socket took the last one. A client slower than the stream leaves its frames in its
//! own hub backlog, where the hub drops them for it alone and skips it to the next keyframe
//! (the writer resyncs there and counts); the stream's writer and every other reader go on.
//! When the stream stops, the hub closes the subscription and the body ends.
//!
//! Each play is a connection session (SPEC §Sessions, proto `mpegts`): its bytes are counted
//! into the session's meter as the body is pulled, and a kick cancels its stop token, which
//! ends the body at the next pull or wait.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom, Subscriber};
use tributary_mpegts::LiveWriter;

use crate::caps::{CapReached, PlayCaps, PlaySeat};
use crate::sessions::{ConnectionSession, Proto, Sessions};

/// One HTTP-TS player: its seat, its reader of the stream's buffer and its TS writer.
pub struct TsPlay {
    /// The stream played, for logs.
    code: StreamCode,
    /// The client, for logs.
    peer: Option<SocketAddr>,
    /// Its reader of the stream's playback feed.
    subscriber: Subscriber,
    /// Frames → whole TS packets, from a keyframe with PAT/PMT.
    writer: LiveWriter,
    /// Whether the tracks TS cannot carry were logged (once per connection, SPEC §Publisher).
    omissions_logged: bool,
    /// Ends the body when cancelled (a kick, the session's lifetime).
    stop: CancellationToken,
    /// The bytes handed to the client, for its session.
    meter: tributary_serve::ByteMeter,
    /// Its session, closed as `client_gone` when the play is dropped.
    _session: ConnectionSession,
    /// Its place under the play caps, given back when the play is dropped (the client left).
    _seat: PlaySeat,
}

/// Why an HTTP-TS play was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsPlayError {
    /// No running stream has this code (404).
    #[error("stream {0} is not running")]
    NotRunning(StreamCode),
    /// A play cap is reached (503).
    #[error("{0}")]
    Busy(String),
}

impl TsPlay {
    /// Admits a play of `code`: a seat under the caps, then a subscription from the last
    /// keyframe of its playback feed.
    pub(crate) fn open(
        hub: &Hub,
        caps: &PlayCaps,
        sessions: &Arc<Sessions>,
        code: StreamCode,
        peer: Option<SocketAddr>,
    ) -> Result<Self, TsPlayError> {
        let seat = caps
            .admit(&code, PROTO)
            .map_err(|cap: CapReached| TsPlayError::Busy(format!("HTTP-TS play refused: {cap}")))?;
        let buffer = BufferId::Stream(code.clone());
        let subscriber = hub
            .subscribe(&buffer, SubscribeFrom::LastKeyframe, PLAY_CLASS)
            .map_err(|_| TsPlayError::NotRunning(code.clone()))?;
        tracing::info!(stream = %code, peer = ?peer, "HTTP-TS player joined");
        let stop = CancellationToken::new();
        let meter = tributary_serve::ByteMeter::default();
        let session = match peer {
            Some(peer) => sessions.connect(&code, Proto::Mpegts, peer, None, stop.clone(), &meter),
            None => ConnectionSession::untracked(),
        };
        Ok(Self {
            code,
            peer,
            subscriber,
            writer: LiveWriter::new(),
            omissions_logged: false,
            stop,
            meter,
            _session: session,
            _seat: seat,
        })
    }

    /// The stream played.
    pub fn code(&self) -> &StreamCode {
        &self.code
    }

    /// The next run of whole TS packets, waiting for the stream if none is ready; `None` once
    /// the stream stopped or the session was kicked.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.stop.is_cancelled() {
                return None;
            }
            if let Some(run) = self.writer.pull() {
                self.meter.add(run.len());
                if !self.omissions_logged {
                    self.omissions_logged = true;
                    for (track, codec) in self.writer.omitted() {
                        tracing::warn!(stream = %self.code, peer = ?self.peer,
                            "HTTP-TS: track {} ({codec}) omitted: MPEG-TS cannot carry {codec}",
                            track.0);
                    }
                }
                return Some(run);
            }
            let delivery = tokio::select! {
                () = self.stop.cancelled() => return None,
                delivery = self.subscriber.recv() => delivery?,
            };
            match delivery {
                Delivery::Frame(frame) => self.writer.push(frame),
                Delivery::Lagged { dropped } => self.writer.lagged(dropped),
            }
        }
    }

    /// Frames this player did not get (lost in its hub backlog, skipped to a keyframe or
    /// refused by the muxer).
    pub fn skipped(&self) -> u64 {
        self.writer.skipped()
    }
}

impl Drop for TsPlay {
    fn drop(&mut self) {
        tracing::info!(
            stream = %self.code,
            peer = ?self.peer,
            skipped = self.writer.skipped(),
            "HTTP-TS player left"
        );
    }
}

/// The hub subscriber class of HTTP-TS players (`tributary_buffer_drops_total{subscriber=…}`).
const PLAY_CLASS: &str = "mpegts";
/// The play protocol's name in sessions and metrics (SPEC §Sessions: proto `mpegts`).
pub(crate) const PROTO: &str = "mpegts";
