//! The connection driver: one loop that runs any [`Session`] over a socket (ARCHITECTURE.md §6).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tributary_media::{Output, Session};

use crate::budget::{InputBudget, Share};
use crate::pace::{Pacer, WriteGate};
use crate::queue::OutQueue;

/// What the application does with a connection: the policy around a [`Session`].
///
/// The driver owns the socket, the outgoing queue, the timer and the clock; the handler owns
/// what the connection is for (a publisher's intake port, a player's hub subscriber, a push
/// target's state). Every callback gets a [`Cx`] with the session and `now`; whatever the
/// session produces during a callback is drained by the driver right after it (transmits
/// queued in order, events handed back to [`event`](Self::event)).
///
/// A callback that returns `Err(reason)` ends the connection at once with
/// [`End::Handler`]; [`Cx::close`] ends it once what is queued has been written (a refusal's
/// status, a goodbye), or after the linger time.
pub trait Handler<S: Session> {
    /// What the handler's source yields: a hub delivery, for players and push targets.
    type Item;
    /// Why the handler ends a connection.
    type Reason;

    /// Acts on one event of the session: answer a request, write a frame to the hub, ...
    fn event(
        &mut self,
        cx: &mut Cx<'_, S, Self::Reason>,
        event: S::Event,
    ) -> Result<(), Self::Reason>;

    /// Whether the driver should pull items now (a player once its play is accepted). While
    /// it says no, [`recv`](Self::recv) is not polled.
    fn receiving(&self) -> bool {
        false
    }

    /// Waits for the next item; `None` once the source has ended. Must be cancel-safe: the
    /// driver drops the future whenever another branch wins.
    fn recv(&mut self) -> impl Future<Output = Option<Self::Item>> + Send {
        std::future::pending()
    }

    /// The next item if one is ready (`Poll::Ready(None)`: the source has ended), without
    /// waiting. After a [`recv`](Self::recv), the driver takes what else is ready this way,
    /// up to the high-water mark, so one write carries it all.
    fn try_recv(&mut self) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }

    /// Acts on an item (`None`: the source has ended), typically feeding it to the session.
    /// Set [`Cx::stamp`] to when its content became live, so the backlog is measured.
    fn item(
        &mut self,
        cx: &mut Cx<'_, S, Self::Reason>,
        item: Option<Self::Item>,
    ) -> Result<(), Self::Reason> {
        let _ = (cx, item);
        Ok(())
    }

    /// The stop signal fired: queue a goodbye if the protocol has one (it is flushed within
    /// the linger time); the connection then ends with [`End::Stopped`].
    fn stop(&mut self, cx: &mut Cx<'_, S, Self::Reason>) {
        let _ = cx;
    }
}

/// What a [`Handler`] callback sees: the session, `now`, and the levers it may pull.
pub struct Cx<'a, S: Session, R> {
    /// The protocol machine.
    session: &'a mut S,
    /// The instant of this wake-up.
    now: Instant,
    /// The driver's state the handler may read or steer.
    state: &'a mut State<R, S::Error>,
}

/// How a connection is driven. Build with [`Settings::default`] and adjust; a handler may
/// change them as the connection learns what it is ([`Cx::settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Bytes read from the socket per call. Default 4 KiB (a handshake packet is 1537 bytes;
    /// players send acknowledgements); a publisher reads more.
    pub read_size: usize,
    /// Unsent bytes at which the driver stops reading the socket and pulling items: what is
    /// behind that waits in the hub (which drops a slow reader's frames) or in the peer's
    /// socket. Default 512 KiB.
    pub high_water: usize,
    /// Disconnect once the oldest unsent byte is older than this (a player that cannot keep
    /// up with live). Default none.
    pub backlog: Option<Duration>,
    /// Disconnect once bytes have waited this long without any being written (a push target
    /// that reads nothing). Default none.
    pub write_stall: Option<Duration>,
    /// Disconnect once nothing has been read for this long (a silent publisher or origin).
    /// Default none.
    pub read_idle: Option<Duration>,
    /// How long a closing connection may take to write what it queued last. Default 2 s.
    pub linger: Duration,
    /// After a read that did not fill the buffer, wait this long before the next read, so
    /// what arrives meanwhile comes in with one system call. Default 0: read as soon as bytes
    /// arrive (the lowest latency; an operator may trade some for fewer wake-ups).
    pub read_hold: Duration,
    /// The longest transmits a handler marked as able to wait ([`Cx::defer`]) are held
    /// back to go out with the next urgent one. Default 0: everything goes at once.
    pub write_hold: Duration,
    /// How long after its last write a connection counts as idle: a transmit that may wait
    /// goes out at once on an idle connection, and waits only while writes come closer
    /// together than this. Default 0: transmits that may wait always wait (up to
    /// `write_hold`).
    pub write_idle: Duration,
    /// The process-wide budget of input held unprocessed this connection counts against
    /// (read when the connection starts). Default none.
    pub input_budget: Option<Arc<InputBudget>>,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum End<R, E> {
    /// The handler ended it.
    #[error("{0}")]
    Handler(R),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    PeerClosed,
    /// Reading or writing failed.
    #[error("socket: {0}")]
    Io(io::Error),
    /// The session failed (malformed input, its own deadline).
    #[error("{0}")]
    Session(E),
    /// The oldest unsent byte was older than [`Settings::backlog`].
    #[error("the peer fell more than {0:?} behind")]
    Backlog(Duration),
    /// Bytes waited [`Settings::write_stall`] without any being written.
    #[error("the peer read nothing for {0:?}")]
    WriteStalled(Duration),
    /// Nothing was read for [`Settings::read_idle`].
    #[error("the peer sent nothing for {0:?}")]
    ReadIdle(Duration),
    /// This connection's input took what all connections hold unprocessed past
    /// [`Settings::input_budget`] (its limit in bytes).
    #[error("the server holds more than {0} bytes of unprocessed input from its peers")]
    InputBudget(usize),
    /// The stop signal fired.
    #[error("stopped")]
    Stopped,
}

/// Runs `session` over `io` with `handler` until the connection ends.
///
/// The loop (ARCHITECTURE.md §6): wait on the socket (read and write as independent
/// branches, so a peer that stops reading never stops us from seeing it close), the handler's
/// source, the one timer and the stop signal; take `now` once per wake-up from tokio's clock
/// (so `start_paused` tests drive every timer); feed the session or the handler; drain the
/// session's outputs, queueing transmits in order and handing events to the handler; re-arm
/// the timer from the earliest deadline of the session, the settings and the pacers.
///
/// Returns why the connection ended. The socket is dropped (closed) on return; the session
/// and handler stay with the caller, for its logs and reports.
pub async fn run<S, H, IO>(
    io: IO,
    session: &mut S,
    handler: &mut H,
    settings: Settings,
    stop: &CancellationToken,
) -> End<H::Reason, S::Error>
where
    S: Session,
    H: Handler<S>,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let now = clock();
    let mut driver = Driver {
        session,
        handler,
        state: State {
            queue: OutQueue::with_capacity(QUEUE_PIECES),
            stamp: now,
            closing: None,
            last_read: now,
            last_write: now,
            stalled_since: now,
            reads: Pacer::default(),
            gate: WriteGate::default(),
            deferring: false,
            input: settings.input_budget.clone().map(Share::new),
            settings,
        },
    };
    driver.run(io, stop).await
}

/// The loop's state, apart from the borrowed session and handler.
struct Driver<'a, S: Session, H: Handler<S>> {
    session: &'a mut S,
    handler: &'a mut H,
    state: State<H::Reason, S::Error>,
}

/// What the driver keeps between wake-ups.
struct State<R, E> {
    /// Transmits not yet written.
    queue: OutQueue,
    /// The stamp the transmits drained next get (`now`, unless a handler set its item's).
    stamp: Instant,
    /// Set once the connection is to end after a flush: why, and the flush's deadline.
    closing: Option<(End<R, E>, Instant)>,
    /// When bytes last arrived.
    last_read: Instant,
    /// When bytes were last written: a connection quiet for `write_idle` is idle.
    last_write: Instant,
    /// Since when queued bytes have waited without any being written (the write stall's
    /// clock): the later of the last write and the queue's last filling.
    stalled_since: Instant,
    /// When the socket may be read next.
    reads: Pacer,
    /// Whether the queued bytes may be written now, or wait for more.
    gate: WriteGate,
    /// Whether the transmits drained next may wait ([`Cx::defer`]).
    deferring: bool,
    /// This connection's part of the input budget, if it counts against one.
    input: Option<Share>,
    /// The settings now (a handler may change them: [`Cx::settings`]).
    settings: Settings,
}

impl<S: Session, H: Handler<S>> Driver<'_, S, H> {
    async fn run<IO: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: IO,
        stop: &CancellationToken,
    ) -> End<H::Reason, S::Error> {
        let (mut rd, mut wr) = tokio::io::split(io);
        let mut buf = vec![0u8; self.state.settings.read_size];
        let mut stopped = pin!(stop.cancelled());
        let mut timer = pin!(tokio::time::sleep_until(far_future()));
        let mut armed: Option<Instant> = None;
        let mut now = clock();
        let mut stopping = false;
        // Written bytes a buffering stream (TLS) may still hold: flushed once the queue is
        // empty. Plain TCP flushes at once, without a turn of the loop.
        let mut unflushed = false;
        loop {
            if let Err(end) = self.drain(now) {
                return end;
            }
            if self.state.queue.is_empty()
                && let Some((end, _)) = self.state.closing.take()
            {
                return end;
            }
            let room = self.state.closing.is_none()
                && self.state.queue.bytes() < self.state.settings.high_water;
            let reading = room && self.state.reads.ready(now);
            let pulling = room && self.handler.receiving();
            let writing = self.state.write_due(now);
            // Try the write now: a socket with room takes it without another turn of the loop
            // (most writes; the select branch below covers a full socket).
            if writing && let Some(written) = write_some(&mut wr, &self.state.queue).now_or_never()
            {
                if let Err(end) = self.wrote(now, written, &mut wr, &mut unflushed) {
                    return end;
                }
                continue;
            }
            if buf.len() != self.state.settings.read_size {
                buf.resize(self.state.settings.read_size.max(1), 0);
            }
            // The timer is re-armed only for an earlier deadline: a later one (an idle limit
            // pushed out by every read, a backlog limit gone with an emptied queue) lets the
            // armed one fire early, and `expire` re-checks. Resetting the timer on every
            // read or write would cost more than the rare early wake-up.
            if let Some(deadline) = self.deadline(room, reading, writing)
                && armed.is_none_or(|at| deadline < at)
            {
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(deadline));
                armed = Some(deadline);
            }
            let queue = &self.state.queue;
            tokio::select! {
                biased;
                () = &mut stopped, if !stopping => {
                    now = clock();
                    stopping = true;
                    let mut cx = Cx { session: &mut *self.session, now, state: &mut self.state };
                    self.handler.stop(&mut cx);
                    let linger = now + self.state.settings.linger;
                    self.state.closing = Some((End::Stopped, linger));
                }
                written = write_some(&mut wr, queue), if writing || (unflushed && queue.is_empty()) => {
                    now = clock();
                    if let Err(end) = self.wrote(now, written, &mut wr, &mut unflushed) {
                        return end;
                    }
                }
                read = rd.read(&mut buf), if reading => {
                    now = clock();
                    match read {
                        Ok(0) => return End::PeerClosed,
                        Ok(n) => {
                            self.state.last_read = now;
                            let hold = self.state.settings.read_hold;
                            self.state.reads.done(now, n == buf.len(), hold);
                            if let Err(e) = self.session.handle_input(now, &buf[..n]) {
                                return End::Session(e);
                            }
                            if let Some(share) = &mut self.state.input
                                && !share.set(self.session.buffered())
                            {
                                return End::InputBudget(share.limit());
                            }
                        }
                        Err(e) => return End::Io(e),
                    }
                }
                item = self.handler.recv(), if pulling => {
                    now = clock();
                    if let Err(end) = self.items(now, item) {
                        return end;
                    }
                }
                () = &mut timer, if armed.is_some() => {
                    now = clock();
                    armed = None;
                    if let Err(end) = self.expire(now, reading) {
                        return end;
                    }
                }
            }
        }
    }

    /// Drains the session: transmits are queued with the current stamp, events go to the
    /// handler (whose answers produce more outputs, drained in the same loop).
    fn drain(&mut self, now: Instant) -> Result<(), End<H::Reason, S::Error>> {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Transmit(bytes) => {
                    if self.state.queue.is_empty() {
                        self.state.stalled_since = now;
                    }
                    let idle_after = self.state.settings.write_idle;
                    let idle = !idle_after.is_zero()
                        && now.saturating_duration_since(self.state.last_write) >= idle_after;
                    self.state.gate.queued(now, self.state.deferring && !idle);
                    self.state.queue.push(bytes, self.state.stamp);
                }
                Output::Event(event) => {
                    let mut cx = Cx {
                        session: &mut *self.session,
                        now,
                        state: &mut self.state,
                    };
                    self.handler.event(&mut cx, event).map_err(End::Handler)?;
                }
            }
        }
        self.state.stamp = now;
        self.state.deferring = false;
        Ok(())
    }

    /// Accounts for one turn of the write branch.
    fn wrote<W: AsyncWrite + Unpin>(
        &mut self,
        now: Instant,
        written: io::Result<Written>,
        wr: &mut W,
        unflushed: &mut bool,
    ) -> Result<(), End<H::Reason, S::Error>> {
        match written.map_err(End::Io)? {
            Written::Bytes(0) => return Err(End::Io(io::ErrorKind::WriteZero.into())),
            Written::Bytes(n) => {
                self.state.queue.consume(n);
                self.state.last_write = now;
                self.state.stalled_since = now;
                if self.state.queue.is_empty() {
                    self.state.gate.emptied();
                    match wr.flush().now_or_never() {
                        Some(result) => {
                            result.map_err(End::Io)?;
                            *unflushed = false;
                        }
                        None => *unflushed = true,
                    }
                }
            }
            Written::Flushed => *unflushed = false,
        }
        Ok(())
    }

    /// Feeds the item just received, then whatever else is ready, to the handler, draining
    /// the session after each, until the source is empty or the high-water mark is reached.
    fn items(
        &mut self,
        now: Instant,
        first: Option<H::Item>,
    ) -> Result<(), End<H::Reason, S::Error>> {
        let mut item = Some(first);
        while let Some(next) = item.take() {
            let ended = next.is_none();
            let mut cx = Cx {
                session: &mut *self.session,
                now,
                state: &mut self.state,
            };
            self.handler.item(&mut cx, next).map_err(End::Handler)?;
            self.drain(now)?;
            if ended
                || self.state.closing.is_some()
                || self.state.queue.bytes() >= self.state.settings.high_water
            {
                break;
            }
            if let Poll::Ready(next) = self.handler.try_recv() {
                item = Some(next);
            }
        }
        Ok(())
    }

    /// The earliest deadline: the session's, the closing flush's, the backlog's, a stalled
    /// write's, read idleness, and the holds of reads and writes.
    fn deadline(&self, room: bool, reading: bool, writing: bool) -> Option<Instant> {
        let state = &self.state;
        let mut next = self.session.poll_timeout();
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at
                && next.is_none_or(|current| at < current)
            {
                next = Some(at);
            }
        };
        consider(state.closing.as_ref().map(|(_, at)| *at));
        if let (Some(budget), Some(oldest)) = (state.settings.backlog, state.queue.oldest()) {
            consider(Some(oldest + budget));
        }
        if let Some(stall) = state.settings.write_stall
            && !state.queue.is_empty()
        {
            consider(Some(state.stalled_since + stall));
        }
        if let Some(idle) = state.settings.read_idle {
            consider(Some(state.last_read + idle));
        }
        if room && !reading {
            consider(state.reads.next());
        }
        if !writing && !state.queue.is_empty() {
            consider(state.gate.due(state.settings.write_hold));
        }
        next
    }

    /// Acts on every deadline that has passed at `now`.
    fn expire(&mut self, now: Instant, reading: bool) -> Result<(), End<H::Reason, S::Error>> {
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now).map_err(End::Session)?;
        }
        if self
            .state
            .closing
            .as_ref()
            .is_some_and(|(_, at)| *at <= now)
            && let Some((end, _)) = self.state.closing.take()
        {
            return Err(end);
        }
        if let (Some(budget), Some(oldest)) =
            (self.state.settings.backlog, self.state.queue.oldest())
            && oldest + budget <= now
        {
            return Err(End::Backlog(budget));
        }
        if let Some(stall) = self.state.settings.write_stall
            && !self.state.queue.is_empty()
            && self.state.stalled_since + stall <= now
        {
            return Err(End::WriteStalled(stall));
        }
        if let Some(idle) = self.state.settings.read_idle
            && self.state.last_read + idle <= now
        {
            if !reading {
                // Not reading on purpose (a full queue): the peer is not idle, we are.
                self.state.last_read = now;
            } else {
                return Err(End::ReadIdle(idle));
            }
        }
        Ok(())
    }
}

impl<R, E> State<R, E> {
    /// Whether the queued bytes should be written at `now`: something urgent waits, or what
    /// waits has been held long enough, or the connection is closing.
    fn write_due(&self, now: Instant) -> bool {
        !self.queue.is_empty()
            && (self.closing.is_some() || self.gate.open(now, self.settings.write_hold))
    }
}

impl<S: Session, R> Cx<'_, S, R> {
    /// The session, to answer a request or feed it media.
    pub fn session(&mut self) -> &mut S {
        self.session
    }

    /// The instant of this wake-up.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Stamps the transmits this callback produces with `at`, the instant their content
    /// became live (a frame's arrival at ingest): the backlog is measured from it.
    pub fn stamp(&mut self, at: Instant) {
        self.state.stamp = at;
    }

    /// Marks what this callback queues as able to wait for the next urgent transmit (at
    /// most [`Settings::write_hold`]): a player's audio frame while video flows goes out
    /// with the next video frame, one write instead of two, and the video, the frames whose
    /// latency viewers notice, never waits.
    pub fn defer(&mut self) {
        self.state.deferring = true;
    }

    /// Unsent bytes in the outgoing queue.
    pub fn queued(&self) -> usize {
        self.state.queue.bytes()
    }

    /// The stamp of the oldest unsent byte.
    pub fn oldest(&self) -> Option<Instant> {
        self.state.queue.oldest()
    }

    /// The connection's settings, to change from now on (a publisher reads bigger chunks
    /// than a handshake needs and may go idle; a player may be held to batches).
    pub fn settings(&mut self) -> &mut Settings {
        &mut self.state.settings
    }

    /// Ends the connection with `reason` once what is queued has been written, or after the
    /// linger time. No more reads or items are taken meanwhile. A second close keeps the
    /// first reason.
    pub fn close(&mut self, reason: R) {
        if self.state.closing.is_none() {
            self.state.closing =
                Some((End::Handler(reason), self.now + self.state.settings.linger));
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            read_size: 4 * 1024,
            high_water: 512 * 1024,
            backlog: None,
            write_stall: None,
            read_idle: None,
            linger: Duration::from_secs(2),
            read_hold: Duration::ZERO,
            write_hold: Duration::ZERO,
            write_idle: Duration::ZERO,
            input_budget: None,
        }
    }
}

/// What one turn of the write branch did.
enum Written {
    /// Wrote this many bytes of the queue's front.
    Bytes(usize),
    /// Flushed what the stream buffered (the queue was empty).
    Flushed,
}

/// One vectored write of the queue's front pieces, or a flush when nothing is queued.
/// Cancel-safe: when another select branch wins, nothing was written (and a flush can be
/// asked again).
async fn write_some<W: AsyncWrite + Unpin>(wr: &mut W, queue: &OutQueue) -> io::Result<Written> {
    if queue.is_empty() {
        return wr.flush().await.map(|()| Written::Flushed);
    }
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let n = queue.slices(&mut slices);
    wr.write_vectored(&slices[..n]).await.map(Written::Bytes)
}

/// The monotonic clock, read once per wake-up: tokio's, so paused-time tests control it.
pub fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + FAR
}

/// A deadline that never comes, for the timer while nothing is due.
const FAR: Duration = Duration::from_secs(86_400 * 365);
/// Pieces the queue is sized for up front (a GOP's worth of frames and their audio).
const QUEUE_PIECES: usize = 256;
/// The most pieces one vectored write takes.
const MAX_SLICES: usize = 64;
