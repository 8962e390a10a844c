//! `[sessions]` (SPEC §Sessions): play-session tracking.
//!
//! Every field is optional so that a partial section (as open-streamer wrote them, or as the
//! config API will store them) means "the default for the rest"; the accessors resolve them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `[sessions]`: who watches what, for how long, with how many bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionsSection {
    /// Tracking on. Default true: `GET /sessions`, kicks, `session.*` events and the
    /// `sessions_*` metrics need it, and a record costs a few hundred bytes per viewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Seconds an HTTP (HLS) session may go without a request before it is closed as `idle`.
    /// Default 30: a player refreshes a live playlist every target duration (2 to 6 s), so
    /// 30 s of silence means it left. Connections (RTMP, RTSP, SRT, HTTP-TS) are never reaped
    /// while connected. At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_sec: Option<u64>,
    /// Seconds any session may last before it is closed (and disconnected) as
    /// `max_lifetime`. Default 0, no limit: a live stream may be watched all day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime_sec: Option<u64>,
    /// Seconds a kicked HTTP fingerprint gets 403 on its requests. Default 60: long enough
    /// that a player's retry loop gives up, short enough that a mistaken kick heals itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kick_ban_sec: Option<u64>,
    /// A MaxMind database (`.mmdb`: GeoIP2 or GeoLite2 Country or City) that fills each
    /// session's `country` when it opens. Default none: `country` is `""`. Read once at
    /// start-up, whole, into memory; a file that cannot be read is logged once (naming it)
    /// and `country` stays `""`, so a missing database never stops the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoip_db_path: Option<String>,
}

impl SessionsSection {
    /// Whether tracking is on (default true).
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// How long an HTTP session may stay idle (default 30 s, at least 1 s).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_sec.unwrap_or(30).max(1))
    }

    /// How long any session may last; `None` for no limit (the default, 0).
    pub fn max_lifetime(&self) -> Option<Duration> {
        match self.max_lifetime_sec.unwrap_or(0) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        }
    }

    /// How long a kicked HTTP fingerprint is refused (default 60 s).
    pub fn kick_ban(&self) -> Duration {
        Duration::from_secs(self.kick_ban_sec.unwrap_or(60))
    }
}
