//! The per-stream actors: commands serialised, idle actors reclaimed, tickets honoured.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_operations_serialise_without_double_start() {
    let rig = rig();
    let code = base().code;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let coordinator = rig.coordinator.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = base();
            match i % 3 {
                0 => {}
                1 => s.disabled = true,
                _ => s.name = format!("v{i}"),
            }
            coordinator
                .put(spec(s), Expect::Any)
                .await
                .map(|o| o.applied)
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap().unwrap();
    }
    let processed = processed(&rig, &code);
    assert_eq!(processed.len(), 100);
    let stored = rig.store.get(&code).unwrap().unwrap().stream;
    let running = rig.coordinator.is_running(&code);
    assert_eq!(running, !stored.disabled, "the last write won");
    assert_eq!(
        rig.recorder.max_live.load(Ordering::SeqCst),
        1,
        "a double start happened"
    );
    assert_eq!(rig.recorder.live.load(Ordering::SeqCst), i64::from(running));
}

/// Waits until `code` has no actor. The actor may run on another worker thread (the
/// multi-threaded tests), which a yield on this one does not advance: the wait is for the
/// state itself, checked every millisecond, up to a deadline far beyond any scheduling delay.
async fn reclaimed(rig: &Rig, code: &StreamCode) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if rig.coordinator.inner.registry.state(code).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the actor of {code} was not reclaimed");
}

#[tokio::test]
async fn an_idle_actor_is_reclaimed_and_the_next_command_gets_a_fresh_one() {
    let rig = rig();
    let s = base();
    rig.apply(&s).await.unwrap();
    assert!(rig.coordinator.inner.registry.state(&s.code).is_some());
    assert!(rig.coordinator.delete(&s.code).await.unwrap());
    reclaimed(&rig, &s.code).await;
    // Codes that only ever saw a delete or a refused restart keep no task either.
    let ghost = StreamCode::parse("ghost").unwrap();
    assert!(!rig.coordinator.delete(&ghost).await.unwrap());
    assert!(rig.coordinator.restart(&ghost).await.is_err());
    reclaimed(&rig, &ghost).await;
    // The next command spawns a fresh actor and runs.
    let outcome = rig.put(&s).await;
    assert!(outcome.created);
    assert!(rig.coordinator.is_running(&s.code));
    assert_eq!(processed(&rig, &s.code), ["put", "delete", "put"]);
}

#[tokio::test]
async fn a_failed_start_keeps_its_actor_so_the_error_stays_visible() {
    let rig = rig();
    let s = base();
    rig.recorder.fail("inputs.register 1");
    assert!(rig.apply(&s).await.is_err());
    tokio::task::yield_now().await;
    assert!(rig.coordinator.snapshot(&s.code).last_error.is_some());
    // Disabling it clears the error, and the actor goes.
    rig.stop(&s).await;
    reclaimed(&rig, &s.code).await;
    assert_eq!(rig.coordinator.snapshot(&s.code).last_error, None);
}

#[tokio::test]
async fn a_caller_holding_a_ticket_keeps_the_actor_until_its_command_ran() {
    let rig = rig();
    let s = base();
    rig.apply(&s).await.unwrap();
    // A caller took the actor's sender (and a ticket) but has not sent yet...
    let (tx, ticket, spawned) = rig
        .coordinator
        .inner
        .registry
        .acquire(&s.code, false)
        .unwrap();
    assert!(spawned.is_none());
    // ...when another command leaves the stream blank.
    assert!(rig.coordinator.delete(&s.code).await.unwrap());
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(rig.coordinator.inner.registry.state(&s.code).is_some());
    // Its command still reaches the same actor, runs once, after the delete.
    let (reply, rx) = oneshot::channel();
    let command = Command::Converge(reply);
    tx.send(Envelope { command, ticket }).await.ok().unwrap();
    assert!(rx.await.unwrap().unwrap().actions.is_empty());
    reclaimed(&rig, &s.code).await;
    assert_eq!(processed(&rig, &s.code), ["put", "delete", "converge"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_racing_reclamation_run_exactly_once_in_order() {
    let rig = rig();
    let s = base();
    // Each delete leaves the actor blank, so it reclaims itself while the next put is on its
    // way: the put must find either the old actor (which then stays) or a fresh one.
    let rounds = 200;
    for round in 0..rounds {
        let outcome = rig.put(&s).await;
        assert!(outcome.created, "round {round}: the delete before was lost");
        assert!(outcome.applied.is_ok());
        assert!(
            rig.coordinator.delete(&s.code).await.unwrap(),
            "round {round}"
        );
    }
    let expected: Vec<&str> = (0..rounds).flat_map(|_| ["put", "delete"]).collect();
    assert_eq!(processed(&rig, &s.code), expected);
    assert_eq!(rig.recorder.max_live.load(Ordering::SeqCst), 1);
    assert_eq!(rig.recorder.live.load(Ordering::SeqCst), 0);
    reclaimed(&rig, &s.code).await;
}

/// The commands actors ran for `code`, in order.
fn processed(rig: &Rig, code: &StreamCode) -> Vec<&'static str> {
    crate::lock(&rig.coordinator.inner.processed)
        .iter()
        .filter(|(c, _)| c == code)
        .map(|(_, op)| *op)
        .collect()
}
