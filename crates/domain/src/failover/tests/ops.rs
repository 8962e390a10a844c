//! Arbitrary operation sequences: whatever the sources, workers, operators and config updates
//! do, the machine's invariants hold (checked by [`Sim::check`] after every call).

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::sim::{Sim, inputs};
use super::{PUSH, RTSP, SRT, UDP, UDP2};
use crate::failover::{Event, InputEvent, Output};

/// Every URL a source may have; feed operations pick one of them.
const URLS: [&str; 5] = [PUSH, UDP, SRT, RTSP, UDP2];

#[derive(Debug, Clone)]
enum Op {
    /// Ticks.
    Run(u8),
    /// A source goes down or comes back.
    Up(usize, bool),
    /// A source stops or resumes keyframes.
    Keyframes(usize, bool),
    /// A source stops or resumes audio.
    Audio(usize, bool),
    /// Continuity errors per tick of a source.
    Cc(usize, u8),
    /// A worker event on the input at a priority (modulo the input count).
    Worker(u32, u8),
    /// The push input's publisher connects or leaves.
    Publish(bool),
    /// A manual switch (modulo the input count) or a clear.
    Switch(Option<u32>),
    /// A live input change to one of a few lists.
    Update(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..80).prop_map(Op::Run),
        3 => (0..URLS.len(), any::<bool>()).prop_map(|(i, on)| Op::Up(i, on)),
        1 => (0..URLS.len(), any::<bool>()).prop_map(|(i, on)| Op::Keyframes(i, on)),
        1 => (0..URLS.len(), any::<bool>()).prop_map(|(i, on)| Op::Audio(i, on)),
        1 => (0..URLS.len(), 0u8..12).prop_map(|(i, n)| Op::Cc(i, n)),
        3 => (0u32..5, 0u8..6).prop_map(|(p, kind)| Op::Worker(p, kind)),
        2 => any::<bool>().prop_map(Op::Publish),
        2 => proptest::option::of(0u32..5).prop_map(Op::Switch),
        1 => (0usize..6).prop_map(Op::Update),
    ]
}

fn list(variant: usize) -> Vec<crate::stream::Input> {
    let mut ins = match variant {
        0 => inputs(&[PUSH, UDP, SRT, RTSP]),
        1 => inputs(&[UDP, PUSH, SRT, RTSP]),
        2 => inputs(&[SRT, UDP]),
        3 => inputs(&[RTSP, UDP2, PUSH, UDP, SRT]),
        4 => Vec::new(),
        _ => inputs(&[PUSH, UDP, SRT, RTSP]),
    };
    if variant == 5 {
        ins[2].params.insert("latency".into(), "250".into());
        ins[3].hot_standby = Some(true);
    }
    ins
}

fn apply(sim: &mut Sim, op: Op) {
    let count = sim.fo.inputs().count() as u32;
    match op {
        Op::Run(ticks) => {
            for _ in 0..ticks {
                sim.tick();
            }
        }
        Op::Up(i, on) => sim.feed_url(URLS[i]).up = on,
        Op::Keyframes(i, on) => sim.feed_url(URLS[i]).keyframes = on,
        Op::Audio(i, on) => sim.feed_url(URLS[i]).audio = on,
        Op::Cc(i, n) => sim.feed_url(URLS[i]).cc_per_tick = u64::from(n),
        Op::Worker(p, kind) if count > 0 => {
            let message = "boom".to_owned();
            let event = match kind {
                0 => InputEvent::Error { message },
                1 => InputEvent::OpenFailed { message },
                2 => InputEvent::Opened,
                3 => InputEvent::Finished { message },
                4 => InputEvent::ProbeFailed { message },
                _ => InputEvent::ProbeSucceeded,
            };
            sim.event(p % count, event);
        }
        Op::Worker(..) => {}
        Op::Publish(on) => {
            let push = sim.fo.inputs().find(|r| r.url == PUSH).map(|r| r.priority);
            match push {
                Some(priority) if sim.feed(priority).publisher != on => sim.publish(priority, on),
                Some(_) => {}
                None => sim.feed_url(PUSH).publisher = on,
            }
        }
        Op::Switch(target) => {
            // Refusals are fine; the invariants are what matters.
            let _ = sim.switch(target.filter(|_| count > 0).map(|p| p % count));
        }
        Op::Update(variant) => sim.update(list(variant)).expect("valid lists"),
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x0fa1_10fe),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn invariants_hold_under_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
        let mut sim = Sim::with(Default::default(), list(0));
        for op in ops {
            apply(&mut sim, op);
        }
        // Exhaustion is reported once per episode: Exhausted and Recovered alternate.
        let episodes: Vec<bool> = sim
            .all
            .iter()
            .filter_map(|o| match o {
                Output::Event(Event::Exhausted) => Some(true),
                Output::Event(Event::Recovered) => Some(false),
                _ => None,
            })
            .collect();
        for (i, exhausted) in episodes.iter().enumerate() {
            prop_assert_eq!(*exhausted, i % 2 == 0, "{:?}", episodes);
        }
        prop_assert_eq!(sim.fo.exhausted(), episodes.len() % 2 == 1);
    }
}
