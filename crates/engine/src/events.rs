//! The in-process event bus (SPEC §Events).
//!
//! Publishing never blocks: the bus is a bounded broadcast ring. A subscriber that falls more
//! than [`EVENT_QUEUE`] events behind loses the oldest ones; [`EventSubscriber::recv`] skips over
//! the gap and adds it to that subscriber's drop counter (`tributary_events_dropped_total`).
//!
//! **Order.** Stamping an event (its `seq`, UUIDv7 `id` and `occurred_at`), keeping it in the
//! history and sending it happen under one short lock, so every subscriber sees events in
//! `seq` order, and the events of one stream in the order they happened. The lock is taken
//! once per event (a state change, never a frame) and never across `.await`.
//!
//! **History.** The last [`HISTORY`] events are kept, so a client that polls
//! `GET /events?since=<seq>` ([`EventBus::since`], [`crate::EngineHandle::events_since`])
//! gets what it missed between two polls, and learns how many fell out of the history if it
//! was away too long.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use tributary_domain::event::EventType;

/// Events a subscriber may fall behind before it loses the oldest (SPEC §Defaults).
pub const EVENT_QUEUE: usize = 1024;

/// Events kept for `GET /events?since=` (the newest ones).
pub const HISTORY: usize = 1024;

/// One event as delivered to subscribers and webhooks.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// UUIDv7, usable as an idempotency key.
    pub id: String,
    /// Increases by one per event within this process.
    pub seq: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The stream concerned, or empty.
    pub stream_code: String,
    /// RFC 3339 UTC with milliseconds.
    pub occurred_at: String,
    /// Event-specific data (SPEC §Events table).
    pub payload: Value,
}

/// The bus. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    /// The last `seq` given and the newest events, behind the lock that orders publishing.
    history: Arc<Mutex<History>>,
    /// Drops per subscriber name (`tributary_events_dropped_total{subscriber}`), kept after
    /// the subscriber goes; one entry per name, and names are static.
    drops: Arc<Mutex<Vec<NamedDrops>>>,
}

/// The newest events and the last sequence number handed out.
#[derive(Default)]
struct History {
    last_seq: u64,
    recent: VecDeque<Arc<Event>>,
}

/// What [`EventBus::since`] found after a sequence number.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    /// The events after `since`, oldest first (at most the limit asked for).
    pub events: Vec<Arc<Event>>,
    /// What to pass as `since` next: the last event returned, else `since` itself (or 0
    /// after a reset).
    pub next_since: u64,
    /// Events after `since` that are no longer in the history (the client was away for more
    /// than [`HISTORY`] events).
    pub missed: u64,
    /// `since` was ahead of every event: the server restarted and numbering began again, so
    /// the page starts from the oldest event kept.
    pub reset: bool,
}

/// The drop counter shared by every subscriber of one name.
struct NamedDrops {
    name: &'static str,
    counter: Arc<AtomicU64>,
}

impl EventBus {
    /// A bus with the default per-subscriber queue.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(EVENT_QUEUE);
        Self {
            sender,
            history: Arc::new(Mutex::new(History::default())),
            drops: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Publishes an event stamped with `now`. Never blocks; with no subscriber it is dropped.
    pub fn publish_at(
        &self,
        kind: EventType,
        stream_code: &str,
        payload: Value,
        now: DateTime<Utc>,
    ) {
        let occurred_at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut history = crate::lock(&self.history);
        history.last_seq += 1;
        let seq = history.last_seq;
        let event = Arc::new(Event {
            id: uuid::Uuid::now_v7().to_string(),
            seq,
            kind,
            stream_code: stream_code.to_owned(),
            occurred_at,
            payload,
        });
        if history.recent.len() == HISTORY {
            history.recent.pop_front();
        }
        history.recent.push_back(Arc::clone(&event));
        // Sent under the lock, so subscribers receive in `seq` order. An error only means
        // nobody listens right now.
        let _ = self.sender.send(event);
        drop(history);
        tracing::debug!(event = %kind, stream = stream_code, seq, "event");
    }

    /// At most `limit` kept events with a `seq` above `since`, oldest first.
    pub fn since(&self, since: u64, limit: usize) -> EventPage {
        let history = crate::lock(&self.history);
        let reset = since > history.last_seq;
        let since = if reset { 0 } else { since };
        let oldest = history
            .recent
            .front()
            .map_or(history.last_seq + 1, |e| e.seq);
        let missed = oldest.saturating_sub(since + 1);
        let events: Vec<Arc<Event>> = history
            .recent
            .iter()
            .filter(|e| e.seq > since)
            .take(limit)
            .cloned()
            .collect();
        EventPage {
            next_since: events.last().map_or(since, |e| e.seq),
            events,
            missed,
            reset,
        }
    }

    /// Publishes an event stamped with the wall clock.
    pub fn publish(&self, kind: EventType, stream_code: &str, payload: Value) {
        self.publish_at(kind, stream_code, payload, Utc::now());
    }

    /// A new subscriber that sees events published from now on. `name` labels its drops.
    pub fn subscribe(&self, name: &'static str) -> EventSubscriber {
        let shared = {
            let mut drops = crate::lock(&self.drops);
            match drops.iter().find(|d| d.name == name) {
                Some(named) => Arc::clone(&named.counter),
                None => {
                    let counter = Arc::new(AtomicU64::new(0));
                    drops.push(NamedDrops {
                        name,
                        counter: Arc::clone(&counter),
                    });
                    counter
                }
            }
        };
        EventSubscriber {
            receiver: self.sender.subscribe(),
            name,
            dropped: 0,
            shared,
        }
    }

    /// Events lost per subscriber name, over every subscriber of that name so far.
    pub(crate) fn drops(&self) -> Vec<(&'static str, u64)> {
        crate::lock(&self.drops)
            .iter()
            .map(|d| (d.name, d.counter.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

/// One listener on the bus with its own bounded queue.
pub struct EventSubscriber {
    receiver: broadcast::Receiver<Arc<Event>>,
    name: &'static str,
    dropped: u64,
    /// The bus's counter for this subscriber's name.
    shared: Arc<AtomicU64>,
}

impl EventSubscriber {
    /// The next event; `None` once the bus is gone. Skips (and counts) events lost to lag.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.dropped += n;
                    self.shared.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        subscriber = self.name,
                        dropped = n,
                        "event subscriber lagged"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Events this subscriber lost because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn slow_subscriber_never_blocks_publisher_and_counts_drops() {
        let bus = EventBus::new();
        let mut slow = bus.subscribe("slow");
        let mut fast = bus.subscribe("fast");
        let total = EVENT_QUEUE as u64 + 100;
        for _ in 0..total {
            bus.publish(EventType::StreamStarted, "a", json!({}));
            // The fast one keeps up.
            assert!(fast.recv().await.is_some());
        }
        let mut seen = 0;
        let mut last_seq = 0;
        while let Ok(Some(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(10), slow.recv()).await
        {
            assert!(event.seq > last_seq);
            last_seq = event.seq;
            seen += 1;
        }
        assert_eq!(seen + slow.dropped(), total);
        assert_eq!(slow.dropped(), 100);
        assert_eq!(fast.dropped(), 0);
        let drops = bus.drops();
        assert!(drops.contains(&("slow", 100)), "{drops:?}");
        assert!(drops.contains(&("fast", 0)), "{drops:?}");
    }

    #[test]
    fn since_pages_through_the_history_and_counts_what_fell_out() {
        let bus = EventBus::new();
        for _ in 0..HISTORY + 10 {
            bus.publish(EventType::StreamStarted, "a", json!({}));
        }
        let last = (HISTORY + 10) as u64;
        // Away too long: the 10 oldest are gone.
        let page = bus.since(0, 5);
        assert_eq!(page.missed, 10);
        assert_eq!(
            page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [11, 12, 13, 14, 15]
        );
        assert_eq!(page.next_since, 15);
        let page = bus.since(page.next_since, 1000);
        assert_eq!(page.missed, 0);
        assert_eq!(page.events.len(), 1000);
        assert_eq!(page.events.last().unwrap().seq, 15 + 1000);
        // Caught up: nothing, and `next_since` stays.
        let page = bus.since(last, 100);
        assert!(page.events.is_empty() && !page.reset && page.missed == 0);
        assert_eq!(page.next_since, last);
        // Ahead of every event (the server restarted): from the oldest kept.
        let page = bus.since(last + 500, 1);
        assert!(page.reset);
        assert_eq!(page.events[0].seq, 11);
        assert_eq!(page.missed, 10);
    }

    #[test]
    fn envelope_shape() {
        let bus = EventBus::new();
        let mut sub = bus.subscribe("t");
        bus.publish(EventType::StreamCreated, "cam", json!({"x": 1}));
        let event = sub.receiver.try_recv().unwrap();
        let v = serde_json::to_value(&*event).unwrap();
        assert_eq!(v["type"], "stream.created");
        assert_eq!(v["stream_code"], "cam");
        assert_eq!(v["seq"], 1);
        assert_eq!(v["id"].as_str().unwrap().len(), 36);
        assert!(v["occurred_at"].as_str().unwrap().ends_with('Z'));
    }
}
