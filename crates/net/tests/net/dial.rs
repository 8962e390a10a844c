//! Dialing loopback: connections, the SSRF guard, refusals.

use std::time::Duration;

use tokio::net::TcpListener;
use tributary_net::{Dial, DialError, SsrfGuard, SsrfMode, Target, Tls, connect, resolve};

fn dial(guard: SsrfGuard) -> Dial {
    Dial {
        tls: Tls::Off,
        timeout: Duration::from_secs(5),
        guard,
    }
}

#[tokio::test]
async fn connects_to_a_listening_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_io, peer) = connect(&Target::new("127.0.0.1", port), &dial(SsrfGuard::default()))
        .await
        .unwrap();
    assert_eq!(peer, listener.local_addr().unwrap());
    let (_accepted, _) = listener.accept().await.unwrap();
}

#[tokio::test]
async fn the_strict_guard_refuses_loopback_for_good() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let strict = SsrfGuard::new(SsrfMode::Strict, Vec::new());
    let err = connect(&Target::new("localhost", port), &dial(strict))
        .await
        .err()
        .expect("loopback is blocked");
    assert!(matches!(err, DialError::Blocked { .. }), "{err}");
    assert!(err.is_fatal());
    assert!(err.to_string().contains("blocked by ssrf_guard"), "{err}");
    // An allowed range lets it through.
    let allowed = SsrfGuard::new(SsrfMode::Strict, vec!["127.0.0.0/8".parse().unwrap()]);
    connect(&Target::new("127.0.0.1", port), &dial(allowed))
        .await
        .unwrap();
}

#[tokio::test]
async fn resolving_keeps_only_the_addresses_the_guard_allows() {
    // `localhost` may resolve to 127.0.0.1 and ::1: exempting one keeps only that one.
    let v4_only = SsrfGuard::new(SsrfMode::Strict, vec!["127.0.0.1/32".parse().unwrap()]);
    let addrs = resolve(&Target::new("localhost", 80), &v4_only)
        .await
        .unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().to_string() == "127.0.0.1" && a.port() == 80),
        "{addrs:?}"
    );
    // An address resolves to itself, judged like any other.
    let strict = SsrfGuard::new(SsrfMode::Strict, Vec::new());
    let err = resolve(&Target::new("::1", 80), &strict).await.unwrap_err();
    assert!(
        matches!(err, DialError::Blocked { ip, .. } if ip.to_string() == "::1"),
        "{err}"
    );
    let open = resolve(&Target::new("::1", 80), &SsrfGuard::default()).await;
    assert_eq!(open.unwrap(), vec!["[::1]:80".parse().unwrap()]);
}

#[tokio::test]
async fn a_closed_port_is_a_retriable_error_naming_host_and_port() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = connect(&Target::new("127.0.0.1", port), &dial(SsrfGuard::default()))
        .await
        .err()
        .expect("nothing listens");
    assert!(matches!(err, DialError::Connect { .. }), "{err}");
    assert!(!err.is_fatal());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn ipv6_targets_print_with_brackets() {
    assert_eq!(Target::new("::1", 1935).to_string(), "[::1]:1935");
    assert_eq!(
        Target::new("cdn.example.org", 443).to_string(),
        "cdn.example.org:443"
    );
}
