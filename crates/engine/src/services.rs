//! The private service traits the coordinator drives (ARCHITECTURE.md §3 "Trait seams").
//!
//! Each trait is the coordinator's whole view of one service. The calls are synchronous and
//! quick: a service starts its own tasks and returns; `stop`-type calls remove the stream's
//! state at once (anything slow, such as reaping a process, continues in the service's own
//! tracked tasks). That keeps the coordinator's ordering rules exact and its routing testable
//! with recording fakes (`coordinator::tests`).

use std::sync::Arc;

use tributary_domain::diff::Output;
use tributary_domain::failover::FailoverError;
use tributary_domain::spec::{PushSpec, StreamSpec};
use tributary_domain::{Stream, StreamCode};
use tributary_hub::HubError;
use tributary_ingest::IngestError;
use tributary_publish::PublishError;

/// Why a service refused or failed an operation: what failed, with the error that caused it,
/// so the coordinator (and the operator reading `last_error`) can tell a feature this build
/// lacks from a bad input list or a component that would not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The feature has not landed in this build.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// The service has no state for the stream: its ingest buffer is missing, or an update
    /// reached a stream the service does not run.
    #[error("stream {code}: not registered with the {service}")]
    NotRegistered {
        /// The stream.
        code: StreamCode,
        /// Which service (`stream manager`, ...).
        service: &'static str,
    },
    /// The hub refused a buffer or an input port.
    #[error("hub: {0}")]
    Hub(#[source] HubError),
    /// The failover machine refused the input list.
    #[error("stream {code}: {source}")]
    Failover {
        /// The stream.
        code: StreamCode,
        /// What the machine said.
        source: FailoverError,
    },
    /// An ingest worker could not start (the error names the stream and input).
    #[error("ingest: {0}")]
    Ingest(#[source] IngestError),
    /// An output (HLS packager, push target) could not start (the error names the stream).
    #[error("publish: {0}")]
    Publish(#[source] PublishError),
    /// A feature that runs FFmpeg (thumbnails) has none to run.
    #[error("{feature} need FFmpeg: {reason}")]
    NeedsFfmpeg {
        /// What needs it.
        feature: &'static str,
        /// Why there is none (the path looked for).
        reason: String,
    },
    /// A recording could not start (the error names the stream).
    #[error("dvr: {0}")]
    Dvr(#[source] tributary_dvr::DvrError),
}

/// A buffer the coordinator creates for a stream (SPEC §Buffer hub ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BufferKind {
    /// `<code>`: the main buffer (the playback feed when not transcoding).
    Main,
    /// `$raw$<code>`: ingest target while transcoding.
    Raw,
    /// `$r$<code>$track_N`: one rendition (rung index from 0).
    Rendition(u16),
}

/// The buffers a stream needs: main, plus raw and one per rung when FFmpeg runs.
pub(crate) fn buffer_plan(stream: &Stream) -> Vec<BufferKind> {
    let mut plan = vec![BufferKind::Main];
    if let Some(t) = stream.transcoder.as_ref().filter(|t| t.needs_ffmpeg()) {
        plan.push(BufferKind::Raw);
        let rungs = t.video.profiles.len().max(1);
        plan.extend((0..rungs).map(|i| BufferKind::Rendition(i as u16)));
    }
    plan
}

/// The buffer hub.
pub(crate) trait BufferService: Send + Sync {
    /// Creates the given buffers of a stream (all before any consumer starts).
    fn create(&self, code: &StreamCode, buffers: &[BufferKind]) -> Result<(), ServiceError>;
    /// Deletes buffers; their subscribers see end-of-stream.
    fn delete(&self, code: &StreamCode, buffers: &[BufferKind]);
}

/// The stream manager: inputs and their health.
pub(crate) trait InputService: Send + Sync {
    /// Registers a stream's inputs (as the edge parsed them) and starts ingest.
    fn register(&self, spec: &StreamSpec) -> Result<(), ServiceError>;
    /// Applies a changed input list without touching unchanged inputs.
    fn update_inputs(&self, old: &StreamSpec, new: &StreamSpec) -> Result<(), ServiceError>;
    /// A new `stream_key` (a metadata change, which restarts nothing): the next publish is
    /// checked against it.
    fn set_stream_key(&self, code: &StreamCode, key: &str);
    /// Stops ingest and forgets the stream.
    fn unregister(&self, code: &StreamCode);
}

/// Outputs: HLS/DASH packagers, play gates and push targets.
pub(crate) trait OutputService: Send + Sync {
    /// Starts one output of a stream.
    fn start_output(&self, stream: &Stream, output: Output) -> Result<(), ServiceError>;
    /// Stops one output; its viewers are disconnected.
    fn stop_output(&self, code: &StreamCode, output: Output);
    /// The stream's ladder changed while HLS runs (a rung added, removed or re-encoded): the
    /// master playlist is rewritten and packagers are started or stopped for the rungs that
    /// came or went; the others carry on.
    fn ladder_changed(&self, stream: &Stream);
    /// Starts one push target of stream `code`: the playback feed, or the rendition its
    /// `profile` names (a target whose rung the ladder does not have starts `failed`).
    fn start_push(&self, code: &StreamCode, target: &PushSpec) -> Result<(), ServiceError>;
    /// Stops one push target.
    fn stop_push(&self, code: &StreamCode, url: &str);
}

/// FFmpeg supervision.
pub(crate) trait TranscodeService: Send + Sync {
    /// Starts the stream's FFmpeg processes (the ladder and watermark as parsed, a library
    /// asset resolved to its file). Returns the start's warnings: a watermark turned off for
    /// this run (an unknown asset), which never fails the start.
    fn start(&self, spec: &StreamSpec) -> Result<Vec<String>, ServiceError>;
    /// Stops every FFmpeg process of the stream.
    fn stop(&self, code: &StreamCode);
    /// Stops every FFmpeg process of a stream that stops transcoding but keeps running: once
    /// the playback tap hands the main buffer's writer back, the stream's intake feeds the
    /// main buffer again (its raw buffer is gone by then), so its inputs never reconnect.
    fn stop_to_ingest(&self, code: &StreamCode);
    /// Restarts one rung (per_profile mode).
    fn restart_rung(&self, spec: &StreamSpec, index: usize) -> Result<(), ServiceError>;
    /// Adds a rung (per_profile mode); its buffer exists already.
    fn add_rung(&self, spec: &StreamSpec, index: usize) -> Result<(), ServiceError>;
    /// Removes a rung (per_profile mode).
    fn remove_rung(&self, code: &StreamCode, index: usize);
    /// Starts an ABR copy of `mirror` (SPEC §ABR copy): no FFmpeg, one tap per upstream rung
    /// into the stream's rendition buffers (created already) and its best rung into the main
    /// buffer. [`stop`](Self::stop) stops it.
    fn start_mirror(
        &self,
        code: &StreamCode,
        mirror: &crate::mirror::Mirror,
    ) -> Result<(), ServiceError> {
        let _ = (code, mirror);
        Err(ServiceError::Unsupported("ABR copy"))
    }
}

/// Recording.
pub(crate) trait DvrService: Send + Sync {
    /// Starts recording the playback feed.
    fn start(&self, stream: &Stream) -> Result<(), ServiceError>;
    /// Stops recording, closing the partial segment.
    fn stop(&self, code: &StreamCode);
    /// Applies changed DVR settings at the next segment.
    fn apply(&self, stream: &Stream);
}

/// Thumbnails.
pub(crate) trait ThumbnailService: Send + Sync {
    /// Starts (or restarts) the thumbnailer.
    fn start(&self, stream: &Stream) -> Result<(), ServiceError>;
    /// Stops it.
    fn stop(&self, code: &StreamCode);
}

/// Every service the coordinator drives.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) buffers: Arc<dyn BufferService>,
    pub(crate) inputs: Arc<dyn InputService>,
    pub(crate) outputs: Arc<dyn OutputService>,
    pub(crate) transcoder: Arc<dyn TranscodeService>,
    pub(crate) dvr: Arc<dyn DvrService>,
    pub(crate) thumbnails: Arc<dyn ThumbnailService>,
}
