//! The RTSP pull worker (SPEC §Ingest "rtsp pull"): DESCRIBE, SETUP of one video and one audio
//! track, PLAY, and every frame written to the input's port as it arrives.
//!
//! The RTSP client, RTP depacketizers and RTCP handling are the `retina` crate's (made for IP
//! cameras, tested against many of them; ARCHITECTURE §2). It dials by itself, so this module
//! resolves the host first through the SSRF guard ([`tributary_net::resolve`]) and gives retina
//! the URL with an address the guard allowed: the name is never resolved twice. Retina speaks
//! plain RTSP only: for `rtsps://` this module dials the TLS connection itself and bridges
//! retina into it over loopback ([`tls`]).
//!
//! What retina does for us, per connection:
//! - Basic and Digest authentication with the URL's credentials (taken out of the URL at
//!   validation and given as [`Credentials`]).
//! - TCP-interleaved or UDP transport (`?transport=tcp|udp`; retina's UDP has no reorder
//!   buffer, so it suits a LAN: reordered packets are lost and counted by the depacketizer).
//! - Parameter sets from the SDP (`sprop-parameter-sets`, `sprop-vps/sps/pps`) put in front of
//!   every keyframe, and refreshed from in-band ones: a camera that sends them only in the SDP
//!   works.
//! - Timestamps of all tracks on one clock from the `RTP-Info` of PLAY, so audio and video keep
//!   their offset (lip sync) into the timeline normaliser. A server without `RTP-Info` gets
//!   each track starting at 0 at its first packet; the RTCP sender reports then put the audio
//!   on the video's axis ([`sync`], from the first report of each track on).
//!
//! What this module does: the connect loop and backoff every pull shares, the timeouts
//! (`net.timeout_sec`, default 10 s: DESCRIBE…PLAY together, then the longest silence), the
//! choice of tracks (the first H.264 or H.265 video, the first AAC audio; others are logged
//! once and left out, since no output carries them yet), and the frames: Annex-B video through
//! the shared [`Sink`] (parameter-set keeper, config changes, stall watchdog), raw AAC with its
//! AudioSpecificConfig.
//!
//! RTP carries presentation times only: video decode times come from [`Reorder`], which holds
//! a stream with B-frames back by its reorder depth (none for the streams cameras send).

mod sync;
mod tls;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, InitialTimestampPolicy, PlayOptions, SessionOptions, SetupOptions,
    TcpTransportOptions, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tributary_domain::spec::{RtspSource, RtspTransport};
use tributary_media::{Codec, Frame, SessionId, TrackConfig, TrackId, Ts90};
use tributary_net::{SsrfGuard, Target};
use url::Url;

use crate::backoff::Backoff;
use crate::reorder::Reorder;
use crate::sink::{Reporter, Sink, now};

/// What an RTSP pull needs, parsed once at spawn.
#[derive(Debug, Clone)]
pub(crate) struct RtspOptions {
    source: RtspSource,
    guard: SsrfGuard,
    /// DESCRIBE…PLAY budget, and the longest silence afterwards.
    timeout: Duration,
}

impl RtspOptions {
    pub(crate) fn new(source: &RtspSource, guard: &SsrfGuard) -> Self {
        Self {
            source: source.clone(),
            guard: guard.clone(),
            timeout: source.timeout.unwrap_or(DEFAULT_TIMEOUT),
        }
    }
}

/// Runs the worker: connect, play, write frames; on any end, report, back off and reconnect,
/// forever.
pub(crate) async fn run(options: RtspOptions, reporter: Reporter) {
    let mut sink = Sink::new(reporter, 0);
    let mut backoff = Backoff::new();
    loop {
        sink.reset();
        let ended = connection(&options, &mut sink).await;
        if sink.had_frames() {
            backoff.reset();
        }
        sink.reporter.ended(ended);
        backoff.wait().await;
    }
}

/// The tracks a connection carries, by retina's stream index.
struct Tracks {
    video: Option<(usize, Codec)>,
    audio: Option<usize>,
}

/// One connection from DESCRIBE to its end; returns why it ended, for the report.
async fn connection(options: &RtspOptions, sink: &mut Sink) -> String {
    let source = &options.source;
    let dialed = if source.tls {
        tls::bridge(
            &source.url,
            &options.guard,
            source.insecure_tls,
            options.timeout,
        )
        .await
    } else {
        dialable(&source.url, &options.guard).await
    };
    let (url, peer) = match dialed {
        Ok(dialed) => dialed,
        Err(why) => return why,
    };
    let opened = tokio::time::timeout(options.timeout, open(source, url, &sink.reporter)).await;
    let (mut demuxed, tracks) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return format!("{peer}: {}", describe(&e)),
        Err(_) => {
            return format!(
                "{peer}: no answer to DESCRIBE, SETUP and PLAY within {:?} (timeout)",
                options.timeout
            );
        }
    };
    tracing::info!(%peer, transport = ?source.transport, "playing");
    sink.reporter.opened();
    let mut track = TrackState::default();
    loop {
        let item = match tokio::time::timeout(options.timeout, demuxed.next()).await {
            Err(_) => {
                return format!(
                    "no data from {peer} for {:?} (read timeout)",
                    options.timeout
                );
            }
            Ok(None) => return format!("the server {peer} ended the session"),
            Ok(Some(Err(e))) => {
                return format!("RTSP session with {peer} failed: {}", describe(&e));
            }
            Ok(Some(Ok(item))) => item,
        };
        let frame = match item {
            CodecItem::VideoFrame(frame) => {
                let Some((_, codec)) = tracks.video.filter(|(i, _)| *i == frame.stream_id()) else {
                    continue;
                };
                // New parameter sets come in front of the keyframe: the sink's keeper
                // notices them and starts the new session.
                let pts = ts90(frame.timestamp());
                track.reorder.push(Frame {
                    track: VIDEO_TRACK,
                    codec,
                    pts,
                    dts: pts,
                    keyframe: frame.is_random_access_point(),
                    session: SessionId(0),
                    arrival: now(),
                    payload: Bytes::from(frame.into_data()),
                    config: None,
                });
                while let Some(frame) = track.reorder.pop() {
                    if let Some(ready) = sink.frame(frame) {
                        sink.write(ready, now());
                    }
                }
                continue;
            }
            CodecItem::AudioFrame(frame) => {
                if tracks.audio != Some(frame.stream_id()) {
                    continue;
                }
                let Some(config) = track.audio_config(&demuxed, frame.stream_id()) else {
                    continue;
                };
                let pts = ts90(frame.timestamp()) + track.sync.audio_shift();
                Frame {
                    track: AUDIO_TRACK,
                    codec: Codec::Aac,
                    pts,
                    dts: pts,
                    keyframe: true,
                    session: SessionId(0),
                    arrival: now(),
                    payload: Bytes::copy_from_slice(frame.data()),
                    config: Some(config),
                }
            }
            CodecItem::Rtcp(rtcp) => {
                let kind = match rtcp.stream_id() {
                    i if tracks.video.is_some_and(|(v, _)| v == i) => sync::Track::Video,
                    i if tracks.audio == Some(i) => sync::Track::Audio,
                    _ => continue,
                };
                let report = rtcp.pkts().next().map(|p| p.as_sender_report());
                if let (Some(rtp), Some(Ok(Some(report)))) = (rtcp.rtp_timestamp(), report)
                    && let Some(shift) =
                        track.sync.report(kind, ts90(rtp), report.ntp_timestamp().0)
                {
                    tracing::info!(
                        %peer,
                        shift_ms = shift.0 / 90,
                        "audio aligned to video by RTCP sender reports"
                    );
                }
                continue;
            }
            // ONVIF metadata is not carried.
            _ => continue,
        };
        if let Some(ready) = sink.frame(frame) {
            sink.write(ready, now());
        }
    }
}

/// Resolves the URL's host through the SSRF guard: the URL with the first allowed address in
/// place of the name, and that address for messages.
async fn dialable(url: &Url, guard: &SsrfGuard) -> Result<(Url, SocketAddr), String> {
    let target = target(url, DEFAULT_PORT);
    let addr = match tributary_net::resolve(&target, guard).await {
        Ok(addrs) => addrs[0],
        Err(e) => return Err(cannot_connect(&e)),
    };
    let mut dial = url.clone();
    // A URL with a host takes any IP address as its host.
    let _ = dial.set_ip_host(addr.ip());
    Ok((dial, addr))
}

/// Where `url` points: its host (an IPv6 address without brackets) and port.
fn target(url: &Url, default_port: u16) -> Target {
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    Target::new(host.to_owned(), url.port().unwrap_or(default_port))
}

/// A dial error as the input's error history shows it, marked when retrying cannot help.
fn cannot_connect(e: &tributary_net::DialError) -> String {
    if e.is_fatal() {
        format!("cannot connect: {e} (not retriable)")
    } else {
        format!("cannot connect: {e}")
    }
}

/// DESCRIBE, SETUP of the chosen tracks, PLAY.
async fn open(
    source: &RtspSource,
    url: Url,
    reporter: &Reporter,
) -> Result<(Demuxed, Tracks), retina::Error> {
    let options = SessionOptions::default()
        .creds(
            source
                .credentials
                .as_ref()
                .map(|(user, password)| Credentials {
                    username: user.clone(),
                    password: password.clone(),
                }),
        )
        .user_agent(concat!("Tributary/", env!("CARGO_PKG_VERSION")).to_owned());
    let mut session = retina::client::Session::describe(url, options).await?;
    let tracks = choose(session.streams(), reporter);
    let format = FrameFormat {
        aac_framing: retina::codec::aac::Framing::Raw,
        ..FrameFormat::SIMPLE
    };
    let transport = match source.transport {
        RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    for i in tracks.video.map(|(i, _)| i).into_iter().chain(tracks.audio) {
        let setup = SetupOptions::default()
            .transport(transport.clone())
            .frame_format(format);
        session.setup(i, setup).await?;
    }
    // The RTP-Info of PLAY puts every track on one clock; a server that leaves it out gets
    // each track starting at 0, and its sender reports align them (`sync`).
    let play = PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive);
    let playing = session.play(play).await?;
    Ok((playing.demuxed()?, tracks))
}

/// The first H.264 or H.265 video and the first AAC audio of the presentation; every other
/// stream is logged and left out.
fn choose(streams: &[retina::client::Stream], reporter: &Reporter) -> Tracks {
    let mut tracks = Tracks {
        video: None,
        audio: None,
    };
    for (i, stream) in streams.iter().enumerate() {
        let encoding = stream.encoding_name().to_ascii_lowercase();
        match (stream.media(), encoding.as_str()) {
            ("video", "h264") if tracks.video.is_none() => tracks.video = Some((i, Codec::H264)),
            ("video", "h265") if tracks.video.is_none() => tracks.video = Some((i, Codec::H265)),
            ("audio", "mpeg4-generic") if tracks.audio.is_none() => tracks.audio = Some(i),
            (media, _) => tracing::warn!(
                stream = i,
                media,
                encoding,
                "RTSP stream left out: outputs carry H.264/H.265 video and AAC audio"
            ),
        }
    }
    if tracks.video.is_none() && tracks.audio.is_none() {
        reporter.error("the presentation has no H.264, H.265 or AAC stream");
    }
    tracks
}

/// Per connection: what the writer has seen of each track.
#[derive(Default)]
struct TrackState {
    /// Decode times for the video.
    reorder: Reorder,
    /// The AAC configuration, built once from the SDP.
    audio: Option<Arc<TrackConfig>>,
    /// The audio's shift onto the video's axis, from sender reports.
    sync: sync::SrSync,
}

impl TrackState {
    /// The AAC configuration of stream `i`, from its parameters (the SDP's `config`).
    fn audio_config(&mut self, demuxed: &Demuxed, i: usize) -> Option<Arc<TrackConfig>> {
        if self.audio.is_none() {
            let Some(ParametersRef::Audio(params)) = demuxed.streams()[i].parameters() else {
                return None;
            };
            let config = TrackConfig::aac(Bytes::copy_from_slice(params.extra_data()));
            if config.is_none() {
                tracing::warn!("AAC stream without a usable AudioSpecificConfig: left out");
            }
            self.audio = config.map(Arc::new);
        }
        self.audio.clone()
    }
}

/// A retina error on one line (it spreads its context over several), marked as SPEC's
/// non-retriable refusals when the server answered 401, 403, 404 or 410.
fn describe(e: &retina::Error) -> String {
    let text = e.to_string();
    let mut line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if matches!(e.status_code(), Some(401 | 403 | 404 | 410)) {
        line.push_str(" (not retriable)");
    }
    line
}

/// A retina timestamp (ticks of its stream's clock since PLAY's `RTP-Info`) on the 90 kHz
/// clock.
fn ts90(ts: retina::Timestamp) -> Ts90 {
    let rate = i128::from(NonZeroU32::get(ts.clock_rate()));
    let ticks = i128::from(ts.elapsed()) * i128::from(Ts90::HZ) / rate;
    Ts90(i64::try_from(ticks).unwrap_or(i64::MAX))
}

/// The video track of an RTSP pull's frames.
const VIDEO_TRACK: TrackId = TrackId(0);
/// The audio track of an RTSP pull's frames.
const AUDIO_TRACK: TrackId = TrackId(1);

/// DESCRIBE…PLAY budget and read timeout when `net.timeout_sec` is 0 (SPEC §Defaults "RTSP
/// pull").
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// RTSP's port when the URL names none.
const DEFAULT_PORT: u16 = 554;
