//! `process_*` metrics of the server itself, read from `/proc/self` at each scrape, with the
//! names and meanings every Prometheus client library gives them (CPU seconds, resident and
//! virtual memory, open and maximum file descriptors, threads, start time). A file that
//! cannot be read leaves its series out of that scrape.

use std::fmt;
use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// The collector of this process's metrics.
#[derive(Debug)]
pub(super) struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let stat = fs::read_to_string("/proc/self/stat").ok();
        let status = fs::read_to_string("/proc/self/status").ok();
        if let Some(cpu) = stat
            .as_deref()
            .and_then(tributary_transcode::usage::cpu_seconds)
        {
            encoder
                .encode_descriptor(
                    "process_cpu_seconds",
                    "Total user and system CPU time spent in seconds.",
                    None,
                    MetricType::Counter,
                )?
                .encode_counter::<NoLabelSet, _, f64>(&cpu, None)?;
        }
        let status_kib = |key: &str| status.as_deref().and_then(|s| status_field(s, key));
        for (name, help, key) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                "VmRSS:",
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                "VmSize:",
            ),
        ] {
            if let Some(kib) = status_kib(key) {
                let bytes = (kib * 1024) as i64;
                encoder
                    .encode_descriptor(name, help, None, MetricType::Gauge)?
                    .encode_gauge(&bytes)?;
            }
        }
        if let Some(threads) = status_kib("Threads:") {
            encoder
                .encode_descriptor(
                    "process_threads",
                    "Number of OS threads in the process.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&(threads as i64))?;
        }
        if let Ok(fds) = fs::read_dir("/proc/self/fd") {
            let open = fds.count() as i64;
            encoder
                .encode_descriptor(
                    "process_open_fds",
                    "Number of open file descriptors.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&open)?;
        }
        if let Some(max) = fs::read_to_string("/proc/self/limits")
            .ok()
            .as_deref()
            .and_then(max_open_files)
        {
            encoder
                .encode_descriptor(
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&max)?;
        }
        let boot = fs::read_to_string("/proc/stat").ok();
        if let Some(start) = stat
            .as_deref()
            .zip(boot.as_deref())
            .and_then(|(stat, boot)| start_time(stat, boot))
        {
            encoder
                .encode_descriptor(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&start)?;
        }
        Ok(())
    }
}

/// The number of a `/proc/<pid>/status` line (`VmRSS:\t  1234 kB` → 1234).
fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`.
fn max_open_files(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Unix start time of a process: boot time (`btime` of `/proc/stat`) plus its `starttime`
/// (field 22 of `/proc/<pid>/stat`, in `USER_HZ` ticks since boot).
fn start_time(stat: &str, boot: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // After the name, field 3 (state) is the first: starttime (22) is the 20th.
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime as f64 + ticks as f64 / USER_HZ)
}

/// The unit of `/proc` times: fixed at 100 by the kernel ABI (as in `tributary_transcode`).
const USER_HZ: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let status = "Name:\ttributary\nVmSize:\t  900000 kB\nVmRSS:\t  12345 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(12345));
        assert_eq!(status_field(status, "Threads:"), Some(7));
        assert_eq!(status_field(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 0 0 0 0 10 5 0 0 20 0 3 0 250 456 789";
        assert_eq!(
            start_time(stat, "cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_002.5)
        );
        assert_eq!(start_time(stat, "cpu 1 2\n"), None);
    }
}
