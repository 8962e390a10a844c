//! The DVR service (SPEC §DVR): the coordinator's [`DvrService`] over
//! [`tributary_dvr::Recordings`], recording events onto the bus, and the read side the API's
//! recording routes use (`GET /streams/{code}/recordings`, `/recordings/{rid}`, its `info`,
//! `playlist.m3u8` and segment files), timeshift (`/recordings/{rid}/timeshift.m3u8` and
//! `from`/`ago`/`dur`/`delay` on a live `/{code}/index.m3u8`, both answered from the
//! recording's log with [`tributary_dvr::timeshift`]) and clips (`/recordings/{rid}/clip.mp4`,
//! remuxed by [`tributary_dvr::clip`] as the client reads). The `[dvr]` section gives the
//! defaults a stream's zero values take and the limits of timeshift windows and clips.
//!
//! The recording id is the stream code. A stopped recording is found on disk where the
//! stream's stored `dvr.storage_path` says (the DVR root `<data_dir>/dvr` when empty); a
//! deleted stream's recording (its files are kept) is looked for in the DVR root. Reads of a
//! stopped recording's log run on the blocking pool.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use tributary_domain::config::DvrSection;
use tributary_domain::event::EventType;
use tributary_domain::roots::LiveRoots;
use tributary_domain::{Stream, StreamCode};
use tributary_dvr::UnixMillis;
use tributary_dvr::clip::{self, ClipError};
use tributary_dvr::playlist::Uris;
use tributary_dvr::timeshift::{self, LiveShift, NoData};
use tributary_dvr::{RecordingEvent, RecordingView, Recordings, Summary};
use tributary_hub::Hub;

use crate::events::EventBus;
use crate::services::{DvrService, ServiceError};
use crate::{CoordError, EngineHandle};

/// Every recording, and where its events go.
pub(crate) struct Dvr {
    /// The registry of recordings.
    recordings: Recordings,
    /// `[dvr]`: the defaults a stream's zeros take, and the limits of timeshift and clips.
    section: DvrSection,
    /// The bus, once the engine has one (events before it are dropped: none happen, streams
    /// start after).
    events: Arc<OnceLock<EventBus>>,
}

impl Dvr {
    /// Recordings under `root` by default (`dvr.root`, `<data_dir>/dvr` unless set), with
    /// `section`'s defaults and limits; a `storage_path` is held to `roots`' storage roots as
    /// they are at each start or read.
    pub(crate) fn new(hub: Hub, root: PathBuf, section: DvrSection, roots: LiveRoots) -> Self {
        let events: Arc<OnceLock<EventBus>> = Arc::default();
        let bus = Arc::clone(&events);
        let observer = Arc::new(move |code: &StreamCode, event: &RecordingEvent| {
            let Some(bus) = bus.get() else { return };
            let id = code.as_str();
            let (kind, payload) = match event {
                RecordingEvent::Started { resumed: false } => {
                    (EventType::RecordingStarted, json!({"recording_id": id}))
                }
                RecordingEvent::Started { resumed: true } => (
                    EventType::RecordingStarted,
                    json!({"recording_id": id, "resumed": true}),
                ),
                RecordingEvent::Stopped => {
                    (EventType::RecordingStopped, json!({"recording_id": id}))
                }
                RecordingEvent::Failed { segment, error } => (
                    EventType::RecordingFailed,
                    json!({"recording_id": id, "segment": segment, "error": error}),
                ),
                RecordingEvent::SegmentWritten {
                    segment,
                    duration_sec,
                    size_bytes,
                    wall_time,
                    discontinuity,
                } => (
                    EventType::SegmentWritten,
                    json!({"recording_id": id, "segment": segment, "duration_sec": duration_sec,
                           "size_bytes": size_bytes, "wall_time": wall_time.to_string(),
                           "discontinuity": discontinuity}),
                ),
                _ => return,
            };
            bus.publish(kind, id, payload);
        });
        Self {
            recordings: Recordings::new(hub, root, observer).with_storage_roots(roots),
            section,
            events,
        }
    }

    /// Sends recording events to `events` from now on.
    pub(crate) fn attach(&self, events: EventBus) {
        let _ = self.events.set(events);
    }

    /// `runtime.dvr` of a stream being recorded.
    pub(crate) fn runtime(&self, code: &StreamCode) -> Option<Value> {
        let (_, stats) = self
            .recordings
            .stats()
            .into_iter()
            .find(|(c, _)| c == code)?;
        let (dir, count, size, last) = self.recordings.totals(code)?;
        let mut runtime = json!({
            "recording_id": code.as_str(),
            "status": stats.status(),
            "segment_dir": dir.display().to_string(),
            "segments_written": stats.segments_written.load(Ordering::Relaxed),
            "bytes_written": stats.bytes_written.load(Ordering::Relaxed),
            "dropped_segments": stats.dropped_segments.load(Ordering::Relaxed),
            "failed_writes": stats.failed_writes.load(Ordering::Relaxed),
            "segment_count": count,
            "total_size_bytes": size,
            "last_segment_at": last.map(|t| t.to_string()),
            "sync_ms_per_segment": stats.sync_ms_per_segment(),
        });
        if let Some((message, at)) = stats.last_error() {
            runtime["last_error"] = json!({"message": message, "at": at.to_string()});
        }
        Some(runtime)
    }

    /// `(code, segments written, bytes written, dropped segments)` per running recording, for
    /// the metrics.
    pub(crate) fn metrics(&self) -> Vec<(StreamCode, u64, u64, u64)> {
        self.recordings
            .stats()
            .into_iter()
            .map(|(code, s)| {
                (
                    code,
                    s.segments_written.load(Ordering::Relaxed),
                    s.bytes_written.load(Ordering::Relaxed),
                    s.dropped_segments.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}

impl DvrService for Dvr {
    fn start(&self, stream: &Stream) -> Result<(), ServiceError> {
        let dvr = self
            .section
            .resolve(&stream.dvr.clone().unwrap_or_default());
        self.recordings
            .start(&stream.code, &dvr)
            .map_err(ServiceError::Dvr)
    }

    fn stop(&self, code: &StreamCode) {
        self.recordings.stop(code);
    }

    fn apply(&self, stream: &Stream) {
        let dvr = self
            .section
            .resolve(&stream.dvr.clone().unwrap_or_default());
        self.recordings.apply(&stream.code, &dvr);
    }
}

/// A recording as `GET /streams/{code}/recordings` lists it (SPEC §Domain "Recording").
fn recording_json(view: &RecordingView) -> Value {
    let mut recording = json!({
        "id": view.code.as_str(),
        "stream_code": view.code.as_str(),
        "started_at": view.entries.first().map(|e| e.start.to_string()),
        "status": view.status,
        "segment_dir": view.dir.display().to_string(),
    });
    if let Some(stopped_at) = &view.stopped_at {
        recording["stopped_at"] = json!(stopped_at);
    }
    recording
}

/// A recording's `info` (SPEC §API).
fn info_json(view: &RecordingView) -> Value {
    let summary = Summary::of(view.code.as_str(), view.status, &view.entries);
    json!({
        "stream_code": view.code.as_str(),
        "status": view.status,
        "dvr_range": {
            "started_at": summary.started_at.map(|t| t.to_string()),
            "last_segment_at": summary.last_segment_at.map(|t| t.to_string()),
        },
        "gaps": summary.gaps,
        "segment_count": summary.segment_count,
        "total_size_bytes": summary.total_size_bytes,
        "total_duration_sec": summary.total_duration_sec,
    })
}

/// A recording route's answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecordingReply {
    /// JSON for the API envelope.
    Json(Value),
    /// The playlist text.
    Playlist(String),
    /// A segment, opened: sent from the file as the client reads it, never read whole.
    Segment {
        /// The open segment file.
        file: std::fs::File,
        /// Its size in bytes.
        size: u64,
    },
    /// No such recording, segment or data: 404 with this error code (`NOT_FOUND`,
    /// `NO_DATA`, `NO_SEGMENTS`) and message.
    NotFound(&'static str, String),
    /// A clip: its first piece (the init segment and first fragment, so a clip that cannot
    /// start is an error status, not a broken 200) and the rest as it is made.
    Clip {
        /// The first piece.
        first: bytes::Bytes,
        /// The rest; an `Err` item means the clip failed midway (the body is cut short).
        rest: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, ClipError>>,
    },
    /// The recording could not be read: 500 with this message.
    Failed(String),
    /// A bad query value: 400 with this error code and a message naming the parameter.
    BadRequest(&'static str, String),
    /// Signed play URLs are on and the request's signature does not hold: 403 `FORBIDDEN`.
    Forbidden(String),
}

/// What a `/recordings/{rid}/…` path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingPath {
    /// `/recordings/{rid}`.
    Recording(StreamCode),
    /// `/recordings/{rid}/info`.
    Info(StreamCode),
    /// `/recordings/{rid}/playlist.m3u8`.
    Playlist(StreamCode),
    /// `/recordings/{rid}/NNNNNN.ts`.
    Segment(StreamCode, String),
    /// `/recordings/{rid}/timeshift.m3u8` (its query goes to [`EngineHandle::timeshift`]).
    Timeshift(StreamCode),
    /// `/recordings/{rid}/clip.mp4` (`from`/`offset_sec` and `to`/`duration` in its query).
    Clip(StreamCode),
}

impl RecordingPath {
    /// Parses the part after `/recordings/`; `None` for anything that names no recording
    /// route (`..`, backslashes, NUL and other names fail here, as the code parse refuses them).
    pub fn parse(rest: &str) -> Option<Self> {
        let code = |s: &str| s.parse::<StreamCode>().ok();
        if let Some(rid) = rest.strip_suffix("/info") {
            return Some(Self::Info(code(rid)?));
        }
        if let Some(rid) = rest.strip_suffix("/playlist.m3u8") {
            return Some(Self::Playlist(code(rid)?));
        }
        if let Some(rid) = rest.strip_suffix("/timeshift.m3u8") {
            return Some(Self::Timeshift(code(rid)?));
        }
        if let Some(rid) = rest.strip_suffix("/clip.mp4") {
            return Some(Self::Clip(code(rid)?));
        }
        if let Some((rid, name)) = rest.rsplit_once('/')
            && tributary_dvr::log::parse_segment_name(name).is_some()
        {
            return Some(Self::Segment(code(rid)?, name.to_owned()));
        }
        Some(Self::Recording(code(rest)?))
    }

    /// Whether the path is a media route (no admin authentication, SPEC §API conventions).
    pub fn is_media(&self) -> bool {
        matches!(
            self,
            Self::Playlist(_) | Self::Segment(..) | Self::Timeshift(_) | Self::Clip(_)
        )
    }
}

impl EngineHandle {
    /// `GET /streams/{code}/recordings`: the stream's recording, if it has one (404 when the
    /// stream does not exist).
    pub async fn recordings(&self, code: &StreamCode) -> Result<Option<Vec<Value>>, CoordError> {
        let Some(record) = self.get_stream(code).await? else {
            return Ok(None);
        };
        let storage = storage_path(&record.stream);
        let view = self.recording_view(code.clone(), storage).await;
        Ok(Some(view.iter().map(recording_json).collect()))
    }

    /// A `/recordings/{rid}/…` request with `query` from `peer`. With signed play URLs on, the
    /// media routes (playlists and segments) need the stream's signature, which the playlist
    /// carries into its segment URIs.
    pub async fn recording(
        &self,
        path: RecordingPath,
        query: &str,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<RecordingReply, CoordError> {
        let code = match &path {
            RecordingPath::Recording(c)
            | RecordingPath::Info(c)
            | RecordingPath::Playlist(c)
            | RecordingPath::Timeshift(c)
            | RecordingPath::Clip(c)
            | RecordingPath::Segment(c, _) => c.clone(),
        };
        if matches!(path, RecordingPath::Timeshift(_)) {
            return self.timeshift(code, query, peer, false).await;
        }
        let signed = if path.is_media() {
            match self.play_suffix(&code, query, peer) {
                Ok(signed) => signed,
                Err(why) => return Ok(RecordingReply::Forbidden(why)),
            }
        } else {
            String::new()
        };
        let storage = self.recording_storage(&code).await?;
        if matches!(path, RecordingPath::Clip(_)) {
            return Ok(self.clip(code, query, storage).await);
        }
        if let RecordingPath::Segment(_, name) = path {
            let dvr = Arc::clone(&self.shared.media.dvr);
            let segment =
                tokio::task::spawn_blocking(move || dvr.recordings.segment(&code, &storage, &name))
                    .await
                    .ok()
                    .flatten();
            return Ok(segment.map_or_else(
                || RecordingReply::NotFound("NOT_FOUND", "no such recorded segment".to_owned()),
                |segment| RecordingReply::Segment {
                    file: segment.file,
                    size: segment.size,
                },
            ));
        }
        let Some(view) = self.recording_view(code.clone(), storage).await else {
            return Ok(RecordingReply::NotFound(
                "NOT_FOUND",
                format!("no recording of {code}"),
            ));
        };
        Ok(match path {
            RecordingPath::Info(_) if view.entries.is_empty() => {
                RecordingReply::NotFound("NO_DATA", format!("recording {code} has no data yet"))
            }
            RecordingPath::Info(_) => RecordingReply::Json(info_json(&view)),
            RecordingPath::Playlist(_) if view.entries.is_empty() => RecordingReply::NotFound(
                "NO_SEGMENTS",
                format!("recording {code} has no segments yet"),
            ),
            RecordingPath::Playlist(_) => RecordingReply::Playlist(view.playlist(Uris {
                prefix: "",
                query: &signed,
            })),
            _ => RecordingReply::Json(recording_json(&view)),
        })
    }

    /// A timeshift playlist of `code`'s recording for a request with `query` from `peer`:
    /// `/recordings/{code}/timeshift.m3u8` (`live` false) or a live `/{code}/index.m3u8` with
    /// timeshift parameters (`live` true; a query without any is [`RecordingReply::NotFound`]).
    /// With signed play URLs on, the signature must hold (the one a live playlist needs) and
    /// is carried into the segment URIs.
    pub async fn timeshift(
        &self,
        code: StreamCode,
        query: &str,
        peer: Option<std::net::SocketAddr>,
        live: bool,
    ) -> Result<RecordingReply, CoordError> {
        let signed = match self.play_suffix(&code, query, peer) {
            Ok(signed) => signed,
            Err(why) => return Ok(RecordingReply::Forbidden(why)),
        };
        let now = UnixMillis::from_system_time(std::time::SystemTime::now());
        let shift = if live {
            match timeshift::live_shift(query, now) {
                Ok(Some(shift)) => Some(shift),
                Ok(None) => {
                    return Ok(RecordingReply::NotFound(
                        "NOT_FOUND",
                        "no timeshift parameter (from, ago, dur, delay) in the query".to_owned(),
                    ));
                }
                Err(e) => return Ok(RecordingReply::BadRequest(e.code, e.message)),
            }
        } else {
            None
        };
        let storage = self.recording_storage(&code).await?;
        let Some(view) = self.recording_view(code.clone(), storage).await else {
            let why = if live {
                format!(
                    "stream {code} has no recording to timeshift from (timeshift on live URLs \
                     plays the stream's DVR recording: dvr.enabled)"
                )
            } else {
                format!("no recording of {code}")
            };
            return Ok(RecordingReply::NotFound("NOT_FOUND", why));
        };
        if view.entries.is_empty() {
            return Ok(RecordingReply::NotFound(
                "NO_DATA",
                format!("recording {code} has no segments yet"),
            ));
        }
        let prefix = if live {
            format!("/recordings/{code}/")
        } else {
            String::new()
        };
        let uris = Uris {
            prefix: &prefix,
            query: &signed,
        };
        let max_ms = millis(self.shared.media.dvr.section.max_timeshift());
        let text = match shift {
            None => match timeshift::recording_window(query, now, &view.entries) {
                Ok(window) => {
                    timeshift::window_playlist(&view.entries, window.clamped(max_ms), uris)
                }
                Err(e) => return Ok(RecordingReply::BadRequest(e.code, e.message)),
            },
            Some(LiveShift::Window(window)) => {
                timeshift::window_playlist(&view.entries, window.clamped(max_ms), uris)
            }
            Some(LiveShift::Delay(delay)) if delay > max_ms => {
                return Ok(RecordingReply::BadRequest(
                    "INVALID_QUERY",
                    format!(
                        "delay must be at most {} s (dvr.max_timeshift_sec)",
                        max_ms / 1000
                    ),
                ));
            }
            Some(LiveShift::Delay(delay)) => {
                timeshift::delayed_playlist(&view.entries, now, delay, uris)
            }
        };
        Ok(match text {
            Ok(text) => RecordingReply::Playlist(text),
            Err(e) => RecordingReply::NotFound("NO_DATA", format!("recording {code}: {e}")),
        })
    }

    /// `GET /recordings/{code}/clip.mp4?{query}` (the signature already checked): the window
    /// parsed and bounded by `dvr.max_clip_sec`, its segments selected from the log, and the
    /// remux started; answered once its first piece is made, so a window without media is
    /// 404 `NO_DATA` rather than an empty 200.
    async fn clip(&self, code: StreamCode, query: &str, storage: String) -> RecordingReply {
        let Some(view) = self.recording_view(code.clone(), storage.clone()).await else {
            return RecordingReply::NotFound("NOT_FOUND", format!("no recording of {code}"));
        };
        if view.entries.is_empty() {
            return RecordingReply::NotFound(
                "NO_DATA",
                format!("recording {code} has no segments yet"),
            );
        }
        let dvr = &self.shared.media.dvr;
        let now = UnixMillis::from_system_time(std::time::SystemTime::now());
        let max_ms = millis(dvr.section.max_clip());
        let window = match clip::clip_window(query, now, &view.entries, max_ms) {
            Ok(window) => window,
            Err(e) => return RecordingReply::BadRequest(e.code, e.message),
        };
        let selected = timeshift::select(&view.entries, window).to_vec();
        if selected.is_empty() {
            return RecordingReply::NotFound(
                "NO_DATA",
                format!("recording {code}: {}", NoData(window)),
            );
        }
        tracing::info!(stream = %code, from = %window.start, to = %window.end,
                       segments = selected.len(), "clip requested");
        let Some(mut rest) = dvr.recordings.clip(&code, &storage, selected, window) else {
            return RecordingReply::NotFound("NOT_FOUND", format!("no recording of {code}"));
        };
        match rest.recv().await {
            Some(Ok(first)) => RecordingReply::Clip { first, rest },
            None | Some(Err(ClipError::NoMedia)) => RecordingReply::NotFound(
                "NO_DATA",
                format!("recording {code}: {}", ClipError::NoMedia),
            ),
            Some(Err(e)) => RecordingReply::Failed(format!("recording {code}: {e}")),
        }
    }

    /// With signed play URLs on, whether `query` from `peer` carries a valid signature for
    /// `code`: `?exp=…&sig=…` for the segment URIs of a playlist, or why not. Off: `""`.
    fn play_suffix(
        &self,
        code: &StreamCode,
        query: &str,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<String, String> {
        let Some(signer) = self.shared.media.signer.get() else {
            return Ok(String::new());
        };
        let ip = peer.map_or(crate::UNKNOWN_PEER, |p| p.ip());
        signer
            .verify(code, query, ip, crate::router::unix_now())
            .map(|signature| format!("?{}", signature.query()))
            .map_err(|e| e.to_string())
    }

    /// Where `code`'s recording is stored: its stored `dvr.storage_path` (`""`: the DVR root).
    async fn recording_storage(&self, code: &StreamCode) -> Result<String, CoordError> {
        Ok(self
            .get_stream(code)
            .await?
            .map(|r| storage_path(&r.stream))
            .unwrap_or_default())
    }

    async fn recording_view(&self, code: StreamCode, storage: String) -> Option<RecordingView> {
        let dvr = Arc::clone(&self.shared.media.dvr);
        tokio::task::spawn_blocking(move || dvr.recordings.view(&code, &storage))
            .await
            .ok()
            .flatten()
    }
}

/// The stored record's `dvr.storage_path` (`""`: the DVR root).
fn storage_path(stream: &Stream) -> String {
    stream
        .dvr
        .as_ref()
        .map(|d| d.storage_path.clone())
        .unwrap_or_default()
}

/// A duration in whole milliseconds.
fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
