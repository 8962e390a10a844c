//! The reconciler (SPEC §Coordinator "Reconciler"): converges running streams on the store.
//!
//! Each pass asks the actor of every stored or running stream to converge; the actor re-reads
//! the record under its lock, so a stream deleted meanwhile is never resurrected. Starts that
//! fail are retried on the next pass.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tributary_store::StreamRepository;

use crate::coordinator::Coordinator;

/// Runs passes every `interval` until `shutdown`.
pub(crate) async fn run(
    coordinator: Coordinator,
    store: Arc<dyn StreamRepository>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        pass(&coordinator, &store, 8).await;
    }
}

/// One pass: converge every stored stream and every running one, `concurrency` at a time.
pub(crate) async fn pass(
    coordinator: &Coordinator,
    store: &Arc<dyn StreamRepository>,
    concurrency: usize,
) {
    let listed = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.list()).await
    };
    let stored = match listed {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reconciler: listing the store failed");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "reconciler: store task failed");
            return;
        }
    };
    let mut codes: BTreeSet<_> = stored
        .into_iter()
        // A stream naming a template may inherit its inputs, so only its actor (which
        // resolves it) can tell whether it should run: it is always asked.
        .filter(|s| {
            s.stream.template.is_some()
                || s.stream.is_startable() != coordinator.is_running(&s.stream.code)
        })
        .map(|s| s.stream.code)
        .collect();
    codes.extend(coordinator.running_streams());
    let mut tasks = JoinSet::new();
    for code in codes {
        while tasks.len() >= concurrency.max(1) {
            tasks.join_next().await;
        }
        let coordinator = coordinator.clone();
        tasks.spawn(async move {
            if let Err(e) = coordinator.converge(&code).await {
                tracing::debug!(stream = %code, error = %e, "reconcile pass: not converged");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
