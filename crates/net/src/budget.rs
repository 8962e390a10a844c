//! One budget for the input every connection of the process holds unprocessed.
//!
//! Each session bounds what its own peer can make it hold (RTMP: 256 KiB until a publish is
//! accepted, 32 MiB after), but a thousand connections each within their own bound still add
//! up. The driver reports each connection's [`Session::buffered`](tributary_media::Session::buffered)
//! after every read to one shared [`InputBudget`]; the connection whose read takes the total
//! past the limit is the one cut ([`End::InputBudget`](crate::End::InputBudget)), so a flood
//! costs its senders their connections, not the process its memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The process-wide budget of input held unprocessed, shared by the connections it covers.
pub struct InputBudget {
    /// The most bytes all connections together may hold.
    limit: usize,
    /// What they hold now.
    used: AtomicUsize,
}

impl InputBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now, over every connection.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for InputBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputBudget")
            .field("limit", &self.limit)
            .field("used", &self.used())
            .finish()
    }
}

/// Settings compare budgets by identity: two settings are equal when they share one.
impl PartialEq for InputBudget {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for InputBudget {}

/// One connection's part of a budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct Share {
    /// The budget.
    budget: Arc<InputBudget>,
    /// What this connection holds, as last reported.
    held: usize,
}

impl Share {
    pub(crate) fn new(budget: Arc<InputBudget>) -> Self {
        Self { budget, held: 0 }
    }

    /// Records that the connection now holds `held` bytes; `false` when that growth took
    /// the total past the limit.
    pub(crate) fn set(&mut self, held: usize) -> bool {
        let used = &self.budget.used;
        let fits = if held > self.held {
            let grown = held - self.held;
            used.fetch_add(grown, Ordering::Relaxed) + grown <= self.budget.limit
        } else {
            used.fetch_sub(self.held - held, Ordering::Relaxed);
            true
        };
        self.held = held;
        fits
    }

    /// The limit, for the error.
    pub(crate) fn limit(&self) -> usize {
        self.budget.limit
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}
