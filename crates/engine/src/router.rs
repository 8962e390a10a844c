//! The engine's answer to the listeners (`serve::Router`, ARCHITECTURE.md §3): name routing
//! (SPEC §Publisher), publish authentication (SPEC §Security), push slots and play gates.
//!
//! A publish names a stream by its path: `P` if a running stream is called `P`, else `P`
//! without a leading `live/`; failing both, the stream one of whose legacy push inputs
//! (`rtmp://0.0.0.0/<app>/<key>`) has the path's last segment as its key; failing all of
//! them, a template prefix covering the path creates a runtime stream (SPEC §Templates,
//! [`crate::autopublish`]), which is then routed as any running stream. The publisher takes
//! one free push input of that stream: the `publish://?slot=<name>` input `?slot=<name>`
//! names, the keyed one, or the most preferred free one (`manager::publisher` says how a stream with several push inputs
//! tells its encoders apart). The stream's
//! `stream_key`, when set, must match the `?key=` the publisher sent (constant-time compare);
//! a stream without a key accepts loopback publishers only (`security.publish_auth =
//! "required"`, the default), any publisher under `if_set`, and keys are not checked under
//! `off`. An address that keeps sending wrong keys is blocked for a doubling time
//! ([`crate::backoff`]). A play needs the stream running with `protocols.rtmp` (RTMP) or
//! `protocols.srt` (SRT) on, and a seat
//! under the play caps (256 per stream, 4096 in total; [`crate::caps`]); a granted play is a
//! connection session ([`crate::sessions`]) that a kick ends through the play's stop token.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use subtle::ConstantTimeEq;
use tributary_domain::StreamCode;
use tributary_domain::diff::Output;
use tributary_domain::spec::PushVia;
use tributary_hub::{BufferId, Hub};
use tributary_serve::{
    ByteMeter, PlayGrant, PlayRequest, Preparation, Protocol, PublishGrant, PublishRequest,
    Refusal, Router,
};

use crate::autopublish::AutoPublish;
use crate::backoff::PublishBackoff;
use crate::caps::PlayCaps;
use crate::manager::{Manager, PushTarget, SlotRefusal};
use crate::metrics::{Metrics, PlayRefusal, PublishRefusal};
use crate::outputs::Outputs;
use crate::sessions::{Proto as SessionProto, Sessions};
use tributary_domain::signing::PlaySigner;

/// How publishers authenticate (`security.publish_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishAuth {
    /// A stream with a key needs it; one without accepts loopback publishers only.
    Required,
    /// A stream with a key needs it; one without accepts anyone.
    IfSet,
    /// No key is checked.
    Off,
}

/// `security.publish_auth` as every publish check reads it: one value shared by the listeners'
/// router and auto-publish, replaced when the config API changes it (SPEC §Config "Hot
/// apply": the next publish is checked the new way; publishers already in are not cut).
#[derive(Debug, Clone)]
pub(crate) struct LivePublishAuth(Arc<std::sync::atomic::AtomicU8>);

impl LivePublishAuth {
    pub(crate) fn new(auth: PublishAuth) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicU8::new(auth as u8)))
    }

    /// The mode now.
    pub(crate) fn get(&self) -> PublishAuth {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            x if x == PublishAuth::IfSet as u8 => PublishAuth::IfSet,
            x if x == PublishAuth::Off as u8 => PublishAuth::Off,
            _ => PublishAuth::Required,
        }
    }

    /// The mode from the next publish on.
    pub(crate) fn set(&self, auth: PublishAuth) {
        self.0
            .store(auth as u8, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `security.play_signing` as it is now: shared by the listeners' router and the media
/// routes, replaced by a configuration change, read once per play or media request.
#[derive(Clone, Default)]
pub(crate) struct LiveSigner(Arc<std::sync::RwLock<Option<Arc<PlaySigner>>>>);

impl LiveSigner {
    pub(crate) fn new(signer: Option<PlaySigner>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(signer.map(Arc::new))))
    }

    /// The signer now; `None` while signing is off.
    pub(crate) fn get(&self) -> Option<Arc<PlaySigner>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The signer from the next play or media request on (plays already granted go on).
    pub(crate) fn set(&self, signer: Option<PlaySigner>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = signer.map(Arc::new);
    }
}

impl PublishAuth {
    pub(crate) fn parse(value: &str) -> Self {
        match value {
            "if_set" => Self::IfSet,
            "off" => Self::Off,
            _ => Self::Required,
        }
    }

    /// Whether `request` may publish where `key` is the resolved `stream_key` (SPEC §Security
    /// "Publish authentication"; the key compared in constant time); if not, why, naming the
    /// `owner` of the key (`stream`, `template`) and never the key.
    pub(crate) fn check(
        self,
        key: &str,
        request: &PublishRequest,
        owner: &str,
    ) -> Result<(), String> {
        let given = request.key.as_deref().unwrap_or("");
        let allowed = match self {
            Self::Off => true,
            _ if !key.is_empty() => bool::from(given.as_bytes().ct_eq(key.as_bytes())),
            Self::IfSet => true,
            Self::Required => is_loopback(&request.peer),
        };
        if allowed {
            Ok(())
        } else if key.is_empty() {
            Err(format!(
                "the {owner} has no stream_key: only loopback publishers are accepted"
            ))
        } else if given.is_empty() {
            Err("missing key (publish to <path>?key=<stream_key>)".to_owned())
        } else {
            Err("wrong key".to_owned())
        }
    }
}

/// The [`Router`] the listeners call.
pub(crate) struct EngineRouter {
    /// Push slots and stream keys of running streams.
    manager: Arc<Manager>,
    /// Which running streams have RTMP play on.
    outputs: Arc<Outputs>,
    /// The process's hub, handed to players.
    hub: Hub,
    /// `security.publish_auth`.
    auth: LivePublishAuth,
    /// Plays per stream and in total.
    caps: PlayCaps,
    /// Failed publishes by address: a key cannot be guessed at network speed.
    backoff: Arc<PublishBackoff>,
    /// Where refused plays and publishes are counted.
    metrics: Arc<Metrics>,
    /// Where each granted play is recorded as a connection session.
    sessions: Arc<Sessions>,
    /// `security.play_signing`, when on: every play needs a signed URL.
    signer: LiveSigner,
    /// Creates runtime streams for publishes under a template prefix; set once the
    /// coordinator exists ([`EngineRouter::attach`]).
    autopublish: OnceLock<Arc<AutoPublish>>,
}

impl EngineRouter {
    /// The runtime warning of a stream that takes publishers without a key while
    /// `security.publish_auth` is `required` (SPEC §Security): only loopback publishers get in.
    pub(crate) fn publish_warning(&self, code: &StreamCode) -> Option<String> {
        (self.auth.get() == PublishAuth::Required && self.manager.keyless_push(code))
            .then(|| KEYLESS_PUBLISH.to_owned())
    }
}

impl EngineRouter {
    pub(crate) fn new(
        manager: Arc<Manager>,
        outputs: Arc<Outputs>,
        hub: Hub,
        caps: PlayCaps,
        sessions: Arc<Sessions>,
        auth: LivePublishAuth,
        metrics: Arc<Metrics>,
        signer: LiveSigner,
    ) -> Self {
        Self {
            manager,
            outputs,
            hub,
            auth,
            caps,
            backoff: Arc::default(),
            metrics,
            sessions,
            signer,
            autopublish: OnceLock::new(),
        }
    }

    /// Turns auto-publish on (SPEC §Templates); the router is built before the coordinator.
    pub(crate) fn attach(&self, autopublish: Arc<AutoPublish>) {
        let _ = self.autopublish.set(autopublish);
    }

    /// [`Router::publish`], with why a refusal was made (for the metrics).
    fn admit_publish(
        &self,
        request: PublishRequest,
    ) -> Result<PublishGrant, (Refusal, PublishRefusal)> {
        let unknown = |refusal| (refusal, PublishRefusal::Unknown);
        let Some(listener) = push_via(request.protocol) else {
            return Err(unknown(Refusal::NotFound(format!(
                "publishing over {} is not supported yet",
                request.protocol
            ))));
        };
        let now = tokio::time::Instant::now();
        if let Err(blocked) = self.backoff.check(request.peer.ip(), now) {
            let refusal = Refusal::Denied(format!(
                "too many failed publishes from this address; retry in {} s \
                 ({} publishes refused since start)",
                blocked.remaining.as_secs().max(1),
                blocked.refused
            ));
            return Err((refusal, PublishRefusal::Limit));
        }
        let slot = request.slot.as_deref();
        let name = request.path.rsplit('/').next().unwrap_or("");
        let (code, key, target) = match self.resolve(&request.path) {
            Some((code, key)) => (code, key, PushTarget::Named { slot, name }),
            None => match self.manager.keyed_stream(name, listener) {
                Some((code, key)) => (code, key, PushTarget::Keyed(name)),
                // Auto-publish, if a template covers the path, started the stream in
                // `prepare_publish`; it ran, so `resolve` found it, unless it stopped since.
                None => {
                    return Err(unknown(Refusal::NotFound(format!(
                        "no running stream named {:?}, no push input keyed by its last segment, \
                         and no template prefix covers it",
                        request.path
                    ))));
                }
            },
        };
        if let Err(why) = self.auth.get().check(&key, &request, "stream") {
            let blocked = self.backoff.fail(request.peer.ip(), now);
            let refused = self.backoff.refused();
            let refusal = Refusal::Denied(match blocked {
                Some(block) => format!(
                    "stream {code}: {why}; this address is blocked for {} s \
                     ({refused} publishes refused since start)",
                    block.as_secs()
                ),
                None => format!("stream {code}: {why} ({refused} publishes refused since start)"),
            });
            return Err((refusal, PublishRefusal::Auth));
        }
        self.backoff.succeed(request.peer.ip());
        match self
            .manager
            .claim_publisher(&code, target, listener, request.peer)
        {
            Ok((port, priority, guard)) => {
                tracing::info!(stream = %code, priority, peer = %request.peer,
                    "publisher takes push input");
                Ok(PublishGrant {
                    code,
                    port,
                    guard: Box::new(guard),
                })
            }
            Err(SlotRefusal::NotRunning) => Err(unknown(Refusal::NotFound(format!(
                "stream {code} is not running"
            )))),
            Err(SlotRefusal::NoPushInput) => Err(unknown(Refusal::NotFound(format!(
                "stream {code} has no push input for this publisher (publish:// for \
                 live/<code>, or rtmp://0.0.0.0/<app>/<key> for <app>/<key>)"
            )))),
            Err(SlotRefusal::NoSuchSlot) => Err(unknown(Refusal::NotFound(format!(
                "stream {code} has no input publish://?slot={}",
                slot.unwrap_or_default()
            )))),
            Err(SlotRefusal::Busy) => {
                let refusal = Refusal::Busy(match slot {
                    Some(name) => {
                        format!("stream {code}: slot {name} already has a live publisher")
                    }
                    None => format!("stream {code}: every push input already has a live publisher"),
                });
                Err((refusal, PublishRefusal::Busy))
            }
        }
    }

    /// The running stream a path names (SPEC §Publisher "Name routing").
    fn resolve(&self, path: &str) -> Option<(StreamCode, String)> {
        let path = path.trim_matches('/');
        let candidates = [Some(path), path.strip_prefix("live/")];
        candidates.into_iter().flatten().find_map(|candidate| {
            let code: StreamCode = candidate.parse().ok()?;
            let key = self.manager.stream_key(&code)?;
            Some((code, key))
        })
    }
}

fn is_loopback(peer: &SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl Router for EngineRouter {
    /// Auto-publish (SPEC §Templates): a publish naming no running stream and no keyed push
    /// input, from an address not blocked, is prepared by creating the runtime stream its
    /// template's prefix covers, if one does ([`AutoPublish::create`]); `publish` then routes it
    /// like any publisher.
    fn prepare_publish(&self, request: &PublishRequest) -> Option<Preparation> {
        let autopublish = Arc::clone(self.autopublish.get()?);
        let listener = push_via(request.protocol)?;
        let name = request.path.rsplit('/').next().unwrap_or("");
        let now = tokio::time::Instant::now();
        if self.resolve(&request.path).is_some()
            || self.manager.keyed_stream(name, listener).is_some()
            || self.backoff.is_blocked(request.peer.ip(), now)
        {
            return None;
        }
        let request = request.clone();
        let backoff = Arc::clone(&self.backoff);
        let metrics = Arc::clone(&self.metrics);
        Some(Box::pin(async move {
            autopublish
                .create(&request)
                .await
                .map_err(|(refusal, why)| {
                    if why == PublishRefusal::Auth {
                        backoff.fail(request.peer.ip(), now);
                    }
                    metrics.publish_refused(proto_name(request.protocol), why);
                    refusal
                })
        }))
    }

    fn publish(&self, request: PublishRequest) -> Result<PublishGrant, Refusal> {
        let proto = proto_name(request.protocol);
        self.admit_publish(request).map_err(|(refusal, why)| {
            self.metrics.publish_refused(proto, why);
            refusal
        })
    }

    fn play(&self, request: PlayRequest) -> Result<PlayGrant, Refusal> {
        let proto = proto_name(request.protocol);
        let refused = |code: Option<&StreamCode>, why, refusal| {
            self.metrics.play_refused(code, proto, why);
            Err(refusal)
        };
        // An ABR copy has no inputs with the manager; its main buffer names it as running.
        let running = |code: &StreamCode| self.hub.contains(&BufferId::Stream(code.clone()));
        let path = request.path.trim_matches('/');
        let found = self
            .resolve(&request.path)
            .map(|(code, _)| code)
            .or_else(|| {
                [Some(path), path.strip_prefix("live/")]
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.parse::<StreamCode>().ok())
                    .find(running)
            });
        let Some(code) = found else {
            let refusal = Refusal::NotFound(format!("no running stream named {:?}", request.path));
            return refused(None, PlayRefusal::NotFound, refusal);
        };
        if let Some(signer) = self.signer.get() {
            let query = request.query.as_deref().unwrap_or_default();
            if let Err(e) = signer.verify(&code, query, request.peer.ip(), unix_now()) {
                let refusal = Refusal::Denied(format!("{proto} play of {code}: {e}"));
                return refused(Some(&code), PlayRefusal::Auth, refusal);
            }
        }
        let (output, session_proto) = match request.protocol {
            Protocol::Rtmp => (Output::Rtmp, SessionProto::Rtmp),
            Protocol::Rtsp => (Output::Rtsp, SessionProto::Rtsp),
            Protocol::Srt => (Output::Srt, SessionProto::Srt),
            other => {
                let refusal =
                    Refusal::NotFound(format!("playing over {other} is not supported yet"));
                return refused(Some(&code), PlayRefusal::NotFound, refusal);
            }
        };
        let seat = match self.caps.admit(&code, proto) {
            Ok(seat) => seat,
            Err(cap) => {
                return refused(
                    Some(&code),
                    PlayRefusal::Cap,
                    Refusal::Busy(cap.to_string()),
                );
            }
        };
        let Some(gate) = self.outputs.enter_play(&code, output, request.stop.clone()) else {
            let refusal =
                Refusal::NotFound(format!("stream {code} does not have protocols.{proto} on"));
            return refused(Some(&code), PlayRefusal::NotFound, refusal);
        };
        let bytes = ByteMeter::default();
        let session = self.sessions.connect(
            &code,
            session_proto,
            request.peer,
            request.query.as_deref(),
            request.stop,
            &bytes,
        );
        Ok(PlayGrant {
            buffer: BufferId::Stream(code.clone()),
            code,
            hub: self.hub.clone(),
            guard: Box::new((seat, gate, session)),
            bytes,
        })
    }
}

/// Seconds since the Unix epoch, now (what a signed URL's `exp` counts in).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The protocol's name in metric labels.
/// The listener a publish over `protocol` comes in on; `None`: not one that takes publishers.
fn push_via(protocol: Protocol) -> Option<PushVia> {
    match protocol {
        Protocol::Rtmp => Some(PushVia::Rtmp),
        Protocol::Srt => Some(PushVia::Srt),
        _ => None,
    }
}

fn proto_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Rtmp => "rtmp",
        Protocol::Rtsp => "rtsp",
        Protocol::Srt => "srt",
        _ => "other",
    }
}

/// The runtime warning of a keyless stream under `publish_auth = "required"`.
const KEYLESS_PUBLISH: &str = "no stream_key: security.publish_auth is required, so only \
    publishers on loopback are accepted; set a stream_key to let encoders on other hosts publish";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;
    use tributary_domain::config::ServerConfig;
    use tributary_domain::{Input, Stream};
    use tributary_store::{Expect, SqliteStore};

    use super::*;
    use crate::MediaPlane;
    use crate::coordinator::Coordinator;
    use crate::events::EventBus;
    use crate::supported::Supported;

    /// The engine's real manager and router behind a coordinator, with one stream stored.
    struct Rig {
        coordinator: Coordinator,
        supported: Arc<Supported>,
        manager: Arc<Manager>,
        router: Arc<EngineRouter>,
        sessions: Arc<Sessions>,
    }

    impl Rig {
        fn new() -> Self {
            let media = MediaPlane::new(&ServerConfig::default());
            let supported = Arc::new(Supported::build(media.roots.clone()));
            let coordinator = Coordinator::new(
                media.services(),
                Arc::new(SqliteStore::open_in_memory().unwrap()),
                EventBus::new(),
                Arc::clone(&supported),
                Duration::from_secs(120),
            );
            Self {
                coordinator,
                supported,
                manager: media.manager,
                router: media.router,
                sessions: media.sessions,
            }
        }

        /// Stores and starts stream `code` with these inputs and key, as a PUT does.
        async fn put(&self, code: &str, urls: &[&str], key: &str) {
            let mut stream = Stream::new(code.parse().unwrap());
            stream.stream_key = key.into();
            stream.inputs = urls
                .iter()
                .zip(0..)
                .map(|(url, priority)| Input::new(*url, priority))
                .collect();
            let (spec, _) = self.supported.parse(stream).unwrap();
            let outcome = self.coordinator.put(spec, Expect::Any).await.unwrap();
            outcome.applied.unwrap();
        }

        /// A publish to `path` with `query` (`key=…&slot=…`) from `peer`.
        fn publish(&self, path: &str, query: &str, peer: &str) -> Result<PublishGrant, Refusal> {
            let param = |name: &str| {
                query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_owned())
            };
            self.router.publish(PublishRequest {
                path: path.into(),
                key: param("key"),
                slot: param("slot"),
                peer: peer.parse().unwrap(),
                protocol: Protocol::Rtmp,
            })
        }

        /// `publisher_connected` of each input of `code`, by priority.
        fn connected(&self, code: &str) -> Vec<bool> {
            let runtime = self.manager.runtime(&code.parse().unwrap()).unwrap();
            runtime
                .inputs
                .iter()
                .map(|input| input["publisher_connected"] == Value::Bool(true))
                .collect()
        }
    }

    #[tokio::test]
    async fn a_granted_play_is_a_connection_session_that_a_kick_stops() {
        let rig = Rig::new();
        let mut stream = Stream::new("cam".parse().unwrap());
        stream.inputs = vec![Input::new("publish://", 0)];
        stream.protocols = Some(tributary_domain::Protocols {
            rtmp: true,
            ..Default::default()
        });
        let (spec, _) = rig.supported.parse(stream).unwrap();
        rig.coordinator
            .put(spec, Expect::Any)
            .await
            .unwrap()
            .applied
            .unwrap();

        let stop = tokio_util::sync::CancellationToken::new();
        let grant = rig
            .router
            .play(PlayRequest {
                path: "live/cam".into(),
                query: Some("token=alice&sig=x".into()),
                peer: REMOTE.parse().unwrap(),
                protocol: Protocol::Rtmp,
                stop: stop.clone(),
            })
            .unwrap();
        grant.bytes.add(4096);
        let filter = crate::sessions::Filter::default();
        let (sessions, _, _) = rig.sessions.list(&filter, 10);
        assert_eq!(sessions.len(), 1);
        let session = &sessions[0];
        assert_eq!(
            (session.proto, session.bytes, session.user_name.as_str()),
            (SessionProto::Rtmp, 4096, "alice")
        );
        assert_eq!(session.ip, "192.0.2.7");
        assert_eq!(session.query_string, "token=****&sig=****");
        assert_eq!(
            rig.sessions.viewers(&"cam".parse().unwrap()).get("rtmp"),
            Some(&1)
        );

        // A kick fires the play's stop token: the listener disconnects the player.
        assert!(rig.sessions.kick(&session.id));
        assert!(stop.is_cancelled());
        // The connection then ends and drops its grant; the kick's reason stays.
        drop(grant);
        let closed = rig.sessions.get(&session.id).unwrap();
        assert_eq!(
            closed.close_reason,
            Some(crate::sessions::CloseReason::Kicked)
        );
        assert!(rig.sessions.viewers(&"cam".parse().unwrap()).is_empty());

        // A player that leaves by itself closes as client_gone.
        let grant = rig
            .router
            .play(PlayRequest {
                path: "live/cam".into(),
                query: None,
                peer: REMOTE.parse().unwrap(),
                protocol: Protocol::Rtmp,
                stop: tokio_util::sync::CancellationToken::new(),
            })
            .unwrap();
        drop(grant);
        let (closed, _, stats) = rig.sessions.list(&filter, 10);
        assert_eq!(
            closed[0].close_reason,
            Some(crate::sessions::CloseReason::ClientGone)
        );
        assert_eq!((stats.opened_total, stats.kicked_total), (2, 1));
    }

    const LOCAL: &str = "127.0.0.1:50000";
    const REMOTE: &str = "192.0.2.7:50000";

    #[tokio::test]
    async fn several_push_inputs_are_told_apart_by_slot_and_by_key() {
        let rig = Rig::new();
        rig.put(
            "cam",
            &[
                "publish://",
                "publish://?slot=second",
                "rtmp://0.0.0.0/live/cam-backup",
            ],
            "",
        )
        .await;

        // `?slot=` picks the input of that name.
        let second = rig.publish("live/cam", "slot=second", LOCAL).unwrap();
        assert_eq!(rig.connected("cam"), [false, true, false]);
        // Without it, the most preferred free input reached by name.
        let first = rig.publish("live/cam", "", LOCAL).unwrap();
        assert_eq!(rig.connected("cam"), [true, true, false]);
        // The keyed input is not reached by the stream's name...
        assert!(matches!(
            rig.publish("live/cam", "", LOCAL),
            Err(Refusal::Busy(_))
        ));
        // ...but by its key; a taken slot stays taken.
        assert!(matches!(
            rig.publish("live/cam", "slot=second", LOCAL),
            Err(Refusal::Busy(_))
        ));
        let backup = rig.publish("live/cam-backup", "", LOCAL).unwrap();
        assert_eq!(backup.code.as_str(), "cam");
        assert_eq!(rig.connected("cam"), [true, true, true]);
        // A slot no input has is refused by name.
        assert!(matches!(
            rig.publish("live/cam", "slot=third", LOCAL),
            Err(Refusal::NotFound(_))
        ));
        // A publisher that leaves frees its own slot only.
        drop(first);
        assert_eq!(rig.connected("cam"), [false, true, true]);
        let _again = rig.publish("live/cam", "", LOCAL).unwrap();
        assert_eq!(rig.connected("cam"), [true, true, true]);
        drop((second, backup));
        assert_eq!(rig.connected("cam"), [true, false, false]);
    }

    #[tokio::test]
    async fn keyed_and_slotted_publishers_need_the_stream_key() {
        let rig = Rig::new();
        rig.put(
            "studio",
            &["publish://?slot=a", "rtmp://0.0.0.0/app/k2"],
            "s3cret",
        )
        .await;
        for (path, query) in [("app/k2", ""), ("live/studio", "slot=a")] {
            let refused = rig.publish(path, query, REMOTE);
            assert!(matches!(refused, Err(Refusal::Denied(_))), "{path}");
        }
        let keyed = rig.publish("app/k2", "key=s3cret", REMOTE).unwrap();
        assert_eq!(keyed.code.as_str(), "studio");
        assert_eq!(rig.connected("studio"), [false, true]);
        // A name that neither names a stream nor keys an input.
        assert!(matches!(
            rig.publish("app/k3", "key=s3cret", REMOTE),
            Err(Refusal::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_new_stream_key_applies_to_the_next_publish() {
        let rig = Rig::new();
        rig.put("cam", &["publish://"], "old").await;
        drop(rig.publish("live/cam", "key=old", REMOTE).unwrap());
        // A metadata change: nothing restarts, but the key is the new one from now on.
        rig.put("cam", &["publish://"], "new").await;
        assert!(matches!(
            rig.publish("live/cam", "key=old", REMOTE),
            Err(Refusal::Denied(_))
        ));
        assert!(rig.publish("live/cam", "key=new", REMOTE).is_ok());
    }
}
