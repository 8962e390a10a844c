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

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // Metadata and ignored fields.
        case(
            "metadata only",
            per_profile(),
            |s| {
                s.name = "Renamed".into();
                s.description = "new text".into();
                s.tags = vec!["sport".into()];
                s.stream_key = "rotated".into();
                s.template = Some("studio".into());
                for target in &mut s.push {
                    target.comment = "platform".into();
                }
            },
            no_diff,
            vec![],
        ),
        case(
            "legacy input fields and URL whitespace",
            passthrough(),
            |s| {
                s.inputs[1].url = format!("  {} ", s.inputs[1].url);
                s.inputs[1].reconnect = Some(json!(true));
                s.inputs[1].read_timeout_sec = Some(json!(5));
                s.inputs[1].reconnect_delay_sec = Some(json!(1));
                s.inputs[1].reconnect_max_delay_sec = Some(json!(30));
            },
            no_diff,
            vec![],
        ),
        case(
            "absent objects equal their disabled defaults",
            bare(),
            |s| {
                s.protocols = Some(Protocols::default());
                s.dvr = Some(Dvr::default());
                s.watermark = Some(Watermark::default());
                s.thumbnail = Some(Thumbnail::default());
            },
            no_diff,
            vec![],
        ),
        case(
            "thumbnail output_dir is ignored",
            passthrough(),
            |s| thumb(s).output_dir = Some(json!("/tmp/thumbs")),
            no_diff,
            vec![],
        ),
        // Inputs.
        case(
            "input added",
            passthrough(),
            |s| s.inputs.push(Input::new("udp://239.0.0.1:5000", 2)),
            |d| d.inputs.added = vec![2],
            vec![Action::UpdateInputs],
        ),
        case(
            "input removed",
            passthrough(),
            |s| {
                s.inputs.pop();
            },
            |d| d.inputs.removed = vec![1],
            vec![Action::UpdateInputs],
        ),
        case(
            "input url",
            passthrough(),
            |s| s.inputs[1].url = "srt://standby.example.org:7002".into(),
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "input headers",
            passthrough(),
            |s| {
                s.inputs[1].headers.insert("X-Token".into(), "t0k".into());
            },
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "input params",
            passthrough(),
            |s| {
                s.inputs[1].params.insert("latency".into(), "250".into());
            },
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "input net.timeout_sec",
            passthrough(),
            |s| s.inputs[1].net.timeout_sec = 20,
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "input net.insecure_tls",
            passthrough(),
            |s| s.inputs[1].net.insecure_tls = true,
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "input packet_timeout_sec",
            passthrough(),
            |s| s.inputs[1].packet_timeout_sec = 5,
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "input hot_standby",
            passthrough(),
            |s| s.inputs[1].hot_standby = Some(true),
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "input program",
            passthrough(),
            |s| s.inputs[1].program = 2,
            updated_input,
            vec![Action::UpdateInputs],
        ),
        case(
            "inputs swapped",
            passthrough(),
            |s| {
                s.inputs.swap(0, 1);
                s.inputs[0].priority = 0;
                s.inputs[1].priority = 1;
            },
            |d| d.inputs.updated = vec![0, 1],
            vec![Action::UpdateInputs],
        ),
        // Topology.
        case(
            "transcoder null -> set",
            passthrough(),
            |s| s.transcoder = Some(Transcoder::default()),
            topology,
            vec![Action::ReloadTranscoder],
        ),
        case(
            "transcoder set -> null",
            per_profile(),
            |s| s.transcoder = None,
            topology,
            vec![Action::ReloadTranscoder],
        ),
        case(
            "mode \"\" -> multi is not a change",
            multi(),
            |s| tc(s).mode = TranscoderMode::Multi,
            transcoder_only,
            vec![],
        ),
        case(
            "mode multi -> per_profile",
            multi(),
            |s| tc(s).mode = TranscoderMode::PerProfile,
            mode_flip,
            vec![Action::ReloadTranscoder],
        ),
        case(
            "mode per_profile -> \"\"",
            per_profile(),
            |s| tc(s).mode = TranscoderMode::Unset,
            mode_flip,
            vec![Action::ReloadTranscoder],
        ),
        case(
            "video.copy flip",
            per_profile(),
            |s| tc(s).video.copy = true,
            topology,
            vec![Action::ReloadTranscoder],
        ),
        case(
            "audio.copy flip that stops FFmpeg",
            copy_video(),
            |s| tc(s).audio.copy = true,
            topology,
            vec![Action::ReloadTranscoder],
        ),
        case(
            "audio.copy flip that starts FFmpeg",
            copy_all(),
            |s| tc(s).audio.copy = false,
            topology,
            vec![Action::ReloadTranscoder],
        ),
        case(
            "audio.copy flip while video transcodes",
            per_profile(),
            |s| tc(s).audio.copy = true,
            every_rung,
            vec![
                Action::RestartRung { index: 0 },
                Action::RestartRung { index: 1 },
            ],
        ),
        // Profiles, per_profile.
        case(
            "per_profile: profile updated",
            per_profile(),
            |s| tc(s).video.profiles[1].bitrate = 900,
            |d| {
                d.transcoder_changed = true;
                d.profiles.updated = vec![1];
            },
            vec![Action::RestartRung { index: 1 }],
        ),
        case(
            "per_profile: profile added",
            per_profile(),
            |s| tc(s).video.profiles.push(profile(640, 360, 800)),
            |d| {
                d.transcoder_changed = true;
                d.profiles.added = vec![2];
            },
            vec![Action::AddRung { index: 2 }],
        ),
        case(
            "per_profile: profile removed",
            per_profile(),
            |s| {
                tc(s).video.profiles.pop();
            },
            |d| {
                d.transcoder_changed = true;
                d.profiles.removed = vec![1];
            },
            vec![Action::RemoveRung { index: 1 }],
        ),
        case(
            "per_profile: two removed, one updated",
            {
                let mut s = per_profile();
                tc(&mut s).video.profiles.push(profile(640, 360, 800));
                s
            },
            |s| {
                tc(s).video.profiles.truncate(1);
                tc(s).video.profiles[0].preset = "faster".into();
            },
            |d| {
                d.transcoder_changed = true;
                d.profiles.removed = vec![1, 2];
                d.profiles.updated = vec![0];
            },
            vec![
                Action::RemoveRung { index: 1 },
                Action::RemoveRung { index: 2 },
                Action::RestartRung { index: 0 },
            ],
        ),
        case(
            "per_profile: global.fps updates every rung",
            per_profile(),
            |s| tc(s).global.fps = 25,
            every_rung,
            vec![
                Action::RestartRung { index: 0 },
                Action::RestartRung { index: 1 },
            ],
        ),
        case(
            "per_profile: shared change and a rung added",
            per_profile(),
            |s| {
                tc(s).decoder.name = "h264_cuvid".into();
                tc(s).video.profiles.push(profile(640, 360, 800));
            },
            |d| {
                every_rung(d);
                d.profiles.added = vec![2];
            },
            vec![
                Action::RestartRung { index: 0 },
                Action::RestartRung { index: 1 },
                Action::AddRung { index: 2 },
            ],
        ),
        // Profiles, multi.
        case(
            "multi: profile updated",
            multi(),
            |s| tc(s).video.profiles[0].max_bitrate = 3600,
            |d| {
                d.transcoder_changed = true;
                d.profiles.updated = vec![0];
            },
            vec![restart_all()],
        ),
        case(
            "multi: profile added",
            multi(),
            |s| tc(s).video.profiles.push(profile(640, 360, 800)),
            |d| {
                d.transcoder_changed = true;
                d.profiles.added = vec![2];
            },
            vec![Action::RestartTranscoder {
                added: vec![2],
                removed: vec![],
            }],
        ),
        case(
            "multi: profile removed",
            multi(),
            |s| {
                tc(s).video.profiles.pop();
            },
            |d| {
                d.transcoder_changed = true;
                d.profiles.removed = vec![1];
            },
            vec![Action::RestartTranscoder {
                added: vec![],
                removed: vec![1],
            }],
        ),
        case(
            "multi: audio change updates every rung",
            multi(),
            |s| tc(s).audio.bitrate = 96,
            every_rung,
            vec![restart_all()],
        ),
        case(
            "multi: decoder change updates every rung",
            multi(),
            |s| tc(s).decoder.name = "h264_cuvid".into(),
            every_rung,
            vec![restart_all()],
        ),
        case(
            "multi: extra_args change updates every rung",
            multi(),
            |s| tc(s).extra_args = vec!["-tune".into(), "zerolatency".into()],
            every_rung,
            vec![restart_all()],
        ),
        case(
            "multi: video.interlace change updates every rung",
            multi(),
            |s| tc(s).video.interlace = "tff".into(),
            every_rung,
            vec![restart_all()],
        ),
        case(
            "multi: global change and a rung added",
            multi(),
            |s| {
                tc(s).global.gop = 50;
                tc(s).video.profiles.push(profile(640, 360, 800));
            },
            |d| {
                every_rung(d);
                d.profiles.added = vec![2];
            },
            vec![Action::RestartTranscoder {
                added: vec![2],
                removed: vec![],
            }],
        ),
        // Copy rungs and no FFmpeg.
        case(
            "video.copy: the first profile describes the existing copy rung",
            copy_video(),
            |s| tc(s).video.profiles.push(profile(1280, 720, 3000)),
            |d| {
                d.transcoder_changed = true;
                d.profiles.updated = vec![0];
            },
            vec![Action::RestartRung { index: 0 }],
        ),
        case(
            "video.copy: a default first profile changes no rung",
            copy_video(),
            |s| tc(s).video.profiles.push(VideoProfile::default()),
            transcoder_only,
            vec![],
        ),
        case(
            "no FFmpeg: ladder edits change no rung",
            copy_all(),
            |s| {
                tc(s).global.fps = 30;
                tc(s).video.profiles.push(profile(640, 360, 800));
            },
            transcoder_only,
            vec![],
        ),
        // Watermark.
        case(
            "watermark on a per_profile stream",
            per_profile(),
            |s| wm(s).text = "LIVE".into(),
            |d| d.watermark_changed = true,
            vec![restart_all()],
        ),
        case(
            "watermark on a multi stream",
            multi(),
            |s| wm(s).position = "top_left".into(),
            |d| d.watermark_changed = true,
            vec![restart_all()],
        ),
        case(
            "watermark disabled",
            per_profile(),
            |s| wm(s).enabled = false,
            |d| d.watermark_changed = true,
            vec![restart_all()],
        ),
        case(
            "watermark and a profile update: no rung restarts twice",
            per_profile(),
            |s| {
                wm(s).text = "LIVE".into();
                tc(s).video.profiles[1].bitrate = 900;
            },
            |d| {
                d.watermark_changed = true;
                d.transcoder_changed = true;
                d.profiles.updated = vec![1];
            },
            vec![restart_all()],
        ),
        case(
            "watermark and a rung added, per_profile",
            per_profile(),
            |s| {
                wm(s).text = "LIVE".into();
                tc(s).video.profiles.push(profile(640, 360, 800));
            },
            |d| {
                d.watermark_changed = true;
                d.transcoder_changed = true;
                d.profiles.added = vec![2];
            },
            vec![Action::AddRung { index: 2 }, restart_all()],
        ),
        case(
            "watermark and a rung added, multi: one restart",
            multi(),
            |s| {
                wm(s).text = "LIVE".into();
                tc(s).video.profiles.push(profile(640, 360, 800));
            },
            |d| {
                d.watermark_changed = true;
                d.transcoder_changed = true;
                d.profiles.added = vec![2];
            },
            vec![Action::RestartTranscoder {
                added: vec![2],
                removed: vec![],
            }],
        ),
        case(
            "watermark with a topology change: reload only",
            per_profile(),
            |s| {
                wm(s).text = "LIVE".into();
                tc(s).mode = TranscoderMode::Multi;
            },
            |d| {
                mode_flip(d);
                d.watermark_changed = true;
            },
            vec![Action::ReloadTranscoder],
        ),
        case(
            "watermark on a passthrough stream",
            passthrough(),
            |s| {
                let w = wm(s);
                w.enabled = true;
                w.kind = "text".into();
                w.text = "LIVE".into();
            },
            |d| d.watermark_changed = true,
            vec![],
        )
        .warn("watermark needs a transcoder"),
        case(
            "watermark without FFmpeg",
            copy_all(),
            |s| wm(s).text = "LIVE".into(),
            |d| d.watermark_changed = true,
            vec![],
        )
        .warn("watermark needs a transcoder"),
        case(
            "watermark removed from a passthrough stream",
            {
                let mut s = per_profile();
                s.transcoder = None;
                s
            },
            |s| s.watermark = None,
            |d| d.watermark_changed = true,
            vec![],
        ),
        case(
            "disabled watermark edited",
            {
                let mut s = per_profile();
                wm(&mut s).enabled = false;
                s
            },
            |s| wm(s).text = "LIVE".into(),
            |d| d.watermark_changed = true,
            vec![],
        ),
        // Push.
        case(
            "push added",
            passthrough(),
            |s| s.push.push(push(C, true)),
            |d| d.push.added = urls(&[C]),
            vec![Action::StartPush { url: C.into() }],
        ),
        case(
            "disabled push added",
            passthrough(),
            |s| s.push.push(push(C, false)),
            no_diff,
            vec![],
        ),
        case(
            "push removed",
            passthrough(),
            |s| {
                s.push.remove(0);
            },
            |d| d.push.removed = urls(&[A]),
            vec![Action::StopPush { url: A.into() }],
        ),
        case(
            "push disabled",
            passthrough(),
            |s| s.push[0].enabled = false,
            |d| d.push.removed = urls(&[A]),
            vec![Action::StopPush { url: A.into() }],
        ),
        case(
            "push enabled",
            passthrough(),
            |s| s.push[1].enabled = true,
            |d| d.push.added = urls(&[B]),
            vec![Action::StartPush { url: B.into() }],
        ),
        case(
            "push timeout_sec",
            passthrough(),
            |s| s.push[0].timeout_sec = 20,
            |d| d.push.updated = urls(&[A]),
            vec![Action::RestartPush { url: A.into() }],
        ),
        case(
            "push retry_timeout_sec",
            passthrough(),
            |s| s.push[0].retry_timeout_sec = 1,
            |d| d.push.updated = urls(&[A]),
            vec![Action::RestartPush { url: A.into() }],
        ),
        case(
            "push limit",
            passthrough(),
            |s| s.push[0].limit = 3,
            |d| d.push.updated = urls(&[A]),
            vec![Action::RestartPush { url: A.into() }],
        ),
        case(
            "push profile",
            passthrough(),
            |s| s.push[0].profile = "track_2".into(),
            |d| d.push.updated = urls(&[A]),
            vec![Action::RestartPush { url: A.into() }],
        ),
        case(
            "push comment only",
            passthrough(),
            |s| s.push[0].comment = "main platform".into(),
            no_diff,
            vec![],
        ),
        case(
            "disabled push edited",
            passthrough(),
            |s| s.push[1].timeout_sec = 30,
            no_diff,
            vec![],
        ),
        case(
            "push URL whitespace",
            passthrough(),
            |s| s.push[0].url = format!(" {A} "),
            no_diff,
            vec![],
        ),
        // DVR.
        case(
            "dvr enabled",
            bare(),
            |s| dvr(s).enabled = true,
            |d| d.dvr_changed = true,
            vec![Action::StartDvr],
        ),
        case(
            "dvr disabled",
            passthrough(),
            |s| dvr(s).enabled = false,
            |d| d.dvr_changed = true,
            vec![Action::StopDvr],
        ),
        case(
            "dvr removed",
            passthrough(),
            |s| s.dvr = None,
            |d| d.dvr_changed = true,
            vec![Action::StopDvr],
        ),
        case(
            "dvr storage_path",
            passthrough(),
            |s| dvr(s).storage_path = "/mnt/big".into(),
            |d| d.dvr_changed = true,
            vec![Action::RestartDvr],
        ),
        case(
            "dvr storage_path and retention",
            passthrough(),
            |s| {
                dvr(s).storage_path = "/mnt/big".into();
                dvr(s).retention_sec = 60;
            },
            |d| d.dvr_changed = true,
            vec![Action::RestartDvr],
        ),
        case(
            "dvr retention_sec",
            passthrough(),
            |s| dvr(s).retention_sec = 60,
            |d| d.dvr_changed = true,
            vec![Action::ApplyDvr],
        ),
        case(
            "dvr segment_duration",
            passthrough(),
            |s| dvr(s).segment_duration = 6,
            |d| d.dvr_changed = true,
            vec![Action::ApplyDvr],
        ),
        case(
            "dvr max_size_gb",
            passthrough(),
            |s| dvr(s).max_size_gb = 20.0,
            |d| d.dvr_changed = true,
            vec![Action::ApplyDvr],
        ),
        case(
            "disabled dvr edited",
            {
                let mut s = passthrough();
                dvr(&mut s).enabled = false;
                s
            },
            |s| dvr(s).storage_path = "/mnt/big".into(),
            |d| d.dvr_changed = true,
            vec![],
        ),
        // Thumbnail.
        case(
            "thumbnail interval",
            passthrough(),
            |s| thumb(s).interval_sec = 30,
            |d| d.thumbnail_changed = true,
            vec![Action::RestartThumbnailer],
        ),
        case(
            "thumbnail enabled",
            bare(),
            |s| thumb(s).enabled = true,
            |d| d.thumbnail_changed = true,
            vec![Action::RestartThumbnailer],
        ),
        case(
            "thumbnail disabled",
            passthrough(),
            |s| thumb(s).enabled = false,
            |d| d.thumbnail_changed = true,
            vec![Action::RestartThumbnailer],
        ),
        case(
            "disabled thumbnail edited",
            {
                let mut s = passthrough();
                thumb(&mut s).enabled = false;
                s
            },
            |s| thumb(s).quality = 3,
            |d| d.thumbnail_changed = true,
            vec![],
        ),
        // Disabled.
        case(
            "disable",
            per_profile(),
            |s| s.disabled = true,
            |d| d.now_disabled = true,
            vec![Action::Stop],
        ),
        case(
            "disable with other edits: stop only",
            per_profile(),
            |s| {
                s.disabled = true;
                s.inputs.pop();
                tc(s).mode = TranscoderMode::Multi;
                s.push[0].enabled = false;
            },
            |d| {
                d.now_disabled = true;
                d.inputs.removed = vec![1];
                mode_flip(d);
                d.push.removed = urls(&[A]);
            },
            vec![Action::Stop],
        ),
        case(
            "enable",
            {
                let mut s = per_profile();
                s.disabled = true;
                s
            },
            |s| s.disabled = false,
            |d| d.now_enabled = true,
            vec![Action::Start],
        ),
        case(
            "enable with other edits: start only",
            {
                let mut s = passthrough();
                s.disabled = true;
                s
            },
            |s| {
                s.disabled = false;
                s.watermark = Some(Watermark {
                    enabled: true,
                    text: "LIVE".into(),
                    ..Watermark::default()
                });
                thumb(s).width = 640;
            },
            |d| {
                d.now_enabled = true;
                d.watermark_changed = true;
                d.thumbnail_changed = true;
            },
            vec![Action::Start],
        ),
        case(
            "disabled -> disabled edits: nothing runs, nothing restarts",
            {
                let mut s = per_profile();
                s.disabled = true;
                s
            },
            |s| {
                s.inputs.push(Input::new("udp://239.0.0.1:5000", 2));
                tc(s).video.profiles[0].bitrate = 2000;
                set_flag(s, Output::Dash, true);
                dvr(s).enabled = false;
                wm(s).text = "LIVE".into();
            },
            |d| {
                d.inputs.added = vec![2];
                d.transcoder_changed = true;
                d.profiles.updated = vec![0];
                d.protocols.started = vec![Output::Dash];
                d.dvr_changed = true;
                d.watermark_changed = true;
            },
            vec![],
        ),
        // Everything at once: the fixed order and sorting within groups.
        case(
            "everything at once",
            {
                let mut s = per_profile();
                s.push.push(push(E, true));
                s
            },
            |s| {
                s.inputs.push(Input::new("udp://239.0.0.1:5000", 2));
                tc(s).video.profiles[1].bitrate = 900;
                tc(s).video.profiles.push(profile(640, 360, 800));
                set_flag(s, Output::Srt, true);
                set_flag(s, Output::Dash, true);
                set_flag(s, Output::Hls, false);
                s.push[0].limit = 3;
                s.push[1].enabled = true;
                s.push[2] = push(C, true);
                dvr(s).storage_path = "/mnt/big".into();
                thumb(s).width = 640;
            },
            |d| {
                d.inputs.added = vec![2];
                d.transcoder_changed = true;
                d.profiles.updated = vec![1];
                d.profiles.added = vec![2];
                d.protocols.started = vec![Output::Dash, Output::Srt];
                d.protocols.stopped = vec![Output::Hls];
                d.push.added = urls(&[C, B]);
                d.push.removed = urls(&[E]);
                d.push.updated = urls(&[A]);
                d.dvr_changed = true;
                d.thumbnail_changed = true;
            },
            vec![
                Action::UpdateInputs,
                Action::RestartRung { index: 1 },
                Action::AddRung { index: 2 },
                Action::StopOutput {
                    output: Output::Hls,
                },
                Action::StartOutput {
                    output: Output::Dash,
                },
                Action::StartOutput {
                    output: Output::Srt,
                },
                Action::StopPush { url: E.into() },
                Action::RestartPush { url: A.into() },
                Action::StartPush { url: C.into() },
                Action::StartPush { url: B.into() },
                Action::RestartDvr,
                Action::RestartThumbnailer,
            ],
        ),
    ];
    for output in Output::ALL {
        cases.push(case(
            format!("{output} off -> on"),
            bare(),
            move |s| set_flag(s, output, true),
            move |d| d.protocols.started = vec![output],
            vec![Action::StartOutput { output }],
        ));
        cases.push(case(
            format!("{output} on -> off"),
            all_outputs(),
            move |s| set_flag(s, output, false),
            move |d| d.protocols.stopped = vec![output],
            vec![Action::StopOutput { output }],
        ));
    }
    cases
}

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

// Property tests over streams built from a small vocabulary, so that two arbitrary streams
// often share inputs, rungs and targets.

const URLS: [&str; 4] = [
    "publish://",
    "srt://a.example.org:7001",
    "udp://239.0.0.1:5000",
    "https://o.example.org/a.m3u8",
];
const PUSH_URLS: [&str; 3] = [A, B, C];

fn arb_transcoder() -> impl Strategy<Value = Transcoder> {
    (
        prop_oneof![
            Just(TranscoderMode::Unset),
            Just(TranscoderMode::Multi),
            Just(TranscoderMode::PerProfile),
        ],
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((0u32..3, 0u32..2), 0..4),
        0u32..2,
        0u32..2,
        any::<bool>(),
    )
        .prop_map(
            |(mode, video_copy, audio_copy, profiles, fps, audio_bitrate, args)| Transcoder {
                mode,
                video: VideoSettings {
                    copy: video_copy,
                    profiles: profiles
                        .into_iter()
                        .map(|(bitrate, height)| profile(0, height * 360, bitrate * 1000))
                        .collect(),
                    ..VideoSettings::default()
                },
                global: crate::stream::TranscoderGlobal {
                    fps: fps * 25,
                    ..Default::default()
                },
                audio: crate::stream::AudioSettings {
                    copy: audio_copy,
                    bitrate: audio_bitrate * 96,
                    ..Default::default()
                },
                extra_args: if args { vec!["-tune".into()] } else { vec![] },
                ..Transcoder::default()
            },
        )
}

fn arb_stream() -> impl Strategy<Value = Stream> {
    (
        any::<bool>(),
        prop::collection::vec((0usize..4, any::<bool>(), 0u32..2), 0..4),
        prop::option::of(arb_transcoder()),
        prop::option::of(prop::array::uniform5(any::<bool>())),
        prop::collection::vec((0usize..3, any::<bool>(), 0u32..2, any::<bool>()), 0..4),
        prop::option::of((any::<bool>(), any::<bool>(), 0u64..2)),
        prop::option::of((any::<bool>(), any::<bool>())),
        prop::option::of((any::<bool>(), 0u32..2)),
        any::<bool>(),
    )
        .prop_map(
            |(disabled, inputs, transcoder, protocols, pushes, dvr, wm, thumb, renamed)| {
                let mut s = bare();
                s.disabled = disabled;
                s.name = if renamed { "a".into() } else { "b".into() };
                s.inputs = inputs
                    .into_iter()
                    .enumerate()
                    .map(|(priority, (url, header, program))| {
                        let mut input = Input::new(URLS[url], priority as u32);
                        if header {
                            input.headers.insert("X-Token".into(), "t".into());
                        }
                        input.program = program;
                        input
                    })
                    .collect();
                s.transcoder = transcoder;
                s.protocols = protocols.map(|[hls, dash, rtsp, rtmp, srt]| Protocols {
                    hls,
                    dash,
                    rtsp,
                    rtmp,
                    srt,
                });
                s.push = pushes
                    .into_iter()
                    .map(|(url, enabled, limit, comment)| Push {
                        limit,
                        comment: if comment { "c".into() } else { String::new() },
                        ..push(PUSH_URLS[url], enabled)
                    })
                    .collect();
                s.dvr = dvr.map(|(enabled, elsewhere, retention_sec)| Dvr {
                    enabled,
                    storage_path: if elsewhere {
                        "/mnt".into()
                    } else {
                        String::new()
                    },
                    retention_sec,
                    ..Dvr::default()
                });
                s.watermark = wm.map(|(enabled, live)| Watermark {
                    enabled,
                    text: if live { "LIVE".into() } else { "ON AIR".into() },
                    ..Watermark::default()
                });
                s.thumbnail = thumb.map(|(enabled, interval_sec)| Thumbnail {
                    enabled,
                    interval_sec,
                    ..Thumbnail::default()
                });
                s
            },
        )
}

/// The group an action belongs to, then its key: plans must be sorted by this.
fn order(action: &Action) -> (u8, String) {
    let index = |i: &usize| format!("{i:06}");
    match action {
        Action::Stop | Action::Start => (0, String::new()),
        Action::UpdateInputs => (1, String::new()),
        Action::ReloadTranscoder => (2, String::new()),
        Action::RemoveRung { index: i } => (3, index(i)),
        Action::RestartRung { index: i } => (4, index(i)),
        Action::AddRung { index: i } => (5, index(i)),
        Action::RestartTranscoder { .. } => (6, String::new()),
        Action::StopOutput { output } => (7, format!("{}", *output as u8)),
        Action::StartOutput { output } => (8, format!("{}", *output as u8)),
        Action::StopPush { url } => (9, url.clone()),
        Action::RestartPush { url } => (10, url.clone()),
        Action::StartPush { url } => (11, url.clone()),
        Action::StartDvr | Action::StopDvr | Action::RestartDvr | Action::ApplyDvr => {
            (12, String::new())
        }
        Action::RestartThumbnailer => (13, String::new()),
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        rng_seed: RngSeed::Fixed(0x7219_0d1f),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_stream_does_not_differ_from_itself(s in arb_stream()) {
        let diff = compute_diff(&s, &s);
        prop_assert!(diff.is_empty(), "{diff:?}");
        prop_assert_eq!(&diff, &StreamDiff::default());
        prop_assert!(plan(&s, &s, &diff).is_empty());
    }

    #[test]
    fn plans_are_well_formed(a in arb_stream(), b in arb_stream()) {
        let diff = compute_diff(&a, &b);
        let plan = plan(&a, &b, &diff);
        prop_assert!(!(diff.now_disabled && diff.now_enabled));
        if plan.actions.iter().any(|x| matches!(x, Action::Stop | Action::Start)) {
            prop_assert_eq!(plan.actions.len(), 1, "{:?}", plan.actions);
            prop_assert!(plan.warnings.is_empty());
        }
        if a.disabled && b.disabled {
            prop_assert!(plan.is_empty());
        }
        if diff.is_empty() {
            prop_assert!(plan.is_empty(), "{:?}", plan);
        }
        if diff.topology_changed {
            prop_assert!(diff.profiles.is_empty());
        }
        if !diff.transcoder_changed {
            prop_assert!(!diff.topology_changed && !diff.mode_changed);
            prop_assert!(diff.profiles.is_empty());
        }
        let keys: Vec<_> = plan.actions.iter().map(order).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(keys, sorted, "{:?}", plan.actions);
    }

    #[test]
    fn diffs_are_symmetric(a in arb_stream(), b in arb_stream()) {
        let forth = compute_diff(&a, &b);
        let back = compute_diff(&b, &a);
        prop_assert_eq!(forth.now_disabled, back.now_enabled);
        prop_assert_eq!(forth.now_enabled, back.now_disabled);
        prop_assert_eq!(&forth.inputs.added, &back.inputs.removed);
        prop_assert_eq!(&forth.inputs.updated, &back.inputs.updated);
        prop_assert_eq!(&forth.profiles.added, &back.profiles.removed);
        prop_assert_eq!(&forth.profiles.updated, &back.profiles.updated);
        prop_assert_eq!(&forth.push.added, &back.push.removed);
        prop_assert_eq!(&forth.push.updated, &back.push.updated);
        prop_assert_eq!(&forth.protocols.started, &back.protocols.stopped);
        prop_assert_eq!(
            (forth.transcoder_changed, forth.topology_changed, forth.mode_changed),
            (back.transcoder_changed, back.topology_changed, back.mode_changed)
        );
        prop_assert_eq!(
            (forth.watermark_changed, forth.dvr_changed, forth.thumbnail_changed),
            (back.watermark_changed, back.dvr_changed, back.thumbnail_changed)
        );
    }
}
