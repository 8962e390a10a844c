//! CPU time and resident memory of a child, from `/proc` (SPEC §Transcoder "Progress":
//! `cpu_seconds`, `rss_bytes`). The parsing is pure; [`read`] is the one function that touches
//! the file system.

use std::fs;

/// What a process has used so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` when the process is gone or the
/// files do not parse.
pub fn read(pid: u32) -> Option<Usage> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Usage {
        cpu_seconds: cpu_seconds(&stat)?,
        rss_bytes: rss_bytes(&status)?,
    })
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After the name: state (3), ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt,
    // majflt, cmajflt, utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS)
}

/// `VmRSS` of a `/proc/<pid>/status`, in bytes.
pub fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `USER_HZ`: the unit of `/proc` CPU times, 100 on every Linux architecture the server runs
/// on (the kernel ABI fixes it, whatever the kernel's internal `HZ`).
const CLOCK_TICKS: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_parse() {
        let stat = "4242 (ffmpeg (x) y) S 1 4242 4242 0 -1 4194304 5130 0 0 0 81120 1000 0 0 \
                    20 0 3 0 123 456 789";
        assert_eq!(cpu_seconds(stat), Some(821.2));
        let status = "Name:\tffmpeg\nVmPeak:\t  300000 kB\nVmRSS:\t  226304 kB\nThreads:\t3\n";
        assert_eq!(rss_bytes(status), Some(231_735_296));
        assert_eq!(cpu_seconds("garbage"), None);
        assert_eq!(rss_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_usage() {
        let usage = read(std::process::id()).expect("our own /proc entry");
        assert!(usage.rss_bytes > 0);
        assert!(usage.cpu_seconds >= 0.0);
        assert_eq!(read(u32::MAX), None);
    }
}
