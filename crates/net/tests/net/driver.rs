//! The driver's loop on paused time: limits, holds, closing and stopping.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tributary_net::{End, InputBudget, Settings, run};

use crate::support::{Buffered, Counted, Item, Lines, Script, Why, counter, drive, item, items};

const MS: Duration = Duration::from_millis(1);

/// An urgent item of `len` bytes, stamped when it is taken.
fn frame(len: usize) -> Item {
    Item {
        bytes: Bytes::from(vec![7u8; len]),
        stamp: None,
        defer: false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_peer_hits_the_high_water_mark_and_is_cut_after_its_backlog() {
    // The peer never reads: 4 KiB fit in the pipe, the rest waits in our queue.
    let (ours, _peer) = duplex(4 * 1024);
    let (tx, rx) = items(256);
    for _ in 0..100 {
        tx.try_send(frame(16 * 1024)).unwrap();
    }
    let settings = Settings {
        high_water: 64 * 1024,
        backlog: Some(Duration::from_secs(3)),
        ..Settings::default()
    };
    let start = Instant::now();
    let mut session = Lines::default();
    let mut script = Script::new(rx);
    let end = run(
        ours,
        &mut session,
        &mut script,
        settings,
        &CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(end, End::Backlog(after) if after == Duration::from_secs(3)),
        "{end:?}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "cut exactly at the backlog budget"
    );
    // Items were pulled only up to the high-water mark (64 KiB queued plus the one that
    // crossed it, and what the pipe took): the rest stayed with the source.
    let taken = 100 - script.items.len();
    assert!((4..=6).contains(&taken), "{taken} items taken");
}

#[tokio::test(start_paused = true)]
async fn a_backlog_counts_from_when_the_content_became_live() {
    let (ours, _peer) = duplex(1024);
    let (tx, rx) = items(4);
    // A frame that arrived at ingest 2 s before it reached this connection.
    sleep(Duration::from_secs(5)).await;
    let old = Item {
        stamp: Some((Instant::now() - Duration::from_secs(2)).into_std()),
        ..frame(8 * 1024)
    };
    tx.try_send(old).unwrap();
    let settings = Settings {
        backlog: Some(Duration::from_secs(3)),
        ..Settings::default()
    };
    let start = Instant::now();
    let end = drive(ours, rx, settings).await;
    assert!(matches!(end, End::Backlog(_)), "{end:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_reads_nothing_is_cut_after_the_write_stall() {
    let (ours, _peer) = duplex(4 * 1024);
    let (tx, rx) = items(4);
    tx.try_send(frame(64 * 1024)).unwrap();
    let settings = Settings {
        write_stall: Some(Duration::from_secs(5)),
        ..Settings::default()
    };
    let start = Instant::now();
    let end = drive(ours, rx, settings).await;
    assert!(
        matches!(end, End::WriteStalled(after) if after == Duration::from_secs(5)),
        "{end:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn writes_go_at_once_when_idle_and_coalesce_under_load() {
    let (ours, mut peer) = duplex(1 << 20);
    let writes = counter();
    let io = Counted {
        inner: ours,
        writes: writes.clone(),
    };
    let (tx, rx) = items(64);
    let settings = Settings {
        write_hold: Duration::from_millis(100),
        ..Settings::default()
    };
    let driver = tokio::spawn(async move {
        let mut script = Script::new(rx);
        run(
            io,
            &mut Lines::default(),
            &mut script,
            settings,
            &CancellationToken::new(),
        )
        .await
    });
    let mut buf = vec![0u8; 4096];

    // Idle: each frame goes out the moment it comes, in a write of its own.
    for round in 1..=3 {
        let sent = Instant::now();
        tx.send(item("V\n", false)).await.unwrap();
        let n = peer.read(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], sent.elapsed()), (&b"V\n"[..], Duration::ZERO));
        assert_eq!(writes.load(Ordering::SeqCst), round);
        sleep(50 * MS).await;
    }

    // Load: 40 frames ready at one wake-up go out in one write.
    for _ in 0..40 {
        tx.try_send(item("x", false)).unwrap();
    }
    let mut got = 0;
    while got < 40 {
        got += peer.read(&mut buf).await.unwrap();
    }
    assert_eq!(
        writes.load(Ordering::SeqCst),
        4,
        "one write for the 40 frames"
    );

    // Frames that may wait ride with the next urgent one: one write, when it comes...
    let feeder = tx.clone();
    let start = Instant::now();
    tokio::spawn(async move {
        feeder.send(item("a1", true)).await.unwrap();
        sleep(10 * MS).await;
        feeder.send(item("a2", true)).await.unwrap();
        sleep(23 * MS).await;
        feeder.send(item("V1", false)).await.unwrap();
    });
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], start.elapsed()), (&b"a1a2V1"[..], 33 * MS));
    assert_eq!(writes.load(Ordering::SeqCst), 5);

    // ...or once the first of them has waited the hold.
    let start = Instant::now();
    tx.send(item("a3", true)).await.unwrap();
    sleep(40 * MS).await;
    tx.send(item("a4", true)).await.unwrap();
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], start.elapsed()), (&b"a3a4"[..], 100 * MS));
    assert_eq!(writes.load(Ordering::SeqCst), 6);

    drop(tx);
    let end = driver.await.unwrap();
    assert!(matches!(end, End::Handler(Why::SourceEnded)), "{end:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_hold_frames_that_may_wait_go_at_once() {
    let (ours, mut peer) = duplex(1 << 16);
    let (tx, rx) = items(4);
    tokio::spawn(async move { drive(ours, rx, Settings::default()).await });
    let start = Instant::now();
    tx.send(item("a1", true)).await.unwrap();
    let mut buf = [0u8; 16];
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], start.elapsed()), (&b"a1"[..], Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn input_reaches_the_session_and_its_answers_go_out() {
    let (ours, mut peer) = duplex(1 << 16);
    let (_tx, rx) = items(1);
    let driver = tokio::spawn(async move {
        let mut script = Script::new(rx);
        let end = run(
            ours,
            &mut Lines::default(),
            &mut script,
            Settings::default(),
            &CancellationToken::new(),
        )
        .await;
        (end, script.lines)
    });
    peer.write_all(b"hello\nwor").await.unwrap();
    peer.write_all(b"ld\nclose\n").await.unwrap();
    let mut answer = String::new();
    peer.read_to_string(&mut answer).await.unwrap();
    assert_eq!(
        answer, "ack hello\nack world\nbye\n",
        "answers in order, then EOF"
    );
    let (end, lines) = driver.await.unwrap();
    assert!(matches!(end, End::Handler(Why::Asked)), "{end:?}");
    assert_eq!(lines, ["hello", "world"]);
}

#[tokio::test(start_paused = true)]
async fn a_handler_error_ends_the_connection_at_once() {
    let (ours, mut peer) = duplex(1 << 16);
    let (_tx, rx) = items(1);
    peer.write_all(b"fail\n").await.unwrap();
    let end = drive(ours, rx, Settings::default()).await;
    assert!(matches!(end, End::Handler(Why::Failed)), "{end:?}");
}

#[tokio::test(start_paused = true)]
async fn the_sessions_own_deadline_ends_the_connection() {
    let (ours, _peer) = duplex(1024);
    let (_tx, rx) = items(1);
    let start = Instant::now();
    let mut session = Lines::until((start + Duration::from_secs(2)).into_std());
    let end = run(
        ours,
        &mut session,
        &mut Script::new(rx),
        Settings::default(),
        &CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(&end, End::Session(e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{end:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_cut_after_read_idle_counted_from_its_last_bytes() {
    let (ours, mut peer) = duplex(1 << 16);
    let (_tx, rx) = items(1);
    let settings = Settings {
        read_idle: Some(Duration::from_secs(5)),
        ..Settings::default()
    };
    let start = Instant::now();
    let driver = tokio::spawn(async move {
        let mut script = Script::new(rx);
        let end = run(
            ours,
            &mut Lines::default(),
            &mut script,
            settings,
            &CancellationToken::new(),
        )
        .await;
        (end, script.lines.len())
    });
    for _ in 0..4 {
        peer.write_all(b"tick\n").await.unwrap();
        sleep(Duration::from_secs(1)).await;
    }
    let (end, lines) = driver.await.unwrap();
    assert!(matches!(end, End::ReadIdle(_)), "{end:?}");
    assert_eq!(lines, 4);
    // The last bytes came at 3 s: cut at 8 s, not at the 5 s the first deadline said.
    assert_eq!(start.elapsed(), Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn a_closing_connection_that_cannot_flush_ends_after_the_linger() {
    let (ours, _peer) = duplex(1024);
    let (tx, rx) = items(2);
    tx.try_send(frame(64 * 1024)).unwrap();
    drop(tx); // the source ends: the handler closes
    let start = Instant::now();
    let end = drive(ours, rx, Settings::default()).await;
    assert!(matches!(end, End::Handler(Why::SourceEnded)), "{end:?}");
    assert_eq!(start.elapsed(), Settings::default().linger);
}

#[tokio::test(start_paused = true)]
async fn the_stop_signal_lets_the_handler_say_goodbye() {
    let (ours, mut peer) = duplex(1 << 16);
    let (_tx, rx) = items(1);
    let stop = CancellationToken::new();
    let signal = stop.clone();
    let driver = tokio::spawn(async move {
        run(
            ours,
            &mut Lines::default(),
            &mut Script::new(rx),
            Settings::default(),
            &signal,
        )
        .await
    });
    sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let mut said = String::new();
    peer.read_to_string(&mut said).await.unwrap();
    assert_eq!(said, "stopping\n");
    assert!(matches!(driver.await.unwrap(), End::Stopped));
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_buffers_writes_is_flushed() {
    let (ours, mut peer) = duplex(1 << 16);
    let io = Buffered {
        inner: ours,
        held: Vec::new(),
    };
    let (tx, rx) = items(2);
    tokio::spawn(async move { drive(io, rx, Settings::default()).await });
    tx.send(item("held until flushed", false)).await.unwrap();
    let mut buf = [0u8; 64];
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"held until flushed");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_closes_ends_the_connection() {
    let (ours, peer) = duplex(1024);
    let (_tx, rx) = items(1);
    drop(peer);
    let end = drive(ours, rx, Settings::default()).await;
    assert!(matches!(end, End::PeerClosed | End::Io(_)), "{end:?}");
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_writes_what_may_wait_at_once() {
    let (ours, mut peer) = duplex(1 << 16);
    let (tx, rx) = items(8);
    let settings = Settings {
        write_hold: Duration::from_millis(100),
        write_idle: Duration::from_millis(15),
        ..Settings::default()
    };
    tokio::spawn(async move { drive(ours, rx, settings).await });
    let mut buf = [0u8; 64];
    let start = Instant::now();
    tx.send(item("V0", false)).await.unwrap();
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], start.elapsed()), (&b"V0"[..], Duration::ZERO));
    // 5 ms after a write the connection is busy: this waits for the next urgent one...
    sleep(5 * MS).await;
    tx.send(item("a1", true)).await.unwrap();
    sleep(28 * MS).await;
    tx.send(item("V1", false)).await.unwrap();
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], start.elapsed()), (&b"a1V1"[..], 33 * MS));
    // ...20 ms after one it is idle: this goes at once.
    sleep(20 * MS).await;
    tx.send(item("a2", true)).await.unwrap();
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], start.elapsed()), (&b"a2"[..], 53 * MS));
}

#[tokio::test(start_paused = true)]
async fn the_connection_that_spends_the_shared_input_budget_is_the_one_cut() {
    let budget = InputBudget::new(10 * 1024);
    let settings = Settings {
        input_budget: Some(budget.clone()),
        ..Settings::default()
    };
    let run_one = |settings: Settings| {
        let (ours, peer) = duplex(64 * 1024);
        let (_tx, rx) = items(1);
        let task = tokio::spawn(async move {
            // The handler's source stays open: the connection ends only by the budget or the
            // peer.
            let _tx = _tx;
            drive(ours, rx, settings).await
        });
        (peer, task)
    };

    // A holds 6 KiB of an unfinished line.
    let (mut a, a_task) = run_one(settings.clone());
    a.write_all(&[b'a'; 6 * 1024]).await.unwrap();
    sleep(MS).await;
    assert_eq!(budget.used(), 6 * 1024);

    // B's 6 KiB would make 12: B is cut, A is not.
    let (mut b, b_task) = run_one(settings.clone());
    b.write_all(&[b'b'; 6 * 1024]).await.unwrap();
    let end = b_task.await.unwrap();
    assert!(matches!(end, End::InputBudget(10_240)), "{end}");
    assert_eq!(budget.used(), 6 * 1024, "B's share is given back");
    assert!(!a_task.is_finished());

    // A finishes its line: it holds nothing, and C fits.
    a.write_all(b"\n").await.unwrap();
    sleep(MS).await;
    assert_eq!(budget.used(), 0);
    let (mut c, c_task) = run_one(settings);
    c.write_all(&[b'c'; 9 * 1024]).await.unwrap();
    sleep(MS).await;
    assert_eq!(budget.used(), 9 * 1024);
    drop(c);
    assert!(matches!(c_task.await.unwrap(), End::PeerClosed));
    assert_eq!(budget.used(), 0, "a closed connection gives its share back");
    drop(a);
    assert!(matches!(a_task.await.unwrap(), End::PeerClosed));
}
