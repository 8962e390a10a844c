//! When a connection reads its socket, and when it pulls its handler's items: at once while it
//! is idle, in batches while it is busy.

use std::time::{Duration, Instant};

/// Paces one kind of work (reads of the socket, or pulls of a handler's items).
///
/// With a hold of zero every unit goes at once. Otherwise, after a unit that did not exhaust
/// what was waiting, the next one waits out the hold, so what arrives meanwhile is taken in
/// one go.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pacer {
    /// When the next unit may go; `None`: now.
    next: Option<Instant>,
}

impl Pacer {
    /// Whether a unit may go at `now`.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    /// When the next unit may go, if it must wait.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }

    /// A unit went at `now`; `full`: it took all it could, so more is waiting already;
    /// `hold`: the longest the next may wait.
    pub(crate) fn done(&mut self, now: Instant, full: bool, hold: Duration) {
        self.next = (!full && !hold.is_zero()).then(|| now + hold);
    }
}
