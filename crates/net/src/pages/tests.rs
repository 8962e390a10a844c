use std::future::poll_fn;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Buf;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket};

use super::*;

/// The table and the limit are process-wide: these tests take turns, so an address one test
/// frees is not mapped again by another while the first still asserts on it.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn a_sealed_segment_keeps_its_bytes_and_is_listed_while_it_lives() {
    let _turn = serial();
    let data = pattern(300_000, 7);
    let bytes = sealed(&data).expect("sealed");
    assert_eq!(bytes, data);
    assert_eq!(bytes.slice(1000..2000), data[1000..2000]);

    let (_, offset, len) = lookup(&bytes).expect("listed");
    assert_eq!((offset, len), (0, data.len()));
    let (_, offset, len) = lookup(&bytes[123_456..]).expect("listed");
    assert_eq!((offset, len), (123_456, data.len() - 123_456));
    assert!(lookup(&data).is_none(), "heap memory is not a sealed file");

    let start = bytes.as_ptr().addr();
    let clone = bytes.clone();
    drop(bytes);
    assert!(read_table().contains_key(&start), "a clone still holds it");
    drop(clone);
    assert!(
        !read_table().contains_key(&start),
        "the last drop unlists it"
    );
}

#[test]
fn the_memory_file_is_sealed_against_change() {
    let _turn = serial();
    let bytes = sealed(&pattern(50_000, 1)).expect("sealed");
    let (file, _, _) = lookup(&bytes).expect("listed");
    let seals = file.seals().expect("seals");
    for seal in [
        FileSeal::SealWrite,
        FileSeal::SealShrink,
        FileSeal::SealGrow,
        FileSeal::SealSeal,
    ] {
        assert!(seals.contains(&seal), "{seal:?} missing");
    }
    assert!(
        file.as_file().write_all(b"x").is_err(),
        "writes are refused"
    );
}

#[test]
fn nothing_is_sealed_past_the_limit_or_when_empty() {
    let _turn = serial();
    assert!(sealed(&[]).is_none());
    let held_before = held();
    set_limit(held_before + 1);
    let first = sealed(&pattern(20_000, 2)).expect("under the limit");
    assert!(sealed(&pattern(20_000, 3)).is_none(), "at the limit");
    drop(first);
    let again = sealed(&pattern(20_000, 4));
    set_limit(DEFAULT_LIMIT);
    assert!(again.is_some(), "a place was freed");
}

/// Writes every chunk through [`poll_write_vectored`] as hyper does: all remaining chunks at
/// once, advancing by what each call took.
async fn write_chunks(stream: &mut TcpStream, mut chunks: Vec<Bytes>) {
    while chunks.iter().any(Buf::has_remaining) {
        let n = poll_fn(|cx| {
            let slices: Vec<IoSlice<'_>> = chunks
                .iter()
                .filter(|c| c.has_remaining())
                .map(|c| IoSlice::new(c))
                .collect();
            poll_write_vectored(stream, cx, &slices)
        })
        .await
        .expect("written");
        assert!(n > 0, "a write took nothing");
        let mut left = n;
        for chunk in chunks.iter_mut().filter(|c| c.has_remaining()) {
            let step = left.min(chunk.remaining());
            chunk.advance(step);
            left -= step;
        }
    }
}

#[tokio::test]
async fn responses_mixing_heap_and_sealed_bytes_arrive_whole_through_a_slow_reader() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let segment = pattern(1_500_000, 9);
    let (body, part) = {
        let _turn = serial();
        let body = sealed(&segment).expect("sealed");
        let part = body.slice(100_000..700_000);
        (body, part)
    };
    let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\ncontent-length: 1500000\r\n\r\n");
    let tail = Bytes::from(pattern(40_000, 3)); // large, but heap: written
    let mut expected = Vec::new();
    for chunk in [&head, &body, &head, &part, &tail] {
        expected.extend_from_slice(chunk);
    }
    let sent_before = sent_bytes();

    let reader = tokio::spawn(async move {
        let (mut peer, _) = listener.accept().await.expect("accept");
        let mut got = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = peer.read(&mut buf).await.expect("read");
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            // Slow at first, so the sender meets a full socket and waits for room.
            if got.len() < 600_000 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(32 * 1024).expect("sndbuf");
    let mut stream = socket.connect(addr).await.expect("connect");
    write_chunks(
        &mut stream,
        vec![head.clone(), body.clone(), head, part.clone(), tail],
    )
    .await;
    drop(stream);
    let got = reader.await.expect("reader");
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the bytes differ");
    // Each sealed chunk goes by sendfile but for a last remainder under MIN_SENDFILE, which a
    // partial send may leave and which is written.
    let sent = sent_bytes() - sent_before;
    let least = body.len() + part.len() - 2 * MIN_SENDFILE;
    assert!(
        sent >= least as u64,
        "sealed bytes went by sendfile ({sent} bytes, {least} at least)"
    );
}
