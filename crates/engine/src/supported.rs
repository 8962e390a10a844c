//! What this build and this server support, as parsing a stream record needs it: the input
//! kinds and outputs that have landed (fixed at build time) and the RTMP listener's bound port
//! (known once the listener is bound, for the loopback-own-listener rule of SPEC §Domain
//! "Input URL classifier").
//!
//! The API parses records with it at save, the coordinator when it loads a stored record
//! (boot, reconciler, restart): one parser, one context, so a record means the same thing
//! wherever it is read.
//!
//! The file and storage roots are not kept here: each parse takes them from the server's one
//! roots handle ([`LiveRoots`]), so a configuration change that writes the handle reaches
//! validation with nothing to update here.

use std::sync::Mutex;

use tributary_domain::Stream;
use tributary_domain::protocol::InputKind;
use tributary_domain::roots::LiveRoots;
use tributary_domain::spec::StreamSpec;
use tributary_domain::template::{Template, parse_resolved};
use tributary_domain::validate::{Support, ValidationErrors, parse_stream};

use crate::lock;

/// The parse context, shared by the API edge and the coordinator.
pub(crate) struct Supported {
    /// Changes when the RTMP listener binds (its port) and when the VOD mounts change; read
    /// for every parse. Its `roots` field is never set: [`get`](Self::get) fills it from
    /// `roots`.
    support: Mutex<Support>,
    /// The server's roots, read at each parse.
    roots: LiveRoots,
}

impl Supported {
    /// What this build implements; validation rejects the rest with 422 "not supported yet".
    /// No listener is bound yet; file inputs and recordings are held to `roots` as they are
    /// at each parse.
    pub(crate) fn build(roots: LiveRoots) -> Self {
        Self::with(
            Support {
                inputs: tributary_ingest::supported()
                    .iter()
                    .copied()
                    .chain([InputKind::Push])
                    .collect(),
                hls: true,
                dash: true,
                rtmp: true,
                rtsp: true,
                thumbnail: true,
                srt: true,
                srt_listener: true,
                push: true,
                transcoder: true,
                templates: true,
                dvr: true,
                ..Support::default()
            },
            roots,
        )
    }

    /// A context with `support`, its roots read from `roots` at each parse.
    pub(crate) fn with(support: Support, roots: LiveRoots) -> Self {
        Self {
            support: Mutex::new(support),
            roots,
        }
    }

    /// A copy of the current context, with the roots in force now.
    pub(crate) fn get(&self) -> Support {
        let mut support = lock(&self.support).clone();
        support.roots = self.roots.get();
        support
    }

    /// Sets the VOD mounts `file://<mount>/<path>` inputs resolve through (name → storage).
    pub(crate) fn set_vod_mounts(
        &self,
        mounts: std::collections::BTreeMap<String, std::path::PathBuf>,
    ) {
        lock(&self.support).vod_mounts = mounts;
    }

    /// Records the RTMP listener's bound port (`None`: not bound).
    pub(crate) fn set_rtmp_port(&self, port: Option<u16>) {
        lock(&self.support).rtmp_port = port;
    }

    /// Parses a record against the current context.
    pub(crate) fn parse(
        &self,
        stream: Stream,
    ) -> Result<(StreamSpec, Vec<String>), ValidationErrors> {
        parse_stream(stream, &self.get())
    }

    /// Parses a record resolved over `template` (the one it names; `None`: it names none, or
    /// a missing one, which is `TEMPLATE_NOT_FOUND`).
    pub(crate) fn parse_resolved(
        &self,
        stream: Stream,
        template: Option<&Template>,
    ) -> Result<(StreamSpec, Vec<String>), ValidationErrors> {
        parse_resolved(stream, template, &self.get())
    }
}
