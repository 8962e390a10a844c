//! Probing a degraded cold input (SPEC §Stream manager): a fresh reader into a throwaway
//! buffer must yield a frame within the probe timeout; the outcome goes back to the failover
//! machine as an input event.

use std::sync::Weak;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_domain::failover::{InputEvent, Report};
use tributary_domain::spec::ParsedInput;
use tributary_hub::{BufferId, Hub, Intake, PortKey};
use tributary_ingest::{IngestConfig, IngestContext, WorkerEvent};

use super::Ctl;

/// Probes a degraded cold input: a fresh reader into a throwaway buffer must yield a
/// non-empty frame within `timeout`. The result goes back to the machine.
pub(super) async fn probe(
    ctl: Weak<Ctl>,
    input: ParsedInput,
    timeout: Duration,
    cancel: CancellationToken,
) {
    let Some((code, ingest)) = ctl
        .upgrade()
        .map(|ctl| (ctl.code.clone(), ctl.env.ingest()))
    else {
        return;
    };
    let priority = input.priority();
    let outcome = tokio::select! {
        () = cancel.cancelled() => return,
        outcome = read_one(&code, &input, &ingest, timeout) => outcome,
    };
    tracing::info!(stream = %code, priority, ?outcome, "probe done");
    let Some(ctl) = ctl.upgrade() else { return };
    let mut managed = ctl.lock();
    // The input may have moved: find it by URL.
    let Some((&now_priority, slot)) = managed
        .slots
        .iter_mut()
        .find(|(_, slot)| slot.input.url() == input.url())
    else {
        return;
    };
    slot.probe = None;
    let event = match outcome {
        Ok(()) => InputEvent::ProbeSucceeded,
        Err(message) => InputEvent::ProbeFailed { message },
    };
    let now = Instant::now();
    let report = Report::Event {
        priority: now_priority,
        event,
    };
    if let Err(e) = managed.failover.handle_input(now, report) {
        tracing::debug!(stream = %code, error = %e, "stale probe result");
    }
    ctl.drain(&mut managed, now);
}

/// Opens `input` with a fresh worker writing into a private buffer, until it delivers a frame
/// or `timeout` passes.
async fn read_one(
    code: &StreamCode,
    input: &ParsedInput,
    ingest: &IngestConfig,
    timeout: Duration,
) -> Result<(), String> {
    let hub = Hub::new();
    let writer = hub
        .create(BufferId::Stream(code.clone()), PROBE_CAPACITY)
        .map_err(|e| e.to_string())?;
    let intake = Intake::new(writer);
    let port = intake
        .add_port(PortKey(0), false)
        .map_err(|e| e.to_string())?;
    let ctx = IngestContext {
        code: code.clone(),
        priority: input.priority(),
    };
    let worker = tributary_ingest::spawn_with(ctx, input, port.clone(), ingest)
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        if port.health().frames > 0 {
            return Ok(());
        }
        for event in worker.take_events() {
            if let WorkerEvent::OpenFailed(m) | WorkerEvent::Lost(m) | WorkerEvent::Finished(m) =
                event
            {
                last_error = Some(m);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let waited = format!("no packet within {:.1} s", timeout.as_secs_f64());
            return Err(match last_error {
                Some(error) => format!("{waited} ({error})"),
                None => waited,
            });
        }
        tokio::time::sleep(PROBE_POLL).await;
    }
}

/// Frames a probe's private buffer holds: it only needs to see one.
const PROBE_CAPACITY: usize = 64;
/// How often a probe looks at its reader's counters.
const PROBE_POLL: Duration = Duration::from_millis(50);
