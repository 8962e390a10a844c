//! Arbitrary operation sequences: nothing panics, and every subscriber sees frames in write
//! order, a keyframe after every reported loss, and loses only what it reports.

use proptest::prelude::*;
use tributary_hub::{
    BufferConfig, Delivery, Hub, SessionReason, SubscribeFrom, Subscriber, TryRecvError, Writer,
};

use crate::support::{audio, id, n, video};

#[derive(Debug, Clone)]
enum Op {
    Write { kind: u8 },
    Subscribe { gop: bool },
    Read { sub: usize, max: usize },
    Unsubscribe { sub: usize },
    StartSession,
    Delete,
    DropWriter,
    Create,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u8..4).prop_map(|kind| Op::Write { kind }),
        2 => any::<bool>().prop_map(|gop| Op::Subscribe { gop }),
        6 => (0usize..8, 1usize..40).prop_map(|(sub, max)| Op::Read { sub, max }),
        1 => (0usize..8).prop_map(|sub| Op::Unsubscribe { sub }),
        1 => Just(Op::StartSession),
        1 => Just(Op::Delete),
        1 => Just(Op::DropWriter),
        1 => Just(Op::Create),
    ]
}

/// What the test knows about one subscriber.
struct Model {
    sub: Subscriber,
    /// Frames its buffer had been given before it subscribed (`Now` subscribers only).
    start: Option<u64>,
    /// The buffer generation it reads.
    generation: u64,
    last: Option<i64>,
    last_session: u64,
    /// The next frame must be a keyframe (first of a `LastKeyframe` start, or after a loss).
    expect_key: bool,
    received: u64,
    reported: u64,
    closed: bool,
}

fn check(
    model: &mut Model,
    delivery: Result<Delivery, TryRecvError>,
) -> Result<bool, TestCaseError> {
    match delivery {
        Ok(Delivery::Frame(frame)) => {
            prop_assert!(!model.closed, "frame after end-of-stream");
            if let Some(last) = model.last {
                prop_assert!(n(&frame) > last, "order: {} after {last}", n(&frame));
            }
            prop_assert!(frame.session.0 >= model.last_session, "session went back");
            if model.expect_key {
                prop_assert!(frame.keyframe, "frame {} after a start or loss", n(&frame));
            }
            model.expect_key = false;
            model.last = Some(n(&frame));
            model.last_session = frame.session.0;
            model.received += 1;
            Ok(true)
        }
        Ok(Delivery::Lagged { dropped }) => {
            prop_assert!(dropped > 0);
            prop_assert!(!model.closed);
            model.reported += dropped;
            model.expect_key = true;
            Ok(true)
        }
        Err(TryRecvError::Empty) => {
            prop_assert!(!model.closed, "empty after end-of-stream");
            Ok(false)
        }
        Err(TryRecvError::Closed) => {
            model.closed = true;
            Ok(false)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn operation_sequences_keep_every_subscriber_consistent(
        capacity in 1usize..12,
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let hub = Hub::new();
        let id = id("cam");
        let config = BufferConfig { capacity, max_bytes: 64 * 1024 * 1024, normalise: false };
        let mut writer: Option<Writer> = Some(hub.create_with(id.clone(), config).unwrap());
        let mut generation = 0u64;
        // Frames written to the current generation's buffer.
        let mut written = 0u64;
        let mut next = 0i64;
        let mut subs: Vec<Model> = Vec::new();

        for op in ops {
            match op {
                Op::Write { kind } => {
                    let frame = match kind {
                        0 => video(next, true),
                        1 | 2 => video(next, false),
                        _ => audio(next),
                    };
                    next += 1;
                    if let Some(w) = writer.as_mut() {
                        if w.write(frame).is_ok() {
                            written += 1;
                        } else {
                            prop_assert!(!hub.contains(&id));
                        }
                    }
                }
                Op::Subscribe { gop } => {
                    let from = if gop { SubscribeFrom::LastKeyframe } else { SubscribeFrom::Now };
                    match hub.subscribe(&id, from, "prop") {
                        Ok(sub) => subs.push(Model {
                            sub,
                            start: (!gop).then_some(written),
                            generation,
                            last: None,
                            last_session: 0,
                            expect_key: gop,
                            received: 0,
                            reported: 0,
                            closed: false,
                        }),
                        Err(_) => prop_assert!(!hub.contains(&id)),
                    }
                }
                Op::Read { sub, max } => {
                    if let Some(model) = subs.get_mut(sub) {
                        for _ in 0..max {
                            let delivery = model.sub.try_recv();
                            if !check(model, delivery)? {
                                break;
                            }
                        }
                        prop_assert_eq!(model.sub.dropped(), model.reported + pending(model));
                    }
                }
                Op::Unsubscribe { sub } => {
                    if sub < subs.len() {
                        subs.remove(sub);
                    }
                }
                Op::StartSession => {
                    if let Some(w) = writer.as_mut() {
                        w.start_session(SessionReason::Reconnect);
                    }
                }
                Op::Delete => {
                    hub.delete(&id);
                }
                Op::DropWriter => {
                    writer = None;
                    prop_assert!(!hub.contains(&id));
                }
                Op::Create => {
                    if !hub.contains(&id) {
                        writer = Some(hub.create_with(id.clone(), config).unwrap());
                        generation += 1;
                        written = 0;
                    }
                }
            }
        }

        // End everything; every subscriber drains to end-of-stream and accounts for every
        // frame written after it subscribed "from now".
        hub.delete(&id);
        for model in &mut subs {
            for _ in 0..(capacity * 4 + 10) {
                let delivery = model.sub.try_recv();
                if !check(model, delivery)? {
                    break;
                }
            }
            prop_assert!(model.closed, "subscriber did not end");
            prop_assert_eq!(model.sub.dropped(), model.reported);
            if let (Some(start), true) = (model.start, model.generation == generation) {
                prop_assert_eq!(model.received + model.reported, written - start);
            }
        }
    }
}

/// Losses counted but not yet reported: a subscriber skipping towards its next keyframe has
/// counted the frames it passed but reports them just before that keyframe.
fn pending(model: &Model) -> u64 {
    model.sub.dropped() - model.reported
}
