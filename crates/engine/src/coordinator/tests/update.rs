//! Updates routed to only the services the change touches (SPEC §Hot reload), and what a
//! failed one leaves.

use super::*;

/// Runs `old` → `new` and returns the service calls the update made.
async fn route(old: Stream, new: Stream) -> Vec<String> {
    let rig = rig();
    started(&rig, &old).await;
    rig.apply(&new).await.unwrap();
    rig.recorder.take()
}

#[tokio::test]
async fn add_input_touches_only_the_manager() {
    let old = base();
    let mut new = base();
    new.inputs.push(Input::new("udp://:5001", 1));
    assert_eq!(route(old, new).await, ["inputs.update 2"]);
}

#[tokio::test]
async fn remove_active_input_touches_only_the_manager() {
    let mut old = base();
    old.inputs.push(Input::new("udp://:5001", 1));
    let mut new = base();
    new.inputs = vec![Input::new("udp://:5001", 0)];
    assert_eq!(route(old, new).await, ["inputs.update 1"]);
}

#[tokio::test]
async fn change_one_profile_restarts_that_rung_only() {
    let old = transcoded(TranscoderMode::PerProfile, 3);
    let mut new = old.clone();
    new.transcoder.as_mut().unwrap().video.profiles[1].bitrate = 1234;
    assert_eq!(route(old, new).await, ["transcoder.restart_rung 1"]);
}

#[tokio::test]
async fn add_and_remove_profiles_per_profile() {
    let old = transcoded(TranscoderMode::PerProfile, 2);
    let new = transcoded(TranscoderMode::PerProfile, 3);
    assert_eq!(
        route(old.clone(), new.clone()).await,
        ["buffers.create r2", "transcoder.add_rung 2"]
    );
    assert_eq!(
        route(new, old).await,
        ["transcoder.remove_rung 2", "buffers.delete r2"]
    );
}

#[tokio::test]
async fn ladder_changes_with_hls_on_tell_the_outputs_and_restart_nothing_else() {
    let with_hls = |mut s: Stream| {
        s.protocols = Some(Protocols {
            hls: true,
            ..Protocols::default()
        });
        s
    };
    let two = with_hls(transcoded(TranscoderMode::PerProfile, 2));
    let three = with_hls(transcoded(TranscoderMode::PerProfile, 3));
    let mut changed = two.clone();
    changed.transcoder.as_mut().unwrap().video.profiles[0].bitrate = 4321;
    assert_eq!(
        route(two.clone(), changed).await,
        ["transcoder.restart_rung 0", "outputs.ladder 2"]
    );
    assert_eq!(
        route(two.clone(), three.clone()).await,
        [
            "buffers.create r2",
            "transcoder.add_rung 2",
            "outputs.ladder 3"
        ]
    );
    assert_eq!(
        route(three, two).await,
        [
            "transcoder.remove_rung 2",
            "outputs.ladder 2",
            "buffers.delete r2"
        ]
    );
    let multi = with_hls(transcoded(TranscoderMode::Multi, 2));
    let mut multi_changed = multi.clone();
    multi_changed.transcoder.as_mut().unwrap().video.profiles[1].bitrate = 99;
    assert_eq!(
        route(multi, multi_changed).await,
        [
            "transcoder.stop",
            "buffers.delete ",
            "buffers.create ",
            "transcoder.start 2",
            "outputs.ladder 2"
        ]
    );
}

#[tokio::test]
async fn profile_change_in_multi_mode_restarts_the_single_ffmpeg() {
    let old = transcoded(TranscoderMode::Multi, 2);
    let new = transcoded(TranscoderMode::Multi, 3);
    assert_eq!(
        route(old, new).await,
        [
            "transcoder.stop",
            "buffers.delete ",
            "buffers.create r2",
            "transcoder.start 3"
        ]
    );
}

#[tokio::test]
async fn toggle_hls() {
    let old = base();
    let mut new = base();
    new.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    assert_eq!(route(old.clone(), new.clone()).await, ["outputs.start hls"]);
    assert_eq!(route(new, old).await, ["outputs.stop hls"]);
}

#[tokio::test]
async fn add_push_target() {
    let old = base();
    let mut new = base();
    new.push = vec![Push {
        enabled: true,
        ..Push::new("rtmp://x/app/key")
    }];
    assert_eq!(route(old, new).await, ["push.start rtmp://x/app/key"]);
}

/// SPEC §Hot reload: a target's `profile` edited restarts that target only; a ladder edit
/// leaves the targets alone (a target whose rung goes away fails in the output service).
#[tokio::test]
async fn a_push_profile_change_restarts_only_that_target() {
    let target = |url: &str, profile: &str| Push {
        enabled: true,
        profile: profile.into(),
        ..Push::new(url)
    };
    let mut old = transcoded(TranscoderMode::Multi, 2);
    old.push = vec![
        target("rtmp://x/app/one", "track_2"),
        target("rtmp://x/app/two", ""),
    ];
    let mut new = old.clone();
    new.push[0].profile = "track_1".into();
    assert_eq!(
        route(old.clone(), new).await,
        ["push.stop rtmp://x/app/one", "push.start rtmp://x/app/one"]
    );

    let mut fewer = old.clone();
    fewer.push[0].profile = "track_1".into();
    fewer.transcoder.as_mut().unwrap().video.profiles.pop();
    let routed = route(old, fewer).await;
    assert!(
        routed.iter().all(|call| !call.contains("app/two")),
        "{routed:?}"
    );
    assert_eq!(
        routed
            .iter()
            .filter(|call| call.contains("app/one"))
            .count(),
        2,
        "{routed:?}"
    );
}

#[tokio::test]
async fn toggle_dvr() {
    let old = base();
    let mut new = base();
    new.dvr = Some(Dvr {
        enabled: true,
        ..Dvr::default()
    });
    assert_eq!(route(old.clone(), new.clone()).await, ["dvr.start"]);
    assert_eq!(route(new, old).await, ["dvr.stop"]);
}

#[tokio::test]
async fn disable_stops_everything() {
    let mut old = base();
    old.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    let mut new = old.clone();
    new.disabled = true;
    assert_eq!(
        route(old, new).await,
        [
            "outputs.stop hls",
            "inputs.unregister",
            "buffers.delete main"
        ]
    );
}

#[tokio::test]
async fn passthrough_to_transcoding_moves_the_ingest_without_restarting_the_stream() {
    let mut old = base();
    old.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    let mut new = transcoded(TranscoderMode::Multi, 2);
    new.protocols = old.protocols;
    // The inputs stay registered and the RTMP output running: the raw buffer appears (the
    // intake moves to it), FFmpeg starts, HLS restarts on the ladder.
    assert_eq!(
        route(old.clone(), new.clone()).await,
        [
            "buffers.delete ",
            "buffers.create raw,r0,r1",
            "inputs.update 1",
            "transcoder.start 2",
            "outputs.stop hls",
            "outputs.start hls",
        ]
    );
    // And back: the transcoder hands the main buffer back to the ingest.
    assert_eq!(
        route(new, old).await,
        [
            "transcoder.stop_to_ingest",
            "buffers.delete raw,r0,r1",
            "buffers.create ",
            "inputs.update 1",
            "outputs.stop hls",
            "outputs.start hls",
        ]
    );
}

#[tokio::test]
async fn mode_change_reloads_the_transcoder_only() {
    let mut old = transcoded(TranscoderMode::Multi, 2);
    old.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    let mut new = transcoded(TranscoderMode::PerProfile, 2);
    new.protocols = old.protocols;
    assert_eq!(
        route(old, new).await,
        [
            "transcoder.stop",
            "buffers.delete ",
            "buffers.create ",
            "inputs.update 1",
            "transcoder.start 2",
            "outputs.stop hls",
            "outputs.start hls",
        ]
    );
}

#[tokio::test]
async fn metadata_only_change_restarts_nothing() {
    let old = base();
    let mut new = base();
    new.name = "New name".into();
    new.description = "d".into();
    new.tags = vec!["x".into()];
    new.stream_key = "k".into();
    // Nothing restarts; the manager only learns the key the next publish is checked against.
    assert_eq!(route(old, new).await, ["inputs.stream_key k"]);
}

#[tokio::test]
async fn a_stored_record_that_no_longer_parses_is_reported_not_run() {
    let rig = rig();
    let mut s = base();
    s.inputs = vec![Input::new("udp://:5000?pkt_size=0", 0)];
    // Written by another build, which took the option.
    rig.store.upsert(&s, Expect::Any).unwrap();
    let error = rig.coordinator.converge(&s.code).await.unwrap_err();
    assert!(
        matches!(&error, CoordError::Invalid { source, .. } if source.0[0].path == "inputs[0].url"),
        "{error}"
    );
    assert!(!rig.coordinator.is_running(&s.code));
    let last = rig.coordinator.snapshot(&s.code).last_error.unwrap();
    assert!(last.contains("pkt_size"), "{last}");
    assert!(rig.recorder.take().is_empty(), "nothing was started");
}

#[tokio::test]
async fn failed_update_ends_in_a_clean_stop() {
    let rig = rig();
    let old = base();
    started(&rig, &old).await;
    let mut new = base();
    new.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    rig.recorder.fail("outputs.start hls");
    assert!(rig.apply(&new).await.is_err());
    assert_eq!(
        rig.recorder.take(),
        [
            "outputs.start hls",
            "inputs.unregister",
            "buffers.delete main"
        ]
    );
    assert!(!rig.coordinator.is_running(&old.code));
}

/// Regression (issue 12, defect f): `stream.updated` names the field groups that changed
/// (SPEC §Events), not `{}`.
#[tokio::test]
async fn stream_updated_names_the_changed_field_groups() {
    let rig = rig();
    let mut events = rig.events.subscribe("test");
    let s = base();
    rig.apply(&s).await.unwrap();
    let mut renamed = s.clone();
    renamed.name = "Cam".into();
    renamed.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    rig.apply(&renamed).await.unwrap();
    rig.apply(&renamed).await.unwrap();
    let mut payloads = Vec::new();
    while payloads.len() < 3 {
        let event = events.recv().await.unwrap();
        match event.kind {
            EventType::StreamCreated | EventType::StreamUpdated => {
                payloads.push((event.kind, event.payload.clone()));
            }
            _ => {}
        }
    }
    assert_eq!(
        payloads[0],
        (EventType::StreamCreated, serde_json::json!({}))
    );
    assert_eq!(
        payloads[1],
        (
            EventType::StreamUpdated,
            serde_json::json!({"changed": ["metadata", "protocols"]})
        )
    );
    assert_eq!(
        payloads[2],
        (EventType::StreamUpdated, serde_json::json!({"changed": []}))
    );
}
