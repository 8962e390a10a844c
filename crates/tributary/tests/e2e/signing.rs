//! Signed play URLs (issue 18 item 4, SPEC §Security "Signed play URLs"): with
//! `security.play_signing` on, a signed HLS URL plays in ffmpeg because its playlist names its
//! segments signed; a missing, expired or tampered signature is 403 naming why; HTTP-TS is
//! guarded alike; an RTMP play without a signature is refused and a signed one plays.
//!
//! The test signs with its own HMAC (the `hmac` crate over `<code>|<exp>`), not the server's
//! code, so it checks the server against SPEC's formula.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, free_tcp_port, http_get, wait_until,
};

use crate::server::{Server, put_stream, send};
use crate::turn::shared;

pub(crate) const KEY: &str = "e2e-play-signing-key-0123456789";

/// `exp=…&sig=…` for a play of `code` until `exp`, per SPEC: hex HMAC-SHA256(key, `code|exp`).
pub(crate) fn signed(code: &str, exp: u64) -> String {
    signed_text(&format!("{code}|{exp}"), exp)
}

/// `exp=…&sig=…` with `sig` the hex HMAC-SHA256 of `text`.
fn signed_text(text: &str, exp: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("exp={exp}&sig={sig}")
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server started with the TOML `config`, its stream `code` created from `body` and fed by
/// an RTMP publisher (publishing is not a play: it needs no signature). Fields drop in order:
/// the publisher, then the server, then its directory.
struct Rig {
    _publisher: LiveSender,
    server: Server,
    /// The publisher's URL, `rtmp://…/live/<code>` (also a play URL).
    rtmp: String,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start(config: &str, code: &str, body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tributary.toml");
        std::fs::write(&path, config).unwrap();
        let port = free_tcp_port();
        let server = Server::start_args(
            &dir.path().join("data"),
            &[],
            &format!("127.0.0.1:{port}"),
            &["--config", path.to_str().unwrap()],
        );
        put_stream(&server, code, body);
        let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
        let rtmp = format!("rtmp://127.0.0.1:{port}/live/{code}");
        let publisher = LiveSender::rtmp(&clip, &rtmp).expect("start the ffmpeg publisher");
        Self {
            _publisher: publisher,
            server,
            rtmp,
            _dir: dir,
        }
    }
}

#[test]
fn signed_urls_play_and_missing_expired_or_tampered_ones_are_refused() {
    let _turn = shared();
    let rig = Rig::start(
        &format!("[security.play_signing]\nenabled = true\nkey = \"{KEY}\"\n"),
        "signed",
        r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true,"rtmp":true},
        "dvr":{"enabled":true,"segment_duration":2}}"#,
    );
    let (server, rtmp) = (&rig.server, &rig.rtmp);

    let query = signed("signed", now() + 600);
    let playlist = server.url(&format!("/signed/index.m3u8?{query}"));
    wait_until(
        Duration::from_secs(30),
        "the signed playlist's segments",
        || {
            http_get(&playlist)
                .map(|(status, _, body)| status == 200 && body.windows(3).any(|w| w == b".ts"))
                .unwrap_or(false)
        },
    )
    .unwrap();

    // Every segment the signed playlist names carries the request's signature.
    let (_, _, body) = http_get(&playlist).unwrap();
    let text = String::from_utf8(body).unwrap();
    let segments: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!segments.is_empty(), "{text}");
    for uri in &segments {
        assert!(uri.ends_with(&format!(".ts?{query}")), "{uri} in\n{text}");
    }
    let segment = segments[0].split('?').next().unwrap();
    let status = |path: &str| http_get(&server.url(path)).unwrap().0;
    assert_eq!(status(&format!("/signed/{segment}?{query}")), 200);
    assert_eq!(status(&format!("/signed/{segment}")), 403);

    // ffmpeg, given one signed URL, plays the stream.
    let errors = decode_errors(&playlist, 6.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "signed HLS decode errors:\n{errors}"
    );

    // Missing, expired, tampered, another stream's: 403 naming why.
    let refused = |path: &str, why: &str| {
        let answer = send("GET", &server.url(path), None, &[]);
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{path}: {message}");
    };
    refused("/signed/index.m3u8", "requires signed play URLs");
    refused(
        &format!("/signed/index.m3u8?{}", signed("signed", now() - 5)),
        "expired",
    );
    let tampered = query.replace("exp=", "exp=1");
    refused(&format!("/signed/index.m3u8?{tampered}"), "does not match");
    refused(
        &format!("/signed/index.m3u8?{}", signed("other", now() + 600)),
        "does not match",
    );
    refused("/signed/mpegts", "requires signed play URLs");
    // The recording's playlists and segments, and timeshift on the live URL, are media too:
    // unsigned they are refused; signed, the playlists carry the signature to their segments.
    refused("/signed/index.m3u8?ago=10", "requires signed play URLs");
    for path in [
        "playlist.m3u8",
        "timeshift.m3u8?offset_sec=0",
        "000000.ts",
        "clip.mp4?offset_sec=0&duration=2",
    ] {
        refused(
            &format!("/recordings/signed/{path}"),
            "requires signed play URLs",
        );
    }
    let recorded = |path: &str| {
        let (status, _, body) = http_get(&server.url(path)).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    wait_until(Duration::from_secs(30), "a recorded segment", || {
        recorded(&format!("/recordings/signed/playlist.m3u8?{query}"))
            .1
            .contains(".ts")
    })
    .unwrap();
    for path in [
        format!("/recordings/signed/playlist.m3u8?{query}"),
        format!("/recordings/signed/timeshift.m3u8?offset_sec=0&{query}"),
        format!("/signed/index.m3u8?ago=60&{query}"),
    ] {
        let (answered, text) = recorded(&path);
        assert_eq!(answered, 200, "{path}: {text}");
        let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(!uris.is_empty(), "{path}: {text}");
        for uri in uris {
            assert!(uri.ends_with(&format!(".ts?{query}")), "{uri} in\n{text}");
            let name = uri.rsplit('/').next().unwrap();
            assert_eq!(status(&format!("/recordings/signed/{name}")), 200);
        }
    }
    // A clip is media too: signed, it streams.
    let (answered, _, clip) = http_get(&server.url(&format!(
        "/recordings/signed/clip.mp4?offset_sec=0&duration=2&{query}"
    )))
    .unwrap();
    assert_eq!(answered, 200);
    assert_eq!(&clip[4..8], b"ftyp");
    let unrecorded = send(
        "GET",
        &server.url(&format!(
            "/nothing/index.m3u8?ago=10&{}",
            signed("nothing", now() + 600)
        )),
        None,
        &[],
    );
    assert_eq!(unrecorded.status, 404, "{}", unrecorded.body);

    // The refusals are counted (HLS and HTTP-TS so far).
    let metrics = String::from_utf8(http_get(&server.url("/metrics")).unwrap().2).unwrap();
    for proto in ["hls", "mpegts"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("tributary_playback_rejected_total{")
                    && l.contains(&format!("proto=\"{proto}\""))
                    && l.contains("reason=\"auth\"")),
            "{proto} refusals in:\n{metrics}"
        );
    }

    // RTMP: an unsigned play is refused; a signed one plays.
    let unsigned = decode_errors(rtmp, 3.0).unwrap();
    assert!(
        unsigned.contains("ffmpeg exited with"),
        "an unsigned RTMP play must fail:\n{unsigned}"
    );
    let errors = decode_errors(&format!("{rtmp}?{query}"), 3.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "signed RTMP decode errors:\n{errors}"
    );
}

/// Behind a trusted proxy (`security.trusted_proxies`), the forwarded address is the viewer:
/// its session shows it, and a signature bound to it (`bind_ip`) holds only when forwarded;
/// the same header from an untrusted peer would change nothing (unit-tested in
/// `domain::forwarded`: the test process is the only peer here).
#[test]
fn a_trusted_proxy_names_the_viewer_for_sessions_and_ip_bound_signatures() {
    let _turn = shared();
    let rig = Rig::start(
        &format!(
            "[security]\ntrusted_proxies = [\"127.0.0.1\"]\n\n\
             [security.play_signing]\nenabled = true\nbind_ip = true\nkey = \"{KEY}\"\n"
        ),
        "proxied",
        r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true}}"#,
    );
    let server = &rig.server;

    let exp = now() + 600;
    let query = signed_text(&format!("proxied|{exp}|203.0.113.9"), exp);
    let playlist = server.url(&format!("/proxied/index.m3u8?{query}"));
    let forwarded = [("X-Forwarded-For", "198.51.100.1, 203.0.113.9")];
    wait_until(Duration::from_secs(30), "the playlist", || {
        send("GET", &playlist, None, &forwarded).status == 200
    })
    .unwrap();
    // Without the header the client is the proxy itself, which the signature does not name.
    let direct = send("GET", &playlist, None, &[]);
    assert_eq!(direct.status, 403, "{}", direct.body);
    // X-Real-IP is believed too, when there is no X-Forwarded-For.
    let real = send("GET", &playlist, None, &[("X-Real-IP", "203.0.113.9")]);
    assert_eq!(real.status, 200);

    let sessions = send("GET", &server.url("/sessions?stream=proxied"), None, &[]);
    let ips: Vec<&str> = sessions.body["sessions"]
        .as_array()
        .expect("a session list")
        .iter()
        .filter_map(|s| s["ip"].as_str())
        .collect();
    assert!(ips.contains(&"203.0.113.9"), "{}", sessions.body);
    assert!(
        !ips.contains(&"198.51.100.1"),
        "left of the proxy is not believed: {ips:?}"
    );
}
