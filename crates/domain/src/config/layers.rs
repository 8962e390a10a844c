//! The configuration layers (SPEC §Config "Layers") and the rules of a write through the API.
//!
//! The effective configuration is five JSON documents merged, lowest first: built-in defaults
//! < `tributary.toml` < the values saved through the API (the store layer) < `TRIBUTARY_*`
//! environment < command line. Keeping the layers apart, rather than only their merge, is what
//! lets `GET /config?explain=true` say where each value comes from, lets a write refuse a
//! field the environment pins (the process would ignore the saved value until the variable
//! goes, and the operator would not know why), and lets the store keep only the fields an
//! operator set: a later change of a default or of the file still shows through every field
//! the API never touched.
//!
//! Merging is JSON Merge Patch without deletion (RFC 7396 with `null` kept as a value):
//! objects merge key by key, anything else (arrays included) replaces. A `null` a layer sets
//! on an optional section is the section switched off (`hooks: null`); [`Layers::write`]
//! turns `null` on sections that are switches (`sessions`, `listeners.*`) into
//! `enabled: false` and refuses it where the server cannot run without the section.
//!
//! Everything here is pure, so the merge, pin and mask rules are tested exhaustively below;
//! the engine persists the new store layer and applies the changed paths.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::ServerConfig;
use crate::validate::{ErrorCode, FieldError, ValidationErrors, decode_error};

#[path = "layers_replace.rs"]
mod replace;

/// Where an effective value comes from (`GET /config?explain=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Built in.
    Default,
    /// `tributary.toml`.
    File,
    /// Saved through the API.
    Store,
    /// A `TRIBUTARY_*` variable or a command-line flag (the flags are the same values as the
    /// variables, SPEC §Config "Command line").
    Env,
}

/// The five layers, each a JSON object holding only what that layer sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Layers {
    defaults: Value,
    file: Value,
    store: Value,
    env: Value,
    cli: Value,
}

/// What a write through the API does, once it passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The new store layer, to persist.
    pub store: Value,
    /// The new effective configuration, validated.
    pub config: ServerConfig,
    /// The leaf paths whose effective value changed (`listeners.rtmp.port`), sorted.
    pub changed: Vec<String>,
}

/// Why a write through the API was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// It changes fields an environment variable or a command-line flag sets (409
    /// `PINNED_BY_ENV`); each field is named.
    #[error("pinned by the environment or the command line: {0}")]
    Pinned(ValidationErrors),
    /// The result is not a valid configuration, or the body changes what the API may not
    /// (422 with every failing field).
    #[error("{0}")]
    Invalid(ValidationErrors),
}

impl Layers {
    /// The layers without a store layer: defaults, then `file`, `env` and `cli` (each a JSON
    /// object; anything else counts as empty).
    pub fn new(file: Value, env: Value, cli: Value) -> Self {
        let defaults = serde_json::to_value(ServerConfig::default()).unwrap_or_default();
        Self {
            defaults,
            file: object_or_empty(file),
            store: empty(),
            env: object_or_empty(env),
            cli: object_or_empty(cli),
        }
    }

    /// These layers with `store` as the values saved through the API.
    pub fn with_store(mut self, store: Value) -> Self {
        self.store = object_or_empty(store);
        self
    }

    /// The store layer.
    pub fn store(&self) -> &Value {
        &self.store
    }

    /// Every layer merged, lowest first.
    pub fn merged(&self) -> Value {
        let mut merged = self.defaults.clone();
        for layer in [&self.file, &self.store, &self.env, &self.cli] {
            merge(&mut merged, layer);
        }
        merged
    }

    /// The effective configuration: the merge decoded strictly and validated; every failing
    /// field named.
    pub fn effective(&self) -> Result<ServerConfig, ValidationErrors> {
        decode(self.merged())
    }

    /// Where each leaf of the effective configuration comes from, keyed by its dotted path.
    pub fn sources(&self) -> BTreeMap<String, Source> {
        let mut leaves = Vec::new();
        flatten(&self.merged(), "", &mut leaves);
        leaves
            .into_iter()
            .map(|(path, _)| {
                let source = [
                    (&self.cli, Source::Env),
                    (&self.env, Source::Env),
                    (&self.store, Source::Store),
                    (&self.file, Source::File),
                ]
                .into_iter()
                .find(|(layer, _)| touches(layer, &path))
                .map_or(Source::Default, |(_, source)| source);
                (path, source)
            })
            .collect()
    }

    /// Whether an environment variable or a command-line flag sets `path`, a field inside it
    /// or a section around it.
    pub fn pinned(&self, path: &str) -> bool {
        touches(&self.env, path) || touches(&self.cli, path)
    }

    /// `POST /config`: `patch` merged over the effective configuration. Refused when it
    /// changes a pinned field ([`WriteError::Pinned`]) or a bootstrap-only one, disables the
    /// `server`, or leaves an invalid configuration ([`WriteError::Invalid`]). A `"****"`
    /// string keeps the value below it (a masked secret written back), and a field set to
    /// the value it already has is not stored when it is pinned or bootstrap-only.
    pub fn write(&self, patch: Value) -> Result<Write, WriteError> {
        let Value::Object(patch) = patch else {
            return Err(invalid("$", "the configuration must be a JSON object"));
        };
        let mut refused = Vec::new();
        let mut patch = Value::Object(disable_nulls(patch, &mut refused));
        drop_masked(&mut patch);
        let current = self.merged();
        let mut leaves = Vec::new();
        flatten(&patch, "", &mut leaves);
        let mut pinned = Vec::new();
        for (path, value) in leaves {
            let unchanged = lookup(&current, &path) == Some(&value);
            let bootstrap = BOOTSTRAP_ONLY
                .iter()
                .any(|b| path == *b || path.starts_with(&format!("{b}.")));
            if unchanged && (bootstrap || self.pinned(&path)) {
                remove(&mut patch, &path);
            } else if self.pinned(&path) {
                pinned.push(FieldError::new(
                    path.as_str(),
                    ErrorCode::InvalidField,
                    format!(
                        "set by the environment or the command line (TRIBUTARY_{}); \
                         change it there",
                        path.replace('.', "__").to_ascii_uppercase()
                    ),
                ));
            } else if bootstrap {
                refused.push(FieldError::new(
                    path.as_str(),
                    ErrorCode::InvalidField,
                    "bootstrap-only: set it in tributary.toml or the environment and restart",
                ));
            }
        }
        if !pinned.is_empty() {
            return Err(WriteError::Pinned(ValidationErrors(pinned)));
        }
        if !refused.is_empty() {
            return Err(WriteError::Invalid(ValidationErrors(refused)));
        }
        let mut store = self.store.clone();
        merge(&mut store, &patch);
        prune_empty(&mut store);
        let next = self.clone().with_store(store.clone());
        let merged = next.merged();
        let config = decode(merged.clone()).map_err(WriteError::Invalid)?;
        Ok(Write {
            store,
            config,
            changed: changed_paths(&current, &merged),
        })
    }
}

/// How a change of one configuration path takes effect on a running server (SPEC §Config
/// "Hot apply").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HotApply {
    /// Read where it is used, so it applies to the next request or decision.
    Now,
    /// The listener (`rtmp`, `srt`, `rtsp`, or `http` for `server.http_addr`) binds its new
    /// address, then the old one drains.
    Rebind(&'static str),
    /// This build cannot apply it without a restart yet: the write is refused (422
    /// `UNSUPPORTED`) rather than stored and silently not applied.
    NotYet,
}

/// How a change of the leaf `path` applies.
pub fn hot_apply(path: &str) -> HotApply {
    let under = |section: &str| path == section || path.starts_with(&format!("{section}."));
    if LIVE_SECTIONS.iter().any(|section| under(section)) && !under("security.unsafe_extra_args") {
        return HotApply::Now;
    }
    if path == "server.http_addr" {
        return HotApply::Rebind("http");
    }
    for listener in ["rtmp", "srt", "rtsp"] {
        if path == format!("listeners.{listener}")
            || path.starts_with(&format!("listeners.{listener}."))
        {
            return HotApply::Rebind(listener);
        }
    }
    if LIVE.contains(&path) {
        HotApply::Now
    } else {
        HotApply::NotYet
    }
}

/// `GET /config/defaults` (SPEC §API): the defaults as UI placeholders, in open-streamer's
/// groups; deterministic.
pub fn defaults_document() -> Value {
    use crate::ffmpeg::{Hw, VideoEncoder};
    use crate::hook;

    let config = ServerConfig::default();
    let mut encoders = Map::new();
    for codec in ["h264", "h265"] {
        let mut by_hw = Map::new();
        for hw in Hw::ALL {
            if let Ok(encoder) = VideoEncoder::select(codec, hw) {
                by_hw.insert(hw.name().to_owned(), Value::String(encoder.name));
            }
        }
        encoders.insert(codec.to_owned(), Value::Object(by_hw));
    }
    let listeners = &config.listeners;
    serde_json::json!({
        "buffer": config.buffer,
        "manager": config.manager,
        "publisher": {
            "hls": config.publisher.hls,
            "dash": {"segment_sec": 2, "window": 12},
        },
        "hook": {
            "batch_max_items": hook::DEFAULT_BATCH_ITEMS,
            "batch_flush_interval_sec": hook::DEFAULT_FLUSH_SEC,
            "batch_max_queue_items": hook::DEFAULT_QUEUE_ITEMS,
            "max_retries": hook::DEFAULT_RETRIES,
            "timeout_sec": hook::DEFAULT_TIMEOUT_SEC,
        },
        "push": {"enabled": false, "timeout_sec": 10, "retry_timeout_sec": 5, "limit": 0},
        "dvr": {"segment_duration": 4, "retention_sec": 0, "max_size_gb": 0},
        "transcoder": {
            "ffmpeg_path": config.transcoder.ffmpeg_path,
            "mode": "multi",
            "encoder_by_codec_hw": encoders,
        },
        "listeners": {
            "rtmp": listeners.rtmp,
            "srt": {
                "enabled": listeners.srt.enabled,
                "listen_host": listeners.srt.listen_host,
                "port": listeners.srt.port,
                "latency_ms": 120,
            },
            "rtsp": {
                "enabled": listeners.rtsp.enabled,
                "listen_host": listeners.rtsp.listen_host,
                "port": listeners.rtsp.port,
                "transport": "both",
            },
        },
        "ingestor": config.ingestor,
        "sessions": {
            "enabled": true,
            "idle_timeout_sec": 30,
            "max_lifetime_sec": 0,
            "kick_ban_sec": 60,
        },
        "server": config.server,
        "security": config.security,
        "log": config.log,
    })
}

/// `over` merged into `base`: objects key by key, anything else (`null` and arrays included)
/// replaces.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The sections whose `null` means off: the value that switches each off.
fn disable_nulls(
    mut patch: Map<String, Value>,
    refused: &mut Vec<FieldError>,
) -> Map<String, Value> {
    let off = || serde_json::json!({"enabled": false});
    let keys: Vec<String> = patch.keys().cloned().collect();
    for key in keys {
        match (key.as_str(), patch.get_mut(&key)) {
            ("sessions", Some(value)) if value.is_null() => *value = off(),
            ("listeners", Some(value)) if value.is_null() => {
                *value = serde_json::json!({"rtmp": off(), "srt": off(), "rtsp": off()});
            }
            ("listeners", Some(Value::Object(listeners))) => {
                for (_, listener) in listeners.iter_mut() {
                    if listener.is_null() {
                        *listener = off();
                    }
                }
            }
            (section, Some(value)) if value.is_null() && !OPTIONAL.contains(&section) => {
                let why = if section == "server" {
                    "the server section cannot be disabled (the HTTP API always runs)"
                } else {
                    "this section cannot be disabled; set its fields instead"
                };
                refused.push(FieldError::new(section, ErrorCode::InvalidField, why));
                patch.remove(&key);
            }
            _ => {}
        }
    }
    patch
}

/// Removes every `"****"` string: a masked secret written back keeps the value below it.
/// An object left empty by the removal goes too (an empty object written on purpose stays:
/// `hooks: {}` turns hooks back on).
fn drop_masked(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| v.as_str() != Some(MASK));
        map.retain(|_, v| {
            let had_fields = v.as_object().is_some_and(|m| !m.is_empty());
            drop_masked(v);
            !(had_fields && v.as_object().is_some_and(Map::is_empty))
        });
    }
}

/// Each leaf (anything but a non-empty object) of `value` with its dotted path
/// (`manager.frozen_gops`), in key order: how a layer is stored row by row.
pub fn leaves(value: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    flatten(value, "", &mut out);
    out
}

/// Sets the value at a dotted path, making the objects on the way (the inverse of
/// [`leaves`]).
pub fn set_leaf(root: &mut Value, path: &str, value: Value) {
    let mut at = root;
    for key in path.split('.') {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        at = map.entry(key.to_owned()).or_insert(Value::Null);
    }
    *at = value;
}

fn flatten(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(v, &path, out);
            }
        }
        _ if prefix.is_empty() => {}
        leaf => out.push((prefix.to_owned(), leaf.clone())),
    }
}

/// The value at a dotted path.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// Whether `layer` sets `path`, something inside it, or a value on the way to it.
fn touches(layer: &Value, path: &str) -> bool {
    let mut at = layer;
    for key in path.split('.') {
        match at {
            Value::Object(map) => match map.get(key) {
                Some(next) => at = next,
                None => return false,
            },
            _ => return true,
        }
    }
    true
}

/// Removes the value at a dotted path (and the objects it leaves empty).
fn remove(value: &mut Value, path: &str) {
    let Some((parent, key)) = path.rsplit_once('.') else {
        if let Value::Object(map) = value {
            map.remove(path);
        }
        return;
    };
    let Some(Value::Object(map)) = parent.split('.').try_fold(&mut *value, |v, k| v.get_mut(k))
    else {
        return;
    };
    map.remove(key);
    prune_empty(value);
}

/// Drops the empty objects below the top level (a section whose fields were all removed).
fn prune_empty(value: &mut Value) {
    if let Value::Object(map) = value {
        for v in map.values_mut() {
            prune_empty(v);
        }
        map.retain(|_, v| !matches!(v, Value::Object(m) if m.is_empty()));
    }
}

/// The leaf paths where `old` and `new` differ (present in one only included), sorted.
fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    flatten(old, "", &mut a);
    flatten(new, "", &mut b);
    let a: BTreeMap<_, _> = a.into_iter().collect();
    let b: BTreeMap<_, _> = b.into_iter().collect();
    let mut changed: Vec<String> = a
        .iter()
        .filter(|(path, value)| b.get(*path) != Some(value))
        .map(|(path, _)| path.clone())
        .chain(b.keys().filter(|path| !a.contains_key(*path)).cloned())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

/// The merged document decoded strictly, then validated.
fn decode(merged: Value) -> Result<ServerConfig, ValidationErrors> {
    let config: ServerConfig = serde_path_to_error::deserialize(merged).map_err(|e| {
        ValidationErrors(vec![decode_error(
            e.path().to_string(),
            e.inner().to_string(),
        )])
    })?;
    config.validate()?;
    Ok(config)
}

fn invalid(path: &str, message: &str) -> WriteError {
    WriteError::Invalid(ValidationErrors(vec![FieldError::new(
        path,
        ErrorCode::InvalidField,
        message,
    )]))
}

fn object_or_empty(value: Value) -> Value {
    if value.is_object() { value } else { empty() }
}

fn empty() -> Value {
    Value::Object(Map::new())
}

/// What a secret looks like in every response; written back, it keeps the stored value.
const MASK: &str = "****";

/// Fields read once at start-up (SPEC §Config "Bootstrap-only").
const BOOTSTRAP_ONLY: &[&str] = &["data_dir", "store", "shutdown_timeout_sec"];

/// Top-level sections that may be `null` (absent, or off for `hooks`).
const OPTIONAL: &[&str] = &[
    "hooks",
    "store",
    "watermarks",
    "dvr",
    "autopublish",
    "debug",
];

/// Sections (and every path under them) the engine applies at once: read where they are
/// used, or handed to the running services by `write_config`. `hooks` switched on or off
/// (`null`) is refused there: the dispatcher and workers start with the process. `log` is
/// followed by the binary, which owns the tracing subscriber. `watermarks` (its `dir`) is
/// checked inside the storage roots and created there, then the library reads the new
/// directory from its next request on (SPEC §Config "Hot apply": rescan).
/// `security.unsafe_extra_args` is not supported at all yet. `debug` is read by the API at
/// each `POST /debug/fault`.
const LIVE_SECTIONS: &[&str] = &[
    "manager",
    "security",
    "hooks",
    "log",
    "autopublish",
    "watermarks",
    "debug",
];

/// Leaf paths read where they are used, or handed to the running services by
/// `write_config` (the HLS and DASH windows; the HLS segment length, which running packagers
/// switch to at their next keyframe after the transcoders whose GOP derives from it
/// restarted; the DASH one, which opens a new Period at each packager's next keyframe, a
/// ladder's packagers restarted; the DASH section as a whole, set to null, all of whose
/// fields are live; `transcoder.ffmpeg_path`, probed first, then the running transcoders
/// restarted; `sessions.geoip_db_path`, read first, then swapped in for new sessions), so a
/// change applies at once.
const LIVE: &[&str] = &[
    "server.allowed_hosts",
    "buffer.capacity",
    "publisher.hls.live_segment_sec",
    "publisher.hls.live_window",
    "publisher.hls.live_history",
    "publisher.dash",
    "publisher.dash.segment_sec",
    "publisher.dash.window",
    "publisher.dash.pairing_sec",
    "publisher.dash.track_loss_sec",
    "publisher.dash.queue_frames",
    "transcoder.ffmpeg_path",
    "sessions.enabled",
    "sessions.idle_timeout_sec",
    "sessions.max_lifetime_sec",
    "sessions.kick_ban_sec",
    "sessions.geoip_db_path",
];

#[cfg(test)]
#[path = "layers_tests.rs"]
mod tests;
