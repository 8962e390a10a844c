//! The hub's error type.

use crate::{BufferId, PortKey};

/// Why a hub operation failed. Every variant names the buffer (and the input port, where one is
/// involved), so a log line locates the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// `create` for an id that already has a live buffer.
    #[error("buffer {id} already exists")]
    AlreadyExists {
        /// The buffer.
        id: BufferId,
    },
    /// `subscribe` (or a lookup) for an id with no buffer: never created, or deleted.
    #[error("buffer {id} does not exist")]
    NotFound {
        /// The buffer.
        id: BufferId,
    },
    /// A write to a buffer that has been deleted.
    #[error("buffer {id} has been deleted")]
    Deleted {
        /// The buffer.
        id: BufferId,
    },
    /// `add_port` with a key that already has a port.
    #[error("buffer {id}: input port {key} already exists")]
    PortExists {
        /// The buffer the intake feeds.
        id: BufferId,
        /// The key given.
        key: PortKey,
    },
    /// `select` of a key that has no port, or a write through a removed port.
    #[error("buffer {id}: no input port {key}")]
    UnknownPort {
        /// The buffer the intake feeds.
        id: BufferId,
        /// The key given.
        key: PortKey,
    },
}
