//! The whole-system document of `GET /config/yaml` and `PUT /config/yaml` (SPEC §API, §Config):
//! `{global_config, streams, templates, hooks, vod}` in one place, so that an operator can keep
//! a server's setup in a file, review a change as a diff, and rebuild the same system on
//! another machine.
//!
//! What each section holds:
//! - `global_config` is the layer saved through the API (`POST /config`, this PUT), not the
//!   effective configuration: the effective one also holds what this host's file, environment
//!   and command line set (`data_dir`, ports given as flags), which a PUT could not write
//!   (bootstrap-only, `PINNED_BY_ENV`) and which another host sets for itself. `GET /config`
//!   shows the effective configuration.
//! - `streams`, `templates`, `hooks`, `vod`: the stored records as written (streams not
//!   resolved over their templates, runtime streams left out), sorted by key.
//!
//! A PUT is decoded strictly ([`Document::decode`]: an unknown key anywhere is reported apart
//! from invalid values, SPEC's 400 `INVALID_YAML`), secrets the document echoes masked are put
//! back from the stored records ([`Document::restore_secrets`]; a mask with nothing stored
//! behind it is refused, never stored as a key), then the whole document is validated against
//! the system it would leave ([`Document::validate`]: the same rules as the REST writes,
//! streams resolved over the document's templates, `copy://`/`mixer://` references over the
//! final set of streams), so a bad document changes nothing. [`Document::plan`] then says what
//! would be created, updated, left unchanged and (with `prune`) deleted; the API applies that
//! through the engine's own write paths.
//!
//! A section the document leaves out is not touched, with or without `prune`: pruning applies
//! to the sections the document carries (an empty list prunes everything of its kind).

use serde::Serialize;
use serde_json::Value;
use tributary_media::StreamCode;

use crate::hook::{Hook, decode_hook};
use crate::redact::{MASK, restore_secrets};
use crate::spec::StreamSpec;
use crate::stream::Stream;
use crate::template::{Template, decode_template, overlaps, parse_resolved, parse_template};
use crate::validate::{
    ErrorCode, FieldError, Support, ValidationErrors, check_push_profiles, check_write,
    decode_record,
};
use crate::vod::{VodMount, decode_mount};

/// The sections of a document, in the order they are applied (SPEC §API: global → templates
/// → hooks → VOD → streams).
pub const SECTIONS: [&str; 5] = ["global_config", "templates", "hooks", "vod", "streams"];

/// The most streams a server holds (SPEC §Security "Field caps").
pub const MAX_STREAMS: usize = 10_000;

/// The system as `GET /config/yaml` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemDocument {
    /// The configuration layer saved through the API (module doc).
    pub global_config: Value,
    /// Stored streams, as written, sorted by code.
    pub streams: Vec<Stream>,
    /// Templates, sorted by code.
    pub templates: Vec<Template>,
    /// Webhooks, sorted by id.
    pub hooks: Vec<Hook>,
    /// VOD mounts, sorted by name.
    pub vod: Vec<VodMount>,
}

impl SystemDocument {
    /// A copy with every secret masked as the REST reads mask it. A secret of the
    /// configuration layer is masked where `redacted_config` (the effective configuration,
    /// redacted) shows the mask.
    pub fn masked(&self, redacted_config: &Value) -> Self {
        Self {
            global_config: mask_layer(&self.global_config, redacted_config),
            streams: self
                .streams
                .iter()
                .map(crate::redact::mask_stream)
                .collect(),
            templates: self.templates.iter().map(Template::masked).collect(),
            hooks: self.hooks.iter().map(Hook::masked).collect(),
            vod: self.vod.clone(),
        }
    }
}

/// `layer` with each string leaf masked where `redacted` holds the mask at the same path.
fn mask_layer(layer: &Value, redacted: &Value) -> Value {
    match layer {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let below = redacted.get(key).unwrap_or(&Value::Null);
                    (key.clone(), mask_layer(value, below))
                })
                .collect(),
        ),
        Value::String(text) if !text.is_empty() && redacted.as_str() == Some(MASK) => {
            Value::String(MASK.to_owned())
        }
        other => other.clone(),
    }
}

/// The system as stored, for restoring secrets, validating and planning a PUT.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    /// Stored streams.
    pub streams: Vec<Stream>,
    /// Templates.
    pub templates: Vec<Template>,
    /// Webhooks.
    pub hooks: Vec<Hook>,
    /// VOD mounts.
    pub vod: Vec<VodMount>,
}

/// A decoded `PUT /config/yaml` document. `None`: the section is not in the document (and is
/// left alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// The configuration layer to save.
    pub global_config: Option<Value>,
    /// Streams, in document order.
    pub streams: Option<Vec<Stream>>,
    /// Templates, in document order.
    pub templates: Option<Vec<Template>>,
    /// Webhooks, in document order.
    pub hooks: Option<Vec<Hook>>,
    /// VOD mounts, in document order.
    pub vod: Option<Vec<VodMount>>,
}

/// Why a document does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Keys the document's schema does not know (SPEC: 400 `INVALID_YAML`), each named.
    #[error("unknown fields: {0}")]
    Unknown(ValidationErrors),
    /// Values of the wrong shape or type, each named (422).
    #[error("{0}")]
    Invalid(ValidationErrors),
}

/// A stream, template, hook or mount: what a section holds, keyed.
trait Keyed: PartialEq {
    fn key(&self) -> &str;
}

impl Keyed for Stream {
    fn key(&self) -> &str {
        self.code.as_str()
    }
}

impl Keyed for Template {
    fn key(&self) -> &str {
        &self.code
    }
}

impl Keyed for Hook {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for VodMount {
    fn key(&self) -> &str {
        &self.name
    }
}

impl Document {
    /// Decodes a document (the YAML already read into a JSON value): a mapping of the five
    /// sections, each record decoded strictly as its REST write decodes it, every error named
    /// by its path in the document (`streams[2].inputs[0].url`). Records are keyed by `code`
    /// (streams, templates), `id` (hooks) and `name` (mounts); a key given twice is refused.
    pub fn decode(value: Value) -> Result<Self, DecodeError> {
        let Value::Object(map) = value else {
            return Err(DecodeError::Invalid(ValidationErrors(vec![
                FieldError::new(
                    "$",
                    ErrorCode::InvalidField,
                    "the document must be a mapping of global_config, streams, templates, hooks \
                 and vod",
                ),
            ])));
        };
        let mut errors = Vec::new();
        let mut doc = Self::default();
        for (section, value) in map {
            if value.is_null() {
                continue;
            }
            match section.as_str() {
                "global_config" if value.is_object() => doc.global_config = Some(value),
                "global_config" => errors.push(FieldError::new(
                    "global_config",
                    ErrorCode::InvalidField,
                    "expected a mapping (the configuration fields to save)",
                )),
                "streams" => {
                    doc.streams = Some(items(&section, value, &mut errors, |_, item| {
                        let code = key_of(&item, "code")?;
                        let code = StreamCode::parse(&code).map_err(|e| {
                            ValidationErrors(vec![FieldError::new(
                                "code",
                                ErrorCode::InvalidCode,
                                e.to_string(),
                            )])
                        })?;
                        decode_record(&code, item)
                    }));
                }
                "templates" => {
                    doc.templates = Some(items(&section, value, &mut errors, |_, item| {
                        decode_template(&key_of(&item, "code")?, item)
                    }));
                }
                "hooks" => {
                    doc.hooks = Some(items(&section, value, &mut errors, |_, item| {
                        decode_hook(None, item)
                    }));
                }
                "vod" => {
                    doc.vod = Some(items(&section, value, &mut errors, |_, item| {
                        decode_mount(None, item)
                    }));
                }
                other => errors.push(FieldError::new(
                    other,
                    ErrorCode::UnknownField,
                    format!(
                        "unknown field `{other}`, expected one of global_config, streams, \
                         templates, hooks, vod"
                    ),
                )),
            }
        }
        let unknown: Vec<FieldError> = errors
            .iter()
            .filter(|e| e.code == ErrorCode::UnknownField)
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(DecodeError::Unknown(ValidationErrors(unknown)));
        }
        if !errors.is_empty() {
            return Err(DecodeError::Invalid(ValidationErrors(errors)));
        }
        Ok(doc)
    }

    /// Puts the stored secrets back where the document echoes their mask (a stream's key,
    /// URL passwords and secret query values, push URLs, a template's, a hook's secret and
    /// target), matching records by key; the configuration layer keeps its masked values
    /// through the write itself. Returns each mask left with nothing stored behind it, named
    /// (such a document was read from another server without `?reveal=true`).
    pub fn restore_secrets(&mut self, stored: &Stored) -> Vec<FieldError> {
        let mut left = Vec::new();
        for (i, stream) in self.streams.iter_mut().flatten().enumerate() {
            if let Some(old) = stored.streams.iter().find(|s| s.code == stream.code) {
                restore_secrets(stream, old);
            }
            masks_left(&format!("streams[{i}]"), stream, &mut left);
        }
        for (i, template) in self.templates.iter_mut().flatten().enumerate() {
            if let Some(old) = stored.templates.iter().find(|t| t.code == template.code) {
                template.restore_secrets(old);
            }
            let placeholder = StreamCode::parse("placeholder").ok();
            if let Some(code) = placeholder {
                masks_left(
                    &format!("templates[{i}]"),
                    &template.as_stream(code),
                    &mut left,
                );
            }
        }
        for (i, hook) in self.hooks.iter_mut().flatten().enumerate() {
            if let Some(old) = stored.hooks.iter().find(|h| h.id == hook.id) {
                hook.restore_secret(old);
            }
            if hook.secret == MASK {
                left.push(unkept(format!("hooks[{i}].secret")));
            }
            if hook.target.contains(MASK) {
                left.push(unkept(format!("hooks[{i}].target")));
            }
        }
        left
    }

    /// Validates the document as the system it would leave: each template and stream by the
    /// rules of its REST write, streams resolved over the templates the system would hold and
    /// their `copy://` and `mixer://` references checked over the streams it would hold;
    /// prefixes against every other template kept; templates that kept streams still need;
    /// keys given twice; the stream cap. Hooks and mounts need the engine's checks on disk,
    /// which the API runs. Normalises the templates (trailing `/` of prefixes) as their write
    /// does. Returns, in document order, the parsed streams and the warnings; or every
    /// failing field named by its document path.
    pub fn validate(
        &mut self,
        stored: &Stored,
        support: &Support,
        prune: bool,
    ) -> Result<(Vec<StreamSpec>, Vec<String>), ValidationErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if let Some(templates) = &mut self.templates {
            for (i, template) in templates.iter_mut().enumerate() {
                match parse_template(template.clone(), support) {
                    Ok((parsed, more)) => {
                        *template = parsed;
                        warnings.extend(more.into_iter().map(|w| format!("templates[{i}]: {w}")));
                    }
                    Err(e) => errors.extend(prefixed(&format!("templates[{i}]"), e)),
                }
            }
            duplicates("templates", templates, &mut errors);
        }
        let templates = final_set(self.templates.as_deref(), &stored.templates, prune);
        for (i, template) in self.templates.iter().flatten().enumerate() {
            for o in overlaps(template, &templates) {
                errors.push(FieldError::new(
                    format!("templates[{i}].prefixes[{}]", o.index),
                    ErrorCode::InvalidPrefix,
                    format!(
                        "{:?} overlaps {:?} of template {}",
                        o.prefix, o.overlaps, o.conflicting_with
                    ),
                ));
            }
        }
        if let Some(hooks) = &self.hooks {
            // Each hook's own rules need the engine (a file target is resolved on disk): the
            // API checks them through it.
            duplicates("hooks", hooks, &mut errors);
        }
        if let Some(vod) = &self.vod {
            duplicates("vod", vod, &mut errors);
        }
        let streams = final_set(self.streams.as_deref(), &stored.streams, prune);
        let mut specs = Vec::new();
        if let Some(own) = &self.streams {
            duplicates("streams", own, &mut errors);
            for (i, stream) in own.iter().enumerate() {
                let at = format!("streams[{i}]");
                let mut failed = check_write(stream);
                let template = stream
                    .template
                    .as_deref()
                    .and_then(|name| templates.iter().find(|t| t.code == name));
                match parse_resolved(stream.clone(), template, support) {
                    Ok((spec, more)) => {
                        failed.extend(check_push_profiles(&spec));
                        let lookup = |c: &StreamCode| {
                            streams
                                .iter()
                                .find(|s| &s.code == c && *c != stream.code)
                                .cloned()
                        };
                        failed.extend(crate::spec::refs::check_references(&spec, lookup));
                        warnings.extend(more.into_iter().map(|w| format!("{at}: {w}")));
                        specs.push(spec);
                    }
                    Err(ValidationErrors(more)) => failed.extend(more),
                }
                errors.extend(prefixed(&at, ValidationErrors(failed)));
            }
        }
        if streams.len() > MAX_STREAMS {
            errors.push(FieldError::new(
                "streams",
                ErrorCode::InvalidField,
                format!(
                    "the server would hold {} streams, at most {MAX_STREAMS}",
                    streams.len()
                ),
            ));
        }
        if self.streams.is_none() || !prune {
            // Stored streams the document does not replace keep naming their templates.
            for stream in &stored.streams {
                let replaced = self.streams.iter().flatten().any(|s| s.code == stream.code);
                if let Some(name) = stream.template.as_deref()
                    && !replaced
                    && !templates.iter().any(|t| t.code == name)
                {
                    errors.push(FieldError::new(
                        "templates",
                        ErrorCode::InvalidField,
                        format!("template {name} is used by stream {}; keep it", stream.code),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok((specs, warnings))
        } else {
            Err(ValidationErrors(errors))
        }
    }

    /// What applying the document would do, section by section (records compared as stored,
    /// after [`restore_secrets`](Self::restore_secrets) and [`validate`](Self::validate)).
    pub fn plan(&self, stored: &Stored, prune: bool) -> Plan {
        Plan {
            templates: section(self.templates.as_deref(), &stored.templates, prune),
            hooks: section(self.hooks.as_deref(), &stored.hooks, prune),
            vod: section(self.vod.as_deref(), &stored.vod, prune),
            streams: section(self.streams.as_deref(), &stored.streams, prune),
        }
    }
}

/// What a PUT does to one section, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SectionPlan {
    /// New records, in document order.
    pub created: Vec<String>,
    /// Records that differ from the stored ones.
    pub updated: Vec<String>,
    /// Records equal to the stored ones (not written again: nothing restarts).
    pub unchanged: Vec<String>,
    /// Stored records the document leaves out, deleted with `prune`.
    pub deleted: Vec<String>,
}

/// What a PUT does to the records of the system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Templates.
    pub templates: SectionPlan,
    /// Webhooks.
    pub hooks: SectionPlan,
    /// VOD mounts.
    pub vod: SectionPlan,
    /// Streams.
    pub streams: SectionPlan,
}

fn section<T: Keyed>(doc: Option<&[T]>, stored: &[T], prune: bool) -> SectionPlan {
    let mut plan = SectionPlan::default();
    let Some(doc) = doc else {
        return plan;
    };
    for item in doc {
        match stored.iter().find(|s| s.key() == item.key()) {
            None => plan.created.push(item.key().to_owned()),
            Some(old) if old == item => plan.unchanged.push(item.key().to_owned()),
            Some(_) => plan.updated.push(item.key().to_owned()),
        }
    }
    if prune {
        plan.deleted = stored
            .iter()
            .filter(|s| !doc.iter().any(|d| d.key() == s.key()))
            .map(|s| s.key().to_owned())
            .collect();
    }
    plan
}

/// The records of a section once the document is applied: the document's, plus the stored
/// ones it leaves out unless they are pruned (or all stored ones when the section is absent).
fn final_set<T: Keyed + Clone>(doc: Option<&[T]>, stored: &[T], prune: bool) -> Vec<T> {
    let Some(doc) = doc else {
        return stored.to_vec();
    };
    let mut all = doc.to_vec();
    if !prune {
        all.extend(
            stored
                .iter()
                .filter(|s| !doc.iter().any(|d| d.key() == s.key()))
                .cloned(),
        );
    }
    all
}

/// A key given twice in one section: the later one is named.
fn duplicates<T: Keyed>(section: &str, items: &[T], errors: &mut Vec<FieldError>) {
    let field = match section {
        "hooks" => "id",
        "vod" => "name",
        _ => "code",
    };
    for (i, item) in items.iter().enumerate() {
        if items[..i].iter().any(|earlier| earlier.key() == item.key()) {
            errors.push(FieldError::new(
                format!("{section}[{i}].{field}"),
                ErrorCode::InvalidField,
                format!("{:?} appears twice in {section}", item.key()),
            ));
        }
    }
}

/// Decodes each item of a section list, naming errors by `section[i]`.
fn items<T>(
    section: &str,
    value: Value,
    errors: &mut Vec<FieldError>,
    mut decode: impl FnMut(usize, Value) -> Result<T, ValidationErrors>,
) -> Vec<T> {
    let Value::Array(list) = value else {
        errors.push(FieldError::new(
            section,
            ErrorCode::InvalidField,
            "expected a list",
        ));
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        match decode(i, item) {
            Ok(decoded) => out.push(decoded),
            Err(e) => errors.extend(prefixed(&format!("{section}[{i}]"), e)),
        }
    }
    out
}

/// The string (or number) `field` of a record (its key), required.
fn key_of(item: &Value, field: &str) -> Result<String, ValidationErrors> {
    let invalid = |message: &str| {
        ValidationErrors(vec![FieldError::new(
            field,
            ErrorCode::InvalidField,
            message,
        )])
    };
    match item {
        Value::Object(map) => match map.get(field) {
            Some(Value::String(key)) => Ok(key.clone()),
            // `code: 1234` in YAML is a number; as a key it means the text.
            Some(Value::Number(number)) => Ok(number.to_string()),
            None | Some(Value::Null) => Err(invalid("required")),
            Some(_) => Err(invalid("expected a string")),
        },
        _ => Err(ValidationErrors(vec![FieldError::new(
            "$",
            ErrorCode::InvalidField,
            "expected a mapping",
        )])),
    }
}

/// `errors` with each path put under `at` (`$`, the record itself, becomes `at`).
pub fn prefixed(at: &str, errors: ValidationErrors) -> Vec<FieldError> {
    errors
        .0
        .into_iter()
        .map(|mut e| {
            e.path = match e.path.as_str() {
                "$" | "" => at.to_owned(),
                path if path.starts_with('[') => format!("{at}{path}"),
                path => format!("{at}.{path}"),
            };
            e
        })
        .collect()
}

/// The secret positions of `stream` still holding the mask, named under `at`.
fn masks_left(at: &str, stream: &Stream, left: &mut Vec<FieldError>) {
    if stream.stream_key == MASK {
        left.push(unkept(format!("{at}.stream_key")));
    }
    for (i, input) in stream.inputs.iter().enumerate() {
        if input.url.contains(MASK) {
            left.push(unkept(format!("{at}.inputs[{i}].url")));
        }
        let values = input.headers.iter().chain(input.params.iter());
        for (name, value) in values {
            if value == MASK {
                let kind = if input.headers.contains_key(name) {
                    "headers"
                } else {
                    "params"
                };
                left.push(unkept(format!("{at}.inputs[{i}].{kind}.{name}")));
            }
        }
    }
    for (i, push) in stream.push.iter().enumerate() {
        if push.url.contains(MASK) {
            left.push(unkept(format!("{at}.push[{i}].url")));
        }
    }
}

fn unkept(path: String) -> FieldError {
    FieldError::new(
        path,
        ErrorCode::InvalidField,
        "a masked secret (****) with no stored value to keep: read the document with \
         GET /config/yaml?reveal=true to copy secrets to another server",
    )
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
