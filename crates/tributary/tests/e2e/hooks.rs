//! Webhooks (issue 17 item 3, SPEC §Hooks): a receiver run by the test (axum on loopback)
//! gets signed JSON-array batches whose HMAC verifies with the shared secret; metadata and
//! filters apply; a file hook writes JSON lines (0600); a receiver down for 20 s loses no
//! event and gets them in order once back; a setting changed on a running hook applies at
//! once and shutdown flushes once; hooks and their delivery logs survive a restart; a
//! loopback hook under `ssrf_guard = strict` is refused, with the error in the delivery log,
//! and a full queue drops its oldest events, counted and logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tributary_testkit::wait_until;

use crate::server::{Server, send};
use crate::turn::shared;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Batch {
    fn events(&self) -> Vec<Value> {
        let parsed: Value = serde_json::from_slice(&self.body).expect("a JSON body");
        parsed.as_array().expect("a JSON array").clone()
    }
}

/// What every receiver session on one port has been sent, in arrival order.
pub(crate) type Inbox = Arc<Mutex<Vec<Batch>>>;

/// An HTTP receiver on loopback: axum on its own runtime, answering 204 to any POST.
pub(crate) struct Receiver {
    addr: SocketAddr,
    inbox: Inbox,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    /// Listens on `port` (0: any) and records into `inbox`.
    pub(crate) fn start(port: u16, inbox: Inbox) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let kept = Arc::clone(&inbox);
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("bind the receiver");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new()
                    .route("/{*path}", post(record))
                    .with_state(kept);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver bound");
        Self {
            addr,
            inbox,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn batches(&self) -> Vec<Batch> {
        self.inbox.lock().unwrap().clone()
    }

    /// Every event received at `path`, in arrival order.
    pub(crate) fn events(&self, path: &str) -> Vec<Value> {
        self.batches()
            .iter()
            .filter(|b| b.path == path)
            .flat_map(Batch::events)
            .collect()
    }

    /// Closes the listener; connections to the port are refused until a new start.
    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("receiver thread");
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn record(
    State(inbox): State<Inbox>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    inbox.lock().unwrap().push(Batch {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
    axum::http::StatusCode::NO_CONTENT
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, computed here independently of the server.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn api(server: &Server, method: &str, path: &str, body: Option<&Value>) -> crate::server::Answer {
    let text = body.map(Value::to_string);
    send(method, &server.url(path), text.as_deref(), &[])
}

pub(crate) fn create_stream(server: &Server, code: &str) {
    let answer = api(
        server,
        "PUT",
        &format!("/streams/{code}"),
        Some(&json!({"name": code})),
    );
    assert_eq!(answer.status, 201, "{:?}", answer.body);
}

pub(crate) fn types_for(events: &[Value], code: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["stream_code"] == code)
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn signed_batches_filters_file_sink_settings_and_shutdown_flush() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, Inbox::default());
    let server = Server::start(dir.path(), &[]);

    // Validation on the write path, each field named.
    let bad = api(
        &server,
        "POST",
        "/hooks",
        Some(&json!({"id": "x", "type": "http", "target": "ftp://h/", "max_retries": 11})),
    );
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    let paths: Vec<&str> = bad.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["target", "max_retries"]);
    let escape = api(
        &server,
        "POST",
        "/hooks",
        Some(&json!({"id": "x", "type": "file", "target": "../../etc/x"})),
    );
    assert_eq!(escape.status, 422);
    assert_eq!(escape.body["error"]["fields"][0]["path"], "target");
    let unknown = api(
        &server,
        "POST",
        "/hooks",
        Some(&json!({"id": "x", "type": "http", "target": "http://h/", "urll": 1})),
    );
    assert_eq!(
        (unknown.status, unknown.body["error"]["code"].clone()),
        (422, json!("UNKNOWN_FIELD"))
    );

    let ops = json!({"id": "ops", "type": "http", "target": receiver.url("/all"),
        "secret": "s3cret", "batch_flush_interval_sec": 1, "metadata": {"site": "ams"}});
    assert_eq!(api(&server, "POST", "/hooks", Some(&ops)).status, 201);
    assert_eq!(api(&server, "POST", "/hooks", Some(&ops)).status, 409);
    let cams = json!({"id": "cams", "type": "http", "target": receiver.url("/cams"),
        "batch_flush_interval_sec": 1, "event_types": ["stream.created"],
        "stream_codes": {"only": ["cam-*"]}});
    assert_eq!(api(&server, "POST", "/hooks", Some(&cams)).status, 201);
    let file = json!({"id": "log", "type": "file", "target": "events/all.jsonl",
        "batch_flush_interval_sec": 1});
    assert_eq!(api(&server, "POST", "/hooks", Some(&file)).status, 201);

    // Secrets masked on read, shown with reveal; echoing the mask keeps it.
    let listed = api(&server, "GET", "/hooks", None);
    assert_eq!(listed.body["total"], 3);
    assert_eq!(
        listed.body["data"][2]["secret"], "****",
        "{:?}",
        listed.body
    );
    let mut echoed = listed.body["data"][2].clone();
    echoed["name"] = json!("Operations");
    assert_eq!(api(&server, "PUT", "/hooks/ops", Some(&echoed)).status, 200);
    let revealed = api(&server, "GET", "/hooks/ops?reveal=true", None);
    assert_eq!(revealed.body["data"]["secret"], "s3cret");

    // A test delivery answers after a real try.
    let tested = api(&server, "POST", "/hooks/ops/test", None);
    assert_eq!(tested.status, 200, "{:?}", tested.body);
    assert_eq!(tested.body["data"]["status"], "delivered");
    let test_events = receiver.events("/all");
    assert_eq!(test_events[0]["stream_code"], "_tributary_test_");
    assert_eq!(test_events[0]["payload"]["test"], true);

    for code in ["cam-1", "studio"] {
        create_stream(&server, code);
    }
    assert_eq!(api(&server, "DELETE", "/streams/cam-1", None).status, 204);
    wait_until(Duration::from_secs(15), "both streams' events", || {
        let events = receiver.events("/all");
        types_for(&events, "cam-1").contains(&"stream.deleted".to_owned())
            && types_for(&events, "studio").contains(&"stream.created".to_owned())
    })
    .unwrap();

    // Every batch is signed over its exact body and says what it carries.
    let mut last_seq = 0;
    for batch in receiver.batches().iter().filter(|b| b.path == "/all") {
        assert_eq!(
            batch.headers["x-tributary-signature"],
            signature("s3cret", &batch.body)
        );
        assert_eq!(
            batch.headers["x-openstreamer-signature"],
            batch.headers["x-tributary-signature"]
        );
        assert_eq!(batch.headers["content-type"], "application/json");
        let events = batch.events();
        assert_eq!(
            batch.headers["x-tributary-batch-size"],
            events.len().to_string()
        );
        assert_eq!(
            batch.headers["x-openstreamer-batch-size"],
            events.len().to_string()
        );
        let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(batch.headers["x-tributary-event-ids"], ids.join(","));
        for event in &events {
            assert_eq!(event["payload"]["meta.site"], "ams", "{event}");
            let seq = event["seq"].as_u64().unwrap();
            if seq > 0 {
                assert!(seq > last_seq, "in order: {seq} after {last_seq}");
                last_seq = seq;
            }
        }
    }
    // The filtered hook got cam-1's creation only, unsigned.
    wait_until(Duration::from_secs(10), "the filtered hook's batch", || {
        !receiver.events("/cams").is_empty()
    })
    .unwrap();
    let cams_events = receiver.events("/cams");
    let seen: Vec<(&str, &str)> = cams_events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["stream_code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("stream.created", "cam-1")]);
    assert!(
        receiver
            .batches()
            .iter()
            .filter(|b| b.path == "/cams")
            .all(|b| !b.headers.contains_key("x-tributary-signature"))
    );

    // The file sink: JSON lines, mode 0600, inside the data dir's hooks root.
    let path = dir.path().join("hooks/events/all.jsonl");
    wait_until(Duration::from_secs(10), "the file hook's lines", || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"studio\""))
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(
            event["id"].is_string() && event["type"].is_string(),
            "{line}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The delivery log and the metrics.
    let log = api(&server, "GET", "/hooks/ops/deliveries", None);
    let entries = log.body["data"].as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        assert_eq!(entry["status"], "delivered", "{entry}");
        assert_eq!(entry["http_status"], 204);
        assert!(entry["duration_ms"].is_u64() && entry["event_ids"].is_array());
    }
    assert_eq!(
        api(&server, "GET", "/hooks/none/deliveries", None).status,
        404
    );
    let metrics = ureq::get(&server.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(
            "tributary_hooks_delivery_total{hook_id=\"ops\",hook_type=\"http\",outcome=\"delivered\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tributary_hooks_batch_queue_depth{hook_id=\"log\"}"));
    crate::metrics::promtool_check(&metrics);

    // A longer flush interval reaches the running batcher at once: the next event waits...
    let mut slower = revealed.body["data"].clone();
    slower["batch_flush_interval_sec"] = json!(600);
    assert_eq!(api(&server, "PUT", "/hooks/ops", Some(&slower)).status, 200);
    create_stream(&server, "late");
    thread::sleep(Duration::from_secs(3));
    assert!(types_for(&receiver.events("/all"), "late").is_empty());
    // ...until shutdown, which flushes once.
    assert!(server.terminate().success());
    let late = types_for(&receiver.events("/all"), "late");
    assert!(late.contains(&"stream.created".to_owned()), "{late:?}");

    // Hooks and their delivery logs persist; DELETE is 204 even when absent.
    let server = Server::start(dir.path(), &[]);
    assert_eq!(api(&server, "GET", "/hooks", None).body["total"], 3);
    let kept = api(&server, "GET", "/hooks/ops/deliveries", None).body;
    let newest = &kept["data"][0];
    assert_eq!(
        newest["status"], "delivered",
        "the shutdown flush, kept: {kept}"
    );
    assert!(kept["total"].as_u64() > Some(1), "{kept}");
    assert_eq!(api(&server, "DELETE", "/hooks/ops", None).status, 204);
    assert_eq!(api(&server, "DELETE", "/hooks/ops", None).status, 204);
    assert_eq!(api(&server, "GET", "/hooks/ops", None).status, 404);
}

#[test]
fn a_receiver_down_for_20_s_loses_nothing_and_gets_events_in_order() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::default();
    let receiver = Receiver::start(0, Arc::clone(&inbox));
    let port = receiver.addr.port();
    let server = Server::start(dir.path(), &[]);
    // Short cycles keep the test quick: 1 s flushes, two retries (after 1 s and 5 s), then
    // the batch returns to the front of the queue and the cycle starts again.
    let hook = json!({"id": "ops", "type": "http", "target": receiver.url("/in"),
        "batch_flush_interval_sec": 1, "max_retries": 2});
    assert_eq!(api(&server, "POST", "/hooks", Some(&hook)).status, 201);
    create_stream(&server, "before");
    wait_until(Duration::from_secs(10), "the first event", || {
        !receiver.events("/in").is_empty()
    })
    .unwrap();

    receiver.stop();
    let down = std::time::Instant::now();
    let mut codes = Vec::new();
    while down.elapsed() < Duration::from_secs(20) {
        let code = format!("during-{}", codes.len());
        create_stream(&server, &code);
        codes.push(code);
        thread::sleep(Duration::from_secs(2));
    }
    let failed = api(&server, "GET", "/hooks/ops/deliveries", None);
    let refused = failed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] == "failed")
        .cloned()
        .expect("failed attempts in the log");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{refused}"
    );
    assert!(refused["http_status"].is_null());

    let receiver = Receiver::start(port, inbox);
    wait_until(
        Duration::from_secs(20),
        "every event after the outage",
        || {
            let events = receiver.events("/in");
            codes
                .iter()
                .all(|code| types_for(&events, code).contains(&"stream.created".to_owned()))
        },
    )
    .unwrap();
    let events = receiver.events("/in");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, each once: {seqs:?}"
    );
    assert_eq!(
        seqs.len() as u64,
        seqs.last().unwrap() - seqs[0] + 1,
        "no gap: {seqs:?}"
    );
    drop(server);
}

#[test]
fn a_loopback_hook_is_refused_in_strict_mode_with_the_error_logged() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, Inbox::default());
    let server = Server::start(dir.path(), &[("TRIBUTARY_SECURITY__SSRF_GUARD", "strict")]);
    let hook = json!({"id": "local", "type": "http", "target": receiver.url("/x"),
        "batch_flush_interval_sec": 1, "max_retries": 0});
    assert_eq!(api(&server, "POST", "/hooks", Some(&hook)).status, 201);
    let tested = api(&server, "POST", "/hooks/local/test", None);
    assert_eq!(tested.status, 502, "{:?}", tested.body);
    assert_eq!(tested.body["error"]["code"], "DELIVERY_FAILED");
    let message = tested.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("blocked by ssrf_guard: 127.0.0.1"),
        "{message}"
    );

    // A batch of real events is refused the same way, and logged.
    create_stream(&server, "cam");
    let mut log = Value::Null;
    wait_until(
        Duration::from_secs(10),
        "the batch's refusal in the log",
        || {
            log = api(&server, "GET", "/hooks/local/deliveries", None).body;
            log["total"].as_u64() >= Some(2)
        },
    )
    .unwrap();
    for entry in log["data"].as_array().unwrap() {
        assert_eq!(entry["status"], "failed");
        assert!(
            entry["error"]
                .as_str()
                .unwrap()
                .contains("blocked by ssrf_guard: 127.0.0.1"),
            "{entry}"
        );
    }
    assert!(receiver.batches().is_empty());

    // A queue of one event that cannot drain drops the oldest, counted and logged.
    let tiny = json!({"id": "tiny", "type": "http", "target": receiver.url("/x"),
        "batch_flush_interval_sec": 1, "max_retries": 0, "batch_max_queue_items": 1});
    assert_eq!(api(&server, "POST", "/hooks", Some(&tiny)).status, 201);
    for code in ["a", "b", "c", "d"] {
        create_stream(&server, code);
    }
    let mut dropped = Value::Null;
    wait_until(
        Duration::from_secs(10),
        "a dropped entry in the log",
        || {
            let log = api(&server, "GET", "/hooks/tiny/deliveries", None).body;
            dropped = log["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["status"] == "dropped")
                .cloned()
                .unwrap_or_default();
            !dropped.is_null()
        },
    )
    .unwrap();
    assert!(
        dropped["error"]
            .as_str()
            .unwrap()
            .contains("events dropped"),
        "{dropped}"
    );
    assert!(!dropped["event_ids"].as_array().unwrap().is_empty());
    let metrics = ureq::get(&server.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tributary_hooks_events_dropped_total{hook_id=\"tiny\"}"))
        .expect("the drop counter");
    assert_ne!(line.rsplit(' ').next(), Some("0"), "{line}");
}
