use serde_json::json;

use super::*;

fn layers() -> Layers {
    Layers::new(
        json!({"manager": {"input_packet_timeout_sec": 20}, "security": {"admin_token": "file-token"}}),
        json!({"listeners": {"srt": {"port": 7000}}}),
        json!({"listeners": {"rtmp": {"enabled": true, "listen_host": "127.0.0.1", "port": 0}}, "data_dir": "/tmp/d"}),
    )
}

fn paths(errors: &ValidationErrors) -> Vec<&str> {
    errors.0.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn layers_merge_lowest_first_and_objects_key_by_key() {
    let layers =
        layers().with_store(json!({"manager": {"frozen_gops": 5, "input_packet_timeout_sec": 25}}));
    let config = layers.effective().expect("valid");
    assert_eq!(
        config.manager.input_packet_timeout_sec, 25,
        "store over file"
    );
    assert_eq!(config.manager.frozen_gops, 5);
    assert_eq!(config.manager.frozen_min_sec, 10, "default kept beside");
    assert_eq!(config.listeners.srt.port, 7000, "env");
    assert_eq!(config.listeners.rtmp.port, 0, "command line");
    assert_eq!(config.data_dir, "/tmp/d");
}

#[test]
fn merge_replaces_arrays_and_keeps_null() {
    let mut base = json!({"a": [1, 2], "b": {"c": 1, "d": 2}, "e": {"f": 1}});
    merge(&mut base, &json!({"a": [3], "b": {"c": 9}, "e": null}));
    assert_eq!(base, json!({"a": [3], "b": {"c": 9, "d": 2}, "e": null}));
}

#[test]
fn sources_name_the_highest_layer_setting_each_leaf() {
    let layers = layers().with_store(json!({"manager": {"frozen_gops": 5}, "hooks": null}));
    let sources = layers.sources();
    assert_eq!(sources["manager.input_packet_timeout_sec"], Source::File);
    assert_eq!(sources["manager.frozen_gops"], Source::Store);
    assert_eq!(sources["manager.frozen_min_sec"], Source::Default);
    assert_eq!(sources["listeners.srt.port"], Source::Env);
    assert_eq!(
        sources["listeners.rtmp.port"],
        Source::Env,
        "flags count as env"
    );
    assert_eq!(sources["hooks"], Source::Store);
    assert_eq!(
        serde_json::to_value(Source::Default).unwrap(),
        json!("default")
    );
}

#[test]
fn a_write_stores_only_the_fields_it_sets() {
    let layers = layers().with_store(json!({"manager": {"frozen_gops": 5}}));
    let write = layers
        .write(json!({"manager": {"pts_static_sec": 7}}))
        .expect("accepted");
    assert_eq!(
        write.store,
        json!({"manager": {"frozen_gops": 5, "pts_static_sec": 7}})
    );
    assert_eq!(write.config.manager.pts_static_sec, 7);
    assert_eq!(write.changed, ["manager.pts_static_sec"]);
}

#[test]
fn a_pinned_field_changed_is_refused_naming_it() {
    let err = layers()
        .write(json!({"listeners": {"srt": {"port": 7001}, "rtmp": {"port": 1936}}, "manager": {"frozen_gops": 4}}))
        .expect_err("pinned");
    let WriteError::Pinned(errors) = err else {
        panic!("not pinned: {err:?}")
    };
    assert_eq!(
        paths(&errors),
        ["listeners.rtmp.port", "listeners.srt.port"]
    );
    assert!(
        errors.0[1]
            .message
            .contains("TRIBUTARY_LISTENERS__SRT__PORT")
    );
}

#[test]
fn a_pinned_field_written_unchanged_is_accepted_and_not_stored() {
    let write = layers()
        .write(json!({"listeners": {"srt": {"port": 7000}}, "data_dir": "/tmp/d", "manager": {"frozen_gops": 4}}))
        .expect("unchanged pins pass");
    assert_eq!(write.store, json!({"manager": {"frozen_gops": 4}}));
}

#[test]
fn a_section_around_a_pinned_field_is_pinned() {
    let layers = layers();
    assert!(layers.pinned("listeners.srt"));
    assert!(layers.pinned("listeners.srt.port"));
    assert!(!layers.pinned("listeners.srt.latency_ms"));
    assert!(!layers.pinned("manager"));
}

#[test]
fn bootstrap_only_fields_are_refused() {
    let layers = Layers::new(json!({}), json!({}), json!({}));
    let Err(WriteError::Invalid(errors)) = layers.write(
        json!({"data_dir": "/elsewhere", "shutdown_timeout_sec": 3, "store": {"backend": "pg"}}),
    ) else {
        panic!("accepted")
    };
    assert_eq!(
        paths(&errors),
        ["data_dir", "shutdown_timeout_sec", "store.backend"]
    );
}

#[test]
fn invalid_values_are_refused_with_every_path() {
    let layers = Layers::new(json!({}), json!({}), json!({}));
    let Err(WriteError::Invalid(errors)) =
        layers.write(json!({"buffer": {"capacity": 0}, "log": {"format": "xml"}}))
    else {
        panic!("accepted")
    };
    assert_eq!(paths(&errors), ["log.format", "buffer.capacity"]);
    let Err(WriteError::Invalid(errors)) = layers.write(json!({"manager": {"nope": 1}})) else {
        panic!("accepted")
    };
    assert_eq!(paths(&errors), ["manager.nope"]);
    assert_eq!(errors.0[0].code, ErrorCode::UnknownField);
    let Err(WriteError::Invalid(errors)) = layers.write(json!({"manager": {"frozen_gops": "x"}}))
    else {
        panic!("accepted")
    };
    assert_eq!(paths(&errors), ["manager.frozen_gops"]);
    assert!(layers.write(json!([1])).is_err());
}

#[test]
fn null_switches_sections_off_or_is_refused() {
    let layers = Layers::new(json!({}), json!({}), json!({}));
    let write = layers
        .write(json!({"hooks": null, "sessions": null, "listeners": {"rtsp": null}}))
        .expect("accepted");
    assert_eq!(write.config.hooks, None);
    assert_eq!(
        write.config.sessions.as_ref().and_then(|s| s.enabled),
        Some(false)
    );
    assert!(!write.config.listeners.rtsp.enabled);
    assert!(write.config.listeners.rtmp.enabled);
    assert_eq!(
        write.changed,
        ["hooks", "listeners.rtsp.enabled", "sessions.enabled"]
    );
    let write = layers.write(json!({"listeners": null})).expect("accepted");
    assert!(!write.config.listeners.rtmp.enabled && !write.config.listeners.srt.enabled);
    let Err(WriteError::Invalid(errors)) = layers.write(json!({"server": null, "manager": null}))
    else {
        panic!("accepted")
    };
    assert_eq!(paths(&errors), ["manager", "server"]);
    assert!(errors.0[1].message.contains("cannot be disabled"));
}

#[test]
fn a_masked_secret_written_back_keeps_the_value_below() {
    let layers =
        layers().with_store(json!({"listeners": {"srt": {"passphrase": "stored-passphrase"}}}));
    let write = layers
        .write(json!({"security": {"admin_token": "****"}, "listeners": {"srt": {"passphrase": "****"}}, "manager": {"frozen_gops": 4}}))
        .expect("accepted");
    assert_eq!(write.config.security.admin_token, "file-token");
    assert_eq!(
        write.config.listeners.srt.passphrase.as_deref(),
        Some("stored-passphrase")
    );
    assert_eq!(write.changed, ["manager.frozen_gops"]);
    let shown = serde_json::to_value(write.config.redacted()).unwrap();
    assert_eq!(shown["security"]["admin_token"], "****");
}

#[test]
fn hot_apply_classifies_every_path() {
    assert_eq!(hot_apply("listeners.rtmp.port"), HotApply::Rebind("rtmp"));
    assert_eq!(hot_apply("listeners.srt"), HotApply::Rebind("srt"));
    assert_eq!(
        hot_apply("listeners.rtsp.transport"),
        HotApply::Rebind("rtsp")
    );
    assert_eq!(hot_apply("security.loopback_bypass"), HotApply::Now);
    assert_eq!(hot_apply("server.allowed_hosts"), HotApply::Now);
    assert_eq!(hot_apply("security.publish_auth"), HotApply::Now);
    assert_eq!(hot_apply("manager.input_packet_timeout_sec"), HotApply::Now);
    assert_eq!(hot_apply("server.http_addr"), HotApply::Rebind("http"));
    assert_eq!(hot_apply("security.trusted_proxies"), HotApply::Now);
    assert_eq!(hot_apply("security.admin_token"), HotApply::Now);
    assert_eq!(hot_apply("autopublish.max_runtime_streams"), HotApply::Now);
    assert_eq!(hot_apply("autopublish"), HotApply::Now);
    assert_eq!(hot_apply("security.play_signing.enabled"), HotApply::Now);
    assert_eq!(hot_apply("security.ssrf_guard"), HotApply::Now);
    assert_eq!(hot_apply("security.storage_roots"), HotApply::Now);
    assert_eq!(hot_apply("watermarks.dir"), HotApply::Now);
    assert_eq!(hot_apply("watermarks"), HotApply::Now);
    assert_eq!(hot_apply("server.cors.enabled"), HotApply::NotYet);
    assert_eq!(hot_apply("security.unsafe_extra_args"), HotApply::NotYet);
    assert_eq!(hot_apply("hooks"), HotApply::Now);
    assert_eq!(hot_apply("hooks.batch_max_items"), HotApply::Now);
    assert_eq!(hot_apply("hooksx"), HotApply::NotYet);
    assert_eq!(hot_apply("debug.fault_injection"), HotApply::Now);
    assert_eq!(hot_apply("debug"), HotApply::Now);
    assert_eq!(hot_apply("transcoder.ffmpeg_path"), HotApply::Now);
    assert_eq!(hot_apply("transcoder.mode"), HotApply::NotYet);
    assert_eq!(hot_apply("listeners.rtmpx.port"), HotApply::NotYet);
    assert_eq!(hot_apply("sessions.idle_timeout_sec"), HotApply::Now);
    assert_eq!(hot_apply("sessions.geoip_db_path"), HotApply::Now);
    assert_eq!(hot_apply("buffer.capacity"), HotApply::Now);
    assert_eq!(hot_apply("log.level"), HotApply::Now);
    assert_eq!(hot_apply("log.format"), HotApply::Now);
    assert_eq!(hot_apply("publisher.hls.live_window"), HotApply::Now);
    assert_eq!(hot_apply("publisher.hls.live_history"), HotApply::Now);
    // Running packagers switch at their next keyframe; derived GOPs restart their FFmpeg.
    assert_eq!(hot_apply("publisher.hls.live_segment_sec"), HotApply::Now);
    assert_eq!(hot_apply("publisher.hls.segment_format"), HotApply::NotYet);
    // DASH's S opens a new Period in running MPDs; the section set to null (its defaults)
    // changes only live fields.
    for live in [
        "segment_sec",
        "window",
        "pairing_sec",
        "track_loss_sec",
        "queue_frames",
    ] {
        let path = format!("publisher.dash.{live}");
        assert_eq!(hot_apply(&path), HotApply::Now, "{path}");
    }
    assert_eq!(hot_apply("publisher.dash"), HotApply::Now);
    assert_eq!(hot_apply("publisher.dashx"), HotApply::NotYet);
}

#[test]
fn defaults_are_deterministic_and_grouped() {
    let doc = defaults_document();
    assert_eq!(doc, defaults_document());
    assert_eq!(doc["listeners"]["rtmp"]["port"], 1935);
    assert_eq!(doc["listeners"]["rtsp"]["port"], 8554);
    assert_eq!(
        doc["transcoder"]["encoder_by_codec_hw"]["h264"]["none"],
        "libx264"
    );
    assert_eq!(doc["hook"]["max_retries"], 3);
    assert_eq!(doc["publisher"]["hls"]["live_window"], 12);
    for group in [
        "buffer",
        "manager",
        "publisher",
        "hook",
        "push",
        "dvr",
        "transcoder",
        "listeners",
        "ingestor",
    ] {
        assert!(doc[group].is_object(), "{group}");
    }
}

#[test]
fn leaves_and_set_leaf_round_trip() {
    let doc = json!({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": null, "f": {}});
    let mut rebuilt = json!({});
    for (path, value) in leaves(&doc) {
        set_leaf(&mut rebuilt, &path, value);
    }
    assert_eq!(rebuilt, doc);
    assert_eq!(
        leaves(&doc).into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
        ["a.b", "a.c.d", "e", "f"]
    );
}
