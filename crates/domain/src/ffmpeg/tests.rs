//! Golden argv tests per combination of SPEC §Transcoder's table, escaping tests with hostile
//! values, and the `extra_args` deny-list.

use serde_json::{Value, json};

use super::*;
use crate::stream::Watermark;

fn transcoder(value: Value) -> Transcoder {
    serde_json::from_value(value).expect("a transcoder")
}

fn ctx_all() -> ParseContext {
    ParseContext {
        hw: Hw::ALL.to_vec(),
        unsafe_extra_args: false,
    }
}

/// Parses `value` on a host with every backend; panics on errors.
fn parse_ok(value: Value) -> (Ladder, Vec<String>) {
    let (ladder, warnings) = Ladder::parse(&transcoder(value), None, &ctx_all()).expect("valid");
    (ladder.expect("runs FFmpeg"), warnings)
}

/// The failing paths and codes of `value`.
fn errors(value: Value) -> Vec<(String, ErrorCode)> {
    Ladder::parse(&transcoder(value), None, &ctx_all())
        .expect_err("invalid")
        .into_iter()
        .map(|e| (e.path, e.code))
        .collect()
}

fn ctx30() -> Context<'static> {
    Context {
        source_fps: Some(30.0),
        segment_sec: 2.0,
        first_pts: None,
        overlay: None,
    }
}

fn joined(args: &[String]) -> String {
    args.join(" ")
}

/// The value following `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].as_str())
}

const HEAD: &str = "-hide_banner -loglevel warning -nostdin -nostats -progress pipe:1 \
                    -stats_period 1 -copyts -fflags +genpts+discardcorrupt \
                    -analyzeduration 1000000 -probesize 5000000";
/// The source's rate kept, keyframes every 2 s from absolute time 0.
const PASSTHROUGH_2S: &str = "-fps_mode passthrough -enc_time_base:v -1 -force_key_frames \
    expr:if(isnan(prev_forced_t),1,gte(floor((t+0.000100)/2),floor((prev_forced_t+0.000100)/2)+1))";
const TAIL: &str = "-f mpegts -mpegts_copyts 1 -avoid_negative_ts disabled -muxdelay 0 \
                    -muxpreload 0 -flush_packets 1";

fn three_rungs() -> Value {
    json!({"audio": {"codec": "aac", "bitrate": 96},
           "video": {"profiles": [
               {"width": 1280, "height": 720, "bitrate": 3000, "max_bitrate": 3600, "preset": "faster"},
               {"width": 854, "height": 480, "bitrate": 1200},
               {"width": 640, "height": 360, "bitrate": 800}]}})
}

fn x264_rung(w: u32, h: u32, rate: &str, fd: u32) -> String {
    format!(
        "-map 0:v:0? -map 0:a:0? -c:v libx264{preset} \
         -vf scale=w={w}:h={h}:force_original_aspect_ratio=decrease:force_divisible_by=2,pad=w={w}:h={h}:x=-1:y=-1 \
         {rate} -g 60 -keyint_min 30 {PASSTHROUGH_2S} -forced-idr 1 \
         -sc_threshold 0 -c:a aac -b:a 96k {TAIL} pipe:{fd}",
        preset = if w == 1280 { " -preset faster" } else { "" },
    )
}

#[test]
fn golden_multi_x264_ladder() {
    let (ladder, warnings) = parse_ok(three_rungs());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(ladder.mode, Mode::Multi);
    assert_eq!(ladder.jobs(), [Job::Ladder]);
    let expected = [
        HEAD.to_owned(),
        "-f mpegts -i pipe:0".to_owned(),
        x264_rung(1280, 720, "-b:v 3000k -maxrate 3600k -bufsize 7200k", 3),
        x264_rung(854, 480, "-b:v 1200k", 4),
        x264_rung(640, 360, "-b:v 800k", 5),
    ]
    .join(" ");
    assert_eq!(joined(&argv(&ladder, Job::Ladder, &ctx30())), expected);
}

#[test]
fn golden_per_profile_rung() {
    let mut value = three_rungs();
    value["mode"] = json!("per_profile");
    let (ladder, _) = parse_ok(value);
    assert_eq!(ladder.jobs(), [Job::Rung(0), Job::Rung(1), Job::Rung(2)]);
    let expected = format!(
        "{HEAD} -f mpegts -i pipe:0 {}",
        x264_rung(854, 480, "-b:v 1200k", 3)
    );
    assert_eq!(joined(&argv(&ladder, Job::Rung(1), &ctx30())), expected);
    // A rung past the ladder has no output (FFmpeg refuses to start; nothing is encoded).
    let none = argv(&ladder, Job::Rung(7), &ctx30());
    assert!(!none.iter().any(|a| a.starts_with("pipe:3")), "{none:?}");
}

#[test]
fn golden_nvenc() {
    let value = json!({"global": {"hw": "nvenc", "deviceid": 1},
                       "video": {"interlace": "tff", "profiles": [
                           {"width": 1920, "height": 1080, "bitrate": 6000, "preset": "veryfast",
                            "bframes": 2, "profile": "high", "level": "4.1", "framerate": 50}]}});
    let (ladder, warnings) = parse_ok(value);
    assert_eq!(warnings.len(), 1, "pad falls back to fit: {warnings:?}");
    assert!(warnings[0].starts_with("transcoder.video.profiles[0].resize_mode"));
    let expected = format!(
        "{HEAD} -hwaccel cuda -hwaccel_output_format cuda -hwaccel_device 1 -f mpegts -i pipe:0 \
         -map 0:v:0? -map 0:a:0? -c:v h264_nvenc -preset p2 \
         -vf yadif_cuda=mode=0:parity=0:deint=0,scale_cuda=w=1920:h=1080:force_original_aspect_ratio=decrease:force_divisible_by=2 \
         -b:v 6000k -g 100 -keyint_min 50 -r 50 -fps_mode cfr -force_key_frames \
         expr:if(isnan(prev_forced_t),1,gte(floor((t+0.010000)/2),floor((prev_forced_t+0.010000)/2)+1)) \
         -forced-idr 1 \
         -bf 2 -b_ref_mode middle -profile:v high -level 4.1 \
         -c:a aac -b:a 128k {TAIL} pipe:3"
    );
    assert_eq!(joined(&argv(&ladder, Job::Ladder, &ctx30())), expected);
}

#[test]
fn golden_vaapi_qsv_videotoolbox() {
    let vaapi = json!({"global": {"hw": "vaapi", "deviceid": 1},
                       "video": {"profiles": [{"codec": "hevc", "width": 1280, "height": 720,
                                               "preset": "slow", "resize_mode": "stretch"}]}});
    let (ladder_v, warnings) = parse_ok(vaapi);
    assert!(
        warnings.is_empty(),
        "VAAPI drops presets silently: {warnings:?}"
    );
    let expected = format!(
        "{HEAD} -hwaccel vaapi -hwaccel_output_format vaapi -hwaccel_device /dev/dri/renderD129 \
         -f mpegts -i pipe:0 -map 0:v:0? -map 0:a:0? -c:v hevc_vaapi \
         -vf scale_vaapi=w=1280:h=720 -b:v 2500k -g 60 -keyint_min 30 {PASSTHROUGH_2S} -c:a aac -b:a 128k {TAIL} pipe:3"
    );
    assert_eq!(joined(&argv(&ladder_v, Job::Ladder, &ctx30())), expected);

    let qsv = json!({"global": {"hw": "qsv"},
                     "video": {"profiles": [{"width": 1280, "height": 0, "preset": "p1"}]}});
    let (ladder_q, _) = parse_ok(qsv);
    let expected = format!(
        "{HEAD} -hwaccel qsv -hwaccel_output_format qsv -qsv_device /dev/dri/renderD128 \
         -f mpegts -i pipe:0 -map 0:v:0? -map 0:a:0? -c:v h264_qsv -preset veryfast \
         -vf scale_qsv=w=1280:h=-2 -b:v 2500k -g 60 -keyint_min 30 {PASSTHROUGH_2S} -c:a aac -b:a 128k {TAIL} pipe:3"
    );
    assert_eq!(joined(&argv(&ladder_q, Job::Ladder, &ctx30())), expected);

    let vt = json!({"global": {"hw": "videotoolbox"},
                    "video": {"profiles": [{"width": 640, "height": 360, "preset": "fast",
                                            "resize_mode": "crop"}]}});
    let (ladder_t, _) = parse_ok(vt);
    let expected = format!(
        "{HEAD} -hwaccel videotoolbox -f mpegts -i pipe:0 -map 0:v:0? -map 0:a:0? \
         -c:v h264_videotoolbox \
         -vf scale=w=640:h=360:force_original_aspect_ratio=increase,crop=w=640:h=360 \
         -b:v 2500k -g 60 -keyint_min 30 {PASSTHROUGH_2S} \
         -c:a aac -b:a 128k {TAIL} pipe:3"
    );
    assert_eq!(joined(&argv(&ladder_t, Job::Ladder, &ctx30())), expected);
}

#[test]
fn golden_video_copy_with_audio_transcoding() {
    let (ladder, _) = parse_ok(json!({"video": {"copy": true},
                                    "audio": {"codec": "opus", "bitrate": 64}}));
    assert_eq!(
        ladder.rungs,
        [Rung::Copy],
        "video.copy without profiles is one rung"
    );
    let expected = format!(
        "{HEAD} -f mpegts -i pipe:0 -map 0:v:0? -map 0:a:0? -c:v copy -c:a libopus -b:a 64k \
         {TAIL} pipe:3"
    );
    assert_eq!(joined(&argv(&ladder, Job::Ladder, &ctx30())), expected);
    // Both copies: no FFmpeg at all.
    let both = transcoder(json!({"video": {"copy": true}, "audio": {"copy": true}}));
    let (none, _) = Ladder::parse(&both, None, &ctx_all()).unwrap();
    assert!(none.is_none());
}

#[test]
fn encoders_by_codec_and_backend() {
    let cases = [
        ("", Hw::None, "libx264", Family::X264),
        ("avc", Hw::None, "libx264", Family::X264),
        ("h264", Hw::Nvenc, "h264_nvenc", Family::Nvenc),
        ("h264", Hw::Vaapi, "h264_vaapi", Family::Vaapi),
        ("h264", Hw::Qsv, "h264_qsv", Family::Qsv),
        (
            "h264",
            Hw::VideoToolbox,
            "h264_videotoolbox",
            Family::VideoToolbox,
        ),
        ("h265", Hw::None, "libx265", Family::X265),
        ("HEVC", Hw::Nvenc, "hevc_nvenc", Family::Nvenc),
        ("hevc", Hw::Qsv, "hevc_qsv", Family::Qsv),
        ("vp9", Hw::None, "libvpx-vp9", Family::Vp9),
        ("vp9", Hw::Nvenc, "libvpx-vp9", Family::Vp9),
        ("vp9", Hw::Vaapi, "vp9_vaapi", Family::Vaapi),
        ("av1", Hw::None, "libsvtav1", Family::SvtAv1),
        ("av1", Hw::Nvenc, "av1_nvenc", Family::Nvenc),
        ("h264_nvenc", Hw::None, "h264_nvenc", Family::Nvenc),
        ("libx264", Hw::None, "libx264", Family::X264),
        ("h264_amf", Hw::None, "h264_amf", Family::Other),
    ];
    for (codec, hw, name, family) in cases {
        let e = VideoEncoder::select(codec, hw).unwrap();
        assert_eq!(
            (e.name.as_str(), e.family),
            (name, family),
            "{codec} on {hw}"
        );
    }
    for codec in ["mpeg2video", "libvpx"] {
        assert!(matches!(
            VideoEncoder::select(codec, Hw::None),
            Err(EncoderError::Unknown(_))
        ));
    }
    for codec in ["-y", "a b", "libx264;rm"] {
        assert!(matches!(
            VideoEncoder::select(codec, Hw::None),
            Err(EncoderError::Malformed(_))
        ));
    }
}

#[test]
fn presets_translate_across_families() {
    let preset = |encoder: &str, preset: &str| {
        let e = VideoEncoder::select(encoder, Hw::None).unwrap();
        e.preset(preset)
    };
    let named = |s: &str| Ok(Some(Preset::Named(s.to_owned())));
    // x264 names onto NVENC, and NVENC's own names.
    for (x264, p) in [
        ("ultrafast", "p1"),
        ("superfast", "p1"),
        ("veryfast", "p2"),
        ("faster", "p3"),
        ("fast", "p3"),
        ("medium", "p4"),
        ("slow", "p5"),
        ("slower", "p6"),
        ("veryslow", "p7"),
        ("placebo", "p7"),
        ("p5", "p5"),
        ("llhq", "llhq"),
    ] {
        assert_eq!(preset("h264_nvenc", x264), named(p), "{x264}");
    }
    // p1…p7 onto x264, x265 and QSV.
    let back = [
        "ultrafast",
        "veryfast",
        "fast",
        "medium",
        "slow",
        "slower",
        "veryslow",
    ];
    for (i, name) in back.iter().enumerate() {
        let p = format!("p{}", i + 1);
        assert_eq!(preset("libx264", &p), named(name));
        assert_eq!(preset("libx265", &p), named(name));
        let qsv = if i == 0 { "veryfast" } else { name };
        assert_eq!(preset("h264_qsv", &p), named(qsv));
    }
    assert_eq!(preset("libx264", "placebo"), named("placebo"));
    assert_eq!(preset("h264_qsv", "ultrafast"), named("veryfast"));
    // VAAPI and VideoToolbox take none; SVT-AV1 and libvpx have their own scales.
    assert_eq!(preset("h264_vaapi", "fast"), Ok(None));
    assert_eq!(preset("h264_videotoolbox", "p3"), Ok(None));
    assert_eq!(preset("av1", "medium"), named("6"));
    assert_eq!(preset("av1", "9"), named("9"));
    assert_eq!(preset("vp9", "veryfast"), Ok(Some(Preset::CpuUsed(7))));
    // Unknown: dropped with a warning.
    assert!(preset("libx264", "turbo").is_err());
    assert!(preset("h264_amf", "fast").is_err());
    let (ladder, warnings) = parse_ok(json!({"video": {"profiles": [{"preset": "turbo"}]}}));
    assert_eq!(ladder.rungs[0].encode().unwrap().preset, None);
    assert_eq!(
        warnings,
        ["transcoder.video.profiles[0].preset: unknown preset \"turbo\" for libx264; dropped"]
    );
}

#[test]
fn vp9_and_av1_argv_and_their_refusal_until_ts_carries_them() {
    let (mut ladder, _) =
        parse_ok(json!({"video": {"profiles": [{"width": 1280, "height": 720}]}}));
    let Rung::Encode(encode) = &mut ladder.rungs[0] else {
        panic!("an encoded rung")
    };
    encode.encoder = VideoEncoder::select("vp9", Hw::None).unwrap();
    encode.preset = encode.encoder.preset("fast").unwrap();
    let args = argv(&ladder, Job::Ladder, &ctx30());
    assert_eq!(after(&args, "-c:v"), Some("libvpx-vp9"));
    assert_eq!(after(&args, "-deadline"), Some("realtime"));
    assert_eq!(after(&args, "-cpu-used"), Some("6"));
    assert_eq!(after(&args, "-forced-idr"), None);

    let Rung::Encode(encode) = &mut ladder.rungs[0] else {
        panic!("an encoded rung")
    };
    encode.encoder = VideoEncoder::select("av1", Hw::None).unwrap();
    encode.preset = encode.encoder.preset("p4").unwrap();
    ladder.rungs.push(ladder.rungs[0].clone());
    let args = argv(&ladder, Job::Rung(0), &ctx30());
    assert_eq!(after(&args, "-c:v"), Some("libsvtav1"));
    assert_eq!(after(&args, "-preset"), Some("6"));
    assert_eq!(after(&args, "-svtav1-params"), Some("scd=0"));

    assert_eq!(
        errors(json!({"video": {"profiles": [{"codec": "vp9"}, {"codec": "av1"}]}})),
        [
            (
                "transcoder.video.profiles[0].codec".into(),
                ErrorCode::Unsupported
            ),
            (
                "transcoder.video.profiles[1].codec".into(),
                ErrorCode::Unsupported
            )
        ]
    );
}

#[test]
fn gop_keyint_fps_and_scene_cut() {
    // One rung: scene cut stays on; GOP from keyframe_interval × framerate.
    let (one, _) = parse_ok(
        json!({"video": {"profiles": [{"framerate": 25, "keyframe_interval": 4,
                                                          "refs": 3, "bframes": 0}]}}),
    );
    // The process's first frame is at 10.05 s: FFmpeg's `t` counts from there.
    let ctx = Context {
        first_pts: Some(tributary_media::Ts90(904_500)),
        ..ctx30()
    };
    let args = argv(&one, Job::Ladder, &ctx);
    assert_eq!(after(&args, "-g"), Some("100"));
    assert_eq!(after(&args, "-keyint_min"), Some("50"));
    assert_eq!(after(&args, "-r"), Some("25"));
    assert_eq!(after(&args, "-sc_threshold"), None);
    assert_eq!(after(&args, "-bf"), Some("0"));
    assert_eq!(after(&args, "-b_ref_mode"), None);
    assert_eq!(after(&args, "-refs"), Some("3"));
    assert_eq!(
        after(&args, "-force_key_frames"),
        Some(
            "expr:if(isnan(prev_forced_t),1,\
             gte(floor((t+10.070000)/4),floor((prev_forced_t+10.070000)/4)+1))"
        ),
        "absolute instants, a frame counting from half a frame (at 25 fps) before one"
    );
    // global.gop and global.fps win; the keyframe grid follows the GOP.
    let (global, _) = parse_ok(json!({"global": {"gop": 48, "fps": 24},
                                    "video": {"profiles": [{}, {"codec": "h265"}]}}));
    let args = argv(&global, Job::Ladder, &Context::new(2.0));
    assert_eq!(after(&args, "-g"), Some("48"));
    assert_eq!(after(&args, "-keyint_min"), Some("24"));
    assert_eq!(after(&args, "-r"), Some("24"));
    assert_eq!(after(&args, "-sc_threshold"), Some("0"));
    assert_eq!(after(&args, "-x265-params"), Some("scenecut=0"));
    // No rate anywhere: GOP from 25 fps, the source's timing kept.
    let (plain, _) = parse_ok(json!({"video": {"profiles": [{}]}}));
    let args = argv(&plain, Job::Ladder, &Context::new(2.0));
    assert_eq!(after(&args, "-g"), Some("50"));
    assert_eq!(after(&args, "-fps_mode"), Some("passthrough"));
}

#[test]
fn keyframe_grid_is_the_same_for_every_rung_and_process() {
    let mut value = three_rungs();
    value["mode"] = json!("per_profile");
    let (per_profile, _) = parse_ok(value);
    let (multi, _) = parse_ok(three_rungs());
    let grids: Vec<String> = per_profile
        .jobs()
        .into_iter()
        .map(|job| argv(&per_profile, job, &ctx30()))
        .chain([argv(&multi, Job::Ladder, &ctx30())])
        .flat_map(|args| {
            args.windows(2)
                .filter(|w| w[0] == "-force_key_frames")
                .map(|w| w[1].clone())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(grids.len(), 6);
    assert!(grids.iter().all(|g| g == &grids[0]), "{grids:?}");
    assert!(
        grids[0].contains("floor((t+"),
        "absolute instants: {}",
        grids[0]
    );
}

#[test]
fn resize_modes_on_the_cpu() {
    let vf = |profile: Value| {
        let (ladder, _) = parse_ok(json!({"video": {"profiles": [profile]}}));
        after(&argv(&ladder, Job::Ladder, &ctx30()), "-vf").map(str::to_owned)
    };
    let fit = "force_original_aspect_ratio=decrease:force_divisible_by=2";
    assert_eq!(
        vf(json!({"width": 640, "height": 360})).unwrap(),
        format!("scale=w=640:h=360:{fit},pad=w=640:h=360:x=-1:y=-1")
    );
    assert_eq!(
        vf(json!({"width": 640, "height": 360, "resize_mode": "fit"})).unwrap(),
        format!("scale=w=640:h=360:{fit}")
    );
    assert_eq!(
        vf(json!({"width": 640, "height": 360, "resize_mode": "stretch", "sar": "1:1"})).unwrap(),
        "scale=w=640:h=360,setsar=sar=1/1"
    );
    assert_eq!(
        vf(json!({"width": 640, "height": 360, "resize_mode": "crop"})).unwrap(),
        "scale=w=640:h=360:force_original_aspect_ratio=increase,crop=w=640:h=360"
    );
    assert_eq!(vf(json!({"height": 360})).unwrap(), "scale=w=-2:h=360");
    assert_eq!(vf(json!({})), None, "source size: no filter");
    let (deint, _) = parse_ok(json!({"video": {"interlace": "auto", "profiles": [{}]}}));
    assert_eq!(
        after(&argv(&deint, Job::Ladder, &ctx30()), "-vf"),
        Some("yadif=mode=0:parity=-1:deint=0")
    );
}

#[test]
fn audio_codecs_copy_and_filters() {
    let audio = |value: Value| {
        let (ladder, warnings) = parse_ok(json!({"video": {"profiles": [{}]}, "audio": value}));
        let args = argv(&ladder, Job::Ladder, &ctx30());
        let start = args.iter().position(|a| a == "-c:a").expect("-c:a");
        let end = start + args[start..].iter().position(|a| a == "-f").expect("-f");
        (args[start..end].join(" "), warnings)
    };
    assert_eq!(audio(json!({})).0, "-c:a aac -b:a 128k");
    assert_eq!(
        audio(json!({"codec": "mp3", "bitrate": 192, "sample_rate": 44100, "channels": 2})).0,
        "-c:a libmp3lame -b:a 192k -ar 44100 -ac 2"
    );
    assert_eq!(
        audio(json!({"codec": "ac3", "normalize": true, "volume": "+9dB", "language": "eng"})).0,
        "-c:a ac3 -b:a 128k -af loudnorm=I=-23:LRA=7:TP=-2,volume=9dB -metadata:s:a:0 language=eng"
    );
    assert_eq!(
        audio(json!({"volume": "0.5"})).0,
        "-c:a aac -b:a 128k -af volume=0.5"
    );
    assert_eq!(
        audio(json!({"volume": "-6dB"})).0,
        "-c:a aac -b:a 128k -af volume=-6dB"
    );
    let (copy, warnings) = audio(json!({"codec": "copy", "normalize": true}));
    assert_eq!(copy, "-c:a copy");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(audio(json!({"copy": true, "codec": "mp3"})).0, "-c:a copy");
    assert_eq!(
        errors(json!({"video": {"profiles": [{}]},
                      "audio": {"codec": "flac", "volume": "-6", "bitrate": 5000,
                                "language": "en;g"}})),
        [
            ("transcoder.audio.codec".into(), ErrorCode::InvalidField),
            ("transcoder.audio.bitrate".into(), ErrorCode::InvalidField),
            ("transcoder.audio.volume".into(), ErrorCode::InvalidField),
            ("transcoder.audio.language".into(), ErrorCode::InvalidField)
        ]
    );
}

#[test]
fn every_field_is_checked_with_its_path() {
    let got = errors(json!({
        "global": {"hw": "cuda", "fps": 500},
        "decoder": {"name": "h264 -i x"},
        "video": {"interlace": "weird", "profiles": [
            {"width": 641, "bitrate": 3000, "max_bitrate": 1000, "framerate": -1,
             "keyframe_interval": 100, "codec": "mpeg2video", "profile": "-main",
             "sar": "16/9", "resize_mode": "zoom", "refs": 99}]}}));
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "transcoder.global.hw",
            "transcoder.decoder.name",
            "transcoder.video.interlace",
            "transcoder.global.fps",
            "transcoder.video.profiles[0].width",
            "transcoder.video.profiles[0].max_bitrate",
            "transcoder.video.profiles[0].framerate",
            "transcoder.video.profiles[0].keyframe_interval",
            "transcoder.video.profiles[0].codec",
            "transcoder.video.profiles[0].profile",
            "transcoder.video.profiles[0].refs",
            "transcoder.video.profiles[0].sar",
            "transcoder.video.profiles[0].resize_mode",
        ]
    );
    assert_eq!(
        errors(json!({"video": {"profiles": []}})),
        [("transcoder.video.profiles".into(), ErrorCode::InvalidField)]
    );
    assert_eq!(
        errors(json!({"video": {"profiles": vec![json!({}); 17]}}))[0].0,
        "transcoder.video.profiles"
    );
}

#[test]
fn hardware_must_be_present_and_match_the_encoder() {
    let cpu_only = ParseContext::default();
    let nvenc = transcoder(json!({"global": {"hw": "nvenc"}, "video": {"profiles": [{}]}}));
    let err = Ladder::parse(&nvenc, None, &cpu_only).unwrap_err();
    assert_eq!(err[0].path, "transcoder.global.hw");
    assert_eq!(
        err[0].message,
        "hardware backend nvenc is not available on this host"
    );
    assert_eq!(
        errors(json!({"global": {"hw": "nvenc"},
                      "video": {"profiles": [{"codec": "libx264"}, {"codec": "h264_vaapi"}]}})),
        [
            (
                "transcoder.video.profiles[0].codec".into(),
                ErrorCode::InvalidField
            ),
            (
                "transcoder.video.profiles[1].codec".into(),
                ErrorCode::InvalidField
            )
        ]
    );
    // NVENC takes frames from system memory, so it works without hwaccel decoding.
    assert!(
        Ladder::parse(
            &transcoder(json!({"video": {"profiles": [{"codec": "h264_nvenc"}]}})),
            None,
            &cpu_only
        )
        .is_ok()
    );
}

#[test]
fn extra_args_deny_list() {
    let denied = [
        "-i",
        "-y",
        "-n",
        "-f",
        "-filter_script",
        "-filter_script:v",
        "-filter_complex_script",
        "-attach",
        "-dump_attachment",
        "-progress",
        "-report",
        "/etc/passwd",
        "../x",
        "a/../b",
        "http://example.org/x",
        "file://x",
    ];
    for arg in denied {
        let got = errors(json!({"video": {"profiles": [{}]}, "extra_args": ["-tune", arg]}));
        assert_eq!(
            got,
            [("transcoder.extra_args[1]".into(), ErrorCode::InvalidField)],
            "{arg}"
        );
    }
    let allowed = json!({"video": {"profiles": [{}]},
                         "extra_args": ["-tune", "zerolatency", "-x264-params", "nal-hrd=cbr"]});
    let (ladder, _) = parse_ok(allowed.clone());
    let args = argv(&ladder, Job::Ladder, &ctx30());
    let tail = args.iter().position(|a| a == "-tune").unwrap();
    assert_eq!(
        args[tail..tail + 5],
        ["-tune", "zerolatency", "-x264-params", "nal-hrd=cbr", "-f"],
        "extra_args come last, before the muxer"
    );
    // The deny-list can be lifted; the size cap cannot.
    let lifted = ParseContext {
        unsafe_extra_args: true,
        ..ctx_all()
    };
    let value = json!({"video": {"profiles": [{}]}, "extra_args": ["-report", "/tmp/x"]});
    assert!(Ladder::parse(&transcoder(value), None, &lifted).is_ok());
    let value = json!({"video": {"profiles": [{}]}, "extra_args": ["x".repeat(5000)]});
    assert!(Ladder::parse(&transcoder(value), None, &lifted).is_err());
}

/// The keyframe interval `-force_key_frames` uses in `args` (the `k` of its expression).
fn forced_interval(args: &[String]) -> f64 {
    let expr = after(args, "-force_key_frames").expect("keyframes are forced");
    let k = expr
        .split('/')
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the expression divides by the interval");
    k.parse().expect("a number")
}

#[test]
fn the_keyframe_grid_is_the_interval_every_rung_forces() {
    // Default: the HLS segment; every rung's argv forces it, in both modes.
    for mode in ["multi", "per_profile"] {
        let mut value = three_rungs();
        value["mode"] = json!(mode);
        assert_eq!(keyframe_grid(&transcoder(value.clone()), 2.0), Some(2.0));
        let (ladder, _) = parse_ok(value);
        for job in ladder.jobs() {
            let args = argv(&ladder, job, &ctx30());
            assert_eq!(forced_interval(&args), 2.0, "{job:?}");
        }
    }
    // A shared keyframe_interval wins over the segment length.
    let mut value = three_rungs();
    for i in 0..3 {
        value["video"]["profiles"][i]["keyframe_interval"] = json!(1);
    }
    assert_eq!(keyframe_grid(&transcoder(value.clone()), 2.0), Some(1.0));
    let (ladder, _) = parse_ok(value.clone());
    assert_eq!(forced_interval(&argv(&ladder, Job::Ladder, &ctx30())), 1.0);
    // Rungs that disagree, a GOP in frames, copied video or one rung: no shared grid.
    value["video"]["profiles"][2]["keyframe_interval"] = json!(3);
    assert_eq!(keyframe_grid(&transcoder(value), 2.0), None);
    let mut value = three_rungs();
    value["global"] = json!({"gop": 50});
    assert_eq!(keyframe_grid(&transcoder(value), 2.0), None);
    let mut value = three_rungs();
    value["video"]["copy"] = json!(true);
    assert_eq!(keyframe_grid(&transcoder(value), 2.0), None);
    let one = json!({"video": {"profiles": [{"width": 640, "height": 360}]}});
    assert_eq!(keyframe_grid(&transcoder(one), 2.0), None);
}

#[test]
fn a_ladder_follows_the_segment_length_where_a_rung_sets_no_interval() {
    let follows = |value: Value| parse_ok(value).0.gop_follows_segment();
    assert!(follows(three_rungs()));
    // One rung without an interval is enough: its FFmpeg forces keyframes every S.
    let mut value = three_rungs();
    for i in 0..2 {
        value["video"]["profiles"][i]["keyframe_interval"] = json!(1);
    }
    assert!(follows(value.clone()));
    value["video"]["profiles"][2]["keyframe_interval"] = json!(1);
    assert!(!follows(value), "every rung sets its own");
    let mut value = three_rungs();
    value["global"] = json!({"gop": 50});
    assert!(!follows(value), "a GOP in frames");
    let copy = json!({"video": {"copy": true}, "audio": {"bitrate": 64}});
    assert!(!follows(copy), "copied video forces nothing");
}

fn overlay(value: Value) -> Overlay {
    let w: Watermark = serde_json::from_value(value).expect("a watermark");
    Overlay::parse(&w).expect("valid watermark")
}

fn with_overlay(ladder: &Ladder, overlay: &Overlay, file: &str) -> Vec<String> {
    let ctx = Context {
        overlay: Some(OverlayInput { overlay, file }),
        ..ctx30()
    };
    argv(ladder, Job::Ladder, &ctx)
}

#[test]
fn golden_watermarks() {
    let (ladder, _) = parse_ok(json!({"video": {"profiles": [
        {"width": 1280, "height": 720, "resize_mode": "stretch"},
        {"width": 640, "height": 360, "resize_mode": "stretch"}]}}));
    let text = overlay(
        json!({"enabled": true, "type": "text", "text": "ON AIR %H:%M",
                              "position": "top_right", "font_color": "yellow@0.5",
                              "opacity": 0.5, "resize": true}),
    );
    let args = with_overlay(&ladder, &text, "/run/t/watermark.txt");
    let vfs: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "-vf")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(
        vfs,
        [
            "scale=w=1280:h=720,drawtext=textfile=/run/t/watermark.txt:expansion=strftime:\
             fontsize=24:fontcolor=yellow@0.5:x=w-tw-10:y=10:alpha=0.5",
            "scale=w=640:h=360,drawtext=textfile=/run/t/watermark.txt:expansion=strftime:\
             fontsize=12:fontcolor=yellow@0.5:x=w-tw-5:y=5:alpha=0.5",
        ]
    );

    let image = overlay(json!({"enabled": true, "type": "image", "asset_id": "logo",
                               "position": "bottom_left", "offset_x": -4, "opacity": 0.25}));
    assert_eq!(
        image.kind,
        OverlayKind::Image(ImageSource::Asset("logo".into()))
    );
    let args = with_overlay(&ladder, &image, "/data/watermarks/logo.png");
    assert_eq!(
        after(&args, "-vf"),
        Some(
            "[in]scale=w=1280:h=720[base];movie=filename=/data/watermarks/logo.png,format=rgba,\
             colorchannelmixer=aa=0.25[wm];[base][wm]overlay=x=-4:y=H-h-10[out]"
        )
    );

    let (plain, _) = parse_ok(json!({"video": {"profiles": [{}]}}));
    let centred = overlay(
        json!({"enabled": true, "type": "image", "image_path": "/srv/a.png",
                                 "position": "center"}),
    );
    assert_eq!(
        after(&with_overlay(&plain, &centred, "/srv/a.png"), "-vf"),
        Some(
            "movie=filename=/srv/a.png,format=rgba,colorchannelmixer=aa=1[wm];\
             [in][wm]overlay=x=(W-w)/2:y=(H-h)/2[out]"
        )
    );

    // NVENC: the frame is downloaded for the CPU filter and uploaded again.
    let (nvenc, _) = parse_ok(json!({"global": {"hw": "nvenc"}, "video": {"profiles": [{}]}}));
    let custom = overlay(json!({"enabled": true, "type": "text", "text": "x",
                                "position": "custom", "x": "w/2"}));
    assert_eq!(
        after(&with_overlay(&nvenc, &custom, "/t/w.txt"), "-vf"),
        Some(
            "hwdownload,format=nv12,drawtext=textfile=/t/w.txt:expansion=strftime:fontsize=24:\
             fontcolor=white:x=w/2:y=10,hwupload_cuda"
        )
    );
}

/// FFmpeg's `av_get_token`: reads up to an unescaped character of `term`, `\x` → `x`,
/// `'…'` literal, leading white space skipped, unescaped trailing white space dropped.
fn get_token(s: &mut &str, term: &str) -> String {
    let mut chars = s
        .trim_start_matches([' ', '\n', '\t', '\r'])
        .chars()
        .peekable();
    let mut out = String::new();
    let mut end = 0;
    let mut consumed = s.len() - s.trim_start_matches([' ', '\n', '\t', '\r']).len();
    while let Some(&c) = chars.peek() {
        if term.contains(c) {
            break;
        }
        chars.next();
        consumed += c.len_utf8();
        if c == '\\' {
            if let Some(n) = chars.next() {
                consumed += n.len_utf8();
                out.push(n);
                end = out.len();
            }
        } else if c == '\'' {
            for q in chars.by_ref() {
                consumed += q.len_utf8();
                if q == '\'' {
                    break;
                }
                out.push(q);
            }
            end = out.len();
        } else {
            out.push(c);
        }
    }
    while out.len() > end && out.ends_with([' ', '\n', '\t', '\r']) {
        out.pop();
    }
    *s = &s[consumed..];
    out
}

/// One filter of a parsed graph.
#[derive(Debug, PartialEq)]
struct Filter {
    inputs: Vec<String>,
    name: String,
    options: Vec<(String, String)>,
    outputs: Vec<String>,
}

/// Parses a filter graph as FFmpeg does (graph level, then each filter's options).
fn parse_graph(mut s: &str) -> Vec<Filter> {
    fn labels(s: &mut &str) -> Vec<String> {
        let mut labels = Vec::new();
        while let Some(rest) = s.strip_prefix('[') {
            *s = rest;
            labels.push(get_token(s, "]"));
            *s = s.strip_prefix(']').expect("a closed label");
        }
        labels
    }
    let mut filters = Vec::new();
    loop {
        let inputs = labels(&mut s);
        let name = get_token(&mut s, "=,;[");
        let mut options = Vec::new();
        if let Some(rest) = s.strip_prefix('=') {
            s = rest;
            let owned = get_token(&mut s, "[],;");
            let mut args: &str = &owned;
            while !args.is_empty() {
                let key_len = args
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "-_/.".contains(c)))
                    .unwrap_or(args.len());
                let key = if args[key_len..].starts_with('=') {
                    let key = args[..key_len].to_owned();
                    args = &args[key_len + 1..];
                    key
                } else {
                    String::new()
                };
                options.push((key, get_token(&mut args, ":")));
                args = args.strip_prefix(':').unwrap_or(args);
            }
        }
        let outputs = labels(&mut s);
        filters.push(Filter {
            inputs,
            name,
            options,
            outputs,
        });
        match s.chars().next() {
            None => return filters,
            Some(',' | ';') => s = &s[1..],
            Some(other) => panic!("unexpected {other:?} in graph at {s:?}"),
        }
    }
}

/// The graph's shape: every filter's labels, name and option keys, without values.
fn shape(filters: &[Filter]) -> Vec<String> {
    filters
        .iter()
        .map(|f| {
            let keys: Vec<&str> = f.options.iter().map(|(k, _)| k.as_str()).collect();
            format!("{:?}{}{:?}{:?}", f.inputs, f.name, keys, f.outputs)
        })
        .collect()
}

fn option<'a>(filters: &'a [Filter], name: &str, key: &str) -> &'a str {
    filters
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.options.iter().find(|(k, _)| k == key))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name}.{key} in {filters:?}"))
}

const HOSTILE: &str = "a'b:c\\d;e[f]g,h\ni j ";

#[test]
fn hostile_text_never_reaches_the_argv() {
    let (ladder, _) = parse_ok(json!({"video": {"profiles": [{"width": 640, "height": 360}]}}));
    let benign = overlay(json!({"enabled": true, "type": "text", "text": "ON AIR"}));
    let hostile = overlay(json!({"enabled": true, "type": "text", "text": HOSTILE}));
    assert_eq!(
        with_overlay(&ladder, &hostile, "/t/w.txt"),
        with_overlay(&ladder, &benign, "/t/w.txt"),
        "the text goes through a file; the argv is the same whatever it says"
    );
}

#[test]
fn hostile_paths_and_positions_leave_the_graph_unchanged() {
    let (ladder, _) = parse_ok(json!({"video": {"interlace": "tff", "profiles": [
        {"width": 640, "height": 360}]}}));
    let benign_font = "/fonts/a.ttf";
    let hostile_font = format!("/fonts/{HOSTILE}.ttf");
    let text = |font: &str| {
        overlay(
            json!({"enabled": true, "type": "text", "text": "x", "font_file": font,
                       "position": "custom", "x": "max(10, w-tw) / 2", "y": "(h - th) * 0.5"}),
        )
    };
    let vf = |overlay: &Overlay, file: &str| {
        let args = with_overlay(&ladder, overlay, file);
        after(&args, "-vf").expect("-vf").to_owned()
    };
    let hostile_file = format!("/run/{HOSTILE}/w.txt");
    let good = parse_graph(&vf(&text(benign_font), "/run/t/w.txt"));
    let evil = parse_graph(&vf(&text(&hostile_font), &hostile_file));
    assert_eq!(
        shape(&evil),
        shape(&good),
        "same filters, same options, same links"
    );
    assert_eq!(
        shape(&good),
        [
            "[]yadif[\"mode\", \"parity\", \"deint\"][]",
            "[]scale[\"w\", \"h\", \"force_original_aspect_ratio\", \"force_divisible_by\"][]",
            "[]pad[\"w\", \"h\", \"x\", \"y\"][]",
            "[]drawtext[\"textfile\", \"expansion\", \"fontsize\", \"fontcolor\", \"x\", \"y\", \"fontfile\"][]",
        ]
    );
    assert_eq!(option(&evil, "drawtext", "fontfile"), hostile_font);
    assert_eq!(option(&evil, "drawtext", "textfile"), hostile_file);
    assert_eq!(option(&evil, "drawtext", "x"), "max(10, w-tw) / 2");
    assert_eq!(option(&evil, "drawtext", "y"), "(h - th) * 0.5");

    let image = |path: &str| {
        overlay(
            json!({"enabled": true, "type": "image", "image_path": path, "position": "custom",
                       "x": "W-w-(10,5)", "y": "H/2"}),
        )
    };
    let hostile_image = format!("/img/{HOSTILE}.png");
    let good = parse_graph(&vf(&image("/img/a.png"), "/img/a.png"));
    let evil = parse_graph(&vf(&image(&hostile_image), &hostile_image));
    assert_eq!(shape(&evil), shape(&good));
    assert_eq!(good.len(), 7, "{good:?}");
    assert_eq!(option(&evil, "movie", "filename"), hostile_image);
    assert_eq!(option(&evil, "overlay", "x"), "W-w-(10,5)");
}

#[test]
fn escaping_round_trips_every_special_character() {
    for value in [
        HOSTILE, "'", "\\", ":", ",", ";", "[", "]", " lead", "trail ", "\n", "''\\\\",
    ] {
        let escaped = filter_value(value);
        let graph = format!("drawtext=textfile={escaped}:x=1");
        let parsed = parse_graph(&graph);
        assert_eq!(parsed.len(), 1, "{value:?} → {graph:?}");
        assert_eq!(option(&parsed, "drawtext", "textfile"), value);
        assert_eq!(option(&parsed, "drawtext", "x"), "1");
    }
}
