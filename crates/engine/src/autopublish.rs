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
//! refused as busy if the push input already has one). Limits (`[autopublish]`, defaults of
//! SPEC §Defaults): at most `max_runtime_streams` (100) runtime streams and
//! `max_creations_per_min` (10) creations per minute per source address; a refusal is logged
//! with peer and path and counted in `tributary_publish_rejected_total{reason="limit"}`. The
//! reaper ([`AutoPublish::reap`]) removes a runtime stream `idle_timeout_sec` (30 s) after its
//! last packet, looking every `sweep_interval_sec` (5 s). With `autopublish.enabled = false`
//! (or the section `null`) nothing is created; runtime streams already running expire as
//! usual. The settings are read from the live configuration at each creation and each sweep,
//! so a changed value applies to the next one.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_domain::config::{AutopublishSection, ServerConfig};
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
    /// The creations per source address in the last minute.
    limits: Limits,
    /// The live configuration: `[autopublish]` is read from it at each creation and sweep.
    config: tokio::sync::watch::Receiver<Arc<ServerConfig>>,
}

impl AutoPublish {
    pub(crate) fn new(
        runtime: Arc<RuntimeStreams>,
        store: Arc<dyn StreamRepository>,
        coordinator: WeakCoordinator,
        events: EventBus,
        manager: Arc<Manager>,
        auth: LivePublishAuth,
        config: tokio::sync::watch::Receiver<Arc<ServerConfig>>,
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
            config,
        }
    }

    /// `[autopublish]` as configured now; `None` when it is off (`enabled = false`, or the
    /// section `null`).
    fn settings(&self) -> Option<AutopublishSection> {
        let config = self.config.borrow();
        config
            .autopublish
            .as_ref()
            .filter(|section| section.enabled())
            .cloned()
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
        let Some(settings) = self.settings() else {
            return Err(unknown(format!(
                "no running stream named {path:?} and no push input keyed by its last segment \
                 (auto-publish is off: autopublish.enabled = false or autopublish = null)"
            )));
        };
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
        self.admit(&settings, &request.peer, path, now)?;
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

    /// Checks and records one creation from `peer` at `now` under both limits of
    /// `settings`; a refusal is logged with peer and path.
    fn admit(
        &self,
        settings: &AutopublishSection,
        peer: &SocketAddr,
        path: &str,
        now: Instant,
    ) -> Result<(), (Refusal, PublishRefusal)> {
        let caps = Caps {
            streams: settings.max_runtime_streams(),
            per_minute: settings.max_creations_per_min(),
        };
        self.limits
            .admit(caps, self.runtime.len(), peer.ip(), now)
            .map_err(|why| {
                tracing::warn!(peer = %peer, path, "auto-publish refused: {why}");
                (Refusal::Busy(why), PublishRefusal::Limit)
            })
    }

    /// Removes each runtime stream `idle_timeout_sec` after its last packet (or its creation,
    /// without one), looking every `sweep_interval_sec`, until `shutdown`. Both are read from
    /// the live configuration at each look (the defaults while the section is `null`), so the
    /// streams made before auto-publish was turned off still expire.
    pub(crate) async fn reap(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let section = self.config.borrow().autopublish.clone().unwrap_or_default();
            let (idle, sweep) = (section.idle_timeout(), section.sweep_interval());
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(sweep) => {}
            }
            let now = Instant::now();
            for (code, entry) in self.runtime.list() {
                let last = self
                    .manager
                    .last_frame_at(&code)
                    .map(Instant::from_std)
                    .map_or(entry.created, |at| at.max(entry.created));
                if now.duration_since(last) < idle {
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
                    "auto-publish: runtime stream expired (no packet for {} s)", idle.as_secs());
                self.events.publish(
                    EventType::StreamRuntimeExpired,
                    code.as_str(),
                    json!({"template_code": entry.template}),
                );
            }
        }
    }
}

/// The creations per source address in the last [`CREATION_WINDOW`], checked against the
/// [`Caps`] configured at each creation (SPEC §Templates).
#[derive(Debug, Default)]
struct Limits {
    /// Recent creation instants per source address (the window's, at most
    /// `max_creations_per_min` each); addresses without one are pruned at every creation,
    /// so the map holds only addresses that created in the last minute.
    recent: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// The two limits a creation is checked against (`[autopublish]`).
#[derive(Debug, Clone, Copy)]
struct Caps {
    /// `max_runtime_streams`: runtime streams at once.
    streams: usize,
    /// `max_creations_per_min`: creations per source address per minute.
    per_minute: usize,
}

impl Limits {
    /// Admits one creation from `ip` at `now` with `running` runtime streams under `caps`,
    /// recording it; or why not.
    fn admit(&self, caps: Caps, running: usize, ip: IpAddr, now: Instant) -> Result<(), String> {
        if running >= caps.streams {
            return Err(format!(
                "the server already runs {} auto-published streams, the most it may \
                 (autopublish.max_runtime_streams)",
                caps.streams
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
        if times.len() >= caps.per_minute {
            return Err(format!(
                "{} auto-published streams were created from this address in the last minute, \
                 the most it may (autopublish.max_creations_per_min)",
                caps.per_minute
            ));
        }
        times.push_back(now);
        Ok(())
    }
}

/// The window `max_creations_per_min` counts over.
const CREATION_WINDOW: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn creations_per_minute_per_address_and_streams_in_all_are_capped() {
        let limits = Limits::default();
        let caps = Caps {
            streams: 100,
            per_minute: 10,
        };
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..caps.per_minute {
            limits.admit(caps, 0, a, Instant::now()).unwrap();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let refused = limits.admit(caps, 0, a, Instant::now()).unwrap_err();
        assert!(refused.contains("in the last minute"), "{refused}");
        assert!(
            refused.contains("autopublish.max_creations_per_min"),
            "{refused}"
        );
        limits
            .admit(caps, 0, b, Instant::now())
            .expect("another address has its own budget");
        // The first creation leaves the window 60 s after it: one more is admitted, not two.
        tokio::time::advance(Duration::from_secs(50)).await;
        limits.admit(caps, 0, a, Instant::now()).unwrap();
        assert!(limits.admit(caps, 0, a, Instant::now()).is_err());
        let full = limits.admit(caps, 100, b, Instant::now()).unwrap_err();
        assert!(full.contains("100 auto-published streams"), "{full}");
        assert!(full.contains("autopublish.max_runtime_streams"), "{full}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_caps_are_those_configured_at_each_creation() {
        let limits = Limits::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let tight = Caps {
            streams: 3,
            per_minute: 2,
        };
        limits.admit(tight, 0, ip, Instant::now()).unwrap();
        limits.admit(tight, 1, ip, Instant::now()).unwrap();
        let refused = limits.admit(tight, 2, ip, Instant::now()).unwrap_err();
        assert!(refused.starts_with("2 auto-published streams"), "{refused}");
        // Raised (a configuration change): the same address may create again at once.
        let raised = Caps {
            streams: 3,
            per_minute: 5,
        };
        limits.admit(raised, 2, ip, Instant::now()).unwrap();
        let full = limits.admit(raised, 3, ip, Instant::now()).unwrap_err();
        assert!(full.contains("already runs 3"), "{full}");
    }
}
