//! Every health signal: when it fires, with which detail, and how an input recovers from it.

use super::*;

// --- health signals ------------------------------------------------------------------------

#[test]
fn an_error_degrades_the_active_input_at_once() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    sim.take();
    sim.event(0, error("EOF"));
    let out = sim.take();
    assert_eq!(
        out,
        [
            Output::Event(Event::Degraded {
                priority: 0,
                signal: Signal::Error,
                detail: "EOF".into()
            }),
            Output::Command(select(1, SwitchReason::Error)),
            Output::Event(Event::Switched(Switch {
                at: sim.now,
                from: Some(0),
                to: 1,
                reason: SwitchReason::Error,
                detail: "EOF".into()
            })),
            Output::Command(Disconnect(0)),
        ]
    );
    let report = sim.fo.input(0).unwrap();
    assert_eq!(report.status, InputStatus::Degraded);
    assert_eq!(report.degraded.unwrap().signal, Signal::Error);
    assert_eq!(report.degraded.unwrap().since, sim.now);
    assert_eq!(report.errors.len(), 1, "the error, not twice");
    assert_eq!(report.errors[0].message, "EOF");
}

#[test]
fn silence_degrades_after_the_packet_timeout() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(5.0));
    sim.take();
    sim.feed(0).up = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(30.0)));
    let switch = &sim.fo.switches()[0];
    assert_eq!((switch.from, switch.to), (Some(0), 1));
    assert_eq!(switch.reason, SwitchReason::Timeout);
    assert_eq!(switch.detail, "no packet for 30 s");
    let degraded: Vec<_> = events(&sim.take())
        .into_iter()
        .filter(|e| matches!(e, Event::Degraded { .. }))
        .collect();
    assert_eq!(
        degraded,
        [Event::Degraded {
            priority: 0,
            signal: Signal::Timeout,
            detail: "no packet for 30 s".into()
        }],
        "a source that stops entirely is silent, not frozen or missing a track"
    );
    let report = sim.fo.input(0).unwrap();
    assert_eq!(report.errors[0].message, "no packet for 30 s");
}

#[test]
fn an_input_packet_timeout_overrides_the_global_one() {
    let mut ins = inputs(&[UDP, UDP2]);
    ins[0].packet_timeout_sec = 4;
    let mut sim = Sim::with(FailoverConfig::default(), ins);
    sim.run(secs(5.0));
    sim.feed(0).up = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(4.0)));
    assert_eq!(sim.fo.switches()[0].detail, "no packet for 4 s");
    sim.feed(1).up = false;
    let took = sim.run_until(secs(60.0), Failover::exhausted);
    assert_eq!(took, Some(secs(30.0)), "input 1 keeps the global timeout");
}

#[test]
fn a_selected_input_that_never_delivers_times_out() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.feed(0).up = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(30.0)));
    let switch = &sim.fo.switches()[0];
    assert_eq!(switch.reason, SwitchReason::Timeout);
    assert_eq!(switch.detail, "no first packet within 30 s");
}

#[test]
fn the_first_packet_timeout_counts_from_selection() {
    let mut sim = Sim::new(&[UDP, SRT]);
    // SRT delivered once, long ago: its old frames must not count against its next selection.
    sim.switch(Some(1)).unwrap();
    sim.run(secs(5.0));
    sim.switch(None).unwrap();
    assert!(!sim.fo.input(1).unwrap().connected);
    sim.feed(1).up = false;
    sim.run(secs(40.0));
    assert_eq!(
        status(&sim, 1),
        InputStatus::Idle,
        "a cold idle input is not judged"
    );
    sim.feed(0).up = false;
    sim.event(0, error("EOF"));
    assert_eq!(sim.fo.active(), Some(1));
    let selected = sim.now;
    let took = sim.run_until(secs(60.0), Failover::exhausted);
    assert_eq!(took, Some(secs(30.0)));
    let degraded = sim.fo.input(1).unwrap().degraded.unwrap().clone();
    assert_eq!(degraded.since, selected + secs(30.0));
    assert_eq!(degraded.detail, "no first packet within 30 s");
}

#[test]
fn three_consecutive_failed_opens_degrade() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.feed(0).up = false;
    let fail = |sim: &mut Sim, n: u32| {
        sim.event(
            0,
            InputEvent::OpenFailed {
                message: format!("connection refused #{n}"),
            },
        );
    };
    fail(&mut sim, 1);
    fail(&mut sim, 2);
    assert_eq!(sim.fo.active(), Some(0));
    sim.event(0, InputEvent::Opened);
    fail(&mut sim, 3);
    fail(&mut sim, 4);
    assert_eq!(
        sim.fo.active(),
        Some(0),
        "the open in between reset the count"
    );
    fail(&mut sim, 5);
    assert_eq!(sim.fo.active(), Some(1));
    let switch = &sim.fo.switches()[0];
    assert_eq!(switch.reason, SwitchReason::Error);
    assert_eq!(
        switch.detail,
        "3 consecutive failed opens; last: connection refused #5"
    );
    let messages: Vec<_> = sim
        .fo
        .input(0)
        .unwrap()
        .errors
        .iter()
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(messages[0], "connection refused #5");
}

#[test]
fn failed_opens_can_be_ignored() {
    let config = FailoverConfig {
        open_failures: 0,
        ..FailoverConfig::default()
    };
    let mut sim = Sim::with(config, inputs(&[SRT, UDP]));
    for n in 0..10 {
        sim.event(
            0,
            InputEvent::OpenFailed {
                message: format!("refused {n}"),
            },
        );
    }
    assert_eq!(sim.fo.active(), Some(0));
    assert_eq!(sim.fo.input(0).unwrap().errors.len(), 5);
}

#[test]
fn frozen_video_without_keyframes_waits_max_of_gops_and_minimum() {
    for (gop, limit, detail) in [
        (2.0, 10.0, "no keyframe for 10 s (max(3 × GOP 2 s, 10 s))"),
        (5.0, 15.0, "no keyframe for 15 s (max(3 × GOP 5 s, 10 s))"),
    ] {
        let mut sim = Sim::new(&[UDP, UDP2]);
        sim.feed(0).gop = secs(gop);
        sim.run(secs(21.0));
        sim.feed(0).keyframes = false;
        let last_key = sim.feed(0).obs.last_keyframe_at.unwrap();
        sim.run_until_switch(secs(60.0)).expect("frozen");
        assert_eq!(sim.now - last_key, secs(limit), "GOP {gop} s");
        let switch = &sim.fo.switches()[0];
        assert_eq!(switch.reason, SwitchReason::Frozen);
        assert_eq!(switch.detail, detail);
    }
}

#[test]
fn frozen_video_waits_for_a_gop_when_the_minimum_is_off() {
    let config = FailoverConfig {
        frozen_min: Duration::ZERO,
        ..FailoverConfig::default()
    };
    let mut sim = Sim::with(config, inputs(&[UDP, UDP2]));
    sim.run(secs(9.0));
    sim.feed(0).keyframes = false;
    let last_key = sim.feed(0).obs.last_keyframe_at.unwrap();
    sim.run_until_switch(secs(60.0)).expect("frozen");
    assert_eq!(sim.now - last_key, secs(6.0), "3 × 2 s");
}

#[test]
fn video_pts_standing_still_while_video_arrives_is_frozen() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(5.0));
    sim.feed(0).pts_moving = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(5.0)));
    let switch = &sim.fo.switches()[0];
    assert_eq!(switch.reason, SwitchReason::Frozen);
    assert_eq!(
        switch.detail,
        "video PTS static for 5 s while video arrives"
    );
}

#[test]
fn a_silent_audio_track_while_video_flows_is_lost() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(5.0));
    sim.feed(0).audio = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(5.0)));
    let switch = &sim.fo.switches()[0];
    assert_eq!(switch.reason, SwitchReason::TrackLost);
    assert_eq!(
        switch.detail,
        "audio track silent for 5 s while video flows"
    );
}

#[test]
fn a_silent_video_track_while_audio_flows_is_lost() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(5.0));
    sim.feed(0).video = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(5.0)));
    let switch = &sim.fo.switches()[0];
    assert_eq!(switch.reason, SwitchReason::TrackLost);
    assert_eq!(
        switch.detail,
        "video track silent for 5 s while audio flows"
    );
}

#[test]
fn tracks_absent_from_the_session_are_not_lost() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.feed(0).audio = false;
    sim.run(secs(60.0));
    assert_eq!(
        sim.fo.active(),
        Some(0),
        "a video-only source never loses audio"
    );

    sim.feed(0).audio = true;
    sim.run(secs(5.0));
    // The source reconnects without audio: the audio of the old session does not count.
    sim.feed(0).audio = false;
    sim.feed(0).obs.session += 1;
    sim.run(secs(30.0));
    assert_eq!(sim.fo.active(), Some(0));
    // The same when the worker reports the reopen.
    sim.feed(0).audio = true;
    sim.run(secs(5.0));
    sim.feed(0).audio = false;
    sim.event(0, InputEvent::Opened);
    sim.run(secs(30.0));
    assert_eq!(sim.fo.active(), Some(0), "{:?}", sim.fo.switches());
    assert_eq!(sim.fo.switches().len(), 1);
}

#[test]
fn an_audio_only_source_has_no_keyframes_to_miss() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.feed(0).video = false;
    sim.run(secs(60.0));
    assert_eq!(sim.fo.active(), Some(0));
    assert!(sim.fo.input(0).unwrap().degraded.is_none());
}

#[test]
fn a_source_restarting_its_clock_is_not_frozen() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(30.0));
    // The encoder restarts its timestamps from zero without the transport noticing.
    let feed = sim.feed(0);
    feed.obs.video_pts = Some(tributary_media::Ts90(0));
    feed.pts = 0;
    sim.run(secs(20.0));
    assert_eq!(sim.fo.active(), Some(0));
    assert_eq!(sim.fo.switches().len(), 1);
}

#[test]
fn a_burst_of_continuity_errors_degrades() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(12.0));
    sim.feed(0).cc_per_tick = 8;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(1.75)));
    let switch = &sim.fo.switches()[0];
    assert_eq!(switch.reason, SwitchReason::CcErrors);
    assert_eq!(switch.detail, "56 continuity errors within 10 s");
}

#[test]
fn a_corrupt_hot_input_recovers_after_a_window_under_the_limit() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    let corrupt = |sim: &mut Sim| {
        sim.feed(1).cc_per_tick = 8;
        sim.run_until(secs(5.0), |fo| fo.input(1).unwrap().degraded.is_some())
            .expect("corrupt");
    };
    // The burst stops at once: recovery still waits a whole window after degrading.
    corrupt(&mut sim);
    sim.feed(1).cc_per_tick = 0;
    let took = sim.run_until(secs(30.0), |fo| fo.input(1).unwrap().degraded.is_none());
    assert_eq!(took, Some(secs(10.0)));

    // The burst goes on: recovery waits until the last window holds fewer than 50 errors
    // (six ticks of 8 = 48, 8.5 s after the burst ended).
    sim.run(secs(3.0));
    corrupt(&mut sim);
    sim.run(secs(15.0));
    assert_eq!(status(&sim, 1), InputStatus::Degraded, "still corrupt");
    sim.feed(1).cc_per_tick = 0;
    let took = sim.run_until(secs(30.0), |fo| fo.input(1).unwrap().degraded.is_none());
    assert_eq!(took, Some(secs(8.5)));
}

#[test]
fn a_steady_trickle_of_continuity_errors_is_tolerated() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.feed(0).cc_per_tick = 1; // 40 per 10 s, under 50
    sim.run(secs(60.0));
    assert_eq!(sim.fo.active(), Some(0));
    assert!(sim.fo.input(0).unwrap().degraded.is_none());
    // A restarted counter is a new baseline, not a negative count.
    sim.feed(0).obs.cc_errors = 0;
    sim.run(secs(2.0));
    assert_eq!(sim.fo.active(), Some(0));
}

#[test]
fn media_signals_can_be_turned_off() {
    let manager = ManagerSection {
        frozen_gops: 0,
        frozen_min_sec: 0,
        pts_static_sec: 0,
        track_lost_sec: 0,
        cc_errors_max: 0,
        ..ManagerSection::default()
    };
    let mut sim = Sim::with(FailoverConfig::from(&manager), inputs(&[UDP, UDP2]));
    sim.run(secs(3.0));
    let feed = sim.feed(0);
    feed.keyframes = false;
    feed.pts_moving = false;
    feed.audio = false;
    feed.cc_per_tick = 100;
    sim.run(secs(60.0));
    assert_eq!(sim.fo.active(), Some(0));
    assert_eq!(sim.fo.switches().len(), 1);
    sim.feed(0).up = false;
    assert_eq!(
        sim.run_until_switch(secs(60.0)),
        Some(secs(30.0)),
        "silence stays on"
    );
}

#[test]
fn hot_standbys_are_health_checked_while_idle() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    sim.take();
    sim.feed(1).up = false;
    let took = sim.run_until(secs(60.0), |fo| fo.input(1).unwrap().degraded.is_some());
    assert_eq!(took, Some(secs(30.0)));
    let out = sim.take();
    assert!(events(&out).contains(&Event::Degraded {
        priority: 1,
        signal: Signal::Timeout,
        detail: "no packet for 30 s".into()
    }));
    assert!(
        switched(&out).is_empty(),
        "an idle input's failure switches nothing"
    );
    assert_eq!(sim.fo.active(), Some(0));

    sim.feed(1).up = true;
    sim.tick();
    let out = sim.take();
    assert_eq!(events(&out), [Event::Restored { priority: 1 }]);
    assert!(commands(&out).is_empty());
    assert_eq!(status(&sim, 1), InputStatus::Idle);
}

#[test]
fn a_frozen_hot_input_recovers_only_when_its_picture_moves() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    sim.feed(1).pts_moving = false;
    sim.run_until(secs(10.0), |fo| fo.input(1).unwrap().degraded.is_some())
        .expect("frozen");
    sim.run(secs(10.0));
    assert_eq!(
        status(&sim, 1),
        InputStatus::Degraded,
        "keyframes alone do not do"
    );
    sim.feed(1).pts_moving = true;
    let took = sim.run_until(secs(5.0), |fo| fo.input(1).unwrap().degraded.is_none());
    assert!(took.is_some_and(|t| t <= secs(2.0)), "{took:?}");
}
