//! The one outgoing queue of a connection: transmits waiting for the socket, with the age of
//! each.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Instant;

use bytes::{Buf, Bytes};

/// The transmits of one connection waiting for the socket, in order.
///
/// Bounded by its driver, not by itself: the driver stops producing (reading the socket,
/// pulling items from its handler) once [`bytes`](Self::bytes) reaches the high-water mark, so
/// the queue holds at most that plus what one call produced. Each piece carries a stamp, the
/// instant its content became live (for media, the frame's arrival at ingest): the front stamp
/// says how far behind live the peer is.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// Pieces in sending order; the front one may be partly written already.
    pieces: VecDeque<(Bytes, Instant)>,
    /// Unsent bytes in `pieces`.
    bytes: usize,
}

impl OutQueue {
    /// An empty queue with room for `pieces` transmits before it reallocates.
    pub fn with_capacity(pieces: usize) -> Self {
        Self {
            pieces: VecDeque::with_capacity(pieces),
            bytes: 0,
        }
    }

    /// Queues `bytes` (empty ones are ignored) stamped `stamp`.
    pub fn push(&mut self, bytes: Bytes, stamp: Instant) {
        if bytes.is_empty() {
            return;
        }
        self.bytes += bytes.len();
        self.pieces.push_back((bytes, stamp));
    }

    /// Unsent bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The stamp of the oldest unsent piece.
    pub fn oldest(&self) -> Option<Instant> {
        self.pieces.front().map(|(_, stamp)| *stamp)
    }

    /// Fills `slices` with the front pieces for one vectored write; returns how many.
    pub fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for ((piece, _), slot) in self.pieces.iter().zip(slices.iter_mut()) {
            *slot = IoSlice::new(piece);
            n += 1;
        }
        n
    }

    /// Drops the first `n` bytes, which were written.
    pub fn consume(&mut self, mut n: usize) {
        self.bytes -= n.min(self.bytes);
        while n > 0 {
            let Some((front, _)) = self.pieces.front_mut() else {
                return;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.pieces.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn consume_crosses_pieces_and_keeps_stamps() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let mut q = OutQueue::with_capacity(4);
        q.push(Bytes::from_static(b"abc"), t0);
        q.push(Bytes::new(), t0);
        q.push(Bytes::from_static(b"defg"), t1);
        assert_eq!((q.bytes(), q.oldest()), (7, Some(t0)));

        let mut slices = [IoSlice::new(&[]); 8];
        let n = q.slices(&mut slices);
        assert_eq!(n, 2);
        assert_eq!(&*slices[1], b"defg");

        q.consume(4);
        assert_eq!((q.bytes(), q.oldest()), (3, Some(t1)));
        let mut slices = [IoSlice::new(&[]); 8];
        let n = q.slices(&mut slices);
        assert_eq!((n, &*slices[0]), (1, &b"efg"[..]));
        q.consume(3);
        assert!(q.is_empty());
        assert_eq!(q.oldest(), None);
    }
}
