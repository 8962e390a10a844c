//! The SQLite backend: one connection, WAL journal, `synchronous = FULL`, embedded migrations.
//!
//! All SQL of this backend lives in this module and in `migrations/sqlite/`.

use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use rusqlite::{Connection, OptionalExtension, ToSql, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tributary_domain::{Stream, StreamCode};

use crate::{Expect, StoreError, StoredStream, StreamRepository, Upserted};

mod config;
mod hooks;
mod templates;
mod vod;

/// A [`StreamRepository`] in an embedded SQLite database.
///
/// Opening applies the pending migrations. Every method takes the connection's lock for one
/// short statement or transaction; call them from a blocking context (tokio's
/// `spawn_blocking`), never directly from async code. A write returns after its commit has been
/// fsynced to the write-ahead log.
pub struct SqliteStore {
    /// The one connection. A mutex rather than a pool: SQLite admits one writer at a time
    /// anyway, stream writes are rare and short, and reads are single indexed lookups or one
    /// scan of a small table, so a pool would add state without adding throughput.
    conn: Mutex<Connection>,
    /// The database file (`:memory:` for [`SqliteStore::open_in_memory`]), for `Debug` output.
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and brings its schema up to date.
    ///
    /// A missing parent directory is created (mode 0700 on unix) and a missing file is created
    /// with mode 0600, since the database holds stream keys and push URLs. Fails with
    /// [`StoreError::Migration`] if the database was written by a newer binary.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        prepare_file(path)?;
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path.to_owned(), true)
    }

    /// Opens a private in-memory database, for tests: nothing survives the value. The journal
    /// stays in memory (no WAL); everything else is configured as for a file.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(MEMORY_PATH);
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path, false)
    }

    fn init(mut conn: Connection, path: PathBuf, on_disk: bool) -> Result<Self, StoreError> {
        configure(&conn, on_disk).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let version = migrate(&mut conn, MIGRATIONS)?;
        tracing::debug!(path = %path.display(), schema_version = version, "store opened");
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The streams a `SELECT` of whole rows returns, in its order; corrupt rows are skipped
    /// and logged (see [`StreamRepository`]'s "Corrupt rows").
    fn select(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&dyn ToSql],
    ) -> Result<Vec<StoredStream>, StoreError> {
        let db = |source| StoreError::Database {
            operation,
            code: None,
            source,
        };
        let rows = {
            let conn = self.lock();
            let mut statement = conn.prepare_cached(sql).map_err(db)?;
            statement
                .query_map(params, RawRow::read)
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?
        };
        let mut streams = Vec::with_capacity(rows.len());
        for row in rows {
            match row.decode() {
                Ok(stored) => streams.push(stored),
                Err(err) => {
                    tracing::error!(stream = %row.code, error = %err, "skipping corrupt stream row");
                }
            }
        }
        Ok(streams)
    }

    /// Every row of a `SELECT <key>, json …` that decodes as `T` (a hook, a template), in
    /// order; a row that does not is logged at ERROR with its key and skipped, as corrupt
    /// stream rows are.
    fn json_rows<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        kind: &'static str,
        sql: &str,
    ) -> Result<Vec<T>, StoreError> {
        let db = |source| StoreError::Database {
            operation,
            code: None,
            source,
        };
        let rows: Vec<(String, String)> = {
            let conn = self.lock();
            let mut statement = conn.prepare_cached(sql).map_err(db)?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?
        };
        let mut items = Vec::with_capacity(rows.len());
        for (key, json) in rows {
            match serde_json::from_str::<T>(&json) {
                Ok(item) => items.push(item),
                Err(e) => tracing::error!(kind, key = %key, error = %e, "skipping corrupt row"),
            }
        }
        Ok(items)
    }

    /// The row a `SELECT json … WHERE <key> = ?1` finds for `key`, decoded as `T`; a row that
    /// does not decode is [`StoreError::Corrupt`] naming `<kind> <key>`.
    fn json_row<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        kind: &'static str,
        sql: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let json: Option<String> = self
            .lock()
            .query_row(sql, [key], |row| row.get(0))
            .optional()
            .map_err(|source| StoreError::Database {
                operation,
                code: Some(key.to_owned()),
                source,
            })?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                code: format!("{kind} {key}"),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// Writes `item` as the JSON of row `key` of `table` (created or replaced; `refuse`: the
    /// error to answer instead when the row exists). Returns whether it was created.
    /// Durable when it returns.
    fn put_json<T: Serialize>(
        &self,
        table: JsonTable,
        key: &str,
        item: &T,
        refuse: Option<StoreError>,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(item).map_err(|e| StoreError::Encode {
            code: format!("{} {key}", table.kind),
            reason: e.to_string(),
        })?;
        self.write(table.put, Some(key), |tx, now, db| {
            let exists = tx
                .query_row(table.exists, [key], |_| Ok(()))
                .optional()
                .map_err(db)?
                .is_some();
            if let Some(error) = refuse.filter(|_| exists) {
                return Err(error);
            }
            tx.execute(table.upsert, params![key, json, now])
                .map_err(db)?;
            Ok(!exists)
        })
    }

    /// Runs `body` in one `IMMEDIATE` transaction, with the write's time (RFC 3339) and the
    /// error mapper of `operation` on `key`; commits when it returns `Ok`, rolls back
    /// otherwise. Durable when it returns.
    fn write<T>(
        &self,
        operation: &'static str,
        key: Option<&str>,
        body: impl FnOnce(
            &rusqlite::Transaction<'_>,
            &str,
            &dyn Fn(rusqlite::Error) -> StoreError,
        ) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = |source| StoreError::Database {
            operation,
            code: key.map(str::to_owned),
            source,
        };
        let now = format_time(Utc::now());
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = body(&tx, &now, &db)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// Removes row `key` of `table`; `true` if it existed.
    fn delete_json(&self, table: JsonTable, key: &str) -> Result<bool, StoreError> {
        let deleted =
            self.lock()
                .execute(table.delete, [key])
                .map_err(|source| StoreError::Database {
                    operation: table.remove,
                    code: Some(key.to_owned()),
                    source,
                })?;
        Ok(deleted > 0)
    }

    /// The connection. A poisoned lock is taken anyway: a panic inside a critical section
    /// unwinds through the open `Transaction`, whose drop rolls it back, so the connection holds
    /// no half-done write.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StreamRepository for SqliteStore {
    fn list(&self) -> Result<Vec<StoredStream>, StoreError> {
        self.select(
            "list",
            "SELECT code, json, revision, created_at, updated_at FROM streams ORDER BY code",
            params![],
        )
    }

    fn list_page(
        &self,
        after: Option<&StreamCode>,
        limit: usize,
    ) -> Result<Vec<StoredStream>, StoreError> {
        let after = after.map_or("", StreamCode::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select(
            "list_page",
            "SELECT code, json, revision, created_at, updated_at FROM streams \
             WHERE code > ?1 ORDER BY code LIMIT ?2",
            params![after, limit],
        )
    }

    fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .lock()
            .prepare_cached("SELECT COUNT(*) FROM streams")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(|source| StoreError::Database {
                operation: "count",
                code: None,
                source,
            })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn get(&self, code: &StreamCode) -> Result<Option<StoredStream>, StoreError> {
        let db = |source| StoreError::Database {
            operation: "get",
            code: Some(code.to_string()),
            source,
        };
        let row = self
            .lock()
            .prepare_cached(
                "SELECT code, json, revision, created_at, updated_at \
                 FROM streams WHERE code = ?1",
            )
            .map_err(db)?
            .query_row([code.as_str()], RawRow::read)
            .optional()
            .map_err(db)?;
        row.as_ref().map(RawRow::decode).transpose()
    }

    fn upsert(&self, stream: &Stream, expect: Expect) -> Result<Upserted, StoreError> {
        let code = stream.code.as_str();
        let db = |source| StoreError::Database {
            operation: "upsert",
            code: Some(code.to_owned()),
            source,
        };
        let (json, stored_stream) = encode(stream)?;
        let now = Utc::now().trunc_subsecs(3);

        let mut conn = self.lock();
        // IMMEDIATE takes the write lock up front, so the read below and the write cannot
        // interleave with another writer (another process on the same file included).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let current: Option<(i64, String)> = tx
            .query_row(
                "SELECT revision, created_at FROM streams WHERE code = ?1",
                [code],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let (actual, created_at) = match current {
            None => (None, now),
            Some((revision, created_at)) => {
                let revision = revision_from_column(code, revision)?;
                let created_at = parse_time(&created_at).unwrap_or_else(|reason| {
                    tracing::warn!(stream = code, %reason, "replacing unreadable created_at");
                    now
                });
                (Some(revision), created_at)
            }
        };

        let conflict = |expected| StoreError::Conflict {
            code: code.to_owned(),
            expected,
            actual,
        };
        match (expect, actual) {
            (Expect::Any, _) | (Expect::Absent, None) => {}
            (Expect::Revision(wanted), Some(found)) if wanted == found => {}
            (Expect::Absent, Some(_)) => return Err(conflict(None)),
            (Expect::Revision(wanted), _) => return Err(conflict(Some(wanted))),
        }

        let revision = actual.map_or(1, |found| found.saturating_add(1));
        let revision_column = i64::try_from(revision).map_err(|_| StoreError::Corrupt {
            code: code.to_owned(),
            reason: format!("revision {revision} is past the largest storable one"),
        })?;
        tx.execute(
            "INSERT INTO streams (code, json, disabled, revision, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (code) DO UPDATE SET json = excluded.json, \
                 disabled = excluded.disabled, revision = excluded.revision, \
                 created_at = excluded.created_at, updated_at = excluded.updated_at",
            params![
                code,
                json,
                stream.disabled,
                revision_column,
                format_time(created_at),
                format_time(now),
            ],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        drop(conn);

        Ok(Upserted {
            stored: StoredStream {
                stream: stored_stream,
                revision,
                created_at,
                updated_at: now,
            },
            created: actual.is_none(),
        })
    }

    fn delete(&self, code: &StreamCode) -> Result<bool, StoreError> {
        let deleted = self
            .lock()
            .execute("DELETE FROM streams WHERE code = ?1", [code.as_str()])
            .map_err(|source| StoreError::Database {
                operation: "delete",
                code: Some(code.to_string()),
                source,
            })?;
        Ok(deleted > 0)
    }
}

/// A `streams` row as read, before decoding (which may find it corrupt).
struct RawRow {
    code: String,
    json: String,
    revision: i64,
    created_at: String,
    updated_at: String,
}

impl RawRow {
    /// Reads the columns of `SELECT code, json, revision, created_at, updated_at`.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            code: row.get(0)?,
            json: row.get(1)?,
            revision: row.get(2)?,
            created_at: row.get(3)?,
            updated_at: row.get(4)?,
        })
    }

    /// Decodes the row; every failure is [`StoreError::Corrupt`] naming the row's code.
    fn decode(&self) -> Result<StoredStream, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            code: self.code.clone(),
            reason,
        };
        let stream: Stream = serde_json::from_str(&self.json)
            .map_err(|err| corrupt(format!("stream JSON does not decode: {err}")))?;
        if stream.code.as_str() != self.code {
            return Err(corrupt(format!(
                "stream JSON holds code {:?}, not the row's",
                stream.code.as_str()
            )));
        }
        let revision = revision_from_column(&self.code, self.revision)?;
        let created_at =
            parse_time(&self.created_at).map_err(|r| corrupt(format!("created_at: {r}")))?;
        let updated_at =
            parse_time(&self.updated_at).map_err(|r| corrupt(format!("updated_at: {r}")))?;
        Ok(StoredStream {
            stream,
            revision,
            created_at,
            updated_at,
        })
    }
}

/// One numbered schema change, from `migrations/sqlite/NNNN_name.sql`.
struct Migration {
    /// `NNNN` of the file name; versions run 1, 2, 3, ... without gaps.
    version: u32,
    /// `name` of the file name, recorded in `schema_migrations`.
    name: &'static str,
    /// The file's statements, run in one transaction.
    sql: &'static str,
}

/// Sets the per-connection pragmas (and WAL, which sticks to the file).
fn configure(conn: &Connection, on_disk: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if on_disk {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Still durable (a rollback journal with synchronous = FULL), only readers now wait
            // for writers; happens on file systems without shared memory support.
            tracing::warn!(journal_mode = %mode, "store database refused WAL journal mode");
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Applies the migrations the database lacks, each in its own transaction; returns the schema
/// version reached.
fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<u32, StoreError> {
    let failed = |version: u32, what: &str, err: rusqlite::Error| StoreError::Migration {
        version,
        reason: format!("{what}: {err}"),
    };
    conn.execute_batch(SCHEMA_MIGRATIONS_TABLE)
        .map_err(|err| failed(0, "creating schema_migrations", err))?;

    let latest = migrations.last().map_or(0, |m| m.version);
    let current = applied_version(conn)?;
    if current > latest {
        return Err(StoreError::Migration {
            version: current,
            reason: format!(
                "the database is at schema version {current}, but this binary knows versions up \
                 to {latest} only; run the newer tributary that wrote it, or restore a backup \
                 made by this version"
            ),
        });
    }

    let mut reached = current;
    for migration in migrations.iter().filter(|m| m.version > current) {
        let version = migration.version;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| failed(version, "starting transaction", err))?;
        // Another process may have applied it between our read and taking the write lock.
        if applied_version(&tx)? >= version {
            reached = version;
            continue;
        }
        tx.execute_batch(migration.sql)
            .map_err(|err| failed(version, migration.name, err))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, migration.name, format_time(Utc::now())],
        )
        .map_err(|err| failed(version, "recording the migration", err))?;
        tx.commit()
            .map_err(|err| failed(version, "committing", err))?;
        tracing::info!(version, name = migration.name, "applied store migration");
        reached = version;
    }
    Ok(reached)
}

/// The highest version in `schema_migrations` (0 for a new database).
fn applied_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(|err| StoreError::Migration {
            version: 0,
            reason: format!("reading schema_migrations: {err}"),
        })?;
    u32::try_from(version).map_err(|_| StoreError::Migration {
        version: 0,
        reason: format!("schema_migrations holds version {version}, which is not a valid version"),
    })
}

/// Creates the database's directory (0700) and file (0600) if missing.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|source| StoreError::Io {
            operation: "creating directory",
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            operation: "creating file",
            path: path.to_owned(),
            source,
        }),
    }
}

/// The stream's canonical JSON, and the stream as it will decode from it.
///
/// Decoding before writing guarantees that no write stores a row that `get` would then call
/// corrupt (a non-finite float, for one, encodes as `null`).
fn encode(stream: &Stream) -> Result<(String, Stream), StoreError> {
    let encode_error = |reason: String| StoreError::Encode {
        code: stream.code.to_string(),
        reason,
    };
    let json = serde_json::to_string(stream)
        .map_err(|err| encode_error(format!("JSON encoding failed: {err}")))?;
    let decoded = serde_json::from_str(&json)
        .map_err(|err| encode_error(format!("its JSON would not decode again: {err}")))?;
    Ok((json, decoded))
}

fn revision_from_column(code: &str, revision: i64) -> Result<u64, StoreError> {
    u64::try_from(revision)
        .ok()
        .filter(|&revision| revision >= 1)
        .ok_or_else(|| StoreError::Corrupt {
            code: code.to_owned(),
            reason: format!("revision {revision} is not positive"),
        })
}

/// RFC 3339 in UTC with milliseconds: `2025-01-31T12:00:00.123Z`.
fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|err| format!("{text:?} is not an RFC 3339 time: {err}"))
}

/// How long a statement waits for another connection's lock before failing with "database is
/// locked": long enough to ride out a checkpoint or a backup tool, short enough that an admin
/// request still fails well inside its 120 s budget.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const MEMORY_PATH: &str = ":memory:";

/// A table of JSON rows keyed by one text column (hooks, templates) and the SQL
/// [`SqliteStore::put_json`] runs on it.
#[derive(Debug, Clone, Copy)]
struct JsonTable {
    /// What a row is, for errors (`hook`, `template`).
    kind: &'static str,
    /// The operation's name in errors.
    put: &'static str,
    /// `SELECT 1 … WHERE <key> = ?1`.
    exists: &'static str,
    /// `INSERT (<key>, json, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) ON CONFLICT …`.
    upsert: &'static str,
    /// The delete operation's name in errors.
    remove: &'static str,
    /// `DELETE … WHERE <key> = ?1`.
    delete: &'static str,
}

impl JsonTable {
    const HOOKS: Self = Self {
        kind: "hook",
        put: "put hook",
        exists: "SELECT 1 FROM hooks WHERE id = ?1",
        upsert: "INSERT INTO hooks (id, json, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at",
        remove: "delete hook",
        delete: "DELETE FROM hooks WHERE id = ?1",
    };
    const VOD_MOUNTS: Self = Self {
        kind: "VOD mount",
        put: "put VOD mount",
        exists: "SELECT 1 FROM vod_mounts WHERE name = ?1",
        upsert: "INSERT INTO vod_mounts (name, json, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET json = excluded.json,
             updated_at = excluded.updated_at",
        remove: "delete VOD mount",
        delete: "DELETE FROM vod_mounts WHERE name = ?1",
    };
    const TEMPLATES: Self = Self {
        kind: "template",
        put: "put template",
        exists: "SELECT 1 FROM templates WHERE code = ?1",
        upsert: "INSERT INTO templates (code, json, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (code) DO UPDATE SET json = excluded.json,
             updated_at = excluded.updated_at",
        remove: "delete template",
        delete: "DELETE FROM templates WHERE code = ?1",
    };
}

/// The bookkeeping table, created before any migration so the version can be read.
const SCHEMA_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL
) STRICT;";

/// Every migration this binary knows, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "streams",
        sql: include_str!("../migrations/sqlite/0001_streams.sql"),
    },
    Migration {
        version: 2,
        name: "config_overrides",
        sql: include_str!("../migrations/sqlite/0002_config_overrides.sql"),
    },
    Migration {
        version: 3,
        name: "hooks",
        sql: include_str!("../migrations/sqlite/0003_hooks.sql"),
    },
    Migration {
        version: 4,
        name: "hook_deliveries",
        sql: include_str!("../migrations/sqlite/0004_hook_deliveries.sql"),
    },
    Migration {
        version: 5,
        name: "templates",
        sql: include_str!("../migrations/sqlite/0005_templates.sql"),
    },
    Migration {
        version: 6,
        name: "vod_mounts",
        sql: include_str!("../migrations/sqlite/0006_vod_mounts.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> StreamCode {
        StreamCode::parse(text).expect("test code is valid")
    }

    #[test]
    fn migrations_are_numbered_without_gaps() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, i + 1, "{}", migration.name);
        }
    }

    #[test]
    fn connection_is_configured_for_durability() {
        let store = SqliteStore::open_in_memory().expect("open");
        let conn = store.lock();
        let synchronous: i64 = conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .expect("pragma");
        assert_eq!(synchronous, 2, "synchronous = FULL");
        let foreign_keys: bool = conn
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .expect("pragma");
        assert!(foreign_keys);
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let store = SqliteStore::open_in_memory().expect("open");
        let mut conn = store.lock();
        assert_eq!(migrate(&mut conn, MIGRATIONS).expect("migrate"), 6);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .expect("count");
        assert_eq!(rows, 6);
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' \
                 AND name IN ('streams', 'config_overrides', 'hooks', 'hook_deliveries', \
                 'templates', 'vod_mounts')",
                [],
                |row| row.get(0),
            )
            .expect("tables");
        assert_eq!(tables, 6);
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, MIGRATIONS).expect("migrate");
        let err = migrate(&mut conn, &MIGRATIONS[..1]).expect_err("the latest version is too new");
        let StoreError::Migration { version, reason } = &err else {
            panic!("expected a migration error, got {err:?}");
        };
        assert_eq!(*version as usize, MIGRATIONS.len());
        assert!(reason.contains("knows versions up to 1"), "{reason}");
    }

    #[test]
    fn failed_migration_rolls_back_and_names_itself() {
        let mut conn = Connection::open_in_memory().expect("open");
        let broken = [Migration {
            version: 1,
            name: "half_done",
            sql: "CREATE TABLE kept_out (x INTEGER); SELECT no_such_function();",
        }];
        let err = migrate(&mut conn, &broken).expect_err("broken SQL");
        assert!(
            matches!(&err, StoreError::Migration { version: 1, reason } if reason.contains("half_done")),
            "{err}"
        );
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'kept_out'",
                [],
                |row| row.get(0),
            )
            .expect("count");
        assert_eq!(tables, 0, "the failed migration's DDL was rolled back");
        assert_eq!(applied_version(&conn).expect("version"), 0);
    }

    #[test]
    fn corrupt_rows_are_skipped_by_list_and_reported_by_get() {
        let store = SqliteStore::open_in_memory().expect("open");
        for text in ["a", "b", "c", "d"] {
            store
                .upsert(&Stream::new(code(text)), Expect::Absent)
                .expect("create");
        }
        {
            let conn = store.lock();
            conn.execute(
                "UPDATE streams SET json = '{\"code\":' WHERE code = 'a'",
                [],
            )
            .expect("break a");
            conn.execute(
                "UPDATE streams SET json = '{\"code\":\"other\"}' WHERE code = 'b'",
                [],
            )
            .expect("break b");
            conn.execute(
                "UPDATE streams SET updated_at = 'yesterday' WHERE code = 'c'",
                [],
            )
            .expect("break c");
        }
        let listed: Vec<_> = store
            .list()
            .expect("list")
            .into_iter()
            .map(|s| s.stream.code)
            .collect();
        assert_eq!(listed, [code("d")]);
        for (text, needle) in [
            ("a", "does not decode"),
            ("b", "\"other\""),
            ("c", "yesterday"),
        ] {
            let err = store.get(&code(text)).expect_err("corrupt");
            let StoreError::Corrupt {
                code: found,
                reason,
            } = &err
            else {
                panic!("expected Corrupt, got {err:?}");
            };
            assert_eq!(found, text);
            assert!(reason.contains(needle), "{reason}");
            assert!(err.to_string().contains(&format!("stream {text}")), "{err}");
        }
        // Overwriting repairs a corrupt row; its revision still counts on.
        let repaired = store
            .upsert(&Stream::new(code("a")), Expect::Revision(1))
            .expect("repair");
        assert_eq!(repaired.stored.revision, 2);
        assert_eq!(store.get(&code("a")).expect("get"), Some(repaired.stored));
    }

    #[test]
    fn non_finite_numbers_are_refused_before_writing() {
        let store = SqliteStore::open_in_memory().expect("open");
        let mut stream = Stream::new(code("nan"));
        stream.dvr = Some(tributary_domain::Dvr {
            max_size_gb: f64::NAN,
            ..Default::default()
        });
        let err = store.upsert(&stream, Expect::Any).expect_err("NaN");
        assert!(
            matches!(&err, StoreError::Encode { code, .. } if code == "nan"),
            "{err}"
        );
        assert_eq!(store.get(&code("nan")).expect("get"), None);
    }
}
