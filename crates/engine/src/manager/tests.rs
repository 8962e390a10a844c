//! The stream manager over the real hub, the real coordinator and real ingest workers, on
//! paused time: what wires `domain::Failover` to the intake and the event bus.
//!
//! Inputs are UDP inputs on loopback ports: their workers bind for real and report their
//! events, and the test plays each source by writing frames into the input's hub port, as the
//! worker does when datagrams arrive. Time moves only when every task waits, so a 30 s
//! timeout takes no wall time and lands exactly.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::time::Instant;
use tributary_domain::config::ServerConfig;
use tributary_domain::event::EventType;
use tributary_domain::{Input, Stream, StreamCode};
use tributary_hub::Port;
use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
use tributary_store::{Expect, SqliteStore};

use super::{Manager, SwitchRefusal};
use crate::MediaPlane;
use crate::coordinator::Coordinator;
use crate::events::{Event, EventBus, EventSubscriber};
use crate::supported::Supported;

/// A running stream with the engine's real services.
struct Rig {
    coordinator: Coordinator,
    /// What records are parsed against, as the engine builds it.
    supported: Arc<Supported>,
    manager: Arc<Manager>,
    events: EventSubscriber,
    code: StreamCode,
}

impl Rig {
    /// Starts stream `cam` with `urls` as its inputs, in priority order.
    async fn start(urls: &[String]) -> Self {
        let config = ServerConfig::default();
        let media = MediaPlane::new(&config);
        let bus = EventBus::new();
        let events = bus.subscribe("test");
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let supported = Arc::new(Supported::build(media.roots.clone()));
        let coordinator = Coordinator::new(
            media.services(),
            store,
            bus.clone(),
            Arc::clone(&supported),
            Duration::from_secs(120),
        );
        media.manager.attach(bus, coordinator.downgrade());
        let code = StreamCode::parse("cam").unwrap();
        let rig = Self {
            coordinator,
            supported,
            manager: media.manager,
            events,
            code,
        };
        rig.put(urls).await;
        rig
    }

    /// Stores stream `cam` with `urls` as its inputs, as a PUT does, and applies it.
    async fn put(&self, urls: &[String]) {
        let mut stream = Stream::new(self.code.clone());
        stream.inputs = inputs(urls);
        let (spec, _) = self.supported.parse(stream).unwrap();
        let outcome = self.coordinator.put(spec, Expect::Any).await.unwrap();
        outcome.applied.unwrap();
    }

    /// The hub port of the input at `priority`, where its source writes.
    fn port(&self, priority: u32) -> Port {
        let ctl = self.manager.ctl(&self.code).unwrap();
        let managed = ctl.lock();
        managed.slots[&priority].port.clone()
    }

    /// The next event of `kind` whose payload has `field` = `value`, within `within` of
    /// (paused) time.
    async fn next(
        &mut self,
        kind: EventType,
        field: &str,
        value: Value,
        within: Duration,
    ) -> Event {
        let wait = async {
            loop {
                let event = self.events.recv().await.unwrap();
                if event.kind == kind && event.payload[field] == value {
                    return (*event).clone();
                }
            }
        };
        tokio::time::timeout(within, wait)
            .await
            .unwrap_or_else(|_| panic!("no {kind} with {field} = {value} within {within:?}"))
    }

    /// The next event of `kind` about the input at `priority`, within `within`.
    async fn input_event(&mut self, kind: EventType, priority: u32, within: Duration) -> Event {
        self.next(kind, "input_priority", Value::from(priority), within)
            .await
    }

    /// The next `input.failover` with `reason`, within `within`.
    async fn switch_for(&mut self, reason: &str, within: Duration) -> Event {
        let reason = Value::from(reason);
        self.next(EventType::InputFailover, "reason", reason, within)
            .await
    }

    /// Stream `cam` on two fed UDP inputs, on air on the primary: the rig and the switches
    /// that keep the primary and the backup fed.
    async fn on_primary() -> (Self, Arc<AtomicBool>, Arc<AtomicBool>) {
        let mut rig = Self::start(&[udp(), udp()]).await;
        let primary = feed(rig.port(0));
        let backup = feed(rig.port(1));
        rig.next(EventType::InputFailover, "to", json_u32(0), SECOND * 2)
            .await;
        (rig, primary, backup)
    }

    fn active(&self) -> Option<u32> {
        self.manager.runtime(&self.code).unwrap().active
    }
}

fn inputs(urls: &[String]) -> Vec<Input> {
    urls.iter()
        .zip(0..)
        .map(|(url, priority)| Input::new(url, priority))
        .collect()
}

/// A UDP input on a loopback port that was free a moment ago.
fn udp() -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    format!("udp://{}", socket.local_addr().unwrap())
}

/// Plays a source: 25 video frames a second, a keyframe every second, into `port`, while the
/// returned switch is on.
fn feed(port: Port) -> Arc<AtomicBool> {
    let on = Arc::new(AtomicBool::new(true));
    let flowing = Arc::clone(&on);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(FRAME);
        let mut n: i64 = 0;
        loop {
            ticks.tick().await;
            if !flowing.load(Ordering::Acquire) {
                continue;
            }
            let ms = n * FRAME.as_millis() as i64;
            let frame = Frame {
                track: TrackId(0),
                codec: Codec::H264,
                pts: Ts90::from_millis(ms),
                dts: Ts90::from_millis(ms),
                keyframe: n % 25 == 0,
                session: SessionId(0),
                arrival: Instant::now().into_std(),
                payload: Bytes::from_static(b"\0\0\0\x01\x65frame"),
                config: None,
            };
            if port.write(frame).is_err() {
                return;
            }
            n += 1;
        }
    });
    on
}

#[tokio::test(start_paused = true)]
async fn silence_fails_over_and_the_primary_fails_back_after_the_hold() {
    let mut rig = Rig::start(&[udp(), udp()]).await;
    let primary = feed(rig.port(0));
    let _backup = feed(rig.port(1));
    let initial = json_u32(0);
    rig.next(EventType::InputFailover, "to", initial, SECOND * 2)
        .await;
    assert_eq!(rig.active(), Some(0));

    // The primary goes silent: the backup takes over once the packet timeout has passed.
    primary.store(false, Ordering::Release);
    let silent = Instant::now();
    let failover = rig.switch_for("timeout", SECOND * 40).await;
    let waited = silent.elapsed();
    assert!(
        (SECOND * 30..SECOND * 31).contains(&waited),
        "failed over after {waited:?}"
    );
    assert_eq!(failover.payload["from"], 0);
    assert_eq!(failover.payload["to"], 1);
    assert!(failover.payload["gap_ms"].is_u64(), "{failover:?}");
    assert_eq!(rig.active(), Some(1));
    assert_eq!(
        rig.manager.committed(&rig.code, Some(1)),
        Some(true),
        "the intake carries the backup"
    );

    // The primary comes back: restored at its first keyframe, back on air after the hold.
    primary.store(true, Ordering::Release);
    let back = Instant::now();
    rig.input_event(EventType::InputRestored, 0, SECOND * 3)
        .await;
    let failback = rig.switch_for("failback", SECOND * 20).await;
    let held = back.elapsed();
    assert!(
        (SECOND * 12..SECOND * 15).contains(&held),
        "failed back after {held:?}"
    );
    assert_eq!(failback.payload["to"], 0);
    assert_eq!(rig.active(), Some(0));
    let runtime = rig.manager.runtime(&rig.code).unwrap();
    let reasons: Vec<&str> = runtime
        .switches
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["failback", "timeout", "initial"]);
}

/// `manager.*` written through the config API reaches a running stream's failover machine:
/// with the packet timeout cut from 30 s to 5 s, a silent primary fails over after 5 s.
#[tokio::test(start_paused = true)]
async fn a_new_packet_timeout_applies_to_a_running_stream() {
    let (mut rig, primary, _backup) = Rig::on_primary().await;
    let mut manager = ServerConfig::default().manager;
    manager.input_packet_timeout_sec = 5;
    rig.manager
        .set_failover(tributary_domain::failover::FailoverConfig::from_manager(
            &manager,
        ));

    primary.store(false, Ordering::Release);
    let silent = Instant::now();
    rig.switch_for("timeout", SECOND * 10).await;
    let waited = silent.elapsed();
    assert!(
        (SECOND * 5..SECOND * 6).contains(&waited),
        "failed over after {waited:?}"
    );
    assert_eq!(rig.active(), Some(1));
}

#[tokio::test(start_paused = true)]
async fn worker_open_failures_fail_over_and_are_recorded() {
    // The primary's port is taken: its worker's binds fail and it reports each one.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let primary = format!("udp://{}", taken.local_addr().unwrap());
    let mut rig = Rig::start(&[primary, udp()]).await;
    let _backup = feed(rig.port(1));
    let failover = rig.switch_for("error", SECOND * 20).await;
    assert_eq!(failover.payload["from"], 0);
    assert_eq!(failover.payload["to"], 1);
    assert!(
        failover.payload["detail"]
            .as_str()
            .unwrap()
            .contains("cannot bind"),
        "{failover:?}"
    );
    let runtime = rig.manager.runtime(&rig.code).unwrap();
    assert_eq!(runtime.active, Some(1));
    let primary = &runtime.inputs[0];
    assert_eq!(primary["status"], "degraded");
    assert!(
        primary["errors"].as_array().unwrap().len() >= 3,
        "{primary}"
    );
}

#[tokio::test(start_paused = true)]
async fn manual_switch_pins_the_override_and_commits_at_a_keyframe() {
    let (mut rig, _primary, _backup) = Rig::on_primary().await;

    assert!(matches!(
        rig.manager.switch(&rig.code, Some(7)),
        Err(SwitchRefusal::UnknownPriority { priority: 7, .. })
    ));
    assert_eq!(rig.manager.switch(&rig.code, Some(1)), Ok(Some(1)));
    let manual = rig.switch_for("manual", SECOND * 2).await;
    assert_eq!(manual.payload["to"], 1);
    assert_eq!(rig.manager.committed(&rig.code, Some(1)), Some(true));
    let runtime = rig.manager.runtime(&rig.code).unwrap();
    assert_eq!(runtime.pinned, Some(1));
    // The pin holds: a healthy primary does not fail back while it is set.
    tokio::time::sleep(SECOND * 20).await;
    assert_eq!(rig.active(), Some(1));
    // Clearing it lets the better input back.
    rig.manager.switch(&rig.code, None).unwrap();
    rig.next(EventType::InputFailover, "to", json_u32(0), SECOND * 2)
        .await;
    assert_eq!(rig.manager.runtime(&rig.code).unwrap().pinned, None);
}

#[tokio::test(start_paused = true)]
async fn update_inputs_keeps_a_moved_inputs_port_worker_and_counters() {
    let (a, b, c) = (udp(), udp(), udp());
    let mut rig = Rig::start(&[a.clone(), b.clone()]).await;
    let _a = feed(rig.port(0));
    let _b = feed(rig.port(1));
    rig.next(EventType::InputFailover, "to", json_u32(0), SECOND * 2)
        .await;
    tokio::time::sleep(SECOND * 2).await;
    let key_before = rig.port(1).key();
    let frames_before = rig.port(1).health().frames;

    // B moves from priority 1 to 2; C is added between.
    rig.put(&[a, c, b.clone()]).await;

    let moved = rig.port(2);
    assert_eq!(moved.key(), key_before, "B kept its intake port");
    assert!(
        moved.health().frames >= frames_before,
        "B's counters were reset"
    );
    // Its worker kept its socket: the port is still bound.
    let b_addr = b.trim_start_matches("udp://");
    assert!(
        UdpSocket::bind(b_addr).is_err(),
        "B's worker let go of {b_addr}"
    );
    // Nothing switched: A stays on air, with no new switch record.
    assert_eq!(rig.active(), Some(0));
    let runtime = rig.manager.runtime(&rig.code).unwrap();
    assert_eq!(runtime.switches.len(), 1);
    let urls: Vec<&str> = runtime
        .inputs
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls[2], b);
}

/// Regression (issue 12, defect f): a worker whose source opens publishes `input.connected`
/// with the input's priority and (masked) URL.
#[tokio::test(start_paused = true)]
async fn a_worker_that_opens_publishes_input_connected() {
    let (a, b) = (udp(), udp());
    let mut rig = Rig::start(&[a.clone(), b.clone()]).await;
    let second = rig.input_event(EventType::InputConnected, 1, SECOND).await;
    assert_eq!(second.payload["url"], b.as_str());
}

/// Regression (issue 12, defect f): a source the peer ends publishes `input.reconnecting` with
/// the error, and the worker opens it again (`input.connected` once more).
#[tokio::test]
async fn a_lost_source_publishes_input_reconnecting() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // An HTTP-TS origin that answers every request with headers, then hangs up.
    let origin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/live.ts", origin.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = origin.accept().await {
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n";
            let _ = conn.write_all(head.as_bytes()).await;
        }
    });
    let mut rig = Rig::start(&[url]).await;
    let within = SECOND * 10;
    rig.input_event(EventType::InputConnected, 0, within).await;
    let lost = rig
        .input_event(EventType::InputReconnecting, 0, within)
        .await;
    let error = lost.payload["error"].as_str().unwrap();
    assert!(error.contains("EOF"), "{error}");
    rig.input_event(EventType::InputConnected, 0, within).await;
}

fn json_u32(n: u32) -> Value {
    Value::from(n)
}

const SECOND: Duration = Duration::from_secs(1);
/// 25 frames a second.
const FRAME: Duration = Duration::from_millis(40);
