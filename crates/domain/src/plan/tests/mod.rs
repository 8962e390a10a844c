use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{Value, json};

use super::*;
use crate::diff::{KeyedDiff, ProtocolsDiff, compute_diff};
use crate::stream::{
    Dvr, Input, Protocols, Push, Thumbnail, VideoProfile, VideoSettings, Watermark,
};
use tributary_media::StreamCode;

const A: &str = "rtmps://live.example.com/app/SECRET";
const B: &str = "rtmp://backup.example.com/live/KEY2";
const C: &str = "rtmp://a.example.com/live/KEY3";
const E: &str = "rtmp://e.example.com/live/KEY5";

fn push(url: &str, enabled: bool) -> Push {
    Push {
        url: url.to_owned(),
        enabled,
        timeout_sec: 10,
        retry_timeout_sec: 5,
        limit: 0,
        comment: String::new(),
        profile: String::new(),
    }
}

fn profile(width: u32, height: u32, bitrate: u32) -> VideoProfile {
    VideoProfile {
        width,
        height,
        bitrate,
        ..VideoProfile::default()
    }
}

/// One input, nothing else.
fn bare() -> Stream {
    let mut s = Stream::new(StreamCode::parse("cam1").unwrap());
    s.inputs = vec![Input::new("publish://", 0)];
    s
}

/// A passthrough stream with two inputs, HLS + RTMP, one enabled and one disabled push
/// target, DVR and thumbnails on, no watermark.
fn passthrough() -> Stream {
    let mut s = bare();
    s.name = "Cam 1".into();
    s.inputs
        .push(Input::new("srt://backup.example.org:7001", 1));
    s.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    s.push = vec![push(A, true), push(B, false)];
    s.dvr = Some(Dvr {
        enabled: true,
        retention_sec: 3600,
        ..Dvr::default()
    });
    s.thumbnail = Some(Thumbnail {
        enabled: true,
        interval_sec: 10,
        ..Thumbnail::default()
    });
    s
}

/// [`passthrough`] with a two-rung `per_profile` ladder and an enabled text watermark.
fn per_profile() -> Stream {
    let mut s = passthrough();
    s.transcoder = Some(Transcoder {
        mode: TranscoderMode::PerProfile,
        video: VideoSettings {
            profiles: vec![profile(1280, 720, 3000), profile(854, 480, 1200)],
            ..VideoSettings::default()
        },
        ..Transcoder::default()
    });
    s.watermark = Some(Watermark {
        enabled: true,
        kind: "text".into(),
        text: "ON AIR".into(),
        ..Watermark::default()
    });
    s
}

/// [`per_profile`] in mode `""` (multi).
fn multi() -> Stream {
    let mut s = per_profile();
    tc(&mut s).mode = TranscoderMode::Unset;
    s
}

/// `per_profile`, video copied without profiles (one copy rung), audio transcoded.
fn copy_video() -> Stream {
    let mut s = per_profile();
    tc(&mut s).video = VideoSettings {
        copy: true,
        ..VideoSettings::default()
    };
    s
}

/// A transcoder that copies audio and video: no FFmpeg runs.
fn copy_all() -> Stream {
    let mut s = copy_video();
    tc(&mut s).audio.copy = true;
    s
}

fn all_outputs() -> Stream {
    let mut s = bare();
    s.protocols = Some(Protocols {
        hls: true,
        dash: true,
        rtsp: true,
        rtmp: true,
        srt: true,
    });
    s
}

fn tc(s: &mut Stream) -> &mut Transcoder {
    s.transcoder.as_mut().unwrap()
}

fn wm(s: &mut Stream) -> &mut Watermark {
    s.watermark.get_or_insert_with(Watermark::default)
}

fn dvr(s: &mut Stream) -> &mut Dvr {
    s.dvr.get_or_insert_with(Dvr::default)
}

fn thumb(s: &mut Stream) -> &mut Thumbnail {
    s.thumbnail.get_or_insert_with(Thumbnail::default)
}

fn set_flag(s: &mut Stream, output: Output, on: bool) {
    let mut p = s.protocols();
    match output {
        Output::Hls => p.hls = on,
        Output::Dash => p.dash = on,
        Output::Rtsp => p.rtsp = on,
        Output::Rtmp => p.rtmp = on,
        Output::Srt => p.srt = on,
    }
    s.protocols = Some(p);
}

fn urls(list: &[&str]) -> Vec<String> {
    list.iter().map(|u| (*u).to_owned()).collect()
}

fn restart_all() -> Action {
    Action::RestartTranscoder {
        added: Vec::new(),
        removed: Vec::new(),
    }
}

/// One row: `old`, the edit that makes `new`, the expected diff (as edits of an empty
/// diff) and the expected plan.
struct Case {
    name: String,
    old: Stream,
    edit: Box<dyn Fn(&mut Stream)>,
    diff: Box<dyn Fn(&mut StreamDiff)>,
    actions: Vec<Action>,
    warnings: Vec<String>,
}

fn case(
    name: impl Into<String>,
    old: Stream,
    edit: impl Fn(&mut Stream) + 'static,
    diff: impl Fn(&mut StreamDiff) + 'static,
    actions: Vec<Action>,
) -> Case {
    Case {
        name: name.into(),
        old,
        edit: Box::new(edit),
        diff: Box::new(diff),
        actions,
        warnings: Vec::new(),
    }
}

impl Case {
    fn warn(mut self, warning: &str) -> Self {
        self.warnings.push(warning.to_owned());
        self
    }
}

fn no_diff(_: &mut StreamDiff) {}

fn updated_input(d: &mut StreamDiff) {
    d.inputs.updated = vec![1];
}

fn transcoder_only(d: &mut StreamDiff) {
    d.transcoder_changed = true;
}

fn topology(d: &mut StreamDiff) {
    d.transcoder_changed = true;
    d.topology_changed = true;
}

fn mode_flip(d: &mut StreamDiff) {
    topology(d);
    d.mode_changed = true;
}

fn every_rung(d: &mut StreamDiff) {
    d.transcoder_changed = true;
    d.profiles.updated = vec![0, 1];
}

mod cases;
mod props;

use cases::cases;

#[test]
fn table() {
    for case in cases() {
        let name = &case.name;
        let mut new = case.old.clone();
        (case.edit)(&mut new);
        let mut expected = StreamDiff::default();
        (case.diff)(&mut expected);

        let diff = compute_diff(&case.old, &new);
        assert_eq!(diff, expected, "{name}: diff");
        assert_eq!(
            diff.is_empty(),
            expected == StreamDiff::default(),
            "{name}: is_empty"
        );
        let plan = plan(&case.old, &new, &diff);
        assert_eq!(plan.actions, case.actions, "{name}: actions");
        assert_eq!(plan.warnings, case.warnings, "{name}: warnings");
    }
}

/// Every field of [`StreamDiff`] (and every list of its nested diffs) is non-empty in some
/// row of the table, and every [`Action`] variant is planned by some row.
#[test]
fn table_covers_every_field_and_action() {
    fn leaves(value: &Value, path: String, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    leaves(child, format!("{path}.{key}"), out);
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
    let empty = serde_json::to_value(StreamDiff::default()).unwrap();
    let mut all = BTreeSet::new();
    leaves(&empty, String::new(), &mut all);
    assert_eq!(all.len(), 19, "{all:?}");

    let mut covered = BTreeSet::new();
    let mut planned = BTreeSet::new();
    for case in cases() {
        let mut diff = StreamDiff::default();
        (case.diff)(&mut diff);
        let diff = serde_json::to_value(diff).unwrap();
        for path in &all {
            let pointer = path.replace('.', "/");
            if diff.pointer(&pointer) != empty.pointer(&pointer) {
                covered.insert(path.clone());
            }
        }
        planned.extend(case.actions.iter().map(tag));
    }
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "diff fields never set: {missing:?}");
    let every: BTreeSet<_> = every_action().iter().map(tag).collect();
    let unplanned: Vec<_> = every.difference(&planned).collect();
    assert!(unplanned.is_empty(), "actions never planned: {unplanned:?}");
}

/// One of each variant; the match in [`tag`] keeps this list complete.
fn every_action() -> Vec<Action> {
    vec![
        Action::Stop,
        Action::Start,
        Action::UpdateInputs,
        Action::ReloadTranscoder,
        Action::RestartRung { index: 1 },
        Action::AddRung { index: 2 },
        Action::RemoveRung { index: 0 },
        Action::RestartTranscoder {
            added: vec![2, 3],
            removed: vec![],
        },
        Action::StartOutput {
            output: Output::Hls,
        },
        Action::StopOutput {
            output: Output::Rtmp,
        },
        Action::StartPush { url: A.into() },
        Action::StopPush { url: A.into() },
        Action::RestartPush { url: A.into() },
        Action::StartDvr,
        Action::StopDvr,
        Action::RestartDvr,
        Action::ApplyDvr,
        Action::RestartThumbnailer,
    ]
}

fn tag(action: &Action) -> &'static str {
    match action {
        Action::Stop => "stop",
        Action::Start => "start",
        Action::UpdateInputs => "update_inputs",
        Action::ReloadTranscoder => "reload_transcoder",
        Action::RestartRung { .. } => "restart_rung",
        Action::AddRung { .. } => "add_rung",
        Action::RemoveRung { .. } => "remove_rung",
        Action::RestartTranscoder { .. } => "restart_transcoder",
        Action::StartOutput { .. } => "start_output",
        Action::StopOutput { .. } => "stop_output",
        Action::StartPush { .. } => "start_push",
        Action::StopPush { .. } => "stop_push",
        Action::RestartPush { .. } => "restart_push",
        Action::StartDvr => "start_dvr",
        Action::StopDvr => "stop_dvr",
        Action::RestartDvr => "restart_dvr",
        Action::ApplyDvr => "apply_dvr",
        Action::RestartThumbnailer => "restart_thumbnailer",
    }
}

#[test]
fn actions_serialise_with_an_action_tag() {
    assert_eq!(every_action().len(), 18);
    for action in every_action() {
        let value = serde_json::to_value(&action).unwrap();
        assert_eq!(value["action"], tag(&action), "{action:?}");
    }
    let json = |a: Action| serde_json::to_value(a).unwrap();
    assert_eq!(json(Action::Stop), json!({"action": "stop"}));
    assert_eq!(
        json(Action::RestartRung { index: 1 }),
        json!({"action": "restart_rung", "index": 1})
    );
    assert_eq!(
        json(Action::RestartTranscoder {
            added: vec![2],
            removed: vec![]
        }),
        json!({"action": "restart_transcoder", "added": [2], "removed": []})
    );
    assert_eq!(
        json(Action::StopOutput {
            output: Output::Dash
        }),
        json!({"action": "stop_output", "output": "dash"})
    );
    assert_eq!(
        json(Action::RestartPush { url: B.into() }),
        json!({"action": "restart_push", "url": B})
    );
}

#[test]
fn diff_and_plan_serialise_for_dry_run() {
    let old = passthrough();
    let mut new = old.clone();
    new.inputs[1].program = 3;
    set_flag(&mut new, Output::Hls, false);
    let diff = compute_diff(&old, &new);
    assert_eq!(
        serde_json::to_value(&diff).unwrap(),
        json!({
            "now_disabled": false, "now_enabled": false,
            "inputs": {"added": [], "removed": [], "updated": [1]},
            "transcoder_changed": false, "topology_changed": false,
            "profiles": {"added": [], "removed": [], "updated": []},
            "mode_changed": false, "watermark_changed": false,
            "protocols": {"started": [], "stopped": ["hls"]},
            "push": {"added": [], "removed": [], "updated": []},
            "dvr_changed": false, "thumbnail_changed": false,
        })
    );
    assert_eq!(
        serde_json::to_value(plan(&old, &new, &diff)).unwrap(),
        json!({
            "actions": [{"action": "update_inputs"},
                        {"action": "stop_output", "output": "hls"}],
            "warnings": [],
        })
    );
}

#[test]
fn describe_every_action() {
    let described: Vec<String> = every_action().iter().map(Action::describe).collect();
    assert_eq!(
        described,
        [
            "stop the stream",
            "start the stream",
            "update the inputs (stream manager only)",
            "reload the transcoder (topology changed)",
            "restart rung track_2 (per_profile)",
            "add rung track_3 (per_profile)",
            "remove rung track_1 (per_profile)",
            "restart the transcoder with the new ladder (add track_3, track_4)",
            "start the HLS output",
            "stop the RTMP output",
            "start push to rtmps://live.example.com/app/****",
            "stop push to rtmps://live.example.com/app/****",
            "restart push to rtmps://live.example.com/app/****",
            "start recording",
            "stop recording",
            "restart recording in the new storage path",
            "apply the DVR settings at the next segment",
            "restart the thumbnailer",
        ]
    );
    assert_eq!(
        restart_all().describe(),
        "restart every FFmpeg of the stream"
    );
    assert_eq!(
        Action::RestartTranscoder {
            added: vec![2],
            removed: vec![0, 1]
        }
        .describe(),
        "restart the transcoder with the new ladder (add track_3; remove track_1, track_2)"
    );
    assert_eq!(
        Action::RestartTranscoder {
            added: vec![],
            removed: vec![1]
        }
        .describe(),
        "restart the transcoder with the new ladder (remove track_2)"
    );
}

#[test]
fn describe_redacts_push_secrets() {
    let cases = [
        (
            "rtmp://user:pw@live.example.com:1935/app/KEY?token=abc",
            "rtmp://user:****@live.example.com:1935/app/****?token=****",
        ),
        (
            "rtmp://live.example.com/app/",
            "rtmp://live.example.com/app/",
        ),
        ("rtmp://live.example.com", "rtmp://live.example.com"),
    ];
    for (url, redacted) in cases {
        assert_eq!(
            Action::StopPush { url: url.into() }.describe(),
            format!("stop push to {redacted}"),
            "{url}"
        );
    }
}

#[test]
fn plan_sorts_a_hand_built_diff() {
    let old = all_outputs();
    let diff = StreamDiff {
        protocols: ProtocolsDiff {
            started: vec![],
            stopped: vec![Output::Srt, Output::Hls],
        },
        push: KeyedDiff {
            added: urls(&[E, C]),
            removed: vec![],
            updated: vec![],
        },
        ..StreamDiff::default()
    };
    assert_eq!(
        plan(&old, &old, &diff).actions,
        vec![
            Action::StopOutput {
                output: Output::Hls
            },
            Action::StopOutput {
                output: Output::Srt
            },
            Action::StartPush { url: C.into() },
            Action::StartPush { url: E.into() },
        ]
    );
}
