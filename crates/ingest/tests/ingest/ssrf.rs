//! The SSRF guard on every pull: HTTP-TS, HLS (playlists, segments, redirects) and RTMP dial
//! only where `security.ssrf_guard` allows, checked on every resolved address and every hop.
//!
//! The in-test servers listen on loopback, which `strict` blocks: a blocked pull must fail
//! with `blocked by ssrf_guard: <ip>` before it reaches the server.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tributary_ingest::IngestConfig;
use tributary_net::{SsrfGuard, SsrfMode};

use crate::support::{Reply, Rig, Server, clip, has_av};

/// `strict`, with `allow` exempt.
fn strict(allow: &[&str]) -> IngestConfig {
    IngestConfig {
        ssrf_guard: SsrfGuard::new(
            SsrfMode::Strict,
            allow
                .iter()
                .map(|net| net.parse::<IpNet>().unwrap())
                .collect(),
        ),
        ..IngestConfig::default()
    }
}

fn spawn(rig: &Rig, url: &str, config: &IngestConfig) -> tributary_ingest::Worker {
    rig.spawn_input(&tributary_domain::Input::new(url, 0), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_loopback_by_address_and_by_name() {
    let server = Server::start().await;
    server.route("/live.ts", Reply::Body(Arc::new(Vec::new())));
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let config = strict(&[]);

    // An address: checked before the request (reqwest does not resolve it).
    let rig = Rig::new();
    let _worker = spawn(&rig, &server.url("/live.ts"), &config);
    let error = rig
        .wait_error("blocked by ssrf_guard: 127.0.0.1", Duration::from_secs(10))
        .await;
    assert!(error.contains("stream ingest-test, input 0"), "{error}");

    // A name: checked by the resolver on every address it yields.
    let rig = Rig::new();
    let _worker = spawn(&rig, &format!("http://localhost:{port}/live.ts"), &config);
    rig.wait_error("blocked by ssrf_guard:", Duration::from_secs(10))
        .await;

    // The same over RTMP (the `net` dialer).
    let rig = Rig::new();
    let _worker = spawn(&rig, &format!("rtmp://localhost:{port}/live/x"), &config);
    rig.wait_error("blocked by ssrf_guard:", Duration::from_secs(10))
        .await;

    assert_eq!(server.count(), 0, "{:?}", server.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exempt_range_plays_and_a_redirect_out_of_it_is_refused() {
    let clip = std::fs::read(clip(4, "ts")).unwrap();
    let server = Server::start().await;
    server.route("/live.ts", Reply::Body(Arc::new(clip)));
    // 127.0.0.2 is loopback too, outside the exempt /32.
    server.route(
        "/away",
        Reply::Redirect("http://127.0.0.2:9/live.ts".into()),
    );
    let config = strict(&["127.0.0.1/32"]);

    let mut rig = Rig::new();
    let _worker = spawn(&rig, &server.url("/live.ts"), &config);
    rig.collect(
        Duration::from_secs(15),
        "frames from an exempt origin",
        has_av,
    )
    .await;

    let rig = Rig::new();
    let _worker = spawn(&rig, &server.url("/away"), &config);
    rig.wait_error("blocked by ssrf_guard: 127.0.0.2", Duration::from_secs(10))
        .await;
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("GET /away ")),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_segment_on_a_blocked_host_is_refused() {
    let server = Server::start().await;
    let playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
                    #EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\nhttp://127.0.0.2:9/seg0.ts\n";
    server.route(
        "/index.m3u8",
        Reply::Body(Arc::new(playlist.as_bytes().to_vec())),
    );
    let config = strict(&["127.0.0.1/32"]);

    let rig = Rig::new();
    let _worker = spawn(&rig, &server.url("/index.m3u8"), &config);
    rig.wait_error("blocked by ssrf_guard: 127.0.0.2", Duration::from_secs(15))
        .await;
    assert!(server.count() >= 1);
}
