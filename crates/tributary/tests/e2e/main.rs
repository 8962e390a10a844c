//! End-to-end tests: the real `tributary` binary on ephemeral loopback ports and a temporary
//! data directory, driven by real clients (ARCHITECTURE.md §14).

mod abr;
mod api;
mod architecture;
mod browser;
mod config;
mod copy;
mod dash;
mod deploy;
mod events;
mod failover;
mod harden_api;
mod harden_http;
mod harden_publish;
mod harden_secrets;
mod hls;
mod hls_fmp4;
mod hooks;
mod http_ts;
mod metrics;
mod push_inputs;
mod rtmp;
mod rtmp_fanout;
mod rtmp_hevc;
mod rtmp_limits;
mod rtmp_relay;
mod rtsp_play;
mod rtsp_pull;
mod server;
mod sessions;
mod signing;
mod srt;
mod ssrf;
mod thumbnail;
mod transcode;
mod udp_flood;
