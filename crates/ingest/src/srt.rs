//! The SRT pull worker (SPEC §Ingest "srt pull"): a caller to an SRT listener, its payloads
//! fed to the TS demuxer as one byte stream (they are not 188-byte aligned), frames written to
//! the input's port as they arrive.
//!
//! The transport is srt-tokio 0.4, as for the SRT listener (why, and what it gets wrong, in
//! `tributary_serve`'s `srt` module doc; issue 15 item 3). Its builder panics on a passphrase
//! outside 10–79 characters: `tributary_domain::spec` refused such a URL at save, so none
//! reaches here. The host is resolved through the SSRF guard and the first allowed address is
//! called, with `streamid`, `latency`, `passphrase` and `pbkeylen` from the URL (`params`
//! over its query). Connecting has `net.timeout_sec` (default 10 s); the same budget bounds
//! silence afterwards. Every way a connection ends (refused, timed out, EOF, too many demux
//! errors) is reported on the port and followed by the shared backoff (1 s doubling to 10 s);
//! each connection after one that opened starts a new session (`reconnect`).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use srt_tokio::SrtSocket;
use tributary_domain::spec::SrtSource;
use tributary_net::{SsrfGuard, Target};

use crate::backoff::Backoff;
use crate::sink::{Next, Reporter, Sink, now};

/// What an SRT pull needs, parsed once at save.
#[derive(Debug, Clone)]
pub(crate) struct SrtOptions {
    /// The listener and the caller's settings.
    source: SrtSource,
    /// Which addresses may be called.
    guard: SsrfGuard,
    /// Connect budget and the longest silence (`net.timeout_sec`, 0 = 10 s).
    timeout: Duration,
}

impl SrtOptions {
    pub(crate) fn new(source: &SrtSource, guard: &SsrfGuard) -> Self {
        Self {
            timeout: source.timeout.unwrap_or(DEFAULT_TIMEOUT),
            source: source.clone(),
            guard: guard.clone(),
        }
    }
}

/// Runs the worker: call, read, write frames; on any end, report, back off and call again,
/// forever.
pub(crate) async fn run(options: SrtOptions, program: u16, reporter: Reporter) {
    let mut sink = Sink::new(reporter.clone(), program);
    let mut backoff = Backoff::new();
    loop {
        match call(&options).await {
            Err(why) => reporter.open_failed(why),
            Ok((mut socket, peer)) => {
                tracing::info!(%peer, "SRT connected");
                reporter.opened();
                sink.reset();
                let why = read(&mut socket, &mut sink, &mut backoff, options.timeout).await;
                let _ =
                    tokio::time::timeout(CLOSE_GRACE, futures_util::SinkExt::close(&mut socket))
                        .await;
                reporter.lost(format_args!("SRT {peer}: {why}"));
            }
        }
        backoff.wait().await;
    }
}

/// Resolves the listener through the SSRF guard and calls the first allowed address.
async fn call(options: &SrtOptions) -> Result<(SrtSocket, SocketAddr), String> {
    let source = &options.source;
    let target = Target::new(source.host.clone(), source.port);
    let addrs = tributary_net::resolve(&target, &options.guard)
        .await
        .map_err(|e| e.to_string())?;
    let Some(&peer) = addrs.first() else {
        return Err(format!("{}:{} has no address", source.host, source.port));
    };
    let timeout = options.timeout;
    let mut builder = SrtSocket::builder()
        .latency(source.latency)
        .set(|o| o.connect.timeout = timeout);
    if let Some(passphrase) = &source.passphrase {
        // Checked at 10–79 characters and 16/24/32 at save: the builder's unwraps hold.
        builder = builder.encryption(source.pbkeylen.unwrap_or(0), passphrase.clone());
    }
    let called = tokio::time::timeout(timeout, builder.call(peer, source.streamid.as_deref()));
    match called.await {
        Ok(Ok(socket)) => Ok((socket, peer)),
        // srt-tokio's refusals come as an error without a message: its kind says more.
        Ok(Err(e)) if e.to_string().is_empty() => Err(format!(
            "SRT call to {peer} failed: {:?} (refused, wrong passphrase or streamid?)",
            e.kind()
        )),
        Ok(Err(e)) => Err(format!(
            "SRT call to {peer} failed: {e} (refused, wrong passphrase or streamid?)"
        )),
        Err(_) => Err(format!(
            "SRT call to {peer}: no connection within {timeout:?}"
        )),
    }
}

/// Reads one connection until it ends; returns why.
async fn read(
    socket: &mut SrtSocket,
    sink: &mut Sink,
    backoff: &mut Backoff,
    timeout: Duration,
) -> String {
    loop {
        let payload = match tokio::time::timeout(timeout, socket.next()).await {
            Err(_) => return format!("no data for {timeout:?}"),
            Ok(None) => return "the listener closed the connection (EOF)".into(),
            Ok(Some(Err(e))) => return format!("read: {e}"),
            Ok(Some(Ok((_, payload)))) => payload,
        };
        let arrival = now();
        sink.push(&payload, arrival);
        while let Some(next) = sink.next() {
            match next {
                Next::Frame(ready) => {
                    backoff.reset();
                    sink.write(ready, arrival);
                }
                Next::Reopen(why) => return why,
            }
        }
    }
}

/// Connect budget and read silence when `net.timeout_sec` is 0 (SPEC §Defaults, as RTMP).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
