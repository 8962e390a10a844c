//! Templates (SPEC §Templates): named stream defaults a stream may inherit from, and the rule
//! set for auto-publish.
//!
//! A template is a partial stream (the fields a stream can inherit) plus its `prefixes`. It is
//! decoded strictly like a stream ([`decode_template`]) and validated like one
//! ([`parse_template`] parses it as a stream would be parsed), because whatever a template
//! holds ends up in the streams that inherit from it: an invalid template would only fail
//! later, at every dependent's start. Inheritance is resolved on read ([`resolve`]): the store
//! keeps each stream as written, so a template edit reaches every dependent at its next
//! resolution, which is how the engine hot-reloads them.
//!
//! Prefixes route auto-publish: [`matching`] finds the template whose prefix, on segment
//! boundaries, is the longest prefix of a publish path; [`overlaps`] finds the prefixes of
//! other templates a new one would collide with (equal, or one a path-prefix of the other).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_media::StreamCode;
use utoipa::ToSchema;

use crate::redact::{mask_stream, restore_secrets};
use crate::spec::StreamSpec;
use crate::stream::{Dvr, Input, Protocols, Push, Stream, Thumbnail, Transcoder, Watermark};
use crate::validate::{
    ErrorCode, FieldError, Support, ValidationErrors, check_push_profiles, check_write,
    decode_strict, object_body, parse_stream,
};

/// A template as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The template's code, `[A-Za-z0-9_-]{1,128}`; it comes from the URL path.
    pub code: String,
    /// Inherited by a stream whose `name` is `""`.
    #[serde(default)]
    pub name: String,
    /// Inherited by a stream whose `description` is `""`.
    #[serde(default)]
    pub description: String,
    /// Inherited by a stream whose `tags` are empty.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Inherited by a stream whose `stream_key` is `""`; the key an auto-publish encoder must
    /// present. Masked in responses.
    #[serde(default)]
    pub stream_key: String,
    /// Publish paths this template auto-creates streams under (`live/events`), matched on
    /// segment boundaries.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Inherited by a stream without inputs. A `publish://` input lets the template
    /// auto-publish.
    #[serde(default)]
    pub inputs: Vec<Input>,
    /// Inherited when the stream's is `null`.
    #[serde(default)]
    pub transcoder: Option<Transcoder>,
    /// Inherited when the stream's is `null`.
    #[serde(default)]
    pub protocols: Option<Protocols>,
    /// Inherited by a stream without push targets.
    #[serde(default)]
    pub push: Vec<Push>,
    /// Inherited when the stream's is `null`.
    #[serde(default)]
    pub dvr: Option<Dvr>,
    /// Inherited when the stream's is `null`.
    #[serde(default)]
    pub watermark: Option<Watermark>,
    /// Inherited when the stream's is `null`.
    #[serde(default)]
    pub thumbnail: Option<Thumbnail>,
}

impl Template {
    /// The template as a stream named `code` (what a stream with nothing of its own
    /// resolves to).
    pub fn as_stream(&self, code: StreamCode) -> Stream {
        Stream {
            code,
            template: None,
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            stream_key: self.stream_key.clone(),
            disabled: false,
            inputs: self.inputs.clone(),
            transcoder: self.transcoder.clone(),
            protocols: self.protocols,
            push: self.push.clone(),
            dvr: self.dvr.clone(),
            watermark: self.watermark.clone(),
            thumbnail: self.thumbnail.clone(),
        }
    }

    /// A copy with every secret masked (stream key, URL passwords, secret query values,
    /// push URLs), as streams are masked.
    pub fn masked(&self) -> Self {
        self.with_stream(mask_stream(&self.as_stream(placeholder())))
    }

    /// Puts the secrets of `stored` back where `self` echoes their mask.
    pub fn restore_secrets(&mut self, stored: &Self) {
        let mut stream = self.as_stream(placeholder());
        restore_secrets(&mut stream, &stored.as_stream(placeholder()));
        *self = self.with_stream(stream);
    }

    /// Whether auto-publish may create streams from it: it has a `publish://` input.
    pub fn publishes(&self) -> bool {
        self.inputs.iter().any(|i| {
            i.url
                .trim()
                .get(..PUBLISH_SCHEME.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(PUBLISH_SCHEME))
        })
    }

    /// The template's fields taken from `stream`, prefixes and code kept.
    fn with_stream(&self, stream: Stream) -> Self {
        Self {
            code: self.code.clone(),
            name: stream.name,
            description: stream.description,
            tags: stream.tags,
            stream_key: stream.stream_key,
            prefixes: self.prefixes.clone(),
            inputs: stream.inputs,
            transcoder: stream.transcoder,
            protocols: stream.protocols,
            push: stream.push,
            dvr: stream.dvr,
            watermark: stream.watermark,
            thumbnail: stream.thumbnail,
        }
    }
}

/// `stream` with every field it leaves empty taken from `template` (SPEC §Templates):
/// strings when `""`, lists when empty, objects when `null`. `code`, `disabled` and
/// `template` are never inherited.
pub fn resolve(stream: &Stream, template: &Template) -> Stream {
    let mut out = stream.clone();
    let text = |own: &mut String, inherited: &String| {
        if own.is_empty() {
            own.clone_from(inherited);
        }
    };
    text(&mut out.name, &template.name);
    text(&mut out.description, &template.description);
    text(&mut out.stream_key, &template.stream_key);
    if out.tags.is_empty() {
        out.tags.clone_from(&template.tags);
    }
    if out.inputs.is_empty() {
        out.inputs.clone_from(&template.inputs);
    }
    if out.push.is_empty() {
        out.push.clone_from(&template.push);
    }
    if out.transcoder.is_none() {
        out.transcoder.clone_from(&template.transcoder);
    }
    if out.protocols.is_none() {
        out.protocols = template.protocols;
    }
    if out.dvr.is_none() {
        out.dvr.clone_from(&template.dvr);
    }
    if out.watermark.is_none() {
        out.watermark.clone_from(&template.watermark);
    }
    if out.thumbnail.is_none() {
        out.thumbnail.clone_from(&template.thumbnail);
    }
    out
}

/// Parses a stream record as it runs: resolved over `template` when it names one (SPEC
/// §Templates), then parsed like any record ([`parse_stream`]). The spec keeps the record as
/// written ([`StreamSpec::record`]). A named template that is `None` (it does not exist) is a
/// `TEMPLATE_NOT_FOUND` naming `template`.
pub fn parse_resolved(
    stream: Stream,
    template: Option<&Template>,
    support: &Support,
) -> Result<(StreamSpec, Vec<String>), ValidationErrors> {
    let Some(name) = stream.template.as_deref() else {
        return parse_stream(stream, support);
    };
    let Some(template) = template.filter(|t| t.code == name) else {
        return Err(ValidationErrors(vec![FieldError::new(
            "template",
            ErrorCode::TemplateNotFound,
            format!("no template {name:?}"),
        )]));
    };
    let resolved = resolve(&stream, template);
    let (spec, warnings) = parse_stream(resolved, support)?;
    Ok((spec.with_record(stream), warnings))
}

/// Decodes a template body for `code`, strictly (unknown field or wrong type → 422 naming the
/// path). The body's own `code` is ignored.
pub fn decode_template(code: &str, mut body: Value) -> Result<Template, ValidationErrors> {
    object_body(&mut body, "a template")?.insert("code".into(), Value::String(code.to_owned()));
    decode_strict(body)
}

/// Checks a decoded template: its code, its prefixes (SPEC: `[A-Za-z0-9_/-]{1,128}`, no
/// leading `/`, no `//`, no duplicates after trimming a trailing `/`), and everything else as
/// a stream's fields are checked (the same paths, `inputs[0].url`, ...). Returns the
/// template with its prefixes normalised (trailing `/` trimmed) and the warnings.
pub fn parse_template(
    mut template: Template,
    support: &Support,
) -> Result<(Template, Vec<String>), ValidationErrors> {
    let mut errors = Vec::new();
    if !valid_code(&template.code) {
        errors.push(FieldError::new(
            "code",
            ErrorCode::InvalidCode,
            format!(
                "a template code is 1-128 of A-Z, a-z, 0-9, _ and -, got {:?}",
                template.code
            ),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, prefix) in template.prefixes.iter().enumerate() {
        let path = format!("prefixes[{i}]");
        let trimmed = prefix.trim_end_matches('/');
        if let Err(why) = check_prefix(prefix, trimmed) {
            errors.push(FieldError::new(path, ErrorCode::InvalidPrefix, why));
        } else if seen.iter().any(|s| s == trimmed) {
            errors.push(FieldError::new(
                path,
                ErrorCode::InvalidPrefix,
                format!("duplicate prefix {trimmed:?}"),
            ));
        } else {
            seen.push(trimmed.to_owned());
        }
    }
    let stream = template.as_stream(placeholder());
    errors.extend(check_write(&stream));
    let warnings = match parse_stream(stream, support) {
        Ok((spec, warnings)) => {
            // A template's own push targets name rungs of its own ladder.
            errors.extend(check_push_profiles(&spec));
            warnings
        }
        Err(ValidationErrors(more)) => {
            errors.extend(more);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(ValidationErrors(errors));
    }
    template.prefixes = seen;
    Ok((template, warnings))
}

/// One prefix of another template that a template's prefix collides with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// The index of the template's own prefix (`prefixes[i]`).
    pub index: usize,
    /// Its prefix.
    pub prefix: String,
    /// The other template.
    pub conflicting_with: String,
    /// The other template's prefix.
    pub overlaps: String,
}

/// The prefixes of `others` (templates other than `template.code`) that `template`'s
/// prefixes overlap: equal, or one a path-prefix of the other on segment boundaries.
pub fn overlaps(template: &Template, others: &[Template]) -> Vec<Overlap> {
    let mut found = Vec::new();
    for (index, mine) in template.prefixes.iter().enumerate() {
        for other in others.iter().filter(|o| o.code != template.code) {
            for theirs in &other.prefixes {
                if under(mine, theirs) || under(theirs, mine) {
                    found.push(Overlap {
                        index,
                        prefix: mine.clone(),
                        conflicting_with: other.code.clone(),
                        overlaps: theirs.clone(),
                    });
                }
            }
        }
    }
    found
}

/// The template whose prefix is the longest match of `path` on segment boundaries, with
/// that prefix.
pub fn matching<'a>(templates: &'a [Template], path: &str) -> Option<(&'a Template, &'a str)> {
    let path = path.trim_matches('/');
    templates
        .iter()
        .flat_map(|t| t.prefixes.iter().map(move |p| (t, p.as_str())))
        .filter(|(_, prefix)| under(path, prefix) && path.len() > prefix.len())
        .max_by_key(|(_, prefix)| prefix.len())
}

/// Whether `path` is `prefix` or lies below it (`live/a/b` under `live`; not
/// `livestream/a`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn check_prefix(prefix: &str, trimmed: &str) -> Result<(), String> {
    if trimmed.is_empty() {
        return Err("a prefix must not be empty".into());
    }
    if prefix.len() > MAX_PREFIX {
        return Err(format!(
            "at most {MAX_PREFIX} characters, got {}",
            prefix.len()
        ));
    }
    if prefix.starts_with('/') {
        return Err(format!("must not start with '/', got {prefix:?}"));
    }
    if prefix.contains("//") {
        return Err(format!("must not contain '//', got {prefix:?}"));
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/')))
    {
        return Err(format!(
            "only A-Z, a-z, 0-9, _, - and / are allowed, got {bad:?} in {prefix:?}"
        ));
    }
    Ok(())
}

/// Whether `code` is a valid template code.
pub fn valid_code(code: &str) -> bool {
    (1..=MAX_CODE).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// The code a template is parsed under as a stream (any valid stream code would do).
fn placeholder() -> StreamCode {
    StreamCode::parse("template_check").expect("a valid stream code")
}

/// The longest template code and prefix (SPEC §Domain "Template").
const MAX_CODE: usize = 128;
const MAX_PREFIX: usize = 128;
/// The input scheme that makes a template auto-publish.
const PUBLISH_SCHEME: &str = "publish://";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(code: &str, body: Value) -> Template {
        decode_template(code, body).expect("decodes")
    }

    #[test]
    fn a_stream_inherits_only_what_it_leaves_empty() {
        let t = template(
            "t",
            json!({"name": "T", "tags": ["a"], "stream_key": "0123456789",
                   "inputs": [{"url": "publish://"}], "protocols": {"hls": true},
                   "dvr": {"enabled": false}}),
        );
        let mut s = Stream::new("cam".parse().unwrap());
        s.template = Some("t".into());
        s.name = "Own".into();
        s.disabled = true;
        let r = resolve(&s, &t);
        assert_eq!(r.name, "Own");
        assert_eq!(r.tags, ["a"]);
        assert_eq!(r.stream_key, "0123456789");
        assert_eq!(r.inputs.len(), 1);
        assert!(r.protocols.unwrap().hls);
        assert!(r.disabled, "disabled is never inherited");
        assert_eq!(r.code.as_str(), "cam");
        assert_eq!(r.template.as_deref(), Some("t"));
    }

    #[test]
    fn prefixes_are_checked_and_named() {
        let t = template(
            "t",
            json!({"prefixes": ["live/", "/x", "a//b", "ok", "ok/", "sp ace", ""]}),
        );
        let errors = parse_template(t, &Support::everything()).unwrap_err().0;
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "prefixes[1]",
                "prefixes[2]",
                "prefixes[4]",
                "prefixes[5]",
                "prefixes[6]"
            ]
        );
        assert!(errors.iter().all(|e| e.code == ErrorCode::InvalidPrefix));
        let ok = template("t", json!({"prefixes": ["live/events/"]}));
        let (ok, _) = parse_template(ok, &Support::everything()).unwrap();
        assert_eq!(ok.prefixes, ["live/events"]);
    }

    #[test]
    fn templates_are_validated_like_streams() {
        let t = template("t", json!({"inputs": [{"url": "rtmq://x"}]}));
        let errors = parse_template(t, &Support::everything()).unwrap_err().0;
        assert_eq!(errors[0].path, "inputs[0].url");
        assert_eq!(errors[0].code, ErrorCode::InvalidInputUrl);
        let unknown = decode_template("t", json!({"bogus": 1})).unwrap_err().0;
        assert_eq!(unknown[0].path, "bogus");
        let bad = template("t/x", json!({}));
        assert_eq!(
            parse_template(bad, &Support::everything()).unwrap_err().0[0].path,
            "code"
        );
        // A template's own push target names a rung of its own ladder.
        let push = json!([{"url": "rtmp://x/a/b", "profile": "track_2"}]);
        let none = template("t", json!({"push": push}));
        let errors = parse_template(none, &Support::everything()).unwrap_err().0;
        assert_eq!(errors[0].path, "push[0].profile");
        let two = json!({"video": {"profiles": [{}, {}]}});
        let ladder = template("t", json!({"push": push, "transcoder": two}));
        assert!(parse_template(ladder, &Support::everything()).is_ok());
    }

    #[test]
    fn overlaps_and_matches_are_on_segment_boundaries() {
        let a = template("a", json!({"prefixes": ["live"]}));
        let b = template("b", json!({"prefixes": ["live/events", "other"]}));
        let c = template("c", json!({"prefixes": ["livestream"]}));
        let found = overlaps(&b, &[a.clone(), c.clone()]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].conflicting_with, "a");
        assert_eq!(found[0].overlaps, "live");
        assert_eq!(found[0].index, 0);
        assert!(overlaps(&c, std::slice::from_ref(&a)).is_empty());
        let all = [a, b, c];
        assert_eq!(matching(&all, "live/events/x").unwrap().0.code, "b");
        assert_eq!(matching(&all, "live/other").unwrap().0.code, "a");
        assert_eq!(matching(&all, "livestream/x").unwrap().0.code, "c");
        assert!(matching(&all, "live").is_none(), "the prefix itself");
        assert!(matching(&all, "lives/x").is_none());
    }
}
