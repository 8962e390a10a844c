//! The sans-IO contract every protocol machine with a peer or a timer follows
//! (ARCHITECTURE.md §6), as a trait, so one driver (`tributary-net`) runs them all.
//!
//! It lives in this vocabulary crate because both sides need it and neither may depend on the
//! other: the protocol crates (L0) implement [`Session`], the driver (L1) calls it.

use std::time::Instant;

use bytes::Bytes;

/// A protocol machine for one connection: bytes and `now` go in, transmits, events and the next
/// deadline come out.
///
/// # Driving contract
///
/// 1. Wait on the socket and on the deadline [`poll_timeout`](Self::poll_timeout) gave last;
///    take `now` once per wake-up.
/// 2. Feed what woke you: [`handle_input`](Self::handle_input) with the bytes read, or
///    [`handle_timeout`](Self::handle_timeout) once the deadline has passed.
/// 3. Drain [`poll_output`](Self::poll_output) until `None`: send every
///    [`Output::Transmit`] in order, and act on each [`Output::Event`] after sending the
///    transmits before it. Any other mutation (answering a request, queueing media) also
///    produces outputs: drain again after it.
/// 4. Re-arm the one timer from [`poll_timeout`](Self::poll_timeout).
///
/// An `Err` from `handle_input` or `handle_timeout` ends the connection: the machine is in no
/// state to go on.
pub trait Session {
    /// What the machine asks its driver to act on.
    type Event;
    /// Why the connection cannot go on.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Feeds bytes received from the peer at `now`.
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<(), Self::Error>;

    /// Tells the machine that `now` has reached (or passed) its deadline.
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error>;

    /// The next output, in order; `None` once drained.
    fn poll_output(&mut self) -> Option<Output<Self::Event>>;

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) must be called,
    /// if any.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Bytes of the peer's input the machine holds without having acted on them yet
    /// (unfinished messages, input kept while a request awaits its answer): what a peer can
    /// make the process hold, counted against a process-wide budget by the driver. Default 0.
    fn buffered(&self) -> usize {
        0
    }
}

/// One output of a [`Session`]: bytes to send, or an event to act on.
///
/// Outputs are strictly ordered: send every `Transmit` in the order received, and act on an
/// event only after the transmits before it (a refusal's status precedes the event that says
/// to close).
#[derive(Debug, Clone)]
pub enum Output<E> {
    /// Bytes to write to the peer, in order.
    Transmit(Bytes),
    /// Something the driver acts on.
    Event(E),
}
