//! The worker's supervisor: a worker task that panics is reported and started again.
//!
//! Every value a source sends is checked, so a panic is a bug; but a bug in one input's worker
//! must cost that input a restart, not the input for good. Without a supervisor the panicked
//! task was simply gone: the manager saw an input that stopped sending (a timeout, never the
//! cause) and nothing would ever reopen it. Each run of the worker is its own tokio task, so
//! the panic is caught at the task's edge ([`JoinError::is_panic`]); the supervisor reports it
//! on the port like a lost connection (the manager may fail over) and runs the worker again
//! after the connect loop's backoff (1 s doubling to 10 s, reset by a run that lasted).
//!
//! The same restart path serves fault injection (`POST /debug/fault`, SPEC §API): a test asks
//! the worker to drop its connection, and the supervisor aborts the running task (closing its
//! socket, response or child), reports the loss on the port and starts again after the
//! backoff, so the manager's ordinary failover sees exactly what a real drop looks like.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::sink::Reporter;

/// One run of a worker: a fresh future each time, given the input's reporter.
pub(crate) type Job =
    Box<dyn Fn(Reporter) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the connection loss of a fault reads like on the port and in the events.
pub(crate) const FAULT_MESSAGE: &str = "connection dropped by fault injection (POST /debug/fault)";

/// Runs `job` until it returns or `cancel` fires; a run that panics is reported on the port
/// (`worker failed: <panic message>; restarting`) and started again after the backoff. A
/// notification of `fault` while a run is under way aborts that run, reports
/// [`FAULT_MESSAGE`] and restarts the same way (a notification with no run waiting is lost:
/// callers use [`Notify::notify_waiters`], so no stale permit kills a later run).
pub(crate) async fn supervise(
    job: Job,
    reporter: Reporter,
    cancel: CancellationToken,
    fault: Arc<Notify>,
) {
    let mut backoff = Backoff::new();
    loop {
        let started = tokio::time::Instant::now();
        let mut run = tokio::spawn(job(reporter.clone()).in_current_span());
        let ended = tokio::select! {
            () = cancel.cancelled() => {
                run.abort();
                tracing::debug!("worker stopped");
                return;
            }
            () = fault.notified() => {
                run.abort();
                // Wait for the abort, so the socket is closed before the loss is reported.
                let _ = run.await;
                tracing::warn!("{FAULT_MESSAGE}");
                reporter.ended(FAULT_MESSAGE);
                None
            }
            ended = &mut run => Some(ended),
        };
        if let Some(ended) = ended {
            let Err(error) = ended else {
                return;
            };
            if !error.is_panic() {
                // Aborted from outside: the runtime is shutting down.
                return;
            }
            reporter.lost(format_args!(
                "worker failed: {}; restarting",
                panic_message(error)
            ));
        }
        if started.elapsed() >= RAN_LONG {
            backoff.reset();
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = backoff.wait() => {}
        }
    }
}

/// The message a panic carried (`panic!("...")` payloads are `&str` or `String`).
fn panic_message(error: JoinError) -> String {
    let payload: Box<dyn Any + Send> = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".to_owned())
}

/// A run that lasted this long worked: the next restart starts from the first delay.
const RAN_LONG: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tributary_hub::{BufferId, Hub, Intake, PortKey, SessionReason};

    use super::*;
    use crate::WorkerEvent;
    use crate::sink::{Label, Stats};

    fn reporter() -> (Reporter, Arc<Stats>, Intake) {
        let hub = Hub::new();
        let id = BufferId::Stream("sup".parse().unwrap());
        let intake = Intake::new(hub.create(id, 64).unwrap());
        let port = intake.add_port(PortKey(0), false).unwrap();
        intake.select(PortKey(0), SessionReason::Fresh).unwrap();
        let label = Arc::new(Label {
            code: "sup".parse().unwrap(),
            priority: 0,
            url: "udp://0.0.0.0:1".into(),
            kind: tributary_domain::protocol::InputKind::Udp,
        });
        let stats = Arc::new(Stats::default());
        (
            Reporter::new(label, port, Arc::clone(&stats)),
            stats,
            intake,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_run_is_reported_and_run_again_after_the_backoff() {
        let (reporter, stats, _intake) = reporter();
        let runs = Arc::new(AtomicU32::new(0));
        let job: Job = Box::new({
            let runs = Arc::clone(&runs);
            move |_reporter| {
                let runs = Arc::clone(&runs);
                Box::pin(async move {
                    // The first two runs hit a bug; the third runs until stopped.
                    if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("segment arithmetic overflowed");
                    }
                    std::future::pending::<()>().await;
                })
            }
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(supervise(
            job,
            reporter.clone(),
            cancel.clone(),
            Arc::new(Notify::new()),
        ));

        let start = tokio::time::Instant::now();
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Restarted after 1 s, then after 2 s.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
            "{waited:?}"
        );
        let events: Vec<WorkerEvent> = crate::sink::lock(&stats.events).drain(..).collect();
        assert_eq!(events.len(), 2, "{events:?}");
        for event in &events {
            let WorkerEvent::Lost(message) = event else {
                panic!("{event:?}");
            };
            assert_eq!(
                message,
                "worker failed: segment arithmetic overflowed; restarting"
            );
        }
        let errors = reporter.port.health().recent_errors;
        assert!(
            errors[0].message.starts_with("stream sup, input 0"),
            "{errors:?}"
        );

        // Stopping ends the supervisor and the run.
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_drops_the_running_connection_and_runs_again_after_the_backoff() {
        let (reporter, stats, _intake) = reporter();
        let runs = Arc::new(AtomicU32::new(0));
        let job: Job = Box::new({
            let runs = Arc::clone(&runs);
            move |reporter| {
                runs.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    reporter.opened();
                    std::future::pending::<()>().await;
                })
            }
        });
        let (cancel, fault) = (CancellationToken::new(), Arc::new(Notify::new()));
        let task = tokio::spawn(supervise(
            job,
            reporter.clone(),
            cancel.clone(),
            Arc::clone(&fault),
        ));
        while !stats.connected.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let start = tokio::time::Instant::now();
        fault.notify_waiters();
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Restarted after the first backoff delay (1 s), not at once.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        let events: Vec<WorkerEvent> = crate::sink::lock(&stats.events).drain(..).collect();
        assert_eq!(
            events,
            vec![
                WorkerEvent::Opened,
                WorkerEvent::Lost(FAULT_MESSAGE.into()),
                WorkerEvent::Opened,
            ]
        );
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_returns_is_not_restarted() {
        let (reporter, stats, _intake) = reporter();
        let runs = Arc::new(AtomicU32::new(0));
        let job: Job = Box::new({
            let runs = Arc::clone(&runs);
            move |_reporter| {
                runs.fetch_add(1, Ordering::SeqCst);
                Box::pin(async {})
            }
        });
        supervise(
            job,
            reporter,
            CancellationToken::new(),
            Arc::new(Notify::new()),
        )
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(crate::sink::lock(&stats.events).is_empty());
    }
}
