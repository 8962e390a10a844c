//! Supervision of the output tasks (issue 12, defect e): an HLS packager or a push target whose
//! task ended while its stream still wants it is noticed, restarted with backoff, and shown in
//! `runtime.publisher` (status, last error, restart count) and `runtime.warnings` meanwhile.
//!
//! Each output the coordinator started has a [`Supervised`] record in [`Outputs`]; stopping the
//! output removes it, so only outputs the stream still wants are ever restarted. A push target
//! that reached its `limit` ends by design: it stays `failed` and visible, and is not restarted
//! (SPEC §Push).
//!
//! A target that pushes one rung (`push[].profile`) reads that rung's rendition buffer. When
//! the rung is not in the ladder — a template edit removed it, which a stream write cannot
//! (`check_push_profiles`) — the target is `failed` with the reason and a
//! `push.state_changed` event, and pushes nothing: sending the playback feed or another rung
//! to a platform that expects this one would be a silent lie. It is not restarted with
//! backoff meanwhile; once the rung's buffer exists again (the rung is back) it starts.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_domain::redact::mask_push_url;
use tributary_hub::BufferId;
use tributary_publish::{HlsHandle, PushChange, PushHandle, PushSettings, PushStatus};

use super::Outputs;
use crate::lock;

/// An output task the stream wants running.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Component {
    /// An HLS packager of the stream: its only one, or (ABR) the one of rung *i*.
    Hls(StreamCode, Option<u16>),
    /// One push target, by trimmed URL.
    Push(StreamCode, String),
}

/// A push target as supervision starts it again: its settings and what it reads.
#[derive(Debug, Clone)]
pub(super) struct PushTarget {
    /// URL, timeouts, retry, limit and SSRF guard.
    pub(super) settings: PushSettings,
    /// The rung pushed (`profile` `track_<N>`: N − 1); `None`: the playback feed.
    pub(super) rung: Option<u16>,
}

impl PushTarget {
    /// The buffer the target reads: the rung's rendition, else the main buffer.
    pub(super) fn buffer(&self, code: &StreamCode) -> BufferId {
        match self.rung {
            Some(rung) => BufferId::Rendition(code.clone(), rung),
            None => stream_buffer(code),
        }
    }
}

/// What supervision knows about one wanted output task.
#[derive(Debug)]
pub(super) struct Supervised {
    /// A push target's settings and feed, to start it again.
    push: Option<PushTarget>,
    /// A rung target whose rung is not in the ladder: since when, and why it is `failed`.
    /// Cleared when the rung is back and the target starts.
    gone: Option<(SystemTime, String)>,
    /// Restarts after the task ended by itself.
    restarts: u32,
    /// Why it last ended, and when.
    last_error: Option<(SystemTime, String)>,
    /// When the next restart is due; `None` while the task runs.
    retry_at: Option<Instant>,
    /// The delay before the next restart: [`FIRST_DELAY`] doubling to [`MAX_DELAY`].
    delay: Duration,
    /// When the current task started, to reset the delay after [`HEALTHY_AFTER`].
    started: Instant,
}

impl Supervised {
    pub(super) fn new(push: Option<PushTarget>, now: Instant) -> Self {
        Self {
            push,
            gone: None,
            restarts: 0,
            last_error: None,
            retry_at: None,
            delay: FIRST_DELAY,
            started: now,
        }
    }

    /// The task ended (or a restart failed) with `error`: schedule the next try.
    fn ended(&mut self, now: Instant, error: String) {
        if now.saturating_duration_since(self.started) >= HEALTHY_AFTER {
            self.delay = FIRST_DELAY;
        }
        self.retry_at = Some(now + self.delay);
        self.delay = (self.delay * 2).min(MAX_DELAY);
        self.last_error = Some((SystemTime::now(), error));
    }

    fn restarted(&mut self, now: Instant) {
        self.restarts += 1;
        self.retry_at = None;
        self.started = now;
    }

    fn due(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| at <= now)
    }

    /// `status`, `restart_count` and `last_error` for `runtime.publisher` (and for a push
    /// target without its rung: `failed`, the reason first in `errors`, and its `track`).
    pub(super) fn json(&self, entry: &mut Value) {
        if self.retry_at.is_some() {
            entry["status"] = json!("restarting");
        }
        if let Some(rung) = self.push.as_ref().and_then(|p| p.rung) {
            entry["track"] = json!(track(rung));
        }
        if let Some((at, why)) = &self.gone {
            entry["status"] = json!("failed");
            let error = json!({"message": why, "at": rfc3339(*at)});
            match entry["errors"].as_array_mut() {
                Some(errors) => {
                    errors.insert(0, error);
                    errors.truncate(ERRORS_SHOWN);
                }
                None => entry["errors"] = json!([error]),
            }
        }
        entry["restart_count"] = json!(self.restarts);
        if let Some((at, message)) = &self.last_error {
            entry["last_error"] = json!({"message": message, "at": rfc3339(*at)});
        }
    }

    /// Whether this is a push target failed for want of its rung.
    pub(super) fn rung_gone(&self) -> bool {
        self.gone.is_some()
    }

    /// The `runtime.warnings` line while the task is down.
    pub(super) fn warning(&self, what: &str) -> Option<String> {
        if let Some((_, why)) = &self.gone {
            return Some(format!("a push target failed: {why}"));
        }
        self.retry_at?;
        let (_, error) = self.last_error.as_ref()?;
        Some(format!(
            "{what} ended ({error}); restarting with backoff (restarts so far: {})",
            self.restarts
        ))
    }
}

impl Outputs {
    /// One supervision pass at `now`: notices output tasks that ended, restarts those due.
    pub(crate) fn supervise(&self, now: Instant) {
        let mut supervised = lock(&self.supervised);
        for (component, record) in supervised.iter_mut() {
            match component {
                Component::Hls(code, rung) => self.supervise_hls(code, *rung, record, now),
                Component::Push(code, url) => self.supervise_push(code, url, record, now),
            }
        }
    }

    fn supervise_hls(
        &self,
        stream: &StreamCode,
        rung: Option<u16>,
        record: &mut Supervised,
        now: Instant,
    ) {
        let key = (stream.clone(), rung);
        let code = stream;
        let ended = {
            let mut running = lock(&self.running);
            let finished = running.get(&key).is_some_and(HlsHandle::is_finished);
            // Dropped: its stale window is not served on as if it were live.
            finished.then(|| running.remove(&key))
        };
        if ended.is_some() {
            tracing::warn!(stream = %code, "the HLS packager ended; restarting it");
            record.ended(now, "the HLS packager ended".to_owned());
        }
        if !record.due(now) {
            return;
        }
        match self.spawn_hls(stream, rung) {
            Ok(handle) => {
                lock(&self.running).insert(key, handle);
                record.restarted(now);
                tracing::info!(stream = %code, restarts = record.restarts, "HLS packager restarted");
            }
            Err(e) => {
                tracing::warn!(stream = %code, error = %e, "HLS packager restart failed");
                record.ended(now, format!("restart failed: {e}"));
            }
        }
    }

    fn supervise_push(&self, code: &StreamCode, url: &str, record: &mut Supervised, now: Instant) {
        let key = (code.clone(), url.to_owned());
        let Some(target) = record.push.clone() else {
            return;
        };
        let rung_here = || self.hub.contains(&target.buffer(code));
        if record.gone.is_some() {
            // Failed for want of its rung: it starts when the rung is back, not before.
            if !rung_here() {
                return;
            }
            match self.spawn_push(code, &target) {
                Ok(handle) => {
                    record.gone = None;
                    record.restarted(now);
                    lock(&self.pushes).insert(key, handle);
                    tracing::info!(stream = %code, "the rung of a push target is back; pushing it");
                    self.push_moved(code, url, PushStatus::Failed, PushStatus::Starting, None);
                }
                Err(e) => tracing::warn!(stream = %code, "push restart failed: {e}"),
            }
            return;
        }
        let ended = {
            let pushes = lock(&self.pushes);
            pushes
                .get(&key)
                .filter(|handle| handle.is_finished())
                .map(|handle| handle.state().status)
        };
        match (ended, target.rung) {
            // `limit` reached: it stays failed and visible (SPEC §Push).
            (Some(PushStatus::Failed), _) => return,
            // Its rung was removed from the ladder: the task ended with its buffer.
            (Some(status), Some(rung)) if !rung_here() => {
                self.rung_gone(code, url, rung, status, record);
                return;
            }
            (Some(_), _) if record.retry_at.is_none() => {
                tracing::warn!(stream = %code, "a push task ended; restarting it");
                record.ended(now, "the push task ended".to_owned());
            }
            _ => {}
        }
        if !record.due(now) {
            return;
        }
        match self.spawn_push(code, &target) {
            Ok(handle) => {
                // Replaces the ended task's handle, whose state showed meanwhile.
                lock(&self.pushes).insert(key, handle);
                record.restarted(now);
            }
            Err(e) => record.ended(now, format!("restart failed: {e}")),
        }
    }

    /// Marks push target `url` of `code` `failed` because its `rung` is not in the ladder:
    /// shown in runtime (status, reason, gauge 0) and published as `push.state_changed` from
    /// `from`. Nothing is pushed until the rung is back.
    pub(super) fn rung_gone(
        &self,
        code: &StreamCode,
        url: &str,
        rung: u16,
        from: PushStatus,
        record: &mut Supervised,
    ) {
        let why = format!(
            "{} is not in the stream's ladder (removed, or the stream has no transcoder): \
             nothing is pushed until the rung is back or push[].profile changes",
            track(rung)
        );
        tracing::warn!(stream = %code, "push target failed: {why}");
        record.retry_at = None;
        record.gone = Some((SystemTime::now(), why.clone()));
        self.push_moved(code, url, from, PushStatus::Failed, Some(why));
    }

    /// Publishes a status change of push target `url` of `code` that the engine made (its task
    /// publishes its own).
    fn push_moved(
        &self,
        code: &StreamCode,
        url: &str,
        from: PushStatus,
        to: PushStatus,
        error: Option<String>,
    ) {
        if let Some(observer) = self.push_observer(code) {
            observer(&PushChange {
                url: mask_push_url(url),
                from,
                to,
                error,
            });
        }
    }

    /// Starts push target `target` of `code` on its buffer.
    pub(super) fn spawn_push(
        &self,
        code: &StreamCode,
        target: &PushTarget,
    ) -> Result<PushHandle, tributary_publish::PublishError> {
        tributary_publish::start_push(
            &self.hub,
            code.clone(),
            target.buffer(code),
            target.settings.clone(),
            self.push_observer(code),
        )
    }

    /// Starts the HLS packager of `code` (`rung`: of that rendition, served under
    /// `/{code}/track_<rung + 1>/`).
    pub(super) fn spawn_hls(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
    ) -> Result<HlsHandle, tributary_publish::PublishError> {
        let buffer = match rung {
            Some(i) => BufferId::Rendition(code.clone(), i),
            None => stream_buffer(code),
        };
        tributary_publish::start_hls_variant(
            &self.hls,
            &self.hub,
            code.clone(),
            rung,
            buffer,
            self.packager_settings(code, rung),
        )
    }
}

/// Runs [`Outputs::supervise`] every [`TICK`] until `shutdown`.
pub(crate) async fn run(outputs: Arc<Outputs>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        outputs.supervise(tokio::time::Instant::now().into_std());
    }
}

/// The buffer outputs read: the stream's main buffer.
pub(super) fn stream_buffer(code: &StreamCode) -> BufferId {
    BufferId::Stream(code.clone())
}

/// A rung's name: index 0 is `track_1`.
fn track(rung: u16) -> String {
    format!("track_{}", u32::from(rung) + 1)
}

fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How often supervision looks at the output tasks.
const TICK: Duration = Duration::from_secs(1);
/// The first restart delay.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest restart delay.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A task that ran this long before it ended starts over at [`FIRST_DELAY`].
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Errors a push target shows (SPEC §Defaults "push errors 5").
const ERRORS_SHOWN: usize = 5;

#[cfg(test)]
mod tests {
    use tributary_domain::diff::Output;
    use tributary_domain::spec::PushSpec;
    use tributary_domain::validate::{Support, parse_stream};
    use tributary_domain::{Protocols, Push, Stream};
    use tributary_hub::{Hub, Writer};
    use tributary_net::SsrfGuard;
    use tributary_publish::HlsSettings;

    use super::*;
    use crate::services::OutputService;

    fn stream() -> Stream {
        let mut stream = Stream::new(StreamCode::parse("cam").unwrap());
        stream.protocols = Some(Protocols {
            hls: true,
            ..Protocols::default()
        });
        stream
    }

    /// A hub with the main buffer of [`stream`] (the writer keeps it), and outputs over it.
    fn setup() -> (Hub, Stream, Writer, Outputs) {
        let hub = Hub::new();
        let stream = stream();
        let writer = hub.create(stream_buffer(&stream.code), 64).unwrap();
        let outputs = Outputs::new(hub.clone(), HlsSettings::default(), SsrfGuard::default());
        (hub, stream, writer, outputs)
    }

    /// `stream` with one push target to `url` (`profile`, `limit`), parsed as the coordinator
    /// hands it over.
    fn push_spec(stream: &Stream, url: &str, profile: &str, limit: u32) -> PushSpec {
        let mut stream = stream.clone();
        stream.push = vec![Push {
            enabled: true,
            timeout_sec: 1,
            retry_timeout_sec: 1,
            limit,
            profile: profile.to_owned(),
            ..Push::new(url)
        }];
        let (spec, _) = parse_stream(stream, &Support::everything()).unwrap();
        spec.pushes()[0].clone()
    }

    /// A URL nothing listens on.
    fn closed_url() -> String {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("rtmp://{}/live/key", closed.local_addr().unwrap())
    }

    fn hls(outputs: &Outputs, code: &StreamCode) -> Value {
        outputs.publisher(code).unwrap()["outputs"][0].clone()
    }

    /// Waits (on paused time) until `done`.
    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the state did not arrive within 10 s");
    }

    /// Regression (issue 12, defect e): an HLS packager whose task ends while the stream wants
    /// it is noticed, shown, and restarted with backoff once it can run again.
    #[tokio::test(start_paused = true)]
    async fn an_ended_hls_packager_is_shown_and_restarted_with_backoff() {
        let (hub, stream, writer, outputs) = setup();
        let code = stream.code.clone();
        outputs.start_output(&stream, Output::Hls).unwrap();
        let t0 = tokio::time::Instant::now().into_std();
        outputs.supervise(t0);
        assert_eq!(hls(&outputs, &code)["status"], "running");
        assert_eq!(hls(&outputs, &code)["restart_count"], 0);

        // Its buffer goes away under it: the task ends.
        drop(writer);
        until(|| lock(&outputs.running)[&(code.clone(), None)].is_finished()).await;
        let t1 = tokio::time::Instant::now().into_std();
        outputs.supervise(t1);
        let shown = hls(&outputs, &code);
        assert_eq!(shown["status"], "restarting", "{shown}");
        assert_eq!(shown["last_error"]["message"], "the HLS packager ended");
        let warnings = outputs.warnings(&code);
        assert!(warnings[0].contains("HLS packager ended"), "{warnings:?}");
        assert!(
            !lock(&outputs.running).contains_key(&(code.clone(), None)),
            "the stale window stays up"
        );

        // Not before its delay (1 s); then it tries, fails (no buffer yet) and backs off 2 s.
        outputs.supervise(t1 + Duration::from_millis(900));
        assert!(hls(&outputs, &code)["last_error"]["message"] == "the HLS packager ended");
        outputs.supervise(t1 + FIRST_DELAY);
        let shown = hls(&outputs, &code);
        let message = shown["last_error"]["message"].as_str().unwrap();
        assert!(message.starts_with("restart failed"), "{shown}");
        let _writer = hub.create(stream_buffer(&code), 64).unwrap();
        outputs.supervise(t1 + FIRST_DELAY + Duration::from_millis(1900));
        assert_eq!(hls(&outputs, &code)["status"], "restarting");
        outputs.supervise(t1 + FIRST_DELAY * 3);
        let shown = hls(&outputs, &code);
        assert_eq!(shown["status"], "running", "{shown}");
        assert_eq!(shown["restart_count"], 1);
        assert!(outputs.warnings(&code).is_empty());

        // Stopped by the coordinator: never restarted.
        outputs.stop_output(&code, Output::Hls);
        outputs.supervise(t1 + MAX_DELAY * 2);
        assert!(outputs.publisher(&code).is_none());
        assert!(!lock(&outputs.running).contains_key(&(code.clone(), None)));
    }

    /// HLS and DASH share one packager per rendition: each turns on and off alone, and the
    /// packager keeps running (restarted with what is still wanted) until both are off.
    #[tokio::test(start_paused = true)]
    async fn hls_and_dash_turn_on_and_off_alone_over_one_packager() {
        let (_hub, stream, _writer, outputs) = setup();
        let code = stream.code.clone();
        let settings = |outputs: &Outputs| outputs.packager_settings(&code, None);
        outputs.start_output(&stream, Output::Dash).unwrap();
        assert!(!settings(&outputs).hls && settings(&outputs).dash.is_some());
        assert_eq!(hls(&outputs, &code)["output"], "dash");
        outputs.start_output(&stream, Output::Hls).unwrap();
        assert!(settings(&outputs).hls && settings(&outputs).dash.is_some());
        assert_eq!(hls(&outputs, &code)["output"], "hls");
        // Without a ladder the one packager packages the audio.
        assert_eq!(settings(&outputs).dash.map(|d| d.audio), Some(true));

        outputs.stop_output(&code, Output::Hls);
        assert!(!settings(&outputs).hls && settings(&outputs).dash.is_some());
        assert!(lock(&outputs.running).contains_key(&(code.clone(), None)));
        outputs.stop_output(&code, Output::Dash);
        assert!(!lock(&outputs.running).contains_key(&(code.clone(), None)));
        assert!(outputs.publisher(&code).is_none());
        // Stopping what is off changes nothing.
        outputs.stop_output(&code, Output::Dash);
        assert_eq!(settings(&outputs).dash, None);
    }

    /// A push target that reached its `limit` ends by design: it stays `failed`, visible, and
    /// is not restarted (SPEC §Push).
    #[tokio::test(start_paused = true)]
    async fn a_push_that_reached_its_limit_stays_failed() {
        let (_hub, stream, _writer, outputs) = setup();
        let code = stream.code.clone();
        // Nothing listens there: the first connect fails, and with limit 1 that is final.
        let url = closed_url();
        let target = push_spec(&stream, &url, "", 1);
        outputs.start_push(&code, &target).unwrap();
        let key = (code.clone(), url);
        until(|| lock(&outputs.pushes)[&key].is_finished()).await;
        let now = tokio::time::Instant::now().into_std();
        outputs.supervise(now);
        outputs.supervise(now + MAX_DELAY);
        let push = outputs.publisher(&code).unwrap()["pushes"][0].clone();
        assert_eq!(push["status"], "failed", "{push}");
        assert_eq!(push["restart_count"], 0, "{push}");
        assert!(outputs.warnings(&code).is_empty());
    }

    /// A target pushing a rung reads that rung; when the rung leaves the ladder it is
    /// `failed` with the reason (never moved to another feed), and it starts again once the
    /// rung is back. A target whose rung is missing at start is failed at once.
    #[tokio::test(start_paused = true)]
    async fn a_push_whose_rung_is_gone_fails_visibly_until_it_is_back() {
        let (hub, stream, _main, outputs) = setup();
        let code = stream.code.clone();
        let rung = BufferId::Rendition(code.clone(), 1);
        let writer = hub.create(rung.clone(), 64).unwrap();
        let url = closed_url();
        outputs
            .start_push(&code, &push_spec(&stream, &url, "track_2", 0))
            .unwrap();
        let push = |outputs: &Outputs| outputs.publisher(&code).unwrap()["pushes"][0].clone();
        assert_eq!(push(&outputs)["track"], "track_2");
        let key = (code.clone(), url.clone());

        drop(writer);
        until(|| lock(&outputs.pushes)[&key].is_finished()).await;
        let t0 = tokio::time::Instant::now().into_std();
        outputs.supervise(t0);
        let shown = push(&outputs);
        assert_eq!(shown["status"], "failed", "{shown}");
        let why = shown["errors"][0]["message"].as_str().unwrap();
        assert!(
            why.contains("track_2 is not in the stream's ladder"),
            "{shown}"
        );
        assert_eq!(outputs.metrics(&code).pushes[0].1, 0, "gauge 0: failed");
        let warnings = outputs.warnings(&code);
        assert!(warnings[0].contains("a push target failed"), "{warnings:?}");
        // No restart with backoff while the rung is missing.
        outputs.supervise(t0 + MAX_DELAY * 2);
        assert_eq!(push(&outputs)["status"], "failed");
        assert!(lock(&outputs.pushes)[&key].is_finished());

        // The rung is back: the target starts on it.
        let _writer = hub.create(rung, 64).unwrap();
        outputs.supervise(t0 + MAX_DELAY * 3);
        assert_ne!(push(&outputs)["status"], "failed");
        assert!(!lock(&outputs.pushes)[&key].is_finished());
        assert!(outputs.warnings(&code).is_empty());
        outputs.stop_push(&code, &url);

        // Missing at start: failed at once, the start itself does not fail.
        outputs
            .start_push(&code, &push_spec(&stream, &url, "track_3", 0))
            .unwrap();
        assert!(!lock(&outputs.pushes).contains_key(&key));
        let shown = push(&outputs);
        assert_eq!(shown["status"], "failed", "{shown}");
        assert!(
            shown["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("track_3")
        );
    }
}
