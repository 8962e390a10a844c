//! The output service: HLS and DASH windows served from memory (SPEC §Publisher, §HLS,
//! §DASH) and push targets, each task supervised (`supervise.rs`: restarted with backoff when
//! it ends by itself).
//!
//! HLS and DASH of a stream are one packager per rendition (`tributary_publish` feeds both
//! from one subscriber, so they share cut points and numbers): turning either on or off
//! restarts the stream's packagers with the protocols still wanted, and the last one off stops
//! them.
//!
//! A push target reads the playback feed, or with `push[].profile` `track_<N>` rung N's
//! rendition buffer `$r$<code>$track_N` (SPEC §Push): the same push task, queue, continuity
//! and reconnect rules on another buffer, so nothing about a target changes but what it
//! reads. Audio: a rung buffer already carries the ladder's audio, because every FFmpeg output
//! maps the source's first audio track with the ladder's `audio` settings (the argv builder),
//! the same audio HLS packages per rung; the pushed FLV carries it as it is (AAC or MP3; RTMP
//! cannot carry the ladder's Opus or AC-3, which are left out as for the playback feed).
//! Nothing is mixed in from another buffer, so audio and video of a pushed rung come from the
//! same process, in sync. A target whose rung is not in the ladder: `supervise.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tributary_domain::diff::Output;
use tributary_domain::event::EventType;
use tributary_domain::ffmpeg::keyframe_grid;
use tributary_domain::redact::mask_push_url;
use tributary_domain::spec::PushSpec;
use tributary_domain::{Stream, StreamCode};
use tributary_hub::Hub;
use tributary_net::SsrfGuard;
use tributary_publish::{
    DashSettings, HlsHandle, HlsRegistry, HlsSettings, PushChange, PushHandle, PushObserver,
    PushSettings, PushStatus, Variant,
};

use crate::events::EventBus;
use crate::lock;
use crate::services::{OutputService, ServiceError};

pub(crate) mod supervise;

use supervise::{Component, PushTarget, Supervised};

/// A media response: a playlist or a segment.
#[derive(Debug, Clone)]
pub struct MediaAsset {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Cache-Control`.
    pub cache_control: &'static str,
    /// The bytes, shared with the packager's window (no copy per request).
    pub body: Bytes,
}

/// A stream's output figures for `GET /metrics`.
#[derive(Debug, Default)]
pub(crate) struct OutputMetrics {
    /// Segments published per HLS packager (`None`: the stream's only one; else the rung).
    pub(crate) hls_segments: Vec<(Option<u16>, u64)>,
    /// Video segments published per DASH packager, likewise.
    pub(crate) dash_segments: Vec<(Option<u16>, u64)>,
    /// Frames each DASH packager dropped from a full queue, likewise.
    pub(crate) dash_dropped: Vec<(Option<u16>, u64)>,
    /// `ingest_to_playlist_seconds` per HLS packager, likewise.
    pub(crate) latency: Vec<(Option<u16>, tributary_publish::LatencySnapshot)>,
    /// Push targets: redacted URL and `publisher_push_state` value.
    pub(crate) pushes: Vec<(String, i64)>,
}

/// The [`OutputService`] of this build.
pub(crate) struct Outputs {
    /// The process's one hub.
    hub: Hub,
    /// Every HLS window, by stream code; the media routes read it.
    hls: HlsRegistry,
    /// Segment length, window and history for new packagers; replaced by
    /// [`Outputs::set_hls_segment`] and [`Outputs::set_hls_window`].
    settings: Mutex<HlsSettings>,
    /// `publisher.dash` for new packagers with DASH on; replaced by [`Outputs::set_dash`].
    dash: Mutex<DashSettings>,
    /// Which addresses push targets may dial.
    ssrf_guard: SsrfGuard,
    /// What each stream with packagers wants of them (HLS, DASH) and the stream they were
    /// started for, to restart them when one of the two is turned off.
    packaging: Mutex<HashMap<StreamCode, Packaging>>,
    /// The running HLS packagers, by stream and rung (`None`: the stream's only one);
    /// dropping a handle stops its task and removes its window.
    running: Mutex<HashMap<(StreamCode, Option<u16>), HlsHandle>>,
    /// Streams with a play output on (RTMP, RTSP, SRT: a listener serves their playback
    /// feed), by stream and output, each with its players' stop signals, fired when that output
    /// is turned off.
    plays: Mutex<HashMap<(StreamCode, Output), Arc<PlayGate>>>,
    /// Push targets by stream and URL (as configured, trimmed); each runs its own task.
    pushes: Mutex<HashMap<(StreamCode, String), PushHandle>>,
    /// The output tasks streams want running, with their restart records. Locked before
    /// `running` and `pushes` when both are held.
    supervised: Mutex<HashMap<Component, Supervised>>,
    /// The event bus (`push.state_changed`), set once the coordinator exists.
    events: OnceLock<EventBus>,
}

impl Outputs {
    pub(crate) fn new(hub: Hub, settings: HlsSettings, ssrf_guard: SsrfGuard) -> Self {
        Self {
            hub,
            hls: HlsRegistry::new(),
            settings: Mutex::new(settings),
            dash: Mutex::new(DashSettings::default()),
            ssrf_guard,
            packaging: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            plays: Mutex::new(HashMap::new()),
            pushes: Mutex::new(HashMap::new()),
            supervised: Mutex::new(HashMap::new()),
            events: OnceLock::new(),
        }
    }

    /// `publisher.hls.live_window` / `live_history` changed through the config API: every
    /// running HLS packager (each rung of each stream) follows at once, and packagers started
    /// from now on use them.
    pub(crate) fn set_hls_window(&self, window: usize, history: usize) {
        {
            let mut settings = lock(&self.settings);
            settings.window = window;
            settings.history = history;
        }
        for handle in lock(&self.running).values() {
            handle.set_window(window, history);
        }
    }

    /// `publisher.hls.live_segment_sec` changed through the config API: packagers started from
    /// now on cut with it, and every running stream's packagers switch to it at their next
    /// keyframe, numbers continuing after one discontinuity (`tributary_publish` HLS output,
    /// "A new segment length"). A ladder cut on a keyframe grid (before or after the change)
    /// restarts its packagers instead, with the new grid: its variants number by shared grid
    /// cells, which only a common start keeps aligned; its numbers go on increasing. DASH
    /// keeps its own S (`publisher.dash.segment_sec`).
    pub(crate) fn set_hls_segment(&self, segment_sec: f64) {
        let old = std::mem::replace(&mut lock(&self.settings).segment_sec, segment_sec);
        let streams: Vec<Packaging> = lock(&self.packaging).values().cloned().collect();
        for p in streams {
            let code = &p.stream.code;
            let on_grid = |s| {
                let t = p.stream.transcoder.as_ref();
                t.and_then(|t| keyframe_grid(t, s)).is_some()
            };
            if on_grid(old) || on_grid(segment_sec) {
                tracing::info!(stream = %code, from_sec = old, to_sec = segment_sec,
                    "HLS segment length changed: restarting the packagers of a ladder cut on a keyframe grid");
                if let Err(e) = self.start_packagers(&p.stream, p.hls, p.dash) {
                    tracing::warn!(stream = %code, "restarting the packagers: {e}");
                }
                continue;
            }
            for ((c, rung), handle) in lock(&self.running).iter() {
                if c != code {
                    continue;
                }
                if let Err(e) = handle.set_segment(segment_sec) {
                    tracing::warn!(stream = %code, ?rung, "HLS segment length not applied: {e}");
                }
            }
        }
    }

    /// `publisher.dash` changed through the config API: every running packager with DASH on
    /// takes its window, pairing time, track-loss time and queue bound at once, and packagers
    /// started from now on use all of it. A new `segment_sec` applies at each packager's next
    /// keyframe, in a new Period, numbers continuing (`tributary_publish` module `dash`). A
    /// ladder of several rungs restarts its packagers instead, with the new S: the MPD merges
    /// its rungs' Periods by the number that opens them, which each rung switching at its own
    /// next keyframe cannot keep the same. No transcoder restarts: keyframe intervals follow
    /// `publisher.hls.live_segment_sec` only.
    pub(crate) fn set_dash(&self, dash: DashSettings) {
        // Not nested: `packager_settings` reads this lock under `packaging`.
        let old = std::mem::replace(&mut *lock(&self.dash), dash);
        if old.segment_sec != dash.segment_sec {
            let ladders: Vec<Packaging> = lock(&self.packaging)
                .values()
                .filter(|p| p.dash && abr_variants(&p.stream).is_some_and(|v| v.len() > 1))
                .cloned()
                .collect();
            for p in ladders {
                let code = &p.stream.code;
                tracing::info!(stream = %code, from_sec = old.segment_sec, to_sec = dash.segment_sec,
                    "DASH segment length changed: restarting the packagers of a ladder");
                if let Err(e) = self.start_packagers(&p.stream, p.hls, p.dash) {
                    tracing::warn!(stream = %code, "restarting the packagers: {e}");
                }
            }
        }
        for ((code, rung), handle) in lock(&self.running).iter() {
            if let Err(e) = handle.set_dash(dash) {
                tracing::warn!(stream = %code, ?rung, "DASH settings not applied: {e}");
            }
        }
    }

    /// Where `push.state_changed` goes, once the coordinator exists.
    pub(crate) fn attach(&self, events: EventBus) {
        let _ = self.events.set(events);
    }

    /// Publishes `code`'s push targets' status changes as `push.state_changed`.
    fn push_observer(&self, code: &StreamCode) -> Option<PushObserver> {
        let events = self.events.get()?.clone();
        let code = code.clone();
        Some(Arc::new(move |change: &PushChange| {
            let mut payload = serde_json::json!({
                "url": change.url,
                "from": change.from.as_str(),
                "to": change.to.as_str(),
            });
            if let Some(error) = &change.error {
                payload["error"] = serde_json::json!(error);
            }
            events.publish(EventType::PushStateChanged, code.as_str(), payload);
        }))
    }

    /// `runtime.publisher` of a stream: its HLS output (`outputs[]`) and push targets
    /// (`pushes[]`), each with its status, restart count and last error; `None` when it has
    /// neither.
    pub(crate) fn publisher(&self, code: &StreamCode) -> Option<serde_json::Value> {
        let mut outputs = Vec::new();
        // One packager serves both; it is named after what it serves.
        let name = match lock(&self.packaging).get(code).map(|p| (p.hls, p.dash)) {
            Some((false, true)) => "dash",
            _ => "hls",
        };
        let mut hls: Vec<_> = lock(&self.supervised)
            .iter()
            .filter_map(|(component, record)| match component {
                Component::Hls(c, rung) if c == code => {
                    let mut entry = serde_json::json!({"output": name, "status": "running"});
                    if let Some(i) = rung {
                        entry["track"] = serde_json::json!(format!("track_{}", u32::from(*i) + 1));
                    }
                    record.json(&mut entry);
                    Some((*rung, entry))
                }
                _ => None,
            })
            .collect();
        hls.sort_by_key(|(rung, _)| *rung);
        outputs.extend(hls.into_iter().map(|(_, entry)| entry));
        let pushes = self.pushes(code);
        if outputs.is_empty() && pushes.is_empty() {
            return None;
        }
        let mut publisher = serde_json::json!({ "outputs": outputs });
        if !pushes.is_empty() {
            publisher["pushes"] = serde_json::json!(pushes);
        }
        Some(publisher)
    }

    /// A stream's output figures for `GET /metrics`: segments each HLS and DASH packager
    /// published, frames each DASH packager dropped from a full queue, and each push target's
    /// state by redacted URL.
    pub(crate) fn metrics(&self, code: &StreamCode) -> OutputMetrics {
        let hls_on = lock(&self.packaging).get(code).is_none_or(|p| p.hls);
        let (mut hls_segments, mut dash_segments, mut dash_dropped, mut latency) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((c, rung), handle) in lock(&self.running).iter() {
            if c != code {
                continue;
            }
            if hls_on {
                hls_segments.push((*rung, handle.segments()));
                latency.push((*rung, handle.ingest_to_playlist()));
            }
            if let Some(segments) = handle.dash_segments() {
                dash_segments.push((*rung, segments));
            }
            if let Some(dropped) = handle.dash_dropped() {
                dash_dropped.push((*rung, dropped));
            }
        }
        let pushes = {
            let supervised = lock(&self.supervised);
            let pushes = lock(&self.pushes);
            supervised
                .iter()
                .filter_map(|(component, record)| match component {
                    Component::Push(c, url) if c == code => {
                        let state = pushes.get(&(c.clone(), url.clone())).map(PushHandle::state);
                        let gauge = match &state {
                            _ if record.rung_gone() => PushStatus::Failed.gauge(),
                            Some(state) => state.status.gauge(),
                            None => PushStatus::Starting.gauge(),
                        };
                        Some((state.map_or_else(|| mask_push_url(url), |s| s.url), gauge))
                    }
                    _ => None,
                })
                .collect()
        };
        OutputMetrics {
            hls_segments,
            dash_segments,
            dash_dropped,
            latency,
            pushes,
        }
    }

    /// `runtime.publisher.pushes[]` of a stream, by URL (redacted): every target the stream
    /// wants, with its task's state (a target failed for want of its rung may have none).
    fn pushes(&self, code: &StreamCode) -> Vec<serde_json::Value> {
        let supervised = lock(&self.supervised);
        let pushes = lock(&self.pushes);
        let mut states: Vec<_> = supervised
            .iter()
            .filter_map(|(component, record)| match component {
                Component::Push(c, url) if c == code => {
                    let state = pushes.get(&(c.clone(), url.clone())).map(PushHandle::state);
                    let url = state
                        .as_ref()
                        .map_or_else(|| mask_push_url(url), |s| s.url.clone());
                    Some((url, state, record))
                }
                _ => None,
            })
            .collect();
        drop(pushes);
        states.sort_by(|a, b| a.0.cmp(&b.0));
        let at = |t: std::time::SystemTime| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        states
            .into_iter()
            .map(|(url, state, record)| {
                let mut entry = match state {
                    Some(state) => {
                        let mut entry = serde_json::json!({
                            "url": url,
                            "status": state.status.as_str(),
                            "attempt": state.attempt,
                            "dropped_frames": state.dropped,
                            "errors": state.errors.iter().map(|(t, message)| {
                                serde_json::json!({"message": message, "at": at(*t)})
                            }).collect::<Vec<_>>(),
                        });
                        if let Some(connected) = state.connected_at {
                            entry["connected_at"] = serde_json::json!(at(connected));
                        }
                        entry
                    }
                    None => serde_json::json!({
                        "url": url,
                        "status": PushStatus::Starting.as_str(),
                        "attempt": 0,
                        "dropped_frames": 0,
                        "errors": [],
                    }),
                };
                record.json(&mut entry);
                entry
            })
            .collect()
    }

    /// The outputs' conditions for `runtime.warnings`: an output task that ended and waits
    /// for its restart, tracks an HLS output omits because HLS-TS cannot carry their codec,
    /// frames its muxer rejected.
    pub(crate) fn warnings(&self, code: &StreamCode) -> Vec<String> {
        let mut warnings: Vec<String> = lock(&self.supervised)
            .iter()
            .filter_map(|(component, record)| match component {
                Component::Hls(c, _) if c == code => record.warning("the HLS packager"),
                Component::Push(c, _) if c == code => record.warning("a push target's task"),
                _ => None,
            })
            .collect();
        warnings.extend(
            lock(&self.running)
                .iter()
                .filter(|((c, _), _)| c == code)
                .flat_map(|(_, handle)| handle.warnings()),
        );
        warnings
    }

    /// Lets a player of `code` in if the stream has `output` (RTMP, RTSP or SRT play) on: its
    /// `stop` signal fires when that output is turned off. The returned pass keeps it
    /// registered until dropped.
    pub(crate) fn enter_play(
        &self,
        code: &StreamCode,
        output: Output,
        stop: CancellationToken,
    ) -> Option<GatePass> {
        let gate = lock(&self.plays).get(&(code.clone(), output)).cloned()?;
        Some(gate.enter(stop))
    }

    /// The HLS outputs, for requests that wait on them (LL-HLS).
    pub(crate) fn hls_registry(&self) -> &HlsRegistry {
        &self.hls
    }

    /// The asset at `path` (`<code>/index.m3u8`, `<code>/seg_000123.ts`; `code` may contain
    /// `/`) with the stream it belongs to, or `None` (404). Paths never touch the file system.
    /// `delta`: an LL-HLS playlist's `_HLS_skip=YES` delta update.
    pub(crate) fn media(&self, path: &str, delta: bool) -> Option<(StreamCode, MediaAsset)> {
        let (code, rung, name) = split_media_path(path)?;
        let asset = self.hls.get_variant_with(&code, rung, name, delta)?;
        let asset = MediaAsset {
            content_type: asset.content_type,
            cache_control: asset.cache_control,
            body: asset.body,
        };
        Some((code, asset))
    }
}

/// A media path as (stream, rung, name): `<code>/<name>`, or `<code>/track_<N>/<name>` for a
/// variant of an ABR ladder (`track_N` is never part of a code).
pub(crate) fn split_media_path(path: &str) -> Option<(StreamCode, Option<u16>, &str)> {
    let (code, name) = path.rsplit_once('/')?;
    let (code, rung) = match code.rsplit_once('/') {
        Some((stream, track)) => match track
            .strip_prefix("track_")
            .and_then(|n| n.parse::<u16>().ok())
            .filter(|&n| n >= 1 && track == format!("track_{n}"))
        {
            Some(n) => (stream, Some(n - 1)),
            None => (code, None),
        },
        None => (code, None),
    };
    Some((code.parse().ok()?, rung, name))
}

/// The ABR master's variants of a transcoding stream, one per rung in profile order; `None`
/// for a stream without FFmpeg (one media playlist). `BANDWIDTH` is the peak (max_bitrate,
/// else 1.1 × bitrate) plus audio, `AVERAGE-BANDWIDTH` the bitrate plus audio (SPEC §HLS).
fn abr_variants(stream: &Stream) -> Option<Vec<Variant>> {
    let t = stream.transcoder.as_ref().filter(|t| t.needs_ffmpeg())?;
    let audio_kbps = u64::from(if t.audio.bitrate == 0 {
        128
    } else {
        t.audio.bitrate
    });
    let rungs = t.video.profiles.len().max(1);
    Some(
        (0..rungs)
            .map(|i| {
                let profile = t.video.profiles.get(i);
                let kbps = profile
                    .map(|p| p.bitrate)
                    .filter(|&b| b > 0)
                    .map_or(2500, u64::from);
                let peak = profile
                    .map(|p| p.max_bitrate)
                    .filter(|&b| b > 0)
                    .map_or(kbps * 11 / 10, u64::from);
                Variant {
                    track: format!("track_{}", i + 1),
                    bandwidth: (peak + audio_kbps) * 1000,
                    average_bandwidth: (kbps + audio_kbps) * 1000,
                }
            })
            .collect(),
    )
}

impl Outputs {
    /// (Re)starts the packagers of `stream` serving HLS and/or DASH.
    fn start_packagers(&self, stream: &Stream, hls: bool, dash: bool) -> Result<(), ServiceError> {
        let code = stream.code.clone();
        // A restart stops the old packagers first: one window per code.
        self.stop_packagers(&code);
        let ladder = abr_variants(stream);
        lock(&self.packaging).insert(
            code.clone(),
            Packaging {
                hls,
                dash,
                audio_rung: ladder.as_ref().map(|_| best_rung(stream)),
                stream: stream.clone(),
            },
        );
        let rungs: Vec<Option<u16>> = match &ladder {
            Some(variants) => (0..variants.len()).map(|i| Some(i as u16)).collect(),
            None => vec![None],
        };
        // The master first: its numbering is what the variants cut and number by.
        if let Some(variants) = ladder {
            self.hls
                .register_master(&code, variants, self.keyframe_grid(stream));
        }
        for rung in rungs {
            let handle = self.spawn_hls(&code, rung).map_err(ServiceError::Publish)?;
            lock(&self.running).insert((code.clone(), rung), handle);
            let record = Supervised::new(None, now());
            lock(&self.supervised).insert(Component::Hls(code.clone(), rung), record);
        }
        Ok(())
    }

    /// Stops every packager of `code` (HLS and DASH) and takes its routes down.
    fn stop_packagers(&self, code: &StreamCode) {
        // Unwanted first, so supervision cannot start it again.
        lock(&self.supervised)
            .retain(|component, _| !matches!(component, Component::Hls(c, _) if c == code));
        self.hls.unregister_master(code);
        let handles: Vec<HlsHandle> = {
            let mut running = lock(&self.running);
            let keys: Vec<_> = running.keys().filter(|(c, _)| c == code).cloned().collect();
            keys.iter().filter_map(|key| running.remove(key)).collect()
        };
        for handle in handles {
            handle.stop();
        }
    }

    /// Packagers with DASH on package it as `dash` says (`publisher.dash`).
    pub(crate) fn with_dash(self, dash: DashSettings) -> Self {
        *lock(&self.dash) = dash;
        self
    }

    /// The settings of a packager of `code` (`rung`): HLS and DASH as the stream wants, DASH
    /// audio on the best rung only (SPEC §DASH "Tracks").
    pub(super) fn packager_settings(&self, code: &StreamCode, rung: Option<u16>) -> HlsSettings {
        let mut settings = lock(&self.settings).clone();
        let dash = *lock(&self.dash);
        if let Some(p) = lock(&self.packaging).get(code) {
            settings.hls = p.hls;
            settings.dash = p.dash.then_some(DashSettings {
                audio: rung == p.audio_rung,
                ..dash
            });
        }
        settings
    }

    /// The keyframe grid `stream`'s rungs share, which its HLS variants are cut on (SPEC
    /// §Transcoder "Alignment").
    fn keyframe_grid(&self, stream: &Stream) -> Option<Duration> {
        let t = stream.transcoder.as_ref()?;
        keyframe_grid(t, lock(&self.settings).segment_sec).map(Duration::from_secs_f64)
    }
}

/// What a stream wants of its packagers.
#[derive(Debug, Clone)]
struct Packaging {
    /// HLS playlists and segments served (`protocols.hls`).
    hls: bool,
    /// DASH served (`protocols.dash`).
    dash: bool,
    /// The rung whose packager packages the DASH audio (the ladder's best rung), `None`
    /// without a ladder.
    audio_rung: Option<u16>,
    /// The stream the packagers were started for.
    stream: Stream,
}

/// The ladder's best rung, which carries the playback feed and the DASH audio: the largest
/// `width × height × 1000 + bitrate`, ties to the first, a rung without a size (copying the
/// source) first of all (SPEC §Publisher).
fn best_rung(stream: &Stream) -> u16 {
    let Some(t) = stream.transcoder.as_ref() else {
        return 0;
    };
    let score = |p: &tributary_domain::VideoProfile| {
        if p.width == 0 || p.height == 0 {
            return u64::MAX;
        }
        u64::from(p.width) * u64::from(p.height) * 1000 + u64::from(p.bitrate)
    };
    let mut best = 0;
    for (i, profile) in t.video.profiles.iter().enumerate() {
        if score(profile) > score(&t.video.profiles[best]) {
            best = i;
        }
    }
    u16::try_from(best).unwrap_or(0)
}

/// The players of one stream's RTMP or SRT output: turning the output off stops them all.
#[derive(Debug, Default)]
pub(crate) struct PlayGate {
    /// Each player's stop signal, by a number of its own.
    players: Mutex<(u64, HashMap<u64, CancellationToken>)>,
}

/// A player's registration at its gate; dropping it (the player left) unregisters it.
#[derive(Debug)]
pub(crate) struct GatePass {
    gate: Arc<PlayGate>,
    id: u64,
}

impl PlayGate {
    fn enter(self: Arc<Self>, stop: CancellationToken) -> GatePass {
        let mut players = lock(&self.players);
        let id = players.0;
        players.0 += 1;
        players.1.insert(id, stop);
        drop(players);
        GatePass { gate: self, id }
    }

    /// Stops every player that entered and has not left.
    fn close(&self) {
        let players = std::mem::take(&mut lock(&self.players).1);
        if !players.is_empty() {
            tracing::info!(
                players = players.len(),
                "RTMP or SRT play turned off: disconnecting players"
            );
        }
        for stop in players.into_values() {
            stop.cancel();
        }
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        lock(&self.gate.players).1.remove(&self.id);
    }
}

impl OutputService for Outputs {
    fn start_output(&self, stream: &Stream, output: Output) -> Result<(), ServiceError> {
        match output {
            Output::Hls | Output::Dash => {
                let mut wanted = lock(&self.packaging)
                    .get(&stream.code)
                    .map_or((false, false), |p| (p.hls, p.dash));
                if output == Output::Hls {
                    wanted.0 = true;
                } else {
                    wanted.1 = true;
                }
                self.start_packagers(stream, wanted.0, wanted.1)
            }
            Output::Rtmp | Output::Rtsp | Output::Srt => {
                let gate = Arc::new(PlayGate::default());
                let previous = lock(&self.plays).insert((stream.code.clone(), output), gate);
                if let Some(previous) = previous {
                    previous.close();
                }
                Ok(())
            }
        }
    }

    fn stop_output(&self, code: &StreamCode, output: Output) {
        if matches!(output, Output::Rtmp | Output::Rtsp | Output::Srt) {
            let gate = lock(&self.plays).remove(&(code.clone(), output));
            if let Some(gate) = gate {
                gate.close();
            }
        }
        if matches!(output, Output::Hls | Output::Dash) {
            let still = {
                let mut packaging = lock(&self.packaging);
                let Some(p) = packaging.get_mut(code) else {
                    return;
                };
                if output == Output::Hls {
                    p.hls = false;
                } else {
                    p.dash = false;
                }
                if !p.hls && !p.dash {
                    packaging.remove(code);
                    None
                } else {
                    Some(p.clone())
                }
            };
            match still {
                // The other protocol stays: its packagers restart without this one.
                Some(p) => {
                    if let Err(e) = self.start_packagers(&p.stream, p.hls, p.dash) {
                        tracing::warn!(stream = %code, "restarting the packagers: {e}");
                    }
                }
                None => self.stop_packagers(code),
            }
        }
    }

    fn ladder_changed(&self, stream: &Stream) {
        let code = &stream.code;
        if !lock(&self.supervised).contains_key(&Component::Hls(code.clone(), Some(0))) {
            // Not an ABR HLS output (HLS off, or a topology reload restarts it anyway).
            return;
        }
        let Some(variants) = abr_variants(stream) else {
            return;
        };
        let rungs = variants.len() as u16;
        let (dash, restart) = match lock(&self.packaging).get_mut(code) {
            Some(p) => {
                // New rungs start with the new ladder's settings (the DASH audio stays with
                // the packager that has it until the packagers restart).
                p.stream = stream.clone();
                let audio_gone = p.dash && p.audio_rung.is_some_and(|rung| rung >= rungs);
                (p.dash, audio_gone.then_some((p.hls, p.dash)))
            }
            None => (false, None),
        };
        if let Some((hls, dash)) = restart {
            // The rung that packages the DASH audio is removed and no kept packager has it:
            // the packagers restart with the new ladder (a new MPD) rather than go on
            // without sound.
            tracing::info!(stream = %code, "DASH audio rung removed; restarting the packagers");
            if let Err(e) = self.start_packagers(stream, hls, dash) {
                tracing::warn!(stream = %code, "restarting the packagers: {e}");
            }
            return;
        }
        if dash {
            // Kept rungs package on; the MPD opens a Period with the new ladder.
            self.hls.dash_ladder_changed(code, rungs);
        }
        // Rungs gone: their packagers stop (their buffers are being deleted) and retire.
        lock(&self.supervised).retain(|component, _| {
            !matches!(component, Component::Hls(c, Some(i)) if c == code && *i >= rungs)
        });
        let gone: Vec<HlsHandle> = {
            let mut running = lock(&self.running);
            let keys: Vec<_> = running
                .keys()
                .filter(|(c, rung)| c == code && rung.is_some_and(|i| i >= rungs))
                .cloned()
                .collect();
            keys.iter().filter_map(|key| running.remove(key)).collect()
        };
        // Their playlists end with ENDLIST and stay served a while (SPEC §Hot reload).
        for handle in gone {
            handle.retire();
        }
        self.hls
            .register_master(code, variants, self.keyframe_grid(stream));
        // Rungs new: their packagers start; supervision retries one that cannot yet.
        for rung in (0..rungs).map(Some) {
            let component = Component::Hls(code.clone(), rung);
            if lock(&self.supervised).contains_key(&component) {
                continue;
            }
            match self.spawn_hls(code, rung) {
                Ok(handle) => {
                    lock(&self.running).insert((code.clone(), rung), handle);
                }
                Err(e) => tracing::warn!(stream = %code, ?rung, "HLS packager of a new rung: {e}"),
            }
            lock(&self.supervised).insert(component, Supervised::new(None, now()));
        }
    }

    fn start_push(&self, code: &StreamCode, target: &PushSpec) -> Result<(), ServiceError> {
        let url = target.push.url.trim().to_owned();
        let previous = lock(&self.pushes).remove(&(code.clone(), url.clone()));
        if let Some(previous) = previous {
            previous.stop();
        }
        let wanted = PushTarget {
            settings: PushSettings::for_target(&target.push, self.ssrf_guard.clone()),
            rung: target.rung,
        };
        let mut record = Supervised::new(Some(wanted.clone()), now());
        match wanted.rung {
            // Its rung is not in the ladder (a template took it away): failed, visibly, and
            // started once the rung is back (supervise.rs); never another feed instead.
            Some(rung) if !self.hub.contains(&wanted.buffer(code)) => {
                self.rung_gone(code, &url, rung, PushStatus::Starting, &mut record);
            }
            _ => {
                let handle = self
                    .spawn_push(code, &wanted)
                    .map_err(ServiceError::Publish)?;
                lock(&self.pushes).insert((code.clone(), url.clone()), handle);
            }
        }
        lock(&self.supervised).insert(Component::Push(code.clone(), url), record);
        Ok(())
    }

    fn stop_push(&self, code: &StreamCode, url: &str) {
        let url = url.trim().to_owned();
        lock(&self.supervised).remove(&Component::Push(code.clone(), url.clone()));
        let handle = lock(&self.pushes).remove(&(code.clone(), url));
        if let Some(handle) = handle {
            handle.stop();
        }
    }
}

/// The instant now, from tokio's clock (paused in tests).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
