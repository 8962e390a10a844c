//! One SRT caller: its streamid parsed, the router asked, the handshake answered, then a
//! publish pump (payloads → TS demuxer → intake port) or a play pump (hub subscriber → the
//! live TS writer → 7 × 188-byte datagrams).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use srt_protocol::options::KeySize;
use srt_protocol::packet::CoreRejectReason;
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::{ConnectionRequest, SrtSocket};
use tokio_util::sync::CancellationToken;
use tributary_domain::streamid::{SrtMode, SrtStreamId};
use tributary_hub::{Delivery, SubscribeFrom};
use tributary_media::timeline::SessionReason;
use tributary_mpegts::{LiveWriter, PACKET_LEN};

use super::ingest::{Ingested, TsIngest};
use super::{Gauge, Shared};
use crate::limit::PendingSlot;
use crate::{PlayGrant, PlayRequest, Protocol, PublishEnd, PublishGrant, PublishRequest, Refusal};

/// Answers one caller and, once accepted, serves it to its end.
pub(super) async fn serve(request: ConnectionRequest, slot: PendingSlot, shared: Arc<Shared>) {
    let _open = Gauge::hold(&shared.counters.connections);
    let peer = request.remote();
    let streamid = request
        .stream_id()
        .map(ToString::to_string)
        .unwrap_or_default();
    let id: SrtStreamId = match streamid.parse() {
        Ok(id) => id,
        Err(e) => {
            let code = ServerRejectReason::BadRequest;
            return refuse(request, &shared, "caller", reject_code(code), &e);
        }
    };
    let span = tracing::Span::current();
    span.record("path", id.path.as_str());
    let key = match key_settings(&shared, request.key_size()) {
        Ok(key) => key,
        Err((code, why)) => return refuse(request, &shared, what(id.mode), code, &why),
    };
    let stop = shared.cancel.child_token();
    match id.mode {
        SrtMode::Publish => {
            let asked = PublishRequest {
                path: id.path,
                key: id.key,
                slot: id.slot,
                peer,
                protocol: Protocol::Srt,
            };
            if let Some(work) = shared.router.prepare_publish(&asked)
                && let Err(refusal) = work.await
            {
                let code = refusal_code(&refusal, ServerRejectReason::Conflict);
                return refuse(request, &shared, "publish", code, &refusal);
            }
            let grant = match shared.router.publish(asked) {
                Ok(grant) => grant,
                Err(refusal) => {
                    let code = refusal_code(&refusal, ServerRejectReason::Conflict);
                    return refuse(request, &shared, "publish", code, &refusal);
                }
            };
            span.record("stream", grant.code.as_str());
            let Some(socket) = accept(request, key, &shared).await else {
                grant
                    .guard
                    .ended(PublishEnd::Protocol(HANDSHAKE_FAILED.into()));
                return;
            };
            drop(slot);
            publish(socket, grant, &shared, &stop).await;
        }
        SrtMode::Play => {
            let asked = PlayRequest {
                path: id.path,
                query: id.query,
                peer,
                protocol: Protocol::Srt,
                stop: stop.clone(),
            };
            let grant = match shared.router.play(asked) {
                Ok(grant) => grant,
                Err(refusal) => {
                    let code = refusal_code(&refusal, ServerRejectReason::Overload);
                    return refuse(request, &shared, "play", code, &refusal);
                }
            };
            span.record("stream", grant.code.as_str());
            let subscribed =
                grant
                    .hub
                    .subscribe(&grant.buffer, SubscribeFrom::LastKeyframe, PLAY_CLASS);
            let subscriber = match subscribed {
                Ok(subscriber) => subscriber,
                Err(e) => {
                    let refusal =
                        Refusal::NotFound(format!("stream {} is not running: {e}", grant.code));
                    let code = reject_code(ServerRejectReason::Notfound);
                    return refuse(request, &shared, "play", code, &refusal);
                }
            };
            let Some(socket) = accept(request, key, &shared).await else {
                return;
            };
            drop(slot);
            play(socket, grant, subscriber, &shared, &stop).await;
        }
    }
}

/// The key settings a caller is accepted with: this listener's passphrase at the caller's
/// own key length (srt-tokio panics on a mismatch, see the module doc), or none; or why the
/// caller's encryption cannot work here.
fn key_settings(
    shared: &Shared,
    asked: KeySize,
) -> Result<Option<KeySettings>, (RejectReason, &'static str)> {
    let config = &shared.config;
    let Some(passphrase) = &config.passphrase else {
        if asked == KeySize::Unspecified {
            return Ok(None);
        }
        return Err((
            reject_code(ServerRejectReason::KeyNotSup),
            "the caller encrypts, and this listener has no passphrase",
        ));
    };
    if let Some(want) = config.pbkeylen
        && asked != KeySize::Unspecified
        && u16::from(asked.as_raw()) != want
    {
        return Err((
            RejectReason::Core(CoreRejectReason::BadSecret),
            "the caller's key length (pbkeylen) differs from listeners.srt.pbkeylen",
        ));
    }
    // Checked at 10–79 characters by `SrtPassphrase`, the range srt-tokio accepts.
    let Ok(passphrase) = passphrase.expose().to_owned().try_into() else {
        return Err((
            RejectReason::Core(CoreRejectReason::BadSecret),
            "the listener's passphrase is not usable",
        ));
    };
    Ok(Some(KeySettings {
        key_size: asked,
        passphrase,
    }))
}

/// Accepts a caller the router let in; `None` (logged) when its handshake then fails: with a
/// passphrase set, that is a caller with another passphrase or none.
async fn accept(
    request: ConnectionRequest,
    key: Option<KeySettings>,
    shared: &Shared,
) -> Option<SrtSocket> {
    let encrypted = key.is_some();
    match request.accept(key).await {
        Ok(socket) => Some(socket),
        Err(e) => {
            shared
                .counters
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let why = if encrypted {
                "wrong passphrase, or none (SRT BadSecret/Unsecure)"
            } else {
                "the handshake did not complete"
            };
            tracing::warn!(
                code = BAD_SECRET,
                "SRT caller refused at handshake: {why} ({e})"
            );
            None
        }
    }
}

/// Refuses a caller at its handshake: the SRT reject code goes back, the refusal is logged
/// with peer (the span), path and code, never a key.
fn refuse(
    request: ConnectionRequest,
    shared: &Shared,
    what: &'static str,
    code: RejectReason,
    why: &dyn std::fmt::Display,
) {
    shared
        .counters
        .rejected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let number = code_number(code);
    tracing::warn!(code = number, "SRT {what} refused at handshake: {why}");
    tokio::spawn(async move {
        let _ = request.reject(code).await;
    });
}

/// A granted publisher: its payloads go to the stream's intake port until it leaves.
async fn publish(
    mut socket: SrtSocket,
    grant: PublishGrant,
    shared: &Shared,
    stop: &CancellationToken,
) {
    let _count = Gauge::hold(&shared.counters.publishers);
    let PublishGrant { port, guard, .. } = grant;
    // A new publisher is a new timeline (a slot that never carried frames keeps the session
    // its first selection opened).
    if port.health().frames > 0 {
        port.restart(SessionReason::Reconnect);
    }
    tracing::info!("publishing");
    let idle = shared.config.publish_idle_timeout;
    let mut ingest = TsIngest::new();
    let end = 'pump: loop {
        let item = tokio::select! {
            () = stop.cancelled() => break PublishEnd::ListenerStopped,
            item = tokio::time::timeout(idle, socket.next()) => item,
        };
        let payload = match item {
            Err(_) => break PublishEnd::Idle(idle),
            Ok(None) => break PublishEnd::Eof,
            Ok(Some(Err(e))) => break PublishEnd::Io(e.kind()),
            Ok(Some(Ok((_, payload)))) => payload,
        };
        ingest.push(&payload, tributary_net::clock());
        while let Some(Ingested {
            frame,
            config_change,
        }) = ingest.next()
        {
            if config_change {
                port.restart(SessionReason::ConfigChange);
            }
            if let Err(e) = port.write(frame) {
                tracing::warn!("the stream no longer takes this publisher: {e}");
                break 'pump PublishEnd::StreamGone;
            }
        }
    };
    let warn = !matches!(end, PublishEnd::Eof | PublishEnd::ListenerStopped);
    let message = format!(
        "publisher closed: {end} ({} demux errors, {} keyframes without parameter sets)",
        ingest.errors, ingest.dropped_keyframes
    );
    if warn {
        tracing::warn!("{message}");
    } else {
        tracing::info!("{message}");
    }
    guard.ended(end);
    let _ = tokio::time::timeout(CLOSE_GRACE, socket.close()).await;
}

/// A granted player: the playback feed from its last keyframe, as TS in datagrams of
/// [`DATAGRAM`] bytes, until it leaves, the stream ends or the router stops it.
async fn play(
    mut socket: SrtSocket,
    grant: PlayGrant,
    mut subscriber: tributary_hub::Subscriber,
    shared: &Shared,
    stop: &CancellationToken,
) {
    let _count = Gauge::hold(&shared.counters.players);
    let _guard = grant.guard;
    let meter = grant.bytes;
    tracing::info!("playing");
    // srt-tokio starts the connection before it sends the handshake's last answer, so data
    // sent at once can overtake it: libsrt then asks for the handshake again (and warns). A
    // player's first data waits a moment for the answer to leave.
    tokio::time::sleep(FIRST_SEND_DELAY).await;
    let mut writer = LiveWriter::new();
    let mut out = BytesMut::with_capacity(DATAGRAM * 8);
    let end: Result<&str, io::Error> = 'pump: loop {
        tokio::select! {
            () = stop.cancelled() => break Ok("stopped"),
            // A player sends nothing but control packets; its stream ends when it leaves.
            from_peer = socket.next() => match from_peer {
                None => break Ok("the player left"),
                Some(Err(e)) => break Err(e),
                Some(Ok(_)) => continue,
            },
            delivery = subscriber.recv() => match delivery {
                None => break Ok("the stream ended"),
                Some(Delivery::Frame(frame)) => writer.push(frame),
                Some(Delivery::Lagged { dropped }) => {
                    tracing::debug!(dropped, "player fell behind; resuming at a keyframe");
                    writer.lagged(dropped);
                }
            },
        }
        while let Some(run) = writer.pull() {
            out.extend_from_slice(&run);
        }
        while out.len() >= DATAGRAM {
            let datagram = out.split_to(DATAGRAM).freeze();
            meter.add(DATAGRAM);
            let sent =
                tokio::time::timeout(SEND_STALL, socket.send((tributary_net::clock(), datagram)))
                    .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break 'pump Err(e),
                Err(_) => break 'pump Ok("the player stopped taking data"),
            }
        }
    };
    // Whole TS packets still held go out, and are flushed before the close (srt-tokio can
    // lose what is queued at close).
    if !out.is_empty() && out.len().is_multiple_of(PACKET_LEN) {
        let rest = out.split().freeze();
        let _ = socket.feed((tributary_net::clock(), rest)).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = socket.flush().await;
        let _ = socket.close().await;
    })
    .await;
    let skipped = writer.skipped();
    match end {
        Ok(why) => tracing::info!("player disconnected: {why} ({skipped} frames skipped)"),
        Err(e) => tracing::warn!("player disconnected: {e} ({skipped} frames skipped)"),
    }
}

/// What a mode is called in logs.
fn what(mode: SrtMode) -> &'static str {
    match mode {
        SrtMode::Publish => "publish",
        SrtMode::Play => "play",
    }
}

/// The SRT reject code of a router's refusal; `busy` for [`Refusal::Busy`] (a taken slot is
/// a conflict, a full play cap an overload).
fn refusal_code(refusal: &Refusal, busy: ServerRejectReason) -> RejectReason {
    reject_code(match refusal {
        Refusal::NotFound(_) => ServerRejectReason::Notfound,
        Refusal::Denied(_) => ServerRejectReason::Unauthorized,
        Refusal::Busy(_) => busy,
    })
}

fn reject_code(reason: ServerRejectReason) -> RejectReason {
    RejectReason::Server(reason)
}

/// The number of a reject code, for logs (`SRT_REJX_*`, `SRT_REJ_*`).
fn code_number(code: RejectReason) -> i32 {
    match code {
        RejectReason::Core(core) => core as i32,
        RejectReason::Server(server) => server as i32,
        RejectReason::CoreUnrecognized(n)
        | RejectReason::ServerUnrecognized(n)
        | RejectReason::User(n) => n,
    }
}

/// The hub subscriber class of SRT players (`tributary_buffer_drops_total{subscriber=…}`).
const PLAY_CLASS: &str = "srt_play";
/// Bytes per datagram a player gets: 7 TS packets (SPEC §Publisher).
const DATAGRAM: usize = 7 * PACKET_LEN;
/// A player whose transport takes nothing for this long is disconnected (its SRT send
/// buffer is full: the link is gone or far too slow). As `play_backlog_sec` of RTMP.
const SEND_STALL: Duration = Duration::from_secs(10);
/// How long a player's first data waits after the handshake (see `play`).
const FIRST_SEND_DELAY: Duration = Duration::from_millis(20);
/// How long a closing connection may take to flush.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Why a publisher's grant ended when its handshake failed after the router let it in.
const HANDSHAKE_FAILED: &str = "SRT handshake failed (wrong passphrase, or none)";
/// SRT's reject code for a wrong passphrase (`SRT_REJ_BADSECRET`).
const BAD_SECRET: i32 = 1010;
