//! What every `StreamRepository` must do. Each check is a generic function over the trait; the
//! `conformance!` macro turns the whole list into `#[test]`s for one backend.

use std::thread;

use tributary_domain::Stream;
use tributary_store::{Expect, SqliteStore, StoreError, StreamRepository};

use crate::{code, complex_stream};

/// Instantiates every check for a backend. `$open` evaluates to `(guard, repo)`; the guard
/// (a temporary directory, say) lives as long as the test.
macro_rules! conformance {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;

            conformance!(@tests $open;
                create_then_get_and_list,
                list_is_sorted_by_code,
                pages_follow_the_list_and_count_counts,
                update_bumps_revision_and_keeps_created_at,
                expect_absent_refuses_existing,
                expect_revision_refuses_stale_and_absent,
                delete_reports_whether_it_existed,
                complex_stream_round_trips,
                conflict_message_names_stream_and_revisions,
                concurrent_writers_of_distinct_streams,
                concurrent_compare_and_swap_loses_no_update,
            );
        }
    };
    (@tests $open:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let (_guard, repo) = $open;
                super::$check(&repo);
            }
        )*
    };
}

conformance!(
    sqlite_memory,
    ((), SqliteStore::open_in_memory().expect("open"))
);
conformance!(sqlite_file, {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = SqliteStore::open(&dir.path().join("tributary.db")).expect("open");
    (dir, repo)
});

fn create_then_get_and_list<R: StreamRepository>(repo: &R) {
    assert_eq!(repo.get(&code("cam1")).expect("get"), None);
    assert!(repo.list().expect("list").is_empty());

    let mut stream = Stream::new(code("cam1"));
    stream.name = "Camera 1".to_owned();
    let upserted = repo.upsert(&stream, Expect::Absent).expect("create");
    assert!(upserted.created);
    assert_eq!(upserted.stored.stream, stream);
    assert_eq!(upserted.stored.revision, 1);
    assert_eq!(upserted.stored.created_at, upserted.stored.updated_at);

    assert_eq!(
        repo.get(&code("cam1")).expect("get"),
        Some(upserted.stored.clone())
    );
    assert_eq!(repo.list().expect("list"), [upserted.stored]);
}

fn list_is_sorted_by_code<R: StreamRepository>(repo: &R) {
    let texts = ["b/x", "a", "b", "a-b", "Z", "a_b", "b-c", "a/z", "0"];
    for text in texts {
        repo.upsert(&Stream::new(code(text)), Expect::Absent)
            .expect("create");
    }
    let listed: Vec<_> = repo
        .list()
        .expect("list")
        .into_iter()
        .map(|stored| stored.stream.code)
        .collect();
    let mut expected: Vec<_> = texts.into_iter().map(code).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

fn pages_follow_the_list_and_count_counts<R: StreamRepository>(repo: &R) {
    assert_eq!(repo.count().expect("count"), 0);
    assert!(repo.list_page(None, 10).expect("page").is_empty());
    let texts = ["b/x", "a", "b", "a-b", "Z", "a_b", "b-c", "a/z", "0"];
    for text in texts {
        repo.upsert(&Stream::new(code(text)), Expect::Absent)
            .expect("create");
    }
    assert_eq!(repo.count().expect("count"), texts.len() as u64);
    let all: Vec<_> = repo.list().expect("list");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = repo.list_page(after.as_ref(), 4).expect("page");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = Some(last.stream.code.clone());
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert_eq!(repo.list_page(None, 0).expect("page"), []);
}

fn update_bumps_revision_and_keeps_created_at<R: StreamRepository>(repo: &R) {
    let mut stream = Stream::new(code("news"));
    let first = repo.upsert(&stream, Expect::Any).expect("create");
    assert!(first.created);
    let mut previous = first.stored.clone();
    for revision in 2..=4 {
        stream.description = format!("edit {revision}");
        stream.disabled = revision % 2 == 0;
        let upserted = repo.upsert(&stream, Expect::Any).expect("update");
        assert!(!upserted.created);
        assert_eq!(upserted.stored.revision, revision);
        assert_eq!(upserted.stored.created_at, first.stored.created_at);
        assert!(upserted.stored.updated_at >= previous.updated_at);
        assert_eq!(
            repo.get(&code("news")).expect("get"),
            Some(upserted.stored.clone())
        );
        previous = upserted.stored;
    }
    assert_eq!(repo.list().expect("list"), [previous]);
}

fn expect_absent_refuses_existing<R: StreamRepository>(repo: &R) {
    let original = repo
        .upsert(&Stream::new(code("dup")), Expect::Absent)
        .expect("create");
    let mut other = Stream::new(code("dup"));
    other.name = "second".to_owned();
    let err = repo.upsert(&other, Expect::Absent).expect_err("exists");
    assert!(
        matches!(&err, StoreError::Conflict { code, expected: None, actual: Some(1) } if code == "dup"),
        "{err:?}"
    );
    assert_eq!(
        repo.get(&code("dup")).expect("get"),
        Some(original.stored),
        "a refused write changes nothing"
    );
}

fn expect_revision_refuses_stale_and_absent<R: StreamRepository>(repo: &R) {
    let mut stream = Stream::new(code("cas"));
    let err = repo
        .upsert(&stream, Expect::Revision(1))
        .expect_err("absent");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: Some(1),
                actual: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        repo.get(&code("cas")).expect("get"),
        None,
        "If-Match never creates"
    );

    repo.upsert(&stream, Expect::Absent).expect("create");
    let err = repo
        .upsert(&stream, Expect::Revision(2))
        .expect_err("future revision");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: Some(2),
                actual: Some(1),
                ..
            }
        ),
        "{err:?}"
    );

    stream.name = "fresh".to_owned();
    let second = repo
        .upsert(&stream, Expect::Revision(1))
        .expect("matching revision");
    assert_eq!(second.stored.revision, 2);

    stream.name = "stale".to_owned();
    let err = repo
        .upsert(&stream, Expect::Revision(1))
        .expect_err("stale revision");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: Some(1),
                actual: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(repo.get(&code("cas")).expect("get"), Some(second.stored));
}

fn delete_reports_whether_it_existed<R: StreamRepository>(repo: &R) {
    assert!(!repo.delete(&code("gone")).expect("delete absent"));
    repo.upsert(&Stream::new(code("gone")), Expect::Absent)
        .expect("create");
    repo.upsert(&Stream::new(code("gone")), Expect::Any)
        .expect("update");
    repo.upsert(&Stream::new(code("kept")), Expect::Absent)
        .expect("create");

    assert!(repo.delete(&code("gone")).expect("delete"));
    assert_eq!(repo.get(&code("gone")).expect("get"), None);
    let listed: Vec<_> = repo
        .list()
        .expect("list")
        .into_iter()
        .map(|stored| stored.stream.code)
        .collect();
    assert_eq!(listed, [code("kept")]);
    assert!(!repo.delete(&code("gone")).expect("delete again"));

    let again = repo
        .upsert(&Stream::new(code("gone")), Expect::Absent)
        .expect("recreate");
    assert!(again.created);
    assert_eq!(again.stored.revision, 1, "a recreated stream starts over");
}

fn complex_stream_round_trips<R: StreamRepository>(repo: &R) {
    let stream = complex_stream("sport/final-1");
    let upserted = repo.upsert(&stream, Expect::Absent).expect("create");
    assert_eq!(upserted.stored.stream, stream);
    let got = repo
        .get(&code("sport/final-1"))
        .expect("get")
        .expect("present");
    assert_eq!(got.stream, stream);
    assert_eq!(got, upserted.stored);
    assert_eq!(repo.list().expect("list"), [got]);
}

fn conflict_message_names_stream_and_revisions<R: StreamRepository>(repo: &R) {
    repo.upsert(&Stream::new(code("cam7")), Expect::Absent)
        .expect("create");
    let err = repo
        .upsert(&Stream::new(code("cam7")), Expect::Revision(5))
        .expect_err("stale");
    assert_eq!(
        err.to_string(),
        "stream cam7: write refused: expected revision 5, found revision 1"
    );
    let err = repo
        .upsert(&Stream::new(code("cam7")), Expect::Absent)
        .expect_err("exists");
    assert_eq!(
        err.to_string(),
        "stream cam7: write refused: expected no stream, found revision 1"
    );
}

fn concurrent_writers_of_distinct_streams<R: StreamRepository>(repo: &R) {
    const THREADS: usize = 8;
    const WRITES: usize = 50;
    thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for i in 0..WRITES {
                    let stream = Stream::new(code(&format!("t{t}/s{i:02}")));
                    let upserted = repo.upsert(&stream, Expect::Absent).expect("create");
                    assert_eq!(upserted.stored.revision, 1);
                }
            });
        }
    });
    let listed = repo.list().expect("list");
    assert_eq!(listed.len(), THREADS * WRITES);
    for t in 0..THREADS {
        for i in 0..WRITES {
            let stored = repo
                .get(&code(&format!("t{t}/s{i:02}")))
                .expect("get")
                .expect("every acknowledged write is present");
            assert_eq!(stored.revision, 1);
        }
    }
}

/// Read-modify-write with `Expect::Revision`, retried on conflict: no increment may be lost.
fn concurrent_compare_and_swap_loses_no_update<R: StreamRepository>(repo: &R) {
    const THREADS: usize = 4;
    const INCREMENTS: usize = 25;
    repo.upsert(&Stream::new(code("counter")), Expect::Absent)
        .expect("create");
    thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for i in 0..INCREMENTS {
                    loop {
                        let current = repo.get(&code("counter")).expect("get").expect("present");
                        let mut stream = current.stream;
                        stream.tags.push(format!("{t}.{i}"));
                        match repo.upsert(&stream, Expect::Revision(current.revision)) {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(err) => panic!("upsert failed: {err}"),
                        }
                    }
                }
            });
        }
    });
    let stored = repo.get(&code("counter")).expect("get").expect("present");
    assert_eq!(stored.stream.tags.len(), THREADS * INCREMENTS);
    assert_eq!(stored.revision, 1 + (THREADS * INCREMENTS) as u64);
}
