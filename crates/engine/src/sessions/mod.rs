//! Play sessions (SPEC §Sessions): who watches which stream, over what, with how many bytes,
//! and the means to end a viewing (a kick).
//!
//! Two kinds of session, because the protocols give two kinds of evidence. An **HTTP**
//! viewer (HLS, DASH) is a run of independent requests: it is recognised by a fingerprint of
//! stream, address, user agent and `?token=`, opened by its first request and closed when it
//! stops asking (`idle_timeout_sec`). A **connection** (RTMP, RTSP, SRT, HTTP-TS) is its own
//! evidence: it opens when its play is granted and closes when the connection ends, and it is
//! never reaped while connected, however long it watches (open-streamer closed such viewers
//! after the idle timeout).
//!
//! The bookkeeping is the pure [`table::SessionTable`] behind one mutex, taken per request or
//! per connection event and never across `.await`; bytes are counted on the media path into a
//! per-session [`ByteMeter`] (one relaxed atomic add, no lock, no allocation) and read by the
//! reaper. A kick cancels the connection's own stop token, which every listener already
//! watches, so the player is gone within the driver's next wake-up; an HTTP fingerprint is
//! banned (403) for `kick_ban_sec` instead, since there is no connection to cut.
//!
//! A session's `country` comes from the GeoIP database (`sessions.geoip_db_path`, module
//! `geoip`), looked up once when the session opens, so requests after the first cost nothing
//! more. A config write that names another file swaps the whole database in one step
//! (sessions already open keep their country).
//!
//! `session.opened` / `session.closed` events are published while the table's lock is held,
//! so a session's `opened` always comes before its `closed` even when a kick races the
//! opening (the bus's own short lock is taken inside this one, never the other way round).

mod geoip;
pub(crate) mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_domain::config::SessionsSection;
use tributary_domain::event::EventType;
use tributary_serve::ByteMeter;

pub use table::{CloseReason, Proto, SessionView, Stats};
pub(crate) use table::{Closed, Filter, Hit, Opened, Settings, Tally, Viewer};

use crate::events::EventBus;
use crate::lock;
pub(crate) use geoip::GeoIp;
use table::SessionTable;

/// The process's play sessions.
pub(crate) struct Sessions {
    /// `sessions.enabled`: when off, nothing new is tracked and nobody is banned. A write
    /// through the config API flips it ([`Sessions::apply`]); sessions open at that moment
    /// close as they would have (idle, gone, kicked).
    enabled: AtomicBool,
    /// The table, with the settings it applies (replaced by [`Sessions::apply`]).
    table: Mutex<SessionTable>,
    /// Where `session.*` events go, once the engine has a bus.
    events: OnceLock<EventBus>,
    /// `sessions.geoip_db_path`: each session's `country` when it opens. Read at start;
    /// replaced by [`Sessions::set_geoip`] when a config write names another file (the
    /// lock is held only to clone the `Arc`).
    geoip: Mutex<Arc<GeoIp>>,
}

/// Held by a connection for its play; dropping it closes the session as `client_gone`
/// (unless a kick, the lifetime or shutdown closed it first).
pub(crate) struct ConnectionSession {
    sessions: Weak<Sessions>,
    id: Option<String>,
}

/// What the media route should do with an HTTP request.
#[derive(Debug)]
pub(crate) enum HttpAdmission {
    /// Serve it; add the 2xx body's length to the meter (if tracked).
    Serve(Option<ByteMeter>),
    /// 403: the fingerprint was kicked; the ban lasts this much longer.
    Banned(Duration),
}

impl Sessions {
    pub(crate) fn new(section: &SessionsSection) -> Self {
        let settings = Settings {
            idle: section.idle_timeout(),
            max_lifetime: section.max_lifetime(),
            kick_ban: section.kick_ban(),
        };
        Self {
            enabled: AtomicBool::new(section.enabled()),
            table: Mutex::new(SessionTable::new(settings)),
            events: OnceLock::new(),
            geoip: Mutex::new(Arc::new(GeoIp::open(section.geoip_db_path.as_deref()))),
        }
    }

    /// Sends `session.*` events to `events` from now on.
    pub(crate) fn attach(&self, events: EventBus) {
        let _ = self.events.set(events);
    }

    /// Whether tracking is on.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `sessions.geoip_db_path` changed through the config API: sessions opened from now on
    /// get their country from `geoip` (read and checked before the write was stored).
    pub(crate) fn set_geoip(&self, geoip: GeoIp) {
        *lock(&self.geoip) = Arc::new(geoip);
    }

    /// `[sessions]` changed through the config API: applies to the next request, the next
    /// kick and the reaper's next tick.
    pub(crate) fn apply(&self, section: &SessionsSection) {
        self.enabled.store(section.enabled(), Ordering::Relaxed);
        lock(&self.table).set_settings(Settings {
            idle: section.idle_timeout(),
            max_lifetime: section.max_lifetime(),
            kick_ban: section.kick_ban(),
        });
    }

    /// An HTTP media request of `code` (file `name`) by `viewer`.
    pub(crate) fn http(&self, code: &StreamCode, name: &str, viewer: &Viewer<'_>) -> HttpAdmission {
        let Some(proto) = Proto::of_media(name).filter(|_| self.enabled()) else {
            return HttpAdmission::Serve(None);
        };
        let (now, wall) = (clock(), Utc::now());
        let mut table = lock(&self.table);
        match table.hit(code, proto, viewer, now, wall) {
            Hit::Tracked { meter, opened } => {
                if let Some(mut opened) = opened {
                    self.locate(&mut table, &mut opened, viewer.ip);
                    self.publish_opened(&opened);
                }
                HttpAdmission::Serve(Some(meter))
            }
            Hit::Banned { remaining } => HttpAdmission::Banned(remaining),
            Hit::Untracked => HttpAdmission::Serve(None),
        }
    }

    /// A connection of `code` over `proto` from `peer` started playing; `stop` disconnects
    /// it, `meter` is where it counts its bytes.
    pub(crate) fn connect(
        self: &Arc<Self>,
        code: &StreamCode,
        proto: Proto,
        peer: SocketAddr,
        query: Option<&str>,
        stop: CancellationToken,
        meter: &ByteMeter,
    ) -> ConnectionSession {
        let mut session = ConnectionSession {
            sessions: Arc::downgrade(self),
            id: None,
        };
        if !self.enabled() {
            return session;
        }
        let viewer = Viewer {
            ip: peer.ip(),
            user_agent: "",
            referer: "",
            query: query.unwrap_or_default(),
            secure: false,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let (now, wall) = (clock(), Utc::now());
        let mut table = lock(&self.table);
        if let Some(mut opened) =
            table.connect(id.clone(), code, proto, &viewer, stop, meter, now, wall)
        {
            self.locate(&mut table, &mut opened, viewer.ip);
            self.publish_opened(&opened);
            session.id = Some(id);
        }
        session
    }

    /// `DELETE /sessions/{id}`: whether an active session had this id.
    pub(crate) fn kick(&self, id: &str) -> bool {
        let mut table = lock(&self.table);
        let Some(closed) = table.kick(id, clock(), Utc::now()) else {
            return false;
        };
        self.publish_closed(&closed);
        drop(table);
        tracing::info!(session = id, stream = %closed.code, proto = closed.proto.name(),
            "session kicked");
        true
    }

    /// Closes every session as `shutdown`.
    pub(crate) fn shutdown(&self) {
        let mut table = lock(&self.table);
        for closed in &table.shutdown(clock(), Utc::now()) {
            self.publish_closed(closed);
        }
    }

    /// Sessions matching `filter` (at most `limit`), how many matched, and the totals.
    pub(crate) fn list(&self, filter: &Filter, limit: usize) -> (Vec<SessionView>, usize, Stats) {
        let table = lock(&self.table);
        let (views, total) = table.list(filter, limit);
        (views, total, table.stats())
    }

    /// Session `id`, active or recently closed.
    pub(crate) fn get(&self, id: &str) -> Option<SessionView> {
        lock(&self.table).get(id)
    }

    /// Active sessions of `code` by protocol.
    pub(crate) fn viewers(&self, code: &StreamCode) -> BTreeMap<&'static str, u64> {
        lock(&self.table).viewers(code)
    }

    /// Per stream and protocol tallies of the streams `keep` accepts (the others are
    /// forgotten unless they have active sessions).
    pub(crate) fn tallies(
        &self,
        keep: impl Fn(&StreamCode) -> bool,
    ) -> Vec<(StreamCode, Proto, Tally)> {
        let mut table = lock(&self.table);
        table.retain(&keep);
        let mut tallies = table.tallies();
        tallies.retain(|(code, _, _)| keep(code));
        tallies
    }

    /// Runs the reaper until `cancel`: every clamp(idle / 3, 1 s, 5 s) it reads the meters,
    /// closes idle HTTP sessions and sessions past `max_lifetime_sec` (disconnecting them).
    /// It runs while tracking is off too (an empty table costs nothing), so tracking turned
    /// on through the config API is reaped, and it follows a changed `idle_timeout_sec`.
    pub(crate) async fn reap(self: Arc<Self>, cancel: CancellationToken) {
        let tick_of = |sessions: &Self| {
            (lock(&sessions.table).settings().idle / 3)
                .clamp(Duration::from_secs(1), Duration::from_secs(5))
        };
        let mut tick = tick_of(&self);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = interval.tick() => {}
            }
            let now_tick = tick_of(&self);
            if now_tick != tick {
                tick = now_tick;
                interval = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            let mut table = lock(&self.table);
            for closed in &table.reap(clock(), Utc::now()) {
                self.publish_closed(closed);
            }
        }
    }

    fn disconnect(&self, id: &str) {
        let mut table = lock(&self.table);
        if let Some(closed) = table.disconnect(id, clock(), Utc::now()) {
            self.publish_closed(&closed);
        }
    }

    /// Fills the `country` of the session that just `opened`, from `ip` (GeoIP): once per
    /// session, never per request.
    fn locate(&self, table: &mut SessionTable, opened: &mut Opened, ip: IpAddr) {
        let geoip = Arc::clone(&lock(&self.geoip));
        if let Some(country) = geoip.country(ip) {
            opened.country = country.to_owned();
            table.set_country(&opened.id, &opened.country);
        }
    }

    fn publish_opened(&self, opened: &Opened) {
        tracing::debug!(session = opened.id, stream = %opened.code, proto = opened.proto.name(),
            "session opened");
        if let Some(events) = self.events.get() {
            events.publish(
                EventType::SessionOpened,
                opened.code.as_str(),
                json!({
                    "session_id": opened.id,
                    "proto": opened.proto.name(),
                    "ip": opened.ip,
                    "user_agent": opened.user_agent,
                    "country": opened.country,
                    "user_name": opened.user_name,
                }),
            );
        }
    }

    fn publish_closed(&self, closed: &Closed) {
        tracing::debug!(session = closed.id, stream = %closed.code, proto = closed.proto.name(),
            reason = closed.reason.name(), bytes = closed.bytes, "session closed");
        if let Some(events) = self.events.get() {
            events.publish(
                EventType::SessionClosed,
                closed.code.as_str(),
                json!({
                    "session_id": closed.id,
                    "proto": closed.proto.name(),
                    "ip": closed.ip,
                    "bytes": closed.bytes,
                    "duration_sec": closed.duration_sec,
                    "reason": closed.reason.name(),
                }),
            );
        }
    }
}

impl ConnectionSession {
    /// A play that is not recorded (its peer is unknown).
    pub(crate) fn untracked() -> Self {
        Self {
            sessions: Weak::new(),
            id: None,
        }
    }
}

impl Drop for ConnectionSession {
    fn drop(&mut self) {
        if let (Some(id), Some(sessions)) = (self.id.take(), self.sessions.upgrade()) {
            sessions.disconnect(&id);
        }
    }
}

/// The monotonic clock, read once per call (tokio's, so tests can pause it).
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}
