//! Global configuration written through the API (SPEC §Config: `POST /config`) and applied
//! without a restart.
//!
//! A write is checked by the pure rules of `domain::config::Layers` (pins, masks, `null`
//! sections, validation), then by what this build can apply to a running server
//! ([`hot_apply`]): a change it cannot apply is refused (422 `UNSUPPORTED`) rather than
//! stored and silently left for a restart. Listeners whose settings change (and the HTTP
//! server, through the binary's [`HttpRebind`]) are bound anew before anything is stored, so
//! a port in use fails the request and leaves the old listener serving; then the layer is
//! persisted, the new listeners take over (the old RTMP, RTSP and SRT ones drain for 10 s),
//! the services that keep a copy of a setting get the new one ([`apply_live`]: failover
//! thresholds, the shared SSRF guard, the one file and storage roots handle, play signing,
//! the admin token, hooks, sessions, the running HLS packagers' window and history, the
//! running DASH packagers' window, pairing, track-loss and queue settings, the buffer size
//! for new buffers, the watermark library's directory, checked inside the storage roots and
//! created before the change is stored), and the new configuration is published on the
//! engine's watch, where every setting read at use (`loopback_bypass`, `allowed_hosts`,
//! `public_metrics`) sees it and the binary follows `log.*`. Last come the restarts, each
//! under its stream's lock: a new HLS segment length ([`apply_segment_length`]: the
//! transcoders whose GOP derives from it, then every running packager switched at its next
//! keyframe) and a new FFmpeg (the running transcoders).
//!
//! A setting read by several services is one shared handle they all read at use, written
//! once here: the file and storage roots are one `LiveRoots` (`tributary_domain::roots`), read
//! by stream validation, file inputs, the DVR and the VOD mounts, so a new reader cannot be
//! missed by a fan-out of copies.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use tributary_domain::config::{HotApply, Layers, ServerConfig, Source, WriteError, hot_apply};
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors};
use tributary_store::ConfigRepository;

use std::path::PathBuf;

use tributary_domain::signing::PlaySigner;

use crate::listeners::Bound;
use crate::plane::{roots, ssrf_guard};
use crate::router::PublishAuth;
use crate::security::AdminToken;
use crate::sessions::GeoIp;
use crate::watermarks::Library;
use crate::{EngineHandle, Shared};

/// Binds the HTTP server on a new `host:port` and starts serving there, then lets the old
/// server finish its requests in progress and stop; answers the address bound, or why the
/// bind failed (the old server then keeps serving). The binary, which owns the HTTP server,
/// hands it to [`EngineHandle::set_http_rebind`].
pub type HttpRebind = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

/// Why `POST /config` was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigWriteError {
    /// Fields set by the environment or the command line (409 `PINNED_BY_ENV`).
    #[error("{0}")]
    Pinned(ValidationErrors),
    /// Invalid, not changeable through the API, not applicable without a restart yet, or a
    /// listener that cannot bind its new address (422, every field named).
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The store could not save the layer; nothing changed.
    #[error("saving the configuration: {0}")]
    Store(String),
}

/// `tributary --print-config`: `layers` with the values saved through the API laid over them,
/// read from `<data_dir>/tributary.db` when it exists (nothing is created). A saved layer
/// that is not valid over the file and environment is left out, as at boot, and the reason
/// returned beside the layers.
pub fn with_saved_config(layers: Layers) -> Result<(Layers, Option<String>), crate::OpenError> {
    let bootstrap = layers.effective().map_err(crate::OpenError::Config)?;
    let db = PathBuf::from(&bootstrap.data_dir).join("tributary.db");
    if !db.exists() {
        return Ok((layers, None));
    }
    let store_error = |e: tributary_store::StoreError| crate::OpenError::Store {
        path: db.clone(),
        error: e.to_string(),
    };
    let saved = tributary_store::SqliteStore::open(&db)
        .map_err(store_error)?
        .config_layer()
        .map_err(store_error)?;
    let with_saved = layers.clone().with_store(saved);
    match with_saved.effective() {
        Ok(_) => Ok((with_saved, None)),
        Err(errors) => Ok((
            layers,
            Some(format!(
                "the configuration saved through the API is not valid over the file and \
                 environment and is left out: {errors}"
            )),
        )),
    }
}

impl EngineHandle {
    /// The configuration as it changes: the binary follows `log.*` through it.
    pub fn watch_config(&self) -> tokio::sync::watch::Receiver<Arc<ServerConfig>> {
        self.shared.config.subscribe()
    }

    /// How `server.http_addr` written through the API moves the HTTP server (set once).
    pub fn set_http_rebind(&self, rebind: HttpRebind) {
        let _ = self.shared.http_rebind.set(rebind);
    }

    /// Where each effective value comes from (`GET /config?explain=true`).
    pub async fn config_sources(&self) -> BTreeMap<String, Source> {
        self.shared.layers.lock().await.sources()
    }

    /// `POST /config`: merges `patch` over the effective configuration, persists the fields
    /// it sets, and applies them (module doc). Returns the new effective configuration.
    pub async fn write_config(&self, patch: Value) -> Result<Arc<ServerConfig>, ConfigWriteError> {
        let change = self.change_config(patch, ConfigMode::Merge, false).await?;
        Ok(change.config)
    }

    /// The configuration layer saved through the API (`GET /config/yaml`), secrets as
    /// stored.
    pub async fn saved_config(&self) -> Value {
        self.shared.layers.lock().await.store().clone()
    }

    /// A configuration write as [`write_config`](Self::write_config) checks and applies it,
    /// merging `layer` into the saved layer or replacing it (`PUT /config/yaml`). With
    /// `dry_run`, every check but the listeners' binds runs and nothing changes. Returns the
    /// new effective configuration and the paths that change.
    pub async fn change_config(
        &self,
        layer: Value,
        mode: ConfigMode,
        dry_run: bool,
    ) -> Result<ConfigChange, ConfigWriteError> {
        let shared = &self.shared;
        let mut layers = shared.layers.lock().await;
        let write = match mode {
            ConfigMode::Merge => layers.write(layer),
            ConfigMode::Replace => layers.replace(layer),
        };
        let write = write.map_err(|e| match e {
            WriteError::Pinned(errors) => ConfigWriteError::Pinned(errors),
            WriteError::Invalid(errors) => ConfigWriteError::Invalid(errors),
            other => ConfigWriteError::Invalid(ValidationErrors(vec![FieldError::new(
                "$",
                ErrorCode::InvalidField,
                other.to_string(),
            )])),
        })?;
        let mut rebind = Vec::new();
        let mut not_yet = Vec::new();
        let old = shared.config.borrow().clone();
        for path in &write.changed {
            match hot_apply(path) {
                HotApply::Now => {}
                HotApply::Rebind(listener) => {
                    if !rebind.contains(&listener) {
                        rebind.push(listener);
                    }
                }
                _ => not_yet.push(FieldError::new(
                    path.as_str(),
                    ErrorCode::Unsupported,
                    NOT_YET,
                )),
            }
        }
        if old.hooks.is_some() != write.config.hooks.is_some() {
            not_yet.push(FieldError::new(
                "hooks",
                ErrorCode::Unsupported,
                "switching hooks on or off (a null hooks section) needs a restart: set it in \
                 tributary.toml or the environment and restart; the settings under hooks apply \
                 at once",
            ));
        }
        if !not_yet.is_empty() {
            return Err(ConfigWriteError::Invalid(ValidationErrors(not_yet)));
        }
        // A new library directory, or roots that may leave it out: checked inside the new
        // roots (and created, unless dry) before anything is stored.
        let library = if write
            .changed
            .iter()
            .any(|p| p.starts_with("watermarks") || p.starts_with("security.storage_roots"))
        {
            let roots = roots(&write.config).storage;
            let config = write.config.clone();
            let checked = blocking(move || Library::reconfigure(&config, &roots, !dry_run)).await?;
            Some(checked.map_err(ConfigWriteError::Invalid)?)
        } else {
            None
        };
        let ffmpeg = if write.changed.iter().any(|p| p == "transcoder.ffmpeg_path") {
            Some(probe_ffmpeg(&write.config.transcoder.ffmpeg_path).await?)
        } else {
            None
        };
        let token = if write.changed.iter().any(|p| p == "security.admin_token") {
            let configured = write.config.security.admin_token.clone();
            let dir = shared.data_dir.clone();
            let loaded = blocking(move || AdminToken::load(&configured, &dir)).await?;
            Some(loaded.map_err(|e| {
                ConfigWriteError::Invalid(ValidationErrors(vec![FieldError::new(
                    "security.admin_token",
                    ErrorCode::InvalidField,
                    e.to_string(),
                )]))
            })?)
        } else {
            None
        };
        let geoip = if write.changed.iter().any(|p| p == "sessions.geoip_db_path") {
            let path = write
                .config
                .sessions
                .as_ref()
                .and_then(|s| s.geoip_db_path.clone())
                .unwrap_or_default();
            Some(load_geoip(path).await?)
        } else {
            None
        };
        if dry_run {
            return Ok(ConfigChange {
                config: Arc::new(write.config),
                changed: write.changed,
            });
        }
        let mut bound = Vec::new();
        let mut http = None;
        for listener in rebind {
            if listener == "http" {
                http = Some(write.config.server.http_addr.clone());
                continue;
            }
            match Bound::bind(shared, listener, &write.config.listeners).await {
                Ok(new) => bound.push(new),
                Err(e) => {
                    let field = bind_field(listener, &write.changed);
                    tracing::warn!(field, error = %e, "configuration refused: the new listener cannot bind");
                    return Err(ConfigWriteError::Invalid(ValidationErrors(vec![
                        FieldError::new(
                            field,
                            ErrorCode::InvalidField,
                            format!(
                                "cannot bind {}: {}; the old listener keeps serving",
                                e.addr, e.error
                            ),
                        ),
                    ])));
                }
            }
        }
        if let Some(addr) = http {
            let refuse = |message: String| {
                ConfigWriteError::Invalid(ValidationErrors(vec![FieldError::new(
                    "server.http_addr",
                    ErrorCode::InvalidField,
                    message,
                )]))
            };
            let Some(rebind) = shared.http_rebind.get() else {
                return Err(refuse("this server cannot move its HTTP listener".into()));
            };
            let local = rebind(addr.clone()).await.map_err(|e| {
                tracing::warn!(%addr, error = %e, "configuration refused: the HTTP server cannot bind");
                refuse(format!("cannot bind {addr}: {e}; the old address keeps serving"))
            })?;
            tracing::info!(addr = %local, "HTTP API moved; the old address drains");
            self.set_http_addr(local);
        }
        let store = Arc::clone(&shared.config_store);
        let layer = write.store.clone();
        blocking(move || store.put_config_layer(&layer))
            .await?
            .map_err(|e| ConfigWriteError::Store(e.to_string()))?;
        for new in bound {
            new.install(shared);
        }
        if let Some(token) = token {
            *shared
                .token
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(token);
        }
        apply_live(shared, &write.changed, &write.config);
        if let Some(library) = library {
            // SPEC §Config "Hot apply": the next request reads the new directory.
            shared.media.watermarks.set(library);
        }
        if let Some(geoip) = geoip {
            shared.media.sessions.set_geoip(geoip);
        }
        let config = Arc::new(write.config);
        shared.config.send_replace(Arc::clone(&config));
        *layers = layers.clone().with_store(write.store);
        tracing::info!(changed = ?write.changed, "configuration changed through the API");
        if write
            .changed
            .iter()
            .any(|p| p == "publisher.hls.live_segment_sec")
        {
            apply_segment_length(shared, config.publisher.hls.live_segment_sec).await;
        }
        if let Some((path, report)) = ffmpeg {
            let media = &shared.media;
            media.transcoders.set_ffmpeg(path.clone(), report);
            media.thumbnails.set_ffmpeg_path(path.clone());
            media.manager.set_ffmpeg_path(path);
            // Only the transcoders restart (SPEC §Config "Hot apply"), each under its
            // stream's lock; a stream whose restart fails is stopped and healed by the
            // reconciler, the others go on.
            for code in shared.coordinator.running_streams() {
                if let Err(e) = shared.coordinator.restart_transcoder(&code).await {
                    tracing::warn!(stream = %code, error = %e,
                        "restarting the transcoder with the new FFmpeg failed");
                }
            }
        }
        Ok(ConfigChange {
            config,
            changed: write.changed,
        })
    }
}

/// How a configuration write treats the layer saved through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigMode {
    /// Merge into it (`POST /config`, `PUT /config/yaml?prune=false`).
    Merge,
    /// Replace it whole (`PUT /config/yaml`, a full replace by default).
    Replace,
}

/// A configuration write that passed (or, dry, would pass).
#[derive(Debug, Clone)]
pub struct ConfigChange {
    /// The effective configuration after it.
    pub config: Arc<ServerConfig>,
    /// The leaf paths whose effective value changes, sorted.
    pub changed: Vec<String>,
}

/// Hands the settings that changed to the running services that keep a copy (everything
/// else is read from the configuration watch where it is used).
fn apply_live(shared: &Shared, changed: &[String], config: &ServerConfig) {
    let any = |prefix: &str| {
        changed
            .iter()
            .any(|p| p == prefix || p.starts_with(&format!("{prefix}.")))
    };
    let media = &shared.media;
    if any("manager") {
        let failover = tributary_domain::failover::FailoverConfig::from_manager(&config.manager);
        media.manager.set_failover(failover);
    }
    if any("security.trusted_proxies") {
        let ranges = Arc::new(crate::trusted_proxies(config));
        *shared
            .trusted_proxies
            .write()
            .unwrap_or_else(|p| p.into_inner()) = ranges;
    }
    if any("security.publish_auth") {
        media
            .publish_auth
            .set(PublishAuth::parse(&config.security.publish_auth));
    }
    if any("security.ssrf_guard") || any("security.allow_cidrs") {
        // Inputs, pushes and hooks hold clones of this one guard: their next dial follows.
        media.ssrf_guard.replace(&ssrf_guard(&config.security));
    }
    if any("security.file_input_roots") || any("security.storage_roots") {
        // One write: validation, file inputs, the DVR and the VOD mounts read this handle at
        // each use (`tributary_domain::roots`, "The roots in force").
        media.roots.set(roots(config));
    }
    if any("security.play_signing") {
        media.signer.set(PlaySigner::from_config(&config.security));
    }
    if any("hooks") {
        shared
            .hooks
            .apply(config.hooks.as_ref(), &PathBuf::from(&config.data_dir));
    }
    if any("publisher.hls.live_window") || any("publisher.hls.live_history") {
        let hls = &config.publisher.hls;
        media
            .outputs
            .set_hls_window(hls.live_window, hls.live_history);
    }
    if any("publisher.dash") {
        let dash = config.publisher.dash.clone().unwrap_or_default();
        media
            .outputs
            .set_dash(tributary_publish::DashSettings::from(&dash));
    }
    if any("buffer.capacity") {
        media.buffers.set_capacity(config.buffer.capacity);
    }
    if any("sessions") {
        media
            .sessions
            .apply(&config.sessions.clone().unwrap_or_default());
    }
}

/// `publisher.hls.live_segment_sec` changed (SPEC §Config "Hot apply"): the transcoders
/// whose keyframe interval derives from it restart with the new GOP (only those), each under
/// its stream's lock; then every running packager switches to the new length at its next
/// keyframe, for a restarted transcoder most likely its new FFmpeg's first (its rungs'
/// timelines run on through the restart, so the switch is the one discontinuity). A stream
/// whose restart fails is stopped and healed by the reconciler.
async fn apply_segment_length(shared: &Shared, segment_sec: f64) {
    let media = &shared.media;
    for code in media.transcoders.set_segment_sec(segment_sec) {
        if let Err(e) = shared.coordinator.restart_transcoder(&code).await {
            tracing::warn!(stream = %code, error = %e,
                "restarting the transcoder with the new keyframe interval failed");
        }
    }
    media.outputs.set_hls_segment(segment_sec);
}

/// Probes a `transcoder.ffmpeg_path` about to be saved (SPEC §API `POST /config`): the
/// binary it names and its report when usable; else 422 `FFMPEG_UNUSABLE` naming the field
/// with the probe's errors, logged as the boot probe logs them, and the old binary stays.
async fn probe_ffmpeg(
    configured: &str,
) -> Result<(PathBuf, tributary_transcode::ProbeReport), ConfigWriteError> {
    let report = crate::transcoder::probe_path(configured).await;
    if report.ok {
        let program = crate::transcoder::ffmpeg_program(configured);
        return Ok((PathBuf::from(program), report));
    }
    tracing::error!(
        path = %report.path,
        errors = ?report.errors,
        "FFmpeg unusable: transcoder.ffmpeg_path refused; the transcoders keep the old one"
    );
    Err(ConfigWriteError::Invalid(ValidationErrors(vec![
        FieldError::new(
            "transcoder.ffmpeg_path",
            ErrorCode::FfmpegUnusable,
            format!(
                "FFmpeg is unusable: {}; the transcoders keep running the old one",
                report.errors.join("; ")
            ),
        ),
    ])))
}

/// Reads a `sessions.geoip_db_path` about to be saved (SPEC §Config "Hot apply": `sessions.*`
/// immediately): the database when readable (blank: none); else 422 naming the field, and the
/// database in use stays.
async fn load_geoip(path: String) -> Result<GeoIp, ConfigWriteError> {
    let shown = path.clone();
    let loaded = blocking(move || GeoIp::load(&path)).await?;
    loaded.map_err(|error| {
        tracing::warn!(path = %shown, %error,
            "configuration refused: sessions.geoip_db_path cannot be read; the old database stays");
        ConfigWriteError::Invalid(ValidationErrors(vec![FieldError::new(
            "sessions.geoip_db_path",
            ErrorCode::InvalidField,
            format!("cannot read the GeoIP database {shown:?}: {error}; the database in use stays"),
        )]))
    })
}

/// Runs `call` (file or store work) on the blocking pool; a panic there is a
/// [`ConfigWriteError::Store`], and nothing changed.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ConfigWriteError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| ConfigWriteError::Store(e.to_string()))
}

/// Why a change of a field `hot_apply` calls not yet live is refused on a running server (422
/// `UNSUPPORTED`).
const NOT_YET: &str = "changing this on a running server is not supported yet: set it in \
     tributary.toml or the environment and restart";

/// The field a failed bind of `listener` is reported on: its changed address field, else the
/// listener.
fn bind_field(listener: &str, changed: &[String]) -> String {
    let prefix = format!("listeners.{listener}.");
    ["port", "listen_host", "enabled"]
        .iter()
        .map(|leaf| format!("{prefix}{leaf}"))
        .find(|path| changed.contains(path))
        .unwrap_or_else(|| format!("listeners.{listener}"))
}

#[cfg(test)]
mod tests;
