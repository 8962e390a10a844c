//! The one interface pointing up the graph: listeners ask the engine whether a publish or a
//! play may happen and get hub handles back (ARCHITECTURE.md §3 "Trait seams").

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tributary_hub::{BufferId, Hub, Port};
use tributary_media::StreamCode;

/// Decides who may publish and play, and where: implemented by the engine.
///
/// Listeners call it synchronously from a connection's task, once per request, after the peer
/// has stated its intent; the answer should come quickly (a map lookup and a key comparison),
/// never from I/O. Policy lives here, not in the listener: name routing (SPEC §Publisher "Name
/// routing"), publish authentication (SPEC §Security), whether the stream has the protocol
/// enabled, connection caps, one publisher per slot. The one exception is a publish that needs
/// the engine's asynchronous work first (auto-publish starting a runtime stream): the router
/// says so in [`prepare_publish`](Router::prepare_publish), and the listener awaits that
/// without holding a thread.
pub trait Router: Send + Sync + 'static {
    /// Asked before [`publish`](Self::publish), once per publish request: `Some` when the
    /// router must do asynchronous work before it can answer (SPEC §Templates: starting the
    /// runtime stream a template's prefix covers). The listener awaits it in the connection's
    /// task (other connections go on); a refusal answers the request as `publish` would, and
    /// then `publish` is asked as usual. `None` (the default): ask `publish` at once.
    fn prepare_publish(&self, request: &PublishRequest) -> Option<Preparation> {
        let _ = request;
        None
    }

    /// A publisher asks to publish at `request.path`.
    ///
    /// Returns the intake port the publisher's frames go to, or why not: an unknown code or
    /// one without a push input ([`Refusal::NotFound`]), a wrong or missing key
    /// ([`Refusal::Denied`]), a slot that already has a live publisher ([`Refusal::Busy`]).
    fn publish(&self, request: PublishRequest) -> Result<PublishGrant, Refusal>;

    /// A player asks to play `request.path`: returns the buffer to subscribe to (the
    /// stream's playback feed), or why not.
    fn play(&self, request: PlayRequest) -> Result<PlayGrant, Refusal>;
}

/// The work [`Router::prepare_publish`] hands the listener to await.
pub type Preparation = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'static>>;

/// The protocol a request came in on (for logs, sessions and per-protocol switches such as
/// `protocols.rtmp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// RTMP (`rtmp://host:1935/app/name`).
    Rtmp,
    /// RTSP play (`rtsp://host:8554/live/name`).
    Rtsp,
    /// SRT (`srt://host:9999?streamid=…`).
    Srt,
}

/// A publisher's request. Its `Debug` masks the key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// `app/name` as the publisher sent them, every query split off (`live/cam`,
    /// `sports/ch1`). Name routing to a stream code is the router's job.
    pub path: String,
    /// The `key` query parameter of the stream name (`cam?key=…`), if any. A secret: never log
    /// it.
    pub key: Option<String>,
    /// The `slot` query parameter (`cam?key=…&slot=1`), if any, as sent: which of the stream's
    /// push inputs the publisher feeds, by priority. Parsing it is the router's job.
    pub slot: Option<String>,
    /// The peer's address, for logs and loopback rules (the TCP peer, never a header).
    pub peer: SocketAddr,
    /// The protocol.
    pub protocol: Protocol,
}

/// What a granted publish gets.
pub struct PublishGrant {
    /// The stream the publisher feeds, for logs.
    pub code: StreamCode,
    /// The intake port of the stream's push input: every frame is written here.
    pub port: Port,
    /// Held for the publisher's life; told why it left, then dropped: the engine marks its
    /// slot free (and ends its session record).
    pub guard: Box<dyn PublishGuard>,
}

/// The engine's side of a granted publish, held by the connection for the publisher's life.
pub trait PublishGuard: Send + Sync {
    /// The publisher left, for `end`; called once, as its connection ends. (A guard dropped
    /// without this call, as when a connection task panics, must still free the slot.)
    fn ended(self: Box<Self>, end: PublishEnd);
}

/// Why a publisher left. Its `Display` completes "publisher disconnected: …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishEnd {
    /// The peer closed its connection.
    #[error("EOF")]
    Eof,
    /// The publisher unpublished (`FCUnpublish`, `deleteStream`) and closed.
    #[error("unpublished")]
    Unpublished,
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(io::ErrorKind),
    /// The publisher sent nothing for this long.
    #[error("sent nothing for {0:?}")]
    Idle(Duration),
    /// The peer broke the protocol (malformed chunks, absurd sizes, its deadline).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The publisher stopped reading what we send it (acknowledgements).
    #[error("stopped reading")]
    NotReading,
    /// The listener stopped.
    #[error("the listener stopped")]
    ListenerStopped,
    /// The stream stopped taking its frames (deleted or stopped).
    #[error("the stream stopped taking its frames")]
    StreamGone,
}

/// A player's request. Its `Debug` masks the query.
#[derive(Clone)]
pub struct PlayRequest {
    /// `app/name` as the player sent them, every query split off (`live/cam`).
    pub path: String,
    /// The query of the stream name without its `?` (`exp=…&sig=…` for signed play URLs), if
    /// any. May hold secrets: never log it.
    pub query: Option<String>,
    /// The peer's address, for logs, caps and signed URLs bound to an IP.
    pub peer: SocketAddr,
    /// The protocol.
    pub protocol: Protocol,
    /// Fired by the engine to disconnect the player (its stream's output turned off, a
    /// kick); the player is told the stream ended. Keep a clone as long as the play may need
    /// ending.
    pub stop: CancellationToken,
}

/// What a granted play gets.
pub struct PlayGrant {
    /// The stream played, for logs.
    pub code: StreamCode,
    /// The hub holding the buffer.
    pub hub: Hub,
    /// The buffer to read: the stream's playback feed (SPEC §Publisher: the best rendition).
    pub buffer: BufferId,
    /// Held for the player's life and dropped when it leaves: the engine releases the play's
    /// cap slot and ends its session record in the guard's `Drop`.
    pub guard: Box<dyn Any + Send + Sync>,
    /// Where the connection counts the bytes it hands the player (SPEC §Sessions: bytes are
    /// counted for every protocol): the engine reads it for the play session.
    pub bytes: ByteMeter,
}

/// A running byte count shared between a play connection (which adds) and the engine (which
/// reads). One relaxed atomic add per write: no lock, no allocation on the media path.
/// Cheap to clone; clones share the count.
#[derive(Debug, Clone, Default)]
pub struct ByteMeter(Arc<AtomicU64>);

impl ByteMeter {
    /// Adds `n` bytes handed to the peer.
    pub fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a request was refused. The message is for logs: it names the stream or rule, never a
/// key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No such stream, or it cannot take this request (no push input, stopped, protocol
    /// disabled). RTMP: `NetStream.Publish.BadName` / `NetStream.Play.StreamNotFound`.
    #[error("not found: {0}")]
    NotFound(String),
    /// The key or signature is wrong or missing. RTMP: `NetStream.Publish.Denied` /
    /// `NetStream.Play.Failed`.
    #[error("denied: {0}")]
    Denied(String),
    /// The slot has a live publisher, or a connection cap is reached. RTMP:
    /// `NetStream.Publish.BadName` / `NetStream.Play.Failed`.
    #[error("busy: {0}")]
    Busy(String),
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rtmp => "rtmp",
            Self::Rtsp => "rtsp",
            Self::Srt => "srt",
        })
    }
}

impl fmt::Debug for PublishRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishRequest")
            .field("path", &self.path)
            .field("key", &self.key.as_ref().map(|_| MASK))
            .field("slot", &self.slot)
            .field("peer", &self.peer)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl fmt::Debug for PlayRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlayRequest")
            .field("path", &self.path)
            .field("query", &self.query.as_ref().map(|_| MASK))
            .field("peer", &self.peer)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PublishGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishGrant")
            .field("code", &self.code)
            .field("port", &self.port.key())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PlayGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlayGrant")
            .field("code", &self.code)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

/// What a secret looks like in logs (SPEC §Security "Secret redaction").
const MASK: &str = "****";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_keys_or_queries() {
        let peer: SocketAddr = "192.0.2.1:50000".parse().unwrap();
        let publish = PublishRequest {
            path: "live/cam".into(),
            key: Some("s3cret".into()),
            slot: None,
            peer,
            protocol: Protocol::Rtmp,
        };
        let play = PlayRequest {
            path: "live/cam".into(),
            query: Some("exp=1&sig=abcdef".into()),
            peer,
            protocol: Protocol::Rtmp,
            stop: CancellationToken::new(),
        };
        let text = format!("{publish:?} {play:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("abcdef"),
            "{text}"
        );
        assert!(text.contains("live/cam") && text.contains("****"), "{text}");
    }
}
