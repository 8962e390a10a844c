//! Finished media in sealed memory files, sent to sockets without a copy per viewer.
//!
//! # Why
//!
//! A live segment is written once and then sent to every viewer of the stream: a 750 KB HLS
//! segment to a thousand players is 750 MB of `write`s. A `write` copies its bytes into the
//! socket's buffers, once per connection, and on this path that copy was most of the server's
//! CPU (57 % in `_copy_from_iter` at 1 000 connections, bench/RESULTS.md (6)). nginx serving the
//! same file from disk does not pay it: `sendfile` hands the socket references to the file's
//! page-cache pages, so every connection's packets point at one shared copy.
//!
//! [`sealed`] gives a finished segment that same shape without touching a disk: its bytes are
//! written once into a memory file (`memfd_create`), sealed so nothing can change or resize it
//! again, and mapped read-only. The mapping is what the rest of the server sees, an ordinary
//! [`Bytes`]; the memory is the file's pages, counted once. When an HTTP response body is such
//! a mapping, [`poll_write_vectored`] sends it with `sendfile` from the file at the matching
//! offset instead of writing the mapped bytes, so the kernel references the pages instead of
//! copying them. Every other write (headers, playlists, API bodies, memory from the heap) is a
//! plain `writev`.
//!
//! # How a write finds its file
//!
//! hyper sees bodies only as `Bytes` and writes them through `AsyncWrite` as slices, so the
//! socket side gets an address, not a file. Every sealed mapping is listed in one process-wide
//! table by its address range; a write of at least [`MIN_SENDFILE`] bytes looks its first byte
//! up there (a read lock and a B-tree step; smaller writes never look). The entry leaves the
//! table before its mapping is unmapped, and a slice being written keeps its `Bytes` (and so its
//! mapping) alive, so an address found in the table is always the file's. A response is sent as
//! its head with `MSG_MORE` and then its body with `sendfile`, so the two still share packets.
//!
//! # Limits
//!
//! Each sealed segment holds a descriptor. [`set_limit`] caps how many exist at once (the
//! binary gives them a quarter of the open-file limit, HTTP connections half); past the cap, or
//! when the kernel refuses a memory file, [`sealed`] returns `None` and the caller keeps its
//! bytes in ordinary memory, which are then written as before.
//!
//! The memory file and its read-only mapping come from `shmem-ipc` (with `memfd` and
//! `memmap2`): it maps a memory file only once the file is sealed against writes and shrinking,
//! which is what makes the mapping safe to hand out as `&[u8]`; our crates forbid `unsafe`.
//! `sendfile` and `sendmsg` are rustix's.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use rustix::net::{SendAncillaryBuffer, SendFlags};
use shmem_ipc::mem::mfd::{FileSeal, Memfd, MemfdOptions};
use shmem_ipc::mem::mmap::Mmap;
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

/// Writes shorter than this are written, never looked up: a playlist, a header block or a
/// small part gains nothing from `sendfile` and would only pay for the lookup.
pub const MIN_SENDFILE: usize = 16 * 1024;

/// Sealed segments allowed at once when [`set_limit`] was never called.
const DEFAULT_LIMIT: usize = 1024;

/// Every live sealed mapping, by the address of its first byte.
static REGIONS: RwLock<BTreeMap<usize, Region>> = RwLock::new(BTreeMap::new());
/// Sealed segments alive now (each holds one descriptor).
static HELD: AtomicUsize = AtomicUsize::new(0);
/// The most that may be alive at once.
static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);
/// Whether the cap was met once already (it is logged once per process).
static CAP_WARNED: AtomicBool = AtomicBool::new(false);
/// Bytes sent with `sendfile` since the process started.
static SENT: AtomicU64 = AtomicU64::new(0);

/// One sealed mapping as the table lists it.
#[derive(Debug)]
struct Region {
    /// One past the mapping's last byte.
    end: usize,
    file: Arc<Memfd>,
}

/// Caps the sealed segments alive at once (each holds one open descriptor).
pub fn set_limit(files: usize) {
    LIMIT.store(files, Ordering::Relaxed);
}

/// Sealed segments alive now.
pub fn held() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// Bytes sent with `sendfile` since the process started.
pub fn sent_bytes() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// `data` copied into a sealed memory file and mapped read-only, or `None` when `data` is
/// empty, the cap of [`set_limit`] is reached or the kernel refuses (the caller keeps its
/// bytes where they are).
pub fn sealed(data: &[u8]) -> Option<Bytes> {
    if data.is_empty() {
        return None;
    }
    let limit = LIMIT.load(Ordering::Relaxed);
    let placed = HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < limit).then_some(n + 1)
    });
    if placed.is_err() {
        if !CAP_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                cap = limit,
                "sealed segments at their cap: further segments are held in ordinary memory"
            );
        }
        return None;
    }
    match Sealed::new(data) {
        Ok(sealed) => Some(Bytes::from_owner(sealed)),
        Err(e) => {
            HELD.fetch_sub(1, Ordering::AcqRel);
            tracing::debug!(error = %e, len = data.len(), "cannot seal a segment in a memory file");
            None
        }
    }
}

/// The owner behind a sealed segment's [`Bytes`].
struct Sealed {
    map: Mmap,
    /// The address the table lists it by.
    start: usize,
}

impl Sealed {
    fn new(data: &[u8]) -> io::Result<Self> {
        let file = MemfdOptions::default()
            .allow_sealing(true)
            .close_on_exec(true)
            .create("tributary-segment")
            .map_err(io::Error::other)?;
        file.as_file().write_all(data)?;
        let seals = [
            FileSeal::SealShrink,
            FileSeal::SealGrow,
            FileSeal::SealWrite,
            FileSeal::SealSeal,
        ];
        file.add_seals(&seals.into_iter().collect())
            .map_err(io::Error::other)?;
        let map = shmem_ipc::mem::read_memfd(&file).map_err(io::Error::other)?;
        if map.len() != data.len() {
            return Err(io::Error::other("memory file mapped at a different length"));
        }
        let start = map.as_ptr().addr();
        let region = Region {
            end: start + map.len(),
            file: Arc::new(file),
        };
        write_table().insert(start, region);
        Ok(Self { map, start })
    }
}

impl AsRef<[u8]> for Sealed {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        // Out of the table before `map` is unmapped (fields drop after this), so no lookup
        // can find an address the system may hand to another mapping.
        write_table().remove(&self.start);
        HELD.fetch_sub(1, Ordering::AcqRel);
    }
}

fn read_table() -> RwLockReadGuard<'static, BTreeMap<usize, Region>> {
    REGIONS.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_table() -> RwLockWriteGuard<'static, BTreeMap<usize, Region>> {
    REGIONS.write().unwrap_or_else(PoisonError::into_inner)
}

/// Where `slice` lies in a sealed file: the file, the offset and how many of the slice's bytes
/// the file holds from there. `None` for memory that is not a sealed segment.
fn lookup(slice: &[u8]) -> Option<(Arc<Memfd>, u64, usize)> {
    let at = slice.as_ptr().addr();
    let table = read_table();
    let (start, region) = table.range(..=at).next_back()?;
    if at >= region.end {
        return None;
    }
    let offset = u64::try_from(at - start).ok()?;
    Some((
        Arc::clone(&region.file),
        offset,
        slice.len().min(region.end - at),
    ))
}

/// Writes `bufs` to `stream` as `writev` would, except that a sealed segment among them is sent
/// with `sendfile`: the slices before it go first (with `MSG_MORE`), then the segment's bytes.
/// Like `writev`, it may write fewer bytes than given; the caller writes the rest next.
pub fn poll_write_vectored(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let found = bufs
        .iter()
        .enumerate()
        .filter(|(_, buf)| buf.len() >= MIN_SENDFILE)
        .find_map(|(index, buf)| lookup(buf).map(|hit| (index, hit)));
    match found {
        None => Pin::new(stream).poll_write_vectored(cx, bufs),
        Some((0, (file, offset, len))) => poll_sendfile(stream, cx, &file, offset, len),
        Some((index, _)) => poll_send_more(stream, cx, &bufs[..index]),
    }
}

/// `sendfile` of `len` bytes of `file` from `offset`, once the socket can take some.
fn poll_sendfile(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    file: &Memfd,
    offset: u64,
    len: usize,
) -> Poll<io::Result<usize>> {
    poll_send(stream, cx, || {
        let mut at = offset;
        rustix::fs::sendfile(stream, file.as_file(), Some(&mut at), len)
    })
    .map_ok(|n| {
        SENT.fetch_add(n as u64, Ordering::Relaxed);
        n
    })
}

/// `bufs` with `MSG_MORE`: a response's head, held back to share packets with the body that
/// follows at once.
fn poll_send_more(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    poll_send(stream, cx, || {
        rustix::net::sendmsg(
            stream,
            bufs,
            &mut SendAncillaryBuffer::default(),
            SendFlags::MORE | SendFlags::NOSIGNAL,
        )
    })
}

/// Runs the non-blocking `send` once the socket is writable, waiting again each time it
/// would block.
fn poll_send(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    mut send: impl FnMut() -> rustix::io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_io(Interest::WRITABLE, || send().map_err(Into::into)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            result => return Poll::Ready(result),
        }
    }
}

#[cfg(test)]
mod tests;
