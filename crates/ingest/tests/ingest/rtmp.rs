//! `rtmp://` pull from a real RTMP server: FFmpeg serving a clip with `-listen 1`, killed and
//! started again; `rtmps://` through a TLS relay in front of it (FFmpeg cannot listen on
//! `rtmps`).

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tributary_domain::Input;
use tributary_domain::protocol::InputKind;
use tributary_ingest::IngestConfig;
use tributary_media::{Codec, MediaKind};
use tributary_testkit::{ClipSpec, cached_clip, ffmpeg, free_tcp_port};

use crate::support::{Rig, assert_av, clip, has_av};

/// `ffmpeg -re -i <clip> -c copy -f flv -listen 1 rtmp://127.0.0.1:<port>/live/x`: an RTMP
/// server for exactly one player, killed on drop.
struct FfmpegServer(Child);

impl FfmpegServer {
    fn start(clip: &Path, port: u16) -> Self {
        let child = ffmpeg()
            .args(["-re", "-i"])
            .arg(clip)
            .args(["-c", "copy", "-f", "flv", "-listen", "1"])
            .arg(format!("rtmp://127.0.0.1:{port}/live/x"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ffmpeg as an RTMP server");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for FfmpegServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_pull_reports_a_dead_server_and_resumes_in_a_new_session() {
    // H.264 with B-frames (composition times) and AAC, in MP4: FFmpeg remuxes it to FLV.
    let spec = ClipSpec {
        bframes: 2,
        ..ClipSpec::default()
    };
    let clip = cached_clip(&spec, "mp4").expect("making the test clip with FFmpeg");
    let port = free_tcp_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/x");
    let mut server = FfmpegServer::start(&clip, port);

    let mut rig = Rig::new();
    let worker = rig.spawn(&url);
    assert_eq!(worker.kind(), InputKind::Rtmp);
    let frames = rig
        .collect(Duration::from_secs(20), "H.264 and AAC over RTMP", has_av)
        .await;
    assert_av(&frames);
    assert!(
        frames
            .iter()
            .any(|f| f.codec == Codec::H264 && f.pts != f.dts),
        "B-frames lost their composition time"
    );
    let stats = worker.stats();
    assert!(stats.connected, "{stats:?}");
    let video = stats
        .details
        .iter()
        .find(|(_, info)| info.codec.kind() == MediaKind::Video)
        .expect("video details from the sequence header");
    assert_eq!((video.1.width, video.1.height), (Some(1280), Some(720)));
    let audio = stats
        .details
        .iter()
        .find(|(_, info)| info.codec == Codec::Aac)
        .expect("audio details from the AudioSpecificConfig");
    assert_eq!(audio.1.sample_rate, Some(48_000));
    let session = frames[0].session;

    // The server dies: the worker reports it (naming the input) and reconnects.
    let errors_before = rig.port.health().errors;
    server.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while rig.port.health().errors == errors_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error reported after the server died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = rig.errors().pop().expect("an error message");
    assert!(
        error.contains("stream ingest-test, input 0 (rtmp"),
        "{error}"
    );
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");

    // A new server on the same address: frames resume, in a new session.
    let _server = FfmpegServer::start(&clip, port);
    let resumed = rig
        .collect(
            Duration::from_secs(30),
            "a keyframe from the second server",
            |frames| {
                frames
                    .iter()
                    .any(|f| f.session != session && f.codec == Codec::H264 && f.keyframe)
            },
        )
        .await;
    let after: Vec<_> = resumed
        .into_iter()
        .filter(|f| f.session != session)
        .collect();
    assert!(after[0].keyframe, "the new session starts at a keyframe");
    assert!(worker.stats().reconnects >= 1, "{:?}", worker.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmps_pull_checks_the_certificate_unless_told_not_to() {
    let clip = clip(4, "mp4");
    let backend = free_tcp_port();
    let _server = FfmpegServer::start(&clip, backend);
    let (port, _relay) = tls_relay(backend).await;
    let url = format!("rtmps://localhost:{port}/live/x");

    // A self-signed certificate fails verification: reported as not retriable. (The relay
    // reaches FFmpeg only after a TLS handshake, so FFmpeg's one player slot stays free.)
    let refused = Rig::new();
    let worker = refused.spawn(&url);
    let error = refused
        .wait_error("not retriable", Duration::from_secs(10))
        .await;
    assert!(error.contains("TLS handshake failed"), "{error}");
    assert!(error.contains(&format!("localhost:{port}")), "{error}");
    worker.stop();

    // `net.insecure_tls` skips the check: media flows over TLS.
    let mut rig = Rig::new();
    let mut input = Input::new(url, 0);
    input.net.insecure_tls = true;
    let _worker = rig.spawn_input(&input, &IngestConfig::default());
    let frames = rig
        .collect(Duration::from_secs(20), "H.264 and AAC over RTMPS", has_av)
        .await;
    assert_av(&frames);
}

/// A TLS front on 127.0.0.1 (certificate for `localhost`, self-signed) relaying each
/// connection, once its handshake is done, to the plain TCP server on `backend`.
async fn tls_relay(backend: u16) -> (u16, JoinHandle<()>) {
    let cert = CertificateDer::from_pem_slice(LOCALHOST_CERT.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(LOCALHOST_KEY.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, task)
}

/// A self-signed ECDSA P-256 certificate for `localhost` and 127.0.0.1, valid until 2126
/// (`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
/// -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`). Test-only.
const LOCALHOST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUWH899LV7ca6Gef2do4GC3qVd9J0wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNDEzMDEzOVoYDzIxMjYxMDMx
MTMwMTM5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAR9egvE8FLflaFLy11ws79buik6i4l62EHwV20BUFc2Kbu5ht803TPf
Nbp4LXUEukNXSBK6e2ykzLwfIpKgNkuOo28wbTAdBgNVHQ4EFgQUBJPNf92blJeS
Q/ysAEVGNw5YF7wwHwYDVR0jBBgwFoAUBJPNf92blJeSQ/ysAEVGNw5YF7wwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIhAJ3pMkDZhPuTspRbQA4fwbTlcslu3rph6/iM2svTsfHzAiAw
+HGmBGjjhf0EBIj+smlQLZf81YP7218KauOhxhNMTA==
-----END CERTIFICATE-----
";

/// The private key of [`LOCALHOST_CERT`] (PKCS#8). Test-only.
const LOCALHOST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSXp4wAN7N9Fx+p2E
0fjfB7qb/e7p9CrYNLVyRDqqBYehRANCAAR9egvE8FLflaFLy11ws79buik6i4l6
2EHwV20BUFc2Kbu5ht803TPfNbp4LXUEukNXSBK6e2ykzLwfIpKgNkuO
-----END PRIVATE KEY-----
";
