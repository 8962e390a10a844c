//! The registry of stream actors: which code has a live actor, how a caller reaches it, and
//! when an idle actor may go.
//!
//! # Reclaiming idle actors
//!
//! An actor is the stream's lock, so two actors for one code must never run at once, and a
//! command sent to an actor must run exactly once. An actor whose stream is blank (stopped, no
//! failure to report: [`StreamState::is_blank`]) ends its task after its last command, so
//! codes that were only deleted, refused or probed do not keep a task each forever.
//!
//! A caller takes a [`Ticket`] together with the actor's sender, under the registry lock, before
//! it sends; the ticket travels in the command's [`Envelope`] and is dropped when the actor has
//! run the command (or when the caller gives up before its send went through). The actor may
//! only remove itself from the registry, under the same lock, while no ticket is out. So a
//! caller either got its ticket first (the actor stays and will receive the command) or finds
//! no entry and spawns a fresh actor, which can only happen after the old one has run its last
//! command: commands still run one at a time and in the order their sends completed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tributary_domain::StreamCode;

use super::actor::Envelope;
use super::state::StreamState;
use crate::lock;

/// Commands a stream's actor may have queued; more wait in `send` (bounded: ARCHITECTURE §11).
pub(super) const ACTOR_QUEUE: usize = 16;

/// Every stream code that has a live actor.
#[derive(Default)]
pub(super) struct Registry {
    actors: Mutex<HashMap<StreamCode, Actor>>,
}

/// One stream's actor, as the registry holds it.
#[derive(Clone)]
struct Actor {
    /// The actor's command queue.
    tx: mpsc::Sender<Envelope>,
    /// The stream's live state, shared with readers.
    state: Arc<StreamState>,
    /// Tickets out: commands queued, running, or about to be sent.
    tickets: Arc<AtomicUsize>,
}

/// A caller's claim on an actor: while one is out, the actor is not reclaimed.
pub(super) struct Ticket(Arc<AtomicUsize>);

/// A new actor's ends, for the coordinator to spawn its task on.
pub(super) struct Spawned {
    /// The queue the task reads.
    pub(super) rx: mpsc::Receiver<Envelope>,
    /// The state it writes.
    pub(super) state: Arc<StreamState>,
}

impl Registry {
    /// The live state of `code`'s actor, if it has one.
    pub(super) fn state(&self, code: &StreamCode) -> Option<Arc<StreamState>> {
        lock(&self.actors).get(code).map(|a| Arc::clone(&a.state))
    }

    /// Every live actor's state.
    pub(super) fn states(&self) -> Vec<(StreamCode, Arc<StreamState>)> {
        lock(&self.actors)
            .iter()
            .map(|(code, a)| (code.clone(), Arc::clone(&a.state)))
            .collect()
    }

    /// The sender of `code`'s actor with a ticket on it. When the code has no actor and
    /// `spawn` is true, a new one is registered and its ends returned for the caller to start
    /// its task; with `spawn` false, `None`.
    pub(super) fn acquire(
        &self,
        code: &StreamCode,
        spawn: bool,
    ) -> Option<(mpsc::Sender<Envelope>, Ticket, Option<Spawned>)> {
        let mut actors = lock(&self.actors);
        if let Some(actor) = actors.get(code) {
            actor.tickets.fetch_add(1, Ordering::AcqRel);
            return Some((actor.tx.clone(), Ticket(Arc::clone(&actor.tickets)), None));
        }
        if !spawn {
            return None;
        }
        let (tx, rx) = mpsc::channel(ACTOR_QUEUE);
        let state = Arc::new(StreamState::default());
        let tickets = Arc::new(AtomicUsize::new(1));
        let actor = Actor {
            tx: tx.clone(),
            state: Arc::clone(&state),
            tickets: Arc::clone(&tickets),
        };
        actors.insert(code.clone(), actor);
        Some((tx, Ticket(tickets), Some(Spawned { rx, state })))
    }

    /// Removes the actor owning `state` if no ticket is out. Returns whether it was removed;
    /// the actor's task must then end without reading its queue again (it is empty: every
    /// queued command holds a ticket).
    pub(super) fn reclaim(&self, code: &StreamCode, state: &Arc<StreamState>) -> bool {
        let mut actors = lock(&self.actors);
        let Some(actor) = actors.get(code) else {
            return false;
        };
        if !Arc::ptr_eq(&actor.state, state) || actor.tickets.load(Ordering::Acquire) != 0 {
            return false;
        }
        actors.remove(code);
        true
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
