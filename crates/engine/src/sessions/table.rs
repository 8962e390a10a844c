//! The session table: the pure core of play-session tracking (SPEC §Sessions).
//!
//! It reads no clock and starts no task: every call takes `now` (monotonic, for timeouts)
//! and `wall` (UTC, for the record's timestamps), so the reaper's rules are tested exactly on
//! paused time. What a call changes comes back as [`Opened`] / [`Closed`] values; the runtime
//! side ([`super::Sessions`]) publishes them as events after letting the table's lock go.
//!
//! **Bytes** are counted by the connection or the HTTP handler into the session's
//! [`ByteMeter`] (one relaxed atomic add, no lock); the table reads the meters at each reaper
//! tick, so a connection's `updated_at` advances as data flows without the media path ever
//! taking the table's lock.
//!
//! **Bounds.** At most [`MAX_ACTIVE`] active sessions (a new HTTP fingerprint beyond it is
//! served untracked; connections are capped by the play caps long before), [`CLOSED_KEPT`]
//! closed records for at most [`CLOSED_FOR`], and [`MAX_BANS`] kick bans.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_serve::ByteMeter;

/// How a session reaches its viewer (`proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// HLS playlists and TS segments over HTTP (by fingerprint).
    Hls,
    /// DASH (`.mpd`, `.m4s`, `.mp4`) over HTTP (by fingerprint).
    Dash,
    /// An RTMP play connection.
    Rtmp,
    /// An RTSP play connection.
    Rtsp,
    /// An SRT play connection.
    Srt,
    /// An HTTP-TS (`/{code}/mpegts`) connection.
    Mpegts,
}

impl Proto {
    /// Every protocol, in label order.
    pub(crate) const ALL: [Self; 6] = [
        Self::Hls,
        Self::Dash,
        Self::Rtmp,
        Self::Rtsp,
        Self::Srt,
        Self::Mpegts,
    ];

    /// The name in JSON, events and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hls => "hls",
            Self::Dash => "dash",
            Self::Rtmp => "rtmp",
            Self::Rtsp => "rtsp",
            Self::Srt => "srt",
            Self::Mpegts => "mpegts",
        }
    }

    /// Parses a name as used in `?proto=`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == text)
    }

    /// The HTTP protocol a media file name belongs to (SPEC §Sessions: the extension
    /// decides), or `None` for a file that is no play (a thumbnail).
    ///
    /// fMP4 files (`.m4s`, `.mp4`) are both HLS's and DASH's; the packagers name them apart
    /// (DASH: `init_v*.mp4`, `init_a*.mp4`, `seg_v_<n>.m4s`, `seg_a_<n>.m4s`; HLS:
    /// `init*.mp4` with digits, `seg_<n>.m4s`, `part_<n>.<i>.m4s`), so one fMP4-HLS viewer
    /// is one HLS session, not one HLS and one DASH.
    pub fn of_media(name: &str) -> Option<Self> {
        let ext = name.rsplit_once('.')?.1;
        match ext {
            "m3u8" | "ts" => Some(Self::Hls),
            "mpd" => Some(Self::Dash),
            "m4s" | "mp4" => {
                let dash = ["init_v", "init_a", "seg_v_", "seg_a_"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix));
                Some(if dash { Self::Dash } else { Self::Hls })
            }
            _ => None,
        }
    }

    /// Whether sessions of this protocol are HTTP fingerprints (reaped when idle, banned
    /// when kicked) rather than connections.
    fn is_http(self) -> bool {
        matches!(self, Self::Hls | Self::Dash)
    }
}

/// Why a session closed (`close_reason`, `sessions_closed_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// An HTTP session sent nothing for `idle_timeout_sec`.
    Idle,
    /// The connection ended.
    ClientGone,
    /// `DELETE /sessions/{id}`.
    Kicked,
    /// Older than `max_lifetime_sec`.
    MaxLifetime,
    /// The server shut down.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in label order.
    pub(crate) const ALL: [Self; 5] = [
        Self::Idle,
        Self::ClientGone,
        Self::Kicked,
        Self::MaxLifetime,
        Self::Shutdown,
    ];

    /// The name in JSON, events and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::ClientGone => "client_gone",
            Self::Kicked => "kicked",
            Self::MaxLifetime => "max_lifetime",
            Self::Shutdown => "shutdown",
        }
    }

    /// Its place in [`Tally::closed`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Who asks: what the viewer's request or connection tells about it.
/// Borrowed from the request: a request of a known session copies nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Viewer<'a> {
    /// The client address: the peer, or what a trusted proxy forwarded
    /// (`security.trusted_proxies`).
    pub(crate) ip: IpAddr,
    /// `User-Agent` (HTTP), else empty.
    pub(crate) user_agent: &'a str,
    /// `Referer` (HTTP), else empty.
    pub(crate) referer: &'a str,
    /// The request's query without its `?`, as sent (redacted when stored).
    pub(crate) query: &'a str,
    /// Whether it came over TLS.
    pub(crate) secure: bool,
}

/// The settings the table applies (SPEC §Sessions, `[sessions]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// HTTP sessions idle longer than this close as `idle`.
    pub(crate) idle: Duration,
    /// Sessions older than this close as `max_lifetime`; `None` for no limit.
    pub(crate) max_lifetime: Option<Duration>,
    /// A kicked fingerprint is refused for this long.
    pub(crate) kick_ban: Duration,
}

/// A session record as the API shows it (SPEC §Sessions "Fields").
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// HTTP: the first 16 hex chars of SHA-256(code, ip, user agent, token); connections: a
    /// random UUID.
    pub id: String,
    /// The stream watched.
    #[schema(value_type = String)]
    pub stream_code: StreamCode,
    /// `hls`, `dash`, `rtmp`, `rtsp`, `srt` or `mpegts`.
    pub proto: Proto,
    /// The viewer's address.
    pub ip: String,
    /// Its `User-Agent` (HTTP).
    pub user_agent: String,
    /// Its `Referer` (HTTP).
    pub referer: String,
    /// The query of its first request, secret values masked.
    pub query_string: String,
    /// `?token=`, if sent.
    pub token: String,
    /// The token, else the first 8 chars of the id.
    pub user_name: String,
    /// `token`, `fingerprint` (HTTP) or `connection`.
    pub named_by: &'static str,
    /// The viewer's country (ISO 3166-1 alpha-2) from the GeoIP database
    /// (`sessions.geoip_db_path`); `""` without one, or when the address has no record.
    pub country: String,
    /// Bytes sent to the viewer (HTTP: 2xx bodies).
    pub bytes: u64,
    /// Over TLS.
    pub secure: bool,
    /// Watching a recording (DVR has not landed: false).
    pub dvr: bool,
    /// When it opened (RFC 3339, ms).
    pub opened_at: String,
    /// When its play started (= `opened_at`).
    pub started_at: String,
    /// The last request (HTTP) or the last reaper tick that saw bytes flow (connections).
    pub updated_at: String,
    /// When it closed, once closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// Why it closed, once closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<CloseReason>,
}

/// A session that opened: the `session.opened` payload and its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    pub(crate) id: String,
    pub(crate) code: StreamCode,
    pub(crate) proto: Proto,
    pub(crate) ip: String,
    pub(crate) user_agent: String,
    pub(crate) user_name: String,
    /// From GeoIP (filled by the caller, [`SessionTable::set_country`]); `""` if unknown.
    pub(crate) country: String,
}

/// A session that closed: the `session.closed` payload and its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    pub(crate) id: String,
    pub(crate) code: StreamCode,
    pub(crate) proto: Proto,
    pub(crate) ip: String,
    pub(crate) bytes: u64,
    pub(crate) duration_sec: u64,
    pub(crate) reason: CloseReason,
}

/// What an HTTP request gets from the table.
#[derive(Debug)]
pub(crate) enum Hit {
    /// Its session (opened by this request when `opened` is set): add the body's bytes to
    /// `meter` once the response is 2xx.
    Tracked {
        meter: ByteMeter,
        opened: Option<Opened>,
    },
    /// Kicked a moment ago: 403 until the ban ends.
    Banned {
        /// How long the ban still lasts.
        remaining: Duration,
    },
    /// The table is full; the request is served without a session.
    Untracked,
}

/// Totals and the active count, for `stats` and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Sessions open now.
    pub active: u64,
    /// Sessions opened since start.
    pub opened_total: u64,
    /// Sessions closed since start.
    pub closed_total: u64,
    /// Of those, closed as `idle`.
    pub idle_closed_total: u64,
    /// Of those, kicked.
    pub kicked_total: u64,
}

/// Per stream and protocol, for `sessions_*` metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) active: u64,
    pub(crate) opened: u64,
    /// By [`CloseReason::index`].
    pub(crate) closed: [u64; 5],
}

/// Which sessions a list shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub(crate) stream: Option<StreamCode>,
    pub(crate) proto: Option<Proto>,
    /// `Some(true)`: active only; `Some(false)`: closed only; `None`: both.
    pub(crate) active: Option<bool>,
}

/// Every session, active and recently closed.
#[derive(Debug)]
pub(crate) struct SessionTable {
    settings: Settings,
    active: HashMap<String, Entry>,
    /// Closed records, oldest first, with the instant each closed.
    closed: VecDeque<(Instant, SessionView)>,
    /// Kicked HTTP fingerprints and when their ban ends.
    bans: HashMap<String, Instant>,
    stats: Stats,
    /// Per stream and protocol; a stream's entries go with its record ([`Self::retain`]).
    tallies: HashMap<(StreamCode, Proto), Tally>,
}

/// An active session.
#[derive(Debug)]
struct Entry {
    /// The record, but for `bytes` and `updated_at`: read when it is shown ([`Entry::view`]).
    view: SessionView,
    meter: ByteMeter,
    /// When it was last seen: formatted only when shown, not per request.
    updated: DateTime<Utc>,
    opened: Instant,
    /// The last request (HTTP) or the last tick that saw bytes (connections).
    seen: Instant,
    /// The meter's value at the last tick.
    last_bytes: u64,
    /// A connection's stop signal: cancelled to disconnect it.
    stop: Option<CancellationToken>,
}

impl SessionTable {
    /// The settings applied now.
    pub(crate) fn settings(&self) -> Settings {
        self.settings
    }

    /// Applies `settings` from now on: to the next reap, request and kick.
    pub(crate) fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            settings,
            active: HashMap::new(),
            closed: VecDeque::new(),
            bans: HashMap::new(),
            stats: Stats::default(),
            tallies: HashMap::new(),
        }
    }

    /// An HTTP request of `code` over `proto` by `viewer`: refreshes its session, opening it
    /// on the first request, unless the fingerprint is banned.
    pub(crate) fn hit(
        &mut self,
        code: &StreamCode,
        proto: Proto,
        viewer: &Viewer<'_>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Hit {
        let token = query_param(viewer.query, "token").unwrap_or_default();
        let id = fingerprint(code, viewer.ip, viewer.user_agent, token);
        let id = id.as_str();
        if let Some(&until) = self.bans.get(id) {
            if until > now {
                return Hit::Banned {
                    remaining: until - now,
                };
            }
            self.bans.remove(id);
        }
        if let Some(entry) = self.active.get_mut(id) {
            entry.seen = now;
            entry.updated = wall;
            return Hit::Tracked {
                meter: entry.meter.clone(),
                opened: None,
            };
        }
        if self.active.len() >= MAX_ACTIVE {
            return Hit::Untracked;
        }
        let meter = ByteMeter::default();
        let opened = self.open(
            id.to_owned(),
            code,
            proto,
            viewer,
            token,
            None,
            &meter,
            now,
            wall,
        );
        Hit::Tracked {
            meter,
            opened: Some(opened),
        }
    }

    /// A connection of `code` over `proto` by `viewer` started playing, as session `id` (a
    /// random UUID); `stop` disconnects it. `None` when the table is full.
    #[allow(clippy::too_many_arguments)] // What a record holds, each from a different place.
    pub(crate) fn connect(
        &mut self,
        id: String,
        code: &StreamCode,
        proto: Proto,
        viewer: &Viewer<'_>,
        stop: CancellationToken,
        meter: &ByteMeter,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Option<Opened> {
        if self.active.len() >= MAX_ACTIVE {
            return None;
        }
        let token = query_param(viewer.query, "token").unwrap_or_default();
        Some(self.open(id, code, proto, viewer, token, Some(stop), meter, now, wall))
    }

    /// Sets the `country` of active session `id` (GeoIP, looked up by the caller once the
    /// session opened).
    pub(crate) fn set_country(&mut self, id: &str, country: &str) {
        if let Some(entry) = self.active.get_mut(id) {
            country.clone_into(&mut entry.view.country);
        }
    }

    /// Connection `id` ended: closed as `client_gone`, unless something closed it first.
    pub(crate) fn disconnect(
        &mut self,
        id: &str,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Option<Closed> {
        self.close(id, CloseReason::ClientGone, now, wall)
    }

    /// `DELETE /sessions/{id}`: closes it as `kicked`; a connection is stopped, an HTTP
    /// fingerprint banned for `kick_ban`. `None` if no active session has this id.
    pub(crate) fn kick(&mut self, id: &str, now: Instant, wall: DateTime<Utc>) -> Option<Closed> {
        let http = self.active.get(id)?.view.proto.is_http();
        if http && self.settings.kick_ban > Duration::ZERO && self.bans.len() < MAX_BANS {
            self.bans
                .insert(id.to_owned(), now + self.settings.kick_ban);
        }
        self.close(id, CloseReason::Kicked, now, wall)
    }

    /// The reaper's tick: reads every meter (a connection that moved bytes is seen now),
    /// closes idle HTTP sessions and sessions past their lifetime, and forgets closed records
    /// and bans that are too old.
    pub(crate) fn reap(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<Closed> {
        let Settings {
            idle, max_lifetime, ..
        } = self.settings;
        let mut ending = Vec::new();
        for (id, entry) in &mut self.active {
            let bytes = entry.meter.get();
            if bytes != entry.last_bytes {
                entry.last_bytes = bytes;
                if entry.stop.is_some() {
                    entry.seen = now;
                    entry.updated = wall;
                }
            }
            if max_lifetime.is_some_and(|max| now.duration_since(entry.opened) >= max) {
                ending.push((id.clone(), CloseReason::MaxLifetime));
            } else if entry.stop.is_none() && now.duration_since(entry.seen) > idle {
                ending.push((id.clone(), CloseReason::Idle));
            }
        }
        let closed = ending
            .into_iter()
            .filter_map(|(id, reason)| self.close(&id, reason, now, wall))
            .collect();
        while self
            .closed
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > CLOSED_FOR)
        {
            self.closed.pop_front();
        }
        self.bans.retain(|_, until| *until > now);
        closed
    }

    /// Closes every session as `shutdown`, disconnecting the connections.
    pub(crate) fn shutdown(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<Closed> {
        let ids: Vec<String> = self.active.keys().cloned().collect();
        ids.iter()
            .filter_map(|id| self.close(id, CloseReason::Shutdown, now, wall))
            .collect()
    }

    /// Sessions matching `filter`, active first (newest first), then closed (newest first):
    /// at most `limit`, with how many matched in all.
    pub(crate) fn list(&self, filter: &Filter, limit: usize) -> (Vec<SessionView>, usize) {
        let matches = |view: &SessionView| {
            filter
                .stream
                .as_ref()
                .is_none_or(|c| *c == view.stream_code)
                && filter.proto.is_none_or(|p| p == view.proto)
        };
        let mut active: Vec<&Entry> = if filter.active == Some(false) {
            Vec::new()
        } else {
            self.active.values().filter(|e| matches(&e.view)).collect()
        };
        active.sort_by(|a, b| b.opened.cmp(&a.opened).then(a.view.id.cmp(&b.view.id)));
        let closed: Vec<&SessionView> = if filter.active == Some(true) {
            Vec::new()
        } else {
            self.closed
                .iter()
                .rev()
                .map(|(_, view)| view)
                .filter(|view| matches(view))
                .collect()
        };
        let total = active.len() + closed.len();
        let views = active
            .into_iter()
            .map(Entry::view)
            .chain(closed.into_iter().cloned())
            .take(limit)
            .collect();
        (views, total)
    }

    /// Session `id`: the active one, else the latest closed one.
    pub(crate) fn get(&self, id: &str) -> Option<SessionView> {
        if let Some(entry) = self.active.get(id) {
            return Some(entry.view());
        }
        self.closed
            .iter()
            .rev()
            .find(|(_, view)| view.id == id)
            .map(|(_, view)| view.clone())
    }

    /// Totals since start and the active count.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            active: self.active.len() as u64,
            ..self.stats
        }
    }

    /// Active sessions of `code` by protocol (`runtime.publisher.viewers`).
    pub(crate) fn viewers(&self, code: &StreamCode) -> BTreeMap<&'static str, u64> {
        self.tallies
            .iter()
            .filter(|((c, _), tally)| c == code && tally.active > 0)
            .map(|((_, proto), tally)| (proto.name(), tally.active))
            .collect()
    }

    /// Every stream's tallies, for the metrics.
    pub(crate) fn tallies(&self) -> Vec<(StreamCode, Proto, Tally)> {
        self.tallies
            .iter()
            .map(|((code, proto), tally)| (code.clone(), *proto, *tally))
            .collect()
    }

    /// Forgets the tallies of streams `keep` says no longer exist (their series go with their
    /// records; SPEC §Metrics). Active sessions keep theirs.
    pub(crate) fn retain(&mut self, keep: impl Fn(&StreamCode) -> bool) {
        self.tallies
            .retain(|(code, _), tally| tally.active > 0 || keep(code));
    }

    #[allow(clippy::too_many_arguments)] // See `connect`.
    fn open(
        &mut self,
        id: String,
        code: &StreamCode,
        proto: Proto,
        viewer: &Viewer<'_>,
        token: &str,
        stop: Option<CancellationToken>,
        meter: &ByteMeter,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Opened {
        let (named_by, user_name) = if !token.is_empty() {
            ("token", token.to_owned())
        } else if proto.is_http() {
            ("fingerprint", id.chars().take(8).collect())
        } else {
            ("connection", id.chars().take(8).collect())
        };
        let at = stamp(wall);
        let view = SessionView {
            id: id.clone(),
            stream_code: code.clone(),
            proto,
            ip: viewer.ip.to_string(),
            user_agent: viewer.user_agent.to_owned(),
            referer: viewer.referer.to_owned(),
            query_string: redact_query(viewer.query),
            token: token.to_owned(),
            user_name: user_name.clone(),
            named_by,
            country: String::new(),
            bytes: 0,
            secure: viewer.secure,
            dvr: false,
            opened_at: at.clone(),
            started_at: at.clone(),
            updated_at: at,
            closed_at: None,
            close_reason: None,
        };
        let opened = Opened {
            id: id.clone(),
            code: code.clone(),
            proto,
            ip: view.ip.clone(),
            user_agent: view.user_agent.clone(),
            user_name,
            country: String::new(),
        };
        let last_bytes = meter.get();
        self.active.insert(
            id,
            Entry {
                view,
                meter: meter.clone(),
                updated: wall,
                opened: now,
                seen: now,
                last_bytes,
                stop,
            },
        );
        self.stats.opened_total += 1;
        let tally = self.tallies.entry((code.clone(), proto)).or_default();
        tally.opened += 1;
        tally.active += 1;
        opened
    }

    fn close(
        &mut self,
        id: &str,
        reason: CloseReason,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Option<Closed> {
        let entry = self.active.remove(id)?;
        // A connection that is still there is told to go (a kick, its lifetime, shutdown).
        if let (Some(stop), false) = (&entry.stop, reason == CloseReason::ClientGone) {
            stop.cancel();
        }
        let mut view = entry.view();
        view.closed_at = Some(stamp(wall));
        view.close_reason = Some(reason);
        self.stats.closed_total += 1;
        match reason {
            CloseReason::Idle => self.stats.idle_closed_total += 1,
            CloseReason::Kicked => self.stats.kicked_total += 1,
            _ => {}
        }
        if let Some(tally) = self
            .tallies
            .get_mut(&(view.stream_code.clone(), view.proto))
        {
            tally.active = tally.active.saturating_sub(1);
            tally.closed[reason.index()] += 1;
        }
        let closed = Closed {
            id: view.id.clone(),
            code: view.stream_code.clone(),
            proto: view.proto,
            ip: view.ip.clone(),
            bytes: view.bytes,
            duration_sec: now.duration_since(entry.opened).as_secs(),
            reason,
        };
        if self.closed.len() == CLOSED_KEPT {
            self.closed.pop_front();
        }
        self.closed.push_back((now, view));
        Some(closed)
    }
}

impl Entry {
    /// The record with its current byte count.
    fn view(&self) -> SessionView {
        SessionView {
            bytes: self.meter.get(),
            updated_at: stamp(self.updated),
            ..self.view.clone()
        }
    }
}

/// SPEC §Sessions: the first 16 hex chars of SHA-256(`code \0 lower(ip) \0 user_agent \0
/// token`).
pub(crate) fn fingerprint(
    code: &StreamCode,
    ip: IpAddr,
    user_agent: &str,
    token: &str,
) -> Fingerprint {
    use std::io::Write as _;
    let mut hash = Sha256::new();
    hash.update(code.as_str().as_bytes());
    hash.update([0]);
    // An address's text fits in 45 bytes (IPv6 with an IPv4 tail); `Display` writes hex digits
    // in lower case, as the fingerprint wants.
    let mut text = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    let _ = write!(cursor, "{ip}");
    let len = cursor.position() as usize;
    hash.update(&text[..len]);
    hash.update([0]);
    hash.update(user_agent.as_bytes());
    hash.update([0]);
    hash.update(token.as_bytes());
    let digest = hash.finalize();
    let mut hex = [0u8; 16];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(&digest[..8]) {
        pair.copy_from_slice(&tributary_domain::hex::digits(*byte));
    }
    Fingerprint(hex)
}

/// An HTTP session's id, computed per request without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 16]);

impl Fingerprint {
    pub(crate) fn as_str(&self) -> &str {
        // Lower-case hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The value of query parameter `name` in `query` (not percent-decoded: tokens are opaque).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `query` with the values of secret-named parameters (`key`, `sig`, `token`, ...) masked.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if tributary_domain::redact::is_secret_name(key) => {
                format!("{key}=****")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn stamp(wall: DateTime<Utc>) -> String {
    wall.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Active sessions at most: beyond, new HTTP fingerprints are served untracked (a client that
/// varies its user agent cannot grow the table without bound).
pub(crate) const MAX_ACTIVE: usize = 100_000;
/// Closed records kept at most (SPEC §Sessions, Tributary).
pub(crate) const CLOSED_KEPT: usize = 1000;
/// How long a closed record is kept (SPEC §Sessions, Tributary).
pub(crate) const CLOSED_FOR: Duration = Duration::from_secs(600);
/// Kick bans held at most; beyond, a kick still closes the session but does not ban.
pub(crate) const MAX_BANS: usize = 10_000;
