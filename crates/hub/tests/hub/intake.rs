//! Intake: port selection, switching at a keyframe, hot standby, health counters.

use std::time::Duration;

use tributary_hub::{
    AUDIO_ONLY_AFTER, Hub, HubError, Intake, PortKey, RECENT_ERRORS, SessionReason, SubscribeFrom,
    Subscriber,
};
use tributary_media::{Frame, Ts90};

use crate::support::{audio, drain, frames, id, n, origin, video};

fn setup(hot: bool) -> (Hub, Intake, Subscriber) {
    let hub = Hub::new();
    let id = id("cam");
    let writer = hub.create(id.clone(), 1024).unwrap();
    let intake = Intake::new(writer);
    intake.add_port(PortKey(0), false).unwrap();
    intake.add_port(PortKey(1), hot).unwrap();
    let sub = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    (hub, intake, sub)
}

fn got(sub: &mut Subscriber) -> Vec<Frame> {
    frames(&drain(sub))
}

fn ns(frames: &[Frame]) -> Vec<i64> {
    frames.iter().map(n).collect()
}

#[test]
fn only_the_selected_port_reaches_the_buffer() {
    let (_hub, intake, mut sub) = setup(false);
    let main = intake.port(PortKey(0)).unwrap();
    let backup = intake.port(PortKey(1)).unwrap();
    assert_eq!(intake.selected(), None);
    main.write(video(0, true)).unwrap();
    assert!(
        got(&mut sub).is_empty(),
        "nothing selected, nothing forwarded"
    );

    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    assert_eq!(intake.selected(), Some(PortKey(0)));
    main.write(video(1, true)).unwrap();
    backup.write(video(1001, true)).unwrap();
    main.write(audio(2)).unwrap();
    backup.write(audio(1002)).unwrap();
    assert_eq!(ns(&got(&mut sub)), [1, 2]);
    assert!(main.is_selected() && !backup.is_selected());
}

#[test]
fn a_switch_waits_for_the_new_ports_keyframe() {
    let (_hub, intake, mut sub) = setup(false);
    let main = intake.port(PortKey(0)).unwrap();
    let backup = intake.port(PortKey(1)).unwrap();
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    assert!(intake.handoff_pending());
    main.write(video(0, false)).unwrap(); // before the first keyframe: dropped
    main.write(video(1, true)).unwrap();
    assert!(!intake.handoff_pending());
    let before = got(&mut sub);
    assert_eq!(ns(&before), [1]);

    intake.select(PortKey(1), SessionReason::Failover).unwrap();
    main.write(video(2, false)).unwrap(); // the old port stops at once
    backup.write(audio(1000)).unwrap(); // audio before the keyframe: dropped
    backup.write(video(1001, false)).unwrap();
    assert!(got(&mut sub).is_empty());
    assert!(intake.handoff_pending());
    backup.write(video(1002, true)).unwrap();
    backup.write(audio(1003)).unwrap();
    main.write(video(3, true)).unwrap();
    let after = got(&mut sub);
    assert_eq!(ns(&after), [1002, 1003]);
    assert!(after[0].session > before[0].session);
    assert_eq!(after[0].session, after[1].session);
}

#[test]
fn a_hot_standby_switch_replays_its_cached_gop_at_once() {
    let (_hub, intake, mut sub) = setup(true);
    let main = intake.port(PortKey(0)).unwrap();
    let standby = intake.port(PortKey(1)).unwrap();
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    main.write(video(0, true)).unwrap();
    for frame in [
        video(1000, true),
        video(1001, false),
        video(1002, true), // the latest GOP starts here
        audio(1003),
        video(1004, false),
    ] {
        standby.write(frame).unwrap();
    }
    assert_eq!(standby.health().cached_frames, 3);
    assert_eq!(ns(&got(&mut sub)), [0]);

    intake.select(PortKey(1), SessionReason::Failover).unwrap();
    assert!(!intake.handoff_pending());
    standby.write(video(1005, false)).unwrap();
    let replayed = got(&mut sub);
    assert_eq!(ns(&replayed), [1002, 1003, 1004, 1005]);
    assert!(replayed.iter().all(|f| f.session == replayed[0].session));

    // Selecting the delivering port again replays nothing twice.
    intake.select(PortKey(1), SessionReason::Failover).unwrap();
    standby.write(video(1006, false)).unwrap();
    assert_eq!(ns(&got(&mut sub)), [1006]);
}

#[test]
fn counters_update_for_unselected_ports() {
    let (_hub, intake, mut sub) = setup(false);
    let backup = intake.port(PortKey(1)).unwrap();
    backup.write(video(10, true)).unwrap();
    backup.write(audio(20)).unwrap();
    backup.write(video(30, false)).unwrap();
    for i in 0..7 {
        backup.report_error(origin() + Duration::from_secs(i), format!("error {i}"));
    }
    assert!(got(&mut sub).is_empty());

    let health = backup.health();
    assert_eq!(health.key, PortKey(1));
    assert!(!health.selected && !health.hot_standby);
    assert_eq!((health.frames, health.bytes, health.keyframes), (3, 33, 1));
    assert_eq!(
        health.last_frame_at,
        Some(origin() + Duration::from_millis(30))
    );
    assert_eq!(
        health.last_keyframe_at,
        Some(origin() + Duration::from_millis(10))
    );
    assert_eq!(
        health.last_video_at,
        Some(origin() + Duration::from_millis(30))
    );
    assert_eq!(
        health.last_audio_at,
        Some(origin() + Duration::from_millis(20))
    );
    assert_eq!(health.video_pts, Some(Ts90::from_millis(30)));
    assert_eq!(health.errors, 7);
    assert_eq!(health.recent_errors.len(), RECENT_ERRORS);
    assert_eq!(health.recent_errors[0].message, "error 2");
    assert_eq!(health.cached_frames, 0);

    let all = intake.health();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].key, PortKey(0));
    assert_eq!(all[0].frames, 0);
    assert_eq!(all[1], health);
}

#[test]
fn ports_are_added_and_removed_at_runtime() {
    let (_hub, intake, mut sub) = setup(false);
    assert!(matches!(
        intake.add_port(PortKey(1), true),
        Err(HubError::PortExists { .. })
    ));
    let late = intake.add_port(PortKey(5), false).unwrap();
    intake.select(PortKey(5), SessionReason::Fresh).unwrap();
    late.write(video(0, true)).unwrap();
    assert_eq!(ns(&got(&mut sub)), [0]);

    assert!(intake.remove_port(PortKey(5)));
    assert!(!intake.remove_port(PortKey(5)));
    assert_eq!(intake.selected(), None);
    assert!(matches!(
        late.write(video(1, true)),
        Err(HubError::UnknownPort { .. })
    ));
    assert!(matches!(
        intake.select(PortKey(5), SessionReason::Failover),
        Err(HubError::UnknownPort { .. })
    ));
    assert!(got(&mut sub).is_empty());
}

#[test]
fn a_restart_of_the_selected_port_waits_for_its_keyframe() {
    let (_hub, intake, mut sub) = setup(false);
    let main = intake.port(PortKey(0)).unwrap();
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    main.write(video(0, true)).unwrap();
    main.restart(SessionReason::Reconnect);
    main.write(video(1, false)).unwrap();
    main.write(video(2, true)).unwrap();
    let frames = got(&mut sub);
    assert_eq!(ns(&frames), [0, 2]);
    assert!(frames[1].session > frames[0].session);
}

#[test]
fn an_audio_only_input_commits_after_a_run_of_audio() {
    let (_hub, intake, mut sub) = setup(false);
    let radio = intake.port(PortKey(1)).unwrap();
    intake.select(PortKey(1), SessionReason::Fresh).unwrap();
    for i in 0..i64::from(AUDIO_ONLY_AFTER) {
        radio.write(audio(i)).unwrap();
    }
    assert!(got(&mut sub).is_empty());
    radio.write(audio(1000)).unwrap();
    assert_eq!(ns(&got(&mut sub)), [1000]);
}

#[test]
fn deleting_the_buffer_fails_the_selected_ports_writes() {
    let (hub, intake, _sub) = setup(false);
    let main = intake.port(PortKey(0)).unwrap();
    let backup = intake.port(PortKey(1)).unwrap();
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    hub.delete(&intake.id());
    assert!(matches!(
        main.write(video(0, true)),
        Err(HubError::Deleted { .. })
    ));
    assert!(
        backup.write(video(0, true)).is_ok(),
        "unselected: counted only"
    );
}

#[test]
fn ports_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<tributary_hub::Port>();
    assert_send_sync::<Intake>();
    assert_send_sync::<Hub>();
}

#[test]
fn media_counters_follow_each_kind_and_the_latest_video_pts() {
    let (_hub, intake, _sub) = setup(false);
    let port = intake.port(PortKey(0)).unwrap();
    let health = port.health();
    assert_eq!(
        (health.last_video_at, health.last_audio_at, health.video_pts),
        (None, None, None)
    );

    port.write(audio(5)).unwrap();
    let health = port.health();
    assert_eq!(
        health.last_audio_at,
        Some(origin() + Duration::from_millis(5))
    );
    assert_eq!((health.last_video_at, health.video_pts), (None, None));

    // Video keeps arriving with a frozen PTS: the arrival moves, the PTS does not.
    let mut frozen = video(40, true);
    port.write(frozen.clone()).unwrap();
    frozen.arrival += Duration::from_millis(500);
    frozen.keyframe = false;
    port.write(frozen).unwrap();
    let health = port.health();
    assert_eq!(
        health.last_video_at,
        Some(origin() + Duration::from_millis(540))
    );
    assert_eq!(health.video_pts, Some(Ts90::from_millis(40)));
    assert_eq!(
        health.last_audio_at,
        Some(origin() + Duration::from_millis(5))
    );
    assert_eq!(health.keyframes, 1);

    // The latest PTS is reported as is, also when the source's clock goes back.
    port.write(video(12, false)).unwrap();
    assert_eq!(port.health().video_pts, Some(Ts90::from_millis(12)));
}

#[test]
fn a_commit_is_timed() {
    let (_hub, intake, _sub) = setup(true);
    let main = intake.port(PortKey(0)).unwrap();
    let standby = intake.port(PortKey(1)).unwrap();
    assert_eq!(intake.committed_at(), None);

    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    main.write(video(1, false)).unwrap();
    assert_eq!(
        intake.committed_at(),
        None,
        "no keyframe yet, nothing committed"
    );
    let before = std::time::Instant::now();
    main.write(video(2, true)).unwrap();
    let first = intake.committed_at().expect("committed at the keyframe");
    assert!(first >= before);

    // A standby with a cached GOP commits at select.
    standby.write(video(3, true)).unwrap();
    intake.select(PortKey(1), SessionReason::Failover).unwrap();
    assert!(!intake.handoff_pending());
    assert!(intake.committed_at().unwrap() >= first);
}

#[test]
fn a_retarget_moves_the_selected_input_to_another_buffer_at_its_next_keyframe() {
    let (hub, intake, mut main_sub) = setup(false);
    let main = intake.port(PortKey(0)).unwrap();
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    main.write(video(0, true)).unwrap();
    main.write(video(1, false)).unwrap();
    assert_eq!(ns(&got(&mut main_sub)), [0, 1]);

    // Passthrough → transcoding: the ingest moves to the raw buffer; the main buffer's
    // writer comes back (for the transcoder), the input stays selected and connected.
    let raw = hub.create(id("raw"), 1024).unwrap();
    let mut raw_sub = hub
        .subscribe(&id("raw"), SubscribeFrom::Now, "transcoder")
        .unwrap();
    let mut main_writer = intake.retarget(raw, SessionReason::ConfigChange);
    assert_eq!(intake.id(), id("raw"));
    assert_eq!(*main_writer.id(), id("cam"));
    assert_eq!(intake.selected(), Some(PortKey(0)));
    assert!(intake.handoff_pending());
    main.write(video(2, false)).unwrap(); // before the next keyframe: dropped
    main.write(video(3, true)).unwrap();
    main.write(audio(4)).unwrap();
    assert_eq!(ns(&got(&mut raw_sub)), [3, 4], "raw starts at a keyframe");
    assert!(got(&mut main_sub).is_empty(), "the ingest left main");
    // The main buffer lives on: its new producer writes a new session into it.
    main_writer.start_session(SessionReason::Reconnect);
    main_writer.write(video(100, true)).unwrap();
    assert_eq!(ns(&got(&mut main_sub)), [100]);

    // And back: the raw buffer goes, the ingest feeds main again from its next keyframe.
    hub.delete(&id("raw"));
    assert!(matches!(
        main.write(video(5, true)),
        Err(HubError::Deleted { .. })
    ));
    let raw = intake.retarget(main_writer, SessionReason::ConfigChange);
    assert_eq!(*raw.id(), id("raw"));
    main.write(audio(6)).unwrap();
    main.write(video(7, true)).unwrap();
    let frames = got(&mut main_sub);
    assert_eq!(ns(&frames), [7]);
    assert_eq!(intake.id(), id("cam"));
}

#[test]
fn a_retarget_without_a_selected_input_waits_for_a_select() {
    let (hub, intake, _sub) = setup(false);
    let main = intake.port(PortKey(0)).unwrap();
    let raw = hub.create(id("raw"), 1024).unwrap();
    let mut raw_sub = hub
        .subscribe(&id("raw"), SubscribeFrom::Now, "transcoder")
        .unwrap();
    let _main_writer = intake.retarget(raw, SessionReason::ConfigChange);
    assert!(!intake.handoff_pending());
    main.write(video(0, true)).unwrap();
    assert!(got(&mut raw_sub).is_empty());
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    main.write(video(1, true)).unwrap();
    assert_eq!(ns(&got(&mut raw_sub)), [1]);
}
