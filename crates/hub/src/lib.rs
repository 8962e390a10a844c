//! The buffer hub: the only data path of the server (ARCHITECTURE.md §3, invariant 1).
//!
//! Media moves between ingest, the transcoder, packagers, play, push and DVR only as
//! [`Frame`](tributary_media::Frame)s through hub buffers. A buffer has one [`Writer`] and any
//! number of [`Subscriber`]s; an [`Intake`] sits in front of a stream's input buffer and lets
//! exactly one of its input [`Port`]s write.
//!
//! # Model
//!
//! - **Buffers** are keyed by [`BufferId`] (`<code>`, `$raw$<code>`, `$r$<code>$track_N`) in a
//!   [`Hub`]. [`Hub::create`] returns the buffer's writer; [`Hub::subscribe`] a reader.
//! - **Writing never blocks or awaits.** [`Writer::write`] is synchronous: it stamps the
//!   frame's session, appends it to the buffer's ring and wakes the readers that want it
//!   ([`Wake`]: every frame by default; a reader that acts only on video frames or keyframes
//!   sleeps through the others and reads them with the next). It does not know how far behind
//!   any subscriber is.
//! - **A slow subscriber loses only its own frames.** A subscriber further behind than the
//!   buffer's capacity (1024 frames) or 64 MiB finds, when it next reads, that its frames are
//!   gone; it skips forward to the next keyframe still held (or still to come), counts the
//!   loss, and receives [`Delivery::Lagged`] once, just before that keyframe.
//! - **GOP cache.** A subscriber made with [`SubscribeFrom::LastKeyframe`] starts at the most
//!   recent video keyframe of the current session (audio from the same point), so playback
//!   starts at once; in an audio-only session, a short window of recent audio. With no such
//!   frame held it waits for the next one, so its first frame is always a keyframe of the
//!   current session. [`SubscribeFrom::Now`] delivers everything written from now on.
//! - **Sessions.** Every frame carries the writer's session id; ids come from one counter per
//!   hub (one hub per process), so they increase across every buffer. [`Writer::start_session`]
//!   begins one with a [`SessionReason`]; the GOP cache restarts with it.
//! - **Timeline.** A buffer created with [`BufferConfig::normalise`] runs the writer's frames
//!   through `media::timeline` (SPEC §Timeline): output timestamps stay monotonic across
//!   reconnects, switches and wraps, and a broken source timeline opens a `timeline_jump`
//!   session by itself. The engine turns it on for every buffer ingest or FFmpeg feeds.
//! - **Delete** ([`Hub::delete`], or dropping the writer) ends the buffer: subscribers drain
//!   what is left and then [`Subscriber::recv`] returns `None`; writes and new subscribes fail.
//! - **Intake.** Each configured input writes to its [`Port`], which keeps health counters for
//!   the stream manager. [`Intake::select`] moves the writer token: the old port stops at
//!   once; the new one enters at its first keyframe (a hot standby replays its cached GOP at
//!   once), beginning a new session.
//!
//! # The ring: one shared ring with a cursor per subscriber
//!
//! ARCHITECTURE.md §15 left open whether each subscriber gets a bounded queue or all share one
//! ring with a cursor each. The hub uses **one shared ring per buffer**:
//!
//! - **Write cost is independent of the subscriber count.** A write is one short write lock,
//!   one push into a `VecDeque` pre-grown to the capacity (no allocation in steady state;
//!   moving the `Frame` in, evicting the oldest), and, outside that lock, one pass over the
//!   subscribers waking those whose [`Wake`] wants the frame (a few relaxed loads each, and a
//!   `Notify::notify_one` of their own). With a queue per subscriber the writer would lock,
//!   clone into and wake N queues per frame, so a stream with 500 viewers would make ingest do
//!   500 times the work inside its write.
//! - **Lag is found by the reader, not by the writer.** A cursor is a sequence number; a
//!   subscriber lost frames exactly when its cursor is older than the ring's oldest frame. The
//!   writer never waits for subscribers, so a stuck one cannot slow it or anyone else.
//! - **The GOP cache is free.** It is the index of the latest keyframe in the ring, not a
//!   second copy of the frames.
//! - **Memory is bounded per buffer, not per subscriber:** at most `capacity` frames and
//!   64 MiB of payload, whatever the number of readers. What nobody needs is not kept that
//!   long: at each video keyframe the writer reads the subscribers' positions (one relaxed
//!   load each, mirrored by every read) and lets go of the frames before both the slowest
//!   position and the outgoing GOP. A buffer whose readers keep up holds about two GOPs
//!   instead of `capacity` frames (13 s at the default); only a lagging reader makes it hold
//!   its backlog.
//! - Readers take the read lock for one `Frame` clone (a `Bytes` reference-count increment
//!   and a small copy), or for a forward scan while resuming after a loss (at most the
//!   capacity, each frame scanned once per subscriber). The writer may wait for such a
//!   critical section, never for a subscriber to read.
//!
//! A `bench/` fan-out benchmark (1 writer, 1 to 1000 subscribers) is the place to revisit the
//! choice; the ring lives in one private module, so the alternative can be swapped in.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom};
//! use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let id = BufferId::Stream("match-day".parse().unwrap());
//! let mut writer = hub.create(id.clone(), 1024).unwrap();
//!
//! let frame = |dts: i64, keyframe: bool| Frame {
//!     track: TrackId(0),
//!     codec: Codec::H264,
//!     pts: Ts90(dts),
//!     dts: Ts90(dts),
//!     keyframe,
//!     session: SessionId(0),
//!     arrival: Instant::now(),
//!     payload: Bytes::from_static(b"\0\0\0\x01access unit"),
//!     config: None,
//! };
//! writer.write(frame(0, true)).unwrap();
//! writer.write(frame(3000, false)).unwrap();
//!
//! // A late subscriber starts at the cached keyframe.
//! let mut player = hub.subscribe(&id, SubscribeFrom::LastKeyframe, "hls").unwrap();
//! let Some(Delivery::Frame(first)) = player.recv().await else { panic!() };
//! assert!(first.keyframe);
//! assert_eq!(first.session, writer.session().unwrap());
//!
//! // Deleting the buffer ends every reader once it has drained.
//! hub.delete(&id);
//! assert!(matches!(player.recv().await, Some(Delivery::Frame(_))));
//! assert!(player.recv().await.is_none());
//! assert!(writer.write(frame(6000, false)).is_err());
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod batch;
mod error;
mod hub;
mod id;
mod intake;
mod ring;
mod subscriber;
mod writer;

pub use batch::{Batch, Batched};
pub use error::HubError;
pub use hub::{
    BufferConfig, BufferStats, ClassDrops, DEFAULT_CAPACITY, DEFAULT_MAX_BYTES, Hub, SubscribeFrom,
};
pub use id::BufferId;
pub use intake::{AUDIO_ONLY_AFTER, Intake, Port, PortError, PortHealth, PortKey, RECENT_ERRORS};
pub use subscriber::{Delivery, Subscriber, TryRecvError, Wake};
pub use tributary_media::timeline::SessionReason;
pub use writer::Writer;
