//! The store's integration suite (one test binary, ARCHITECTURE.md §14).
//!
//! - [`conformance`]: what every [`tributary_store::StreamRepository`] must do, written once,
//!   generic over the trait, and instantiated per backend (SQLite in memory and on disk).
//! - [`sqlite_file`]: what only an on-disk SQLite database has: reopening, file modes, WAL,
//!   schema versions, rows broken behind the store's back, and surviving `kill -9`.

mod conformance;
mod sqlite_file;

use tributary_domain::{Stream, StreamCode};

/// A valid code for tests.
fn code(text: &str) -> StreamCode {
    StreamCode::parse(text).expect("test code is valid")
}

/// A stream that uses every nested object: SPEC's example plus template, tags, input options,
/// push, DVR, watermark and thumbnail.
fn complex_stream(text: &str) -> Stream {
    let json = serde_json::json!({
        "code": text,
        "template": "sports",
        "name": "Match Day",
        "description": "Cup final, both halves",
        "tags": ["sport", "final"],
        "stream_key": "b41c7e09d2",
        "disabled": true,
        "inputs": [
            {"url": "publish://", "priority": 0},
            {"url": "srt://standby.example.org:7001?streamid=match&latency=250", "priority": 1,
             "hot_standby": true, "packet_timeout_sec": 12},
            {"url": "https://origin.example.org/match/master.m3u8", "priority": 2,
             "headers": {"X-Origin-Token": "t0k", "User-Agent": "tributary"},
             "params": {"token": "abc"}, "net": {"timeout_sec": 20, "insecure_tls": true}},
            {"url": "udp://239.1.1.1:5000", "priority": 3, "program": 2}
        ],
        "transcoder": {
            "mode": "per_profile",
            "global": {"hw": "nvenc", "fps": 25, "gop": 50, "deviceid": 1},
            "decoder": {"name": "h264_cuvid"},
            "audio": {"codec": "aac", "bitrate": 96, "normalize": true, "volume": "-6dB"},
            "video": {"interlace": "auto", "profiles": [
                {"width": 1280, "height": 720, "bitrate": 3000, "max_bitrate": 3600,
                 "framerate": 29.97, "keyframe_interval": 2.0, "bframes": 0},
                {"width": 854, "height": 480, "bitrate": 1200, "preset": "faster",
                 "codec": "h265", "sar": "1:1", "resize_mode": "crop"}
            ]},
            "extra_args": ["-tune", "zerolatency"]
        },
        "protocols": {"hls": true, "dash": true, "rtmp": true},
        "push": [
            {"url": "rtmps://live.example.com/app/SECRET", "enabled": true, "comment": "platform"},
            {"url": "rtmp://backup.example.com/live/KEY", "timeout_sec": 3, "limit": 4,
             "profile": "track_2"}
        ],
        "dvr": {"enabled": true, "segment_duration": 6, "retention_sec": 43200,
                "storage_path": "/srv/dvr", "max_size_gb": 20.5},
        "watermark": {"enabled": true, "type": "text", "text": "ON AIR", "position": "top_left",
                      "font_size": 32, "font_color": "#FFFFFF@0.8", "opacity": 0.75,
                      "offset_x": -4, "resize": true},
        "thumbnail": {"enabled": true, "interval_sec": 5, "width": 640, "quality": 3}
    });
    serde_json::from_value(json).expect("the test stream decodes")
}

/// The engine holds the store as `Arc<dyn StreamRepository>`: the trait must stay object safe.
#[test]
fn repository_works_as_a_trait_object() {
    use std::sync::Arc;

    use tributary_store::{Expect, SqliteStore, StreamRepository};

    let repo: Arc<dyn StreamRepository> = Arc::new(SqliteStore::open_in_memory().expect("open"));
    let upserted = repo
        .upsert(&Stream::new(code("dyn")), Expect::Absent)
        .expect("create");
    assert_eq!(repo.get(&code("dyn")).expect("get"), Some(upserted.stored));
}
