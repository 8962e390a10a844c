//! The stream manager: every configured input of a running stream, its ingest worker and its
//! health (SPEC §Stream manager).
//!
//! This first cut selects the most preferred input (lowest priority value) at start and keeps
//! hot-standby inputs (UDP, push, `hot_standby: true`) connected beside it; it reports each
//! input's state, last packet, bitrate and errors under `runtime.inputs[]`. Health-driven
//! failover, failback and manual switching build on it (issue 6). Workers only report; the
//! manager alone chooses (STYLE.md §3).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tributary_domain::protocol::{DetectContext, InputKind, detect};
use tributary_domain::redact::mask_url;
use tributary_domain::{Input, Stream, StreamCode};
use tributary_hub::{Intake, Port, PortHealth, Priority, SessionReason};
use tributary_ingest::{IngestConfig, IngestContext, Worker};
use tributary_media::MediaKind;
use tributary_mpegts::Carriage;

use crate::buffers::Intakes;
use crate::lock;
use crate::services::{InputService, ServiceError};

/// How often the bitrate meters are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// The shortest window a bitrate sample covers (SPEC §API "Runtime object": ≥ 3 s, EWMA 0.5).
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// The [`InputService`]: one entry per running stream.
pub(crate) struct Manager {
    /// Where each running stream's intake is found (filled by the buffer service).
    intakes: Intakes,
    /// Settings every ingest worker starts with (the FFmpeg binary for non-TS files, ...).
    ingest: IngestConfig,
    /// The running streams' inputs.
    streams: Arc<Mutex<HashMap<StreamCode, Managed>>>,
    /// Whether the sampling task runs (started with the first stream, inside the runtime).
    sampler: Mutex<bool>,
}

/// One running stream's inputs.
struct Managed {
    /// The intake in front of the stream's ingest buffer.
    intake: Intake,
    /// Inputs by priority.
    inputs: BTreeMap<u32, Slot>,
    /// The selected input.
    active: Option<u32>,
    /// The stream's publish key (`stream_key`), for the listeners' publish check.
    stream_key: String,
}

/// One configured input.
struct Slot {
    /// The configuration it runs with.
    input: Input,
    /// Its kind, from the one URL classifier.
    kind: InputKind,
    /// Its entry into the intake.
    port: Port,
    /// Whether it stays connected while not selected.
    hot: bool,
    /// Its ingest worker, while connected (the active input and hot standbys).
    worker: Option<Worker>,
    /// Bytes per second over recent windows.
    meter: RateMeter,
    /// A push input's slot: whether a publisher is connected (one at a time).
    publisher: Arc<AtomicBool>,
}

/// Why a publisher gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotRefusal {
    /// The stream is not running.
    NotRunning,
    /// The stream has no push input.
    NoPushInput,
    /// Its push input already has a live publisher.
    Busy,
}

/// Held by a connected publisher; dropping it frees the push slot.
pub(crate) struct PublisherGuard {
    /// The slot's flag.
    live: Arc<AtomicBool>,
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Release);
    }
}

/// Bitrate over windows of at least [`RATE_WINDOW`], smoothed with EWMA α = 0.5.
#[derive(Debug, Default)]
struct RateMeter {
    /// Start of the current window: instant and byte count then.
    window: Option<(Instant, u64)>,
    /// The smoothed rate, kbit/s.
    kbps: f64,
}

impl RateMeter {
    fn sample(&mut self, now: Instant, bytes: u64) {
        let Some((since, base)) = self.window else {
            self.window = Some((now, bytes));
            return;
        };
        let elapsed = now.saturating_duration_since(since);
        if elapsed < RATE_WINDOW {
            return;
        }
        let kbps = bytes.saturating_sub(base) as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0;
        self.kbps = if self.kbps == 0.0 {
            kbps
        } else {
            0.5 * self.kbps + 0.5 * kbps
        };
        self.window = Some((now, bytes));
    }
}

impl Manager {
    pub(crate) fn new(intakes: Intakes, ingest: IngestConfig) -> Self {
        Self {
            intakes,
            ingest,
            streams: Arc::new(Mutex::new(HashMap::new())),
            sampler: Mutex::new(false),
        }
    }

    /// `runtime.active_input_priority` and `runtime.inputs[]` of a running stream.
    pub(crate) fn runtime(&self, code: &StreamCode) -> Option<(Option<u32>, Vec<Value>)> {
        let streams = lock(&self.streams);
        let managed = streams.get(code)?;
        let now = Instant::now();
        let wall = Utc::now();
        let inputs = managed
            .inputs
            .iter()
            .map(|(&priority, slot)| {
                input_json(priority, slot, managed.active == Some(priority), now, wall)
            })
            .collect();
        Some((managed.active, inputs))
    }

    /// The publish key of a running stream.
    pub(crate) fn stream_key(&self, code: &StreamCode) -> Option<String> {
        lock(&self.streams).get(code).map(|m| m.stream_key.clone())
    }

    /// Claims the push slot (the most preferred push input) of a running stream for a
    /// publisher: its port, and a guard that frees the slot when dropped.
    pub(crate) fn claim_publisher(
        &self,
        code: &StreamCode,
    ) -> Result<(Port, PublisherGuard), SlotRefusal> {
        let streams = lock(&self.streams);
        let managed = streams.get(code).ok_or(SlotRefusal::NotRunning)?;
        let slot = managed
            .inputs
            .values()
            .find(|slot| slot.kind == InputKind::Push)
            .ok_or(SlotRefusal::NoPushInput)?;
        if slot
            .publisher
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(SlotRefusal::Busy);
        }
        Ok((
            slot.port.clone(),
            PublisherGuard {
                live: Arc::clone(&slot.publisher),
            },
        ))
    }

    /// Starts the sampler once, inside the runtime the first stream starts in.
    fn ensure_sampler(&self) {
        let mut started = lock(&self.sampler);
        if *started {
            return;
        }
        *started = true;
        let streams = Arc::downgrade(&self.streams);
        tokio::spawn(sample_loop(streams));
    }

    fn open_slot(
        &self,
        code: &StreamCode,
        intake: &Intake,
        input: &Input,
    ) -> Result<Slot, ServiceError> {
        let kind = detect(
            &input.url,
            DetectContext {
                rtmp_port: None,
                own_code: Some(code),
            },
        )
        .map_err(|e| {
            ServiceError::Failed(format!(
                "stream {code}: inputs priority {}: url {e}",
                input.priority
            ))
        })?
        .kind();
        let hot = input.hot_standby.unwrap_or(kind.hot_by_default());
        let port = intake
            .add_port(Priority(input.priority), hot)
            .map_err(|e| ServiceError::Failed(format!("stream {code}: {e}")))?;
        Ok(Slot {
            input: input.clone(),
            kind,
            port,
            hot,
            worker: None,
            meter: RateMeter::default(),
            publisher: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Slot {
    /// Starts the worker if it is not running.
    fn connect(&mut self, code: &StreamCode, config: &IngestConfig) -> Result<(), ServiceError> {
        // A push input has no worker: the listener writes into its port while a publisher is
        // connected.
        if self.worker.is_some() || self.kind == InputKind::Push {
            return Ok(());
        }
        let ctx = IngestContext {
            code: code.clone(),
            priority: self.input.priority,
        };
        let worker = tributary_ingest::spawn_with(ctx, &self.input, self.port.clone(), config)
            .map_err(|e| {
                ServiceError::Failed(format!(
                    "stream {code}: input priority {} ({}): {e}",
                    self.input.priority,
                    mask_url(&self.input.url)
                ))
            })?;
        self.worker = Some(worker);
        Ok(())
    }
}

impl InputService for Manager {
    fn register(&self, stream: &Stream) -> Result<(), ServiceError> {
        let code = &stream.code;
        let intake = self
            .intakes
            .get(code)
            .ok_or_else(|| ServiceError::Failed(format!("stream {code}: no ingest buffer")))?;
        let mut inputs = BTreeMap::new();
        for input in &stream.inputs {
            let slot = self.open_slot(code, &intake, input)?;
            inputs.insert(input.priority, slot);
        }
        let active = inputs.keys().next().copied();
        let mut managed = Managed {
            intake,
            inputs,
            active,
            stream_key: stream.stream_key.clone(),
        };
        if let Some(active) = active {
            managed
                .intake
                .select(Priority(active), SessionReason::Fresh)
                .map_err(|e| ServiceError::Failed(format!("stream {code}: {e}")))?;
        }
        for (&priority, slot) in &mut managed.inputs {
            if slot.hot || Some(priority) == active {
                // A failure here drops `managed`, which stops the workers already started.
                slot.connect(code, &self.ingest)?;
            }
        }
        tracing::info!(stream = %code, inputs = managed.inputs.len(), active = ?active,
            "inputs registered");
        lock(&self.streams).insert(code.clone(), managed);
        self.ensure_sampler();
        Ok(())
    }

    fn update_inputs(&self, _old: &Stream, new: &Stream) -> Result<(), ServiceError> {
        let code = &new.code;
        let mut streams = lock(&self.streams);
        let Some(managed) = streams.get_mut(code) else {
            return Err(ServiceError::Failed(format!(
                "stream {code}: not registered"
            )));
        };
        let wanted: BTreeMap<u32, &Input> = new.inputs.iter().map(|i| (i.priority, i)).collect();
        // Removed or changed inputs lose their port and worker.
        let stale: Vec<u32> = managed
            .inputs
            .iter()
            .filter(|(p, slot)| wanted.get(p).is_none_or(|i| i.settings_differ(&slot.input)))
            .map(|(p, _)| *p)
            .collect();
        for priority in stale {
            managed.inputs.remove(&priority);
            managed.intake.remove_port(Priority(priority));
        }
        for (&priority, input) in &wanted {
            if managed.inputs.contains_key(&priority) {
                // Same settings: keep the connection; take the non-reconnecting fields.
                if let Some(slot) = managed.inputs.get_mut(&priority) {
                    slot.input = (*input).clone();
                }
                continue;
            }
            let slot = self.open_slot(code, &managed.intake, input)?;
            managed.inputs.insert(priority, slot);
        }
        let best = managed.inputs.keys().next().copied();
        let reselect = managed.active != best
            || managed
                .active
                .is_some_and(|a| managed.intake.selected() != Some(Priority(a)));
        if reselect {
            if let Some(best) = best {
                managed
                    .intake
                    .select(Priority(best), SessionReason::Failover)
                    .map_err(|e| ServiceError::Failed(format!("stream {code}: {e}")))?;
            }
            tracing::info!(stream = %code, from = ?managed.active, to = ?best, "input selection changed");
            managed.active = best;
        }
        for (&priority, slot) in &mut managed.inputs {
            if slot.hot || Some(priority) == managed.active {
                slot.connect(code, &self.ingest)?;
            } else {
                slot.worker = None;
            }
        }
        Ok(())
    }

    fn unregister(&self, code: &StreamCode) {
        let removed = lock(&self.streams).remove(code);
        if let Some(managed) = removed {
            for priority in managed.inputs.keys() {
                managed.intake.remove_port(Priority(*priority));
            }
            tracing::info!(stream = %code, "inputs unregistered");
            // Dropping the slots stops their workers.
        }
    }
}

/// Samples every input's byte counter for the bitrate meters until the manager is gone.
async fn sample_loop(streams: Weak<Mutex<HashMap<StreamCode, Managed>>>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(streams) = streams.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut streams = lock(&streams);
        for managed in streams.values_mut() {
            for slot in managed.inputs.values_mut() {
                let bytes = slot.port.health().bytes;
                slot.meter.sample(now, bytes);
            }
        }
    }
}

/// One entry of `runtime.inputs[]`.
fn input_json(
    priority: u32,
    slot: &Slot,
    active: bool,
    now: Instant,
    wall: DateTime<Utc>,
) -> Value {
    let health: PortHealth = slot.port.health();
    let at = |instant: Instant| {
        let ago =
            chrono::Duration::from_std(now.saturating_duration_since(instant)).unwrap_or_default();
        (wall - ago).to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    let errors: Vec<Value> = health
        .recent_errors
        .iter()
        .rev()
        .map(|e| json!({"message": e.message, "at": at(e.at)}))
        .collect();
    let stats = slot.worker.as_ref().map(Worker::stats);
    let tracks: Vec<Value> = stats.as_ref().map(tracks_json).unwrap_or_default();
    let publisher = slot.publisher.load(Ordering::Acquire);
    let status = if active && (slot.kind != InputKind::Push || publisher) {
        "active"
    } else if slot.worker.is_some() || !slot.hot || slot.kind == InputKind::Push {
        "idle"
    } else {
        "stopped"
    };
    let mut entry = json!({
        "input_priority": priority,
        "url": mask_url(&slot.input.url),
        "kind": slot.kind.name(),
        "status": status,
        "standby": slot.hot && !active,
        "bitrate_kbps": slot.meter.kbps.round() as u64,
        "packet_loss": stats.as_ref().map_or(0, |s| s.cc_errors),
        "frames": health.frames,
        "tracks": tracks,
        "errors": errors,
    });
    if let Some(last) = health.last_frame_at {
        entry["last_packet_at"] = json!(at(last));
    }
    if slot.kind == InputKind::Push {
        entry["publisher_connected"] = json!(publisher);
    }
    entry
}

/// `runtime.inputs[].tracks`: every elementary stream the demuxer announced, carried or not,
/// with what the bitstream says about the carried ones.
fn tracks_json(stats: &tributary_ingest::WorkerStats) -> Vec<Value> {
    stats
        .tracks
        .iter()
        .map(|t| {
            let (codec, carried, reason) = match t.carriage {
                Carriage::Carried(codec) => (Some(codec), true, None),
                Carriage::NotCarried(why) => (None, false, Some(why.to_string())),
            };
            let kind = match codec.map(|c| c.kind()) {
                Some(MediaKind::Video) => "video",
                Some(MediaKind::Audio) => "audio",
                Some(MediaKind::Data) | None => "data",
            };
            let mut track = json!({
                "pid": t.track.0,
                "kind": kind,
                "codec": codec.map_or("unknown", |c| c.name()),
                "carried": carried,
            });
            if let Some(reason) = reason {
                track["reason"] = json!(reason);
            }
            if let Some((_, info)) = stats.details.iter().find(|(id, _)| *id == t.track) {
                for (key, value) in [
                    ("width", info.width.map(u64::from)),
                    ("height", info.height.map(u64::from)),
                    ("sample_rate", info.sample_rate.map(u64::from)),
                    ("channels", info.channels.map(u64::from)),
                ] {
                    if let Some(value) = value {
                        track[key] = json!(value);
                    }
                }
                if let Some(codecs) = &info.codec_string {
                    track["codec_string"] = json!(codecs);
                }
            }
            track
        })
        .collect()
}
