//! Live input changes (`update_inputs`) and inputs that stop for good.

use super::*;

// --- live input changes --------------------------------------------------------------------

#[test]
fn an_input_whose_url_moved_keeps_its_state() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    sim.feed(0).up = false;
    sim.event(0, error("EOF"));
    assert_eq!(sim.fo.active(), Some(1));
    sim.take();
    sim.update(inputs(&[UDP, SRT])).unwrap();
    let out = sim.take();
    assert!(
        switched(&out).is_empty() && commands(&out).is_empty(),
        "{out:?}"
    );
    assert_eq!(sim.fo.active(), Some(0), "the active input follows its URL");
    let moved = sim.fo.input(1).unwrap();
    assert_eq!(moved.url, SRT);
    assert_eq!(moved.status, InputStatus::Degraded);
    assert_eq!(moved.errors[0].message, "EOF");
    assert_eq!(sim.fo.switches().len(), 2);
    sim.run(secs(10.0));
    assert!(
        commands(&sim.take()).contains(&Probe(1)),
        "probes follow too"
    );
}

#[test]
fn removing_the_active_input_switches_with_input_removed() {
    let mut sim = Sim::new(&[UDP, SRT, UDP2]);
    sim.feed(0).up = false;
    sim.run_until_switch(secs(60.0)).expect("timed out");
    assert_eq!(sim.fo.active(), Some(1));
    sim.take();
    // SRT is gone; UDP2 moves up to priority 1, which a diff would call "updated".
    sim.update(inputs(&[UDP, UDP2])).unwrap();
    let out = sim.take();
    assert_eq!(commands(&out), [select(1, SwitchReason::InputRemoved)]);
    let switch = &switched(&out)[0];
    assert_eq!((switch.from, switch.to), (Some(1), 1));
    assert_eq!(switch.detail, "input 1 removed");
    assert_eq!(sim.url(1), UDP2);
}

#[test]
fn removing_every_input_exhausts() {
    let mut sim = Sim::new(&[UDP]);
    sim.take();
    sim.update(Vec::new()).unwrap();
    let out = sim.take();
    assert_eq!(commands(&out), [Deselect]);
    assert_eq!(events(&out), [Event::Exhausted]);
    assert!(sim.fo.exhausted());
}

#[test]
fn an_added_input_that_outranks_the_active_one_takes_over() {
    let mut sim = Sim::new(&[UDP]);
    sim.run(secs(3.0));
    sim.take();
    sim.update(inputs(&[SRT, UDP])).unwrap();
    let out = sim.take();
    assert_eq!(
        commands(&out),
        [Connect(0), select(0, SwitchReason::InputAdded)]
    );
    let switch = &switched(&out)[0];
    assert_eq!((switch.from, switch.to), (Some(1), 0));
    assert_eq!(switch.detail, "input 0 added");
}

#[test]
fn an_added_lower_input_starts_idle() {
    let mut sim = Sim::new(&[SRT]);
    sim.take();
    sim.update(inputs(&[SRT, UDP, RTSP])).unwrap();
    let out = sim.take();
    assert_eq!(commands(&out), [Connect(1)], "the hot one connects");
    assert!(events(&out).is_empty());
    assert_eq!(status(&sim, 1), InputStatus::Idle);
    assert_eq!(status(&sim, 2), InputStatus::Idle);
}

#[test]
fn an_added_input_waits_while_an_override_is_pinned() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.switch(Some(1)).unwrap();
    sim.take();
    sim.update(inputs(&[SRT, UDP, UDP2])).unwrap();
    assert!(switched(&sim.take()).is_empty());
    assert_eq!(sim.fo.active(), Some(2));
    assert_eq!(
        sim.fo.override_priority(),
        Some(2),
        "the override follows its URL"
    );
}

#[test]
fn an_added_input_ends_exhaustion() {
    let mut sim = Sim::new(&[UDP]);
    sim.feed(0).up = false;
    sim.run_until(secs(60.0), Failover::exhausted)
        .expect("exhausted");
    sim.take();
    sim.update(inputs(&[UDP, UDP2])).unwrap();
    let out = sim.take();
    assert_eq!(
        commands(&out),
        [Connect(1), select(1, SwitchReason::InputAdded)]
    );
    assert_eq!(switched(&out)[0].from, Some(0));
    assert_eq!(events(&out).last(), Some(&Event::Recovered));
    assert!(!sim.fo.exhausted());
}

#[test]
fn an_updated_input_reconnects_without_a_switch() {
    let mut sim = Sim::new(&[SRT, UDP, RTSP]);
    sim.run(secs(3.0));
    sim.take();
    let mut ins = inputs(&[SRT, UDP, RTSP]);
    ins[0].params.insert("latency".into(), "250".into());
    sim.update(ins.clone()).unwrap();
    assert_eq!(sim.take(), [Output::Command(Reconnect(0))]);
    assert_eq!(sim.fo.switches().len(), 1);

    ins[2].params.insert("transport".into(), "udp".into());
    sim.update(ins.clone()).unwrap();
    assert!(
        sim.take().is_empty(),
        "an idle cold input has nothing to reconnect"
    );

    ins[1].hot_standby = Some(false);
    sim.update(ins).unwrap();
    assert_eq!(sim.take(), [Output::Command(Disconnect(1))]);
}

#[test]
fn an_invalid_update_changes_nothing() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.take();
    let mut ins = inputs(&[UDP, UDP]);
    ins[1].url = format!(" {UDP}");
    let err = sim.update(ins).unwrap_err();
    assert!(matches!(err, FailoverError::DuplicateUrl { .. }));
    assert!(sim.take().is_empty());
    assert_eq!(sim.fo.inputs().count(), 2);
    assert_eq!(sim.url(0), SRT);
}

// --- stopped inputs ------------------------------------------------------------------------

#[test]
fn an_input_that_ended_stops_and_is_not_probed() {
    let mut sim = Sim::new(&[SRT, UDP]);
    sim.run(secs(3.0));
    sim.take();
    sim.event(
        0,
        InputEvent::Finished {
            message: "end of file".into(),
        },
    );
    let out = sim.take();
    assert_eq!(
        commands(&out),
        [select(1, SwitchReason::Error), Disconnect(0)]
    );
    assert_eq!(switched(&out)[0].detail, "end of file");
    let report = sim.fo.input(0).unwrap();
    assert_eq!(report.status, InputStatus::Stopped);
    assert_eq!(report.stopped, Some("end of file"));
    sim.run(secs(60.0));
    assert!(!commands(&sim.take()).contains(&Probe(0)));

    let mut ins = inputs(&[SRT, UDP]);
    ins[0].params.insert("latency".into(), "250".into());
    sim.update(ins).unwrap();
    assert_eq!(status(&sim, 0), InputStatus::Idle, "new settings revive it");
    assert_eq!(
        commands(&sim.take()),
        [Connect(0)],
        "warming for a failback"
    );
    assert_eq!(sim.run_until_switch(secs(30.0)), Some(secs(12.0)));
}
