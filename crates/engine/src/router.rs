//! The engine's answer to the listeners (`serve::Router`, ARCHITECTURE.md §3): name routing
//! (SPEC §Publisher), publish authentication (SPEC §Security), push slots and play gates.
//!
//! A publish names a stream by its path: `P` if a running stream is called `P`, else `P`
//! without a leading `live/`. The stream must have a push input whose slot is free. Its
//! `stream_key`, when set, must match the `?key=` the publisher sent (constant-time compare);
//! a stream without a key accepts loopback publishers only (`security.publish_auth =
//! "required"`, the default), any publisher under `if_set`, and keys are not checked under
//! `off`. A play needs the stream running with `protocols.rtmp` on, and a seat under the play
//! caps (256 per stream, 4096 in total; [`crate::caps`]).

use std::net::SocketAddr;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tributary_domain::StreamCode;
use tributary_hub::{BufferId, Hub};
use tributary_serve::{PlayGrant, PlayRequest, PublishGrant, PublishRequest, Refusal, Router};

use crate::caps::PlayCaps;
use crate::manager::{Manager, SlotRefusal};
use crate::outputs::Outputs;

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

impl PublishAuth {
    pub(crate) fn parse(value: &str) -> Self {
        match value {
            "if_set" => Self::IfSet,
            "off" => Self::Off,
            _ => Self::Required,
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
    auth: PublishAuth,
    /// Plays per stream and in total.
    caps: PlayCaps,
}

impl EngineRouter {
    /// The runtime warning of a stream that takes publishers without a key while
    /// `security.publish_auth` is `required` (SPEC §Security): only loopback publishers get in.
    pub(crate) fn publish_warning(&self, code: &StreamCode) -> Option<String> {
        (self.auth == PublishAuth::Required && self.manager.keyless_push(code))
            .then(|| KEYLESS_PUBLISH.to_owned())
    }
}

impl EngineRouter {
    pub(crate) fn new(
        manager: Arc<Manager>,
        outputs: Arc<Outputs>,
        hub: Hub,
        auth: PublishAuth,
    ) -> Self {
        Self {
            manager,
            outputs,
            hub,
            auth,
            caps: PlayCaps::default(),
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
    fn publish(&self, request: PublishRequest) -> Result<PublishGrant, Refusal> {
        let Some((code, key)) = self.resolve(&request.path) else {
            return Err(Refusal::NotFound(format!(
                "no running stream named {:?}",
                request.path
            )));
        };
        let given = request.key.as_deref().unwrap_or("");
        let allowed = match self.auth {
            PublishAuth::Off => true,
            _ if !key.is_empty() => bool::from(given.as_bytes().ct_eq(key.as_bytes())),
            PublishAuth::IfSet => true,
            PublishAuth::Required => is_loopback(&request.peer),
        };
        if !allowed {
            let why = if key.is_empty() {
                "the stream has no stream_key: only loopback publishers are accepted"
            } else if given.is_empty() {
                "missing key (publish to <code>?key=<stream_key>)"
            } else {
                "wrong key"
            };
            return Err(Refusal::Denied(format!("stream {code}: {why}")));
        }
        match self.manager.claim_publisher(&code) {
            Ok((port, guard)) => Ok(PublishGrant {
                code,
                port,
                guard: Box::new(guard),
            }),
            Err(SlotRefusal::NotRunning) => {
                Err(Refusal::NotFound(format!("stream {code} is not running")))
            }
            Err(SlotRefusal::NoPushInput) => Err(Refusal::NotFound(format!(
                "stream {code} has no publish:// input"
            ))),
            Err(SlotRefusal::Busy) => Err(Refusal::Busy(format!(
                "stream {code} already has a live publisher"
            ))),
        }
    }

    fn play(&self, request: PlayRequest) -> Result<PlayGrant, Refusal> {
        let Some((code, _)) = self.resolve(&request.path) else {
            return Err(Refusal::NotFound(format!(
                "no running stream named {:?}",
                request.path
            )));
        };
        if !self.outputs.rtmp_play(&code) {
            return Err(Refusal::NotFound(format!(
                "stream {code} does not have protocols.rtmp on"
            )));
        }
        let seat = self
            .caps
            .admit(&code)
            .map_err(|cap| Refusal::Busy(cap.to_string()))?;
        Ok(PlayGrant {
            buffer: BufferId::Stream(code.clone()),
            code,
            hub: self.hub.clone(),
            guard: Box::new(seat),
        })
    }
}

/// The runtime warning of a keyless stream under `publish_auth = "required"`.
const KEYLESS_PUBLISH: &str = "no stream_key: security.publish_auth is required, so only \
    publishers on loopback are accepted; set a stream_key to let encoders on other hosts publish";
