//! Starting, running and stopping one HLS output.
//!
//! # A new segment length on a running output
//!
//! `live_segment_sec` changed on a running server (SPEC §Config "Hot apply": "each packager
//! restarts at its next keyframe (numbering continues, one discontinuity)") reaches the task
//! as the window does ([`HlsHandle::set_segment`]). The segmenter closes its open segment at
//! the next keyframe and cuts on with the new S from there, numbers continuing by one; the
//! first new segment carries `#EXT-X-DISCONTINUITY`. The playlist stays the same playlist:
//! its window keeps the old segments, so a player in the middle of them plays on.
//!
//! `#EXT-X-TARGETDURATION` then becomes what the listed segments need (the largest target of
//! the runs listed): RFC 8216 §4.3.3.1 makes every `#EXTINF`, rounded, at most
//! TARGETDURATION, a rule of each playlist a client parses (it MUST reject one that breaks
//! it); §6.2.1 also asks a server not to change the value between reloads, a rule no
//! restart can keep either, since a restarted packager serves its new playlist at the same
//! URL. Of the two, the playlist that parses wins: longer segments raise the value as soon
//! as the first one is listed, and it comes down once the last longer one slid out. Players
//! read it again at every reload: hls.js takes each reload's `targetduration` for its reload
//! interval and live edge, and AVPlayer likewise; the discontinuity resets their timestamp
//! mapping across the cut. A ladder cut on a keyframe grid is not switched here but
//! restarted by the engine: its variants number by shared grid cells, which each variant
//! switching at its own next keyframe cannot keep aligned.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;
use tributary_hub::{Batch, Batched, BufferId, Delivery, Hub, SubscribeFrom, Subscriber, Wake};
use tributary_media::codec::{self, FrameRate};
use tributary_media::{Frame, MediaKind, StreamCode, TrackConfig, TrackInfo, Ts90};
use tributary_packager::{
    HlsConfig, HlsEvent, HlsSegmenter, MediaPlaylist, SegmentEnd, UnixMillis,
};

use crate::dash::{DashRung, DashSide};
use crate::hls::window::Window;
use crate::latency::{Latency, LatencySnapshot};
use crate::{DashSettings, HlsRegistry, HlsSettings, PublishError};

/// A running HLS output. Dropping it, or [`stop`](Self::stop)ping it, ends its task and
/// removes its window from the registry: from then on its URLs are 404.
#[derive(Debug)]
#[must_use = "dropping the handle stops the output at once"]
pub struct HlsHandle {
    /// Where the window is registered, to remove it on drop.
    registry: HlsRegistry,
    /// The stream, the registry key with `rung`.
    code: StreamCode,
    /// The rung (ABR variant `track_<rung + 1>`), or `None` for the stream's only output.
    rung: Option<u16>,
    /// The served state, shared with the task and the registry.
    window: Arc<Window>,
    /// The DASH side's served state, when DASH is on.
    dash: Option<Arc<DashRung>>,
    /// `ingest_to_playlist_seconds`, observed by the task.
    latency: Arc<Latency>,
    /// The task, aborted on drop.
    task: JoinHandle<()>,
    /// How long a retired variant stays served: two playlist windows.
    linger: Duration,
    /// `live_segment_sec`, `live_window`, `live_history` and `publisher.dash`, which the task
    /// follows ([`set_segment`](HlsHandle::set_segment), [`set_window`](HlsHandle::set_window),
    /// [`set_dash`](HlsHandle::set_dash)).
    limits: tokio::sync::watch::Sender<Limits>,
}

/// The segment length, playlist window and history of a running output, and its DASH
/// settings when DASH is on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limits {
    segment: Duration,
    window: usize,
    history: usize,
    dash: Option<DashSettings>,
}

/// Starts the HLS output of `code` reading hub buffer `buffer`: spawns one tokio task (call
/// inside a runtime).
///
/// The task subscribes from the buffer's last keyframe, cuts segments as SPEC §HLS says and
/// publishes each finished segment and the new playlist into `registry`. Until the first
/// segment is finished (about S after the first keyframe), `index.m3u8` is `None` (404).
/// When the buffer is deleted the task closes its last segment and ends; the window stays
/// served until the handle is dropped ([`HlsHandle::is_finished`] tells).
///
/// Fails when the settings are invalid, the buffer does not exist, an output of `code` is
/// already running, or there is no tokio runtime.
pub fn start_hls(
    registry: &HlsRegistry,
    hub: &Hub,
    code: StreamCode,
    buffer: BufferId,
    settings: HlsSettings,
) -> Result<HlsHandle, PublishError> {
    start_hls_variant(registry, hub, code, None, buffer, settings)
}

/// As [`start_hls`], for one variant of an ABR ladder when `rung` is `Some(i)`: served under
/// `/{code}/track_<i + 1>/`, listed by the master playlist
/// ([`HlsRegistry::register_master`], registered first). The variants of one stream share
/// the master's segment numbering, so their media sequence numbers line up.
pub fn start_hls_variant(
    registry: &HlsRegistry,
    hub: &Hub,
    code: StreamCode,
    rung: Option<u16>,
    buffer: BufferId,
    settings: HlsSettings,
) -> Result<HlsHandle, PublishError> {
    let segment = settings.segment_duration(&code)?;
    let ll = settings.part_duration(&code)?;
    let part = ll.map(|(part, _)| part);
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| PublishError::NoRuntime { code: code.clone() })?;
    let subscriber = hub
        .subscribe(
            &buffer,
            SubscribeFrom::LastKeyframe,
            subscriber_class(&settings),
        )
        .map_err(|source| PublishError::Subscribe {
            code: code.clone(),
            buffer: buffer.clone(),
            source,
        })?;
    // A segment ends at a video keyframe: the frames between two are read with the next, not
    // one wake-up each. LL-HLS parts end at any video frame, and a part is worth its latency
    // only if it is published when it ends: every video frame wakes the task then.
    subscriber.set_wake(match part {
        Some(_) => Wake::Video {
            within: LL_WAKE_WITHIN,
        },
        None => Wake::VideoKeyframe {
            within: WAKE_WITHIN,
        },
    });
    let numbering = rung.and_then(|_| registry.numbering(&code));
    let unix_secs = UnixMillis::from_system_time(SystemTime::now()).as_secs();
    let first_number = numbering.map_or_else(
        || registry.first_number(&code, unix_secs),
        |n| n.first_number,
    );
    let window = Arc::new(Window::new(settings.window, settings.history));
    registry.register(&code, rung, Arc::clone(&window))?;
    let config = HlsConfig {
        segment,
        first_number,
        grid: numbering.and_then(|n| n.grid),
        format: settings.format,
        part,
    };
    let dash = match settings.dash {
        Some(dash) => {
            let config = HlsConfig {
                segment: dash_segment(&code, &dash)?,
                ..config
            };
            let served = Arc::new(DashRung::new(dash.window, settings.history));
            registry.register_dash(
                &code,
                rung,
                Arc::clone(&served),
                config.segment,
                dash.window,
            );
            let side = DashSide::new(Arc::clone(&served), config, dash);
            Some((served, side))
        }
        None => None,
    };
    let (dash_rung, dash_side) = dash.unzip();
    let latency = Arc::new(Latency::default());

    let applied = Limits {
        segment,
        window: settings.window,
        history: settings.history,
        dash: settings.dash,
    };
    let (limits, limits_rx) = tokio::sync::watch::channel(applied);
    let output = Output {
        applied,
        limits: limits_rx,
        subscriber,
        hls: settings.hls,
        segmenter: HlsSegmenter::new(config),
        dash: dash_side,
        registry: registry.clone(),
        code: code.clone(),
        playlist: match ll {
            Some((part, hold_back)) => MediaPlaylist::low_latency(settings.window, part, hold_back),
            None => MediaPlaylist::new(settings.window),
        },
        low_latency: part.is_some(),
        window: Arc::clone(&window),
        latency: Arc::clone(&latency),
        configs: [None, None],
        sps: None,
        gop: None,
    };
    let span = tracing::info_span!("hls", stream = %code, buffer = %buffer);
    tracing::info!(
        parent: &span,
        first_number,
        hls = settings.hls,
        dash = settings.dash.is_some(),
        "HLS output started"
    );
    let task = runtime.spawn(output.run().instrument(span));
    Ok(HlsHandle {
        registry: registry.clone(),
        code,
        rung,
        window,
        dash: dash_rung,
        latency,
        task,
        linger: segment.saturating_mul(2 * u32::try_from(settings.window).unwrap_or(u32::MAX)),
        limits,
    })
}

impl HlsHandle {
    /// `live_segment_sec` changed on a running server: the HLS segmenter cuts segments of
    /// the new length from its next keyframe on (module doc). Fails, changing nothing, when
    /// the length is not within (0, 60] s (`publisher.hls.live_segment_sec` named). DASH keeps
    /// its own S (`publisher.dash.segment_sec`).
    pub fn set_segment(&self, segment_sec: f64) -> Result<(), PublishError> {
        let segment = super::segment_length(&self.code, segment_sec)?;
        self.limits.send_if_modified(|limits| {
            let changed = limits.segment != segment;
            limits.segment = segment;
            changed
        });
        Ok(())
    }

    /// `live_window` and `live_history` changed on a running server: the task applies them at
    /// once (a smaller window slides its oldest segments out of the playlist, which stay
    /// fetchable as retired ones; a larger one lists more as segments come). 0 is taken as 1
    /// for the window.
    pub fn set_window(&self, window: usize, history: usize) {
        self.limits.send_if_modified(|limits| {
            let new = Limits {
                window: window.max(1),
                history,
                ..*limits
            };
            let changed = *limits != new;
            *limits = new;
            changed
        });
    }

    /// `publisher.dash` changed on a running server: with DASH on, the task applies the
    /// window, pairing time, track-loss time and queue bound of `dash` at once (a smaller
    /// window slides the oldest segments out of the MPD, which stay fetchable as retired
    /// ones; `timeShiftBufferDepth` follows), and a new S (`segment_sec`) from the next
    /// keyframe on, in a new Period (module `dash`). The run's audio rung is kept. Fails,
    /// changing nothing, when a setting is out of its range (the key named). Nothing without
    /// DASH.
    pub fn set_dash(&self, dash: DashSettings) -> Result<(), PublishError> {
        dash_segment(&self.code, &dash)?;
        self.limits.send_if_modified(|limits| {
            let Some(current) = limits.dash else {
                return false;
            };
            let new = DashSettings {
                audio: current.audio,
                ..dash
            };
            let changed = current != new;
            limits.dash = Some(new);
            changed
        });
        Ok(())
    }

    /// Stops the output: its task ends and its URLs are 404 from now on.
    pub fn stop(self) {
        drop(self);
    }

    /// Retires a variant removed from its ladder (SPEC §Hot reload): once its task has cut
    /// its last segment (the rung's buffer is deleted next, which ends it; at most 5 s), its
    /// playlist ends with `#EXT-X-ENDLIST` and stays served for two playlist windows, so
    /// players on it finish what they hold instead of failing on a 404; then its URLs are 404.
    /// A new output of the same rung may start meanwhile and takes the URLs over. Without a
    /// tokio runtime this is [`stop`](Self::stop).
    pub fn retire(mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if tokio::time::timeout(RETIRE_DRAIN, &mut self.task)
                .await
                .is_err()
            {
                self.task.abort();
            }
            self.window.retire();
            tracing::info!(
                stream = %self.code,
                rung = ?self.rung,
                linger_secs = self.linger.as_secs_f64(),
                "HLS variant removed from the ladder: playlist ended, served a while longer"
            );
            tokio::time::sleep(self.linger).await;
        });
    }

    /// The stream.
    pub fn code(&self) -> &StreamCode {
        &self.code
    }

    /// Whether the task has ended by itself (its buffer was deleted). What it published stays
    /// served until the handle is dropped.
    pub fn is_finished(&self) -> bool {
        self.window.is_finished() || self.task.is_finished()
    }

    /// Segments the output has published (`tributary_publisher_segments_total`).
    pub fn segments(&self) -> u64 {
        self.window.published()
    }

    /// How long after their first frame arrived at ingest the playlist listed this output's
    /// segments (`tributary_ingest_to_playlist_seconds`). DASH lists a segment at the same
    /// instant: its MPD is rendered on request from the same cuts.
    pub fn ingest_to_playlist(&self) -> LatencySnapshot {
        self.latency.snapshot()
    }

    /// Video segments the DASH side has published (`tributary_publisher_segments_total`
    /// with `format="dash"`), when DASH is on.
    pub fn dash_segments(&self) -> Option<u64> {
        self.dash.as_ref().map(|dash| dash.video.published())
    }

    /// Frames the DASH side dropped because a bounded queue (`queue_frames`) was full
    /// (`tributary_dash_queue_dropped_frames_total`), when DASH is on.
    pub fn dash_dropped(&self) -> Option<u64> {
        self.dash.as_ref().map(|dash| dash.dropped())
    }

    /// Conditions for the stream's `runtime.warnings`: tracks omitted because HLS-TS cannot
    /// carry their codec, frames the muxer rejected (each listed once, at most 16).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.window.warnings();
        if let Some(dash) = &self.dash {
            warnings.extend(dash.warnings());
        }
        warnings
    }
}

impl Drop for HlsHandle {
    fn drop(&mut self) {
        self.task.abort();
        let mut last_number = self.window.close();
        if let Some(dash) = &self.dash {
            // DASH audio may cut more often than video: its numbers count too, so the next
            // run reuses no URI of either.
            last_number = last_number.max(dash.close());
            self.registry.unregister_dash(&self.code, self.rung, dash);
        }
        let unix_secs = UnixMillis::from_system_time(SystemTime::now()).as_secs();
        self.registry
            .unregister(&self.code, self.rung, &self.window, last_number, unix_secs);
        tracing::info!(stream = %self.code, ?last_number, "HLS output stopped");
    }
}

/// The task's state.
struct Output {
    /// The reader of the buffer.
    subscriber: Subscriber,
    /// Whether HLS is served: when not, its segmenter is not fed (DASH only).
    hls: bool,
    /// Frames to segments.
    segmenter: HlsSegmenter,
    /// DASH from the same frames and cuts, when on.
    dash: Option<DashSide>,
    /// Where the DASH origin (wall time of media time 0) is recorded, once known.
    registry: HlsRegistry,
    /// The stream, for the registry.
    code: StreamCode,
    /// The sliding window, rendered after each segment (and each part).
    playlist: MediaPlaylist,
    /// The window, history and DASH settings to follow.
    limits: tokio::sync::watch::Receiver<Limits>,
    /// The ones applied last.
    applied: Limits,
    /// LL-HLS: parts are published, with a delta update beside each playlist.
    low_latency: bool,
    /// Where segments and playlists are published.
    window: Arc<Window>,
    /// `ingest_to_playlist_seconds`.
    latency: Arc<Latency>,
    /// The last video and audio configurations measured into the window.
    configs: [Option<Arc<TrackConfig>>; 2],
    /// The last video parameters published: a keyframe's SPS, with the frame rate measured.
    sps: Option<TrackInfo>,
    /// The DTS of the last video keyframe and the video frames since (it included), for the
    /// frame rate: encoders with a 90 kHz time base write no usable one in the SPS.
    gop: Option<(Ts90, u64)>,
}

impl Output {
    /// Applies the segment length, window, history and DASH settings the handle last set.
    fn resize(&mut self) {
        let limits = *self.limits.borrow_and_update();
        let applied = std::mem::replace(&mut self.applied, limits);
        let Limits {
            segment,
            window,
            history,
            dash,
        } = limits;
        if applied.segment != segment {
            self.segmenter.set_segment(segment);
            tracing::info!(
                from_sec = applied.segment.as_secs_f64(),
                to_sec = segment.as_secs_f64(),
                next_number = self.segmenter.next_number(),
                "HLS segment length changed: switching at the next keyframe, after a discontinuity"
            );
        }
        if let (Some(side), Some(dash), Some(before)) = (&mut self.dash, dash, applied.dash)
            && dash.segment_sec != before.segment_sec
        {
            let segment = Duration::from_secs_f64(dash.segment_sec);
            side.set_segment(segment);
            self.registry.set_dash_segment(&self.code, segment);
            tracing::info!(
                from_sec = before.segment_sec,
                to_sec = dash.segment_sec,
                "DASH segment length changed: switching at the next keyframe, in a new Period"
            );
        }
        if let (Some(side), Some(dash)) = (&mut self.dash, dash)
            && (applied.dash != Some(dash) || applied.history != history)
        {
            side.apply(&dash, history, Instant::now());
            self.registry.set_dash_window(&self.code, dash.window);
            tracing::info!(
                window = dash.window,
                pairing_sec = dash.pairing_sec,
                track_loss_sec = dash.track_loss_sec,
                queue_frames = dash.queue_frames,
                "DASH settings changed"
            );
        }
        if (applied.window, applied.history) == (window, history) {
            return;
        }
        let slid_out = self.playlist.set_window(window);
        let listed = self.playlist.entries().len();
        let rendered = (listed > 0).then(|| {
            let text = Bytes::from(self.playlist.render());
            let delta = self
                .low_latency
                .then(|| Bytes::from(self.playlist.render_delta()));
            (text, delta)
        });
        let duration = self.playlist.duration();
        self.window.resize(
            window,
            history,
            &slid_out,
            duration,
            rendered,
            Instant::now(),
        );
        tracing::info!(
            window,
            history,
            slid_out = slid_out.len(),
            "HLS window changed"
        );
    }

    /// Reads until the buffer ends. Each wake-up reads the clocks once and then takes every
    /// delivery already waiting (up to a batch), so a burst costs one clock read.
    async fn run(mut self) {
        loop {
            let mut expiry = self.window.next_expiry();
            if let Some(dash) = self.dash.as_ref().and_then(|d| d.rung().next_expiry()) {
                expiry = Some(expiry.map_or(dash, |e| e.min(dash)));
            }
            let first = tokio::select! {
                delivery = self.subscriber.recv() => delivery,
                Ok(()) = self.limits.changed() => {
                    self.resize();
                    continue;
                }
                () = sleep_until(expiry), if expiry.is_some() => {
                    let now = Instant::now();
                    self.window.prune(now);
                    if let Some(dash) = &self.dash {
                        dash.rung().prune(now);
                    }
                    continue;
                }
            };
            let now = Instant::now();
            let wall = SystemTime::now();
            let mono = std::time::Instant::now();
            let mut batch = Batch::new(first, BATCH);
            while let Some(next) = batch.next(&mut self.subscriber) {
                let Batched::Delivery(got) = next else {
                    self.segmenter.finish();
                    if let Some(dash) = &mut self.dash {
                        dash.finish();
                    }
                    self.drain(now);
                    self.window.finish();
                    tracing::info!("buffer ended; HLS output finished");
                    return;
                };
                match got {
                    Delivery::Frame(frame) => {
                        self.measure(&frame);
                        let at = arrival_wall(&frame, wall, mono);
                        if self.hls {
                            self.segmenter.push(&frame, at);
                        }
                        if let Some(dash) = &mut self.dash {
                            dash.push(&frame, at);
                        }
                    }
                    Delivery::Lagged { dropped } => {
                        tracing::warn!(
                            dropped,
                            "HLS output fell behind; the next segment follows a discontinuity"
                        );
                        self.segmenter.discontinuity();
                        if let Some(dash) = &mut self.dash {
                            dash.discontinuity();
                        }
                    }
                }
                self.drain(now);
            }
            if batch.full() {
                // A long burst: let other tasks run; the next wake-up reads the clocks again.
                tokio::task::yield_now().await;
            }
        }
    }

    /// Records a track configuration the window has not seen (one pointer compare per
    /// frame otherwise).
    fn measure(&mut self, frame: &Frame) {
        let kind = frame.codec.kind();
        if kind == MediaKind::Video && !frame.keyframe {
            if let Some((_, frames)) = &mut self.gop {
                *frames += 1;
            }
            return;
        }
        if kind == MediaKind::Video {
            // Video parameters come in band: every keyframe carries its SPS (SPEC §Buffer
            // hub "Packet"); parsed once per keyframe, published when they change.
            let measured = self.gop.and_then(|(start, frames)| {
                let span = u64::try_from(frame.dts.0 - start.0)
                    .ok()
                    .filter(|&s| s > 0)?;
                FrameRate::new(frames * 90_000, span)
            });
            self.gop = Some((frame.dts, 1));
            if let Some(mut info) = codec::sps_info(frame) {
                info.frame_rate = measured.or(self.sps.as_ref().and_then(|s| s.frame_rate));
                if self.sps.as_ref() != Some(&info) {
                    self.window.measure(kind, &info);
                    if let Some(dash) = &mut self.dash {
                        dash.measure(kind, &info);
                    }
                    self.sps = Some(info);
                }
            }
            return;
        }
        let Some(config) = &frame.config else {
            return;
        };
        let slot = match kind {
            MediaKind::Video => &mut self.configs[0],
            MediaKind::Audio => &mut self.configs[1],
            _ => return,
        };
        if slot.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, config)) {
            return;
        }
        *slot = Some(Arc::clone(config));
        self.window.measure(kind, &config.info);
        if let Some(dash) = &mut self.dash {
            dash.measure(kind, &config.info);
        }
    }

    /// Publishes what the segmenters have produced.
    fn drain(&mut self, now: Instant) {
        if let Some(dash) = &mut self.dash
            && let Some(origin) = dash.drain(now)
        {
            self.registry.set_dash_origin(&self.code, origin);
        }
        while let Some(event) = self.segmenter.pull() {
            match event {
                HlsEvent::Segment(segment) => {
                    if segment.end == SegmentEnd::Forced {
                        tracing::warn!(
                            number = segment.number,
                            duration = %segment.duration,
                            target_duration = segment.target_duration,
                            "segment cut without a keyframe at TARGETDURATION + 0.5 s"
                        );
                    }
                    let slid_out = self.playlist.push(&segment);
                    self.playlist.set_preload_hint(self.segmenter.open_part());
                    let text = Bytes::from(self.playlist.render());
                    let delta = self
                        .low_latency
                        .then(|| Bytes::from(self.playlist.render_delta()));
                    let duration = self.playlist.duration();
                    let first_frame = segment.program_date_time.0;
                    self.window
                        .publish(segment, slid_out, duration, text, delta, now);
                    let listed = UnixMillis::from_system_time(SystemTime::now()).0;
                    self.latency
                        .observe(listed.saturating_sub(first_frame) as f64 / 1000.0);
                }
                HlsEvent::Part(part) => {
                    self.playlist.push_part(&part);
                    self.playlist.set_preload_hint(self.segmenter.open_part());
                    let text = Bytes::from(self.playlist.render());
                    let delta = Bytes::from(self.playlist.render_delta());
                    self.window
                        .publish_part(part.segment, part.index, part.bytes, text, delta);
                }
                HlsEvent::Init(init) => {
                    tracing::info!(init = %init.name, codecs = ?init.codecs, "fMP4 init segment");
                    self.window.publish_init(init.name, init.bytes);
                }
                HlsEvent::Omitted { track, codec } => {
                    let format = self.segmenter.format().name();
                    tracing::warn!(track = track.0, %codec, "{format} cannot carry this codec; track omitted");
                    self.window.warn(format!(
                        "hls: track {} ({codec}) omitted: {format} cannot carry {codec}",
                        track.0
                    ));
                }
                HlsEvent::Unwritable { track, error } => {
                    tracing::warn!(track = track.0, %error, "fMP4 writer refused a track");
                    self.window
                        .warn(format!("hls: track {}: not written: {error}", track.0));
                }
                HlsEvent::Rejected { track, error } => {
                    tracing::warn!(track = track.0, %error, "HLS muxer rejected a frame");
                    self.window
                        .warn(format!("hls: track {}: frames rejected: {error}", track.0));
                }
                other => tracing::debug!(?other, "HLS event ignored"),
            }
        }
    }
}

/// The wall time at which `frame` arrived: the wall time read at this wake-up, less how long
/// ago (on the monotonic clock) it arrived. A subscriber that starts from the GOP cache gets
/// frames that arrived up to a GOP ago; their program date times stay true.
fn arrival_wall(frame: &Frame, wall: SystemTime, mono: std::time::Instant) -> UnixMillis {
    let age = mono.saturating_duration_since(frame.arrival);
    UnixMillis::from_system_time(wall.checked_sub(age).unwrap_or(wall))
}

/// Sleeps until `at`, or forever without one (the `select!` arm is disabled then anyway).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The subscriber class in the hub's drop counters: `dash` for a packager that serves DASH
/// only, else `hls` (one packager feeds both; SPEC §Metrics classes).
/// The DASH S of `dash`, or why its settings are invalid (the key named).
fn dash_segment(code: &StreamCode, dash: &DashSettings) -> Result<Duration, PublishError> {
    let invalid = |field, reason| PublishError::InvalidSettings {
        code: code.clone(),
        field,
        reason,
    };
    let seconds = |value: f64, max: f64| value.is_finite() && value > 0.0 && value <= max;
    if !seconds(dash.segment_sec, MAX_SEGMENT.as_secs_f64()) {
        return Err(invalid(
            "publisher.dash.segment_sec",
            "must be > 0 and at most 60",
        ));
    }
    if dash.window == 0 {
        return Err(invalid("publisher.dash.window", "must be at least 1"));
    }
    if !seconds(dash.pairing_sec, 60.0) {
        return Err(invalid(
            "publisher.dash.pairing_sec",
            "must be > 0 and at most 60",
        ));
    }
    if !seconds(dash.track_loss_sec, 600.0) {
        return Err(invalid(
            "publisher.dash.track_loss_sec",
            "must be > 0 and at most 600",
        ));
    }
    if dash.queue_frames == 0 {
        return Err(invalid("publisher.dash.queue_frames", "must be at least 1"));
    }
    Ok(Duration::from_secs_f64(dash.segment_sec))
}

fn subscriber_class(settings: &HlsSettings) -> &'static str {
    if !settings.hls && settings.dash.is_some() {
        "dash"
    } else {
        "hls"
    }
}
/// The longest frames wait in the buffer for the packager between video keyframes: what an
/// audio-only stream's segment, or one cut without a keyframe, may wait to be published.
const WAKE_WITHIN: Duration = Duration::from_millis(500);
/// LL-HLS: the longest frames wait for the packager when no video frame wakes it (an
/// audio-only stream's parts).
const LL_WAKE_WITHIN: Duration = Duration::from_millis(20);
/// How long a retired variant's task may take to cut its last segment once its buffer is
/// deleted.
const RETIRE_DRAIN: Duration = Duration::from_secs(5);
/// Deliveries handled per wake-up before yielding to other tasks.
const BATCH: usize = 256;
/// The longest S accepted: a segment longer than this is no live stream.
pub(crate) const MAX_SEGMENT: Duration = Duration::from_secs(60);
