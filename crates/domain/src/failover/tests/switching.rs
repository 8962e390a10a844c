//! Switching, exhaustion and recovery, probes, failback holds and manual overrides.

use super::*;

// --- switching and exhaustion --------------------------------------------------------------

#[test]
fn failover_skips_degraded_inputs() {
    let mut sim = Sim::new(&[SRT, UDP, UDP2]);
    sim.feed(1).up = false;
    sim.run_until(secs(60.0), |fo| fo.input(1).unwrap().degraded.is_some())
        .expect("degraded");
    sim.event(0, error("EOF"));
    assert_eq!(sim.fo.active(), Some(2));
}

#[test]
fn simultaneous_failures_make_one_decision() {
    let mut sim = Sim::new(&[UDP, UDP2, UDP3]);
    sim.run(secs(3.0));
    sim.take();
    sim.feed(0).up = false;
    sim.feed(1).up = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(30.0)));
    let out = sim.take();
    let switches = switched(&out);
    assert_eq!(switches.len(), 1, "{switches:?}");
    assert_eq!((switches[0].from, switches[0].to), (Some(0), 2));
    let degraded = events(&out)
        .iter()
        .filter(|e| matches!(e, Event::Degraded { .. }))
        .count();
    assert_eq!(degraded, 2);
}

#[test]
fn exhaustion_is_reported_once_per_episode_and_ends_with_recovery() {
    let mut sim = Sim::new(&[UDP]);
    sim.run(secs(3.0));
    sim.take();
    sim.feed(0).up = false;
    assert_eq!(
        sim.run_until(secs(60.0), Failover::exhausted),
        Some(secs(30.0))
    );
    let out = sim.take();
    assert_eq!(commands(&out), [Deselect]);
    assert_eq!(
        events(&out),
        [
            Event::Degraded {
                priority: 0,
                signal: Signal::Timeout,
                detail: "no packet for 30 s".into()
            },
            Event::Exhausted
        ]
    );
    assert_eq!(sim.fo.active(), None);

    sim.event(0, error("socket closed"));
    sim.run(secs(20.0));
    let out = sim.take();
    assert_eq!(exhaustions(&out), 0);
    assert!(events(&out).is_empty(), "{out:?}");

    sim.feed(0).up = true;
    sim.tick();
    let out = sim.take();
    assert_eq!(commands(&out), [select(0, SwitchReason::Recovery)]);
    let switch = switched(&out)[0].clone();
    assert_eq!(
        (switch.from, switch.to, switch.reason),
        (Some(0), 0, SwitchReason::Recovery),
        "recorded also when the active input itself comes back"
    );
    assert_eq!(
        events(&out),
        [
            Event::Restored { priority: 0 },
            Event::Switched(switch),
            Event::Recovered
        ]
    );

    sim.feed(0).up = false;
    sim.run(secs(31.0));
    assert_eq!(
        exhaustions(&sim.take()),
        1,
        "a new episode is reported again"
    );
}

#[test]
fn an_exhausted_cold_input_stays_connected_and_recovers_on_its_own() {
    let mut sim = Sim::new(&[SRT]);
    sim.run(secs(3.0));
    sim.take();
    sim.event(0, error("connection reset"));
    let out = sim.take();
    assert_eq!(
        commands(&out),
        [Deselect],
        "no Disconnect: its reconnect loop is its probe"
    );
    assert!(sim.fo.input(0).unwrap().connected);
    sim.feed(0).up = false;
    sim.run(secs(20.0));
    assert!(sim.fo.exhausted());
    sim.feed(0).up = true;
    let took = sim.run_until(secs(10.0), |fo| !fo.exhausted());
    assert!(took.is_some_and(|t| t <= secs(2.0)), "{took:?}");
    let out = sim.take();
    assert!(
        !commands(&out).iter().any(|c| matches!(c, Probe(_))),
        "{out:?}"
    );
    assert_eq!(sim.fo.switches()[0].reason, SwitchReason::Recovery);
}

// --- probes and failback -------------------------------------------------------------------

#[test]
fn a_degraded_cold_input_is_probed_after_the_cooldown_then_every_cooldown() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    sim.feed(0).up = false;
    sim.event(0, error("EOF"));
    let degraded = sim.now;
    assert_eq!(sim.fo.poll_timeout(), Some(degraded + secs(8.0)));
    sim.take();
    let mut probes = Vec::new();
    for _ in 0..120 {
        sim.tick();
        if commands(&sim.take()).contains(&Probe(0)) {
            probes.push(sim.now - degraded);
        }
    }
    assert_eq!(probes, [secs(8.0), secs(16.0), secs(24.0)]);
    let report = sim.fo.input(0).unwrap();
    assert_eq!(report.status, InputStatus::Degraded);
    assert_eq!(
        report.errors[0].message,
        "probe failed: no packet within 3 s"
    );
    assert!(!report.connected);
}

#[test]
fn a_probed_input_warms_up_and_fails_back_after_the_hold() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    sim.event(0, error("EOF"));
    sim.take();
    sim.feed(0).up = true;
    let took = sim.run_until(secs(20.0), |fo| fo.input(0).unwrap().degraded.is_none());
    assert_eq!(took, Some(secs(8.0)));
    let restored = sim.now;
    assert_eq!(
        sim.take(),
        [
            Output::Command(Probe(0)),
            Output::Event(Event::Restored { priority: 0 }),
            Output::Command(Connect(0)),
        ],
        "probed, restored, kept connected to warm up"
    );
    assert_eq!(sim.fo.active(), Some(1));
    assert_eq!(sim.fo.poll_timeout(), Some(restored + secs(12.0)));

    assert_eq!(sim.run_until_switch(secs(30.0)), Some(secs(12.0)));
    let out = sim.take();
    assert_eq!(commands(&out), [select(0, SwitchReason::Failback)]);
    let switch = &sim.fo.switches()[0];
    assert_eq!((switch.from, switch.to), (Some(1), 0));
    assert_eq!(switch.detail, "input 0 healthy for 12 s");
}

#[test]
fn a_failure_during_the_hold_restarts_it() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(3.0));
    sim.feed(0).up = false;
    sim.run_until_switch(secs(60.0)).expect("timed out");
    sim.feed(0).up = true;
    sim.run_until(secs(5.0), |fo| fo.input(0).unwrap().degraded.is_none())
        .expect("restored");
    sim.run(secs(6.0));
    sim.event(0, error("reset by peer"));
    assert_eq!(status(&sim, 0), InputStatus::Degraded);
    sim.run_until(secs(5.0), |fo| fo.input(0).unwrap().degraded.is_none())
        .expect("restored again");
    let restored = sim.now;
    sim.run_until_switch(secs(30.0)).expect("failback");
    assert_eq!(sim.now - restored, secs(12.0));
    assert_eq!(sim.fo.switches()[0].reason, SwitchReason::Failback);
}

#[test]
fn a_primary_that_never_degraded_takes_over_at_once() {
    let mut sim = Sim::new(&[PUSH, UDP]);
    sim.run(secs(10.0));
    sim.take();
    sim.publish(0, true);
    let out = sim.take();
    assert_eq!(commands(&out), [select(0, SwitchReason::Failback)]);
    let switch = &switched(&out)[0];
    assert_eq!((switch.from, switch.to), (Some(1), 0));
    assert_eq!(
        switch.detail,
        "input 0 outranks input 1 and has not degraded since start"
    );
}

#[test]
fn a_publisher_leaving_fails_over_and_returning_fails_back_after_the_hold() {
    let mut sim = Sim::new(&[PUSH, UDP]);
    sim.publish(0, true);
    sim.run(secs(5.0));
    sim.take();
    sim.publish(0, false);
    let out = sim.take();
    let detail = "publisher disconnected: EOF".to_owned();
    assert_eq!(
        out,
        [
            Output::Event(Event::Degraded {
                priority: 0,
                signal: Signal::Error,
                detail: detail.clone()
            }),
            Output::Command(select(1, SwitchReason::Error)),
            Output::Event(Event::Switched(Switch {
                at: sim.now,
                from: Some(0),
                to: 1,
                reason: SwitchReason::Error,
                detail: detail.clone()
            })),
        ]
    );
    let report = sim.fo.input(0).unwrap();
    assert_eq!(report.status, InputStatus::Degraded);
    assert!(report.waiting_for_publisher);
    assert_eq!(report.errors[0].message, detail);

    sim.run(secs(3.0));
    sim.take();
    sim.publish(0, true);
    assert_eq!(events(&sim.take()), [Event::Restored { priority: 0 }]);
    assert_eq!(sim.fo.active(), Some(1), "it degraded before: it waits");
    assert_eq!(sim.run_until_switch(secs(30.0)), Some(secs(12.0)));
    assert_eq!(sim.fo.switches()[0].reason, SwitchReason::Failback);
}

#[test]
fn a_recovered_cold_input_below_the_active_one_is_not_kept_connected() {
    let mut sim = Sim::new(&[UDP, SRT, UDP2]);
    sim.run(secs(3.0));
    sim.feed(0).up = false;
    sim.run_until_switch(secs(60.0)).expect("timed out");
    assert_eq!(sim.fo.active(), Some(1));
    sim.feed(1).up = false;
    sim.event(1, error("EOF"));
    assert_eq!(sim.fo.active(), Some(2));
    sim.feed(0).up = true;
    sim.run_until(secs(30.0), |fo| fo.active() == Some(0))
        .expect("input 0 fails back");
    assert!(!sim.fo.input(1).unwrap().connected);
    sim.take();
    sim.feed(1).up = true;
    sim.run_until(secs(20.0), |fo| fo.input(1).unwrap().degraded.is_none())
        .expect("probe succeeds");
    let out = sim.take();
    assert!(events(&out).contains(&Event::Restored { priority: 1 }));
    assert!(!commands(&out).contains(&Connect(1)), "{out:?}");
    assert_eq!(status(&sim, 1), InputStatus::Idle);
    assert!(!sim.fo.input(1).unwrap().connected);
}

#[test]
fn timers_run_on_handle_timeout_alone() {
    let specs = inputs(&[SRT, UDP]).iter().map(spec).collect();
    let t = base();
    let mut fo = Failover::new(FailoverConfig::default(), specs, t).unwrap();
    while fo.poll_output().is_some() {}
    assert_eq!(fo.poll_timeout(), None);
    let event = error("EOF");
    fo.handle_input(t, Report::Event { priority: 0, event })
        .unwrap();
    while fo.poll_output().is_some() {}
    assert_eq!(fo.poll_timeout(), Some(t + secs(8.0)));
    fo.handle_timeout(t + secs(7.9));
    assert_eq!(fo.poll_output(), None, "not due yet");
    fo.handle_timeout(t + secs(8.0));
    assert_eq!(fo.poll_output(), Some(Output::Command(Probe(0))));
    assert_eq!(fo.poll_output(), None);
    assert_eq!(fo.poll_timeout(), Some(t + secs(16.0)));

    let event = InputEvent::ProbeSucceeded;
    fo.handle_input(t + secs(9.0), Report::Event { priority: 0, event })
        .unwrap();
    while fo.poll_output().is_some() {}
    assert_eq!(fo.poll_timeout(), Some(t + secs(21.0)));
    fo.handle_timeout(t + secs(21.0));
    assert_eq!(
        fo.poll_output(),
        Some(Output::Command(select(0, SwitchReason::Failback)))
    );
    assert_eq!(fo.active(), Some(0));
}

// --- manual switching ----------------------------------------------------------------------

#[test]
fn a_manual_switch_pins_an_override_that_beats_priority() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(3.0));
    sim.take();
    sim.switch(Some(1)).unwrap();
    let out = sim.take();
    assert_eq!(commands(&out), [select(1, SwitchReason::Manual)]);
    assert_eq!(switched(&out)[0].detail, "override pinned to input 1");
    assert_eq!(sim.fo.override_priority(), Some(1));
    sim.run(secs(60.0));
    assert_eq!(sim.fo.active(), Some(1), "no failback while pinned");
    assert_eq!(sim.fo.poll_timeout(), None);
    assert_eq!(sim.fo.switches().len(), 2);

    sim.take();
    sim.switch(Some(1)).unwrap();
    assert!(
        sim.take().is_empty(),
        "pinning the active input records nothing"
    );
}

#[test]
fn manual_switches_are_refused_with_the_reason() {
    let mut sim = Sim::new(&[SRT, UDP, PUSH, RTSP]);
    sim.feed(1).up = false;
    sim.run_until(secs(60.0), |fo| fo.input(1).unwrap().degraded.is_some())
        .expect("degraded");
    sim.event(
        3,
        InputEvent::Finished {
            message: "end of playlist".into(),
        },
    );
    sim.take();

    assert_eq!(
        sim.switch(Some(9)),
        Err(FailoverError::UnknownInput { priority: 9 })
    );
    let degraded = sim.switch(Some(1)).unwrap_err();
    assert_eq!(
        degraded,
        FailoverError::Degraded {
            priority: 1,
            signal: Signal::Timeout,
            detail: "no first packet within 30 s".into()
        }
    );
    assert_eq!(
        degraded.to_string(),
        "input priority 1 is degraded (timeout: no first packet within 30 s)"
    );
    assert_eq!(
        sim.switch(Some(2)),
        Err(FailoverError::WaitingForPublisher { priority: 2 })
    );
    assert_eq!(
        sim.switch(Some(3)),
        Err(FailoverError::Stopped {
            priority: 3,
            message: "end of playlist".into()
        })
    );
    assert!(sim.take().is_empty());
    assert_eq!(sim.fo.active(), Some(0));
    assert_eq!(sim.fo.override_priority(), None);
}

#[test]
fn an_override_is_dropped_when_its_input_fails() {
    let mut sim = Sim::new(&[UDP, UDP2, UDP3]);
    sim.switch(Some(2)).unwrap();
    sim.event(2, error("EOF"));
    assert_eq!(sim.fo.active(), Some(0), "the best input by priority");
    assert_eq!(sim.fo.override_priority(), None);
    assert_eq!(sim.fo.switches()[0].reason, SwitchReason::Error);
}

#[test]
fn clearing_the_override_returns_to_the_best_input_at_once() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.switch(Some(1)).unwrap();
    sim.take();
    sim.switch(None).unwrap();
    let out = sim.take();
    assert_eq!(commands(&out), [select(0, SwitchReason::Manual)]);
    assert_eq!(switched(&out)[0].detail, "override cleared");
    assert_eq!(sim.fo.override_priority(), None);
}

#[test]
fn clearing_the_override_respects_the_hold_of_a_recovered_input() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.switch(Some(1)).unwrap();
    sim.feed(0).up = false;
    sim.run_until(secs(60.0), |fo| fo.input(0).unwrap().degraded.is_some())
        .expect("degraded");
    sim.feed(0).up = true;
    sim.run_until(secs(5.0), |fo| fo.input(0).unwrap().degraded.is_none())
        .expect("restored");
    let restored = sim.now;
    sim.run(secs(4.0));
    sim.take();
    sim.switch(None).unwrap();
    assert!(switched(&sim.take()).is_empty());
    assert_eq!(sim.fo.poll_timeout(), Some(restored + secs(12.0)));
    sim.run_until_switch(secs(30.0)).expect("failback");
    assert_eq!(sim.now, restored + secs(12.0));
    assert_eq!(sim.fo.switches()[0].reason, SwitchReason::Failback);
}
