//! Auto-publish (SPEC §Templates): a publish to a path that names no stream but lies under a
//! template's prefix creates a runtime stream from that template.
//!
//! A runtime stream is not stored. Its record is an empty stream naming the template, kept in
//! [`RuntimeStreams`], which the coordinator's actor reads when the store has no record for a
//! code: so a runtime stream starts, is template-resolved, hot-reloaded on a template edit and
//! left alone by the reconciler exactly as a stored stream is, through the same commands.
//! Creating one is "insert, then converge"; removing one is "remove, then converge" (the
//! actor then finds no record and stops the stream).
//!
//! Starting a stream is the actor's asynchronous work, while the listeners ask the router for a
//! grant synchronously ([`tributary_serve::Router`]); the router therefore hands the creation
//! to the listener as the publish's preparation ([`Router::prepare_publish`]), which the
//! connection's task awaits before it asks for the grant: no thread is held while the stream
//! starts.
//!
//! [`Router::prepare_publish`]: tributary_serve::Router::prepare_publish
//!
//! Creations are serialised (one at a time, process-wide), so concurrent publishes to one path
//! make one stream: the second finds it running and is routed to it like any publisher (and
//! refused as busy if the push input already has one). Limits: at most
//! [`MAX_RUNTIME_STREAMS`] runtime streams and [`MAX_CREATIONS_PER_MIN`] creations per minute
//! per source address; a refusal is logged with peer and path and counted in
//! `tributary_publish_rejected_total{reason="limit"}`. The reaper ([`AutoPublish::reap`])
//! removes a runtime stream [`IDLE_TIMEOUT`] after its last packet, sweeping every
//! [`SWEEP_INTERVAL`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_domain::event::EventType;
use tributary_domain::template::matching;
use tributary_domain::{Stream, StreamCode};
use tributary_serve::{PublishRequest, Refusal};
use tributary_store::StreamRepository;

use crate::coordinator::WeakCoordinator;
use crate::events::EventBus;
use crate::lock;
use crate::manager::Manager;
use crate::metrics::PublishRefusal;
use crate::router::LivePublishAuth;

/// The runtime streams by code, with the template each was made from. Shared by the
/// coordinator (which reads a runtime stream's record here) and [`AutoPublish`].
#[derive(Debug, Default)]
pub(crate) struct RuntimeStreams {
    entries: Mutex<HashMap<StreamCode, RuntimeEntry>>,
}

/// One runtime stream.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeEntry {
    /// The template it was created from.
    pub(crate) template: String,
    /// When it was created: its idle time counts from here until a first packet arrives.
    pub(crate) created: Instant,
}

impl RuntimeStreams {
    /// The record of runtime stream `code`: an empty stream naming its template.
    pub(crate) fn record(&self, code: &StreamCode) -> Option<Stream> {
        let template = lock(&self.entries).get(code)?.template.clone();
        let mut stream = Stream::new(code.clone());
        stream.template = Some(template);
        Some(stream)
    }

    /// Every runtime stream and its template, sorted by code.
    pub(crate) fn list(&self) -> Vec<(StreamCode, RuntimeEntry)> {
        let mut all: Vec<_> = lock(&self.entries)
            .iter()
            .map(|(c, e)| (c.clone(), e.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Whether `code` is a runtime stream.
    pub(crate) fn contains(&self, code: &StreamCode) -> bool {
        lock(&self.entries).contains_key(code)
    }

    /// Forgets `code`; its template if it was a runtime stream.
    pub(crate) fn remove(&self, code: &StreamCode) -> Option<String> {
        lock(&self.entries).remove(code).map(|e| e.template)
    }

    fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub(crate) fn insert(&self, code: StreamCode, entry: RuntimeEntry) {
        lock(&self.entries).insert(code, entry);
    }
}

/// What the router calls for a publish to an unknown path.
pub(crate) struct AutoPublish {
    /// Where runtime streams are recorded (the coordinator's).
    runtime: Arc<RuntimeStreams>,
    /// The templates and the stored streams (a stored stream is never shadowed).
    store: Arc<dyn StreamRepository>,
    /// Starts and stops runtime streams.
    coordinator: WeakCoordinator,
    /// `stream.runtime_created` / `stream.runtime_expired`.
    events: EventBus,
    /// Last packet per running stream, for the reaper.
    manager: Arc<Manager>,
    /// `security.publish_auth`: the template's key is checked before anything is created.
    auth: LivePublishAuth,
    /// One creation at a time: concurrent publishes to one path create one stream.
    creating: tokio::sync::Mutex<()>,
    /// The creation limits.
    limits: Limits,
}

impl AutoPublish {
    pub(crate) fn new(
        runtime: Arc<RuntimeStreams>,
        store: Arc<dyn StreamRepository>,
        coordinator: WeakCoordinator,
        events: EventBus,
        manager: Arc<Manager>,
        auth: LivePublishAuth,
    ) -> Self {
        Self {
            runtime,
            store,
            coordinator,
            events,
            manager,
            auth,
            creating: tokio::sync::Mutex::new(()),
            limits: Limits::default(),
        }
    }

    /// Creates the runtime stream `request.path` names, if a template's prefix covers it,
    /// and waits until it runs. `Ok` also when it runs already; the caller then routes the
    /// publisher as to any running stream.
    pub(crate) async fn create(
        &self,
        request: &PublishRequest,
    ) -> Result<(), (Refusal, PublishRefusal)> {
        let unknown = |why: String| (Refusal::NotFound(why), PublishRefusal::Unknown);
        let path = request.path.trim_matches('/');
        let _one = self.creating.lock().await;
        let Some(coordinator) = self.coordinator.upgrade() else {
            return Err(unknown("the server is shutting down".into()));
        };
        let store = Arc::clone(&self.store);
        let templates = tokio::task::spawn_blocking(move || store.list_templates())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let Some((template, prefix)) = matching(&templates, path) else {
            return Err(unknown(format!(
                "no running stream named {path:?}, no push input keyed by its last segment, and \
                 no template prefix covers it"
            )));
        };
        let name = path.strip_prefix("live/").unwrap_or(path);
        let Ok(code) = StreamCode::parse(name) else {
            return Err(unknown(format!(
                "{path:?} is under prefix {prefix:?} of template {}, but {name:?} is not a valid \
                 stream code",
                template.code
            )));
        };
        if coordinator.is_running(&code) {
            return Ok(());
        }
        if !template.publishes() {
            return Err(unknown(format!(
                "{path:?} is under prefix {prefix:?} of template {}, which has no publish:// \
                 input to auto-publish with",
                template.code
            )));
        }
        if let Err(why) = self
            .auth
            .get()
            .check(&template.stream_key, request, "template")
        {
            tracing::warn!(peer = %request.peer, path, template = %template.code,
                "auto-publish refused: {why}");
            return Err((
                Refusal::Denied(format!("template {}: {why}", template.code)),
                PublishRefusal::Auth,
            ));
        }
        let lookup = code.clone();
        let store = Arc::clone(&self.store);
        if let Ok(Ok(Some(_))) = tokio::task::spawn_blocking(move || store.get(&lookup)).await {
            return Err(unknown(format!(
                "stream {code} is stored but not running; auto-publish does not shadow it"
            )));
        }
        let now = Instant::now();
        self.admit(&request.peer, path, now)?;
        let entry = RuntimeEntry {
            template: template.code.clone(),
            created: now,
        };
        self.runtime.insert(code.clone(), entry);
        match coordinator.converge(&code).await {
            Ok(_) if coordinator.is_running(&code) => {}
            outcome => {
                self.runtime.remove(&code);
                let why = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "it did not start".to_owned(),
                };
                tracing::warn!(stream = %code, template = %template.code, error = %why,
                    "auto-publish: the runtime stream did not start");
                return Err(unknown(format!(
                    "stream {code} from template {}: {why}",
                    template.code
                )));
            }
        }
        tracing::info!(stream = %code, template = %template.code, peer = %request.peer,
            "auto-publish: runtime stream created");
        self.events.publish(
            EventType::StreamRuntimeCreated,
            code.as_str(),
            json!({"template_code": template.code}),
        );
        Ok(())
    }

    /// Checks and records one creation from `peer` at `now` under both limits; a refusal is
    /// logged with peer and path.
    fn admit(
        &self,
        peer: &SocketAddr,
        path: &str,
        now: Instant,
    ) -> Result<(), (Refusal, PublishRefusal)> {
        self.limits
            .admit(self.runtime.len(), peer.ip(), now)
            .map_err(|why| {
                tracing::warn!(peer = %peer, path, "auto-publish refused: {why}");
                (Refusal::Busy(why), PublishRefusal::Limit)
            })
    }

    /// Removes each runtime stream [`IDLE_TIMEOUT`] after its last packet (or its creation,
    /// without one), every [`SWEEP_INTERVAL`], until `shutdown`.
    pub(crate) async fn reap(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = Instant::now();
            for (code, entry) in self.runtime.list() {
                let last = self
                    .manager
                    .last_frame_at(&code)
                    .map(Instant::from_std)
                    .map_or(entry.created, |at| at.max(entry.created));
                if now.duration_since(last) < IDLE_TIMEOUT {
                    continue;
                }
                let Some(coordinator) = self.coordinator.upgrade() else {
                    return;
                };
                self.runtime.remove(&code);
                if let Err(e) = coordinator.converge(&code).await {
                    tracing::warn!(stream = %code, error = %e, "auto-publish: stopping an idle runtime stream failed");
                }
                tracing::info!(stream = %code, template = %entry.template,
                    "auto-publish: runtime stream expired (no packet for {} s)", IDLE_TIMEOUT.as_secs());
                self.events.publish(
                    EventType::StreamRuntimeExpired,
                    code.as_str(),
                    json!({"template_code": entry.template}),
                );
            }
        }
    }
}

/// The creation limits of SPEC §Templates: at most [`MAX_RUNTIME_STREAMS`] runtime streams,
/// at most [`MAX_CREATIONS_PER_MIN`] creations per source address in any [`CREATION_WINDOW`].
#[derive(Debug, Default)]
struct Limits {
    /// Recent creation instants per source address (the window's, at most
    /// [`MAX_CREATIONS_PER_MIN`] each); addresses without one are pruned at every creation,
    /// so the map holds only addresses that created in the last minute.
    recent: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Limits {
    /// Admits one creation from `ip` at `now` with `running` runtime streams, recording it;
    /// or why not.
    fn admit(&self, running: usize, ip: IpAddr, now: Instant) -> Result<(), String> {
        if running >= MAX_RUNTIME_STREAMS {
            return Err(format!(
                "the server already runs {MAX_RUNTIME_STREAMS} auto-published streams, the most \
                 it may"
            ));
        }
        let mut recent = lock(&self.recent);
        recent.retain(|_, times| {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= CREATION_WINDOW)
            {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = recent.entry(ip).or_default();
        if times.len() >= MAX_CREATIONS_PER_MIN {
            return Err(format!(
                "{MAX_CREATIONS_PER_MIN} auto-published streams were created from this address in \
                 the last minute, the most it may"
            ));
        }
        times.push_back(now);
        Ok(())
    }
}

/// How long a runtime stream lives after its last packet (SPEC §Defaults "Auto-publish": idle
/// 30 s). A constant until the `autopublish` config section lands: SPEC names its values but
/// not its keys.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the reaper looks (SPEC §Defaults: sweep 5 s).
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The most runtime streams at once (SPEC §Templates: 100): each is a pipeline an
/// unauthenticated path name could otherwise multiply.
pub(crate) const MAX_RUNTIME_STREAMS: usize = 100;
/// The most creations per source address per [`CREATION_WINDOW`] (SPEC §Templates: 10 per
/// minute).
pub(crate) const MAX_CREATIONS_PER_MIN: usize = 10;
/// The window [`MAX_CREATIONS_PER_MIN`] counts over.
const CREATION_WINDOW: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ten_creations_a_minute_per_address_and_a_hundred_streams_in_all() {
        let limits = Limits::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..MAX_CREATIONS_PER_MIN {
            limits.admit(0, a, Instant::now()).unwrap();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let refused = limits.admit(0, a, Instant::now()).unwrap_err();
        assert!(refused.contains("in the last minute"), "{refused}");
        limits
            .admit(0, b, Instant::now())
            .expect("another address has its own budget");
        // The first creation leaves the window 60 s after it: one more is admitted, not two.
        tokio::time::advance(Duration::from_secs(50)).await;
        limits.admit(0, a, Instant::now()).unwrap();
        assert!(limits.admit(0, a, Instant::now()).is_err());
        let full = limits
            .admit(MAX_RUNTIME_STREAMS, b, Instant::now())
            .unwrap_err();
        assert!(full.contains("100 auto-published streams"), "{full}");
    }
}
