//! The [`PlayFanout`] of each played buffer, shared by its players.
//!
//! Players of one buffer life (hub [`Subscriber::instance`](tributary_hub::Subscriber::instance))
//! with the same message stream id and chunk size share one fan-out, so each frame is muxed
//! and chunked once however many watch. The registry holds weak references: the last player to
//! leave drops the fan-out (and its cache), and a recreated buffer gets a fresh one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tributary_rtmp::PlayFanout;

/// Buffer instance, message stream id, chunk size.
type Key = (u64, u32, u32);

/// Every live fan-out, by what its bytes fit.
#[derive(Debug, Default)]
pub(crate) struct Fanouts {
    live: Mutex<HashMap<Key, Weak<Mutex<PlayFanout>>>>,
}

impl Fanouts {
    /// The fan-out for players of buffer `instance` on `(stream_id, chunk_size)`, made if none
    /// is live.
    pub(crate) fn get(
        &self,
        instance: u64,
        (stream_id, chunk_size): (u32, u32),
    ) -> Arc<Mutex<PlayFanout>> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (instance, stream_id, chunk_size);
        if let Some(fanout) = live.get(&key).and_then(Weak::upgrade) {
            return fanout;
        }
        live.retain(|_, fanout| fanout.strong_count() > 0);
        let fanout = Arc::new(Mutex::new(PlayFanout::new(stream_id, chunk_size)));
        live.insert(key, Arc::downgrade(&fanout));
        fanout
    }
}

/// Locks a fan-out; a panic in another player while it held the lock leaves the cache
/// consistent (each step is one assignment), so poisoning is ignored.
pub(crate) fn lock(fanout: &Mutex<PlayFanout>) -> MutexGuard<'_, PlayFanout> {
    fanout.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_of_one_buffer_life_and_format_share_a_fanout() {
        let fanouts = Fanouts::default();
        let a = fanouts.get(7, (1, 4096));
        assert!(Arc::ptr_eq(&a, &fanouts.get(7, (1, 4096))));
        assert!(!Arc::ptr_eq(&a, &fanouts.get(8, (1, 4096))));
        assert!(!Arc::ptr_eq(&a, &fanouts.get(7, (2, 4096))));
        assert!(!Arc::ptr_eq(&a, &fanouts.get(7, (1, 128))));
        // The last player leaving drops it; the next one starts afresh.
        let weak = Arc::downgrade(&a);
        drop(a);
        assert!(weak.upgrade().is_none());
        let b = fanouts.get(7, (1, 4096));
        assert_eq!(lock(&b).stream_id(), 1);
        assert_eq!(fanouts.live.lock().unwrap().len(), 1);
    }
}
