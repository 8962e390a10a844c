//! When a connection reads its socket, and when it writes what it queued.

use std::time::{Duration, Instant};

/// Paces reads of the socket.
///
/// With a hold of zero every read goes at once. Otherwise, after a read that did not exhaust
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

/// Decides when queued transmits are written: urgent ones at once, ones that may wait
/// ([`Cx::defer`](crate::Cx::defer)) with the next urgent one or once they have waited the
/// hold.
///
/// A live stream's frames come one at a time, about 77 a second at 30 fps with 48 kHz AAC,
/// and writing each costs a system call (and, on loopback, the receiver's processing too). The
/// frames whose latency a viewer notices are the video frames; audio queued between two of
/// them loses nothing by going out with the next. So a player's writes follow the video
/// frames (30 a second) instead of every frame, and its video is never held back.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WriteGate {
    /// Some unsent byte is urgent.
    urgent: bool,
    /// When the first unsent byte that may wait was queued.
    held_since: Option<Instant>,
}

impl WriteGate {
    /// Transmits were queued at `now`; `deferred`: they may wait.
    pub(crate) fn queued(&mut self, now: Instant, deferred: bool) {
        if deferred {
            self.held_since.get_or_insert(now);
        } else {
            self.urgent = true;
        }
    }

    /// Everything queued was written.
    pub(crate) fn emptied(&mut self) {
        *self = Self::default();
    }

    /// Whether what is queued may be written at `now`.
    pub(crate) fn open(&self, now: Instant, hold: Duration) -> bool {
        self.urgent || hold.is_zero() || self.held_since.is_none_or(|t| now >= t + hold)
    }

    /// When held bytes become due.
    pub(crate) fn due(&self, hold: Duration) -> Option<Instant> {
        self.held_since.map(|t| t + hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_holds_only_what_may_wait_and_only_for_the_hold() {
        let t0 = Instant::now();
        let hold = Duration::from_millis(100);
        let mut gate = WriteGate::default();
        gate.queued(t0, true);
        assert!(!gate.open(t0, hold));
        assert!(!gate.open(t0 + Duration::from_millis(99), hold));
        assert!(gate.open(t0 + hold, hold));
        assert_eq!(gate.due(hold), Some(t0 + hold));
        // A later deferred transmit does not push the deadline out.
        gate.queued(t0 + Duration::from_millis(50), true);
        assert_eq!(gate.due(hold), Some(t0 + hold));
        // An urgent one opens the gate for everything queued before it.
        gate.queued(t0 + Duration::from_millis(60), false);
        assert!(gate.open(t0 + Duration::from_millis(60), hold));
        gate.emptied();
        assert!(gate.open(t0, hold), "nothing held");
        // Without a hold nothing waits.
        gate.queued(t0, true);
        assert!(gate.open(t0, Duration::ZERO));
    }
}
