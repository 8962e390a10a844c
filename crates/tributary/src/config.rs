//! Command line and configuration layering (SPEC §Config).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde_json::{Value, json};
use tributary_domain::config::{ServerConfig, split_host_port};

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

/// Merges the layers and validates the result.
pub(crate) fn load(cli: &Cli) -> anyhow::Result<ServerConfig> {
    let mut figment = Figment::from(Serialized::defaults(ServerConfig::default()));
    match &cli.config {
        Some(path) => {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        None => {
            let default = PathBuf::from("tributary.toml");
            if default.is_file() {
                figment = figment.merge(Toml::file_exact(default));
            }
        }
    }
    figment = figment.merge(Env::prefixed("TRIBUTARY_").split("__"));
    figment = figment.merge(Serialized::defaults(cli_layer(cli)?));
    let config: ServerConfig = figment.extract().context("merging configuration")?;
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .map_err(|e| anyhow::anyhow!("log.level: {e}"))?;
    Ok(config)
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
