//! Turns: how many end-to-end tests run at once.
//!
//! Each test that starts a server takes a turn first and holds it to its end. The machine
//! has [`seats`] (four unless `E2E_SEATS` says otherwise) and a turn takes some of them:
//!
//! - [`alone`], every seat: the test asserts a gap or a latency in milliseconds, or floods a
//!   listener, and anything beside it would be in its numbers.
//! - [`heavy`], all seats but one: the test transcodes or drives a browser (about 40% of two
//!   cores). One light test may run beside it; another heavy one may not (two FFmpeg ladders
//!   and a browser at once starve hls.js, which then stalls for what is not the server's
//!   fault).
//! - [`shared`], one seat: `-c copy` senders, ffprobe or curl readers, API calls; a few
//!   percent of a core each.
//!
//! Turns are granted in the order they were asked for, so a test waiting for many seats is not
//! overtaken by a stream of light ones: it waits for the seated ones to leave, and those asking
//! after it wait for it. Tests that take no turn start no server (static checks of the source
//! tree).
//!
//! When `E2E_TIMES_FILE` names a file, each turn's end appends one line to it (see [`Turn`]);
//! `scripts/test` prints the sums and the slowest tests, so every run's log shows what the
//! suite's wall time is made of.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Seats when `E2E_SEATS` does not say: four light tests, or one heavy and one light, at once
/// on two cores.
const DEFAULT_SEATS: u32 = 4;

/// How many light tests may run together: `E2E_SEATS` (at least 1; 1 runs every test alone).
pub(crate) fn seats() -> u32 {
    std::env::var("E2E_SEATS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(DEFAULT_SEATS)
        .max(1)
}

/// The queue: tickets in asking order, and the seats taken.
struct Table {
    next_ticket: u64,
    serving: u64,
    taken: u32,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    next_ticket: 0,
    serving: 0,
    taken: 0,
});
static CHANGED: Condvar = Condvar::new();

/// The table, whatever a panicking holder left (no code panics while holding it).
fn table() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A test's turn, held until the test ends.
///
/// When `E2E_TIMES_FILE` names a file, its drop appends one tab-separated line: seconds run,
/// seconds waited for the turn, the test's name, `alone`, `heavy` or `shared`, and the Unix
/// time the turn began.
pub(crate) struct Turn {
    weight: u32,
    waited: Duration,
    began: Instant,
    began_at: SystemTime,
}

/// Every seat: the test runs with no other turn held.
pub(crate) fn alone() -> Turn {
    take(seats())
}

/// Every seat but one: beside one light test at most.
pub(crate) fn heavy() -> Turn {
    take(seats().saturating_sub(1).max(1))
}

/// One seat, beside other light tests or one heavy one.
pub(crate) fn shared() -> Turn {
    take(1)
}

fn take(weight: u32) -> Turn {
    let asked = Instant::now();
    let mut table = table();
    let ticket = table.next_ticket;
    table.next_ticket += 1;
    while table.serving != ticket || table.taken + weight > seats() {
        table = CHANGED.wait(table).unwrap_or_else(|p| p.into_inner());
    }
    table.serving += 1;
    table.taken += weight;
    drop(table);
    // The next ticket may fit in the seats left.
    CHANGED.notify_all();
    Turn {
        weight,
        waited: asked.elapsed(),
        began: Instant::now(),
        began_at: SystemTime::now(),
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        table().taken -= self.weight;
        CHANGED.notify_all();
        self.record();
    }
}

impl Turn {
    fn record(&self) {
        use std::io::Write as _;
        let Some(path) = std::env::var_os("E2E_TIMES_FILE") else {
            return;
        };
        let seats = seats();
        let kind = if self.weight >= seats {
            "alone"
        } else if self.weight > 1 {
            "heavy"
        } else {
            "shared"
        };
        let line = format!(
            "{:.1}\t{:.1}\t{}\t{kind}\t{}\n",
            self.began.elapsed().as_secs_f64(),
            self.waited.as_secs_f64(),
            std::thread::current().name().unwrap_or("?"),
            self.began_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        // One write of one short line to a file opened for appending: the lines of tests on
        // other threads never interleave with it. A failure only loses the timing.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
    }
}
