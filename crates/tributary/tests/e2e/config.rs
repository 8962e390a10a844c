//! `tributary.toml` (SPEC §Config): a file with every section SPEC defines starts the server,
//! each key of a feature that has not landed is named once at start-up; a key SPEC does not
//! define, and a log level that is not one, stop start-up with an error naming them.

use std::process::Command;

use crate::server::{Server, send};
use crate::turn::shared;

/// Every section of SPEC §Config, with keys of features built and not built yet.
const SPEC_CONFIG: &str = r#"
shutdown_timeout_sec = 10

[store]
backend = "sqlite"

[server]
admin_timeout_sec = 120
allowed_hosts = ["tv.example.org"]

[server.cors]
enabled = false

[listeners.rtmp]
play_backlog_sec = 10

[listeners.srt]
latency_ms = 120

[listeners.rtsp]
transport = "both"

[ingestor]
hls_max_segment_buffer = 8

[buffer]
capacity = 1024

[transcoder]
ffmpeg_path = "ffmpeg"
multi_output = true

[publisher.hls]
live_segment_sec = 2.0
segment_format = "ts"

[publisher.dash]
segment_sec = 2

[manager]
input_packet_timeout_sec = 30

[coordinator]
reconcile_interval_sec = 10

[hooks]
worker_count = 4
max_retries = 3

[sessions]
enabled = true
idle_timeout_sec = 30

[watermarks]
dir = "@DATA@/logos"

[dvr]
max_clip_sec = 3600

[autopublish]
enabled = true

[security]
publish_auth = "required"
ssrf_guard = "metadata"

[security.play_signing]
enabled = false

[debug]
fault_injection = false

[log]
level = "info"
"#;

#[test]
fn a_spec_config_starts_and_names_each_unbuilt_key_once() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    let data = dir.path().join("data");
    // The watermark library must lie inside the storage roots (default: the data directory).
    std::fs::write(
        &path,
        SPEC_CONFIG.replace("@DATA@", &data.display().to_string()),
    )
    .unwrap();
    let server = Server::start_args(&data, &[], "off", &["--config", path.to_str().unwrap()]);
    assert_eq!(send("GET", &server.url("/healthz"), None, &[]).status, 200);

    let named = |key: &str| {
        server
            .logged(|line| line["level"] == "WARN" && line["fields"]["key"] == key)
            .len()
    };
    for key in [
        "store.backend",
        "server.cors.enabled",
        "transcoder.multi_output",
        "hooks.worker_count",
    ] {
        assert_eq!(named(key), 1, "{key} is named once at start-up");
    }
    let legacy = server.logged(|line| line["fields"]["key"] == "transcoder.multi_output");
    assert!(
        legacy[0]["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("legacy"),
        "{legacy:?}"
    );
    // Built keys are not named.
    for key in [
        "server.allowed_hosts",
        "ingestor.hls_max_segment_buffer",
        "buffer.capacity",
        "log.level",
        "security.ssrf_guard",
        "sessions.enabled",
        "sessions.idle_timeout_sec",
        "hooks.max_retries",
        "dvr.max_clip_sec",
        "publisher.dash.segment_sec",
        "autopublish.enabled",
        "watermarks.dir",
        "debug.fault_injection",
    ] {
        assert_eq!(named(key), 0, "{key}");
    }
    assert!(
        data.join("logos").is_dir(),
        "the watermark library is created at start"
    );
}

#[test]
fn unknown_keys_and_bad_log_levels_stop_start_up_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, needle) in [
        ("[hooks]\nwroker_count = 4\n", "wroker_count"),
        ("[hookz]\nworker_count = 4\n", "hookz"),
        ("[listeners.rtsp]\nlatency_ms = 120\n", "latency_ms"),
        ("[log]\nlevel = \"verbose\"\n", "log.level"),
        (
            "[security]\nssrf_guard = \"lenient\"\n",
            "security.ssrf_guard",
        ),
        (
            "[security]\nallow_cidrs = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
            "security.allow_cidrs[1]",
        ),
        // LL-HLS parts are fMP4.
        (
            "[publisher.hls]\nlow_latency = true\n",
            "publisher.hls.low_latency",
        ),
        (
            "[publisher.hls]\nsegment_format = \"fmp4\"\nlow_latency = true\npart_sec = 3.0\n",
            "publisher.hls.part_sec",
        ),
        (
            "[autopublish]\nidle_timeout_sec = 10\nsweep_interval_sec = 20\n",
            "autopublish.sweep_interval_sec: must be at least 1 and at most idle_timeout_sec",
        ),
        // PART-HOLD-BACK below 2 × PART-TARGET breaks RFC 8216bis.
        (
            "[publisher.hls]\nsegment_format = \"fmp4\"\nlow_latency = true\n\
             part_hold_back_sec = 0.8\n",
            "publisher.hls.part_hold_back_sec: must be at least 2 × part_sec (1",
        ),
    ] {
        let path = dir.path().join("tributary.toml");
        std::fs::write(&path, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("--config")
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--http", "127.0.0.1:0", "--rtmp", "off", "--srt", "off"])
            .args(["--rtsp", "off"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}: {stderr}");
        assert!(
            stderr.contains("configuration error") && stderr.contains(needle),
            "{toml}: {stderr}"
        );
    }
}
