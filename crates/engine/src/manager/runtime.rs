//! The manager's read-outs for `GET /streams/{code}`: `runtime.inputs[]`, the switch history
//! and the failover state, built on request from the failover machine and each input's
//! counters (nothing here runs on the media path).

use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tributary_domain::StreamCode;
use tributary_domain::failover::{InputReport, InputStatus};
use tributary_domain::redact::mask_url;
use tributary_hub::PortHealth;
use tributary_ingest::{Worker, WorkerStats};
use tributary_media::MediaKind;
use tributary_mpegts::Carriage;

use super::{Manager, Slot};

/// The failover read-outs of a running stream, for `runtime`.
pub(crate) struct InputsRuntime {
    /// `active_input_priority`.
    pub(crate) active: Option<u32>,
    /// `override_input_priority`.
    pub(crate) pinned: Option<u32>,
    /// `exhausted`.
    pub(crate) exhausted: bool,
    /// `inputs[]`.
    pub(crate) inputs: Vec<Value>,
    /// `switches[]`, newest first.
    pub(crate) switches: Vec<Value>,
}

/// One input's counters for `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputMetrics {
    /// Its priority.
    pub(crate) priority: u32,
    /// Its kind's name (`rtmp`, `udp`, `push`, ...).
    pub(crate) protocol: &'static str,
    /// Payload bytes its port took in this run.
    pub(crate) bytes: u64,
    /// Frames its port took in this run.
    pub(crate) frames: u64,
    /// Active, or a connected standby.
    pub(crate) healthy: bool,
    /// TS continuity errors of its current worker.
    pub(crate) cc_errors: u64,
}

impl Manager {
    /// Every input's counters of a running stream (empty when it is not running): read from
    /// the ports' and workers' own counters, nothing counted for it on the media path.
    pub(crate) fn input_metrics(&self, code: &StreamCode) -> Vec<InputMetrics> {
        let Some(ctl) = self.ctl(code) else {
            return Vec::new();
        };
        let managed = ctl.lock();
        managed
            .failover
            .inputs()
            .filter_map(|report| {
                let slot = managed.slots.get(&report.priority)?;
                let health = slot.port.health();
                let healthy = report.status == InputStatus::Active
                    || (report.status == InputStatus::Idle && report.connected);
                Some(InputMetrics {
                    priority: report.priority,
                    protocol: slot.input.kind().name(),
                    bytes: health.bytes,
                    frames: health.frames,
                    healthy,
                    cc_errors: slot.worker.as_ref().map_or(0, |w| w.stats().cc_errors),
                })
            })
            .collect()
    }

    /// When the latest frame reached any input port of a running stream (the auto-publish
    /// reaper's idle clock); `None` when it is not running or nothing arrived yet.
    pub(crate) fn last_frame_at(&self, code: &StreamCode) -> Option<Instant> {
        let ctl = self.ctl(code)?;
        let managed = ctl.lock();
        managed
            .slots
            .values()
            .filter_map(|slot| slot.port.health().last_frame_at)
            .max()
    }

    /// The failover read-outs and `inputs[]` of a running stream.
    pub(crate) fn runtime(&self, code: &StreamCode) -> Option<InputsRuntime> {
        let ctl = self.ctl(code)?;
        let managed = ctl.lock();
        let now = Instant::now();
        let wall = Utc::now();
        let fo = &managed.failover;
        let inputs = fo
            .inputs()
            .filter_map(|report| {
                let slot = managed.slots.get(&report.priority)?;
                Some(input_json(&report, slot, now, wall))
            })
            .collect();
        let switches = fo
            .switches()
            .iter()
            .map(|switch| {
                let gap = managed
                    .gaps
                    .iter()
                    .find(|(at, to, _)| *at == switch.at && *to == switch.to)
                    .map(|(_, _, gap)| *gap);
                let mut entry = json!({
                    "at": wall_at(switch.at, now, wall),
                    "from": switch.from.map_or(-1, i64::from),
                    "to": switch.to,
                    "reason": switch.reason,
                    "detail": switch.detail,
                });
                if let Some(gap) = gap {
                    entry["gap_ms"] = json!(gap);
                }
                entry
            })
            .collect();
        Some(InputsRuntime {
            active: fo.active(),
            pinned: fo.override_priority(),
            exhausted: fo.exhausted(),
            inputs,
            switches,
        })
    }
}

/// A monotonic instant as wall time (RFC 3339, ms).
fn wall_at(instant: Instant, now: Instant, wall: DateTime<Utc>) -> String {
    let ago =
        chrono::Duration::from_std(now.saturating_duration_since(instant)).unwrap_or_default();
    (wall - ago).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One entry of `runtime.inputs[]`.
fn input_json(report: &InputReport<'_>, slot: &Slot, now: Instant, wall: DateTime<Utc>) -> Value {
    let health: PortHealth = slot.port.health();
    let errors: Vec<Value> = report
        .errors
        .iter()
        .map(|e| json!({"message": e.message, "at": wall_at(e.at, now, wall)}))
        .collect();
    let stats = slot.worker.as_ref().map(Worker::stats);
    let tracks: Vec<Value> = stats.as_ref().map(tracks_json).unwrap_or_default();
    let status = match report.status {
        InputStatus::Idle => "idle",
        InputStatus::Active => "active",
        InputStatus::Degraded => "degraded",
        InputStatus::Stopped => "stopped",
    };
    let mut entry = json!({
        "input_priority": report.priority,
        "url": mask_url(slot.input.url()),
        "kind": slot.input.kind().name(),
        "status": status,
        "standby": report.connected && report.status == InputStatus::Idle,
        "bitrate_kbps": slot.meter.kbps.round() as u64,
        "packet_loss": stats.as_ref().map_or(0, |s| s.cc_errors),
        "frames": health.frames,
        "tracks": tracks,
        "errors": errors,
    });
    if let Some(last) = health.last_frame_at {
        entry["last_packet_at"] = json!(wall_at(last, now, wall));
    }
    if let Some(degraded) = report.degraded {
        entry["degraded"] = json!({
            "reason": degraded.signal,
            "detail": degraded.detail,
            "since": wall_at(degraded.since, now, wall),
        });
    }
    if let Some(stopped) = report.stopped {
        entry["stopped"] = json!(stopped);
    }
    if let Some(push) = &slot.push {
        entry["publisher_connected"] = json!(push.live.load(Ordering::Acquire));
        entry["waiting_for_publisher"] = json!(report.waiting_for_publisher);
    }
    entry
}

/// `runtime.inputs[].tracks`: every elementary stream the demuxer announced, carried or not,
/// with what the bitstream says about the carried ones.
fn tracks_json(stats: &WorkerStats) -> Vec<Value> {
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
