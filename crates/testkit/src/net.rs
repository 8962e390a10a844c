//! Ports, HTTP and waiting for a state.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A UDP port on 127.0.0.1 that was free a moment ago (bound to :0, read, released).
///
/// Another process may take it before the test binds it; with the kernel's ephemeral range
/// that is rare enough for tests.
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket on 127.0.0.1:0");
    socket.local_addr().expect("UDP socket address").port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago (see [`free_udp_port`]).
pub fn free_tcp_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a TCP socket on 127.0.0.1:0");
    listener.local_addr().expect("TCP listener address").port()
}

/// A plain HTTP GET with a 10 s timeout: the status, the headers (names lower-cased, in the
/// order received) and the body. Any status is `Ok`; only transport failures are errors.
#[expect(
    clippy::type_complexity,
    reason = "a (status, headers, body) tuple is what the e2e tests destructure"
)]
pub fn http_get(url: &str) -> anyhow::Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    let response = match ureq::get(url).timeout(HTTP_TIMEOUT).call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => return Err(error).with_context(|| format!("GET {url}")),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .flat_map(|name| {
            let values: Vec<(String, String)> = response
                .all(&name)
                .into_iter()
                .map(|value| (name.to_ascii_lowercase(), value.to_owned()))
                .collect();
            values
        })
        .collect();
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .with_context(|| format!("reading the body of GET {url}"))?;
    Ok((status, headers, body))
}

/// Polls `ready` every 50 ms until it returns true; fails after `timeout`, naming `what`.
///
/// For states a test waits for (a playlist appears, a port is bound): it returns as soon as
/// the state is there, rather than after a fixed sleep.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The timeout of [`http_get`], connect to last byte.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most body bytes [`http_get`] reads.
const MAX_BODY: u64 = 256 * 1024 * 1024;
