//! Starting a stream: what is created, in which order, what rolls back, what only warns.

use super::*;

#[tokio::test]
async fn start_creates_in_order_and_is_idempotent() {
    let rig = rig();
    let mut s = transcoded(TranscoderMode::PerProfile, 2);
    s.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    s.push = vec![Push {
        enabled: true,
        ..Push::new("rtmp://a/b/c")
    }];
    s.dvr = Some(Dvr {
        enabled: true,
        ..Dvr::default()
    });
    let applied = rig.apply(&s).await.unwrap();
    assert_eq!(applied.actions, vec![Action::Start]);
    assert_eq!(
        rig.recorder.take(),
        [
            "buffers.create main,raw,r0,r1",
            "inputs.register 1",
            "outputs.start hls",
            "outputs.start rtmp",
            "push.start rtmp://a/b/c",
            "transcoder.start 2",
            "dvr.start",
        ]
    );
    assert!(rig.coordinator.is_running(&s.code));
    assert_eq!(
        rig.coordinator.snapshot(&s.code).status,
        StreamStatus::Active
    );
    // Idempotent.
    let again = rig.apply(&s).await.unwrap();
    assert!(again.actions.is_empty());
    assert!(rig.recorder.take().is_empty());
    // Stop in reverse dependency order.
    rig.stop(&s).await;
    assert_eq!(
        rig.recorder.take(),
        [
            "dvr.stop",
            "push.stop rtmp://a/b/c",
            "outputs.stop rtmp",
            "outputs.stop hls",
            "transcoder.stop",
            "inputs.unregister",
            "buffers.delete main,raw,r0,r1",
        ]
    );
    assert_eq!(
        rig.coordinator.snapshot(&s.code).status,
        StreamStatus::Stopped
    );
    // Stopping a stopped stream is a no-op.
    assert!(rig.stop(&s).await.actions.is_empty());
    assert!(rig.recorder.take().is_empty());
}

#[tokio::test]
async fn disabled_and_inputless_streams_are_stored_but_not_started() {
    let rig = rig();
    let mut s = base();
    s.disabled = true;
    assert!(rig.apply(&s).await.unwrap().actions.is_empty());
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::Disabled(_))
    ));
    s.disabled = false;
    s.inputs.clear();
    assert!(rig.apply(&s).await.unwrap().actions.is_empty());
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::NoInputs(_))
    ));
    assert!(rig.recorder.take().is_empty());
}

#[tokio::test]
async fn publisher_start_failure_rolls_back_everything_created() {
    let rig = rig();
    let mut s = base();
    s.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    rig.recorder.fail("outputs.start rtmp");
    let err = rig.apply(&s).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CoordError::Service {
                step: Step::Output(Output::Rtmp),
                source,
                ..
            } if matches!(**source, ServiceError::Unsupported(_))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("output rtmp"), "{err}");
    assert_eq!(
        rig.recorder.take(),
        [
            "buffers.create main",
            "inputs.register 1",
            "outputs.start hls",
            "outputs.start rtmp",
            "outputs.stop hls",
            "inputs.unregister",
            "buffers.delete main",
        ]
    );
    assert!(!rig.coordinator.is_running(&s.code));
    assert!(rig.coordinator.snapshot(&s.code).last_error.is_some());
}

#[tokio::test]
async fn dvr_failure_is_a_warning_not_a_start_failure() {
    let rig = rig();
    let mut s = base();
    s.dvr = Some(Dvr {
        enabled: true,
        ..Dvr::default()
    });
    rig.recorder.fail("dvr.start");
    let applied = rig.apply(&s).await.unwrap();
    assert_eq!(applied.warnings.len(), 1);
    assert!(rig.coordinator.is_running(&s.code));
}

#[tokio::test]
async fn an_unknown_watermark_asset_is_a_start_warning_not_a_start_failure() {
    let rig = rig();
    let mut s = transcoded(TranscoderMode::Multi, 1);
    s.watermark = Some(tributary_domain::Watermark {
        enabled: true,
        kind: "image".into(),
        asset_id: "missing".into(),
        ..Default::default()
    });
    let applied = rig.apply(&s).await.unwrap();
    assert!(rig.coordinator.is_running(&s.code));
    assert_eq!(applied.warnings.len(), 1, "{:?}", applied.warnings);
    assert!(applied.warnings[0].contains("missing"));
    // Shown in runtime.warnings for the run, as the other start warnings.
    assert_eq!(rig.coordinator.snapshot(&s.code).warnings, applied.warnings);

    // An update naming an asset the library holds restarts the transcoder, whose new start
    // has nothing to warn about: the old warning goes with the old start.
    let mut fixed = s.clone();
    if let Some(w) = fixed.watermark.as_mut() {
        w.asset_id = "0123456789abcdef".into();
    }
    rig.recorder.take();
    let applied = rig.apply(&fixed).await.unwrap();
    assert!(
        rig.recorder
            .take()
            .contains(&"transcoder.start 1".to_owned()),
        "{applied:?}"
    );
    assert!(applied.warnings.is_empty(), "{:?}", applied.warnings);
    assert!(rig.coordinator.snapshot(&s.code).warnings.is_empty());
}
