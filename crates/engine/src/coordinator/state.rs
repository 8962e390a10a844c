//! The live state of one stream, shared between its actor (the only writer of `running`,
//! `started_at` and the run's warnings) and readers (`GET`, the reconciler, the manager).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tributary_domain::event::StreamStatus;

use crate::lock;

/// Read-only view of one stream's live state, shared between its actor and readers.
#[derive(Default)]
pub(crate) struct StreamState {
    /// Whether the pipeline runs; read without the lock by `is_running`.
    pub(super) running: AtomicBool,
    /// Everything else, behind one short lock.
    inner: Mutex<StateInner>,
}

/// The fields of a [`StreamState`] behind its lock.
#[derive(Default)]
pub(super) struct StateInner {
    /// When the current run started.
    pub(super) started_at: Option<DateTime<Utc>>,
    /// Orders running streams by start (shutdown stops them in reverse).
    pub(super) start_seq: u64,
    /// The manager reported every input exhausted.
    pub(super) inputs_exhausted: bool,
    /// A rung of the transcoder crashed 3 times within 30 s and has not run 30 s since.
    pub(super) transcoder_unhealthy: bool,
    /// FFmpeg cannot run (its binary is missing).
    pub(super) transcoder_unavailable: bool,
    /// Warnings of the current run.
    pub(super) warnings: Vec<String>,
    /// Warnings of the transcoder's current start (a watermark off for this run): replaced
    /// each time the transcoder starts again, so an update that fixes the cause clears them.
    pub(super) transcoder_warnings: Vec<String>,
    /// The last start or update failure, until the next success.
    pub(super) last_error: Option<String>,
}

/// A snapshot of a stream's live state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSnapshot {
    /// stopped / active / degraded.
    pub status: StreamStatus,
    /// Why degraded (`inputs_exhausted`, `transcoder_unhealthy`, `transcoder_unavailable`).
    pub status_reasons: Vec<&'static str>,
    /// Whether the pipeline runs.
    pub running: bool,
    /// When the current run started.
    pub started_at: Option<DateTime<Utc>>,
    /// Warnings of the current run.
    pub warnings: Vec<String>,
    /// The last start or update failure, until the next success.
    pub last_error: Option<String>,
}

/// Which in-memory degradation flag a service reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Degradation {
    /// Every input is unusable.
    InputsExhausted,
    /// A transcoder rung is unhealthy.
    TranscoderUnhealthy,
    /// FFmpeg cannot run.
    TranscoderUnavailable,
}

impl StreamState {
    pub(super) fn lock(&self) -> MutexGuard<'_, StateInner> {
        lock(&self.inner)
    }

    pub(super) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Whether the state carries nothing a reader could miss: not running and no failure to
    /// report. Only then may the stream's actor be reclaimed (its state goes with it).
    pub(super) fn is_blank(&self) -> bool {
        !self.is_running() && self.lock().last_error.is_none()
    }

    pub(super) fn snapshot(&self) -> StateSnapshot {
        let running = self.is_running();
        let inner = self.lock();
        let mut reasons = Vec::new();
        if running && inner.inputs_exhausted {
            reasons.push("inputs_exhausted");
        }
        if running && inner.transcoder_unhealthy {
            reasons.push("transcoder_unhealthy");
        }
        if running && inner.transcoder_unavailable {
            reasons.push("transcoder_unavailable");
        }
        let status = match (running, reasons.is_empty()) {
            (false, _) => StreamStatus::Stopped,
            (true, true) => StreamStatus::Active,
            (true, false) => StreamStatus::Degraded,
        };
        StateSnapshot {
            status,
            status_reasons: reasons,
            running,
            started_at: inner.started_at,
            warnings: inner
                .warnings
                .iter()
                .chain(&inner.transcoder_warnings)
                .cloned()
                .collect(),
            last_error: inner.last_error.clone(),
        }
    }

    /// Whether a running stream carries `flag`.
    pub(super) fn degraded_by(&self, flag: Degradation) -> bool {
        let running = self.is_running();
        let inner = self.lock();
        running
            && match flag {
                Degradation::InputsExhausted => inner.inputs_exhausted,
                Degradation::TranscoderUnhealthy => inner.transcoder_unhealthy,
                Degradation::TranscoderUnavailable => inner.transcoder_unavailable,
            }
    }

    /// Sets or clears `flag`.
    pub(super) fn set(&self, flag: Degradation, on: bool) {
        let mut inner = self.lock();
        match flag {
            Degradation::InputsExhausted => inner.inputs_exhausted = on,
            Degradation::TranscoderUnhealthy => inner.transcoder_unhealthy = on,
            Degradation::TranscoderUnavailable => inner.transcoder_unavailable = on,
        }
    }
}
