//! The session table's rules on simulated time, and the runtime side (reaper, events, guards)
//! on paused tokio time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_domain::config::SessionsSection;
use tributary_domain::event::EventType;
use tributary_serve::ByteMeter;

use super::table::{CLOSED_KEPT, SessionTable, fingerprint};
use super::*;
use crate::events::EventBus;

const SETTINGS: Settings = Settings {
    idle: Duration::from_secs(30),
    max_lifetime: None,
    kick_ban: Duration::from_secs(60),
};

fn code(name: &str) -> StreamCode {
    name.parse().unwrap()
}

fn viewer<'a>(ip: &str, user_agent: &'a str, query: &'a str) -> Viewer<'a> {
    Viewer {
        ip: ip.parse().unwrap(),
        user_agent,
        referer: "",
        query,
        secure: false,
    }
}

/// Wall time `secs` after a fixed origin.
fn wall(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

fn tracked(hit: Hit) -> (ByteMeter, Option<Opened>) {
    match hit {
        Hit::Tracked { meter, opened } => (meter, opened),
        other => panic!("not tracked: {other:?}"),
    }
}

#[test]
fn http_viewers_are_one_session_per_fingerprint() {
    let t0 = Instant::now();
    let mut table = SessionTable::new(SETTINGS);
    let cam = code("cam");
    let vlc = viewer("192.0.2.7", "VLC/3.0", "");
    let (meter, opened) = tracked(table.hit(&cam, Proto::Hls, &vlc, t0, wall(0)));
    let opened = opened.expect("the first request opens the session");
    assert_eq!(opened.id.len(), 16);
    assert_eq!(opened.id, fingerprint(&cam, vlc.ip, "VLC/3.0", "").as_str());
    assert_eq!(opened.user_name, opened.id[..8]);
    meter.add(1000);
    // The same viewer's next requests (a segment, DASH-named or not) are the same session.
    let (again, opened) = tracked(table.hit(&cam, Proto::Dash, &vlc, t0, wall(1)));
    assert!(opened.is_none());
    again.add(500);
    // Another user agent, another address or another stream is another viewer.
    for (stream, who) in [
        (&cam, viewer("192.0.2.7", "Safari", "")),
        (&cam, viewer("192.0.2.8", "VLC/3.0", "")),
        (&code("other"), vlc),
    ] {
        let (_, opened) = tracked(table.hit(stream, Proto::Hls, &who, t0, wall(1)));
        assert!(opened.is_some());
    }
    // A token names its viewer and is masked in the stored query.
    let token = viewer("192.0.2.7", "VLC/3.0", "token=alice&sig=abc&x=1");
    let (_, opened) = tracked(table.hit(&cam, Proto::Hls, &token, t0, wall(2)));
    assert_eq!(opened.unwrap().user_name, "alice");

    let (all, total) = table.list(&Filter::default(), 100);
    assert_eq!((all.len(), total), (5, 5));
    let first = table
        .get(fingerprint(&cam, vlc.ip, "VLC/3.0", "").as_str())
        .unwrap();
    assert_eq!(
        first.proto,
        Proto::Hls,
        "the first request decided the protocol"
    );
    assert_eq!(first.bytes, 1500);
    assert_eq!(first.named_by, "fingerprint");
    assert_eq!(first.updated_at, "2026-12-06T08:00:01.000Z");
    let alice = all.iter().find(|s| s.token == "alice").unwrap();
    assert_eq!(alice.named_by, "token");
    assert_eq!(alice.query_string, "token=****&sig=****&x=1");
    let cams = Filter {
        stream: Some(cam.clone()),
        ..Filter::default()
    };
    let (page, total) = table.list(&cams, 2);
    assert_eq!((page.len(), total), (2, 4), "limit");
    assert_eq!(table.viewers(&cam).get("hls"), Some(&4));
}

#[test]
fn idle_http_sessions_are_reaped_but_connections_never() {
    let t0 = Instant::now();
    let mut table = SessionTable::new(SETTINGS);
    let cam = code("cam");
    let (_, opened) =
        tracked(table.hit(&cam, Proto::Hls, &viewer("192.0.2.7", "a", ""), t0, wall(0)));
    let http = opened.unwrap().id;
    let meter = ByteMeter::default();
    let stop = CancellationToken::new();
    let rtmp = viewer("192.0.2.9", "", "");
    table
        .connect(
            "conn-1".into(),
            &cam,
            Proto::Rtmp,
            &rtmp,
            stop.clone(),
            &meter,
            t0,
            wall(0),
        )
        .unwrap();

    // Requests keep the HTTP session alive; bytes keep the connection's `updated_at` moving.
    for s in (5..=25).step_by(5) {
        let at = t0 + Duration::from_secs(s);
        tracked(table.hit(
            &cam,
            Proto::Hls,
            &viewer("192.0.2.7", "a", ""),
            at,
            wall(s as i64),
        ));
        meter.add(100);
        assert!(table.reap(at, wall(s as i64)).is_empty());
    }
    assert_eq!(
        table.get("conn-1").unwrap().updated_at,
        "2026-12-06T08:00:25.000Z"
    );
    // 30 s without a request is not yet idle; a moment more is.
    assert!(
        table
            .reap(t0 + Duration::from_secs(55), wall(55))
            .is_empty()
    );
    let closed = table.reap(t0 + Duration::from_secs(56), wall(56));
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0].id.as_str(), closed[0].reason),
        (http.as_str(), CloseReason::Idle)
    );
    assert_eq!(closed[0].duration_sec, 56);

    // A connection that watches for two minutes, even one whose bytes stall, is not reaped.
    for s in (60..=180).step_by(5) {
        assert!(
            table
                .reap(t0 + Duration::from_secs(s), wall(s as i64))
                .is_empty()
        );
    }
    assert!(!stop.is_cancelled());
    let conn = table.get("conn-1").unwrap();
    assert!(conn.closed_at.is_none());
    assert_eq!(conn.bytes, 500);

    // Its end is `client_gone`, once.
    let gone = table
        .disconnect("conn-1", t0 + Duration::from_secs(200), wall(200))
        .unwrap();
    assert_eq!((gone.reason, gone.bytes), (CloseReason::ClientGone, 500));
    assert!(
        table
            .disconnect("conn-1", t0 + Duration::from_secs(201), wall(201))
            .is_none()
    );
    let stats = table.stats();
    assert_eq!(
        (
            stats.active,
            stats.opened_total,
            stats.closed_total,
            stats.idle_closed_total
        ),
        (0, 2, 2, 1)
    );
    let closed = Filter {
        active: Some(false),
        ..Filter::default()
    };
    let (views, total) = table.list(&closed, 100);
    assert_eq!(total, 2);
    assert_eq!(views[0].id, "conn-1", "newest first");
    assert_eq!(views[0].close_reason, Some(CloseReason::ClientGone));
    assert_eq!(
        views[0].closed_at.as_deref(),
        Some("2026-12-06T08:03:20.000Z")
    );
}

#[test]
fn a_kick_stops_a_connection_and_bans_a_fingerprint() {
    let t0 = Instant::now();
    let mut table = SessionTable::new(SETTINGS);
    let cam = code("cam");
    let stop = CancellationToken::new();
    let meter = ByteMeter::default();
    table
        .connect(
            "conn".into(),
            &cam,
            Proto::Srt,
            &viewer("192.0.2.9", "", ""),
            stop.clone(),
            &meter,
            t0,
            wall(0),
        )
        .unwrap();
    let kicked = table.kick("conn", t0, wall(1)).unwrap();
    assert_eq!(kicked.reason, CloseReason::Kicked);
    assert!(stop.is_cancelled(), "the connection is told to go");
    assert!(table.kick("conn", t0, wall(1)).is_none(), "already closed");
    assert!(
        table.disconnect("conn", t0, wall(1)).is_none(),
        "the kick's reason stays"
    );

    let who = viewer("192.0.2.7", "hls.js", "");
    let (_, opened) = tracked(table.hit(&cam, Proto::Hls, &who, t0, wall(0)));
    let id = opened.unwrap().id;
    table.kick(&id, t0, wall(1)).unwrap();
    let at = |s| t0 + Duration::from_secs(s);
    assert!(matches!(
        table.hit(&cam, Proto::Hls, &who, at(59), wall(59)),
        Hit::Banned { remaining } if remaining == Duration::from_secs(1)
    ));
    // Another viewer of the stream is not concerned.
    tracked(table.hit(
        &cam,
        Proto::Hls,
        &viewer("192.0.2.7", "Safari", ""),
        at(59),
        wall(59),
    ));
    // Once the ban ends, the fingerprint opens a new session.
    let (_, opened) = tracked(table.hit(&cam, Proto::Hls, &who, at(60), wall(60)));
    assert_eq!(opened.unwrap().id, id);
    assert_eq!(table.stats().kicked_total, 2);
}

#[test]
fn max_lifetime_closes_and_disconnects_every_kind() {
    let t0 = Instant::now();
    let mut table = SessionTable::new(Settings {
        max_lifetime: Some(Duration::from_secs(20)),
        ..SETTINGS
    });
    let cam = code("cam");
    let stop = CancellationToken::new();
    table
        .connect(
            "conn".into(),
            &cam,
            Proto::Rtsp,
            &viewer("192.0.2.9", "", ""),
            stop.clone(),
            &ByteMeter::default(),
            t0,
            wall(0),
        )
        .unwrap();
    tracked(table.hit(&cam, Proto::Hls, &viewer("192.0.2.7", "a", ""), t0, wall(0)));
    assert!(
        table
            .reap(t0 + Duration::from_secs(19), wall(19))
            .is_empty()
    );
    let closed = table.reap(t0 + Duration::from_secs(20), wall(20));
    assert_eq!(closed.len(), 2);
    assert!(closed.iter().all(|c| c.reason == CloseReason::MaxLifetime));
    assert!(stop.is_cancelled());
}

#[test]
fn closed_sessions_are_kept_ten_minutes_or_the_last_thousand() {
    let t0 = Instant::now();
    let mut table = SessionTable::new(SETTINGS);
    let cam = code("cam");
    let who = viewer("192.0.2.9", "", "");
    for i in 0..CLOSED_KEPT + 5 {
        let id = format!("c{i}");
        table
            .connect(
                id.clone(),
                &cam,
                Proto::Rtmp,
                &who,
                CancellationToken::new(),
                &ByteMeter::default(),
                t0,
                wall(0),
            )
            .unwrap();
        table.disconnect(&id, t0, wall(0)).unwrap();
    }
    let closed = Filter {
        active: Some(false),
        ..Filter::default()
    };
    assert_eq!(table.list(&closed, 1000).1, CLOSED_KEPT);
    assert!(table.get("c4").is_none(), "the oldest went");
    assert!(table.get("c5").is_some());
    table.reap(t0 + Duration::from_secs(600), wall(600));
    assert_eq!(table.list(&closed, 1000).1, CLOSED_KEPT);
    table.reap(t0 + Duration::from_secs(601), wall(601));
    assert_eq!(table.list(&closed, 1000).1, 0);
    assert_eq!(table.stats().closed_total, (CLOSED_KEPT + 5) as u64);
}

#[test]
fn the_extension_decides_the_http_protocol() {
    for (name, proto) in [
        ("index.m3u8", Some(Proto::Hls)),
        ("seg_000001.ts", Some(Proto::Hls)),
        ("index.mpd", Some(Proto::Dash)),
        ("seg_v_000001.m4s", Some(Proto::Dash)),
        ("seg_a_000001.m4s", Some(Proto::Dash)),
        ("init_v.mp4", Some(Proto::Dash)),
        ("init_a.mp4", Some(Proto::Dash)),
        ("init_v_42.mp4", Some(Proto::Dash)),
        // fMP4 HLS: the playlist's init, segments and parts are HLS, so one fMP4-HLS
        // viewer is one HLS session.
        ("init.mp4", Some(Proto::Hls)),
        ("init_42.mp4", Some(Proto::Hls)),
        ("seg_000001.m4s", Some(Proto::Hls)),
        ("part_000001.2.m4s", Some(Proto::Hls)),
        ("thumbnail.jpg", None),
    ] {
        assert_eq!(Proto::of_media(name), proto, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_reaper_closes_idle_viewers_and_events_tell() {
    let section = SessionsSection {
        idle_timeout_sec: Some(6),
        ..SessionsSection::default()
    };
    let sessions = Arc::new(Sessions::new(&section));
    let bus = EventBus::new();
    let mut events = bus.subscribe("test");
    sessions.attach(bus);
    let cancel = CancellationToken::new();
    tokio::spawn(Arc::clone(&sessions).reap(cancel.clone()));

    let cam = code("cam");
    let who = viewer("192.0.2.7", "hls.js", "");
    let HttpAdmission::Serve(Some(meter)) = sessions.http(&cam, "index.m3u8", &who) else {
        panic!("tracked");
    };
    meter.add(321);
    let stop = CancellationToken::new();
    let conn_meter = ByteMeter::default();
    let conn = sessions.connect(
        &cam,
        Proto::Rtmp,
        "192.0.2.9:50000".parse().unwrap(),
        Some("token=bob"),
        stop.clone(),
        &conn_meter,
    );
    let opened = events.recv().await.unwrap();
    assert_eq!(opened.kind, EventType::SessionOpened);
    assert_eq!(opened.stream_code, "cam");
    assert_eq!(opened.payload["proto"], "hls");
    assert_eq!(opened.payload["user_agent"], "hls.js");
    let opened = events.recv().await.unwrap();
    assert_eq!(opened.payload["proto"], "rtmp");
    assert_eq!(opened.payload["user_name"], "bob");

    // Two minutes later the HTTP viewer is gone (idle), the connection is not.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let closed = events.recv().await.unwrap();
    assert_eq!(closed.kind, EventType::SessionClosed);
    assert_eq!(closed.payload["reason"], "idle");
    assert_eq!(closed.payload["bytes"], 321);
    assert!(closed.payload["duration_sec"].as_u64().unwrap() <= 10);
    let (active, _, stats) = sessions.list(
        &Filter {
            active: Some(true),
            ..Filter::default()
        },
        10,
    );
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].proto, Proto::Rtmp);
    assert_eq!(stats.idle_closed_total, 1);
    assert_eq!(
        sessions.viewers(&cam).into_iter().collect::<Vec<_>>(),
        [("rtmp", 1)]
    );

    // The connection ends: `client_gone`.
    conn_meter.add(1000);
    drop(conn);
    let closed = events.recv().await.unwrap();
    assert_eq!(closed.payload["reason"], "client_gone");
    assert_eq!(closed.payload["bytes"], 1000);
    assert!(closed.payload["duration_sec"].as_u64().unwrap() >= 120);
    assert!(!stop.is_cancelled());
    cancel.cancel();
}

/// `[sessions]` written through the config API applies to the running table: tracking turned
/// on is tracked and reaped with the new idle timeout, turned off tracks nothing new.
#[tokio::test(start_paused = true)]
async fn settings_written_at_run_time_apply_at_once() {
    let sessions = Arc::new(Sessions::new(&SessionsSection {
        enabled: Some(false),
        ..SessionsSection::default()
    }));
    let cancel = CancellationToken::new();
    tokio::spawn(Arc::clone(&sessions).reap(cancel.clone()));
    let cam = code("cam");
    let who = viewer("192.0.2.7", "hls.js", "");
    assert!(matches!(
        sessions.http(&cam, "index.m3u8", &who),
        HttpAdmission::Serve(None)
    ));

    sessions.apply(&SessionsSection {
        idle_timeout_sec: Some(3),
        ..SessionsSection::default()
    });
    assert!(sessions.enabled());
    assert!(matches!(
        sessions.http(&cam, "index.m3u8", &who),
        HttpAdmission::Serve(Some(_))
    ));
    let active = Filter {
        active: Some(true),
        ..Filter::default()
    };
    assert_eq!(sessions.list(&active, 10).1, 1);
    // The reaper follows the new timeout: gone within 3 s plus a tick, not the old 30 s.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(sessions.list(&active, 10).1, 0);

    sessions.apply(&SessionsSection {
        enabled: Some(false),
        ..SessionsSection::default()
    });
    assert!(matches!(
        sessions.http(&cam, "index.m3u8", &who),
        HttpAdmission::Serve(None)
    ));
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn tracking_off_records_nothing_and_bans_nobody() {
    let sessions = Arc::new(Sessions::new(&SessionsSection {
        enabled: Some(false),
        ..SessionsSection::default()
    }));
    let cam = code("cam");
    let who = viewer("192.0.2.7", "hls.js", "");
    assert!(matches!(
        sessions.http(&cam, "index.m3u8", &who),
        HttpAdmission::Serve(None)
    ));
    let _conn = sessions.connect(
        &cam,
        Proto::Srt,
        "192.0.2.9:50000".parse().unwrap(),
        None,
        CancellationToken::new(),
        &ByteMeter::default(),
    );
    assert_eq!(sessions.list(&Filter::default(), 10).1, 0);
}

#[test]
fn a_fingerprint_is_the_first_16_hex_digits_of_sha256_of_its_parts() {
    // SHA-256("cam\0192.0.2.7\0VLC/3.0\0") and SHA-256("cam\02001:db8::1\0hls.js\0abc"),
    // computed outside (Python's hashlib): addresses in lower case, as `Display` writes them.
    let cam = code("cam");
    let v4 = fingerprint(&cam, "192.0.2.7".parse().unwrap(), "VLC/3.0", "");
    assert_eq!(v4.as_str(), "7bf741cbe4ee4983");
    let v6 = fingerprint(&cam, "2001:DB8::1".parse().unwrap(), "hls.js", "abc");
    assert_eq!(v6.as_str(), "4bb4bd9bdff5b133");
}

#[tokio::test(start_paused = true)]
async fn a_session_gets_its_country_from_the_geoip_database_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("country.mmdb");
    let networks = [("192.0.2.0/24", "SE"), ("2001:db8::/32", "JP")];
    std::fs::write(&path, tributary_testkit::country_mmdb(&networks)).unwrap();
    let sessions = Arc::new(Sessions::new(&SessionsSection {
        geoip_db_path: Some(path.to_str().unwrap().to_owned()),
        ..SessionsSection::default()
    }));
    let bus = EventBus::new();
    let mut events = bus.subscribe("test");
    sessions.attach(bus);
    let cam = code("cam");
    for (address, country) in [
        ("192.0.2.7", "SE"),
        ("2001:db8::7", "JP"),
        ("203.0.113.9", ""),
    ] {
        let who = viewer(address, "hls.js", "");
        // The first request opens the session; later ones find it.
        for _ in 0..2 {
            sessions.http(&cam, "index.m3u8", &who);
        }
        let opened = events.recv().await.unwrap();
        assert_eq!(opened.kind, EventType::SessionOpened);
        assert_eq!(opened.payload["country"], country, "{address}");
    }
    let meter = ByteMeter::default();
    let _conn = sessions.connect(
        &cam,
        Proto::Rtmp,
        "192.0.2.9:50000".parse().unwrap(),
        None,
        CancellationToken::new(),
        &meter,
    );
    let opened = events.recv().await.unwrap();
    assert_eq!(opened.payload["proto"], "rtmp");
    assert_eq!(opened.payload["country"], "SE");
    let (views, total, _) = sessions.list(&Filter::default(), 10);
    assert_eq!(total, 4);
    let mut countries: Vec<(&str, &str)> = views
        .iter()
        .map(|v| (v.ip.as_str(), v.country.as_str()))
        .collect();
    countries.sort_unstable();
    assert_eq!(
        countries,
        [
            ("192.0.2.7", "SE"),
            ("192.0.2.9", "SE"),
            ("2001:db8::7", "JP"),
            ("203.0.113.9", "")
        ]
    );
}
