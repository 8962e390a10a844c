//! Command line and configuration layering (SPEC §Config): each layer read into its own JSON
//! document (`domain::config::Layers` merges them, and the engine lays the values saved
//! through the API between the file and the environment), so `GET /config?explain=true` can
//! say where a value comes from and the API can refuse a field the environment pins.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde_json::{Value, json};
use tributary_domain::config::{Layers, ServerConfig, split_host_port};

/// Tributary: a high-availability live media server.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about)]
pub(crate) struct Cli {
    /// Configuration file (default: ./tributary.toml if present).
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (store, admin token).
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<String>,
    /// HTTP API address, host:port.
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<String>,
    /// RTMP listener, host:port or `off`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) rtmp: Option<String>,
    /// SRT listener, host:port or `off`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) srt: Option<String>,
    /// RTSP listener, host:port or `off`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) rtsp: Option<String>,
    /// Print the merged configuration (secrets masked) and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
}

/// Reads the file, environment and command-line layers and validates their merge (the
/// layer saved through the API joins them when the engine opens the store). Returns the
/// layers and their merge.
pub(crate) fn load(cli: &Cli) -> anyhow::Result<(Layers, ServerConfig)> {
    let path = match &cli.config {
        Some(path) => {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            Some(path.clone())
        }
        None => Some(PathBuf::from("tributary.toml")).filter(|p| p.is_file()),
    };
    let file = match &path {
        Some(path) => Figment::from(Toml::file_exact(path))
            .extract::<Value>()
            .with_context(|| format!("reading {}", path.display()))?,
        None => json!({}),
    };
    let env = Figment::from(Env::prefixed("TRIBUTARY_").split("__"))
        .extract::<Value>()
        .context("reading TRIBUTARY_* environment variables")?;
    let layers = Layers::new(file, env, cli_layer(cli)?);
    let config = layers.effective().map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .map_err(|e| anyhow::anyhow!("log.level: {e}"))?;
    Ok((layers, config))
}

/// The command-line flags as a partial configuration document.
fn cli_layer(cli: &Cli) -> anyhow::Result<Value> {
    let mut doc = json!({});
    if let Some(dir) = &cli.data_dir {
        doc["data_dir"] = json!(dir);
    }
    if let Some(http) = &cli.http {
        if split_host_port(http).is_none() {
            bail!("--http must be host:port, got {http:?}");
        }
        doc["server"] = json!({"http_addr": http});
    }
    let mut listeners = json!({});
    for (name, flag) in [("rtmp", &cli.rtmp), ("srt", &cli.srt), ("rtsp", &cli.rtsp)] {
        let Some(value) = flag else { continue };
        listeners[name] = if value == "off" {
            json!({"enabled": false})
        } else {
            let Some((host, port)) = split_host_port(value) else {
                bail!("--{name} must be host:port or off, got {value:?}");
            };
            json!({"enabled": true, "listen_host": host, "port": port})
        };
    }
    if listeners.as_object().is_some_and(|m| !m.is_empty()) {
        doc["listeners"] = listeners;
    }
    Ok(doc)
}
