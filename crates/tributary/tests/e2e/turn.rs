//! Turns: how many end-to-end tests run at once.
//!
//! Each test that streams media takes a turn before it starts its server and holds it to its
//! end. A test that needs the machine to itself — it transcodes, drives a browser, floods a
//! listener or asserts a gap in milliseconds — takes it [`alone`]; on two cores anything
//! beside it starves its real-time loops (a starved live reader refetches and reports what is
//! not the server's fault). A test whose sources are `-c copy` senders and whose readers are
//! ffprobe or curl costs a small part of a core and takes a [`shared`] seat: up to
//! [`seats`] of them run together, which is what keeps the suite inside CI's half hour.
//!
//! Turns are granted in the order they were asked for, so a test waiting to run alone is not
//! overtaken by a stream of shared ones: it waits for the seated ones to leave, and those
//! asking after it wait for it. Tests that take no turn (API and config checks with no media)
//! run beside anything, as libtest's threads allow.
//!
//! When `E2E_TIMES_FILE` names a file, each turn's end appends one line to it (see [`Turn`]);
//! `scripts/test` prints the sums and the slowest tests, so every run's log shows what the
//! suite's wall time is made of.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Seats when `E2E_SEATS` does not say: three shared tests at once on two cores.
const DEFAULT_SEATS: u32 = 3;

/// How many shared tests may run together: `E2E_SEATS` (at least 1; 1 runs every test alone).
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
/// seconds waited for the turn, the test's name, `alone` or `shared`, and the Unix time the
/// turn began.
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

/// One seat, beside other shared tests.
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
        let kind = if self.weight == 1 && seats() > 1 {
            "shared"
        } else {
            "alone"
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
