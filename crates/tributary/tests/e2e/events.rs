//! `GET /events?since=` (issue 17): the envelopes of a stream's life in `seq` order, and a
//! client long-polling the bus sees a forced failover's `input.failover`, with the `gap_ms`
//! `runtime.switches` shows, published within a second of the switch; a file input that
//! ends for good is `input.failed`.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_testkit::wait_until;

use crate::metrics::two_udp_inputs;
use crate::server::{Server, send};
use crate::turn::shared;

/// `GET /events` with this query; the answer's body.
pub(crate) fn events(server: &Server, query: &str) -> Value {
    let answer = send("GET", &server.url(&format!("/events?{query}")), None, &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

#[test]
fn a_long_poll_sees_a_forced_failover_with_its_gap() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let [mut main, _backup] = two_udp_inputs(&server, "cam");

    // What happened so far, in order, each with a full envelope. The initial selection's
    // `input.failover` (from -1) comes once the intake commits to input 0's first keyframe.
    let mut list: Vec<Value> = Vec::new();
    let mut last = 0;
    wait_until(
        Duration::from_secs(20),
        "the initial input.failover",
        || {
            let page = events(&server, &format!("since={last}&timeout_sec=2"));
            assert_eq!(page["missed"], 0, "{page:#}");
            list.extend(page["data"].as_array().unwrap().iter().cloned());
            last = page["next_since"].as_u64().unwrap();
            list.iter().any(|e| e["type"] == "input.failover")
        },
    )
    .unwrap();
    let types: Vec<&str> = list.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.iter().position(|t| *t == "stream.created")
            < types.iter().position(|t| *t == "stream.started"),
        "{types:?}"
    );
    let mut previous = 0;
    for event in &list {
        let seq = event["seq"].as_u64().unwrap();
        assert!(seq > previous, "seq order: {list:#?}");
        previous = seq;
        let id = event["id"].as_str().unwrap();
        assert_eq!((id.len(), &id[14..15]), (36, "7"), "UUIDv7: {id}");
        assert!(event["occurred_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(event["stream_code"], "cam");
    }
    assert_eq!(previous, last);
    let initial = list.iter().find(|e| e["type"] == "input.failover").unwrap();
    assert_eq!(initial["payload"]["from"], -1, "{initial:#}");

    // Nothing newer: a long-poll with a short timeout answers empty after it.
    let mut tries = 0;
    loop {
        let started = Instant::now();
        let page = events(&server, &format!("since={last}&timeout_sec=1"));
        if page["total"] == 0 {
            assert!(started.elapsed() >= Duration::from_millis(900));
            assert_eq!(page["next_since"], last);
            break;
        }
        // A late event (another input's news): skip it and ask again.
        last = page["next_since"].as_u64().unwrap();
        tries += 1;
        assert!(tries < 5, "events keep coming: {page:#}");
    }

    // A client long-polls while the primary goes silent.
    let url = server.url("/events");
    let poller = thread::spawn(move || {
        let mut since = last;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let answer = send(
                "GET",
                &format!("{url}?since={since}&timeout_sec=20"),
                None,
                &[],
            );
            for event in answer.body["data"].as_array().unwrap() {
                if event["type"] == "input.failover" {
                    return Some(event.clone());
                }
            }
            since = answer.body["next_since"].as_u64().unwrap();
        }
        None
    });
    thread::sleep(Duration::from_millis(300));
    main.kill();
    wait_until(Duration::from_secs(15), "input 1 active", || {
        server.runtime("cam")["active_input_priority"] == 1
    })
    .unwrap();
    let failover = poller.join().unwrap().expect("input.failover long-polled");
    let runtime = server.runtime("cam");
    let payload = &failover["payload"];
    assert_eq!(payload["from"], 0, "{failover:#}");
    assert_eq!(payload["to"], 1, "{failover:#}");
    assert_eq!(payload["reason"], "timeout", "{failover:#}");
    assert!(payload["gap_ms"].is_u64(), "{failover:#}");
    let switch = &runtime["switches"][0];
    assert_eq!(
        payload["gap_ms"], switch["gap_ms"],
        "{failover:#} vs {runtime:#}"
    );
    // Published within 1 s of the switch.
    let apart = ms_of_day(&failover["occurred_at"]) - ms_of_day(&switch["at"]);
    let apart = apart.rem_euclid(DAY_MS);
    assert!(
        apart.min(DAY_MS - apart) <= 1000,
        "input.failover {apart} ms from the switch: {failover:#} vs {switch:#}"
    );

    // The primary's degradation that caused it came before it, in order.
    let all = events(&server, "since=0&timeout_sec=0&limit=1000");
    let all = all["data"].as_array().unwrap();
    let at = all
        .iter()
        .position(|e| e["seq"] == failover["seq"])
        .unwrap();
    assert!(
        all[..at].iter().any(|e| e["type"] == "input.degraded"
            && e["payload"]["input_priority"] == 0
            && e["payload"]["reason"] == "timeout"),
        "{all:#?}"
    );

    // Bad queries name the parameter.
    let bad = send("GET", &server.url("/events?since=x"), None, &[]);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["code"], "INVALID_QUERY");
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("since"),
        "{}",
        bad.body
    );
    let bad = send("GET", &server.url("/events?timeout_sec=61"), None, &[]);
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// Milliseconds since midnight of an RFC 3339 UTC time with milliseconds
/// (`2026-11-24T10:04:10.410Z`).
fn ms_of_day(at: &Value) -> i64 {
    let at = at.as_str().unwrap();
    let time = &at[at.find('T').unwrap() + 1..at.len() - 1];
    let (hms, ms) = time.split_once('.').unwrap();
    let parts: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + ms.parse::<i64>().unwrap()
}

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

#[test]
fn an_input_whose_source_ends_for_good_is_input_failed() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // A 10 s file without `loop`: played once at its pace, then the worker is done.
    let answer = send(
        "PUT",
        &server.url("/streams/once"),
        Some(&format!(
            r#"{{"inputs":[{{"url":"file://{}?loop=false"}}]}}"#,
            crate::hls::clip().display()
        )),
        &[],
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let mut failed = Value::Null;
    let mut last = 0;
    wait_until(Duration::from_secs(40), "input.failed", || {
        let page = events(&server, &format!("since={last}&timeout_sec=2"));
        last = page["next_since"].as_u64().unwrap();
        if let Some(event) = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "input.failed")
        {
            failed = event.clone();
        }
        !failed.is_null()
    })
    .unwrap();
    assert_eq!(failed["stream_code"], "once", "{failed:#}");
    assert_eq!(failed["payload"]["input_priority"], 0, "{failed:#}");
    assert!(failed["payload"]["detail"].is_string(), "{failed:#}");
    assert_eq!(server.runtime("once")["inputs"][0]["status"], "stopped");
}
