//! The worker's supervisor: a worker task that panics is reported and started again.
//!
//! Every value a source sends is checked, so a panic is a bug; but a bug in one input's worker
//! must cost that input a restart, not the input for good. Without a supervisor the panicked
//! task was simply gone: the manager saw an input that stopped sending (a timeout, never the
//! cause) and nothing would ever reopen it. Each run of the worker is its own tokio task, so
//! the panic is caught at the task's edge ([`JoinError::is_panic`]); the supervisor reports it
//! on the port like a lost connection (the manager may fail over) and runs the worker again
//! after the connect loop's backoff (1 s doubling to 10 s, reset by a run that lasted).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::sink::Reporter;

/// One run of a worker: a fresh future each time, given the input's reporter.
pub(crate) type Job =
    Box<dyn Fn(Reporter) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Runs `job` until it returns or `cancel` fires; a run that panics is reported on the port
/// (`worker failed: <panic message>; restarting`) and started again after the backoff.
pub(crate) async fn supervise(job: Job, reporter: Reporter, cancel: CancellationToken) {
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
            ended = &mut run => ended,
        };
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
        let task = tokio::spawn(supervise(job, reporter.clone(), cancel.clone()));

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
        supervise(job, reporter, CancellationToken::new()).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(crate::sink::lock(&stats.events).is_empty());
    }
}
