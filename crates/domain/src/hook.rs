//! Webhooks as the operator writes them (SPEC §Hooks, §Domain "Hook"), and the pure rules the
//! engine's delivery follows: which events a hook takes, how settings resolve, the retry
//! schedule, the payload's metadata keys and the body's signature.
//!
//! Everything here is a function of its arguments, so the engine's batcher and the API share
//! one definition of "this hook wants this event" and "this is the signature", and a receiver
//! written against SPEC can check both from this file alone:
//!
//! ```
//! use tributary_domain::hook::{glob_match, retry_delay, sign};
//!
//! // RFC 4231 test case 2: what a receiver computes over the raw body with the shared secret.
//! assert_eq!(
//!     sign("Jefe", b"what do ya want for nothing?"),
//!     "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
//! );
//! assert_eq!([retry_delay(1), retry_delay(2), retry_delay(3)].map(|d| d.as_secs()), [1, 5, 30]);
//! assert!(glob_match("cam-*", "cam-7") && !glob_match("cam-*", "studio"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::config::HooksSection;
use crate::redact::{MASK, mask_url};
use crate::validate::{ErrorCode, FieldError, ValidationErrors, decode_error};

/// One webhook (SPEC §Domain "Hook"). Stored as written; the settings left at 0 resolve
/// through [`HookSettings::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// The key: `[A-Za-z0-9_-]{1,64}`.
    pub id: String,
    /// A label for people.
    #[serde(default)]
    pub name: String,
    /// `http` (POST batches to `target`) or `file` (append JSON lines to `target`).
    #[serde(rename = "type")]
    pub kind: HookType,
    /// An `http(s)://` URL, or a file path under `hooks.file_root`.
    pub target: String,
    /// The HMAC-SHA256 key of `X-Tributary-Signature`; a secret, masked on read. Empty: the
    /// batches go unsigned.
    #[serde(default)]
    pub secret: String,
    /// The event types delivered (`stream.created`, ...); empty = all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Which streams' events are delivered; `null` = all.
    #[serde(default)]
    pub stream_codes: Option<StreamCodeFilter>,
    /// Merged into each event's payload as flat `meta.<key>` keys.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Whether events are delivered (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Retries after a failed try, 0–10 (0 → `hooks.max_retries`, else 3).
    #[serde(default)]
    pub max_retries: u32,
    /// Seconds one try may take (0 → `hooks.timeout_sec`, else 10).
    #[serde(default)]
    pub timeout_sec: u64,
    /// Events per batch (0 → `hooks.batch_max_items`, else 100).
    #[serde(default)]
    pub batch_max_items: u32,
    /// Seconds between flushes (0 → `hooks.batch_flush_interval_sec`, else 5).
    #[serde(default)]
    pub batch_flush_interval_sec: u64,
    /// Events queued before the oldest is dropped (0 → `hooks.batch_max_queue_items`, else
    /// 10000).
    #[serde(default)]
    pub batch_max_queue_items: u32,
}

/// One delivery attempt of a hook (SPEC §API `GET /hooks/{hid}/deliveries`), as logged and
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// When the attempt started (RFC 3339 UTC, ms).
    pub at: String,
    /// The ids of the events in the batch, in order.
    pub event_ids: Vec<String>,
    /// What came of it.
    pub status: DeliveryStatus,
    /// The receiver's HTTP status, when it answered (HTTP hooks).
    pub http_status: Option<u16>,
    /// Why the attempt failed; empty when delivered.
    pub error: String,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// 1 for a batch's first try, 2 for its first retry, ...; 0 for a `dropped` entry.
    pub attempt: u32,
}

/// What came of a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// The receiver answered 2xx, or the lines were appended.
    Delivered,
    /// The try failed; `error` says why.
    Failed,
    /// Not a try: events the full queue dropped (`event_ids` holds the first 100 of them,
    /// `error` how many).
    Dropped,
}

/// Where a hook delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HookType {
    /// JSON-array batches POSTed to a URL.
    Http,
    /// One JSON line per event appended to a file.
    File,
}

/// `stream_codes`: `only` wins over `except`; entries are exact codes or `*` globs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamCodeFilter {
    /// Only these streams.
    #[serde(default)]
    pub only: Vec<String>,
    /// Every stream but these.
    #[serde(default)]
    pub except: Vec<String>,
}

/// A hook's delivery settings once hook → global `hooks.*` → default have resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookSettings {
    /// Events per batch.
    pub batch_max_items: usize,
    /// Time between flushes of a partial batch.
    pub flush_interval: Duration,
    /// Events queued before the oldest is dropped.
    pub max_queue: usize,
    /// Retries after the first try of a batch.
    pub max_retries: u32,
    /// The budget of one try.
    pub timeout: Duration,
}

impl Hook {
    /// Whether this hook takes an event of `kind` (its dotted name) about `stream_code`
    /// (empty for events about no stream; `only` then refuses it, `except` lets it through).
    /// Disabled hooks take nothing.
    pub fn wants(&self, kind: &str, stream_code: &str) -> bool {
        if !self.enabled {
            return false;
        }
        if !self.event_types.is_empty() && !self.event_types.iter().any(|t| t == kind) {
            return false;
        }
        let Some(filter) = &self.stream_codes else {
            return true;
        };
        if !filter.only.is_empty() {
            return filter.only.iter().any(|p| glob_match(p, stream_code));
        }
        !filter.except.iter().any(|p| glob_match(p, stream_code))
    }

    /// A copy safe to serve: the secret masked, and in an HTTP target the password and the
    /// values of secret-named query keys (`?token=`), as for input URLs (SPEC §Security).
    pub fn masked(&self) -> Self {
        let mut copy = self.clone();
        if !copy.secret.is_empty() {
            copy.secret = MASK.into();
        }
        if copy.kind == HookType::Http {
            let target = mask_url(&copy.target);
            if target.contains(MASK) {
                copy.target = target;
            }
        }
        copy
    }

    /// A write that echoes the masks of [`masked`](Self::masked) keeps the stored secret and
    /// target (SPEC §Security: a round trip never wipes secrets).
    pub fn restore_secret(&mut self, stored: &Self) {
        if self.secret == MASK {
            self.secret.clone_from(&stored.secret);
        }
        if self.target.contains(MASK) && self.target == stored.masked().target {
            self.target.clone_from(&stored.target);
        }
    }

    /// SPEC's rules (§Hooks "Validation"), every failing field named. The file target is
    /// checked lexically here; the engine checks it against `hooks.file_root` on disk.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        let mut bad = |path: &str, message: String| {
            errors.push(FieldError::new(path, ErrorCode::InvalidField, message));
        };
        if !valid_id(&self.id) {
            bad(
                "id",
                format!("must match [A-Za-z0-9_-]{{1,64}}, got {:?}", self.id),
            );
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            bad("name", format!("at most {MAX_NAME_CHARS} characters"));
        }
        match self.kind {
            HookType::Http => {
                if let Err(why) = http_target(&self.target) {
                    bad("target", why);
                }
            }
            HookType::File => {
                if let Err(why) = file_target(&self.target) {
                    bad("target", why);
                }
            }
        }
        if self.max_retries > MAX_RETRIES {
            bad(
                "max_retries",
                format!("must be 0 to {MAX_RETRIES}, got {}", self.max_retries),
            );
        }
        for (field, value, max) in [
            ("timeout_sec", self.timeout_sec, MAX_SECONDS),
            (
                "batch_flush_interval_sec",
                self.batch_flush_interval_sec,
                MAX_SECONDS,
            ),
            (
                "batch_max_items",
                u64::from(self.batch_max_items),
                MAX_BATCH_ITEMS,
            ),
            (
                "batch_max_queue_items",
                u64::from(self.batch_max_queue_items),
                MAX_QUEUE_ITEMS,
            ),
        ] {
            if value > max {
                bad(field, format!("must be at most {max}, got {value}"));
            }
        }
        for (i, kind) in self.event_types.iter().enumerate() {
            if !EVENT_TYPES.contains(&kind.as_str()) {
                bad(
                    &format!("event_types[{i}]"),
                    format!("unknown event type {kind:?} (SPEC §Events names them)"),
                );
            }
        }
        if let Some(filter) = &self.stream_codes {
            if !filter.only.is_empty() && !filter.except.is_empty() {
                bad(
                    "stream_codes",
                    "set only or except, not both (only would win and except be ignored)".into(),
                );
            }
            for (list, patterns) in [("only", &filter.only), ("except", &filter.except)] {
                for (i, pattern) in patterns.iter().enumerate() {
                    if pattern.is_empty() || pattern.len() > MAX_CODE_PATTERN {
                        bad(
                            &format!("stream_codes.{list}[{i}]"),
                            format!(
                                "must be a stream code or a * glob of 1 to \
                                 {MAX_CODE_PATTERN} bytes"
                            ),
                        );
                    }
                }
            }
        }
        for (key, value) in &self.metadata {
            if key.is_empty() || key.len() > MAX_STRING_BYTES || value.len() > MAX_STRING_BYTES {
                bad(
                    &format!("metadata.{key}"),
                    format!("keys of 1 to {MAX_STRING_BYTES} bytes, values at most as long"),
                );
            }
        }
        if self.secret.len() > MAX_STRING_BYTES {
            bad("secret", format!("at most {MAX_STRING_BYTES} bytes"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

impl HookSettings {
    /// `hook`'s value where it sets one (non-zero), else `global`'s, else SPEC's default.
    pub fn resolve(hook: &Hook, global: &HooksSection) -> Self {
        // (the hook's own value, the global one, SPEC's default): the first set, non-zero.
        let [items, flush, queue, retries, timeout] = [
            (
                u64::from(hook.batch_max_items),
                global.batch_max_items.map(u64::from),
                DEFAULT_BATCH_ITEMS,
            ),
            (
                hook.batch_flush_interval_sec,
                global.batch_flush_interval_sec,
                DEFAULT_FLUSH_SEC,
            ),
            (
                u64::from(hook.batch_max_queue_items),
                global.batch_max_queue_items.map(u64::from),
                DEFAULT_QUEUE_ITEMS,
            ),
            (
                u64::from(hook.max_retries),
                global.max_retries.map(u64::from),
                DEFAULT_RETRIES,
            ),
            (hook.timeout_sec, global.timeout_sec, DEFAULT_TIMEOUT_SEC),
        ]
        .map(|(own, global, default)| {
            Some(own)
                .filter(|v| *v > 0)
                .or(global.filter(|v| *v > 0))
                .unwrap_or(default)
        });
        // Validation bounds each value far below the targets' limits.
        Self {
            batch_max_items: items as usize,
            flush_interval: Duration::from_secs(flush),
            max_queue: queue as usize,
            max_retries: u32::try_from(retries).unwrap_or(MAX_RETRIES),
            timeout: Duration::from_secs(timeout),
        }
    }
}

impl fmt::Display for HookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Http => "http",
            Self::File => "file",
        })
    }
}

/// Decodes a hook body strictly (an unknown field or a wrong type names its path). `id`, when
/// given (`PUT /hooks/{hid}`), is the hook's id; a body naming another id is refused.
pub fn decode_hook(id: Option<&str>, mut body: Value) -> Result<Hook, ValidationErrors> {
    let map = crate::validate::object_body(&mut body, "a hook")?;
    if let Some(id) = id {
        match map.get("id") {
            None | Some(Value::Null) => {
                map.insert("id".into(), Value::String(id.to_owned()));
            }
            Some(Value::String(own)) if own == id => {}
            Some(other) => {
                return Err(ValidationErrors(vec![FieldError::new(
                    "id",
                    ErrorCode::InvalidField,
                    format!("the body names hook {other}, the path {id:?}"),
                )]));
            }
        }
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let (path, message) = (e.path().to_string(), e.inner().to_string());
        // "missing field `target`" is reported at the object; name the field itself.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            let at = if path == "." || path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return ValidationErrors(vec![FieldError::new(
                at,
                ErrorCode::InvalidField,
                "required",
            )]);
        }
        ValidationErrors(vec![decode_error(path, message)])
    })
}

/// The delay before retry `n` (1-based) of a batch: 1 s, 5 s, then 30 s (SPEC §Hooks).
pub fn retry_delay(retry: u32) -> Duration {
    Duration::from_secs(match retry {
        0 | 1 => 1,
        2 => 5,
        _ => 30,
    })
}

/// `X-Tributary-Signature` of `body`: `sha256=` and the hex HMAC-SHA256 under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    crate::hex::push(&mut out, &digest);
    out
}

/// `payload` with `metadata` merged in as flat `meta.<key>` keys (an object payload keeps its
/// keys; any other payload becomes `{"value": payload}` first, so nothing is lost).
pub fn with_metadata(payload: &Value, metadata: &BTreeMap<String, String>) -> Value {
    if metadata.is_empty() {
        return payload.clone();
    }
    let mut map = match payload {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other.clone())]),
    };
    for (key, value) in metadata {
        map.insert(format!("meta.{key}"), Value::String(value.clone()));
    }
    Value::Object(map)
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none
/// included) and everything else for itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at: on a mismatch, that star
    // takes one more byte (linear backtracking; stars before it never need to move).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// Whether `id` is a valid hook id.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn http_target(target: &str) -> Result<(), String> {
    if target.len() > MAX_STRING_BYTES {
        return Err(format!("at most {MAX_STRING_BYTES} bytes"));
    }
    let url = url::Url::parse(target).map_err(|e| format!("not a URL ({e}): {target:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "an http hook needs an http:// or https:// URL, got scheme {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL names no host".into());
    }
    Ok(())
}

fn file_target(target: &str) -> Result<(), String> {
    if target.trim().is_empty() {
        return Err("a file hook needs a file path".into());
    }
    if target.len() > MAX_STRING_BYTES || target.contains('\0') || target.contains('\\') {
        return Err("must be a file path without NUL or backslashes".into());
    }
    let path = Path::new(target);
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!(
            "must not contain \"..\" (files stay inside hooks.file_root), got {target:?}"
        ));
    }
    if target.ends_with('/') {
        return Err(format!("names a directory, not a file: {target:?}"));
    }
    Ok(())
}

fn yes() -> bool {
    true
}

/// Every event type SPEC §Events names, the only values `event_types` takes.
pub const EVENT_TYPES: &[&str] = &[
    "stream.created",
    "stream.deleted",
    "stream.started",
    "stream.stopped",
    "stream.exhausted",
    "stream.updated",
    "stream.status_changed",
    "stream.runtime_created",
    "stream.runtime_expired",
    "input.connected",
    "input.reconnecting",
    "input.degraded",
    "input.restored",
    "input.failover",
    "input.failed",
    "transcoder.started",
    "transcoder.stopped",
    "transcoder.error",
    "transcoder.recovered",
    "transcoder.slow",
    "push.state_changed",
    "recording.started",
    "recording.stopped",
    "recording.failed",
    "segment.written",
    "session.opened",
    "session.closed",
    "config.updated",
];

/// Events per batch by default (SPEC §Defaults).
pub const DEFAULT_BATCH_ITEMS: u64 = 100;
/// Seconds between flushes by default.
pub const DEFAULT_FLUSH_SEC: u64 = 5;
/// Events queued per hook by default.
pub const DEFAULT_QUEUE_ITEMS: u64 = 10_000;
/// Retries after a failed try by default.
pub const DEFAULT_RETRIES: u64 = 3;
/// Seconds per try by default.
pub const DEFAULT_TIMEOUT_SEC: u64 = 10;
/// The most retries a hook may ask for (SPEC §Hooks "Validation").
pub const MAX_RETRIES: u32 = 10;
/// The largest batch: a body of this many envelopes stays well under a receiver's usual cap.
pub const MAX_BATCH_ITEMS: u64 = 10_000;
/// The largest queue per hook: about 1 GiB of envelopes at worst, beyond any sane outage.
pub const MAX_QUEUE_ITEMS: u64 = 1_000_000;

const MAX_NAME_CHARS: usize = 256;
const MAX_STRING_BYTES: usize = 4096;
const MAX_CODE_PATTERN: usize = 256;
/// A day: longer timeouts and intervals mean "never" in practice.
const MAX_SECONDS: u64 = 86_400;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hook(body: Value) -> Hook {
        decode_hook(None, body).unwrap()
    }

    #[test]
    fn globs_match_runs_of_any_characters() {
        for (p, t) in [
            ("cam*", "cam7"),
            ("*", ""),
            ("*-hd", "match-hd"),
            ("a*b*c", "aXXbYYc"),
            ("a*b*c", "abc"),
            ("exact", "exact"),
            ("live/*/main", "live/x/y/main"),
        ] {
            assert!(glob_match(p, t), "{p} {t}");
        }
        for (p, t) in [
            ("cam*", "xcam"),
            ("exact", "exact2"),
            ("a*b", "ac"),
            ("", "a"),
        ] {
            assert!(!glob_match(p, t), "{p} {t}");
        }
    }

    #[test]
    fn filters_only_wins_and_event_types_narrow() {
        let h = hook(json!({"id": "h", "type": "http", "target": "http://x/",
            "event_types": ["stream.created"], "stream_codes": {"only": ["cam*"]}}));
        assert!(h.wants("stream.created", "cam1"));
        assert!(!h.wants("stream.created", "studio"));
        assert!(!h.wants("stream.deleted", "cam1"));
        let h = hook(json!({"id": "h", "type": "http", "target": "http://x/",
            "stream_codes": {"except": ["test-*"]}}));
        assert!(h.wants("input.failover", "cam1"));
        assert!(!h.wants("input.failover", "test-1"));
        assert!(h.wants("config.updated", ""));
        let mut off = h.clone();
        off.enabled = false;
        assert!(!off.wants("input.failover", "cam1"));
    }

    #[test]
    fn validation_names_each_field() {
        let h = hook(json!({"id": "bad id", "type": "http", "target": "ftp://x/",
            "max_retries": 11, "event_types": ["stream.craeted"],
            "stream_codes": {"only": ["a"], "except": ["b"]}}));
        let errors = h.validate().unwrap_err();
        let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "id",
                "target",
                "max_retries",
                "event_types[0]",
                "stream_codes"
            ]
        );
        for target in ["../x.log", "a/../../x", "", "dir/"] {
            let h = hook(json!({"id": "f", "type": "file", "target": target}));
            assert_eq!(h.validate().unwrap_err().0[0].path, "target", "{target}");
        }
        hook(json!({"id": "f", "type": "file", "target": "events/all.jsonl"}))
            .validate()
            .unwrap();
        let unknown = decode_hook(
            None,
            json!({"id": "h", "type": "http", "target": "x", "urll": 1}),
        )
        .unwrap_err();
        assert_eq!(unknown.0[0].path, "urll");
        assert_eq!(unknown.code(), ErrorCode::UnknownField);
        let wrong =
            decode_hook(Some("a"), json!({"id": "b", "type": "http", "target": "x"})).unwrap_err();
        assert_eq!(wrong.0[0].path, "id");
    }

    #[test]
    fn settings_resolve_hook_then_global_then_default() {
        let mut h = hook(json!({"id": "h", "type": "http", "target": "http://x/"}));
        let none = HooksSection::default();
        let s = HookSettings::resolve(&h, &none);
        assert_eq!(
            (
                s.batch_max_items,
                s.flush_interval.as_secs(),
                s.max_queue,
                s.max_retries
            ),
            (100, 5, 10_000, 3)
        );
        assert_eq!(s.timeout.as_secs(), 10);
        let global = HooksSection {
            max_retries: Some(5),
            batch_max_items: Some(10),
            ..HooksSection::default()
        };
        h.batch_max_items = 7;
        let s = HookSettings::resolve(&h, &global);
        assert_eq!((s.batch_max_items, s.max_retries), (7, 5));
    }

    #[test]
    fn retries_wait_1_5_then_30_seconds() {
        let delays: Vec<u64> = (1..=5).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 5, 30, 30, 30]);
    }

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn metadata_becomes_flat_meta_keys_and_secrets_mask() {
        let meta = BTreeMap::from([("site".to_owned(), "ams".to_owned())]);
        let merged = with_metadata(&json!({"from": 0}), &meta);
        assert_eq!(merged, json!({"from": 0, "meta.site": "ams"}));
        assert_eq!(
            with_metadata(&Value::Null, &meta),
            json!({"meta.site": "ams"})
        );
        let mut h = hook(json!({"id": "h", "type": "http", "target": "http://x/", "secret": "s"}));
        assert_eq!(h.masked().secret, MASK);
        let stored = h.clone();
        h.secret = MASK.into();
        h.restore_secret(&stored);
        assert_eq!(h.secret, "s");
        let with_token = hook(json!({"id": "h", "type": "http",
            "target": "https://u:pw@x.example/in?token=t0k&site=a"}));
        let shown = with_token.masked();
        assert_eq!(
            shown.target,
            "https://u:****@x.example/in?token=****&site=a"
        );
        let mut echoed = shown.clone();
        echoed.restore_secret(&with_token);
        assert_eq!(echoed.target, with_token.target);
        let plain = hook(json!({"id": "h", "type": "http", "target": "http://x.example:80/in"}));
        assert_eq!(plain.masked().target, "http://x.example:80/in");
    }
}
