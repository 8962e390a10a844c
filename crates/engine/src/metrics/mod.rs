//! Prometheus metrics for `GET /metrics` (SPEC §Metrics).
//!
//! # Read at scrape time
//!
//! Almost every series is read when Prometheus asks, from counters the media path keeps
//! anyway: hub buffers' per-class drop counters, intake ports' byte and frame counts, ingest
//! workers' continuity-error counts, the transcoder's status watches, the HLS windows' segment
//! counts, push targets' states, the play caps' seats and the coordinator's stream states. A
//! frame costs nothing more for metrics: no lock, no allocation, not even an extra atomic add.
//! The few series that count occurrences nothing else counts (failovers and their output gap,
//! ingest errors, refused plays and publishes) are tallied here by [`Metrics`], under one
//! short mutex, at the rate of those occurrences (a switch, a refused connection), never per
//! frame; the `sessions_*` series come from the session table's own per-stream tallies.
//!
//! Because a scrape walks what exists, **a stream's series disappear with the stream**: its
//! running-state series (inputs, buffers, transcoder, outputs) go when it stops; its status
//! and tallies go when its record is deleted ([`Metrics::forget`] on delete, and each scrape
//! keeps only the tallies of stored streams). **No label holds a secret**: push targets are
//! labelled by their redacted URL, inputs by priority and protocol, never by URL; a play
//! refused for a name that is no running stream is counted under `stream_code=""`, so a
//! client cannot mint series by asking for made-up names.
//!
//! # Why `prometheus-client`
//!
//! The official Rust client of the Prometheus project (`prometheus-client`, Apache-2.0 OR MIT)
//! has a [`Collector`] trait: a collector is called at each scrape and encodes whatever it
//! finds then, with the crate doing the exposition format (escaping, `_total` suffixes,
//! cumulative histogram buckets, the Prometheus 0.0.4 text encoder). That is exactly the
//! read-at-scrape model above. The `metrics` facade with its Prometheus exporter is built the
//! other way round: instrumented code records into a global recorder keyed by name and labels
//! (a lookup, or a handle to keep, per increment), series live as long as the recorder keeps
//! them (removing one stream's series needs an idle timeout or the whole registry), and every
//! counter the hub and the workers already keep would have to be recorded a second time on
//! the media path.
//!
//! Process metrics (`process_*`, unprefixed, as every Prometheus client names them) come from
//! `/proc/self` ([`process`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tributary_domain::StreamCode;
use tributary_domain::event::StreamStatus;
use tributary_hub::BufferId;

use crate::sessions::CloseReason;
use crate::{CoordError, EngineHandle, lock};

mod process;

/// The `Content-Type` of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of `failover_gap_seconds` (SPEC §Metrics).
const GAP_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

/// What the engine counts itself: occurrences no other component keeps a counter of. One
/// short lock per occurrence (a failover, a refused connection); nothing per frame.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    tallies: Mutex<Tallies>,
}

/// Why an input worker reported an error (`ingestor_errors_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IngestError {
    /// A connection that had opened was lost; the worker reconnects.
    Reconnect,
    /// The input was active and the stream failed over away from it.
    Failover,
    /// The source could not be opened.
    Open,
}

/// Why a play was refused (`playback_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PlayRefusal {
    /// A play cap (per stream or in total) was reached.
    Cap,
    /// Not authorised: a signed play URL was missing, wrong or expired.
    Auth,
    /// No such running stream, or the protocol is off for it.
    NotFound,
}

/// Why a publisher was refused (`publish_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PublishRefusal {
    /// No stream or push input takes this name.
    Unknown,
    /// The push input already has a live publisher.
    Busy,
    /// Missing or wrong key.
    Auth,
    /// The address is blocked after repeated failures.
    Limit,
}

#[derive(Debug, Default)]
struct Tallies {
    /// Per stored stream.
    streams: HashMap<StreamCode, StreamTally>,
    /// Plays refused for names that are no running stream, by (proto, reason).
    unknown_plays: BTreeMap<(&'static str, PlayRefusal), u64>,
    /// Refused publishers, by (proto, reason): no stream label (SPEC §Metrics).
    publishes: BTreeMap<(&'static str, PublishRefusal), u64>,
}

#[derive(Debug, Default)]
struct StreamTally {
    /// `manager_failovers_total`, by reason.
    failovers: BTreeMap<&'static str, u64>,
    /// `failover_gap_seconds`, by reason.
    gaps: BTreeMap<&'static str, Histogram>,
    /// `ingestor_errors_total`, by reason.
    ingest_errors: BTreeMap<IngestError, u64>,
    /// `playback_rejected_total`, by (proto, reason).
    plays: BTreeMap<(&'static str, PlayRefusal), u64>,
}

/// A fixed-bucket histogram: counts per bucket (not cumulative), the sum and the count.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    buckets: [u64; GAP_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// A switch of `code`'s active input away from another one, for `reason`, with the
    /// output gap it measured (`None`: superseded before it committed).
    pub(crate) fn failover(&self, code: &StreamCode, reason: &'static str, gap: Option<Duration>) {
        let mut tallies = lock(&self.tallies);
        let stream = tallies.streams.entry(code.clone()).or_default();
        *stream.failovers.entry(reason).or_default() += 1;
        if let Some(gap) = gap {
            stream
                .gaps
                .entry(reason)
                .or_default()
                .observe(gap.as_secs_f64());
        }
    }

    /// An input of `code` reported an error.
    pub(crate) fn ingest_error(&self, code: &StreamCode, why: IngestError) {
        let mut tallies = lock(&self.tallies);
        let stream = tallies.streams.entry(code.clone()).or_default();
        *stream.ingest_errors.entry(why).or_default() += 1;
    }

    /// A play over `proto` was refused; `code` is `None` when the name is no running stream.
    pub(crate) fn play_refused(
        &self,
        code: Option<&StreamCode>,
        proto: &'static str,
        why: PlayRefusal,
    ) {
        let mut tallies = lock(&self.tallies);
        let counts = match code {
            Some(code) => &mut tallies.streams.entry(code.clone()).or_default().plays,
            None => &mut tallies.unknown_plays,
        };
        *counts.entry((proto, why)).or_default() += 1;
    }

    /// A publisher over `proto` was refused.
    pub(crate) fn publish_refused(&self, proto: &'static str, why: PublishRefusal) {
        *lock(&self.tallies)
            .publishes
            .entry((proto, why))
            .or_default() += 1;
    }

    /// Drops every tally of `code` (its record was deleted).
    pub(crate) fn forget(&self, code: &StreamCode) {
        lock(&self.tallies).streams.remove(code);
    }

    /// Keeps only the tallies of `stored` streams.
    fn retain(&self, stored: &HashSet<&StreamCode>) {
        lock(&self.tallies)
            .streams
            .retain(|code, _| stored.contains(code));
    }

    /// Adds the tallied families to `out`.
    fn expose(&self, out: &mut Exposition) {
        let tallies = lock(&self.tallies);
        let mut codes: Vec<&StreamCode> = tallies.streams.keys().collect();
        codes.sort();
        for code in codes.iter().copied() {
            let stream = &tallies.streams[code];
            for (reason, count) in &stream.failovers {
                out.counter(
                    FAILOVERS,
                    labels([("stream_code", code.as_str()), ("reason", reason)]),
                    *count,
                );
            }
            for (reason, histogram) in &stream.gaps {
                out.push(
                    FAILOVER_GAP,
                    labels([("stream_code", code.as_str()), ("reason", reason)]),
                    histogram.value(),
                );
            }
            for (why, count) in &stream.ingest_errors {
                let reason = match why {
                    IngestError::Reconnect => "reconnect",
                    IngestError::Failover => "failover",
                    IngestError::Open => "open",
                };
                out.counter(
                    INGEST_ERRORS,
                    labels([("stream_code", code.as_str()), ("reason", reason)]),
                    *count,
                );
            }
        }
        for code in codes.iter().copied() {
            for ((proto, why), count) in &tallies.streams[code].plays {
                out.counter(
                    PLAY_REJECTED,
                    labels([
                        ("stream_code", code.as_str()),
                        ("proto", proto),
                        ("reason", why.name()),
                    ]),
                    *count,
                );
            }
        }
        for ((proto, why), count) in &tallies.unknown_plays {
            out.counter(
                PLAY_REJECTED,
                labels([
                    ("stream_code", ""),
                    ("proto", proto),
                    ("reason", why.name()),
                ]),
                *count,
            );
        }
        for ((proto, why), count) in &tallies.publishes {
            let reason = match why {
                PublishRefusal::Unknown => "unknown",
                PublishRefusal::Busy => "busy",
                PublishRefusal::Auth => "auth",
                PublishRefusal::Limit => "limit",
            };
            out.counter(
                PUBLISH_REJECTED,
                labels([("proto", proto), ("reason", reason)]),
                *count,
            );
        }
    }
}

impl PlayRefusal {
    fn name(self) -> &'static str {
        match self {
            Self::Cap => "cap",
            Self::Auth => "auth",
            Self::NotFound => "not_found",
        }
    }
}

impl Histogram {
    /// Its sample for the exposition.
    fn value(&self) -> Value {
        Value::Histogram {
            bounds: &GAP_BUCKETS,
            counts: self.buckets.to_vec(),
            sum: self.sum,
            count: self.count,
        }
    }

    fn observe(&mut self, value: f64) {
        if let Some(i) = GAP_BUCKETS.iter().position(|&bound| value <= bound) {
            self.buckets[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

impl EngineHandle {
    /// The exposition for `GET /metrics`: every series of SPEC §Metrics whose feature exists,
    /// read now, plus the process metrics. Fails only when the store cannot list streams.
    pub async fn metrics(&self) -> Result<String, CoordError> {
        let stored = self.list_streams().await?;
        let mut out = Exposition::default();
        let shared = &self.shared;
        let media = &shared.media;
        let codes: Vec<&StreamCode> = stored.iter().map(|r| &r.stream.code).collect();
        media.metrics.retain(&codes.iter().copied().collect());

        for code in &codes {
            let snap = shared.coordinator.snapshot(code);
            let status = match snap.status {
                StreamStatus::Stopped => 0,
                StreamStatus::Active => 1,
                StreamStatus::Degraded => 2,
            };
            out.gauge(STATUS, labels([("stream_code", code.as_str())]), status);
            if let (true, Some(started)) = (snap.running, snap.started_at) {
                out.push(
                    START_TIME,
                    labels([("stream_code", code.as_str())]),
                    Value::GaugeF(started.timestamp_millis() as f64 / 1000.0),
                );
            }
        }
        let running: Vec<&StreamCode> = codes
            .iter()
            .copied()
            .filter(|code| shared.coordinator.is_running(code))
            .collect();
        for code in &running {
            let c = code.as_str();
            let inputs = media.manager.input_metrics(code);
            let mut by_protocol: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
            for input in &inputs {
                let entry = by_protocol.entry(input.protocol).or_default();
                entry.0 += input.bytes;
                entry.1 += input.frames;
                let priority = input.priority.to_string();
                out.gauge(
                    INPUT_HEALTH,
                    labels([("stream_code", c), ("input_priority", &priority)]),
                    i64::from(input.healthy),
                );
                out.counter(
                    CC_ERRORS,
                    labels([("stream_code", c), ("input_priority", &priority)]),
                    input.cc_errors,
                );
            }
            for (protocol, (bytes, frames)) in by_protocol {
                out.counter(
                    INGEST_BYTES,
                    labels([("stream_code", c), ("protocol", protocol)]),
                    bytes,
                );
                out.counter(
                    INGEST_PACKETS,
                    labels([("stream_code", c), ("protocol", protocol)]),
                    frames,
                );
            }

            if let Some(rungs) = media.transcoders.metrics(code) {
                let workers: HashSet<u32> = rungs.iter().filter_map(|r| r.pid).collect();
                out.gauge(
                    TRANSCODER_WORKERS,
                    labels([("stream_code", c)]),
                    workers.len() as i64,
                );
                out.gauge(
                    TRANSCODER_QUALITIES,
                    labels([("stream_code", c)]),
                    rungs.len() as i64,
                );
                for rung in &rungs {
                    let l = || labels([("stream_code", c), ("profile", rung.profile.as_str())]);
                    out.counter(TRANSCODER_RESTARTS, l(), rung.restart_count);
                    if let Some(speed) = rung.speed {
                        out.push(TRANSCODER_SPEED, l(), Value::GaugeF(speed));
                    }
                    out.push(TRANSCODER_FPS, l(), Value::GaugeF(rung.fps));
                    out.counter(TRANSCODER_DROPPED, l(), rung.dropped_frames);
                    out.counter(TRANSCODER_DUP, l(), rung.dup_frames);
                    if let Some(cpu) = rung.cpu_seconds {
                        out.push(TRANSCODER_CPU, l(), Value::CounterF(cpu));
                    }
                    if let Some(rss) = rung.rss_bytes {
                        out.gauge(TRANSCODER_RSS, l(), rss as i64);
                    }
                }
            }

            let outputs = media.outputs.metrics(code);
            let formats = [
                ("hls", outputs.hls_segments),
                ("dash", outputs.dash_segments),
            ];
            for (format, counts) in formats {
                for (rung, segments) in counts {
                    let profile = profile_name(rung);
                    out.counter(
                        SEGMENTS,
                        labels([
                            ("stream_code", c),
                            ("format", format),
                            ("profile", &profile),
                        ]),
                        segments,
                    );
                }
            }
            for (rung, dropped) in outputs.dash_dropped {
                let profile = profile_name(rung);
                out.counter(
                    DASH_QUEUE_DROPPED,
                    labels([("stream_code", c), ("profile", &profile)]),
                    dropped,
                );
            }
            for (rung, h) in outputs.latency {
                let profile = profile_name(rung);
                out.push(
                    INGEST_TO_PLAYLIST,
                    labels([("stream_code", c), ("format", "hls"), ("profile", &profile)]),
                    Value::Histogram {
                        bounds: &tributary_publish::LATENCY_BUCKETS,
                        counts: h.buckets.to_vec(),
                        sum: h.sum,
                        count: h.count,
                    },
                );
            }
            for (url, state) in outputs.pushes {
                out.gauge(
                    PUSH_STATE,
                    labels([("stream_code", c), ("dest_url", &url)]),
                    state,
                );
            }
        }

        let stored_codes: HashSet<&StreamCode> = codes.iter().copied().collect();
        for (code, segments, bytes, dropped) in media.dvr.metrics() {
            if !stored_codes.contains(&code) {
                continue;
            }
            let l = || labels([("stream_code", code.as_str())]);
            out.counter(DVR_SEGMENTS, l(), segments);
            out.counter(DVR_BYTES, l(), bytes);
            out.counter(DVR_DROPPED, l(), dropped);
            out.gauge(DVR_ACTIVE, l(), 1);
        }
        for id in media.hub.ids() {
            let (code, buffer) = match &id {
                BufferId::Stream(code) => (code, "main".to_owned()),
                BufferId::Raw(code) => (code, "raw".to_owned()),
                BufferId::Rendition(code, rung) => {
                    (code, format!("track_{}", u32::from(*rung) + 1))
                }
            };
            if !stored_codes.contains(code) {
                continue;
            }
            let Some(stats) = media.hub.stats(&id) else {
                continue;
            };
            for class in stats.drops {
                out.counter(
                    BUFFER_DROPS,
                    labels([
                        ("stream_code", code.as_str()),
                        ("buffer", &buffer),
                        ("subscriber", class.class),
                    ]),
                    class.dropped,
                );
            }
        }

        for (code, proto, plays) in media.caps.plays_by_proto() {
            if stored_codes.contains(&code) {
                out.gauge(
                    PLAY_CONNECTIONS,
                    labels([("stream_code", code.as_str()), ("proto", proto)]),
                    plays as i64,
                );
            }
        }
        let mut tallies = media.sessions.tallies(|code| stored_codes.contains(code));
        tallies.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        for (code, proto, tally) in tallies {
            let (c, p) = (code.as_str(), proto.name());
            out.gauge(
                SESSIONS_ACTIVE,
                labels([("stream_code", c), ("proto", p)]),
                tally.active as i64,
            );
            out.counter(
                SESSIONS_OPENED,
                labels([("stream_code", c), ("proto", p)]),
                tally.opened,
            );
            for reason in CloseReason::ALL {
                let closed = tally.closed[reason.index()];
                if closed > 0 {
                    out.counter(
                        SESSIONS_CLOSED,
                        labels([("stream_code", c), ("proto", p), ("reason", reason.name())]),
                        closed,
                    );
                }
            }
        }
        media.metrics.expose(&mut out);
        for hook in shared.hooks.metrics() {
            let kind = hook.kind.to_string();
            for (outcome, count) in [("delivered", hook.delivered), ("failed", hook.failed)] {
                out.counter(
                    HOOK_DELIVERIES,
                    labels([
                        ("hook_id", &hook.id),
                        ("hook_type", &kind),
                        ("outcome", outcome),
                    ]),
                    count,
                );
            }
            out.counter(HOOK_DROPPED, labels([("hook_id", &hook.id)]), hook.dropped);
            out.gauge(
                HOOK_QUEUE,
                labels([("hook_id", &hook.id)]),
                hook.depth as i64,
            );
        }
        let blocking = media.outputs.hls_registry().blocking_requests();
        for (outcome, count) in [
            ("answered", blocking.answered),
            ("timeout", blocking.timed_out),
            ("busy", blocking.busy),
            ("bad_request", blocking.bad_request),
        ] {
            out.counter(HLS_BLOCKING, labels([("outcome", outcome)]), count);
        }
        out.counter(
            HTTP_SENDFILE,
            Labels::new(),
            tributary_net::pages::sent_bytes(),
        );
        out.gauge(
            SEALED_SEGMENTS,
            Labels::new(),
            i64::try_from(tributary_net::pages::held()).unwrap_or(i64::MAX),
        );
        for (subscriber, dropped) in shared.events.drops() {
            out.counter(
                EVENTS_DROPPED,
                labels([("subscriber", subscriber)]),
                dropped,
            );
        }
        out.sort();
        Ok(out.encode())
    }
}

/// The families of one scrape, in the order they are written.
#[derive(Debug, Default)]
struct Exposition {
    families: Vec<Family>,
}

/// A metric family: its descriptor and its samples.
#[derive(Debug)]
struct Family {
    spec: Spec,
    samples: Vec<(Labels, Value)>,
}

/// Every family the server can expose, as `(name, type)` spelt as in the exposition
/// (`tributary_…`, counters ending in `_total`; a histogram's series add `_bucket`, `_sum` and
/// `_count`), process metrics included. A scrape shows only families that have series at the
/// time; this is the whole catalogue, which the dashboard and alert rules under `deploy/` are
/// checked against.
pub fn families() -> Vec<(String, String)> {
    let catalogue = Exposition {
        families: FAMILIES
            .iter()
            .map(|&spec| Family {
                spec,
                samples: Vec::new(),
            })
            .collect(),
    };
    catalogue
        .encode()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

/// A family's name (without `tributary_`; counters without `_total`, which the encoder adds),
/// help and type.
#[derive(Debug, Clone, Copy)]
struct Spec {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
}

/// A sample's labels, in order.
type Labels = Vec<(&'static str, String)>;

/// A sample's value; its variant matches its family's type.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Counter(u64),
    CounterF(f64),
    Gauge(i64),
    GaugeF(f64),
    /// Counts per bucket of `bounds` (not cumulative), the sum and the count.
    Histogram {
        bounds: &'static [f64],
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

impl Exposition {
    fn counter(&mut self, spec: Spec, labels: Labels, value: u64) {
        self.push(spec, labels, Value::Counter(value));
    }

    fn gauge(&mut self, spec: Spec, labels: Labels, value: i64) {
        self.push(spec, labels, Value::Gauge(value));
    }

    fn push(&mut self, spec: Spec, labels: Labels, value: Value) {
        match self.families.iter_mut().find(|f| f.spec.name == spec.name) {
            Some(family) => family.samples.push((labels, value)),
            None => self.families.push(Family {
                spec,
                samples: vec![(labels, value)],
            }),
        }
    }

    /// Families by name, so a scrape reads the same whatever order streams were walked in.
    fn sort(&mut self) {
        self.families.sort_by_key(|f| f.spec.name);
    }

    /// The text exposition: these families under `tributary_`, then the process metrics.
    fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(process::Process));
        registry
            .sub_registry_with_prefix("tributary")
            .register_collector(Box::new(self));
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a family.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        {
            tracing::error!(%error, "metrics exposition failed");
        }
        text
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        for family in &self.families {
            let spec = family.spec;
            let mut metric = encoder.encode_descriptor(spec.name, spec.help, None, spec.kind)?;
            for (labels, value) in &family.samples {
                let mut sample = metric.encode_family(labels)?;
                match value {
                    Value::Counter(v) => sample.encode_counter::<NoLabelSet, _, u64>(v, None)?,
                    Value::CounterF(v) => sample.encode_counter::<NoLabelSet, _, f64>(v, None)?,
                    Value::Gauge(v) => sample.encode_gauge(v)?,
                    Value::GaugeF(v) => sample.encode_gauge(v)?,
                    Value::Histogram {
                        bounds,
                        counts,
                        sum,
                        count,
                    } => {
                        let buckets: Vec<(f64, u64)> =
                            bounds.iter().copied().zip(counts.iter().copied()).collect();
                        sample.encode_histogram::<NoLabelSet>(*sum, *count, &buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The `profile` label of a packager: `main` for a stream's only one, else its rung's track.
fn profile_name(rung: Option<u16>) -> String {
    rung.map_or_else(
        || "main".to_owned(),
        |r| format!("track_{}", u32::from(r) + 1),
    )
}

/// Labels from `(name, value)` pairs.
fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.into_iter().map(|(k, v)| (k, v.to_owned())).collect()
}

const fn counter(name: &'static str, help: &'static str) -> Spec {
    Spec {
        name,
        help,
        kind: MetricType::Counter,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Spec {
    Spec {
        name,
        help,
        kind: MetricType::Gauge,
    }
}

const STATUS: Spec = gauge(
    "stream_status",
    "Stream status: 0 stopped, 1 active, 2 degraded.",
);
const START_TIME: Spec = gauge(
    "stream_start_time_seconds",
    "When the running stream's current run started, Unix seconds.",
);
const INGEST_BYTES: Spec = counter(
    "ingestor_bytes",
    "Payload bytes the stream's inputs delivered in this run, by input protocol.",
);
const INGEST_PACKETS: Spec = counter(
    "ingestor_packets",
    "Frames (access units) the stream's inputs delivered in this run, by input protocol.",
);
const INGEST_ERRORS: Spec = counter(
    "ingestor_errors",
    "Input errors: reconnect (a connection lost), open (a source that did not open), failover (an active input failed over).",
);
const INPUT_HEALTH: Spec = gauge(
    "manager_input_health",
    "1 while the input delivers (active, or a connected standby), else 0.",
);
const CC_ERRORS: Spec = counter(
    "input_cc_errors",
    "MPEG-TS continuity-counter errors of the input's current worker.",
);
const FAILOVERS: Spec = counter(
    "manager_failovers",
    "Switches of the active input away from another input, by reason.",
);
const FAILOVER_GAP: Spec = Spec {
    name: "failover_gap_seconds",
    help: "Output media gap at each committed switch: from the previous input's last frame to the new input's first.",
    kind: MetricType::Histogram,
};
const TRANSCODER_WORKERS: Spec = gauge(
    "transcoder_workers_active",
    "FFmpeg processes running for the stream.",
);
const TRANSCODER_QUALITIES: Spec = gauge(
    "transcoder_qualities_active",
    "Rungs of the stream's ladder.",
);
const TRANSCODER_RESTARTS: Spec =
    counter("transcoder_restarts", "FFmpeg crashes of the rung's job.");
const TRANSCODER_SPEED: Spec = gauge(
    "transcoder_speed",
    "FFmpeg encoding speed, times real time.",
);
const TRANSCODER_FPS: Spec = gauge("transcoder_fps", "FFmpeg output frames per second.");
const TRANSCODER_DROPPED: Spec = counter(
    "transcoder_dropped_frames",
    "Frames FFmpeg dropped (current process).",
);
const TRANSCODER_DUP: Spec = counter(
    "transcoder_dup_frames",
    "Frames FFmpeg duplicated (current process).",
);
const TRANSCODER_CPU: Spec = counter(
    "transcoder_cpu_seconds",
    "CPU time of the rung's FFmpeg process.",
);
const TRANSCODER_RSS: Spec = gauge(
    "transcoder_rss_bytes",
    "Resident memory of the rung's FFmpeg process.",
);
const SEGMENTS: Spec = counter(
    "publisher_segments",
    "Segments the packager published in this run.",
);
const DASH_QUEUE_DROPPED: Spec = counter(
    "dash_queue_dropped_frames",
    "Frames the DASH packager dropped in this run because a queue (publisher.dash.queue_frames) was full.",
);
const INGEST_TO_PLAYLIST: Spec = Spec {
    name: "ingest_to_playlist_seconds",
    help: "From the ingest arrival of a segment's first frame to the playlist that lists it.",
    kind: MetricType::Histogram,
};
const PUSH_STATE: Spec = gauge(
    "publisher_push_state",
    "Push target state: 3 active, 2 starting, 1 reconnecting, 0 failed.",
);
const BUFFER_DROPS: Spec = counter(
    "buffer_drops",
    "Frames a hub buffer dropped for slow subscribers, by subscriber class.",
);
const PLAY_CONNECTIONS: Spec = gauge("playback_connections", "Open play connections.");
const PLAY_REJECTED: Spec = counter(
    "playback_rejected",
    "Refused plays: cap, auth, not_found (stream_code empty for names that are no running stream).",
);
const PUBLISH_REJECTED: Spec = counter(
    "publish_rejected",
    "Refused publishers: unknown, busy, auth, limit.",
);
const SESSIONS_ACTIVE: Spec = gauge(
    "sessions_active",
    "Play sessions open now: HTTP fingerprints and play connections.",
);
const SESSIONS_OPENED: Spec = counter("sessions_opened", "Play sessions opened since start.");
const SESSIONS_CLOSED: Spec = counter(
    "sessions_closed",
    "Play sessions closed since start: idle, client_gone, kicked, max_lifetime, shutdown.",
);
const HOOK_DELIVERIES: Spec = counter(
    "hooks_delivery",
    "Webhook delivery tries: a batch delivered, or a try that failed (each retry counts).",
);
const HOOK_DROPPED: Spec = counter(
    "hooks_events_dropped",
    "Events a hook's full queue dropped, oldest first.",
);
const HOOK_QUEUE: Spec = gauge(
    "hooks_batch_queue_depth",
    "Events waiting in the hook's queue, the batch being delivered included.",
);
const EVENTS_DROPPED: Spec = counter(
    "events_dropped",
    "Events a bus subscriber lost because its queue was full.",
);

const HTTP_SENDFILE: Spec = counter(
    "http_sendfile_bytes",
    "Bytes of HLS and DASH segments sent with sendfile from sealed memory files (no copy per \
     viewer).",
);
const SEALED_SEGMENTS: Spec = gauge(
    "sealed_segments",
    "Segments held in sealed memory files now (one open file each; past a quarter of the \
     open-file limit, segments are held in ordinary memory).",
);

const HLS_BLOCKING: Spec = counter(
    "hls_blocking_requests",
    "LL-HLS requests held for a segment or part (_HLS_msn, _HLS_part, preload hints), by \
     outcome: answered, timeout (503 after 3 x TARGETDURATION), busy (503, too many held), \
     bad_request (400, too far ahead).",
);
const DVR_SEGMENTS: Spec = counter("dvr_segments_written", "Recorded segments written to disk.");
const DVR_BYTES: Spec = counter("dvr_bytes_written", "Recorded bytes written to disk.");
const DVR_DROPPED: Spec = counter(
    "dvr_segments_dropped",
    "Recorded segments dropped because the disk fell behind (Tributary).",
);
const DVR_ACTIVE: Spec = gauge(
    "dvr_recording_active",
    "1 while the stream is being recorded.",
);

/// Every family [`Exposition`] can carry: what [`families`] lists. A new `Spec` goes here too
/// (a test counts them).
const FAMILIES: [Spec; 40] = [
    STATUS,
    START_TIME,
    INGEST_BYTES,
    INGEST_PACKETS,
    INGEST_ERRORS,
    INPUT_HEALTH,
    CC_ERRORS,
    FAILOVERS,
    FAILOVER_GAP,
    TRANSCODER_WORKERS,
    TRANSCODER_QUALITIES,
    TRANSCODER_RESTARTS,
    TRANSCODER_SPEED,
    TRANSCODER_FPS,
    TRANSCODER_DROPPED,
    TRANSCODER_DUP,
    TRANSCODER_CPU,
    TRANSCODER_RSS,
    SEGMENTS,
    DASH_QUEUE_DROPPED,
    INGEST_TO_PLAYLIST,
    PUSH_STATE,
    BUFFER_DROPS,
    PLAY_CONNECTIONS,
    PLAY_REJECTED,
    PUBLISH_REJECTED,
    SESSIONS_ACTIVE,
    SESSIONS_OPENED,
    SESSIONS_CLOSED,
    HOOK_DELIVERIES,
    HOOK_DROPPED,
    HOOK_QUEUE,
    EVENTS_DROPPED,
    HLS_BLOCKING,
    HTTP_SENDFILE,
    SEALED_SEGMENTS,
    DVR_SEGMENTS,
    DVR_BYTES,
    DVR_DROPPED,
    DVR_ACTIVE,
];

#[cfg(test)]
mod tests;
