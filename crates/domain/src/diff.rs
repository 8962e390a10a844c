//! What changed between two versions of a stream (SPEC §Hot reload).
//!
//! [`compute_diff`] compares two **template-resolved** streams and says, field by field, what a
//! running pipeline would have to notice. It knows nothing about what is running; turning a
//! [`StreamDiff`] into restart actions is [`crate::plan()`]'s job. Metadata (name, description,
//! tags, stream key, template, push comments) and fields SPEC accepts and ignores (legacy input
//! fields, `thumbnail.output_dir`) never show up in a diff.
//!
//! ```
//! use tributary_domain::{compute_diff, Input, Stream, StreamCode};
//!
//! let mut old = Stream::new(StreamCode::parse("cam1").unwrap());
//! old.inputs.push(Input::new("publish://", 0));
//! let mut new = old.clone();
//! new.name = "Camera 1".into(); // metadata: no change
//! assert!(compute_diff(&old, &new).is_empty());
//!
//! new.inputs.push(Input::new("srt://backup.example.org:7001", 1));
//! assert_eq!(compute_diff(&old, &new).inputs.added, vec![1]);
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::stream::{Input, Protocols, Push, Stream, Thumbnail, Transcoder, VideoProfile};

/// Items of a keyed collection that appeared, disappeared or changed.
///
/// Each list is sorted by key and a key appears in at most one list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyedDiff<K> {
    /// Keys present only in the new version.
    pub added: Vec<K>,
    /// Keys present only in the old version.
    pub removed: Vec<K>,
    /// Keys present in both whose settings differ.
    pub updated: Vec<K>,
}

impl<K> KeyedDiff<K> {
    /// Whether nothing was added, removed or updated.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.updated.is_empty()
    }
}

/// One output that `protocols` switches on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// HLS packaging (`/{code}/index.m3u8`).
    Hls,
    /// MPEG-DASH packaging (`/{code}/index.mpd`).
    Dash,
    /// RTSP play.
    Rtsp,
    /// RTMP play.
    Rtmp,
    /// SRT play.
    Srt,
}

impl Output {
    /// Every output, in the order diffs and plans list them.
    pub const ALL: [Self; 5] = [Self::Hls, Self::Dash, Self::Rtsp, Self::Rtmp, Self::Srt];

    /// The flag's JSON name (`hls`, `dash`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hls => "hls",
            Self::Dash => "dash",
            Self::Rtsp => "rtsp",
            Self::Rtmp => "rtmp",
            Self::Srt => "srt",
        }
    }

    /// Whether `protocols` switches this output on.
    pub fn is_on(self, protocols: Protocols) -> bool {
        match self {
            Self::Hls => protocols.hls,
            Self::Dash => protocols.dash,
            Self::Rtsp => protocols.rtsp,
            Self::Rtmp => protocols.rtmp,
            Self::Srt => protocols.srt,
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outputs switched on or off, each list in [`Output::ALL`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolsDiff {
    /// Flags that went off → on.
    pub started: Vec<Output>,
    /// Flags that went on → off.
    pub stopped: Vec<Output>,
}

impl ProtocolsDiff {
    /// Whether no flag changed.
    pub fn is_empty(&self) -> bool {
        self.started.is_empty() && self.stopped.is_empty()
    }
}

/// Everything a running pipeline could have to react to between two versions of a stream.
///
/// Built by [`compute_diff`]. Its push targets are keyed by URL, which carries the platform's
/// stream key: `?dry_run=true` answers show it as a [`ShownDiff`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamDiff {
    /// `disabled` went false → true.
    pub now_disabled: bool,
    /// `disabled` went true → false.
    pub now_enabled: bool,
    /// Inputs keyed by priority; updated = [`Input::settings_differ`] (URL, headers, params, net,
    /// packet timeout, hot standby, program).
    pub inputs: KeyedDiff<u32>,
    /// The transcoder objects differ at all (including changes with no runtime effect, such as
    /// mode `""` → `multi`).
    pub transcoder_changed: bool,
    /// The rendition layout changed: transcoder null ↔ set, FFmpeg needed or not, `video.copy`
    /// flipped, or [`mode_changed`](Self::mode_changed).
    pub topology_changed: bool,
    /// Rungs keyed by index (rung *i* is `track_{i+1}`), filled only when the topology is
    /// unchanged and FFmpeg runs. A change of `global`, `audio`, `decoder`, `extra_args` or
    /// `video.interlace` marks every rung present in both versions updated. With `video.copy`
    /// and no profiles the single copy rung counts as index 0; without FFmpeg there are no rungs.
    pub profiles: KeyedDiff<usize>,
    /// Both versions transcode and the effective mode differs (`""` counts as `multi`).
    pub mode_changed: bool,
    /// The watermarks differ (absent = a disabled default watermark).
    pub watermark_changed: bool,
    /// Output flags switched, comparing [`Stream::protocols`] (absent = all off).
    pub protocols: ProtocolsDiff,
    /// Enabled push targets keyed by trimmed URL: added = enabled in new and not in old; removed
    /// = enabled in old and disabled or gone in new; updated = enabled in both with a different
    /// `timeout_sec`, `retry_timeout_sec`, `limit` or `profile` (the comment is ignored).
    pub push: KeyedDiff<String>,
    /// The DVR settings differ (absent = a disabled default).
    pub dvr_changed: bool,
    /// The thumbnail settings differ (absent = a disabled default; `output_dir` ignored).
    pub thumbnail_changed: bool,
}

impl StreamDiff {
    /// Whether nothing but metadata changed.
    pub fn is_empty(&self) -> bool {
        !self.now_disabled
            && !self.now_enabled
            && self.inputs.is_empty()
            && !self.transcoder_changed
            && !self.topology_changed
            && self.profiles.is_empty()
            && !self.mode_changed
            && !self.watermark_changed
            && self.protocols.is_empty()
            && self.push.is_empty()
            && !self.dvr_changed
            && !self.thumbnail_changed
    }
}

/// A [`StreamDiff`] as `?dry_run=true` answers show it (SPEC §Security: a dry-run diff is
/// masked like a record): push targets are keyed by their index in the `push` list (`added`
/// and `updated` index the new list, `removed` the old one) instead of by URL, whose path
/// carries the platform's stream key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownDiff {
    /// The diff; its `push` is not shown.
    pub diff: StreamDiff,
    /// The push targets, by index.
    pub push: KeyedDiff<usize>,
}

impl ShownDiff {
    /// Shows `diff`, computed from `old` to `new`.
    pub fn new(diff: StreamDiff, old: &Stream, new: &Stream) -> Self {
        let index = |targets: &[Push], urls: &[String]| -> Vec<usize> {
            let mut found: Vec<usize> = urls
                .iter()
                .filter_map(|url| {
                    targets
                        .iter()
                        .position(|t| t.enabled && t.url.trim() == url.as_str())
                })
                .collect();
            found.sort_unstable();
            found
        };
        let push = KeyedDiff {
            added: index(&new.push, &diff.push.added),
            removed: index(&old.push, &diff.push.removed),
            updated: index(&new.push, &diff.push.updated),
        };
        Self { diff, push }
    }
}

impl Serialize for ShownDiff {
    /// [`StreamDiff`]'s fields, with `push` by index.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = serde_json::to_value(&self.diff).map_err(S::Error::custom)?;
        value["push"] = serde_json::to_value(&self.push).map_err(S::Error::custom)?;
        value.serialize(serializer)
    }
}

/// The field groups that differ between two versions of a stream, as `stream.updated` names
/// them (`{changed: [...]}`, SPEC §Events), in a fixed order: `metadata` (name, description,
/// tags, stream key, template), `disabled`, `inputs`, `transcoder`, `watermark`, `protocols`,
/// `push`, `dvr`, `thumbnail`. Empty when the versions are equal.
pub fn changed_groups(old: &Stream, new: &Stream, diff: &StreamDiff) -> Vec<&'static str> {
    let metadata = old.name != new.name
        || old.description != new.description
        || old.tags != new.tags
        || old.stream_key != new.stream_key
        || old.template != new.template;
    let transcoder = diff.transcoder_changed
        || diff.topology_changed
        || diff.mode_changed
        || !diff.profiles.is_empty();
    [
        (metadata, "metadata"),
        (diff.now_disabled || diff.now_enabled, "disabled"),
        (!diff.inputs.is_empty(), "inputs"),
        (transcoder, "transcoder"),
        (diff.watermark_changed, "watermark"),
        (!diff.protocols.is_empty(), "protocols"),
        (!diff.push.is_empty(), "push"),
        (diff.dvr_changed, "dvr"),
        (diff.thumbnail_changed, "thumbnail"),
    ]
    .into_iter()
    .filter_map(|(changed, group)| changed.then_some(group))
    .collect()
}

/// Compares two resolved versions of one stream (SPEC §Hot reload).
pub fn compute_diff(old: &Stream, new: &Stream) -> StreamDiff {
    let (old_tc, new_tc) = (old.transcoder.as_ref(), new.transcoder.as_ref());
    let mode_changed = match (old_tc, new_tc) {
        (Some(a), Some(b)) => a.mode.effective() != b.mode.effective(),
        _ => false,
    };
    let topology_changed = match (old_tc, new_tc) {
        (None, None) => false,
        (Some(a), Some(b)) => {
            a.needs_ffmpeg() != b.needs_ffmpeg() || a.video.copy != b.video.copy || mode_changed
        }
        _ => true,
    };
    let profiles = match (old_tc, new_tc) {
        (Some(a), Some(b)) if !topology_changed => diff_profiles(a, b),
        _ => KeyedDiff::default(),
    };
    StreamDiff {
        now_disabled: !old.disabled && new.disabled,
        now_enabled: old.disabled && !new.disabled,
        inputs: keyed(
            &inputs_by_priority(&old.inputs),
            &inputs_by_priority(&new.inputs),
            |a, b| a.settings_differ(b),
        ),
        transcoder_changed: old_tc != new_tc,
        topology_changed,
        profiles,
        mode_changed,
        watermark_changed: !same_or_default(old.watermark.as_ref(), new.watermark.as_ref()),
        protocols: diff_protocols(old.protocols(), new.protocols()),
        push: keyed(
            &enabled_pushes(&old.push),
            &enabled_pushes(&new.push),
            |a, b| {
                a.timeout_sec != b.timeout_sec
                    || a.retry_timeout_sec != b.retry_timeout_sec
                    || a.limit != b.limit
                    || a.profile != b.profile
            },
        ),
        dvr_changed: !same_or_default(old.dvr.as_ref(), new.dvr.as_ref()),
        thumbnail_changed: thumbnail_settings(old.thumbnail.as_ref())
            != thumbnail_settings(new.thumbnail.as_ref()),
    }
}

/// How many rungs (rendition buffers) a stream with this transcoder has.
///
/// `None`, or `video.copy && audio.copy`: 0 (no FFmpeg, ingest writes the main buffer).
/// `video.copy` with no profiles: 1 (`track_1`, SPEC §Transcoder). Otherwise one per profile.
pub fn rung_count(transcoder: Option<&Transcoder>) -> usize {
    transcoder.map_or(0, |t| rung_profiles(t).len())
}

/// The profile of each rung the transcoder runs, rung *i* first.
fn rung_profiles(transcoder: &Transcoder) -> Cow<'_, [VideoProfile]> {
    if !transcoder.needs_ffmpeg() {
        return Cow::Borrowed(&[]);
    }
    if transcoder.video.copy && transcoder.video.profiles.is_empty() {
        return Cow::Owned(vec![VideoProfile::default()]);
    }
    Cow::Borrowed(&transcoder.video.profiles)
}

/// Rungs of two transcoders with the same topology, by index.
fn diff_profiles(old: &Transcoder, new: &Transcoder) -> KeyedDiff<usize> {
    let (old_rungs, new_rungs) = (rung_profiles(old), rung_profiles(new));
    let shared_changed = old.global != new.global
        || old.audio != new.audio
        || old.decoder != new.decoder
        || old.extra_args != new.extra_args
        || old.video.interlace != new.video.interlace;
    let common = old_rungs.len().min(new_rungs.len());
    KeyedDiff {
        added: (common..new_rungs.len()).collect(),
        removed: (common..old_rungs.len()).collect(),
        updated: (0..common)
            .filter(|&i| shared_changed || old_rungs[i] != new_rungs[i])
            .collect(),
    }
}

fn diff_protocols(old: Protocols, new: Protocols) -> ProtocolsDiff {
    let mut diff = ProtocolsDiff::default();
    for output in Output::ALL {
        match (output.is_on(old), output.is_on(new)) {
            (false, true) => diff.started.push(output),
            (true, false) => diff.stopped.push(output),
            _ => {}
        }
    }
    diff
}

fn inputs_by_priority(inputs: &[Input]) -> BTreeMap<u32, &Input> {
    inputs.iter().map(|input| (input.priority, input)).collect()
}

/// Enabled push targets by trimmed URL; disabled ones do not exist for the publisher.
fn enabled_pushes(push: &[Push]) -> BTreeMap<String, &Push> {
    push.iter()
        .filter(|target| target.enabled)
        .map(|target| (target.url.trim().to_owned(), target))
        .collect()
}

/// Splits two maps into added, removed and (by `differ`) updated keys, each sorted.
fn keyed<K: Ord + Clone, V>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    differ: impl Fn(&V, &V) -> bool,
) -> KeyedDiff<K> {
    let mut diff = KeyedDiff {
        added: Vec::new(),
        removed: Vec::new(),
        updated: Vec::new(),
    };
    for (key, new_value) in new {
        match old.get(key) {
            None => diff.added.push(key.clone()),
            Some(old_value) if differ(old_value, new_value) => diff.updated.push(key.clone()),
            Some(_) => {}
        }
    }
    diff.removed = old
        .keys()
        .filter(|key| !new.contains_key(*key))
        .cloned()
        .collect();
    diff
}

/// Equality where an absent object counts as its default.
fn same_or_default<T: Default + PartialEq>(old: Option<&T>, new: Option<&T>) -> bool {
    match (old, new) {
        (Some(a), Some(b)) => a == b,
        (Some(one), None) | (None, Some(one)) => *one == T::default(),
        (None, None) => true,
    }
}

/// The thumbnail fields that matter at runtime (`output_dir` is accepted and ignored).
fn thumbnail_settings(thumbnail: Option<&Thumbnail>) -> (bool, u32, u32, u32, u32) {
    thumbnail.map_or((false, 0, 0, 0, 0), |t| {
        (t.enabled, t.interval_sec, t.width, t.height, t.quality)
    })
}

#[cfg(test)]
mod tests {
    // The table of every diff field and plan action lives in `crate::plan`'s tests.
    use super::*;
    use crate::stream::{AudioSettings, VideoSettings};

    #[test]
    fn a_shown_diff_keys_push_targets_by_index_without_urls() {
        let target = |url: &str| Push {
            enabled: true,
            ..Push::new(url)
        };
        let mut old = Stream::new(tributary_media::StreamCode::parse("a").unwrap());
        old.push = vec![target("rtmp://h/app/KEY1"), target("rtmp://h/app/KEY2")];
        let mut new = old.clone();
        new.push[0] = target("rtmp://h/app/KEY3");
        new.push[1].limit = 3;
        let shown = ShownDiff::new(compute_diff(&old, &new), &old, &new);
        let value = serde_json::to_value(&shown).unwrap();
        assert_eq!(
            value["push"],
            serde_json::json!({"added": [0], "removed": [0], "updated": [1]})
        );
        assert!(value["now_disabled"].is_boolean());
        assert!(!value.to_string().contains("KEY"), "{value}");
    }

    #[test]
    fn rung_count_follows_the_topology() {
        let ladder = |video_copy: bool, audio_copy: bool, profiles: usize| Transcoder {
            video: VideoSettings {
                copy: video_copy,
                profiles: vec![VideoProfile::default(); profiles],
                ..VideoSettings::default()
            },
            audio: AudioSettings {
                copy: audio_copy,
                ..AudioSettings::default()
            },
            ..Transcoder::default()
        };
        assert_eq!(rung_count(None), 0);
        assert_eq!(rung_count(Some(&ladder(false, false, 3))), 3);
        assert_eq!(rung_count(Some(&ladder(false, true, 2))), 2);
        assert_eq!(rung_count(Some(&ladder(true, false, 0))), 1);
        assert_eq!(rung_count(Some(&ladder(true, false, 2))), 2);
        assert_eq!(rung_count(Some(&ladder(true, true, 2))), 0);
    }

    #[test]
    fn outputs_read_their_flag() {
        let protocols = Protocols {
            dash: true,
            srt: true,
            ..Protocols::default()
        };
        let on: Vec<Output> = Output::ALL
            .into_iter()
            .filter(|o| o.is_on(protocols))
            .collect();
        assert_eq!(on, vec![Output::Dash, Output::Srt]);
        let names: Vec<String> = Output::ALL.iter().map(Output::to_string).collect();
        assert_eq!(names, ["hls", "dash", "rtsp", "rtmp", "srt"]);
        for output in Output::ALL {
            assert_eq!(
                serde_json::to_value(output).unwrap(),
                serde_json::Value::from(output.as_str())
            );
        }
    }

    #[test]
    fn keyed_diff_is_empty_only_without_keys() {
        assert!(KeyedDiff::<u32>::default().is_empty());
        for diff in [
            KeyedDiff {
                added: vec![1],
                ..KeyedDiff::default()
            },
            KeyedDiff {
                removed: vec![1],
                ..KeyedDiff::default()
            },
            KeyedDiff {
                updated: vec![1],
                ..KeyedDiff::default()
            },
        ] {
            assert!(!diff.is_empty());
        }
        assert!(ProtocolsDiff::default().is_empty());
        assert!(
            !ProtocolsDiff {
                stopped: vec![Output::Hls],
                started: Vec::new(),
            }
            .is_empty()
        );
    }

    #[test]
    fn changed_groups_name_what_differs_in_a_fixed_order() {
        let old = Stream::new("cam".parse().unwrap());
        assert!(changed_groups(&old, &old, &compute_diff(&old, &old)).is_empty());
        let mut new = old.clone();
        new.name = "Cam".into();
        new.protocols = Some(Protocols {
            hls: true,
            ..Protocols::default()
        });
        new.inputs = vec![Input::new("udp://:5000", 0)];
        let diff = compute_diff(&old, &new);
        assert_eq!(
            changed_groups(&old, &new, &diff),
            ["metadata", "inputs", "protocols"]
        );
        let mut off = old.clone();
        off.disabled = true;
        let diff = compute_diff(&old, &off);
        assert_eq!(changed_groups(&old, &off, &diff), ["disabled"]);
    }
}
