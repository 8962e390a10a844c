//! What only an on-disk SQLite database has. Rows are broken and versions forged through a raw
//! `rusqlite` connection of the test's own, as an operator's tool or an older binary would.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use rusqlite::Connection;
use tributary_domain::Stream;
use tributary_store::{Expect, SqliteStore, StoreError, StreamRepository};

use crate::{code, complex_stream};

#[test]
fn reopened_database_has_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tributary.db");
    let written = {
        let store = SqliteStore::open(&path).expect("open");
        store
            .upsert(&complex_stream("final"), Expect::Absent)
            .expect("create");
        let mut plain = Stream::new(code("plain"));
        store.upsert(&plain, Expect::Absent).expect("create");
        plain.name = "edited".to_owned();
        store.upsert(&plain, Expect::Revision(1)).expect("update");
        store
            .upsert(&Stream::new(code("dropped")), Expect::Absent)
            .expect("create");
        assert!(store.delete(&code("dropped")).expect("delete"));
        store.list().expect("list")
    };

    let store = SqliteStore::open(&path).expect("reopen");
    let listed = store.list().expect("list");
    assert_eq!(listed, written);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].stream, complex_stream("final"));
    assert_eq!(listed[1].revision, 2);
    assert_eq!(listed[1].stream.name, "edited");
    // Revisions continue where they were.
    let next = store
        .upsert(&listed[1].stream, Expect::Revision(2))
        .expect("update after reopen");
    assert_eq!(next.stored.revision, 3);
    assert_eq!(next.stored.created_at, listed[1].created_at);
}

#[test]
fn database_uses_wal_and_records_its_migrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tributary.db");
    drop(SqliteStore::open(&path).expect("open"));
    drop(SqliteStore::open(&path).expect("reopen"));

    let raw = Connection::open(&path).expect("raw open");
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let applied: Vec<(i64, String)> = raw
        .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        applied,
        [
            (1, "streams".to_owned()),
            (2, "config_overrides".to_owned()),
            (3, "hooks".to_owned()),
            (4, "hook_deliveries".to_owned()),
            (5, "templates".to_owned()),
            (6, "vod_mounts".to_owned())
        ]
    );
    raw.execute(
        "INSERT INTO config_overrides (path, value, updated_at) \
         VALUES ('manager.input_packet_timeout_sec', '45', '2025-01-31T12:00:00.000Z')",
        [],
    )
    .expect("config_overrides exists with its columns");
}

#[cfg(unix)]
#[test]
fn missing_directory_and_file_are_created_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let path = data_dir.join("tributary.db");
    let store = SqliteStore::open(&path).expect("open");
    store
        .upsert(&Stream::new(code("cam1")), Expect::Absent)
        .expect("create");

    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&path), 0o600);
    let wal = data_dir.join("tributary.db-wal");
    assert_eq!(
        mode(&wal),
        0o600,
        "SQLite gives the WAL the database's mode"
    );
}

#[test]
fn newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tributary.db");
    drop(SqliteStore::open(&path).expect("open"));
    Connection::open(&path)
        .expect("raw open")
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) \
             VALUES (7, 'from_the_future', '2030-01-01T00:00:00.000Z')",
            [],
        )
        .expect("forge version");

    let err = SqliteStore::open(&path).expect_err("too new");
    let StoreError::Migration { version, reason } = &err else {
        panic!("expected a migration error, got {err:?}");
    };
    assert_eq!(*version, 7);
    assert!(reason.contains("schema version 7"), "{reason}");
    assert!(reason.contains("up to 6"), "{reason}");
}

#[test]
fn not_a_database_is_an_open_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tributary.db");
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(&[0x42; 4096]))
        .expect("write junk");
    let err = SqliteStore::open(&path).expect_err("junk");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("tributary.db"), "{err}");
}

#[test]
fn corrupt_row_is_skipped_by_list_and_reported_by_get() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tributary.db");
    let store = SqliteStore::open(&path).expect("open");
    for text in ["alpha", "bravo", "charlie"] {
        store
            .upsert(&Stream::new(code(text)), Expect::Absent)
            .expect("create");
    }
    Connection::open(&path)
        .expect("raw open")
        .execute(
            "UPDATE streams SET json = '{\"code\":\"bravo\",\"colour\":\"blue\"}' \
             WHERE code = 'bravo'",
            [],
        )
        .expect("break bravo");

    let listed: Vec<_> = store
        .list()
        .expect("list survives one bad row")
        .into_iter()
        .map(|stored| stored.stream.code)
        .collect();
    assert_eq!(listed, [code("alpha"), code("charlie")]);

    let err = store.get(&code("bravo")).expect_err("corrupt");
    let StoreError::Corrupt {
        code: found,
        reason,
    } = &err
    else {
        panic!("expected Corrupt, got {err:?}");
    };
    assert_eq!(found, "bravo");
    assert!(reason.contains("colour"), "{reason}");

    assert!(
        store
            .delete(&code("bravo"))
            .expect("a corrupt row can be deleted")
    );
    assert_eq!(store.list().expect("list").len(), 2);
}

/// Helper process of [`acknowledged_writes_survive_kill_9`]: writes streams forever, printing
/// `ack N` after write N returned. Does nothing unless that test started it.
#[test]
#[ignore = "child process of acknowledged_writes_survive_kill_9"]
fn kill_9_writer() {
    let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&path)).expect("child open");
    let mut stdout = std::io::stdout().lock();
    for i in 0..CHILD_MAX_WRITES {
        let mut stream = complex_stream(&format!("k{i}"));
        stream.description = format!("write {i}");
        store.upsert(&stream, Expect::Absent).expect("child write");
        // A closed pipe means the parent is gone: stop.
        if writeln!(stdout, "ack {i}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return;
        }
    }
}

/// SPEC §Storage: a write acknowledged MUST survive `kill -9`. A child process writes and
/// acknowledges; the parent kills it with SIGKILL mid-stream, then finds every acknowledged write.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tributary.db");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "sqlite_file::kill_9_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("piped stdout");

    // Kept open until after the kill: a closed pipe would let the writer stop on its own.
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = None;
    for line in lines.by_ref() {
        let line = line.expect("read child");
        let Some(n) = line.strip_prefix("ack ") else {
            continue;
        };
        let n: u32 = n.parse().expect("ack number");
        acked = Some(n);
        if n + 1 >= KILL_AFTER_ACKS {
            break;
        }
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    drop(lines);
    let acked = acked.expect("the writer acknowledged writes");
    assert_eq!(acked + 1, KILL_AFTER_ACKS);

    let store = SqliteStore::open(&path).expect("reopen after kill -9");
    for i in 0..=acked {
        let stored = store
            .get(&code(&format!("k{i}")))
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged write {i} was lost"));
        assert_eq!(stored.stream.description, format!("write {i}"));
    }
    // The write in flight at the kill is either wholly there or wholly absent.
    assert!(store.list().expect("list").len() >= KILL_AFTER_ACKS as usize);
}

const CHILD_DB_ENV: &str = "TRIBUTARY_STORE_KILL9_DB";
const CHILD_MAX_WRITES: u32 = 100_000;
const KILL_AFTER_ACKS: u32 = 40;
