//! Property tests over streams built from a small vocabulary, so that two arbitrary streams
//! often share inputs, rungs and targets.

use super::*;

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
