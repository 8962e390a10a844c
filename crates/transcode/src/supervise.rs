//! The supervision machine of one FFmpeg process (SPEC §Transcoder "Supervision", "Health",
//! "Progress"): when to restart after a crash, when the rung is unhealthy, healthy again or
//! slow. Sans-IO: the runtime tells it what happened and when, and it answers with a deadline
//! and events; it never reads a clock, so the timers (2 s → 30 s backoff, 3 crashes in 30 s,
//! 30 s of running, 30 s below 0.95× speed) are tested exactly in simulated time.
//!
//! # Driving contract
//!
//! 1. Call [`Supervisor::started`] when a process has been spawned (also the first time).
//! 2. Call [`Supervisor::exited`] when it ends while the stream still wants it (every such exit
//!    is a crash); [`Supervisor::progress`] with each speed reading; nothing when the stream
//!    stops it on purpose (drop the machine, or call [`Supervisor::started`] for a planned
//!    restart such as a profile change: that is not a crash).
//! 3. After each call, and whenever [`Supervisor::poll_timeout`]'s deadline passes (then call
//!    [`Supervisor::handle_timeout`] first), drain [`Supervisor::poll_event`] until `None`. On
//!    [`Event::Restart`] spawn the process again and call [`Supervisor::started`].
//!
//! The machine holds at most a handful of events (one per transition), so its queue is
//! bounded by construction.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Supervises one FFmpeg process: backoff, health and speed.
#[derive(Debug)]
pub struct Supervisor {
    /// Timer settings.
    config: SupervisorConfig,
    /// What the process is doing.
    state: State,
    /// The delay before the next restart; doubles after each crash up to the cap, reset after
    /// `healthy_after` of running.
    backoff: Duration,
    /// Instants of the recent crashes, newest last; at most `unhealthy_crashes` are kept.
    crashes: VecDeque<Instant>,
    /// Crashes since the machine was made (`restart_count`).
    restart_count: u64,
    /// Cleared by `unhealthy_crashes` crashes within `crash_window`, set again after
    /// `healthy_after` of running.
    healthy: bool,
    /// When the speed first fell below `slow_below` in the current run, if it still is.
    slow_since: Option<Instant>,
    /// Whether the rung is reported slow.
    slow: bool,
    /// The last crash's error and how many crashes in a row had exactly that error.
    last_error: Option<(String, u64)>,
    /// Events not yet drained.
    events: VecDeque<Event>,
}

/// The timers of a [`Supervisor`]; [`Default`] is SPEC §Defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    /// First restart delay: 2 s.
    pub backoff_initial: Duration,
    /// Longest restart delay: 30 s.
    pub backoff_max: Duration,
    /// Crashes within `crash_window` that make the rung unhealthy: 3.
    pub unhealthy_crashes: usize,
    /// 30 s.
    pub crash_window: Duration,
    /// Running this long makes the rung healthy again and resets the backoff: 30 s.
    pub healthy_after: Duration,
    /// Speed (× real time) under which the rung may be slow: 0.95.
    pub slow_below: f64,
    /// How long the speed must stay under `slow_below` to report the rung slow: 30 s.
    pub slow_after: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            backoff_initial: Duration::from_secs(2),
            backoff_max: Duration::from_secs(30),
            unhealthy_crashes: 3,
            crash_window: Duration::from_secs(30),
            healthy_after: Duration::from_secs(30),
            slow_below: 0.95,
            slow_after: Duration::from_secs(30),
        }
    }
}

/// What the process is doing, as the machine knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Running since this instant; `settled` once it ran `healthy_after`.
    Running { since: Instant, settled: bool },
    /// Crashed; restarts at this instant.
    Waiting { until: Instant },
}

/// What the runtime must act on or report.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A crash was recorded (`transcoder.error`); the process restarts in `restart_in`.
    Crashed {
        /// Crashes so far, this one included (`restart_count`).
        attempt: u64,
        /// The backoff before the restart.
        restart_in: Duration,
        /// The exit and the stderr tail.
        error: String,
        /// Whether to emit the event: after 3 identical errors in a row, only on attempts
        /// that are a power of two (SPEC §Transcoder "Supervision").
        announce: bool,
    },
    /// The backoff elapsed: spawn the process again.
    Restart,
    /// `unhealthy_crashes` crashes within `crash_window`: the rung is unhealthy
    /// (`transcoder.error {reason: "consecutive_crashes"}`, stream degraded).
    Unhealthy,
    /// The current process ran `healthy_after` after the rung was unhealthy
    /// (`transcoder.recovered`).
    Recovered,
    /// The speed stayed under `slow_below` for `slow_after` (`transcoder.slow`).
    Slow,
    /// The speed is back at or above `slow_below`.
    NotSlow,
}

impl Supervisor {
    /// A machine for a process spawned at `now`.
    pub fn new(now: Instant, config: SupervisorConfig) -> Self {
        Self {
            backoff: config.backoff_initial,
            config,
            state: State::Running {
                since: now,
                settled: false,
            },
            crashes: VecDeque::new(),
            restart_count: 0,
            healthy: true,
            slow_since: None,
            slow: false,
            last_error: None,
            events: VecDeque::new(),
        }
    }

    /// A process was spawned at `now` (after [`Event::Restart`], or a planned restart).
    pub fn started(&mut self, now: Instant) {
        self.state = State::Running {
            since: now,
            settled: false,
        };
        self.slow_since = None;
        if self.slow {
            self.slow = false;
            self.events.push_back(Event::NotSlow);
        }
    }

    /// The process ended at `now` while the stream wanted it: a crash with `error` (the exit
    /// status and the stderr tail). Schedules the restart after the backoff.
    pub fn exited(&mut self, now: Instant, error: String) {
        if let State::Running { since, .. } = self.state
            && now.saturating_duration_since(since) >= self.config.healthy_after
        {
            self.backoff = self.config.backoff_initial;
        }
        self.restart_count += 1;
        self.crashes.push_back(now);
        while self.crashes.len() > self.config.unhealthy_crashes {
            self.crashes.pop_front();
        }
        let repeats = match &mut self.last_error {
            Some((last, n)) if *last == error => {
                *n += 1;
                *n
            }
            _ => {
                self.last_error = Some((error.clone(), 1));
                1
            }
        };
        let attempt = self.restart_count;
        let restart_in = self.backoff;
        self.events.push_back(Event::Crashed {
            attempt,
            restart_in,
            error,
            announce: repeats <= 3 || attempt.is_power_of_two(),
        });
        let window_start = now.checked_sub(self.config.crash_window);
        let recent = self
            .crashes
            .iter()
            .filter(|at| window_start.is_none_or(|start| **at > start))
            .count();
        if self.healthy && recent >= self.config.unhealthy_crashes {
            self.healthy = false;
            self.events.push_back(Event::Unhealthy);
        }
        self.state = State::Waiting {
            until: now + restart_in,
        };
        self.backoff = (self.backoff * 2).min(self.config.backoff_max);
        self.slow_since = None;
        if self.slow {
            self.slow = false;
            self.events.push_back(Event::NotSlow);
        }
    }

    /// A speed reading (× real time) from the process's progress output at `now`.
    pub fn progress(&mut self, now: Instant, speed: f64) {
        if !matches!(self.state, State::Running { .. }) {
            return;
        }
        if speed >= self.config.slow_below {
            self.slow_since = None;
            if self.slow {
                self.slow = false;
                self.events.push_back(Event::NotSlow);
            }
            return;
        }
        let since = *self.slow_since.get_or_insert(now);
        if !self.slow && now.saturating_duration_since(since) >= self.config.slow_after {
            self.slow = true;
            self.events.push_back(Event::Slow);
        }
    }

    /// Advances the timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Waiting { until } if now >= until => {
                // Held until the runtime calls `started`; a second timeout must not repeat it.
                self.state = State::Running {
                    since: now,
                    settled: false,
                };
                self.events.push_back(Event::Restart);
            }
            State::Running {
                since,
                settled: false,
            } if now.saturating_duration_since(since) >= self.config.healthy_after => {
                self.state = State::Running {
                    since,
                    settled: true,
                };
                self.backoff = self.config.backoff_initial;
                if !self.healthy {
                    self.healthy = true;
                    self.events.push_back(Event::Recovered);
                }
            }
            _ => {}
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { until } => Some(until),
            State::Running {
                since,
                settled: false,
            } => Some(since + self.config.healthy_after),
            State::Running { settled: true, .. } => None,
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Crashes so far.
    pub fn restart_count(&self) -> u64 {
        self.restart_count
    }

    /// Whether the rung is healthy (not `unhealthy_crashes` crashes within `crash_window`
    /// without `healthy_after` of running since).
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Whether the rung is reported slow.
    pub fn is_slow(&self) -> bool {
        self.slow
    }

    /// Whether a process should be running (not waiting out a backoff).
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn drain(s: &mut Supervisor) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    /// Crashes at `now` and returns the backoff it announced.
    fn crash(s: &mut Supervisor, now: Instant) -> Duration {
        s.exited(now, "exit status 1".into());
        let events = drain(s);
        match events.first() {
            Some(Event::Crashed { restart_in, .. }) => *restart_in,
            other => panic!("expected a crash event, got {other:?}"),
        }
    }

    /// Lets the backoff run out and restarts.
    fn restart(s: &mut Supervisor) -> Instant {
        let at = s.poll_timeout().expect("a restart is pending");
        s.handle_timeout(at);
        assert_eq!(drain(s), [Event::Restart]);
        s.started(at);
        at
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_healthy_run() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0, SupervisorConfig::default());
        let mut now = t0 + secs(1);
        let mut delays = Vec::new();
        for _ in 0..6 {
            delays.push(crash(&mut s, now).as_secs());
            now = restart(&mut s) + secs(1);
        }
        assert_eq!(delays, [2, 4, 8, 16, 30, 30]);
        assert_eq!(s.restart_count(), 6);
        // 30 s of running resets the delay, by timer, before the next exit.
        let since = now - secs(1);
        assert_eq!(s.poll_timeout(), Some(since + secs(30)));
        s.handle_timeout(since + secs(30));
        assert_eq!(
            drain(&mut s),
            [Event::Recovered],
            "six quick crashes were unhealthy"
        );
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(crash(&mut s, since + secs(31)), secs(2));
    }

    #[test]
    fn three_crashes_in_30_s_are_unhealthy_until_30_s_of_running() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0, SupervisorConfig::default());
        s.exited(t0 + secs(1), "boom".into());
        assert!(matches!(drain(&mut s)[..], [Event::Crashed { .. }]));
        let t = restart(&mut s);
        s.exited(t + secs(1), "boom".into());
        drain(&mut s);
        let t = restart(&mut s);
        assert!(s.is_healthy());
        s.exited(t + secs(1), "boom".into());
        let events = drain(&mut s);
        assert!(
            matches!(events[..], [Event::Crashed { .. }, Event::Unhealthy]),
            "{events:?}"
        );
        assert!(!s.is_healthy());

        let t = restart(&mut s);
        s.handle_timeout(t + secs(29));
        assert!(drain(&mut s).is_empty());
        assert!(!s.is_healthy());
        assert_eq!(s.poll_timeout(), Some(t + secs(30)));
        s.handle_timeout(t + secs(30));
        assert_eq!(drain(&mut s), [Event::Recovered]);
        assert!(s.is_healthy());
    }

    #[test]
    fn crashes_spread_over_more_than_the_window_stay_healthy() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0, SupervisorConfig::default());
        let mut now = t0 + secs(1);
        for _ in 0..5 {
            s.exited(now, "boom".into());
            let events = drain(&mut s);
            assert!(!events.contains(&Event::Unhealthy), "{events:?}");
            let at = restart(&mut s);
            now = at + secs(14);
        }
        assert!(s.is_healthy());
    }

    #[test]
    fn repeated_identical_errors_announce_only_on_powers_of_two() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0, SupervisorConfig::default());
        let mut announced = Vec::new();
        let mut now = t0;
        for _ in 0..9 {
            s.exited(now, "same".into());
            for e in drain(&mut s) {
                if let Event::Crashed {
                    attempt, announce, ..
                } = e
                    && announce
                {
                    announced.push(attempt);
                }
            }
            now = restart(&mut s);
        }
        assert_eq!(announced, [1, 2, 3, 4, 8]);
        s.exited(now, "different".into());
        assert!(matches!(
            drain(&mut s)[0],
            Event::Crashed {
                attempt: 10,
                announce: true,
                ..
            }
        ));
    }

    #[test]
    fn slow_after_30_s_below_095_and_back() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0, SupervisorConfig::default());
        for i in 0..30 {
            s.progress(t0 + secs(i), 0.9);
        }
        assert!(drain(&mut s).is_empty(), "29 s below is not slow yet");
        s.progress(t0 + secs(30), 0.9);
        assert_eq!(drain(&mut s), [Event::Slow]);
        assert!(s.is_slow());
        s.progress(t0 + secs(31), 0.94);
        assert!(drain(&mut s).is_empty());
        s.progress(t0 + secs(32), 1.0);
        assert_eq!(drain(&mut s), [Event::NotSlow]);
        // A fast reading in between restarts the 30 s.
        s.progress(t0 + secs(40), 0.5);
        s.progress(t0 + secs(60), 1.2);
        s.progress(t0 + secs(61), 0.5);
        s.progress(t0 + secs(80), 0.5);
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn a_timeout_before_the_deadline_does_nothing() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0, SupervisorConfig::default());
        s.exited(t0 + secs(1), "x".into());
        drain(&mut s);
        s.handle_timeout(t0 + secs(2));
        assert!(drain(&mut s).is_empty());
        assert!(!s.is_running());
        s.handle_timeout(t0 + secs(3));
        assert_eq!(drain(&mut s), [Event::Restart]);
        s.handle_timeout(t0 + secs(3));
        assert!(drain(&mut s).is_empty(), "the restart is announced once");
    }
}
