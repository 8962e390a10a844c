//! A simulated engine around the machine: sources that deliver only while connected, counters
//! sampled every tick, commands applied, probes answered from the source's state. Every pump
//! checks the machine's invariants against what its commands did.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tributary_media::Ts90;

use super::super::*;
use crate::protocol::{DetectContext, detect};
use crate::stream::Input;

/// The one real clock read in these tests; everything else is this plus a duration.
pub(super) fn base() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

pub(super) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The spec of an input as the engine builds it, the kind from the one classifier.
pub(super) fn spec(input: &Input) -> InputSpec {
    let kind = detect(&input.url, DetectContext::default())
        .expect("test URLs classify")
        .kind();
    InputSpec::new(input, kind)
}

/// Specs for `urls` at priorities 0..N-1.
pub(super) fn inputs(urls: &[&str]) -> Vec<Input> {
    urls.iter()
        .enumerate()
        .map(|(p, url)| Input::new(*url, p as u32))
        .collect()
}

/// One simulated source, keyed by URL.
#[derive(Debug, Clone)]
pub(super) struct Feed {
    /// The source produces media whenever it is connected (probes succeed).
    pub(super) up: bool,
    /// Sends video frames.
    pub(super) video: bool,
    /// Sends audio frames.
    pub(super) audio: bool,
    /// Keyframe interval.
    pub(super) gop: Duration,
    /// Sends keyframes at all.
    pub(super) keyframes: bool,
    /// The video PTS moves forward.
    pub(super) pts_moving: bool,
    /// Continuity errors per tick.
    pub(super) cc_per_tick: u64,
    /// Push inputs: a publisher is connected.
    pub(super) publisher: bool,
    /// The counters the engine samples.
    pub(super) obs: Observation,
    /// When the last keyframe was sent.
    last_key: Option<Instant>,
    /// The next video PTS (90 kHz).
    pub(super) pts: i64,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            up: true,
            video: true,
            audio: true,
            gop: Duration::from_secs(2),
            keyframes: true,
            pts_moving: true,
            cc_per_tick: 0,
            publisher: false,
            obs: Observation::default(),
            last_key: None,
            pts: 0,
        }
    }
}

impl Feed {
    fn deliver(&mut self, now: Instant) {
        if !self.up || !(self.video || self.audio) {
            return;
        }
        self.obs.last_frame_at = Some(now);
        if self.video {
            self.obs.last_video_at = Some(now);
            if self.pts_moving {
                self.pts += 22_500;
            }
            self.obs.video_pts = Some(Ts90(self.pts));
            let due = self
                .last_key
                .is_none_or(|at| now.saturating_duration_since(at) >= self.gop);
            if self.keyframes && due {
                self.obs.keyframes += 1;
                self.obs.last_keyframe_at = Some(now);
                self.last_key = Some(now);
            }
        }
        if self.audio {
            self.obs.last_audio_at = Some(now);
        }
        self.obs.cc_errors += self.cc_per_tick;
    }
}

/// The simulated engine.
pub(super) struct Sim {
    pub(super) t0: Instant,
    pub(super) now: Instant,
    pub(super) fo: Failover,
    /// Sources by URL.
    pub(super) feeds: Vec<(String, Feed)>,
    /// URLs whose worker runs (from Connect/Disconnect).
    pub(super) connected: BTreeSet<String>,
    /// The URL the intake forwards (from Select/Deselect).
    pub(super) selected: Option<String>,
    /// Every output since the last [`Sim::take`].
    pub(super) out: Vec<Output>,
    /// Every output ever, for checks across a whole run.
    pub(super) all: Vec<Output>,
    /// Answer probes from the feed's `up`.
    pub(super) auto_probe: bool,
}

impl Sim {
    pub(super) fn new(urls: &[&str]) -> Self {
        Self::with(FailoverConfig::default(), inputs(urls))
    }

    pub(super) fn with(config: FailoverConfig, inputs: Vec<Input>) -> Self {
        let t0 = base();
        let specs = inputs.iter().map(spec).collect();
        let fo = Failover::new(config, specs, t0).expect("valid inputs");
        let mut sim = Self {
            t0,
            now: t0,
            fo,
            feeds: inputs
                .iter()
                .map(|i| (i.url.trim().to_owned(), Feed::default()))
                .collect(),
            connected: BTreeSet::new(),
            selected: None,
            out: Vec::new(),
            all: Vec::new(),
            auto_probe: true,
        };
        sim.pump();
        sim
    }

    pub(super) fn url(&self, priority: u32) -> String {
        self.fo
            .input(priority)
            .expect("known input")
            .url
            .trim()
            .to_owned()
    }

    /// The source behind the input now at `priority`.
    pub(super) fn feed(&mut self, priority: u32) -> &mut Feed {
        let url = self.url(priority);
        self.feed_url(&url)
    }

    pub(super) fn feed_url(&mut self, url: &str) -> &mut Feed {
        if let Some(at) = self.feeds.iter().position(|(u, _)| u == url) {
            return &mut self.feeds[at].1;
        }
        self.feeds.push((url.to_owned(), Feed::default()));
        &mut self.feeds.last_mut().expect("just pushed").1
    }

    /// One tick: sources deliver, the engine samples and reports.
    pub(super) fn tick(&mut self) {
        self.now += TICK;
        let now = self.now;
        let mut observations = Vec::new();
        let reports: Vec<(u32, String, bool)> = self
            .fo
            .inputs()
            .map(|r| (r.priority, r.url.trim().to_owned(), r.waiting_for_publisher))
            .collect();
        for (priority, url, _) in reports {
            let live = self.connected.contains(&url);
            let feed = self.feed_url(&url);
            if live || feed.publisher {
                feed.deliver(now);
            }
            let mut obs = feed.obs.clone();
            obs.priority = priority;
            observations.push(obs);
        }
        self.fo
            .handle_input(now, Report::Observed(&observations))
            .expect("all inputs known");
        self.pump();
    }

    /// Ticks for `d`.
    pub(super) fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.tick();
        }
    }

    /// Ticks until `done` holds, at most `limit`; the time it took.
    pub(super) fn run_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&Failover) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        while self.now < start + limit {
            self.tick();
            if done(&self.fo) {
                return Some(self.now - start);
            }
        }
        None
    }

    /// Ticks until the active input changes; the time it took.
    pub(super) fn run_until_switch(&mut self, limit: Duration) -> Option<Duration> {
        let before = self.fo.active();
        self.run_until(limit, |fo| fo.active() != before)
    }

    pub(super) fn event(&mut self, priority: u32, event: InputEvent) {
        let now = self.now;
        self.fo
            .handle_input(now, Report::Event { priority, event })
            .expect("known input");
        self.pump();
    }

    /// A publisher connects to (or leaves) the push input at `priority`.
    pub(super) fn publish(&mut self, priority: u32, on: bool) {
        self.feed(priority).publisher = on;
        let event = if on {
            InputEvent::PublisherConnected
        } else {
            InputEvent::PublisherDisconnected {
                message: "EOF".into(),
            }
        };
        self.event(priority, event);
    }

    pub(super) fn switch(&mut self, priority: Option<u32>) -> Result<(), FailoverError> {
        let now = self.now;
        let result = self.fo.switch(priority, now);
        self.pump();
        result
    }

    /// Applies a new input list the way the engine does: its own state re-keyed by URL first.
    pub(super) fn update(&mut self, inputs: Vec<Input>) -> Result<(), FailoverError> {
        let now = self.now;
        let urls: BTreeSet<String> = inputs.iter().map(|i| i.url.trim().to_owned()).collect();
        let specs = inputs.iter().map(spec).collect();
        let result = self.fo.update_inputs(specs, now);
        if result.is_ok() {
            self.connected.retain(|url| urls.contains(url));
            if self
                .selected
                .as_ref()
                .is_some_and(|url| !urls.contains(url))
            {
                self.selected = None;
            }
        }
        self.pump();
        result
    }

    /// The outputs since the last call.
    pub(super) fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Drains the machine, applies its commands, answers probes, checks invariants.
    pub(super) fn pump(&mut self) {
        loop {
            let mut probes = Vec::new();
            while let Some(output) = self.fo.poll_output() {
                if let Output::Command(command) = &output {
                    match command {
                        Command::Connect(p) => {
                            let url = self.url(*p);
                            assert!(self.connected.insert(url), "{p} connected twice");
                        }
                        Command::Disconnect(p) => {
                            let url = self.url(*p);
                            assert!(self.connected.remove(&url), "{p} was not connected");
                        }
                        Command::Reconnect(p) => {
                            let url = self.url(*p);
                            assert!(self.connected.contains(&url), "reconnect of idle {p}");
                            self.feed_url(&url).obs.session += 1;
                        }
                        Command::Select { priority, .. } => {
                            self.selected = Some(self.url(*priority))
                        }
                        Command::Deselect => self.selected = None,
                        Command::Probe(p) => probes.push(*p),
                    }
                }
                self.out.push(output.clone());
                self.all.push(output);
            }
            self.check();
            if probes.is_empty() || !self.auto_probe {
                return;
            }
            for p in probes {
                let event = if self.feed(p).up {
                    InputEvent::ProbeSucceeded
                } else {
                    InputEvent::ProbeFailed {
                        message: "no packet within 3 s".into(),
                    }
                };
                let now = self.now;
                self.fo
                    .handle_input(now, Report::Event { priority: p, event })
                    .expect("known input");
            }
        }
    }

    /// What must hold after every drained call.
    pub(super) fn check(&self) {
        let fo = &self.fo;
        assert_eq!(
            fo.exhausted(),
            fo.active().is_none(),
            "exhausted iff nothing active"
        );
        let active_url = fo.active().map(|p| self.url(p));
        assert_eq!(
            self.selected, active_url,
            "the intake forwards the active input"
        );
        if let Some(p) = fo.override_priority() {
            assert_eq!(
                fo.active(),
                Some(p),
                "a pinned override is the active input"
            );
        }
        for input in fo.inputs() {
            let url = input.url.trim().to_owned();
            let push = spec(&Input::new(input.url, 0)).push;
            if push {
                assert!(!self.connected.contains(&url), "push inputs have no worker");
            } else {
                assert_eq!(
                    input.connected,
                    self.connected.contains(&url),
                    "input {} connection",
                    input.priority
                );
            }
            if fo.active() == Some(input.priority) {
                assert_eq!(input.status, InputStatus::Active);
                assert!(input.degraded.is_none() && input.stopped.is_none());
                assert!(input.connected, "the active input is connected");
            } else {
                assert_ne!(input.status, InputStatus::Active);
            }
            assert!(input.errors.len() <= fo.config().errors_kept);
            assert!(input.errors.windows(2).all(|w| w[0].at >= w[1].at));
        }
        let switches = fo.switches();
        assert!(switches.len() <= fo.config().switches_kept);
        assert!(
            switches.windows(2).all(|w| w[0].at >= w[1].at),
            "newest first"
        );
        if let Some(deadline) = fo.poll_timeout() {
            assert!(deadline > self.now, "a due deadline was left unserved");
        }
    }
}

/// The commands among `outputs`.
pub(super) fn commands(outputs: &[Output]) -> Vec<Command> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Command(c) => Some(c.clone()),
            Output::Event(_) => None,
        })
        .collect()
}

/// The events among `outputs`.
pub(super) fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            Output::Command(_) => None,
        })
        .collect()
}

/// The switch records among `outputs`.
pub(super) fn switched(outputs: &[Output]) -> Vec<Switch> {
    events(outputs)
        .into_iter()
        .filter_map(|e| match e {
            Event::Switched(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// How many `Exhausted` events `outputs` hold.
pub(super) fn exhaustions(outputs: &[Output]) -> usize {
    events(outputs)
        .iter()
        .filter(|e| **e == Event::Exhausted)
        .count()
}
