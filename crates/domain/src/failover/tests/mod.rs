//! The failover machine in simulated time: every transition, reason and timer.

mod ops;
mod signals;
mod sim;
mod switching;
mod update;

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::ManagerSection;
use crate::event::EventType;
use crate::protocol::InputKind;
use crate::stream::Input;
use Command::{Connect, Deselect, Disconnect, Probe, Reconnect, Select};
use sim::{Sim, base, commands, events, exhaustions, inputs, secs, spec, switched};

const SRT: &str = "srt://main.example.org:7001";
const UDP: &str = "udp://239.0.0.1:5000";
const UDP2: &str = "udp://239.0.0.2:5000";
const UDP3: &str = "udp://239.0.0.3:5000";
const RTSP: &str = "rtsp://cam.example.org/stream";
const PUSH: &str = "publish://";

fn select(priority: u32, reason: SwitchReason) -> Command {
    Select { priority, reason }
}

fn error(message: &str) -> InputEvent {
    InputEvent::Error {
        message: message.into(),
    }
}

fn status(sim: &Sim, priority: u32) -> InputStatus {
    sim.fo.input(priority).expect("known input").status
}

// --- configuration -------------------------------------------------------------------------

#[test]
fn config_defaults_are_specs() {
    let c = FailoverConfig::default();
    assert_eq!(c.packet_timeout, secs(30.0));
    assert_eq!(c.open_failures, 3);
    assert_eq!((c.frozen_gops, c.frozen_min), (3, secs(10.0)));
    assert_eq!(c.pts_static, secs(5.0));
    assert_eq!(c.track_lost, secs(5.0));
    assert_eq!((c.cc_errors_max, c.cc_errors_window), (50, secs(10.0)));
    assert_eq!((c.probe_cooldown, c.probe_timeout), (secs(8.0), secs(3.0)));
    assert_eq!(c.failback_hold, secs(12.0));
    assert_eq!((c.switches_kept, c.errors_kept), (20, 5));
    assert_eq!(FailoverConfig::from(&ManagerSection::default()), c);
}

#[test]
fn config_takes_the_manager_section() {
    let manager = ManagerSection {
        input_packet_timeout_sec: 45,
        frozen_gops: 4,
        frozen_min_sec: 12,
        pts_static_sec: 0,
        track_lost_sec: 7,
        cc_errors_max: 80,
        cc_errors_window_sec: 20,
    };
    let c = FailoverConfig::from_manager(&manager);
    assert_eq!(c.packet_timeout, secs(45.0));
    assert_eq!((c.frozen_gops, c.frozen_min), (4, secs(12.0)));
    assert_eq!(c.pts_static, Duration::ZERO);
    assert_eq!(c.track_lost, secs(7.0));
    assert_eq!((c.cc_errors_max, c.cc_errors_window), (80, secs(20.0)));
    assert_eq!(
        c.failback_hold,
        secs(12.0),
        "not configurable: SPEC default"
    );

    let zero = ManagerSection {
        input_packet_timeout_sec: 0,
        ..ManagerSection::default()
    };
    assert_eq!(FailoverConfig::from(&zero).packet_timeout, secs(30.0));
}

#[test]
fn manager_section_decodes_the_media_health_fields() {
    let m: ManagerSection =
        serde_json::from_value(json!({"frozen_gops": 4, "cc_errors_max": 0})).unwrap();
    assert_eq!((m.frozen_gops, m.cc_errors_max), (4, 0));
    assert_eq!(m.input_packet_timeout_sec, 30);
    assert_eq!(m.track_lost_sec, 5);
    let err = serde_json::from_value::<ManagerSection>(json!({"frozen_gop": 4})).unwrap_err();
    assert!(err.to_string().contains("frozen_gop"), "{err}");
}

#[test]
fn input_specs_take_hotness_from_the_kind() {
    let udp = spec(&Input::new(UDP, 0));
    assert!(udp.hot && !udp.push);
    let push = spec(&Input::new(PUSH, 0));
    assert!(push.hot && push.push);
    let srt = spec(&Input::new(SRT, 0));
    assert!(!srt.hot && !srt.push);

    let mut hot_srt = Input::new(SRT, 0);
    hot_srt.hot_standby = Some(true);
    assert!(InputSpec::new(&hot_srt, InputKind::Srt).hot);
    let mut cold_udp = Input::new(UDP, 0);
    cold_udp.hot_standby = Some(false);
    assert!(!InputSpec::new(&cold_udp, InputKind::Udp).hot);

    let config = FailoverConfig::default();
    assert_eq!(srt.packet_timeout(&config), secs(30.0));
    let mut short = Input::new(SRT, 0);
    short.packet_timeout_sec = 4;
    assert_eq!(spec(&short).packet_timeout(&config), secs(4.0));
}

#[test]
fn duplicate_priorities_and_urls_are_refused() {
    let a = Input::new("srt://a.example.org:1?passphrase=hunter22", 0);
    let b = Input::new(" srt://a.example.org:1?passphrase=hunter22 ", 1);
    let err =
        Failover::new(FailoverConfig::default(), vec![spec(&a), spec(&b)], base()).unwrap_err();
    assert!(matches!(err, FailoverError::DuplicateUrl { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("****") && !text.contains("hunter22"),
        "{text}"
    );

    let c = Input::new(UDP, 0);
    let err =
        Failover::new(FailoverConfig::default(), vec![spec(&a), spec(&c)], base()).unwrap_err();
    assert_eq!(err, FailoverError::DuplicatePriority { priority: 0 });
}

// --- start and selection -------------------------------------------------------------------

#[test]
fn start_selects_the_best_input_and_connects_hot_standbys() {
    let mut sim = Sim::new(&[SRT, UDP, RTSP]);
    let out = sim.take();
    assert_eq!(
        commands(&out),
        [Connect(0), select(0, SwitchReason::Initial), Connect(1)]
    );
    let switches = switched(&out);
    assert_eq!(switches.len(), 1);
    let first = &switches[0];
    assert_eq!(
        (first.from, first.to, first.reason),
        (None, 0, SwitchReason::Initial)
    );
    assert_eq!(first.at, sim.t0);
    assert_eq!(sim.fo.switches(), &switches[..]);
    let states: Vec<_> = sim.fo.inputs().map(|r| (r.status, r.connected)).collect();
    assert_eq!(
        states,
        [
            (InputStatus::Active, true),
            (InputStatus::Idle, true),
            (InputStatus::Idle, false)
        ]
    );
    assert!(!sim.fo.exhausted());
    assert_eq!(sim.fo.active(), Some(0));
}

#[test]
fn a_push_input_without_publisher_is_idle_and_skipped() {
    let mut sim = Sim::new(&[PUSH, UDP]);
    assert_eq!(sim.fo.active(), Some(1));
    sim.run(secs(90.0));
    let report = sim.fo.input(0).unwrap();
    assert_eq!(report.status, InputStatus::Idle);
    assert!(report.waiting_for_publisher && !report.connected);
    assert!(report.degraded.is_none());
    assert_eq!(sim.fo.active(), Some(1));
    assert_eq!(sim.fo.switches().len(), 1);
    let about_push = commands(&sim.all).into_iter().any(|c| {
        matches!(
            c,
            Connect(0) | Disconnect(0) | Probe(0) | Reconnect(0) | Select { priority: 0, .. }
        )
    });
    assert!(!about_push, "{:?}", sim.all);
}

#[test]
fn a_lone_push_input_is_exhausted_until_its_publisher_connects() {
    let mut sim = Sim::new(&[PUSH]);
    let out = sim.take();
    assert_eq!(events(&out), [Event::Exhausted]);
    assert!(
        commands(&out).is_empty(),
        "nothing was selected to deselect"
    );
    assert!(sim.fo.exhausted());
    sim.run(secs(20.0));
    assert_eq!(exhaustions(&sim.take()), 0, "once per episode");

    sim.publish(0, true);
    let out = sim.take();
    assert_eq!(commands(&out), [select(0, SwitchReason::Initial)]);
    let switch = &switched(&out)[0];
    assert_eq!((switch.from, switch.to), (None, 0));
    assert_eq!(events(&out).last(), Some(&Event::Recovered));
    assert!(!sim.fo.exhausted());
}

// --- read-out and history ------------------------------------------------------------------

#[test]
fn the_history_keeps_the_newest_twenty_switches() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    for n in 0..30u32 {
        sim.tick();
        sim.switch(Some(1 - n % 2)).unwrap();
    }
    let switches = sim.fo.switches();
    assert_eq!(switches.len(), 20);
    assert_eq!(switches[0].at, sim.now);
    assert_eq!(switches[0].to, 0, "the 30th pin was input 0");
    assert_eq!(switches[19].at, sim.t0 + TICK * 11);
}

#[test]
fn reports_read_out_every_input() {
    let mut sim = Sim::new(&[SRT, UDP, PUSH]);
    sim.run(secs(2.0));
    sim.event(0, error("EOF"));
    let reports: Vec<_> = sim.fo.inputs().collect();
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0].status, InputStatus::Degraded);
    assert_eq!(reports[0].url, SRT);
    assert_eq!(reports[0].last_packet_at, Some(sim.now));
    assert_eq!(reports[1].status, InputStatus::Active);
    assert_eq!(reports[2].status, InputStatus::Idle);
    assert!(reports[2].waiting_for_publisher);
    assert_eq!(reports[2].last_packet_at, None);
    assert_eq!(sim.fo.input(3), None);
}

#[test]
fn a_new_config_applies_from_the_next_call() {
    let mut sim = Sim::new(&[UDP, UDP2]);
    sim.run(secs(3.0));
    for n in 0..5 {
        sim.event(1, error(&format!("e{n}")));
    }
    sim.fo.set_config(FailoverConfig {
        packet_timeout: secs(5.0),
        errors_kept: 2,
        ..FailoverConfig::default()
    });
    assert_eq!(sim.fo.input(1).unwrap().errors.len(), 2);
    sim.feed(0).up = false;
    assert_eq!(sim.run_until_switch(secs(60.0)), Some(secs(5.0)));
}

#[test]
fn stray_reports_about_idle_inputs_change_nothing() {
    let mut sim = Sim::new(&[UDP, SRT, PUSH]);
    sim.take();
    // A cold idle input has no worker: late open failures of an old one do not count.
    for n in 0..5 {
        sim.event(
            1,
            InputEvent::OpenFailed {
                message: format!("late {n}"),
            },
        );
    }
    sim.event(1, InputEvent::ProbeSucceeded);
    sim.event(
        2,
        InputEvent::PublisherDisconnected {
            message: "EOF".into(),
        },
    );
    assert!(events(&sim.take()).is_empty());
    assert_eq!(status(&sim, 1), InputStatus::Idle);
    assert_eq!(status(&sim, 2), InputStatus::Idle);
    assert!(sim.fo.input(2).unwrap().errors.is_empty());
}

#[test]
fn reports_about_unknown_inputs_are_errors_but_the_rest_applies() {
    let t = base();
    let specs = inputs(&[UDP]).iter().map(spec).collect();
    let mut fo = Failover::new(FailoverConfig::default(), specs, t).unwrap();
    let now = t + secs(1.0);
    let observations = [
        Observation {
            priority: 7,
            ..Observation::default()
        },
        Observation {
            priority: 0,
            last_frame_at: Some(now),
            ..Observation::default()
        },
    ];
    assert_eq!(
        fo.handle_input(now, Report::Observed(&observations)),
        Err(FailoverError::UnknownInput { priority: 7 })
    );
    assert_eq!(fo.input(0).unwrap().last_packet_at, Some(now));
    let event = InputEvent::Opened;
    assert_eq!(
        fo.handle_input(now, Report::Event { priority: 7, event }),
        Err(FailoverError::UnknownInput { priority: 7 })
    );
}

// --- outputs for the bus -------------------------------------------------------------------

#[test]
fn events_map_to_spec_bus_events() {
    let t = base();
    let initial = Event::Switched(Switch {
        at: t,
        from: None,
        to: 0,
        reason: SwitchReason::Initial,
        detail: "input 0 selected first".into(),
    });
    assert_eq!(
        initial.bus_events(),
        [(
            EventType::InputFailover,
            json!({"from": -1, "to": 0, "reason": "initial", "detail": "input 0 selected first"})
        )]
    );
    let degraded = Event::Degraded {
        priority: 1,
        signal: Signal::TrackLost,
        detail: "audio track silent for 5 s while video flows".into(),
    };
    assert_eq!(
        degraded.bus_events(),
        [(
            EventType::InputDegraded,
            json!({"input_priority": 1, "reason": "track_lost",
                   "detail": "audio track silent for 5 s while video flows"})
        )]
    );
    assert_eq!(
        Event::Restored { priority: 2 }.bus_events(),
        [(EventType::InputRestored, json!({"input_priority": 2}))]
    );
    assert_eq!(
        Event::Exhausted.bus_events(),
        [
            (EventType::StreamExhausted, json!({})),
            (
                EventType::InputDegraded,
                json!({"reason": "all_inputs_exhausted"})
            ),
        ]
    );
    assert!(Event::Recovered.bus_events().is_empty());
}

#[test]
fn switch_reasons_are_specs_closed_set() {
    use SwitchReason::*;
    let all = [
        Initial,
        Error,
        Timeout,
        Manual,
        Failback,
        Recovery,
        InputAdded,
        InputRemoved,
        Frozen,
        TrackLost,
        CcErrors,
    ];
    let names: Vec<_> = all
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    assert_eq!(
        names,
        json!([
            "initial",
            "error",
            "timeout",
            "manual",
            "failback",
            "recovery",
            "input_added",
            "input_removed",
            "frozen",
            "track_lost",
            "cc_errors"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    for reason in all {
        assert_eq!(json!(reason.name()), serde_json::to_value(reason).unwrap());
        assert_eq!(reason.to_string(), reason.name());
    }
    for signal in [
        Signal::Error,
        Signal::Timeout,
        Signal::Frozen,
        Signal::TrackLost,
        Signal::CcErrors,
    ] {
        let reason = SwitchReason::from(signal);
        assert_eq!(signal.name(), reason.name());
        assert_eq!(serde_json::to_value(signal).unwrap(), json!(reason.name()));
    }
    let statuses = [
        InputStatus::Idle,
        InputStatus::Active,
        InputStatus::Degraded,
        InputStatus::Stopped,
    ]
    .map(|s| serde_json::to_value(s).unwrap());
    assert_eq!(
        statuses.to_vec(),
        json!(["idle", "active", "degraded", "stopped"])
            .as_array()
            .unwrap()
            .clone()
    );
}
