//! One hook's queue, batching and retries as a sans-IO machine: events and `now` go in, the
//! next batch to deliver and the next deadline come out. The worker task ([`super::worker`])
//! does the sending and the sleeping; everything that decides *when* and *what* is here, so
//! the tests replay an outage of any length on paused time in microseconds.
//!
//! # Driving contract
//!
//! 1. [`push`](Batcher::push) each event the hook takes.
//! 2. Call [`poll_send`](Batcher::poll_send) with `now`: `Some(batch)` is the batch to
//!    deliver now (a first try or a retry). While it is out, `poll_send` returns `None`.
//! 3. Report its outcome with [`delivered`](Batcher::delivered) or
//!    [`failed`](Batcher::failed), then poll again.
//! 4. With nothing to send, sleep until [`poll_timeout`](Batcher::poll_timeout) (or a new
//!    event, or a settings change) and poll again.
//!
//! # Rules (SPEC §Hooks)
//!
//! - A batch goes out when the queue holds `batch_max_items`, or `flush_interval` after the
//!   oldest waiting event arrived; it carries at most `batch_max_items`, oldest first.
//! - One batch is out at a time, so the receiver sees events in queue order.
//! - A failed try is retried after 1 s, 5 s, then 30 s, up to `max_retries` times; after the
//!   last, the batch goes back to the front of the queue, whole and in order, and waits for
//!   the next flush.
//! - The queue holds at most `max_queue` events: beyond it the oldest are dropped and
//!   counted. A batch that comes back to the front is trimmed like any other events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tributary_domain::hook::{HookSettings, retry_delay};

use crate::events::Event;

/// The queue and the batch in flight of one hook.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// The settings in force; replaced at once by [`set_settings`](Self::set_settings).
    settings: HookSettings,
    /// Events waiting for a batch, oldest first; at most `settings.max_queue`.
    queue: VecDeque<Arc<Event>>,
    /// The batch out for delivery or waiting for its retry.
    batch: Option<Batch>,
    /// When the queue's partial batch is due: armed when an event arrives at an idle
    /// batcher, cleared when a batch is taken.
    flush_at: Option<Instant>,
    /// Events dropped because the queue was full, since the batcher was made.
    dropped: u64,
    /// Drops not yet reported to the delivery log: how many, and the first
    /// [`LOST_IDS`] ids among them.
    lost: (u64, Vec<String>),
}

/// A batch taken from the queue.
#[derive(Debug)]
struct Batch {
    /// The events, oldest first; the same on every try.
    events: Vec<Arc<Event>>,
    /// Failed tries so far.
    failures: u32,
    /// `None` while a try is out; the retry's time while waiting for it.
    retry_at: Option<Instant>,
}

/// What a failed try leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// The batch is retried at this time.
    RetryAt(Instant),
    /// The retries are spent: the batch is back at the front of the queue; this many of the
    /// oldest events were dropped to keep the queue within its bound.
    Requeued {
        /// Events dropped by the trim.
        dropped: u64,
    },
}

impl Batcher {
    /// An empty batcher.
    pub(crate) fn new(settings: HookSettings) -> Self {
        Self {
            settings,
            queue: VecDeque::new(),
            batch: None,
            flush_at: None,
            dropped: 0,
            lost: (0, Vec::new()),
        }
    }

    /// Queues `event`; returns how many of the oldest events were dropped to make room.
    pub(crate) fn push(&mut self, now: Instant, event: Arc<Event>) -> u64 {
        self.queue.push_back(event);
        if self.flush_at.is_none() {
            self.flush_at = Some(now + self.settings.flush_interval);
        }
        self.trim()
    }

    /// Applies new settings at once: a smaller queue bound trims now, a shorter interval
    /// brings the pending flush forward. Returns the events dropped by the trim.
    pub(crate) fn set_settings(&mut self, now: Instant, settings: HookSettings) -> u64 {
        self.settings = settings;
        if let Some(at) = self.flush_at {
            self.flush_at = Some(at.min(now + settings.flush_interval));
        }
        self.trim()
    }

    /// The batch to deliver now, if one is due.
    pub(crate) fn poll_send(&mut self, now: Instant) -> Option<Vec<Arc<Event>>> {
        if let Some(batch) = &mut self.batch {
            return match batch.retry_at {
                Some(at) if at <= now => {
                    batch.retry_at = None;
                    Some(batch.events.clone())
                }
                _ => None,
            };
        }
        let full = self.queue.len() >= self.settings.batch_max_items;
        let due = self.flush_at.is_some_and(|at| at <= now);
        if self.queue.is_empty() || !(full || due) {
            return None;
        }
        let take = self.queue.len().min(self.settings.batch_max_items);
        let events: Vec<Arc<Event>> = self.queue.drain(..take).collect();
        self.flush_at = None;
        self.batch = Some(Batch {
            events: events.clone(),
            failures: 0,
            retry_at: None,
        });
        Some(events)
    }

    /// The batch out was delivered.
    pub(crate) fn delivered(&mut self, now: Instant) {
        self.batch = None;
        self.rearm(now);
    }

    /// The batch out failed: it is retried later, or after its last retry goes back to the
    /// front of the queue.
    pub(crate) fn failed(&mut self, now: Instant) -> AfterFailure {
        let Some(batch) = &mut self.batch else {
            return AfterFailure::Requeued { dropped: 0 };
        };
        batch.failures += 1;
        if batch.failures <= self.settings.max_retries {
            let at = now + retry_delay(batch.failures);
            batch.retry_at = Some(at);
            return AfterFailure::RetryAt(at);
        }
        let events = self.batch.take().map(|b| b.events).unwrap_or_default();
        for event in events.into_iter().rev() {
            self.queue.push_front(event);
        }
        self.flush_at = None;
        self.rearm(now);
        AfterFailure::Requeued {
            dropped: self.trim(),
        }
    }

    /// When to poll again with nothing new: a retry's time or the partial batch's flush.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.batch {
            Some(batch) => batch.retry_at,
            None => self.flush_at,
        }
    }

    /// Everything not yet delivered, oldest first (the batch out or waiting, then the queue),
    /// for the one flush at shutdown. The batcher is empty afterwards.
    pub(crate) fn take_all(&mut self) -> Vec<Arc<Event>> {
        let mut all = self.batch.take().map(|b| b.events).unwrap_or_default();
        all.extend(self.queue.drain(..));
        self.flush_at = None;
        all
    }

    /// Events waiting: the queue plus the batch out.
    pub(crate) fn depth(&self) -> usize {
        self.queue.len() + self.batch.as_ref().map_or(0, |b| b.events.len())
    }

    /// Events dropped so far because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Failed tries of the batch out so far (0 for a first try).
    pub(crate) fn failures(&self) -> u32 {
        self.batch.as_ref().map_or(0, |b| b.failures)
    }

    /// The drops since the last call, if any: how many, and the ids of the first
    /// [`LOST_IDS`] of them (for one delivery-log entry per burst of drops).
    pub(crate) fn take_lost(&mut self) -> Option<(u64, Vec<String>)> {
        (self.lost.0 > 0).then(|| std::mem::take(&mut self.lost))
    }

    /// The settings in force.
    pub(crate) fn settings(&self) -> &HookSettings {
        &self.settings
    }

    /// After a batch is done: what waits in the queue flushes one interval from now.
    fn rearm(&mut self, now: Instant) {
        if !self.queue.is_empty() && self.flush_at.is_none() {
            self.flush_at = Some(now + self.settings.flush_interval);
        }
    }

    /// Drops the oldest events beyond the bound; returns how many.
    fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.queue.len() > self.settings.max_queue {
            if let Some(event) = self.queue.pop_front()
                && self.lost.1.len() < LOST_IDS
            {
                self.lost.1.push(event.id.clone());
            }
            dropped += 1;
        }
        self.dropped += dropped;
        self.lost.0 += dropped;
        dropped
    }
}

/// Ids of dropped events kept for one delivery-log entry; the count covers the rest.
pub(crate) const LOST_IDS: usize = 100;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio::time::{advance, sleep_until};
    use tributary_domain::event::EventType;

    use super::*;

    fn settings(items: usize, queue: usize, retries: u32) -> HookSettings {
        HookSettings {
            batch_max_items: items,
            flush_interval: Duration::from_secs(5),
            max_queue: queue,
            max_retries: retries,
            timeout: Duration::from_secs(10),
        }
    }

    fn event(seq: u64) -> Arc<Event> {
        Arc::new(Event {
            id: format!("id-{seq}"),
            seq,
            kind: EventType::StreamStarted,
            stream_code: "cam".into(),
            occurred_at: String::new(),
            payload: json!({}),
        })
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    /// Sleeps (paused time) until the batcher's deadline.
    async fn wait(b: &Batcher) {
        let at = b.poll_timeout().expect("a deadline");
        sleep_until(at.into()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_at_once_a_partial_one_after_the_interval() {
        let mut b = Batcher::new(settings(3, 100, 3));
        let start = now();
        for seq in 1..=4 {
            b.push(now(), event(seq));
        }
        assert_eq!(seqs(&b.poll_send(now()).unwrap()), [1, 2, 3]);
        // One batch out at a time.
        assert!(b.poll_send(now()).is_none());
        b.delivered(now());
        // Event 4 alone waits for the flush interval.
        assert!(b.poll_send(now()).is_none());
        wait(&b).await;
        assert_eq!(now() - start, Duration::from_secs(5));
        assert_eq!(seqs(&b.poll_send(now()).unwrap()), [4]);
        b.delivered(now());
        assert_eq!(b.poll_timeout(), None);
        assert_eq!(b.depth(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_1_5_30_seconds_then_the_batch_returns_to_the_front() {
        let mut b = Batcher::new(settings(2, 100, 3));
        b.push(now(), event(1));
        b.push(now(), event(2));
        b.push(now(), event(3));
        let first = b.poll_send(now()).unwrap();
        assert_eq!(seqs(&first), [1, 2]);
        let mut gaps = Vec::new();
        for _ in 0..3 {
            let before = now();
            assert!(matches!(b.failed(now()), AfterFailure::RetryAt(_)));
            assert!(b.poll_send(now()).is_none(), "not before its time");
            wait(&b).await;
            gaps.push((now() - before).as_secs());
            assert_eq!(seqs(&b.poll_send(now()).unwrap()), [1, 2], "the same batch");
        }
        assert_eq!(gaps, [1, 5, 30]);
        // The last retry fails: back to the front, in order, ahead of event 3.
        assert_eq!(b.failed(now()), AfterFailure::Requeued { dropped: 0 });
        assert_eq!(b.depth(), 3);
        assert_eq!(seqs(&b.poll_send(now()).unwrap()), [1, 2]);
        b.delivered(now());
        wait(&b).await;
        assert_eq!(seqs(&b.poll_send(now()).unwrap()), [3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_the_oldest_and_a_returned_batch_is_trimmed() {
        let mut b = Batcher::new(settings(2, 3, 0));
        for seq in 1..=2 {
            b.push(now(), event(seq));
        }
        assert_eq!(seqs(&b.poll_send(now()).unwrap()), [1, 2]);
        // While the batch is out, the queue fills past its bound of 3.
        let dropped: u64 = (3..=7).map(|seq| b.push(now(), event(seq))).sum();
        assert_eq!(dropped, 2);
        assert_eq!(b.dropped(), 2);
        // No retries: the batch returns at once, and the oldest events go.
        assert_eq!(b.failed(now()), AfterFailure::Requeued { dropped: 2 });
        assert_eq!(b.dropped(), 4);
        let (count, ids) = b.take_lost().unwrap();
        assert_eq!(
            (count, ids),
            (
                4,
                ["id-3", "id-4", "id-1", "id-2"].map(String::from).to_vec()
            )
        );
        assert_eq!(b.take_lost(), None);
        let all = b.take_all();
        assert_eq!(seqs(&all), [5, 6, 7]);
    }

    #[tokio::test(start_paused = true)]
    async fn new_settings_apply_at_once() {
        let mut b = Batcher::new(settings(100, 100, 3));
        let start = now();
        b.push(now(), event(1));
        advance(Duration::from_secs(1)).await;
        let mut quicker = settings(100, 100, 3);
        quicker.flush_interval = Duration::from_secs(2);
        b.set_settings(now(), quicker);
        wait(&b).await;
        assert_eq!(now() - start, Duration::from_secs(3));
        assert!(b.poll_send(now()).is_some());
        b.delivered(now());
        for seq in 2..=5 {
            b.push(now(), event(seq));
        }
        assert_eq!(b.set_settings(now(), settings(100, 2, 3)), 2);
        assert_eq!(seqs(&b.take_all()), [4, 5]);
        assert_eq!(b.settings().max_queue, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_takes_the_batch_out_and_the_queue_in_order() {
        let mut b = Batcher::new(settings(2, 100, 3));
        for seq in 1..=3 {
            b.push(now(), event(seq));
        }
        b.poll_send(now()).unwrap();
        b.failed(now());
        assert_eq!(seqs(&b.take_all()), [1, 2, 3]);
        assert_eq!((b.depth(), b.poll_timeout()), (0, None));
    }

    /// Random operation sequences (seeded): every event pushed ends delivered, dropped or
    /// still held, exactly once; deliveries come in push order; the queue never exceeds its
    /// bound; a batch never exceeds its size; nothing is sent before its time.
    #[test]
    fn operation_sequences_keep_every_event_accounted_for_and_in_order() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        for seed in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut s = settings(
                rng.random_range(1..5),
                rng.random_range(1..8),
                rng.random_range(0..3),
            );
            s.flush_interval = Duration::from_secs(rng.random_range(1..4));
            let mut b = Batcher::new(s);
            let mut now = Instant::now();
            let (mut next_seq, mut delivered, mut dropped) = (1u64, Vec::new(), 0u64);
            let mut out: Option<Vec<Arc<Event>>> = None;
            for _ in 0..200 {
                match rng.random_range(0..6) {
                    0 | 1 => {
                        dropped += b.push(now, event(next_seq));
                        next_seq += 1;
                    }
                    2 => now += Duration::from_millis(rng.random_range(0..4000)),
                    3 => {
                        if let Some(batch) = out.take() {
                            delivered.extend(seqs(&batch));
                            b.delivered(now);
                        }
                    }
                    4 => {
                        if out.take().is_some()
                            && let AfterFailure::Requeued { dropped: d } = b.failed(now)
                        {
                            dropped += d;
                        }
                    }
                    _ => {
                        let mut changed = *b.settings();
                        changed.max_queue = rng.random_range(1..8);
                        dropped += b.set_settings(now, changed);
                    }
                }
                if out.is_none() {
                    out = b.poll_send(now);
                    match &out {
                        Some(batch) => {
                            assert!(batch.len() <= b.settings().batch_max_items, "seed {seed}");
                        }
                        // Nothing due: idle, or a deadline ahead (never a stuck queue).
                        None => assert!(
                            b.poll_timeout().map_or(b.depth() == 0, |at| at > now),
                            "seed {seed}"
                        ),
                    }
                }
                assert!(b.queue.len() <= b.settings().max_queue, "seed {seed}");
            }
            assert!(
                delivered.windows(2).all(|w| w[0] < w[1]),
                "seed {seed}: {delivered:?}"
            );
            let held = b.depth() as u64;
            assert_eq!(b.dropped(), dropped, "seed {seed}");
            assert_eq!(
                delivered.len() as u64 + dropped + held,
                next_seq - 1,
                "seed {seed}"
            );
        }
    }
}
