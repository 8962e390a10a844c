//! `rtsps://`: RTSP over TLS for a client that speaks plain TCP only.
//!
//! Retina (the RTSP client, see the parent module) dials by itself and has no TLS (its RTSPS
//! pull request, scottlamb/retina#78, is open), so this module dials the camera with TLS
//! through the shared dialer ([`tributary_net::connect`]: SSRF guard, SNI, certificates checked
//! against the system's roots unless `net.insecure_tls`) and hands retina a loopback port that
//! carries the session's bytes into that connection: a one-connection bridge, per pull
//! connection, alive as long as either side is. The bridge costs one copy of the bytes and a
//! loopback hop, nothing next to what a camera sends (a few Mb/s).
//!
//! Retina is given `rtsp://127.0.0.1:<bridge port>/<path>`: RTSP servers route by path, and
//! the request URI (with Digest's `uri`) is the same on both ends of the bridge, so the camera
//! checks what retina signed. Media runs TCP-interleaved inside the TLS connection; RTP over
//! UDP would need SRTP, refused at validation. The bridge takes the first connection to its
//! port and then closes the listener; a local process that raced retina to it would get a
//! connection to the camera it could also open itself, nothing more.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tributary_net::{Dial, SsrfGuard, Tls};
use url::Url;

/// The port of `rtsps://` when the URL names none (RFC 7826 §4.2).
pub(super) const DEFAULT_PORT: u16 = 322;

/// Dials `url` (an `rtsps://` URL) with TLS and starts a bridge to it; returns the URL retina
/// is to open (plain `rtsp://` on loopback, same path and query) and the camera's address.
/// The bridge lives until either side closes.
pub(super) async fn bridge(
    url: &Url,
    guard: &SsrfGuard,
    insecure: bool,
    timeout: Duration,
) -> Result<(Url, SocketAddr), String> {
    let target = super::target(url, DEFAULT_PORT);
    let dial = Dial {
        tls: if insecure {
            Tls::DangerAcceptAnyCertificate
        } else {
            Tls::Verify
        },
        timeout,
        guard: guard.clone(),
    };
    let (mut camera, peer) = tributary_net::connect(&target, &dial)
        .await
        .map_err(|e| super::cannot_connect(&e))?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("RTSPS bridge: cannot bind a loopback port: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("RTSPS bridge: {e}"))?;
    let mut dial_url = url.clone();
    // Both cannot fail: rtsp is a special-less scheme like rtsps, and the URL has a host.
    let _ = dial_url.set_scheme("rtsp");
    let _ = dial_url.set_ip_host(local.ip());
    let _ = dial_url.set_port(Some(local.port()));
    tokio::spawn(async move {
        let accepted = tokio::time::timeout(timeout, listener.accept()).await;
        drop(listener);
        let Ok(Ok((mut client, _))) = accepted else {
            tracing::debug!(%peer, "RTSPS bridge: retina never connected");
            return;
        };
        let _ = client.set_nodelay(true);
        match tokio::io::copy_bidirectional(&mut client, &mut camera).await {
            Ok((up, down)) => tracing::debug!(%peer, up, down, "RTSPS bridge closed"),
            Err(e) => tracing::debug!(%peer, "RTSPS bridge closed: {e}"),
        }
    });
    Ok((dial_url, peer))
}
