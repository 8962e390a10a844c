//! Play sessions (issue 18 item 1, SPEC §Sessions): HLS viewers with distinct user agents and
//! ffmpeg RTMP players show as one session each with bytes; connections outlive the idle
//! timeout; a kicked RTMP player is disconnected within 1 s and a kicked HTTP-TS body ends;
//! a kicked HLS fingerprint gets 403; idle HLS viewers are reaped; events, runtime viewers
//! and metrics agree. With `sessions.geoip_db_path` a session carries its viewer's country
//! (a MaxMind database written by the testkit, since none can be fetched here); an unreadable
//! database is named once in the log and `country` stays `""`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_testkit::{ClipSpec, LiveSender, cached_clip, ffmpeg, free_tcp_port, wait_until};

use crate::server::{Server, put_stream, send};
use crate::turn::shared;

/// A server whose `sessions.geoip_db_path` is `geoip`, a running stream `geo` (a push input
/// without a publisher: HTTP-TS plays it and waits for the first keyframe) and one HTTP-TS
/// viewer of it from 127.0.0.1: the `country` its session shows once it opens.
fn country_of_a_loopback_viewer(dir: &std::path::Path, geoip: &str) -> (Server, Value) {
    let server = Server::start(dir, &[("TRIBUTARY_SESSIONS__GEOIP_DB_PATH", geoip)]);
    let session = loopback_viewer_session(&server);
    (server, session)
}

/// Creates stream `geo` (a push input without a publisher) on `server` and opens one HTTP-TS
/// viewer of it from 127.0.0.1: its session, once open.
fn loopback_viewer_session(server: &Server) -> Value {
    put_stream(server, "geo", r#"{"inputs":[{"url":"publish://"}]}"#);
    let _viewer = MpegtsClient::open(&server.url("/geo/mpegts"));
    let mut session = Value::Null;
    wait_until(Duration::from_secs(10), "the HTTP-TS session", || {
        let answer = send("GET", &server.url("/sessions?proto=mpegts"), None, &[]);
        session = answer.body["sessions"][0].clone();
        session.is_object()
    })
    .unwrap();
    session
}

#[test]
fn a_geoip_database_names_each_sessions_country() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("country.mmdb");
    let networks = [("127.0.0.0/8", "SE"), ("192.0.2.0/24", "JP")];
    std::fs::write(&db, tributary_testkit::country_mmdb(&networks)).unwrap();
    let (server, session) =
        country_of_a_loopback_viewer(&dir.path().join("a"), db.to_str().unwrap());
    assert_eq!(session["ip"], "127.0.0.1", "{session}");
    assert_eq!(session["country"], "SE", "{session}");
    let opened = crate::events::events(&server, "since=0&limit=100");
    let opened: Vec<&Value> = opened["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "session.opened")
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["payload"]["country"], "SE");
    assert!(
        server
            .logged(|l| l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("GeoIP database loaded")))
            .len()
            == 1
    );

    // A database that cannot be read: named once at WARN, the server runs, `country` is "".
    let missing = dir.path().join("missing.mmdb");
    let missing = missing.to_str().unwrap();
    let (server, session) = country_of_a_loopback_viewer(&dir.path().join("b"), missing);
    assert_eq!(session["country"], "", "{session}");
    let warned = server.logged(|l| l["level"] == "WARN" && l["fields"]["path"] == missing);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0]["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sessions.geoip_db_path")),
        "{}",
        warned[0]
    );
}

/// `sessions.geoip_db_path` written through `POST /config` (SPEC §Config "Hot apply":
/// `sessions.*` at once): a file that cannot be read is refused naming the field, and nothing
/// is stored; a MaxMind DB is read before the write is stored and new sessions use it.
#[test]
fn a_geoip_database_written_through_the_api_is_read_first_then_used() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("country.mmdb");
    std::fs::write(
        &db,
        tributary_testkit::country_mmdb(&[("127.0.0.0/8", "SE")]),
    )
    .unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let write = |path: &str| {
        let body = serde_json::json!({"sessions": {"geoip_db_path": path}}).to_string();
        send("POST", &server.url("/config"), Some(&body), &[])
    };
    let missing = dir.path().join("missing.mmdb");
    let refused = write(missing.to_str().unwrap());
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "INVALID_FIELD");
    assert_eq!(
        refused.body["error"]["fields"][0]["path"],
        "sessions.geoip_db_path"
    );
    let config = send("GET", &server.url("/config"), None, &[]).body;
    assert!(
        config["global_config"]["sessions"]["geoip_db_path"].is_null(),
        "nothing stored: {}",
        config["global_config"]
    );

    let stored = write(db.to_str().unwrap());
    assert_eq!(stored.status, 200, "{}", stored.body);
    let session = loopback_viewer_session(&server);
    assert_eq!(session["country"], "SE", "{session}");
}

/// HLS viewers, one user agent each.
const HLS_VIEWERS: usize = 20;
/// ffmpeg RTMP players.
const RTMP_PLAYERS: usize = 5;
/// `sessions.idle_timeout_sec` of this test: short, so reaping shows in seconds.
const IDLE_SEC: u64 = 4;

#[test]
fn viewers_are_sessions_with_bytes_and_kicks_really_end_them() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let idle = IDLE_SEC.to_string();
    let server = Server::start_with(
        dir.path(),
        &[
            ("TRIBUTARY_SESSIONS__IDLE_TIMEOUT_SEC", &idle),
            ("TRIBUTARY_SESSIONS__KICK_BAN_SEC", "60"),
        ],
        &format!("127.0.0.1:{port}"),
    );
    put_stream(
        &server,
        "cam",
        r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true,"rtmp":true}}"#,
    );
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let rtmp_url = format!("rtmp://127.0.0.1:{port}/live/cam");
    let _publisher = LiveSender::rtmp(&clip, &rtmp_url).expect("start the ffmpeg publisher");
    let playlist = server.url("/cam/index.m3u8");
    wait_until(Duration::from_secs(30), "the first segment", || {
        hls_get(&playlist, "probe").is_some_and(|(status, body)| {
            status == 200 && String::from_utf8_lossy(&body).contains(".ts")
        })
    })
    .unwrap();
    // The probe above is a viewer too; it goes idle and is reaped before the counts below.

    // 20 HLS viewers keep playing (playlist + newest segment, every second) in the background.
    let playing = Arc::new(AtomicBool::new(true));
    let viewers = {
        let playing = Arc::clone(&playing);
        let base = server.url("/cam/");
        thread::spawn(move || {
            while playing.load(Ordering::Relaxed) {
                for i in 0..HLS_VIEWERS {
                    play_once(&base, &agent(i));
                }
                thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let mut players: Vec<Player> = (0..RTMP_PLAYERS)
        .map(|_| Player::start(&rtmp_url))
        .collect();

    let active = |query: &str| -> Value {
        let answer = send("GET", &server.url(&format!("/sessions?{query}")), None, &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    };
    let count = |body: &Value, proto: &str| {
        body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["proto"] == proto && s["bytes"].as_u64().unwrap_or(0) > 0)
            .count()
    };
    wait_until(
        Duration::from_secs(30),
        "20 HLS and 5 RTMP sessions with bytes",
        || {
            let body = active("status=active&stream=cam&limit=1000");
            body["total_count"] == HLS_VIEWERS + RTMP_PLAYERS
                && count(&body, "hls") == HLS_VIEWERS
                && count(&body, "rtmp") == RTMP_PLAYERS
        },
    )
    .unwrap();
    let body = active("status=active&limit=1000");
    let sessions = body["sessions"].as_array().unwrap();
    let hls: Vec<&Value> = sessions.iter().filter(|s| s["proto"] == "hls").collect();
    let mut agents: Vec<&str> = hls
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    agents.sort_unstable();
    agents.dedup();
    assert_eq!(agents.len(), HLS_VIEWERS, "one session per user agent");
    for session in &hls {
        assert_eq!(session["id"].as_str().unwrap().len(), 16, "{session}");
        assert_eq!(session["named_by"], "fingerprint");
        assert_eq!(session["ip"], "127.0.0.1");
    }
    assert_eq!(
        server.runtime("cam")["publisher"]["viewers"],
        serde_json::json!({"hls": HLS_VIEWERS, "rtmp": RTMP_PLAYERS})
    );
    let metrics = send_text(&server.url("/metrics"));
    assert!(
        metrics.contains(&format!(
            "tributary_sessions_active{{stream_code=\"cam\",proto=\"rtmp\"}} {RTMP_PLAYERS}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("tributary_sessions_opened_total{stream_code=\"cam\",proto=\"hls\"}"));
    // The stream's own view, filtered by protocol.
    let rtmp = send(
        "GET",
        &server.url("/streams/cam/sessions?proto=rtmp"),
        None,
        &[],
    );
    assert_eq!(rtmp.status, 200);
    assert_eq!(rtmp.body["total_count"], RTMP_PLAYERS);

    // Connections are never reaped while connected: well past the idle timeout, all 5 stay.
    let bytes_before: u64 = rtmp_bytes(&active("proto=rtmp&status=active"));
    thread::sleep(Duration::from_secs(3 * IDLE_SEC));
    let body = active("proto=rtmp&status=active");
    assert_eq!(body["total_count"], RTMP_PLAYERS, "{body}");
    assert!(rtmp_bytes(&body) > bytes_before, "bytes keep counting");

    // A kicked RTMP player is disconnected within 1 s.
    let victim = body["sessions"][0]["id"].as_str().unwrap().to_owned();
    let kicked_at = Instant::now();
    let kick = send(
        "DELETE",
        &server.url(&format!("/sessions/{victim}")),
        None,
        &[],
    );
    assert_eq!(kick.status, 204, "{}", kick.body);
    // The server ends the connection (its play seat is given back) within 1 s...
    let open_plays = format!(
        "tributary_playback_connections{{stream_code=\"cam\",proto=\"rtmp\"}} {}",
        RTMP_PLAYERS - 1
    );
    wait_until(
        Duration::from_secs(3),
        "the kicked connection to end",
        || send_text(&server.url("/metrics")).contains(&open_plays),
    )
    .unwrap();
    let took = kicked_at.elapsed();
    assert!(took < Duration::from_secs(1), "disconnected after {took:?}");
    // ...and the player sees it: ffmpeg ends its output and exits.
    wait_until(Duration::from_secs(5), "the kicked player to exit", || {
        players.iter_mut().any(Player::exited)
    })
    .unwrap();
    assert_eq!(
        players
            .iter_mut()
            .map(Player::exited)
            .filter(|e| *e)
            .count(),
        1
    );
    let gone = send(
        "GET",
        &server.url(&format!("/sessions/{victim}")),
        None,
        &[],
    );
    assert_eq!(gone.status, 200);
    assert_eq!(gone.body["close_reason"], "kicked");
    assert!(gone.body["closed_at"].is_string());
    let again = send(
        "DELETE",
        &server.url(&format!("/sessions/{victim}")),
        None,
        &[],
    );
    assert_eq!(again.status, 404, "already closed");
    assert_eq!(
        active("proto=rtmp&status=active")["total_count"],
        RTMP_PLAYERS - 1
    );

    // A kicked HLS fingerprint gets 403 on its next requests; the other viewers play on.
    let kicked_agent = agent(0);
    let hls_victim = hls
        .iter()
        .find(|s| s["user_agent"] == kicked_agent.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kick = send(
        "DELETE",
        &server.url(&format!("/sessions/{hls_victim}")),
        None,
        &[],
    );
    assert_eq!(kick.status, 204);
    let (status, body) = hls_get(&playlist, &kicked_agent).unwrap();
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "FORBIDDEN");
    assert_eq!(hls_get(&playlist, &agent(1)).unwrap().0, 200);

    // An HTTP-TS play is a session too; a kick ends its body.
    let mut mpegts = MpegtsClient::open(&server.url("/cam/mpegts"));
    mpegts.read_some();
    let ts = active("proto=mpegts&status=active");
    assert_eq!(ts["total_count"], 1, "{ts}");
    let ts_id = ts["sessions"][0]["id"].as_str().unwrap().to_owned();
    let kicked_at = Instant::now();
    assert_eq!(
        send(
            "DELETE",
            &server.url(&format!("/sessions/{ts_id}")),
            None,
            &[]
        )
        .status,
        204
    );
    mpegts.read_to_end();
    let took = kicked_at.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "HTTP-TS body ended after {took:?}"
    );
    let closed = send("GET", &server.url(&format!("/sessions/{ts_id}")), None, &[]);
    assert_eq!(closed.body["close_reason"], "kicked");
    assert!(closed.body["bytes"].as_u64().unwrap() > 0);

    // HLS viewers that stop asking are reaped as idle.
    playing.store(false, Ordering::Relaxed);
    viewers.join().unwrap();
    wait_until(
        Duration::from_secs(3 * IDLE_SEC + 10),
        "the HLS viewers to be reaped",
        || active("proto=hls&status=active")["total_count"] == 0,
    )
    .unwrap();
    let closed = active("proto=hls&status=closed&limit=1000");
    let idle = closed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["close_reason"] == "idle")
        .count();
    assert!(idle >= HLS_VIEWERS - 1, "{closed}");
    let stats = &closed["stats"];
    assert_eq!(stats["kicked_total"], 3, "{stats}");
    assert!(stats["idle_closed_total"].as_u64().unwrap() >= (HLS_VIEWERS - 1) as u64);
    assert_eq!(stats["active"], RTMP_PLAYERS - 1, "{stats}");

    // So do the metrics, by reason.
    let metrics = send_text(&server.url("/metrics"));
    for series in [
        "tributary_sessions_closed_total{stream_code=\"cam\",proto=\"rtmp\",reason=\"kicked\"} 1",
        "tributary_sessions_closed_total{stream_code=\"cam\",proto=\"mpegts\",reason=\"kicked\"} 1",
        "tributary_sessions_active{stream_code=\"cam\",proto=\"hls\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }

    // The events tell the same story.
    let events = send(
        "GET",
        &server.url("/events?since=0&limit=1000&timeout_sec=0"),
        None,
        &[],
    );
    let events = events.body["data"].as_array().unwrap().clone();
    let of = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    // The 25 viewers, the HTTP-TS play and the first probe at least.
    assert!(of("session.opened") > HLS_VIEWERS + RTMP_PLAYERS + 1);
    let kicked = events
        .iter()
        .find(|e| e["type"] == "session.closed" && e["payload"]["session_id"] == victim.as_str())
        .expect("the RTMP kick's session.closed");
    assert_eq!(kicked["payload"]["reason"], "kicked");
    assert_eq!(kicked["payload"]["proto"], "rtmp");
    assert!(kicked["payload"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(kicked["stream_code"], "cam");

    // Bad filters are 400 naming the parameter; unknown ids 404.
    let bad = send("GET", &server.url("/sessions?status=bogus"), None, &[]);
    assert_eq!(bad.status, 400);
    assert!(bad.body.to_string().contains("status"));
    let bad = send("GET", &server.url("/sessions?proto=ftp"), None, &[]);
    assert_eq!(bad.status, 400);
    assert_eq!(
        send("GET", &server.url("/sessions/nope"), None, &[]).status,
        404
    );
    assert_eq!(
        send("DELETE", &server.url("/sessions/nope"), None, &[]).status,
        404
    );
    assert_eq!(
        send("GET", &server.url("/streams/nope/sessions"), None, &[]).status,
        404
    );
    let doc = send("GET", &server.url("/swagger/doc.json"), None, &[]);
    for path in ["/sessions", "/sessions/{id}", "/streams/{code}/sessions"] {
        assert!(
            doc.body["paths"][path].is_object(),
            "{path} in the OpenAPI document"
        );
    }
}

/// Waits until at least `n` closed sessions of `proto` ended as `client_gone` with bytes
/// (players of other protocols' tests, once they left).
pub(crate) fn wait_played_sessions(server: &Server, proto: &str, n: usize) {
    let url = server.url(&format!("/sessions?proto={proto}&status=closed&limit=1000"));
    wait_until(
        Duration::from_secs(10),
        &format!("{n} closed {proto} sessions with bytes"),
        || {
            let answer = send("GET", &url, None, &[]);
            let played = answer.body["sessions"].as_array().map_or(0, |sessions| {
                sessions
                    .iter()
                    .filter(|s| {
                        s["close_reason"] == "client_gone" && s["bytes"].as_u64().unwrap_or(0) > 0
                    })
                    .count()
            });
            played >= n
        },
    )
    .unwrap();
}

/// The user agent of HLS viewer `i`.
fn agent(i: usize) -> String {
    format!("viewer-{i:02}/1.0")
}

/// One round of an HLS player: the playlist, then its newest segment.
fn play_once(base: &str, agent: &str) {
    let Some((200, body)) = hls_get(&format!("{base}index.m3u8"), agent) else {
        return;
    };
    let text = String::from_utf8_lossy(&body);
    if let Some(segment) = text.lines().rev().find(|l| l.ends_with(".ts")) {
        let _ = hls_get(&format!("{base}{segment}"), agent);
    }
}

/// A GET with `User-Agent: agent`: status and body, or `None` on a transport error.
fn hls_get(url: &str, agent: &str) -> Option<(u16, Vec<u8>)> {
    let (Ok(response) | Err(ureq::Error::Status(_, response))) = ureq::get(url)
        .set("User-Agent", agent)
        .timeout(Duration::from_secs(10))
        .call()
    else {
        return None;
    };
    let status = response.status();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).ok()?;
    Some((status, body))
}

fn send_text(url: &str) -> String {
    ureq::get(url)
        .call()
        .expect("GET")
        .into_string()
        .expect("a text body")
}

fn rtmp_bytes(body: &Value) -> u64 {
    body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .sum()
}

/// An `ffmpeg -i rtmp://… -c copy -f null -` player, killed on drop.
struct Player {
    child: Child,
    exited: bool,
}

impl Player {
    fn start(url: &str) -> Self {
        let child = ffmpeg()
            .args(["-i", url, "-t", "300", "-c", "copy", "-f", "null", "-"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start an ffmpeg RTMP player");
        Self {
            child,
            exited: false,
        }
    }

    /// Whether it has exited (by itself: the server closed its connection).
    fn exited(&mut self) -> bool {
        self.exited |= matches!(self.child.try_wait(), Ok(Some(_)));
        self.exited
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw `GET /{code}/mpegts` with `Connection: close`, so the body's end closes the socket.
struct MpegtsClient {
    socket: TcpStream,
}

impl MpegtsClient {
    fn open(url: &str) -> Self {
        let rest = url.trim_start_matches("http://");
        let (addr, path) = rest.split_at(rest.find('/').unwrap());
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        Self { socket }
    }

    /// Reads until some body has arrived.
    fn read_some(&mut self) {
        let mut buf = [0u8; 64 * 1024];
        let mut got = 0;
        while got < 16 * 1024 {
            let n = self.socket.read(&mut buf).expect("the HTTP-TS body flows");
            assert!(n > 0, "the HTTP-TS body ended early");
            got += n;
        }
    }

    /// Reads until the server closes the connection (panics after the read timeout).
    fn read_to_end(&mut self) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.socket.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => panic!("the HTTP-TS body did not end: {e}"),
            }
        }
    }
}
