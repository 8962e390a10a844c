//! What one input's URL and options mean, parsed: the [`Source`] of a [`ParsedInput`](super::ParsedInput).
//!
//! Each variant carries exactly what its worker (or listener slot) needs, already checked: a
//! UDP input's packet size is within range, a file's container is one the file worker reads,
//! an HTTP header is sendable. Workers read these fields and never look at the URL's text or
//! the input's `params` again.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use tributary_media::StreamCode;
use url::Url;

use crate::protocol::{InputKind, Mixer, PushAddress, PushVia};
use crate::stream::Push;

/// What an input is: its kind and every option that kind takes, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// An encoder publishes to one of our listeners (`publish://`, `rtmp://0.0.0.0/<app>/<key>`,
    /// `srt://0.0.0.0:<port>`, or an RTMP URL naming this server's own listener and stream).
    Push(PushSource),
    /// A UDP listen socket, unicast or multicast, carrying TS or RTP/TS.
    Udp(UdpSource),
    /// An HLS pull (`http(s)://…/*.m3u8`).
    Hls(HttpSource),
    /// A long HTTP GET read as MPEG-TS.
    HttpTs(HttpSource),
    /// An RTMP(S) pull.
    Rtmp(RtmpSource),
    /// An RTSP pull.
    Rtsp(RtspSource),
    /// An SRT pull in caller mode (no worker yet: rejected as unsupported at validation).
    Srt(SrtSource),
    /// A file played in real time.
    File(FileSource),
    /// In-process re-stream of another stream's playback feed.
    Copy {
        /// The stream copied.
        upstream: StreamCode,
    },
    /// In-process A/V mix of two streams.
    Mixer(Mixer),
}

impl Source {
    /// The kind, as the one classifier named it.
    pub fn kind(&self) -> InputKind {
        match self {
            Self::Push(_) => InputKind::Push,
            Self::Udp(_) => InputKind::Udp,
            Self::Hls(_) => InputKind::Hls,
            Self::HttpTs(_) => InputKind::HttpTs,
            Self::Rtmp(_) => InputKind::Rtmp,
            Self::Rtsp(_) => InputKind::Rtsp,
            Self::Srt(_) => InputKind::Srt,
            Self::File(_) => InputKind::File,
            Self::Copy { .. } => InputKind::Copy,
            Self::Mixer(_) => InputKind::Mixer,
        }
    }
}

/// A push input: a slot a publisher takes on one of our listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSource {
    /// Which listener may feed it.
    pub via: PushVia,
    /// How a publisher addresses it.
    pub address: PushAddress,
}

/// A UDP listen socket (SPEC §Ingest "udp").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSource {
    /// The host as written: a multicast group, a local address to bind, or a name to resolve;
    /// `0.0.0.0` for every interface.
    pub host: String,
    /// The port to bind.
    pub port: u16,
    /// The multicast group, when the host is one (joined automatically).
    pub group: Option<IpAddr>,
    /// The interface the group is joined on (`localaddr=` or `iface=`).
    pub interface: Option<MulticastInterface>,
    /// The IPv4 source of a source-specific join (`source=`); only with an IPv4 group.
    pub source: Option<Ipv4Addr>,
    /// Whether RTP headers are detected and stripped (`rtp=0` turns it off). Default true.
    pub rtp: bool,
    /// The largest datagram expected, bytes (`pkt_size`): 1 to [`MAX_PKT_SIZE`], default
    /// [`DEFAULT_PKT_SIZE`].
    pub pkt_size: usize,
}

/// Where a multicast group is joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MulticastInterface {
    /// An address of the interface.
    Addr(IpAddr),
    /// The interface's name (`eth1`); not allowed with a source-specific join.
    Name(String),
}

/// An HLS or HTTP-TS pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSource {
    /// The URL requested, `params` merged into its query.
    pub url: Url,
    /// Sent on every request to the input's own host (never across hosts on redirect): names
    /// are HTTP tokens, values visible ASCII.
    pub headers: Vec<(String, String)>,
    /// Connect and response budget (`net.timeout_sec`); `None` = the kind's default.
    pub timeout: Option<Duration>,
    /// Skip certificate verification (`net.insecure_tls`).
    pub insecure_tls: bool,
}

/// An RTMP(S) pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpSource {
    /// Where to connect and what to play.
    pub target: RtmpUrl,
    /// Connect + handshake + play budget, and the longest silence a read may meet
    /// (`net.timeout_sec`); `None` = the kind's default.
    pub timeout: Option<Duration>,
    /// Skip certificate verification (`net.insecure_tls`).
    pub insecure_tls: bool,
}

/// An RTMP(S) URL, `rtmp[s]://[user@]host[:port]/<app>/<stream name>`, split as the RTMP
/// client session splits it: an RTMP pull's source, a push target's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// The URL as configured (trimmed); the session's `tcUrl` is derived from it.
    pub url: String,
    /// `rtmps://`: TLS, SNI = `host`.
    pub tls: bool,
    /// The host to dial (a name or an address; IPv6 without brackets).
    pub host: String,
    /// The port to dial: as written, else 1935 (`rtmp`) or 443 (`rtmps`).
    pub port: u16,
    /// The application (the first path segment).
    pub app: String,
    /// The stream name (the rest of the path, query included: `cam1?key=k`).
    pub name: String,
}

/// One enabled or disabled push target (`push[]`, SPEC §Push), its URL parsed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PushSpec {
    /// The target as configured: `enabled`, `timeout_sec`, `retry_timeout_sec`, `limit`;
    /// its trimmed URL is its identity across updates.
    pub push: Push,
    /// Where it publishes.
    pub target: RtmpUrl,
    /// The rung it sends, from `profile` `track_<N>` (index N − 1, as hub rendition buffers
    /// count); `None` (`profile` `""`): the playback feed. Parsing checks only the form;
    /// that the ladder has this rung is a write rule
    /// ([`check_push_profiles`](crate::validate::check_push_profiles)), and a running target
    /// whose rung is not in the ladder fails visibly.
    pub rung: Option<u16>,
}

/// An RTSP pull (SPEC §Ingest "rtsp pull").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspSource {
    /// The URL requested: `rtsp://` or `rtsps://`, without credentials or Tributary's own
    /// options (`transport`), the camera's own query kept.
    pub url: Url,
    /// User and password from the URL, percent-decoded, for Basic or Digest authentication.
    pub credentials: Option<(String, String)>,
    /// How RTP travels (`?transport=tcp|udp`, default TCP; always TCP with TLS).
    pub transport: RtspTransport,
    /// `rtsps://`: the connection runs TLS (default port 322).
    pub tls: bool,
    /// Connect, DESCRIBE…PLAY and read budget (`net.timeout_sec`); `None` = the kind's
    /// default.
    pub timeout: Option<Duration>,
    /// Skip certificate verification (`net.insecure_tls`).
    pub insecure_tls: bool,
}

/// How an RTSP pull asks the server to send RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspTransport {
    /// Interleaved on the RTSP TCP connection (the default: passes NAT and firewalls, no
    /// loss).
    Tcp,
    /// UDP unicast to ports of ours.
    Udp,
}

/// An SRT pull in caller mode (SPEC §Ingest "srt pull"): the URL's query (`streamid`,
/// `latency`, `passphrase`, `pbkeylen`) with `params` over it, checked at save. Its `Debug`
/// masks the passphrase.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtSource {
    /// The listener's host (a name or an address).
    pub host: String,
    /// The listener's port.
    pub port: u16,
    /// What to ask the listener for (`streamid`), if anything.
    pub streamid: Option<String>,
    /// The latency SRT keeps for retransmissions (`latency`, ms; default 120, libsrt's).
    pub latency: Duration,
    /// The passphrase to encrypt with (`passphrase`, 10 to 79 characters); a secret.
    pub passphrase: Option<String>,
    /// The key length with a passphrase (`pbkeylen`: 16, 24 or 32; `None` = 16).
    pub pbkeylen: Option<u16>,
    /// Connect budget and the longest silence a read may meet (`net.timeout_sec`); `None` =
    /// the kind's default.
    pub timeout: Option<Duration>,
}

impl fmt::Debug for SrtSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtSource")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("streamid", &self.streamid)
            .field("latency", &self.latency)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "****"))
            .field("pbkeylen", &self.pbkeylen)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A file played in real time by DTS (SPEC §Ingest "file").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSource {
    /// The absolute path.
    pub path: PathBuf,
    /// The container, from the extension.
    pub format: FileFormat,
    /// Whether the file plays again from the start when it ends (`loop`, default true).
    pub looping: bool,
    /// The VOD mount's storage for `file://<mount>/<path>`: the file, resolved, must lie
    /// inside it (in place of `security.file_input_roots`). `None` for an absolute path.
    pub root: Option<PathBuf>,
}

/// A file container the file worker reads, by extension (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// `.ts`, `.m2ts`, `.mts`: MPEG-TS, demuxed directly.
    Ts,
    /// `.mp4`, `.m4v`, `.mov`.
    Mp4,
    /// `.flv`.
    Flv,
    /// `.mkv`.
    Mkv,
}

impl FileFormat {
    /// The format of a file named with `extension` (without the dot, any case).
    pub fn from_extension(extension: &str) -> Option<Self> {
        Some(match extension.to_ascii_lowercase().as_str() {
            "ts" | "m2ts" | "mts" => Self::Ts,
            "mp4" | "m4v" | "mov" => Self::Mp4,
            "flv" => Self::Flv,
            "mkv" => Self::Mkv,
            _ => return None,
        })
    }
}

/// `pkt_size` when not given: seven TS packets, what encoders (and SRT) put in one datagram.
pub const DEFAULT_PKT_SIZE: usize = 1316;
/// The largest `pkt_size`: the largest UDP payload.
pub const MAX_PKT_SIZE: usize = 65_536;
/// The file extensions [`FileFormat`] knows, for error messages.
pub(crate) const FILE_EXTENSIONS: &str = ".ts, .m2ts, .mts, .mp4, .m4v, .mov, .flv, .mkv";
