//! Push inputs and their publishers (SPEC §Publisher "RTMP listener", §Security "Publish
//! authentication"): which push input of which running stream a publisher feeds, and the slot
//! it holds while connected.
//!
//! A stream may have any number of push inputs (a primary and a backup encoder publishing to
//! one stream is the commonest redundant setup); each is one slot with at most one publisher.
//! A publisher reaches a slot in one of two ways:
//!
//! - **by the stream's name** (`live/<code>`, or a multi-segment code in full): a `publish://`
//!   input, or the loopback URL of this server's own listener and stream. An input
//!   `publish://?slot=<name>` is the one a publisher picks with `?slot=<name>` (`live/cam?
//!   key=…&slot=backup`): names stay put when inputs are reordered. A publisher without
//!   `slot` gets the most preferred free input reached by name;
//! - **by a legacy input's own key**: `rtmp://0.0.0.0/<app>/<key>` is fed by a publisher to
//!   `rtmp://host/<app>/<key>`.
//!
//! For the failover machine a slot is an input like any other: without a publisher it is idle
//! ("waiting for publisher") and not selectable; a publisher arriving on a slot that outranks
//! the active input takes over (failback), and one leaving the active slot fails over to the
//! next input. The driver learns of both through the slot's counters ([`PushSlot`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tributary_domain::StreamCode;
use tributary_domain::spec::{PushAddress, PushVia};
use tributary_hub::Port;
use tributary_serve::{PublishEnd, PublishGuard};

use super::{Manager, Slot};
use crate::lock;

/// A push input's publisher slot, shared with the listener's [`PublisherGuard`].
pub(super) struct PushSlot {
    /// Whether a publisher holds the slot (one at a time).
    pub(super) live: AtomicBool,
    /// Claims so far: the driver notices a publisher that left and came back between wakes.
    pub(super) claims: AtomicU64,
    /// Why the last publisher left, as its connection said.
    pub(super) last_end: Mutex<Option<PublishEnd>>,
    /// The stream driver's wake.
    wake: Arc<Notify>,
}

impl PushSlot {
    /// A free slot that wakes the stream's driver when a publisher comes or goes.
    pub(super) fn new(wake: &Arc<Notify>) -> Self {
        Self {
            live: AtomicBool::new(false),
            claims: AtomicU64::new(0),
            last_end: Mutex::new(None),
            wake: Arc::clone(wake),
        }
    }
}

/// Which push input a publisher asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushTarget<'a> {
    /// A publisher that named the stream. `slot` is the slot name it asked for (`?slot=`);
    /// `name` is the last segment of the path it used, so a legacy input whose key equals it
    /// is reached by name too.
    Named {
        /// The slot name asked for (`?slot=<name>`), if any.
        slot: Option<&'a str>,
        /// The stream name as published (`cam1` of `live/cam1`).
        name: &'a str,
    },
    /// A publisher whose stream name is a legacy input's routing key.
    Keyed(&'a str),
}

/// Why a publisher gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotRefusal {
    /// The stream is not running.
    NotRunning,
    /// The stream has no push input this listener feeds (and, for a keyed publisher, none
    /// with that key).
    NoPushInput,
    /// `?slot=` named no `publish://?slot=<name>` input of the stream.
    NoSuchSlot,
    /// Every slot the publisher may take already has a live publisher.
    Busy,
}

/// Held by a connected publisher; told why it left, and dropping it frees the push slot and
/// tells the manager.
pub(crate) struct PublisherGuard {
    /// The slot.
    slot: Arc<PushSlot>,
    /// The slot's port, where the publisher's departure is recorded (`runtime.inputs[].errors`).
    port: Port,
    /// The publisher, for that record.
    peer: SocketAddr,
}

impl PublishGuard for PublisherGuard {
    fn ended(self: Box<Self>, end: PublishEnd) {
        let message = format!("RTMP publisher {} disconnected: {end}", self.peer);
        self.port
            .report_error(tokio::time::Instant::now().into_std(), message);
        *lock(&self.slot.last_end) = Some(end);
    }
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        self.slot.live.store(false, Ordering::Release);
        self.slot.wake.notify_one();
    }
}

impl Manager {
    /// The publish key (`stream_key`) of a running stream.
    pub(crate) fn stream_key(&self, code: &StreamCode) -> Option<String> {
        let ctl = self.ctl(code)?;
        Some(ctl.lock().stream_key.clone())
    }

    /// Whether a running stream takes publishers (has a push input) without a publish key.
    pub(crate) fn keyless_push(&self, code: &StreamCode) -> bool {
        let Some(ctl) = self.ctl(code) else {
            return false;
        };
        let managed = ctl.lock();
        managed.stream_key.is_empty() && managed.slots.values().any(|slot| slot.push.is_some())
    }

    /// The running stream with a legacy push input keyed `key` that `listener` feeds, and its
    /// `stream_key`. Should two streams share a key, the first by code wins.
    pub(crate) fn keyed_stream(
        &self,
        key: &str,
        listener: PushVia,
    ) -> Option<(StreamCode, String)> {
        let mut streams: Vec<_> = lock(&self.streams)
            .iter()
            .map(|(code, ctl)| (code.clone(), Arc::clone(ctl)))
            .collect();
        streams.sort_by(|a, b| a.0.cmp(&b.0));
        streams.into_iter().find_map(|(code, ctl)| {
            let managed = ctl.lock();
            let keyed = managed
                .slots
                .values()
                .any(|slot| feeds(slot, listener) && has_key(slot, key));
            keyed.then(|| (code, managed.stream_key.clone()))
        })
    }

    /// Claims a push slot of a running stream for a publisher that came through `listener`:
    /// the slot's port and priority, and a guard that frees the slot when dropped.
    pub(crate) fn claim_publisher(
        &self,
        code: &StreamCode,
        target: PushTarget<'_>,
        listener: PushVia,
        peer: SocketAddr,
    ) -> Result<(Port, u32, PublisherGuard), SlotRefusal> {
        let ctl = self.ctl(code).ok_or(SlotRefusal::NotRunning)?;
        let managed = ctl.lock();
        let mut candidates = managed
            .slots
            .iter()
            .filter(|(_, slot)| feeds(slot, listener))
            .filter(|(_, slot)| {
                let Some(push) = slot.input.push() else {
                    return false;
                };
                match (target, &push.address) {
                    (
                        PushTarget::Named {
                            slot: Some(wanted), ..
                        },
                        PushAddress::Stream { slot },
                    ) => slot.as_deref() == Some(wanted),
                    (PushTarget::Named { slot: None, .. }, PushAddress::Stream { .. }) => true,
                    (PushTarget::Named { slot: None, name }, PushAddress::Key(key)) => key == name,
                    (PushTarget::Keyed(wanted), PushAddress::Key(key)) => key == wanted,
                    _ => false,
                }
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(match target {
                PushTarget::Named { slot: Some(_), .. } => SlotRefusal::NoSuchSlot,
                _ => SlotRefusal::NoPushInput,
            });
        }
        // In priority order: the first free slot.
        for (&priority, slot) in candidates {
            let Some(push) = &slot.push else { continue };
            if push
                .live
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            push.claims.fetch_add(1, Ordering::AcqRel);
            push.wake.notify_one();
            let guard = PublisherGuard {
                slot: Arc::clone(push),
                port: slot.port.clone(),
                peer,
            };
            return Ok((slot.port.clone(), priority, guard));
        }
        Err(SlotRefusal::Busy)
    }
}

/// Whether a publisher through `listener` may feed `slot` (a push input of that listener,
/// or a `publish://` input, which any listener feeds).
fn feeds(slot: &Slot, listener: PushVia) -> bool {
    slot.push.is_some()
        && slot
            .input
            .push()
            .is_some_and(|push| push.via == PushVia::Any || push.via == listener)
}

/// Whether `slot` is a legacy push input with routing key `key`.
fn has_key(slot: &Slot, key: &str) -> bool {
    slot.input
        .push()
        .is_some_and(|push| matches!(&push.address, PushAddress::Key(k) if k == key))
}
