//! The table of stream edits and the plan each must give (one row per kind of change).

use super::*;

pub(super) fn cases() -> Vec<Case> {
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
