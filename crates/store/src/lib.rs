//! Tributary's persistence: what the server must remember across restarts.
//!
//! # Model
//!
//! The store holds **desired state**: the stream definitions an operator saved through the API
//! (SPEC §Domain "Stream"), exactly as given, not template-resolved. It knows nothing of what is
//! running; the engine reads the store at boot and after each write, and reconciles the pipelines
//! towards it.
//!
//! Each stored stream carries a `revision` that starts at 1 and grows by exactly 1 per write.
//! It is the compare-and-swap token of every update: a writer states what it expects to find
//! ([`Expect`]), and the store applies the write only if that still holds, in the same
//! transaction. The API's `ETag`/`If-Match` is built on it (a stale `If-Match` is a
//! [`StoreError::Conflict`] with `expected: Some(_)`, which maps to 412; a create over an existing
//! stream has `expected: None` and maps to 409), so two admins editing one stream cannot silently
//! lose each other's change.
//!
//! [`StreamRepository`] is the seam: synchronous (the engine calls it on tokio's blocking pool),
//! speaking `domain` types, with a conformance suite generic over the trait
//! (`tests/store/conformance.rs`) so a PostgreSQL backend can join later.
//!
//! # The SQLite backend
//!
//! [`SqliteStore`] keeps one connection to `<data_dir>/tributary.db` behind a mutex. The journal
//! is WAL with `synchronous = FULL`: a commit appends to the write-ahead log and fsyncs it before
//! returning, so a write the API acknowledged survives `kill -9` and power loss (SPEC §Storage),
//! while readers never block the writer. The schema comes from numbered SQL files under
//! `migrations/sqlite/`, compiled into the binary and applied in order at open, one transaction
//! each; a database written by a newer binary is refused rather than misread.
//!
//! ```
//! use tributary_domain::{Stream, StreamCode};
//! use tributary_store::{Expect, SqliteStore, StoreError, StreamRepository};
//!
//! let store = SqliteStore::open_in_memory()?;
//! let code = StreamCode::parse("match-day").expect("a valid code");
//!
//! // Create: fails with a conflict if the stream already exists.
//! let first = store.upsert(&Stream::new(code.clone()), Expect::Absent)?;
//! assert!(first.created);
//! assert_eq!(first.stored.revision, 1);
//!
//! // Update, but only if nobody wrote since we read revision 1.
//! let mut stream = first.stored.stream;
//! stream.name = "Match Day".to_owned();
//! let second = store.upsert(&stream, Expect::Revision(1))?;
//! assert_eq!(second.stored.revision, 2);
//!
//! // A writer still holding revision 1 is refused.
//! let stale = store.upsert(&stream, Expect::Revision(1));
//! assert!(matches!(stale, Err(StoreError::Conflict { actual: Some(2), .. })));
//! # Ok::<(), StoreError>(())
//! ```
#![forbid(unsafe_code)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tributary_domain::hook::{Delivery, Hook};
use tributary_domain::template::Template;
use tributary_domain::vod::VodMount;
use tributary_domain::{Stream, StreamCode};

mod sqlite;

pub use sqlite::SqliteStore;

/// Where the stream definitions live.
///
/// Implementations are synchronous and may block on disk; async callers run them on a blocking
/// pool. Every write is durable when it returns `Ok`.
///
/// # Corrupt rows
///
/// A stored stream can stop decoding (a field renamed by a newer `domain`, a hand-edited
/// database). Such a row must not take the other streams down with it:
/// - [`list`](Self::list) skips it and logs it at ERROR with the stream code and the reason, so
///   boot still starts every healthy stream;
/// - [`get`](Self::get) returns [`StoreError::Corrupt`] naming the code, so the API reports it;
/// - [`upsert`](Self::upsert) may overwrite it (this is how an operator repairs it), and
///   [`delete`](Self::delete) removes it.
///
/// A stream store also holds the templates ([`TemplateRepository`], its supertrait): a stream
/// means what its record says resolved over its template, so whoever reads streams to run them
/// reads templates from the same place.
pub trait StreamRepository: TemplateRepository + Send + Sync + 'static {
    /// Every stream that decodes, sorted by code (byte order, as `StreamCode`'s `Ord`).
    fn list(&self) -> Result<Vec<StoredStream>, StoreError>;

    /// At most `limit` streams whose codes sort after `after` (from the first when `None`),
    /// sorted by code: one page of [`list`](Self::list). Corrupt rows are skipped as there, so
    /// a page may be short; the next page starts after the last code of this one.
    fn list_page(
        &self,
        after: Option<&StreamCode>,
        limit: usize,
    ) -> Result<Vec<StoredStream>, StoreError>;

    /// How many streams are stored (corrupt rows included).
    fn count(&self) -> Result<u64, StoreError>;

    /// The stream with this code, or `None` if there is none.
    fn get(&self, code: &StreamCode) -> Result<Option<StoredStream>, StoreError>;

    /// Creates or replaces `stream` (keyed by `stream.code`) if `expect` holds, atomically.
    ///
    /// The new revision is 1 on create and the previous one plus 1 on update; `created_at` is
    /// kept across updates and `updated_at` is the time of this write. Returns only after the
    /// write is committed.
    fn upsert(&self, stream: &Stream, expect: Expect) -> Result<Upserted, StoreError>;

    /// Removes the stream; `true` if it existed.
    fn delete(&self, code: &StreamCode) -> Result<bool, StoreError>;
}

/// Where the templates live (SPEC §Templates). Synchronous like [`StreamRepository`];
/// templates are few and written rarely, so there is no revision: the last write wins.
///
/// A row that no longer decodes is skipped by [`list_templates`](Self::list_templates)
/// (logged at ERROR) and reported by [`template`](Self::template), as for streams.
pub trait TemplateRepository: Send + Sync + 'static {
    /// Every template that decodes, sorted by code.
    fn list_templates(&self) -> Result<Vec<Template>, StoreError>;

    /// The template with this code, or `None`.
    fn template(&self, code: &str) -> Result<Option<Template>, StoreError>;

    /// Creates or replaces `template`; returns whether the write created it. Durable when it
    /// returns.
    fn put_template(&self, template: &Template) -> Result<bool, StoreError>;

    /// Removes the template; `true` if it existed.
    fn delete_template(&self, code: &str) -> Result<bool, StoreError>;
}

/// Where the global-config values saved through the API live (SPEC §Config "Layers", the
/// layer between `tributary.toml` and the environment). The layer is a JSON object holding
/// only the fields an operator set; `null` is a value (a section switched off).
pub trait ConfigRepository: Send + Sync + 'static {
    /// The saved layer (`{}` when nothing was saved).
    fn config_layer(&self) -> Result<serde_json::Value, StoreError>;

    /// Replaces the saved layer with `layer`, atomically. Durable when it returns.
    fn put_config_layer(&self, layer: &serde_json::Value) -> Result<(), StoreError>;
}

/// Where the webhooks live (SPEC §Hooks). Synchronous like [`StreamRepository`]; hooks are
/// few and written rarely, so there is no revision: the last write wins.
///
/// A row that no longer decodes is skipped by [`list_hooks`](Self::list_hooks) (logged at
/// ERROR) and reported by [`hook`](Self::hook), as for streams.
pub trait HookRepository: Send + Sync + 'static {
    /// Every hook that decodes, sorted by id.
    fn list_hooks(&self) -> Result<Vec<Hook>, StoreError>;

    /// The hook with this id, or `None`.
    fn hook(&self, id: &str) -> Result<Option<Hook>, StoreError>;

    /// Writes `hook`; with `create_only`, fails with [`StoreError::HookExists`] if its id is
    /// taken. Returns whether the write created it. Durable when it returns.
    fn put_hook(&self, hook: &Hook, create_only: bool) -> Result<bool, StoreError>;

    /// Removes the hook and its delivery log; `true` if the hook existed.
    fn delete_hook(&self, id: &str) -> Result<bool, StoreError>;

    /// Appends `delivery` to the hook's log and keeps only its newest `keep` entries.
    fn add_delivery(&self, id: &str, delivery: &Delivery, keep: usize) -> Result<(), StoreError>;

    /// The hook's newest `limit` log entries, newest first (undecodable rows skipped).
    fn deliveries(&self, id: &str, limit: usize) -> Result<Vec<Delivery>, StoreError>;
}

/// Where the VOD mounts live (SPEC §Domain "VOD mount"). Synchronous like
/// [`StreamRepository`]; mounts are few and written rarely, so there is no revision: the last
/// write wins. A row that no longer decodes is skipped by [`list_mounts`](Self::list_mounts)
/// (logged at ERROR) and reported by [`mount`](Self::mount).
pub trait VodRepository: Send + Sync + 'static {
    /// Every mount that decodes, sorted by name.
    fn list_mounts(&self) -> Result<Vec<VodMount>, StoreError>;

    /// The mount with this name, or `None`.
    fn mount(&self, name: &str) -> Result<Option<VodMount>, StoreError>;

    /// Writes `mount`; with `create_only`, fails with [`StoreError::MountExists`] if its name
    /// is taken. Returns whether the write created it. Durable when it returns.
    fn put_mount(&self, mount: &VodMount, create_only: bool) -> Result<bool, StoreError>;

    /// Removes the mount (its files stay); `true` if it existed.
    fn delete_mount(&self, name: &str) -> Result<bool, StoreError>;
}

/// A stream as stored, with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStream {
    /// The definition, as the operator saved it.
    pub stream: Stream,
    /// 1 after the first write, +1 per write since: the compare-and-swap token (and ETag source).
    pub revision: u64,
    /// When the stream was first written (millisecond precision).
    pub created_at: DateTime<Utc>,
    /// When the stream was last written (millisecond precision).
    pub updated_at: DateTime<Utc>,
}

/// What a write expects to find: the compare-and-swap precondition of
/// [`StreamRepository::upsert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there (create or replace).
    Any,
    /// Create only: fail if the stream exists (`POST /streams/{code}`).
    Absent,
    /// Replace only this revision: fail if the stream is absent or was written since
    /// (`If-Match`).
    Revision(u64),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any revision"),
            Self::Absent => f.write_str("no stream"),
            Self::Revision(revision) => write!(f, "revision {revision}"),
        }
    }
}

/// The result of a successful [`StreamRepository::upsert`].
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    /// The stream as now stored, with its new revision.
    pub stored: StoredStream,
    /// `true` if the write created the stream, `false` if it replaced one.
    pub created: bool,
}

/// Why a store operation failed. Each variant names the stream code or the file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The write's [`Expect`] did not hold; nothing was written.
    #[error("stream {code}: write refused: expected {}, found {}", revision_text(*.expected), revision_text(*.actual))]
    Conflict {
        /// The stream written.
        code: String,
        /// What the writer required: `None` = no stream ([`Expect::Absent`], maps to 409),
        /// `Some(n)` = revision `n` ([`Expect::Revision`], maps to 412).
        expected: Option<u64>,
        /// What is stored: `None` = no stream, `Some(n)` = revision `n`.
        actual: Option<u64>,
    },
    /// A hook was created with an id already taken; nothing was written.
    #[error("hook {id} already exists")]
    HookExists {
        /// The id.
        id: String,
    },
    /// A VOD mount was created with a name already taken; nothing was written.
    #[error("VOD mount {name} already exists")]
    MountExists {
        /// The name.
        name: String,
    },
    /// A stored row no longer decodes into a stream.
    #[error("stream {code}: stored row is corrupt: {reason}")]
    Corrupt {
        /// The stream's code as stored in the row.
        code: String,
        /// What failed to decode, and where.
        reason: String,
    },
    /// A stream could not be encoded into a row that would decode again; nothing was written.
    #[error("stream {code}: cannot be stored: {reason}")]
    Encode {
        /// The stream written.
        code: String,
        /// Why its JSON does not round-trip (e.g. a non-finite number).
        reason: String,
    },
    /// The database failed an operation.
    #[error("store {operation}{}: {source}", code_text(.code.as_deref()))]
    Database {
        /// The operation: `list`, `get`, `upsert`, `delete`, ...
        operation: &'static str,
        /// The stream concerned, if the operation had one.
        code: Option<String>,
        /// The database's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database could not be opened or configured.
    #[error("cannot open store database {}: {source}", .path.display())]
    Open {
        /// The database file (`:memory:` for an in-memory database).
        path: PathBuf,
        /// The database's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database's directory or file could not be prepared.
    #[error("cannot prepare store database: {operation} {}: {source}", .path.display())]
    Io {
        /// What was being done (`creating directory`, `creating file`).
        operation: &'static str,
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A schema migration failed, or the database's schema is newer than this binary.
    #[error("store schema migration {version}: {reason}")]
    Migration {
        /// The migration concerned (for a too-new database: the version it is at).
        version: u32,
        /// What went wrong and what to do.
        reason: String,
    },
}

fn revision_text(revision: Option<u64>) -> String {
    match revision {
        Some(revision) => format!("revision {revision}"),
        None => "no stream".to_owned(),
    }
}

fn code_text(code: Option<&str>) -> String {
    match code {
        Some(code) => format!(" of stream {code}"),
        None => String::new(),
    }
}
