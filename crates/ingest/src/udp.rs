//! `udp://host:port`: a listen socket, unicast or multicast, carrying TS or RTP/TS (SPEC §Ingest
//! "udp").
//!
//! UDP has no connection: the socket is bound once and kept for the stream's life (a failed
//! bind is retried with the connect loop's backoff). The host decides the mode: a multicast
//! address is joined (on the interface named by `localaddr=` or `iface=`; with `source=` as an
//! IPv4 source-specific join), any other host is the local address to bind (`0.0.0.0` or empty
//! for every interface). Each datagram that does not start with the TS sync byte and looks like
//! RTP version 2 has its RTP header (CSRCs, extension, padding) stripped, unless `rtp=0`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tributary_domain::spec::{MAX_PKT_SIZE, MulticastInterface, UdpSource};

use crate::backoff::Backoff;
use crate::sink::{Next, Reporter, Sink, now};

/// The receive buffer: `pkt_size` plus room for an RTP header and extension.
fn buffer_len(source: &UdpSource) -> usize {
    (source.pkt_size + RTP_ROOM).min(MAX_PKT_SIZE)
}

/// Runs the worker: binds (retrying), then receives until stopped.
pub(crate) async fn run(udp: UdpSource, program: u16, reporter: Reporter) {
    let mut backoff = Backoff::new();
    let socket = loop {
        match bind(&udp).await {
            Ok(socket) => break socket,
            Err(e) => {
                reporter.open_failed(format_args!("cannot bind: {e}"));
                backoff.wait().await;
            }
        }
    };
    reporter.announce_open();
    tracing::info!(local = ?socket.local_addr().ok(), "listening");
    let mut sink = Sink::new(reporter.clone(), program);
    // One buffer for the socket's life: no allocation per datagram.
    let mut buf = vec![0u8; buffer_len(&udp)];
    let mut peer: Option<SocketAddr> = None;
    let mut bad_rtp: u64 = 0;
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                // ICMP errors and the like: nothing to reopen on a listen socket.
                reporter.error(format_args!("receive error: {e}"));
                backoff.wait().await;
                continue;
            }
        };
        let arrival = now();
        if peer != Some(from) {
            tracing::info!(peer = %from, "receiving from a new peer");
            peer = Some(from);
        }
        let datagram = &buf[..len];
        let payload = if udp.rtp && datagram.first() != Some(&SYNC_BYTE) {
            match tributary_rtp::payload(datagram) {
                Some(payload) => payload,
                None => {
                    bad_rtp += 1;
                    if bad_rtp % 100 == 1 {
                        tracing::warn!(peer = %from, len, count = bad_rtp,
                            "datagram is neither TS nor RTP; passed to the demuxer as is");
                    }
                    datagram
                }
            }
        } else {
            datagram
        };
        sink.push(payload, arrival);
        while let Some(next) = sink.next() {
            match next {
                Next::Frame(ready) => {
                    backoff.reset();
                    sink.write(ready, arrival);
                }
                Next::Reopen(why) => {
                    reporter.error(format_args!("{why}; demuxer reset (peer {from})"));
                    sink.reset();
                }
            }
        }
    }
}

/// Opens the socket: 4 MiB receive buffer, bound, and joined to the group if multicast.
async fn bind(udp: &UdpSource) -> std::io::Result<UdpSocket> {
    let local = match udp.group {
        Some(group) => SocketAddr::new(group, udp.port),
        None if udp.host.is_empty() => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), udp.port),
        None => tokio::net::lookup_host((udp.host.as_str(), udp.port))
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("host {:?} has no address", udp.host),
                )
            })?,
    };
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER) {
        tracing::warn!("cannot set a {RECV_BUFFER}-byte receive buffer: {e}");
    }
    if udp.group.is_some() {
        // Several listeners of one group on one host (another stream, a probe) are normal.
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    match (udp.group, &udp.interface, udp.source) {
        (Some(IpAddr::V4(group)), interface, Some(source)) => {
            let interface = match interface {
                Some(MulticastInterface::Addr(IpAddr::V4(a))) => *a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            socket.join_ssm_v4(&source, &group, &interface)?;
        }
        (Some(IpAddr::V4(group)), interface, None) => {
            let interface = match interface {
                Some(MulticastInterface::Addr(IpAddr::V4(a))) => {
                    InterfaceIndexOrAddress::Address(*a)
                }
                Some(MulticastInterface::Name(name)) => {
                    InterfaceIndexOrAddress::Index(ifindex(name)?)
                }
                _ => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
            };
            socket.join_multicast_v4_n(&group, &interface)?;
        }
        (Some(IpAddr::V6(group)), interface, _) => {
            let index = match interface {
                Some(MulticastInterface::Name(name)) => ifindex(name)?,
                _ => 0,
            };
            socket.join_multicast_v6(&group, index)?;
        }
        (None, _, _) => {}
    }
    UdpSocket::from_std(socket.into())
}

/// The index of a network interface by name (Linux: `/sys/class/net/<name>/ifindex`).
fn ifindex(name: &str) -> std::io::Result<u32> {
    let path = format!("/sys/class/net/{name}/ifindex");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("interface {name:?} not found ({path}: {e})"),
        )
    })?;
    text.trim().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("interface {name:?}: unreadable index {text:?}"),
        )
    })
}

const SYNC_BYTE: u8 = 0x47;
/// Room above `pkt_size` for an RTP header with CSRCs and an extension.
const RTP_ROOM: usize = 4096;
/// The socket receive buffer (SPEC §Defaults): about 0.3 s of a 100 Mb/s stream.
const RECV_BUFFER: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_leaves_room_for_an_rtp_header() {
        let source = |pkt_size| UdpSource {
            host: "0.0.0.0".into(),
            port: 5000,
            group: None,
            interface: None,
            source: None,
            rtp: true,
            pkt_size,
        };
        assert_eq!(buffer_len(&source(188)), 188 + RTP_ROOM);
        assert_eq!(buffer_len(&source(MAX_PKT_SIZE)), MAX_PKT_SIZE);
    }
}
