//! References between streams through `copy://` and `mixer://` inputs (SPEC §ABR copy,
//! §Mixer): the rules a save checks across streams, and the topology a start derives.
//!
//! One stream's record cannot say whether its copy is an *ABR* copy: that depends on whether
//! the upstream has a ladder, and the upstream may itself be an ABR copy of a third stream
//! (chained ABR copy). So these rules take the other streams' records through a lookup and
//! walk the references; they are pure, and the engine feeds them the store. A missing
//! upstream is not an error (the input stays degraded until it exists), so a lookup that
//! finds nothing ends a walk quietly.
//!
//! - **Cycles** (**Tributary**): following `copy://` and `mixer://` references (video and
//!   audio) from a stream must never lead back to it; each input that starts such a cycle is
//!   refused, naming the path (`A → B → A`).
//! - **ABR copy / ABR mixer must be the only input**: the first input decides the topology
//!   (SPEC §Coordinator "Topology"), so a first input that mirrors a ladder with any other
//!   input beside it is refused.
//! - [`ladder_root`] finds the stream whose FFmpeg ladder an ABR copy mirrors.

use std::collections::HashSet;

use tributary_media::StreamCode;

use crate::protocol::{self, DetectContext, InputUrl, Mixer};
use crate::spec::{Source, StreamSpec};
use crate::stream::Stream;
use crate::validate::{ErrorCode, FieldError};

/// The streams a record's inputs reference, in input order, with the index of the input:
/// the upstream of a `copy://`, the video then the audio stream of a `mixer://`. Inputs that
/// do not classify are skipped (the record was parsed already, or is someone else's).
pub fn references(stream: &Stream) -> Vec<(usize, StreamCode)> {
    let ctx = DetectContext {
        rtmp_port: None,
        own_code: Some(&stream.code),
    };
    let mut out = Vec::new();
    for (i, input) in stream.inputs.iter().enumerate() {
        match protocol::detect(&input.url, ctx) {
            Ok(InputUrl::Copy { upstream }) => out.push((i, upstream)),
            Ok(InputUrl::Mixer(Mixer { video, audio, .. })) => {
                out.push((i, video));
                out.push((i, audio));
            }
            _ => {}
        }
    }
    out
}

/// Whether a record runs its own FFmpeg ladder.
fn transcodes(stream: &Stream) -> bool {
    stream.transcoder.as_ref().is_some_and(|t| t.needs_ffmpeg())
}

/// The stream whose video a record's first input mirrors when that input is a `copy://` or a
/// `mixer://` and the record has no ladder of its own: the copy's upstream, the mixer's video
/// stream.
pub fn mirrored_upstream(stream: &Stream) -> Option<StreamCode> {
    if transcodes(stream) {
        return None;
    }
    let first = stream.inputs.first()?;
    let ctx = DetectContext {
        rtmp_port: None,
        own_code: Some(&stream.code),
    };
    match protocol::detect(&first.url, ctx).ok()? {
        InputUrl::Copy { upstream } => Some(upstream),
        InputUrl::Mixer(mixer) => Some(mixer.video),
        _ => None,
    }
}

/// The record of the stream whose ladder `upstream` plays: `upstream` itself when it
/// transcodes; when it is itself an ABR copy or ABR mixer, the stream that one mirrors, and
/// so on. `None` when the chain ends at a stream without a ladder, at a missing stream, or
/// loops.
pub fn ladder_root(
    upstream: &StreamCode,
    mut lookup: impl FnMut(&StreamCode) -> Option<Stream>,
) -> Option<Stream> {
    let mut seen = HashSet::new();
    let mut code = upstream.clone();
    loop {
        if !seen.insert(code.clone()) {
            return None;
        }
        let stream = lookup(&code)?;
        if transcodes(&stream) {
            return Some(stream);
        }
        code = mirrored_upstream(&stream)?;
    }
}

/// The rules across streams for saving `spec` (SPEC §ABR copy, §Mixer): no cycle through
/// `copy://` and `mixer://` references, and an ABR copy or ABR mixer is the only input.
/// `lookup` gives the stored record of another stream (the one being saved is `spec`).
pub fn check_references(
    spec: &StreamSpec,
    mut lookup: impl FnMut(&StreamCode) -> Option<Stream>,
) -> Vec<FieldError> {
    let own = spec.stream();
    let code = &own.code;
    let mut errors = Vec::new();
    let shape = |i: usize| match &spec.inputs()[i].source {
        Source::Mixer(_) => ErrorCode::InvalidMixerShape,
        _ => ErrorCode::InvalidCopyShape,
    };
    let mut flagged = HashSet::new();
    for (i, upstream) in references(own) {
        if &upstream == code || flagged.contains(&i) {
            // Self-reference: refused by the record's own shape rules.
            continue;
        }
        if let Some(path) = cycle(code, &upstream, &mut lookup) {
            flagged.insert(i);
            let chain: Vec<&str> = path.iter().map(StreamCode::as_str).collect();
            errors.push(FieldError::new(
                format!("inputs[{i}].url"),
                shape(i),
                format!(
                    "references form a cycle: {} → {}",
                    chain.join(" → "),
                    code.as_str()
                ),
            ));
        }
    }
    if own.inputs.len() > 1
        && let Some(upstream) = mirrored_upstream(own)
        && ladder_root(&upstream, &mut lookup).is_some()
    {
        let what = match shape(0) {
            ErrorCode::InvalidMixerShape => {
                "an ABR mixer (mixer:// whose video stream has a ladder)"
            }
            _ => "an ABR copy (copy:// of a stream with a ladder)",
        };
        errors.push(FieldError::new(
            "inputs[0].url",
            shape(0),
            format!(
                "{what} must be the stream's only input: {upstream} has a ladder and this stream has no transcoder"
            ),
        ));
    }
    errors
}

/// The path `from → first → … → x` when following references from `first` reaches `from`
/// again; depth-first over the stored records.
fn cycle(
    from: &StreamCode,
    first: &StreamCode,
    lookup: &mut impl FnMut(&StreamCode) -> Option<Stream>,
) -> Option<Vec<StreamCode>> {
    let mut seen = HashSet::new();
    // (code, its path from `from`)
    let mut stack = vec![vec![from.clone(), first.clone()]];
    while let Some(path) = stack.pop() {
        let Some(last) = path.last() else { continue };
        if !seen.insert(last.clone()) {
            continue;
        }
        let Some(stream) = lookup(last) else { continue };
        for (_, next) in references(&stream) {
            if &next == from {
                return Some(path);
            }
            if !seen.contains(&next) {
                let mut longer = path.clone();
                longer.push(next);
                stack.push(longer);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::validate::{Support, parse_stream};

    fn record(code: &str, body: serde_json::Value) -> Stream {
        crate::validate::decode_record(&code.parse().unwrap(), body).unwrap()
    }

    fn ladder() -> serde_json::Value {
        json!({"video": {"profiles": [{"width": 640, "height": 360, "bitrate": 500}]}})
    }

    fn support() -> Support {
        Support::everything()
    }

    fn check(code: &str, body: serde_json::Value, store: &[Stream]) -> Vec<(String, ErrorCode)> {
        let (spec, _) = parse_stream(record(code, body), &support()).unwrap();
        let store: HashMap<StreamCode, Stream> =
            store.iter().map(|s| (s.code.clone(), s.clone())).collect();
        check_references(&spec, |c| store.get(c).cloned())
            .into_iter()
            .map(|e| (e.path, e.code))
            .collect()
    }

    #[test]
    fn a_cycle_across_copy_and_mixer_is_refused_with_its_path() {
        let b = record("b", json!({"inputs": [{"url": "mixer://c,d"}]}));
        let c = record("c", json!({"inputs": [{"url": "copy://a"}]}));
        let store = [b, c];
        let (spec, _) = parse_stream(
            record("a", json!({"inputs": [{"url": "copy://b"}]})),
            &support(),
        )
        .unwrap();
        let map: HashMap<_, _> = store.iter().map(|s| (s.code.clone(), s.clone())).collect();
        let errors = check_references(&spec, |c| map.get(c).cloned());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "inputs[0].url");
        assert_eq!(errors[0].code, ErrorCode::InvalidCopyShape);
        assert_eq!(errors[0].message, "references form a cycle: a → b → c → a");
        // The same cycle seen from the mixer's side names the mixer shape.
        let store = [
            record("a", json!({"inputs": [{"url": "copy://b"}]})),
            record("c", json!({"inputs": [{"url": "copy://a"}]})),
        ];
        assert_eq!(
            check("b", json!({"inputs": [{"url": "mixer://c,d"}]}), &store),
            [("inputs[0].url".to_owned(), ErrorCode::InvalidMixerShape)]
        );
        // Through the mixer's audio stream too.
        let store = [record("a", json!({"inputs": [{"url": "copy://b"}]}))];
        assert_eq!(
            check(
                "b",
                json!({"inputs": [{"url": "mixer://x?audio=a"}]}),
                &store
            ),
            [("inputs[0].url".to_owned(), ErrorCode::InvalidMixerShape)]
        );
    }

    #[test]
    fn chains_without_a_cycle_and_missing_upstreams_pass() {
        let store = [
            record("b", json!({"inputs": [{"url": "copy://c"}]})),
            record("c", json!({"inputs": [{"url": "udp://0.0.0.0:5000"}]})),
        ];
        assert!(check("a", json!({"inputs": [{"url": "copy://b"}]}), &store).is_empty());
        assert!(check("a", json!({"inputs": [{"url": "copy://nobody"}]}), &[]).is_empty());
        // A diamond is not a cycle.
        let store = [
            record("v", json!({"inputs": [{"url": "copy://base"}]})),
            record("w", json!({"inputs": [{"url": "copy://base"}]})),
        ];
        assert!(check("a", json!({"inputs": [{"url": "mixer://v,w"}]}), &store).is_empty());
    }

    #[test]
    fn an_abr_copy_or_mixer_must_be_the_only_input() {
        let store = [
            record(
                "ladder",
                json!({"inputs": [{"url": "publish://"}], "transcoder": ladder()}),
            ),
            record("plain", json!({"inputs": [{"url": "publish://"}]})),
            record("chained", json!({"inputs": [{"url": "copy://ladder"}]})),
        ];
        let two = |first: &str| json!({"inputs": [{"url": first}, {"url": "udp://0.0.0.0:5000", "priority": 1}]});
        assert_eq!(
            check("a", two("copy://ladder"), &store),
            [("inputs[0].url".to_owned(), ErrorCode::InvalidCopyShape)]
        );
        // Chained: a copy of an ABR copy mirrors the same ladder.
        assert_eq!(
            check("a", two("copy://chained"), &store),
            [("inputs[0].url".to_owned(), ErrorCode::InvalidCopyShape)]
        );
        // A plain copy (no ladder upstream) is an input like any other.
        assert!(check("a", two("copy://plain"), &store).is_empty());
        // A copy that is not first is a plain copy of the playback feed.
        let body = json!({"inputs": [{"url": "udp://0.0.0.0:5000"},
            {"url": "copy://ladder", "priority": 1}]});
        assert!(check("a", body, &store).is_empty());
        // With its own transcoder the copy is a plain input too.
        let mut body = two("copy://ladder");
        body["transcoder"] = ladder();
        assert!(check("a", body, &store).is_empty());
        // Only input: fine.
        assert!(check("a", json!({"inputs": [{"url": "copy://ladder"}]}), &store).is_empty());
    }

    #[test]
    fn the_ladder_root_follows_chained_copies_and_mixers() {
        let store: HashMap<StreamCode, Stream> = [
            record(
                "root",
                json!({"inputs": [{"url": "publish://"}], "transcoder": ladder()}),
            ),
            record("one", json!({"inputs": [{"url": "copy://root"}]})),
            record("two", json!({"inputs": [{"url": "mixer://one,x"}]})),
            record("loop1", json!({"inputs": [{"url": "copy://loop2"}]})),
            record("loop2", json!({"inputs": [{"url": "copy://loop1"}]})),
            record("plain", json!({"inputs": [{"url": "publish://"}]})),
        ]
        .into_iter()
        .map(|s| (s.code.clone(), s))
        .collect();
        let root = |c: &str| {
            ladder_root(&c.parse().unwrap(), |c| store.get(c).cloned()).map(|s| s.code.to_string())
        };
        assert_eq!(root("root").as_deref(), Some("root"));
        assert_eq!(root("two").as_deref(), Some("root"));
        assert_eq!(root("loop1"), None);
        assert_eq!(root("plain"), None);
        assert_eq!(root("missing"), None);
    }
}
