//! `tributary`: the live media server binary.
//!
//! Parses the command line, merges configuration (built-in defaults < `tributary.toml` <
//! values saved through the API < `TRIBUTARY_*` environment < flags), starts tracing, opens the engine, serves the API on one
//! HTTP port, starts every persisted enabled stream, and shuts down gracefully on SIGINT or
//! SIGTERM (streams stopped in reverse start order, capped at `shutdown_timeout_sec`).
#![forbid(unsafe_code)]

mod config;
mod http;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};
use tributary_domain::config::{Layers, LogSection, ServerConfig};
use tributary_engine::Engine;

use crate::config::Cli;

/// Sealed segments allowed at once when the open-file limit is unlimited.
const SEALED_UNLIMITED: usize = 1 << 16;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (layers, config) = match config::load(&cli) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("tributary: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        // The merged result includes what was saved through the API (SPEC §Config).
        let config = match tributary_engine::with_saved_config(layers) {
            Ok((layers, note)) => {
                if let Some(note) = note {
                    eprintln!("tributary: {note}");
                }
                match layers.effective() {
                    Ok(config) => config,
                    Err(e) => {
                        eprintln!("tributary: configuration error: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            Err(e) => {
                eprintln!("tributary: cannot read the saved configuration: {e}");
                return ExitCode::FAILURE;
            }
        };
        match toml::to_string_pretty(&config.redacted()) {
            Ok(text) => {
                println!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("tributary: cannot print the configuration: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let log = init_tracing(&config);
    let fd_limit = http::raise_fd_limit();
    // HTTP connections take at most half the descriptors; sealed segments a quarter.
    tributary_engine::pages::set_limit(fd_limit.map_or(SEALED_UNLIMITED, |limit| {
        usize::try_from(limit / 4).unwrap_or(SEALED_UNLIMITED)
    }));
    for key in config.ignored() {
        tracing::warn!(key = %key.path, "{key}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tributary: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(layers, config, fd_limit, log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tributary stopped");
            eprintln!("tributary: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `log.*` changed through the config API reloads: the filter, and the format.
struct LogReload {
    filter: reload::Handle<EnvFilter, Registry>,
    format: reload::Handle<BoxedFormat, Filtered>,
    /// `RUST_LOG` was set at start: it keeps deciding the filter.
    env_filter: bool,
    /// The `log` section last applied.
    applied: LogSection,
}

type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type BoxedFormat = Box<dyn Layer<Filtered> + Send + Sync>;

/// The fmt layer of `format` (`json` or text) on stderr.
fn format_layer(format: &str) -> BoxedFormat {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        Box::new(layer.json())
    } else {
        Box::new(layer)
    }
}

fn init_tracing(config: &ServerConfig) -> LogReload {
    let from_env = EnvFilter::try_from_env("RUST_LOG");
    let env_filter = from_env.is_ok();
    let filter = from_env
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, filter_handle) = reload::Layer::new(filter);
    let (format, format_handle) = reload::Layer::new(format_layer(&config.log.format));
    tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .init();
    LogReload {
        filter: filter_handle,
        format: format_handle,
        env_filter,
        applied: config.log.clone(),
    }
}

impl LogReload {
    /// Follows `log.*` as the configuration changes (SPEC §Config "Hot apply": at once).
    async fn follow(mut self, mut config: tokio::sync::watch::Receiver<Arc<ServerConfig>>) {
        while config.changed().await.is_ok() {
            let log = config.borrow_and_update().log.clone();
            self.apply(&log);
        }
    }

    fn apply(&mut self, log: &LogSection) {
        if log.level != self.applied.level {
            if self.env_filter {
                tracing::warn!(level = %log.level, "log.level changed, but RUST_LOG is set and keeps deciding the filter");
            } else {
                match EnvFilter::try_new(&log.level) {
                    Ok(filter) => match self.filter.reload(filter) {
                        Ok(()) => tracing::info!(level = %log.level, "log level changed"),
                        Err(e) => tracing::warn!(error = %e, "cannot change the log level"),
                    },
                    Err(e) => {
                        tracing::warn!(level = %log.level, error = %e, "log.level not applied")
                    }
                }
            }
        }
        if log.format != self.applied.format {
            match self.format.reload(format_layer(&log.format)) {
                Ok(()) => tracing::info!(format = %log.format, "log format changed"),
                Err(e) => tracing::warn!(error = %e, "cannot change the log format"),
            }
        }
        self.applied = log.clone();
    }
}

async fn run(
    layers: Layers,
    config: ServerConfig,
    fd_limit: Option<u64>,
    log: LogReload,
) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %config.data_dir,
        "tributary starting"
    );
    let shutdown_cap = Duration::from_secs(config.shutdown_timeout_sec);
    let engine = Engine::open(layers).context("opening the engine")?;
    let handle = engine.handle();
    let log = tokio::spawn(log.follow(handle.watch_config()));
    let http_addr = handle.config().server.http_addr.clone();
    engine.start_listeners().await?;

    let listener = TcpListener::bind(&http_addr)
        .await
        .with_context(|| format!("binding the HTTP API on {http_addr}"))?;
    let local = listener.local_addr().context("reading the HTTP address")?;
    handle.set_http_addr(local.to_string());
    tracing::info!(addr = %local, "HTTP API listening");

    let limits = http::HttpLimits::new(fd_limit);
    tracing::info!(
        total = limits.total,
        per_ip = limits.per_ip,
        header_read_sec = limits.header_read.as_secs(),
        idle_sec = limits.idle.as_secs(),
        "HTTP connection limits"
    );
    // Every HTTP server this process runs: the first, and one more each time `POST /config`
    // moves `server.http_addr` (the one it replaces finishes its requests in progress and
    // stops). Each stops with `stop_http`.
    let stop_http = CancellationToken::new();
    let app = tributary_api::router(handle.clone());
    let current = stop_http.child_token();
    let servers = Arc::new(Mutex::new((
        current.clone(),
        vec![tokio::spawn(http::serve(
            listener,
            app.clone(),
            limits,
            current,
        ))],
    )));
    let rebind: tributary_engine::HttpRebind = {
        let servers = Arc::clone(&servers);
        let stop_http = stop_http.clone();
        Arc::new(move |addr: String| {
            let (servers, stop_http, app) = (Arc::clone(&servers), stop_http.clone(), app.clone());
            Box::pin(async move {
                let listener = TcpListener::bind(&addr).await.map_err(|e| e.to_string())?;
                let local = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!(addr = %local, "HTTP API listening");
                let stop = stop_http.child_token();
                let task = tokio::spawn(http::serve(listener, app, limits, stop.clone()));
                let mut servers = servers.lock().unwrap_or_else(|p| p.into_inner());
                let old = std::mem::replace(&mut servers.0, stop);
                servers.1.retain(|task| !task.is_finished());
                servers.1.push(task);
                old.cancel();
                Ok(local.to_string())
            })
        })
    };
    handle.set_http_rebind(rebind);

    engine.boot().await;
    let reconciler = engine.spawn_reconciler();

    wait_for_signal().await;
    tracing::info!("shutting down");
    let graceful = async {
        stop_http.cancel();
        engine.shutdown().await;
        reconciler.abort();
        let tasks = std::mem::take(&mut servers.lock().unwrap_or_else(|p| p.into_inner()).1);
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(shutdown_cap, graceful).await.is_err() {
        tracing::warn!(
            cap_sec = shutdown_cap.as_secs(),
            "shutdown cap reached; exiting anyway"
        );
    }
    log.abort();
    tracing::info!("bye");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
