//! The crate's error type: why a worker could not be started.
//!
//! Errors a running worker meets (a refused connection, an HTTP 404, a peer that closed, a
//! demux failure) are not values of this type: they are reported on the input's hub port
//! (`Port::report_error`) and logged, and the worker carries on with its connect loop.

use tributary_domain::protocol::InputKind;
use tributary_media::StreamCode;

/// Why [`spawn`](crate::spawn) refused an input. Every variant names the stream and the input's
/// priority; URLs are shown with their secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// This build has no worker for the kind (see [`supported`](crate::supported)): push
    /// inputs are served by the listeners.
    #[error(
        "stream {code}, input {priority}: {kind} inputs are not supported by the ingest workers"
    )]
    #[non_exhaustive]
    Unsupported {
        /// The stream.
        code: StreamCode,
        /// The input's priority.
        priority: u32,
        /// The kind the URL was classified as.
        kind: InputKind,
    },
    /// An in-process input (`copy://`, `mixer://`) without a hub to read from
    /// ([`IngestConfig::hub`](crate::IngestConfig::hub)).
    #[error(
        "stream {code}, input {priority}: {kind} inputs are not supported without the process's hub"
    )]
    #[non_exhaustive]
    NoHub {
        /// The stream.
        code: StreamCode,
        /// The input's priority.
        priority: u32,
        /// The kind the URL was classified as.
        kind: InputKind,
    },
    /// A setting the worker cannot use. The edge parser checks every option of the kinds it
    /// knows, so this names a disagreement between the parser and a worker.
    #[error("stream {code}, input {priority} ({url}): invalid {setting}: {reason}")]
    #[non_exhaustive]
    InvalidSetting {
        /// The stream.
        code: StreamCode,
        /// The input's priority.
        priority: u32,
        /// The URL, secrets masked.
        url: String,
        /// The option (`pkt_size`, `loop`, `headers.X-Token`, `program`, ...).
        setting: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("stream {code}, input {priority} ({url}): cannot build the HTTP client: {reason}")]
    #[non_exhaustive]
    Client {
        /// The stream.
        code: StreamCode,
        /// The input's priority.
        priority: u32,
        /// The URL, secrets masked.
        url: String,
        /// What failed.
        reason: String,
    },
    /// [`spawn`](crate::spawn) was called outside a tokio runtime.
    #[error("stream {code}, input {priority} ({url}): no tokio runtime to run the worker on")]
    #[non_exhaustive]
    NoRuntime {
        /// The stream.
        code: StreamCode,
        /// The input's priority.
        priority: u32,
        /// The URL, secrets masked.
        url: String,
    },
}
