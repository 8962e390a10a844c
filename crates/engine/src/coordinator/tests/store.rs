//! The stored record (put, delete, restart) and the reconciler that heals failed starts.

use super::*;

#[tokio::test]
async fn put_persists_then_applies_and_delete_stops() {
    let rig = rig();
    let s = base();
    let outcome = rig.put(&s).await;
    assert!(outcome.created);
    assert_eq!(outcome.stored.revision, 1);
    assert!(outcome.applied.is_ok());
    assert!(rig.coordinator.is_running(&s.code));
    // Precondition failure leaves the record and the pipeline alone.
    let err = rig
        .coordinator
        .put(spec(s.clone()), Expect::Revision(7))
        .await
        .unwrap_err();
    assert!(matches!(err, CoordError::Precondition { .. }), "{err}");
    assert!(rig.coordinator.delete(&s.code).await.unwrap());
    assert!(!rig.coordinator.is_running(&s.code));
    assert!(rig.store.get(&s.code).unwrap().is_none());
    assert!(!rig.coordinator.delete(&s.code).await.unwrap());
}

#[tokio::test]
async fn restart_needs_a_stored_enabled_stream() {
    let rig = rig();
    let mut s = base();
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::NotFound(_))
    ));
    s.disabled = true;
    rig.put(&s).await;
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::Disabled(_))
    ));
    s.disabled = false;
    rig.put(&s).await;
    rig.recorder.take();
    let applied = rig.coordinator.restart(&s.code).await.unwrap();
    assert_eq!(applied.actions, vec![Action::Stop, Action::Start]);
}

#[tokio::test(start_paused = true)]
async fn reconciler_heals_a_failed_start_within_one_interval_and_skips_disabled() {
    let rig = rig();
    let good = base();
    let mut disabled = base();
    disabled.code = StreamCode::parse("off").unwrap();
    disabled.disabled = true;
    rig.recorder.fail("inputs.register 1");
    let outcome = rig.put(&good).await;
    assert!(outcome.applied.is_err());
    rig.put(&disabled).await;
    assert!(!rig.coordinator.is_running(&good.code));

    let shutdown = CancellationToken::new();
    let interval = Duration::from_secs(10);
    let task = tokio::spawn(crate::reconciler::run(
        rig.coordinator.clone(),
        rig.store.clone(),
        interval,
        shutdown.clone(),
    ));
    // The cause goes away; within one interval the stream runs.
    rig.recorder.heal();
    let deadline = tokio::time::Instant::now() + interval + Duration::from_millis(500);
    while !rig.coordinator.is_running(&good.code) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not healed within one interval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more passes never start the disabled stream.
    tokio::time::sleep(interval * 3).await;
    assert!(!rig.coordinator.is_running(&disabled.code));
    shutdown.cancel();
    task.await.unwrap();
}
