//! The media plane: the real services the coordinator drives, built over one hub, and what
//! the listeners and the API reach through them.

use std::path::PathBuf;
use std::sync::Arc;

use tributary_domain::config::ServerConfig;
use tributary_domain::roots::{LiveRoots, Roots};
use tributary_domain::signing::PlaySigner;
use tributary_net::{SsrfGuard, SsrfMode};

use crate::buffers::{HubBuffers, Intakes};
use crate::manager::Manager;
use crate::outputs::Outputs;
use crate::router::{EngineRouter, LivePublishAuth, LiveSigner, PublishAuth};
use crate::services::Services;
use crate::transcoder::Transcoders;
use crate::{caps, dvr, metrics, sessions, thumbnails};

/// The real services, built over one hub.
pub(crate) struct MediaPlane {
    /// The stream manager, for `runtime.inputs[]`.
    pub(crate) manager: Arc<Manager>,
    /// The transcoder, for `runtime.transcoder`.
    pub(crate) transcoders: Arc<Transcoders>,
    /// The thumbnailers, for `GET /{code}/thumbnail.jpg`.
    pub(crate) thumbnails: Arc<thumbnails::Thumbnails>,
    /// The recordings, for `runtime.dvr`, the DVR metrics and the recording routes.
    pub(crate) dvr: Arc<dvr::Dvr>,
    /// The outputs, for the media routes.
    pub(crate) outputs: Arc<Outputs>,
    /// What the listeners ask about publishes and plays.
    pub(crate) router: Arc<EngineRouter>,
    /// What the engine tallies for `GET /metrics` (failovers, refusals).
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// The process's hub, for HTTP-TS plays.
    pub(crate) hub: tributary_hub::Hub,
    /// Plays per stream and in total, shared by the listeners' router and HTTP-TS.
    pub(crate) caps: caps::PlayCaps,
    /// Play sessions of every protocol.
    pub(crate) sessions: Arc<sessions::Sessions>,
    /// The bundle the coordinator drives.
    pub(crate) services: Services,
    /// `security.publish_auth`, shared by the router and auto-publish.
    pub(crate) publish_auth: LivePublishAuth,
    /// `security.play_signing`, when on: every media request and play needs a signed URL.
    pub(crate) signer: LiveSigner,
    /// `security.ssrf_guard` and `allow_cidrs`: one guard shared by input pulls, push targets
    /// and hooks, whose rules a configuration change replaces in place.
    pub(crate) ssrf_guard: SsrfGuard,
    /// The buffers, for `buffer.capacity` changed on a running server.
    pub(crate) buffers: Arc<HubBuffers>,
    /// `security.file_input_roots` and `security.storage_roots`: the one handle that stream
    /// validation, file inputs, the DVR and the VOD mounts read at each use, and a
    /// configuration change writes once (`tributary_domain::roots`, "The roots in force").
    pub(crate) roots: LiveRoots,
    /// The watermark library: the API's `/watermarks` and the transcoders' `asset_id`s read
    /// its directory, which a configuration change replaces.
    pub(crate) watermarks: crate::watermarks::Library,
}

impl MediaPlane {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        let hub = tributary_hub::Hub::new();
        let intakes = Intakes::default();
        let guard = ssrf_guard(&config.security);
        let live_roots = LiveRoots::new(roots(config));
        let watermarks = crate::watermarks::Library::unopened();
        let ingest = tributary_ingest::IngestConfig {
            ffmpeg_path: config.transcoder.ffmpeg_path.clone().into(),
            hls_prefetch: config.ingestor.hls_max_segment_buffer,
            ssrf_guard: guard.clone(),
            roots: live_roots.clone(),
            hub: Some(tributary_ingest::LocalHub(hub.clone())),
        };
        let failover = tributary_domain::failover::FailoverConfig::from_manager(&config.manager);
        let metrics = Arc::new(metrics::Metrics::default());
        let manager = Arc::new(Manager::new(
            intakes.clone(),
            ingest,
            failover,
            Arc::clone(&metrics),
        ));
        let hls = &config.publisher.hls;
        let dash = config.publisher.dash.clone().unwrap_or_default();
        let outputs = Arc::new(
            Outputs::new(
                hub.clone(),
                tributary_publish::HlsSettings::from(hls),
                guard.clone(),
            )
            .with_dash(tributary_publish::DashSettings::from(&dash)),
        );
        let caps = caps::PlayCaps::default();
        let sessions = Arc::new(sessions::Sessions::new(
            &config.sessions.clone().unwrap_or_default(),
        ));
        let signer = LiveSigner::new(PlaySigner::from_config(&config.security));
        let publish_auth = LivePublishAuth::new(PublishAuth::parse(&config.security.publish_auth));
        let router = Arc::new(EngineRouter::new(
            manager.clone(),
            outputs.clone(),
            hub.clone(),
            caps.clone(),
            Arc::clone(&sessions),
            publish_auth.clone(),
            Arc::clone(&metrics),
            signer.clone(),
        ));
        let buffers = Arc::new(HubBuffers::new(
            hub.clone(),
            config.buffer.capacity,
            intakes,
        ));
        let transcoders = Arc::new(Transcoders::new(
            hub.clone(),
            Arc::clone(&buffers),
            config.transcoder.ffmpeg_path.clone().into(),
            PathBuf::from(&config.data_dir).join("transcode"),
            hls.live_segment_sec,
            watermarks.clone(),
        ));
        let thumbnails = Arc::new(thumbnails::Thumbnails::new(
            hub.clone(),
            config.transcoder.ffmpeg_path.clone().into(),
            PathBuf::from(&config.data_dir).join("thumbnails"),
        ));
        let dvr_section = config.dvr.clone().unwrap_or_default();
        let dvr = Arc::new(dvr::Dvr::new(
            hub.clone(),
            dvr_section.root(&config.data_dir),
            dvr_section,
            live_roots.clone(),
        ));
        let services = Services {
            buffers: buffers.clone(),
            inputs: manager.clone(),
            outputs: outputs.clone(),
            transcoder: transcoders.clone(),
            dvr: dvr.clone(),
            thumbnails: thumbnails.clone(),
        };
        Self {
            manager,
            transcoders,
            thumbnails,
            dvr,
            outputs,
            router,
            metrics,
            hub,
            caps,
            sessions,
            services,
            publish_auth,
            signer,
            ssrf_guard: guard,
            buffers,
            roots: live_roots,
            watermarks,
        }
    }

    pub(crate) fn services(&self) -> Services {
        self.services.clone()
    }
}

/// The SSRF guard `security` configures. [`ServerConfig::validate`] refused any other mode
/// name and any range that does not parse; were one to get here, the guard fails closed
/// (`strict`, the range not exempt).
pub(crate) fn ssrf_guard(security: &tributary_domain::config::SecuritySection) -> SsrfGuard {
    let mode = security.ssrf_guard.parse().unwrap_or(SsrfMode::Strict);
    let allow = security
        .allow_cidrs
        .iter()
        .filter_map(|cidr| tributary_domain::config::parse_cidr(cidr))
        .collect();
    SsrfGuard::new(mode, allow)
}

/// `security.file_input_roots` and `security.storage_roots` (absent: the data directory) as
/// paths.
pub(crate) fn roots(config: &ServerConfig) -> Roots {
    Roots {
        file_input: config
            .security
            .file_input_roots
            .iter()
            .map(PathBuf::from)
            .collect(),
        storage: crate::vod::storage_roots(config),
    }
}
