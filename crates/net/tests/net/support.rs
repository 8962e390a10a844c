//! A line-based session and a scripted handler to drive it, and an I/O wrapper that counts
//! writes.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tributary_media::{Output, Session};
use tributary_net::{Cx, End, Handler, Settings};

/// A session that turns input into lines and sends what it is given.
#[derive(Default)]
pub(crate) struct Lines {
    partial: Vec<u8>,
    out: VecDeque<Output<String>>,
    /// When the session gives up waiting (like RTMP's intent deadline).
    deadline: Option<Instant>,
}

impl Lines {
    /// A session that gives up at `deadline`.
    pub(crate) fn until(deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..Self::default()
        }
    }

    pub(crate) fn send(&mut self, bytes: Bytes) {
        self.out.push_back(Output::Transmit(bytes));
    }
}

impl Session for Lines {
    type Event = String;
    type Error = io::Error;

    fn handle_input(&mut self, _now: Instant, input: &[u8]) -> io::Result<()> {
        self.partial.extend_from_slice(input);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            self.out.push_back(Output::Event(text));
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: Instant) -> io::Result<()> {
        match self.deadline {
            Some(at) if now >= at => Err(io::ErrorKind::TimedOut.into()),
            _ => Ok(()),
        }
    }

    fn poll_output(&mut self) -> Option<Output<String>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn buffered(&self) -> usize {
        self.partial.len()
    }
}

/// What the test feeds the handler.
pub(crate) struct Item {
    pub(crate) bytes: Bytes,
    /// When its content became live (defaults to the wake-up's `now`).
    pub(crate) stamp: Option<Instant>,
    /// Whether it may wait for the next urgent item.
    pub(crate) defer: bool,
}

/// Why the scripted handler ends a connection.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Why {
    #[error("asked to close")]
    Asked,
    #[error("asked to fail")]
    Failed,
    #[error("the source ended")]
    SourceEnded,
}

/// Lines in: `close` closes after a goodbye, `fail` fails at once, anything else is recorded
/// and acknowledged. Items in: sent as they are.
pub(crate) struct Script {
    pub(crate) items: mpsc::Receiver<Item>,
    pub(crate) lines: Vec<String>,
    pub(crate) receiving: bool,
}

impl Script {
    pub(crate) fn new(items: mpsc::Receiver<Item>) -> Self {
        Self {
            items,
            lines: Vec::new(),
            receiving: true,
        }
    }
}

impl Handler<Lines> for Script {
    type Item = Item;
    type Reason = Why;

    fn event(&mut self, cx: &mut Cx<'_, Lines, Why>, line: String) -> Result<(), Why> {
        match line.as_str() {
            "close" => {
                cx.session().send(Bytes::from_static(b"bye\n"));
                cx.close(Why::Asked);
            }
            "fail" => return Err(Why::Failed),
            _ => {
                cx.session().send(Bytes::from(format!("ack {line}\n")));
                self.lines.push(line);
            }
        }
        Ok(())
    }

    fn receiving(&self) -> bool {
        self.receiving
    }

    async fn recv(&mut self) -> Option<Item> {
        self.items.recv().await
    }

    fn try_recv(&mut self) -> Poll<Option<Item>> {
        match self.items.try_recv() {
            Ok(item) => Poll::Ready(Some(item)),
            Err(mpsc::error::TryRecvError::Empty) => Poll::Pending,
            Err(mpsc::error::TryRecvError::Disconnected) => Poll::Ready(None),
        }
    }

    fn item(&mut self, cx: &mut Cx<'_, Lines, Why>, item: Option<Item>) -> Result<(), Why> {
        let Some(item) = item else {
            cx.close(Why::SourceEnded);
            return Ok(());
        };
        if let Some(stamp) = item.stamp {
            cx.stamp(stamp);
        }
        if item.defer {
            cx.defer();
        }
        cx.session().send(item.bytes);
        Ok(())
    }

    fn stop(&mut self, cx: &mut Cx<'_, Lines, Why>) {
        cx.session().send(Bytes::from_static(b"stopping\n"));
    }
}

/// Counts the writes that reach the inner stream (vectored or not).
pub(crate) struct Counted<T> {
    pub(crate) inner: T,
    pub(crate) writes: Arc<AtomicUsize>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(_))) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(_))) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Holds what is written until flushed, as a TLS stream does with its records.
pub(crate) struct Buffered<T> {
    pub(crate) inner: T,
    pub(crate) held: Vec<u8>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Buffered<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Buffered<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while !this.held.is_empty() {
            match Pin::new(&mut this.inner).poll_write(cx, &this.held) {
                Poll::Ready(Ok(n)) => {
                    this.held.drain(..n);
                }
                other => return other.map(|r| r.map(|_| ())),
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Runs a fresh [`Lines`] session over `io` with a [`Script`] fed by `items`, never stopped.
pub(crate) async fn drive<IO>(
    io: IO,
    items: mpsc::Receiver<Item>,
    settings: Settings,
) -> End<Why, io::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let stop = CancellationToken::new();
    tributary_net::run(
        io,
        &mut Lines::default(),
        &mut Script::new(items),
        settings,
        &stop,
    )
    .await
}

/// Items for a channel of room `capacity`.
pub(crate) fn items(capacity: usize) -> (mpsc::Sender<Item>, mpsc::Receiver<Item>) {
    mpsc::channel(capacity)
}

pub(crate) fn item(text: &'static str, defer: bool) -> Item {
    Item {
        bytes: Bytes::from_static(text.as_bytes()),
        stamp: None,
        defer,
    }
}

pub(crate) fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}
