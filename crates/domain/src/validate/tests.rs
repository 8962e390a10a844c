//! Stream bodies decoded, checked and refused, field by field.

use serde_json::json;

use super::*;

fn code() -> StreamCode {
    StreamCode::parse("cam1").unwrap()
}

fn all_support() -> Support {
    Support::everything()
}

fn one_rung() -> Value {
    json!({"video": {"profiles": [{}]}})
}

fn fails(body: Value, support: &Support) -> Vec<(String, ErrorCode)> {
    decode_stream(&code(), body, support)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.path, e.code))
        .collect()
}

#[test]
fn decodes_spec_example() {
    let body = json!({"name": "Match Day", "stream_key": "b41c7e09d2",
     "inputs": [{"url": "publish://", "priority": 0},
                {"url": "srt://standby.example.org:7001?streamid=match&latency=250", "priority": 1},
                {"url": "https://origin.example.org/match/master.m3u8", "priority": 2,
                 "headers": {"X-Origin-Token": "t0k"}, "net": {"timeout_sec": 20}}],
     "transcoder": {"mode": "per_profile", "audio": {"codec": "aac", "bitrate": 96},
       "video": {"profiles": [{"width": 1280, "height": 720, "bitrate": 3000, "max_bitrate": 3600},
                              {"width": 854, "height": 480, "bitrate": 1200, "preset": "faster"}]}},
     "protocols": {"hls": true, "dash": true, "rtmp": true},
     "push": [{"url": "rtmps://live.example.com/app/SECRET", "enabled": true, "comment": "platform"}],
     "dvr": {"enabled": true, "retention_sec": 43200, "max_size_gb": 20},
     "watermark": {"enabled": true, "type": "text", "text": "ON AIR", "position": "top_left"}});
    let (spec, warnings) = decode_stream(&code(), body, &all_support()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let stream = spec.stream();
    assert_eq!(spec.inputs().len(), 3);
    assert_eq!(stream.push[0].timeout_sec, 10);
    assert_eq!(stream.push[0].retry_timeout_sec, 5);
}

#[test]
fn dvr_storage_path_lies_inside_the_storage_roots() {
    let support = Support {
        roots: std::sync::Arc::new(crate::roots::Roots {
            file_input: Vec::new(),
            storage: vec!["/srv/data".into()],
        }),
        ..all_support()
    };
    let path = |p: &str| {
        let body = json!({"inputs": [{"url": "publish://", "priority": 0}],
                          "dvr": {"enabled": true, "storage_path": p}});
        decode_stream(&code(), body, &support)
            .err()
            .map(|e| e.0.iter().map(|f| f.path.clone()).collect::<Vec<_>>())
    };
    assert_eq!(path(""), None);
    assert_eq!(path("/srv/data/dvr2"), None);
    for bad in [
        "/srv/other",
        "relative/dir",
        "/srv/data/../etc",
        "/srv/database",
    ] {
        assert_eq!(
            path(bad),
            Some(vec!["dvr.storage_path".to_owned()]),
            "{bad}"
        );
    }
}

#[test]
fn field_caps_name_every_field_over_its_cap() {
    let long = |n: usize| "x".repeat(n);
    let body = json!({
        "name": "é".repeat(257),
        "description": long(4097),
        "tags": [long(65), "ok"],
        "inputs": [{"url": format!("udp://127.0.0.1:5000?{}", long(4096)), "priority": 0}],
        "push": (0..65).map(|i| json!({"url": format!("rtmp://h/app/{i}")})).collect::<Vec<_>>(),
    });
    let errors = decode_record(&code(), body).unwrap_err();
    let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["description", "inputs[0].url", "name", "push", "tags[0]"]
    );
    assert!(
        errors.0[2]
            .message
            .contains("at most 256 characters, got 257"),
        "{errors}"
    );
    let ok = json!({"name": "é".repeat(256), "tags": vec!["t"; 64]});
    assert!(decode_record(&code(), ok).is_ok());
}

#[test]
fn a_written_stream_key_has_at_least_10_characters() {
    let with_key = |key: &str| decode_record(&code(), json!({"stream_key": key})).expect("decodes");
    let errors = check_write(&with_key("k3y-s3cr3"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "stream_key");
    assert_eq!(errors[0].code, ErrorCode::InvalidField);
    assert!(
        errors[0].message.contains("at least 10 characters"),
        "{}",
        errors[0].message
    );
    assert!(errors[0].message.contains("got 9"), "{}", errors[0].message);
    assert!(
        !errors[0].message.contains("k3y-s3cr3"),
        "the key is never quoted"
    );
    // Characters, not bytes: 9 two-byte characters are still too few.
    assert_eq!(check_write(&with_key(&"é".repeat(9))).len(), 1);
    assert!(check_write(&with_key("k3y-s3cret12")).is_empty());
    // SPEC's example record keeps its key.
    assert!(check_write(&with_key("b41c7e09d2")).is_empty());
    assert!(
        check_write(&with_key("")).is_empty(),
        "no key is not a short key"
    );
    // Stored records are not held to it: a short key stored before the rule still parses.
    assert!(parse_stream(with_key("k3y"), &all_support()).is_ok());
}

#[test]
fn body_code_and_read_only_fields_are_ignored() {
    let body = json!({"code": "other", "runtime": {"status": "active"}, "status": "x", "source": "config"});
    let (spec, _) = decode_stream(&code(), body, &all_support()).unwrap();
    assert_eq!(spec.code(), &code());
}

#[test]
fn unknown_fields_name_their_path() {
    assert_eq!(
        fails(json!({"bogus": 1}), &all_support()),
        [("bogus".into(), ErrorCode::UnknownField)]
    );
    assert_eq!(
        fails(
            json!({"inputs": [{"url": "udp://:5000", "priority": 0, "nope": true}]}),
            &all_support()
        ),
        [("inputs[0].nope".into(), ErrorCode::UnknownField)]
    );
    assert_eq!(
        fails(
            json!({"transcoder": {"video": {"profiles": [{"widht": 3}]}}}),
            &all_support()
        ),
        [(
            "transcoder.video.profiles[0].widht".into(),
            ErrorCode::UnknownField
        )]
    );
}

#[test]
fn type_errors_name_their_path() {
    assert_eq!(
        fails(json!({"inputs": [{"url": 5}]}), &all_support()),
        [("inputs[0].url".into(), ErrorCode::InvalidField)]
    );
    assert_eq!(
        fails(json!({"transcoder": {"mode": "turbo"}}), &all_support()),
        [("transcoder.mode".into(), ErrorCode::InvalidTranscoderMode)]
    );
    assert_eq!(
        fails(json!([1]), &all_support()),
        [("$".into(), ErrorCode::InvalidField)]
    );
}

#[test]
fn input_rules() {
    let body = json!({"inputs": [
        {"url": "udp://:5000", "priority": 0},
        {"url": "rtmq://x/y", "priority": 1},
        {"url": " udp://:5000 ", "priority": 2},
        {"url": "udp://:5001", "priority": 7},
    ]});
    let got = fails(body, &all_support());
    assert_eq!(
        got,
        [
            ("inputs[1].url".into(), ErrorCode::InvalidInputUrl),
            ("inputs[2].url".into(), ErrorCode::DuplicateInput),
            ("inputs[3].priority".into(), ErrorCode::InvalidInputPriority),
        ]
    );
    let err = decode_stream(
        &code(),
        json!({"inputs": [{"url": "rtmq://x", "priority": 0}]}),
        &all_support(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "inputs[0].url: unknown scheme \"rtmq\"");
}

#[test]
fn copy_and_mixer_shapes() {
    assert_eq!(
        fails(json!({"inputs": [{"url": "copy://cam1"}]}), &all_support()),
        [("inputs[0].url".into(), ErrorCode::InvalidCopyShape)]
    );
    assert_eq!(
        fails(json!({"inputs": [{"url": "copy://"}]}), &all_support()),
        [("inputs[0].url".into(), ErrorCode::InvalidCopyUrl)]
    );
    assert_eq!(
        fails(
            json!({"inputs": [{"url": "mixer://cam1,b"}]}),
            &all_support()
        ),
        [("inputs[0].url".into(), ErrorCode::InvalidMixerShape)]
    );
    assert_eq!(
        fails(
            json!({"inputs": [{"url": "mixer://a,b"}, {"url": "udp://:1", "priority": 1}]}),
            &all_support()
        ),
        [("inputs[0].url".into(), ErrorCode::InvalidMixerShape)]
    );
    assert_eq!(
        fails(json!({"inputs": [{"url": "mixer://a"}]}), &all_support()),
        [("inputs[0].url".into(), ErrorCode::InvalidMixerUrl)]
    );
}

#[test]
fn unsupported_features_are_rejected_not_ignored() {
    let none = Support::default();
    let got = fails(
        json!({"inputs": [{"url": "rtsp://cam/x"}], "transcoder": {}, "protocols": {"hls": true},
               "push": [{"url": "rtmp://a/b/c"}], "dvr": {"enabled": true},
               "thumbnail": {"enabled": true}, "template": "t"}),
        &none,
    );
    let paths: Vec<_> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "template",
            "inputs[0].url",
            "transcoder",
            "protocols.hls",
            "push[0].url",
            "dvr.enabled",
            "thumbnail.enabled"
        ]
    );
    assert!(got.iter().all(|(_, c)| *c == ErrorCode::Unsupported));
}

/// The write-rule errors of `body` (parsed first; it must parse), as (path, message).
fn profile_errors(body: Value) -> Vec<(String, String)> {
    let (spec, _) = decode_stream(&code(), body, &all_support()).unwrap();
    check_push_profiles(&spec)
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

#[test]
fn a_push_profile_is_track_n_or_empty() {
    let body = json!({"transcoder": one_rung(),
                      "push": [{"url": "rtmp://x/a/b", "profile": ""},
                               {"url": "rtmp://x/a/c", "profile": " track_1 "},
                               {"url": "rtmp://x/a/d", "profile": "track_0"},
                               {"url": "rtmp://x/a/e", "profile": "track_02"},
                               {"url": "rtmp://x/a/f", "profile": "track_17"},
                               {"url": "rtmp://x/a/g", "profile": "720p"},
                               {"url": "rtmp://x/a/h", "profile": "track_+1"}]});
    let got = decode_stream(&code(), body, &all_support()).unwrap_err().0;
    let paths: Vec<_> = got.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "push[2].profile",
            "push[3].profile",
            "push[4].profile",
            "push[5].profile",
            "push[6].profile"
        ]
    );
    assert!(got.iter().all(|e| e.code == ErrorCode::InvalidField));
    assert!(got[3].message.contains("track_<N>"), "{}", got[3].message);
    assert!(got[3].message.contains("\"720p\""), "{}", got[3].message);

    let body = json!({"transcoder": one_rung(),
                      "push": [{"url": "rtmp://x/a/b", "profile": ""},
                               {"url": "rtmp://x/a/c", "profile": " track_1 "}]});
    let (spec, _) = decode_stream(&code(), body, &all_support()).unwrap();
    let rungs: Vec<_> = spec.pushes().iter().map(|p| p.rung).collect();
    assert_eq!(rungs, [None, Some(0)]);
}

#[test]
fn a_rung_name_is_track_1_to_track_16_of_the_ladder() {
    assert_eq!(track_rung("track_1", 1), Ok(0));
    assert_eq!(track_rung("track_16", 16), Ok(15));
    assert_eq!(track_rung("track_3", 4), Ok(2));
    // The name alone: 1 to 16, digits only, no leading zero.
    for name in [
        "track_0", "track_17", "track_01", "track_+1", "track_-1", "track_", "track_x", "720p",
        "track_1 ", "TRACK_1", "",
    ] {
        assert_eq!(
            track_rung(name, 16),
            Err(RungError::NotARungName),
            "{name:?}"
        );
    }
    assert_eq!(rung_index("track_17"), None);
    assert_eq!(rung_index("track_99999999999999999999999"), None);
    // A rung name, but no ladder, or a rung past its last.
    assert_eq!(track_rung("track_1", 0), Err(RungError::NoLadder));
    assert_eq!(track_rung("track_16", 0), Err(RungError::NoLadder));
    assert_eq!(
        track_rung("track_2", 1),
        Err(RungError::NotInLadder { rungs: 1 })
    );
    assert_eq!(
        track_rung("track_16", 15),
        Err(RungError::NotInLadder { rungs: 15 })
    );
    // A name that is not one stays that whatever the ladder.
    assert_eq!(track_rung("track_0", 0), Err(RungError::NotARungName));
}

#[test]
fn a_push_profile_names_a_rung_of_the_resolved_ladder() {
    let two = json!({"video": {"profiles": [{"width": 1280, "height": 720},
                                            {"width": 640, "height": 360}]}});
    let body = json!({"transcoder": two,
                      "push": [{"url": "rtmp://x/a/b", "profile": "track_2"},
                               {"url": "rtmp://x/a/c", "profile": "track_3"},
                               {"url": "rtmp://x/a/d", "profile": "track_4", "enabled": false}]});
    let got = profile_errors(body);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "push[1].profile");
    assert!(got[0].1.contains("track_1 … track_2"), "{}", got[0].1);
    assert_eq!(
        got[1].0, "push[2].profile",
        "disabled targets are checked too"
    );

    // Copied video: one rung per profile, at least one.
    let copy = json!({"video": {"copy": true}, "audio": {"codec": "aac"}});
    let got = profile_errors(json!({"transcoder": copy,
        "push": [{"url": "rtmp://x/a/b", "profile": "track_1"},
                 {"url": "rtmp://x/a/c", "profile": "track_2"}]}));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].1.contains("which has track_1 ("), "{}", got[0].1);

    // Passthrough: no transcoder, or one that runs no FFmpeg.
    for transcoder in [
        Value::Null,
        json!({"video": {"copy": true}, "audio": {"copy": true}}),
    ] {
        let got = profile_errors(json!({"transcoder": transcoder,
            "push": [{"url": "rtmp://x/a/b", "profile": "track_1"},
                     {"url": "rtmp://x/a/c", "profile": ""}]}));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "push[0].profile");
        assert!(got[0].1.contains("has none"), "{}", got[0].1);
    }
}

#[test]
fn push_targets_are_parsed_at_save() {
    let body = json!({"push": [{"url": "rtmps://live.example.com/app/KEY?x=1"},
                               {"url": "rtmp://x.example.org/only-app"},
                               {"url": "rtmp:///app/key"}]});
    assert_eq!(
        fails(body, &all_support()),
        [
            ("push[1].url".into(), ErrorCode::InvalidField),
            ("push[2].url".into(), ErrorCode::InvalidField)
        ]
    );
    let body =
        json!({"push": [{"url": " rtmps://live.example.com/app/KEY?x=1 ", "enabled": true}]});
    let (spec, _) = decode_stream(&code(), body, &all_support()).unwrap();
    let target = &spec.pushes()[0].target;
    assert_eq!(
        (
            target.host.as_str(),
            target.port,
            target.tls,
            target.app.as_str(),
            target.name.as_str()
        ),
        ("live.example.com", 443, true, "app", "KEY?x=1")
    );
    assert!(spec.pushes()[0].push.enabled);
}

#[test]
fn push_rules() {
    assert_eq!(
        fails(json!({"push": [{"url": "http://x/y"}]}), &all_support()),
        [("push[0].url".into(), ErrorCode::Unsupported)]
    );
    assert_eq!(
        fails(
            json!({"push": [{"url": "rtmp://x/a/b"}, {"url": "rtmp://x/a/b"}]}),
            &all_support()
        ),
        [("push[1].url".into(), ErrorCode::InvalidField)]
    );
}

#[test]
fn watermark_rules() {
    let cases = [
        (
            json!({"enabled": true, "type": "text", "text": " "}),
            "watermark.text",
        ),
        (
            json!({"enabled": true, "type": "image"}),
            "watermark.image_path",
        ),
        (
            json!({"enabled": true, "type": "image", "image_path": "a.png"}),
            "watermark.image_path",
        ),
        (
            json!({"enabled": true, "type": "image", "asset_id": "a b"}),
            "watermark.asset_id",
        ),
        (
            json!({"enabled": true, "type": "text", "text": "x", "opacity": 1.5}),
            "watermark.opacity",
        ),
        (
            json!({"enabled": true, "type": "text", "text": "x", "position": "middle"}),
            "watermark.position",
        ),
        (
            json!({"enabled": true, "type": "text", "text": "x", "position": "custom"}),
            "watermark.x",
        ),
        (
            json!({"enabled": true, "type": "text", "text": "x", "x": "w;rm"}),
            "watermark.x",
        ),
        (
            json!({"enabled": true, "type": "text", "text": "x", "font_color": "#12345"}),
            "watermark.font_color",
        ),
        (json!({"enabled": true, "type": "svg"}), "watermark.type"),
    ];
    for (wm, path) in cases {
        let got = fails(
            json!({"transcoder": one_rung(), "watermark": wm}),
            &all_support(),
        );
        assert_eq!(
            got,
            [(path.to_owned(), ErrorCode::InvalidWatermark)],
            "{wm}"
        );
    }
    for color in ["white", "#ffffff", "0xFFFFFF80", "red@0.5"] {
        let wm = json!({"enabled": true, "type": "text", "text": "x", "font_color": color});
        assert!(
            decode_stream(
                &code(),
                json!({"transcoder": one_rung(), "watermark": wm}),
                &all_support()
            )
            .is_ok()
        );
    }
    // Disabled watermarks are not checked.
    assert!(
        decode_stream(
            &code(),
            json!({"watermark": {"type": "svg"}}),
            &all_support()
        )
        .is_ok()
    );
}

#[test]
fn warnings_for_legacy_and_inert_settings() {
    let body = json!({"inputs": [{"url": "udp://:5000", "reconnect": true}],
                      "watermark": {"enabled": true, "type": "text", "text": "x"}});
    let (_, warnings) = decode_stream(&code(), body, &all_support()).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");

    // RTMP cannot carry the ladder's Opus: each enabled push target is told.
    let body = json!({"transcoder": {"audio": {"codec": "opus"}, "video": {"profiles": [{}]}},
                      "push": [{"url": "rtmp://x/a/b", "enabled": true, "profile": "track_1"},
                               {"url": "rtmp://x/a/c"}]});
    let (_, warnings) = decode_stream(&code(), body, &all_support()).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("push[0]: RTMP carries AAC or MP3"),
        "{warnings:?}"
    );
}
