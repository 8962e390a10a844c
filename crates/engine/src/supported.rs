//! What this build and this server support, as parsing a stream record needs it: the input
//! kinds and outputs that have landed (fixed at build time) and the RTMP listener's bound port
//! (known once the listener is bound, for the loopback-own-listener rule of SPEC §Domain
//! "Input URL classifier").
//!
//! The API parses records with it at save, the coordinator when it loads a stored record
//! (boot, reconciler, restart): one parser, one context, so a record means the same thing
//! wherever it is read.

use std::sync::Mutex;

use tributary_domain::Stream;
use tributary_domain::protocol::InputKind;
use tributary_domain::spec::StreamSpec;
use tributary_domain::template::{Template, parse_resolved};
use tributary_domain::validate::{Support, ValidationErrors, parse_stream};

use crate::lock;

/// The parse context, shared by the API edge and the coordinator.
pub(crate) struct Supported {
    /// Changes once, when the RTMP listener binds (its port); read for every parse.
    support: Mutex<Support>,
}

impl Supported {
    /// What this build implements; validation rejects the rest with 422 "not supported yet".
    /// No listener is bound yet.
    pub(crate) fn build() -> Self {
        Self::with(Support {
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
        })
    }

    /// A context with exactly `support`.
    pub(crate) fn with(support: Support) -> Self {
        Self {
            support: Mutex::new(support),
        }
    }

    /// A copy of the current context.
    pub(crate) fn get(&self) -> Support {
        lock(&self.support).clone()
    }

    /// Sets where file inputs may read (`security.file_input_roots`; empty: anywhere).
    pub(crate) fn set_file_roots(&self, roots: Vec<std::path::PathBuf>) {
        lock(&self.support).file_roots = roots;
    }

    /// Sets where recordings may be stored (`security.storage_roots`, default the data
    /// directory).
    pub(crate) fn set_storage_roots(&self, roots: Vec<std::path::PathBuf>) {
        lock(&self.support).storage_roots = roots;
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
