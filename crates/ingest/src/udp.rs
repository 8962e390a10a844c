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
use url::Url;

use crate::backoff::Backoff;
use crate::options::{OptionError, parse_bool, query_value};
use crate::sink::{Next, Reporter, Sink, now};

/// The options of a UDP input, parsed from its URL (query merged with `params`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UdpOptions {
    /// The host as written: a multicast group, a local address, or a name to resolve.
    host: String,
    port: u16,
    /// The multicast group, when the host is one.
    group: Option<IpAddr>,
    /// The interface to join the group on (`localaddr=` or `iface=`).
    interface: Option<Interface>,
    /// The IPv4 source of a source-specific join (`source=`).
    source: Option<Ipv4Addr>,
    /// Whether RTP headers are detected and stripped (`rtp=0` turns it off).
    rtp: bool,
    /// The largest datagram expected (`pkt_size`, default 1316, at most 65536).
    pkt_size: usize,
}

/// A multicast interface: an address on it, or its name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Interface {
    Addr(IpAddr),
    Name(String),
}

impl UdpOptions {
    pub(crate) fn parse(url: &Url) -> Result<Self, OptionError> {
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port()
            .ok_or_else(|| OptionError("port", "udp:// needs a port".into()))?;
        let group = host.parse::<IpAddr>().ok().filter(|ip| ip.is_multicast());
        let interface = match (query_value(url, "localaddr"), query_value(url, "iface")) {
            (Some(addr), _) => Some(Interface::Addr(addr.parse().map_err(|_| {
                OptionError("localaddr", format!("{addr:?} is not an IP address"))
            })?)),
            (None, Some(name)) => Some(match name.parse() {
                Ok(ip) => Interface::Addr(ip),
                Err(_) if valid_ifname(&name) => Interface::Name(name),
                Err(_) => {
                    return Err(OptionError(
                        "iface",
                        format!("{name:?} is neither an IP address nor an interface name"),
                    ));
                }
            }),
            (None, None) => None,
        };
        let source = match query_value(url, "source") {
            None => None,
            Some(s) => Some(
                s.parse::<Ipv4Addr>()
                    .map_err(|_| OptionError("source", format!("{s:?} is not an IPv4 address")))?,
            ),
        };
        if source.is_some() && !matches!(group, Some(IpAddr::V4(_))) {
            return Err(OptionError(
                "source",
                "source-specific multicast needs an IPv4 multicast group as host".into(),
            ));
        }
        if source.is_some() && matches!(interface, Some(Interface::Name(_))) {
            return Err(OptionError(
                "source",
                "a source-specific join names its interface by address: use localaddr=<ip>".into(),
            ));
        }
        let rtp = match query_value(url, "rtp") {
            None => true,
            Some(v) => parse_bool(&v)
                .ok_or_else(|| OptionError("rtp", format!("{v:?} is not 0/1/true/false")))?,
        };
        let pkt_size = match query_value(url, "pkt_size") {
            None => DEFAULT_PKT_SIZE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PKT_SIZE).contains(n))
                .ok_or_else(|| {
                    OptionError(
                        "pkt_size",
                        format!("{v:?} is not a size from 1 to {MAX_PKT_SIZE}"),
                    )
                })?,
        };
        Ok(Self {
            host,
            port,
            group,
            interface,
            source,
            rtp,
            pkt_size,
        })
    }

    /// The receive buffer: `pkt_size` plus room for an RTP header and extension.
    fn buffer_len(&self) -> usize {
        (self.pkt_size + RTP_ROOM).min(MAX_PKT_SIZE)
    }
}

/// Runs the worker: binds (retrying), then receives until stopped.
pub(crate) async fn run(options: UdpOptions, program: u16, reporter: Reporter) {
    let mut backoff = Backoff::new();
    let socket = loop {
        match bind(&options).await {
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
    let mut buf = vec![0u8; options.buffer_len()];
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
        let payload = if options.rtp && datagram.first() != Some(&SYNC_BYTE) {
            match rtp_payload(datagram) {
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
async fn bind(options: &UdpOptions) -> std::io::Result<UdpSocket> {
    let local = match options.group {
        Some(group) => SocketAddr::new(group, options.port),
        None if options.host.is_empty() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), options.port)
        }
        None => tokio::net::lookup_host((options.host.as_str(), options.port))
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("host {:?} has no address", options.host),
                )
            })?,
    };
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER) {
        tracing::warn!("cannot set a {RECV_BUFFER}-byte receive buffer: {e}");
    }
    if options.group.is_some() {
        // Several listeners of one group on one host (another stream, a probe) are normal.
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    match (options.group, &options.interface, options.source) {
        (Some(IpAddr::V4(group)), interface, Some(source)) => {
            let interface = match interface {
                Some(Interface::Addr(IpAddr::V4(a))) => *a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            socket.join_ssm_v4(&source, &group, &interface)?;
        }
        (Some(IpAddr::V4(group)), interface, None) => {
            let interface = match interface {
                Some(Interface::Addr(IpAddr::V4(a))) => InterfaceIndexOrAddress::Address(*a),
                Some(Interface::Name(name)) => InterfaceIndexOrAddress::Index(ifindex(name)?),
                _ => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
            };
            socket.join_multicast_v4_n(&group, &interface)?;
        }
        (Some(IpAddr::V6(group)), interface, _) => {
            let index = match interface {
                Some(Interface::Name(name)) => ifindex(name)?,
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

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// The payload of an RTP version 2 packet (fixed header, CSRCs, extension and padding
/// removed), or `None` when the datagram is not one.
fn rtp_payload(datagram: &[u8]) -> Option<&[u8]> {
    let [b0, ..] = *datagram else { return None };
    if b0 >> 6 != 2 || datagram.len() < RTP_HEADER {
        return None;
    }
    let csrcs = usize::from(b0 & 0x0F);
    let mut start = RTP_HEADER + 4 * csrcs;
    if b0 & 0x10 != 0 {
        let ext = datagram.get(start..start + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        start += 4 + 4 * words;
    }
    let mut end = datagram.len();
    if b0 & 0x20 != 0 {
        let padding = usize::from(*datagram.last()?);
        end = end.checked_sub(padding)?;
    }
    datagram.get(start..end)
}

const SYNC_BYTE: u8 = 0x47;
/// The fixed RTP header.
const RTP_HEADER: usize = 12;
/// Room above `pkt_size` for an RTP header with CSRCs and an extension.
const RTP_ROOM: usize = 4096;
/// Seven TS packets: what encoders (and SRT) put in one datagram.
const DEFAULT_PKT_SIZE: usize = 1316;
/// The largest UDP payload we accept.
const MAX_PKT_SIZE: usize = 65_536;
/// The socket receive buffer (SPEC §Defaults): about 0.3 s of a 100 Mb/s stream.
const RECV_BUFFER: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<UdpOptions, OptionError> {
        UdpOptions::parse(&Url::parse(raw).unwrap())
    }

    #[test]
    fn options() {
        let o = parse("udp://0.0.0.0:5000").unwrap();
        assert_eq!(
            (o.port, o.group, o.rtp, o.pkt_size),
            (5000, None, true, 1316)
        );
        let o = parse("udp://239.1.1.1:5000?localaddr=10.0.0.2&source=10.0.0.9&rtp=0&pkt_size=188")
            .unwrap();
        assert_eq!(o.group, Some("239.1.1.1".parse().unwrap()));
        assert_eq!(
            o.interface,
            Some(Interface::Addr("10.0.0.2".parse().unwrap()))
        );
        assert_eq!(o.source, Some("10.0.0.9".parse().unwrap()));
        assert_eq!(
            (o.rtp, o.pkt_size, o.buffer_len()),
            (false, 188, 188 + RTP_ROOM)
        );
        let o = parse("udp://[ff0e::1]:5000?iface=eth0").unwrap();
        assert_eq!(o.interface, Some(Interface::Name("eth0".into())));
        assert_eq!(
            parse("udp://1.2.3.4:1?pkt_size=65536")
                .unwrap()
                .buffer_len(),
            65_536
        );

        for (raw, option) in [
            ("udp://0.0.0.0:5000?pkt_size=0", "pkt_size"),
            ("udp://0.0.0.0:5000?pkt_size=70000", "pkt_size"),
            ("udp://0.0.0.0:5000?rtp=maybe", "rtp"),
            ("udp://0.0.0.0:5000?localaddr=eth0", "localaddr"),
            ("udp://0.0.0.0:5000?iface=a%20b", "iface"),
            ("udp://0.0.0.0:5000?source=10.0.0.1", "source"),
            ("udp://239.1.1.1:5000?source=::1", "source"),
            ("udp://239.1.1.1:5000?source=10.0.0.1&iface=eth0", "source"),
        ] {
            assert_eq!(parse(raw).unwrap_err().0, option, "{raw}");
        }
    }

    #[test]
    fn rtp_headers_are_stripped() {
        let ts = [0x47u8, 1, 2, 3];
        // Plain header.
        let mut p = vec![0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&ts);
        assert_eq!(rtp_payload(&p), Some(&ts[..]));
        // Two CSRCs, a one-word extension, two bytes of padding.
        let mut p = vec![0x80 | 0x20 | 0x10 | 2, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]);
        p.extend_from_slice(&ts);
        p.extend_from_slice(&[0, 2]);
        assert_eq!(rtp_payload(&p), Some(&ts[..]));
        // Not RTP, truncated, or lying lengths.
        assert_eq!(rtp_payload(&[0x40; 20]), None);
        assert_eq!(rtp_payload(&[0x80; 5]), None);
        assert_eq!(
            rtp_payload(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            None
        );
        assert_eq!(
            rtp_payload(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]),
            None
        );
        assert_eq!(rtp_payload(&[]), None);
    }
}
