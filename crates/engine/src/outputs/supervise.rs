//! Supervision of the output tasks (issue 12, defect e): an HLS packager or a push target whose
//! task ended while its stream still wants it is noticed, restarted with backoff, and shown in
//! `runtime.publisher` (status, last error, restart count) and `runtime.warnings` meanwhile.
//!
//! Each output the coordinator started has a [`Supervised`] record in [`Outputs`]; stopping the
//! output removes it, so only outputs the stream still wants are ever restarted. A push target
//! that reached its `limit` ends by design: it stays `failed` and visible, and is not restarted
//! (SPEC §Push).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_hub::BufferId;
use tributary_publish::{HlsHandle, PushSettings, PushStatus};

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

/// What supervision knows about one wanted output task.
#[derive(Debug)]
pub(super) struct Supervised {
    /// A push target's settings, to start it again.
    push: Option<PushSettings>,
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
    pub(super) fn new(push: Option<PushSettings>, now: Instant) -> Self {
        Self {
            push,
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

    /// `status`, `restart_count` and `last_error` for `runtime.publisher`.
    pub(super) fn json(&self, entry: &mut Value) {
        if self.retry_at.is_some() {
            entry["status"] = json!("restarting");
        }
        entry["restart_count"] = json!(self.restarts);
        if let Some((at, message)) = &self.last_error {
            entry["last_error"] = json!({"message": message, "at": rfc3339(*at)});
        }
    }

    /// The `runtime.warnings` line while the task is down.
    pub(super) fn warning(&self, what: &str) -> Option<String> {
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
        let ended = {
            let pushes = lock(&self.pushes);
            pushes
                .get(&key)
                .filter(|handle| handle.is_finished())
                .map(|handle| handle.state().status)
        };
        match ended {
            // `limit` reached: it stays failed and visible (SPEC §Push).
            Some(PushStatus::Failed) => return,
            Some(_) if record.retry_at.is_none() => {
                tracing::warn!(stream = %code, "a push task ended; restarting it");
                record.ended(now, "the push task ended".to_owned());
            }
            _ => {}
        }
        if !record.due(now) {
            return;
        }
        let Some(settings) = record.push.clone() else {
            return;
        };
        let started = tributary_publish::start_push(
            &self.hub,
            code.clone(),
            stream_buffer(code),
            settings,
            self.push_observer(code),
        );
        match started {
            Ok(handle) => {
                // Replaces the ended task's handle, whose state showed meanwhile.
                lock(&self.pushes).insert(key, handle);
                record.restarted(now);
            }
            Err(e) => record.ended(now, format!("restart failed: {e}")),
        }
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

#[cfg(test)]
mod tests {
    use tributary_domain::diff::Output;
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
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("rtmp://{}/live/key", closed.local_addr().unwrap());
        drop(closed);
        let target = Push {
            url: url.clone(),
            enabled: true,
            timeout_sec: 1,
            retry_timeout_sec: 1,
            limit: 1,
            comment: String::new(),
            profile: String::new(),
        };
        outputs.start_push(&stream, &target).unwrap();
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
}
