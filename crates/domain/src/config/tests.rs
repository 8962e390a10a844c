use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn defaults_are_valid_and_match_spec() {
    let c = ServerConfig::default();
    c.validate().unwrap();
    assert_eq!(c.server.http_addr, "0.0.0.0:8080");
    assert_eq!(c.listeners.rtmp.addr().as_deref(), Some("0.0.0.0:1935"));
    assert_eq!(c.listeners.rtmp.play_backlog_sec, 10);
    assert_eq!(c.listeners.rtmp.play_merge_ms, 100);
    assert_eq!(c.listeners.rtmp.publish_merge_ms, 0);
    assert_eq!(c.listeners.srt.port, 9999);
    assert_eq!(c.listeners.rtsp.port, 8554);
    assert_eq!(c.buffer.capacity, 1024);
    assert_eq!(c.coordinator.reconcile_interval_sec, 10);
    assert_eq!(c.shutdown_timeout_sec, 10);
}

#[test]
fn unknown_keys_are_errors() {
    let err = serde_json::from_str::<ServerConfig>(r#"{"server": {"htp_addr": "x"}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("htp_addr"), "{err}");
}

#[test]
fn validation_names_fields() {
    let mut c = ServerConfig::default();
    c.server.http_addr = "nope".into();
    c.listeners.srt.port = 1935;
    c.listeners.rtmp.play_backlog_sec = 0;
    c.listeners.rtmp.publish_merge_ms = 1001;
    c.log.format = "xml".into();
    c.buffer.capacity = 0;
    let paths: Vec<_> = c
        .validate()
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "server.http_addr",
            "listeners.srt.port",
            "listeners.rtmp.play_backlog_sec",
            "listeners.rtmp.publish_merge_ms",
            "log.format",
            "buffer.capacity"
        ]
    );
}

#[test]
fn spec_keys_of_unbuilt_features_are_accepted_and_named() {
    let doc = serde_json::json!({
        "store": {"backend": "sqlite"},
        "server": {"allowed_hosts": ["tv.example"], "cors": {"enabled": true}},
        "listeners": {"rtsp": {"transport": "tcp"}},
        "ingestor": {"hls_max_segment_buffer": 4},
        "transcoder": {"multi_output": true, "mode": "multi"},
        "publisher": {"hls": {"segment_format": "fmp4", "dir": "/tmp/hls"},
                      "dash": {"segment_sec": 2.5}},
        "security": {"play_signing": {"enabled": true, "key": "k"}, "ssrf_guard": "strict",
                     "allow_cidrs": ["10.0.0.0/8"], "trusted_proxies": []},
        "hooks": {"worker_count": 4, "max_retries": 3},
        "sessions": {"enabled": true, "geoip_db_path": "/geo.mmdb"},
        "watermarks": {},
        "dvr": {"max_clip_sec": 600},
        "autopublish": {"enabled": false},
        "debug": {"fault_injection": true},
    });
    let config: ServerConfig = serde_json::from_value(doc).unwrap();
    config.validate().unwrap();
    assert_eq!(config.ingestor.hls_max_segment_buffer, 4);
    // `debug.fault_injection` is honoured (`POST /debug/fault`), not ignored.
    assert!(config.fault_injection());
    assert!(!ServerConfig::default().fault_injection());
    // `publisher.dash` is honoured, not ignored.
    assert_eq!(config.publisher.dash.as_ref().unwrap().segment_sec, 2.5);
    let ignored: Vec<(String, IgnoredReason)> = config
        .ignored()
        .into_iter()
        .map(|k| (k.path, k.reason))
        .collect();
    let later = IgnoredReason::NotSupportedYet;
    let want = [
        ("store.backend", later),
        ("server.cors.enabled", later),
        ("transcoder.mode", later),
        ("transcoder.multi_output", IgnoredReason::Legacy),
        ("publisher.hls.dir", IgnoredReason::Legacy),
        ("hooks.worker_count", IgnoredReason::Legacy),
    ];
    let want: Vec<(String, IgnoredReason)> =
        want.iter().map(|(p, r)| ((*p).to_owned(), *r)).collect();
    assert_eq!(ignored, want);
    assert!(ServerConfig::default().ignored().is_empty());
    let shown = serde_json::to_string(&config.redacted()).unwrap();
    assert!(
        !shown.contains("\"k\"") && !shown.contains("\"p\""),
        "{shown}"
    );
}

#[test]
fn unknown_keys_in_unbuilt_sections_are_errors() {
    for doc in [
        r#"{"hooks": {"wroker_count": 4}}"#,
        r#"{"sessions": {"idle": 1}}"#,
        r#"{"listeners": {"rtsp": {"latency_ms": 1}}}"#,
        r#"{"security": {"play_signing": {"secret": "x"}}}"#,
        r#"{"hookz": {}}"#,
    ] {
        assert!(serde_json::from_str::<ServerConfig>(doc).is_err(), "{doc}");
    }
}

#[test]
fn ssrf_settings_are_checked_at_load_naming_the_key() {
    let mut c = ServerConfig::default();
    assert_eq!(c.security.ssrf_guard, "metadata");
    c.security.ssrf_guard = "lenient".into();
    c.security.allow_cidrs = vec![
        "10.0.0.0/8".into(),
        " 192.0.2.7 ".into(),
        "fd00::/8".into(),
        "10.0.0.0/33".into(),
        "example.com".into(),
    ];
    let errors = c.validate().unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "security.ssrf_guard",
            "security.allow_cidrs[3]",
            "security.allow_cidrs[4]"
        ]
    );
    assert_eq!(
        parse_cidr(" 192.0.2.7 ").map(|n| n.to_string()),
        Some("192.0.2.7/32".to_owned())
    );
}

#[test]
fn low_latency_needs_fmp4_and_a_part_within_the_segment() {
    let mut c = ServerConfig::default();
    c.publisher.hls.low_latency = Some(true);
    let errors = c.validate().unwrap_err();
    assert_eq!(errors.0[0].path, "publisher.hls.low_latency");
    assert!(
        errors.0[0].message.contains("segment_format = \"fmp4\""),
        "{errors:?}"
    );
    c.publisher.hls.segment_format = Some("auto".into());
    assert!(c.validate().is_err(), "auto may pick MPEG-TS");
    c.publisher.hls.segment_format = Some("fmp4".into());
    c.validate().unwrap();
    assert!(c.ignored().is_empty(), "LL-HLS keys are no longer ignored");
    for bad in [0.05, 2.5, f64::NAN] {
        c.publisher.hls.part_sec = Some(bad);
        let errors = c.validate().unwrap_err();
        assert_eq!(errors.0[0].path, "publisher.hls.part_sec", "{bad}");
    }
    c.publisher.hls.part_sec = Some(0.33);
    c.validate().unwrap();
}

#[test]
fn part_hold_back_is_at_least_2_parts_and_inside_the_playlist() {
    let mut c = ServerConfig::default();
    c.publisher.hls.segment_format = Some("fmp4".into());
    c.publisher.hls.low_latency = Some(true);
    // Against the default 0.5 s parts, then against a part set explicitly.
    for (part, good, bad) in [
        (None, [1.0, 1.5, 23.9], [0.99, 24.0, f64::NAN]),
        (Some(1.0), [2.0, 3.0, 23.0], [1.5, 30.0, f64::INFINITY]),
    ] {
        c.publisher.hls.part_sec = part;
        for value in good {
            c.publisher.hls.part_hold_back_sec = Some(value);
            c.validate().unwrap_or_else(|e| panic!("{value}: {e:?}"));
        }
        for value in bad {
            c.publisher.hls.part_hold_back_sec = Some(value);
            let errors = c.validate().unwrap_err();
            assert_eq!(errors.0.len(), 1, "{errors:?}");
            assert_eq!(errors.0[0].path, "publisher.hls.part_hold_back_sec");
            assert!(errors.0[0].message.contains("2 × part_sec"), "{errors:?}");
        }
    }
}

#[test]
fn hls_segment_format_is_ts_fmp4_or_auto() {
    let mut c = ServerConfig::default();
    assert_eq!(c.publisher.hls.segment_format(), HlsSegmentFormat::Ts);
    for (value, want) in [
        ("ts", HlsSegmentFormat::Ts),
        ("fmp4", HlsSegmentFormat::Fmp4),
        (" Auto ", HlsSegmentFormat::Auto),
    ] {
        c.publisher.hls.segment_format = Some(value.into());
        c.validate().unwrap();
        assert_eq!(c.publisher.hls.segment_format(), want, "{value}");
    }
    c.publisher.hls.segment_format = Some("mp4".into());
    let errors = c.validate().unwrap_err();
    assert_eq!(errors.0[0].path, "publisher.hls.segment_format");
    assert!(
        errors.0[0].message.contains("ts, fmp4 or auto"),
        "{errors:?}"
    );
}

#[test]
fn values_that_would_overflow_later_are_refused_naming_the_key() {
    let mut c = ServerConfig::default();
    c.publisher.hls.live_segment_sec = 1e30;
    c.server.admin_timeout_sec = u64::MAX;
    c.buffer.capacity = usize::MAX;
    c.coordinator.boot_concurrency = usize::MAX;
    let errors = c.validate().unwrap_err();
    let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "publisher.hls.live_segment_sec",
            "server.admin_timeout_sec",
            "buffer.capacity",
            "coordinator.boot_concurrency"
        ]
    );
    assert!(errors.0[0].message.contains("at most 60"), "{errors}");
}

#[test]
fn session_durations_are_bounded_and_default() {
    let defaults = SessionsSection::default();
    assert!(defaults.enabled());
    assert_eq!(defaults.idle_timeout(), Duration::from_secs(30));
    assert_eq!(defaults.max_lifetime(), None);
    assert_eq!(defaults.kick_ban(), Duration::from_secs(60));
    let zero = SessionsSection {
        idle_timeout_sec: Some(0),
        ..SessionsSection::default()
    };
    assert_eq!(zero.idle_timeout(), Duration::from_secs(1));

    let mut c = ServerConfig {
        sessions: Some(SessionsSection {
            idle_timeout_sec: Some(u64::MAX),
            kick_ban_sec: Some(86_401),
            max_lifetime_sec: Some(u64::MAX),
            ..SessionsSection::default()
        }),
        ..ServerConfig::default()
    };
    let errors = c.validate().unwrap_err();
    let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "sessions.idle_timeout_sec",
            "sessions.kick_ban_sec",
            "sessions.max_lifetime_sec"
        ]
    );
    c.sessions = Some(SessionsSection {
        max_lifetime_sec: Some(30 * 86_400),
        ..SessionsSection::default()
    });
    c.validate().unwrap();
}

#[test]
fn log_levels() {
    for good in [
        "info",
        "WARN",
        "off",
        "info,tributary_engine=debug",
        "hyper::proto=warn",
    ] {
        assert!(valid_log_level(good), "{good}");
    }
    for bad in ["", "verbose", "info,", "=debug", "x=loud", "a b=info"] {
        assert!(!valid_log_level(bad), "{bad}");
    }
    let mut c = ServerConfig::default();
    c.log.level = "verbose".into();
    let errors = c.validate().unwrap_err();
    assert_eq!(errors.0[0].path, "log.level");
    assert!(errors.0[0].message.contains("\"verbose\""), "{errors}");
}

#[test]
fn host_port() {
    assert_eq!(split_host_port("127.0.0.1:80"), Some(("127.0.0.1", 80)));
    assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
    assert_eq!(split_host_port("::1:80"), None);
    assert_eq!(split_host_port("x"), None);
    assert_eq!(join_host_port("::1", 5), "[::1]:5");
}

#[test]
fn srt_listener_secrets_and_latency_are_checked() {
    let mut c = ServerConfig::default();
    c.listeners.srt.passphrase = Some("short".into());
    c.listeners.srt.pbkeylen = Some(20);
    c.listeners.srt.latency_ms = Some(60_000);
    let errors = c.validate().unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "listeners.srt.passphrase",
            "listeners.srt.pbkeylen",
            "listeners.srt.latency_ms"
        ]
    );
    assert!(!errors.to_string().contains("short"), "{errors}");
    c.listeners.srt.passphrase = None;
    c.listeners.srt.pbkeylen = Some(16);
    c.listeners.srt.latency_ms = Some(200);
    let errors = c.validate().unwrap_err();
    assert!(
        errors
            .to_string()
            .contains("needs listeners.srt.passphrase"),
        "{errors}"
    );
    c.listeners.srt.passphrase = Some("ten-chars!".into());
    c.validate().unwrap();
    assert!(
        c.ignored()
            .iter()
            .all(|k| !k.path.starts_with("listeners.srt"))
    );
}

#[test]
fn hooks_run_by_default_and_null_turns_them_off() {
    let absent: ServerConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(absent.hooks, Some(HooksSection::default()));
    let off: ServerConfig = serde_json::from_str(r#"{"hooks": null}"#).unwrap();
    assert_eq!(off.hooks, None);
    let bad = ServerConfig {
        hooks: Some(HooksSection {
            max_retries: Some(11),
            file_root: Some("relative/dir".into()),
            ..HooksSection::default()
        }),
        ..ServerConfig::default()
    };
    let errors = bad.validate().unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["hooks.max_retries", "hooks.file_root"]);
}

#[test]
fn signed_play_urls_need_a_key() {
    let on = |key: &str| {
        serde_json::from_value::<ServerConfig>(serde_json::json!({
            "security": {"play_signing": {"enabled": true, "key": key}}
        }))
        .unwrap()
    };
    let errors = on("").validate().unwrap_err();
    assert_eq!(errors.0[0].path, "security.play_signing.key");
    on("a-long-random-key").validate().unwrap();
    let shown = serde_json::to_string(&on("a-long-random-key").redacted()).unwrap();
    assert!(!shown.contains("a-long-random-key"), "{shown}");
}

#[test]
fn storage_roots_are_absolute_directories_named_when_not() {
    let mut c = ServerConfig::default();
    assert_eq!(c.security.storage_roots, None, "absent: the data directory");
    c.security.storage_roots = Some(vec!["/srv/media".into(), "rel".into(), "/a/../b".into()]);
    let errors = c.validate().unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["security.storage_roots[1]", "security.storage_roots[2]"]
    );
    c.security.storage_roots = Some(vec!["/srv/media".into()]);
    c.validate().unwrap();
    assert!(
        c.ignored().is_empty(),
        "storage_roots is in force, not ignored"
    );
}

#[test]
fn the_watermark_dir_defaults_beside_the_store_and_is_named_when_unsafe() {
    let mut c = ServerConfig::default();
    let section = c.watermarks.clone().unwrap_or_default();
    assert_eq!(section.dir("/srv/data"), Path::new("/srv/data/watermarks"));
    c.watermarks = Some(WatermarksSection {
        dir: Some("/srv/logos".into()),
    });
    c.validate().unwrap();
    assert!(
        c.ignored().is_empty(),
        "watermarks.dir is in force, not ignored"
    );
    for bad in ["", "  ", "/srv/../etc", "/srv/a\0b"] {
        c.watermarks = Some(WatermarksSection {
            dir: Some(bad.into()),
        });
        let errors = c.validate().unwrap_err();
        assert_eq!(errors.0[0].path, "watermarks.dir", "{bad:?}");
    }
}

#[test]
fn dvr_defaults_match_spec_and_a_stream_keeps_its_own_values() {
    let section = DvrSection::default();
    assert_eq!(section.root("/srv/data"), Path::new("/srv/data/dvr"));
    assert_eq!(section.segment_duration(), 4);
    assert_eq!(section.max_timeshift(), Duration::from_secs(86_400));
    assert_eq!(section.max_clip(), Duration::from_secs(3600));
    // SPEC's per-stream zeros stay what they mean when the server sets nothing.
    let zeros = crate::Dvr::default();
    let resolved = section.resolve(&zeros);
    assert_eq!(resolved.segment_duration, 4);
    assert_eq!((resolved.retention_sec, resolved.max_size_gb), (0, 0.0));

    let config: ServerConfig = serde_json::from_value(serde_json::json!({"dvr": {
        "root": "/var/lib/tributary/dvr",
        "segment_duration": 6,
        "retention_sec": 3600,
        "max_size_gb": 2.5,
        "max_clip_sec": 600,
    }}))
    .unwrap();
    config.validate().unwrap();
    assert!(config.ignored().is_empty(), "{:?}", config.ignored());
    let section = config.dvr.unwrap();
    assert_eq!(section.root("./data"), Path::new("/var/lib/tributary/dvr"));
    assert_eq!(section.max_clip(), Duration::from_secs(600));
    let resolved = section.resolve(&zeros);
    assert_eq!(
        (
            resolved.segment_duration,
            resolved.retention_sec,
            resolved.max_size_gb
        ),
        (6, 3600, 2.5)
    );
    let own = crate::Dvr {
        segment_duration: 2,
        retention_sec: 60,
        max_size_gb: 1.0,
        ..crate::Dvr::default()
    };
    assert_eq!(section.resolve(&own), own);
}

#[test]
fn bad_dvr_values_are_refused_naming_the_key() {
    let config: ServerConfig = serde_json::from_value(serde_json::json!({"dvr": {
        "root": "/data/../etc",
        "segment_duration": 0,
        "retention_sec": u64::MAX,
        "max_size_gb": -1.0,
        "max_timeshift_sec": 0,
        "max_clip_sec": 100_000,
    }}))
    .unwrap();
    let errors = config.validate().unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "dvr.root",
            "dvr.segment_duration",
            "dvr.retention_sec",
            "dvr.max_size_gb",
            "dvr.max_timeshift_sec",
            "dvr.max_clip_sec",
        ]
    );
    let unknown =
        serde_json::from_value::<ServerConfig>(serde_json::json!({"dvr": {"max_clip": 1}}));
    assert!(unknown.unwrap_err().to_string().contains("max_clip"));
}

#[test]
fn autopublish_is_on_by_default_with_specs_limits_and_null_or_enabled_false_turns_it_off() {
    let c = ServerConfig::default();
    let section = c.autopublish.clone().expect("present by default");
    assert!(section.enabled());
    assert_eq!(section.idle_timeout().as_secs(), 30);
    assert_eq!(section.sweep_interval().as_secs(), 5);
    assert_eq!(section.max_runtime_streams(), 100);
    assert_eq!(section.max_creations_per_min(), 10);
    let off: ServerConfig =
        serde_json::from_value(serde_json::json!({"autopublish": null})).unwrap();
    assert_eq!(off.autopublish, None);
    let off: ServerConfig =
        serde_json::from_value(serde_json::json!({"autopublish": {"enabled": false}})).unwrap();
    assert!(!off.autopublish.unwrap().enabled());
    // Absent: the defaults.
    let absent: ServerConfig = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(absent.autopublish, c.autopublish);
}

#[test]
fn autopublish_limits_are_validated_naming_the_key() {
    for (doc, key) in [
        (
            serde_json::json!({"idle_timeout_sec": 0}),
            "autopublish.idle_timeout_sec",
        ),
        (
            serde_json::json!({"idle_timeout_sec": 86_401}),
            "autopublish.idle_timeout_sec",
        ),
        (
            serde_json::json!({"sweep_interval_sec": 0}),
            "autopublish.sweep_interval_sec",
        ),
        (
            serde_json::json!({"idle_timeout_sec": 4, "sweep_interval_sec": 5}),
            "autopublish.sweep_interval_sec",
        ),
        (
            serde_json::json!({"max_runtime_streams": 0}),
            "autopublish.max_runtime_streams",
        ),
        (
            serde_json::json!({"max_creations_per_min": 10_001}),
            "autopublish.max_creations_per_min",
        ),
    ] {
        let config: ServerConfig =
            serde_json::from_value(serde_json::json!({"autopublish": doc})).unwrap();
        let errors = config.validate().unwrap_err();
        assert_eq!(errors.0.len(), 1, "{doc}: {errors:?}");
        assert_eq!(errors.0[0].path, key, "{doc}");
    }
    let good = serde_json::json!({"autopublish": {"enabled": true, "idle_timeout_sec": 2,
        "sweep_interval_sec": 1, "max_runtime_streams": 1, "max_creations_per_min": 10_000}});
    serde_json::from_value::<ServerConfig>(good)
        .unwrap()
        .validate()
        .unwrap();
    let unknown = serde_json::json!({"autopublish": {"max_streams": 5}});
    assert!(serde_json::from_value::<ServerConfig>(unknown).is_err());
}
