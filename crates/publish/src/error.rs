//! The crate's error type.

use tributary_hub::{BufferId, HubError};
use tributary_media::StreamCode;

/// Why an output could not start. Every variant names the stream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// An HLS output of this stream is already registered: stop it first.
    #[error("stream {code}: an HLS output is already running")]
    AlreadyRunning {
        /// The stream.
        code: StreamCode,
    },
    /// The buffer to read could not be subscribed to (unknown or deleted).
    #[error("stream {code}: cannot read buffer {buffer}: {source}")]
    Subscribe {
        /// The stream.
        code: StreamCode,
        /// The buffer asked for.
        buffer: BufferId,
        /// What the hub said.
        source: HubError,
    },
    /// The settings cannot drive the output (HLS packager, push target).
    #[error("stream {code}: invalid setting {field}: {reason}")]
    InvalidSettings {
        /// The stream.
        code: StreamCode,
        /// The offending setting, as SPEC names it (`publisher.hls.live_segment_sec`).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Called outside a tokio runtime: there is nowhere to run the output's task.
    #[error("stream {code}: an output was started outside a tokio runtime")]
    NoRuntime {
        /// The stream.
        code: StreamCode,
    },
}
