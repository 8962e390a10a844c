//! HLS outputs reading a real hub buffer.

use std::time::Duration;

use tributary_hub::{BufferId, Hub, SessionReason};
use tributary_publish::{HlsRegistry, HlsSettings, PublishError, start_hls};
use tributary_testkit::{ffprobe, probe_streams};

use crate::support::{clip_frames, code, opus, playlist, until, until_listed, uris, video};

#[tokio::test(start_paused = true)]
async fn serves_an_ffmpeg_clip_as_a_live_playlist_with_clean_segments() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("clip");
    let buffer = BufferId::Stream(code.clone());
    let mut writer = hub.create(buffer.clone(), 1024).unwrap();
    let handle = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer.clone(),
        HlsSettings::default(),
    )
    .unwrap();
    assert!(registry.contains(&code));
    assert_eq!(
        registry.get(&code, "index.m3u8"),
        None,
        "404 before a segment"
    );

    let frames = clip_frames();
    for frame in frames {
        writer.write(frame).unwrap();
    }
    until_listed(&registry, &code, 2).await;
    assert!(!handle.is_finished());
    // Deleting the buffer closes the last segment and ends the task.
    hub.delete(&buffer);
    let text = until("the last segment", || {
        playlist(&registry, &code).filter(|p| uris(p).len() == 3)
    })
    .await;
    until("the task to finish", || handle.is_finished().then_some(())).await;

    let uris = uris(&text);
    let first: u64 = uris[0]["seg_".len()..uris[0].len() - 3].parse().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            "#EXT-X-TARGETDURATION:2",
            &format!("#EXT-X-MEDIA-SEQUENCE:{first}"),
            "#EXT-X-DISCONTINUITY-SEQUENCE:0",
            "#EXT-X-INDEPENDENT-SEGMENTS",
        ]
    );
    for (i, uri) in uris.iter().enumerate() {
        assert_eq!(*uri, format!("seg_{}.ts", first + i as u64));
    }
    let extinfs: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse().unwrap())
        .collect();
    assert_eq!(extinfs.len(), 3);
    assert!(
        extinfs.iter().all(|d| (1.99..=2.03).contains(d)),
        "{extinfs:?}"
    );
    let dates = lines
        .iter()
        .filter(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME:"))
        .count();
    assert_eq!(dates, 3);
    assert!(!text.contains("ENDLIST") && !text.contains("#EXT-X-DISCONTINUITY\n"));

    let playlist_asset = registry.get(&code, "index.m3u8").unwrap();
    assert_eq!(playlist_asset.content_type, "application/vnd.apple.mpegurl");
    assert_eq!(playlist_asset.cache_control, "no-cache");
    let segment = registry.get(&code, &uris[0]).unwrap();
    assert_eq!(segment.content_type, "video/mp2t");
    assert_eq!(segment.cache_control, "public, max-age=31536000, immutable");

    // A real player's view of the first segment: h264 1280x720 + aac, nothing at -v error.
    let path = std::env::temp_dir().join(format!("tributary-publish-{}.ts", std::process::id()));
    std::fs::write(&path, &segment.body).unwrap();
    let probed = ffprobe()
        .args(["-v", "error", "-i"])
        .arg(&path)
        .output()
        .unwrap();
    let streams = probe_streams(path.to_str().unwrap());
    let _ = std::fs::remove_file(&path);
    assert!(probed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&probed.stderr),
        "",
        "ffprobe -v error"
    );
    let streams = streams.unwrap();
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_eq!(streams[0].codec_name.as_deref(), Some("h264"));
    assert_eq!(
        (streams[0].width, streams[0].height),
        (Some(1280), Some(720))
    );
    assert_eq!(streams[1].codec_name.as_deref(), Some("aac"));

    // Names the packager did not produce are 404.
    let n = first;
    for name in [
        format!("seg_{}.ts", n + 10),
        "seg_1.ts".to_owned(),
        format!("seg_0{n}.ts"),
        format!("../seg_{n}.ts"),
        "index.m3u8?x=1".to_owned(),
        "index.mpd".to_owned(),
        String::new(),
    ] {
        assert_eq!(registry.get(&code, &name), None, "{name:?}");
    }
    assert_eq!(
        registry.get(&crate::support::code("other"), "index.m3u8"),
        None
    );
    handle.stop();
}

#[tokio::test(start_paused = true)]
async fn retired_segments_expire_after_their_duration_plus_the_playlist_duration() {
    for history in [0, 1] {
        let hub = Hub::new();
        let registry = HlsRegistry::new();
        let code = code("retention");
        let buffer = BufferId::Stream(code.clone());
        let mut writer = hub.create(buffer.clone(), 1024).unwrap();
        let settings = HlsSettings {
            window: 2,
            history,
            ..HlsSettings::default()
        };
        let _handle = start_hls(&registry, &hub, code.clone(), buffer, settings).unwrap();
        // 9 s of video, a keyframe every 2 s: segments n..n+3 close, n+4 stays open. The
        // first frames alone close segment n, which tells n.
        let number = |uri: &str| -> u64 { uri[4..uri.len() - 3].parse().unwrap() };
        for i in 0..51 {
            writer.write(video(i, 50)).unwrap();
        }
        let first = number(&uris(&until_listed(&registry, &code, 1).await)[0]);
        for i in 51..225 {
            writer.write(video(i, 50)).unwrap();
        }
        let text = until("four segments", || {
            playlist(&registry, &code).filter(|p| p.contains(&format!("seg_{}.ts", first + 3)))
        })
        .await;
        assert_eq!(
            uris(&text),
            [
                format!("seg_{}.ts", first + 2),
                format!("seg_{}.ts", first + 3)
            ]
        );
        assert_eq!(
            text.lines().nth(3).unwrap(),
            format!("#EXT-X-MEDIA-SEQUENCE:{}", first + 2)
        );
        assert_eq!(text.matches("#EXTINF:2.000,").count(), 2);
        let fetchable = |n: u64| registry.get(&code, &format!("seg_{n}.ts")).is_some();
        // Both retired segments left at the same moment; each stays for 2 s (its duration)
        // + 4 s (the playlist's).
        assert!(fetchable(first) && fetchable(first + 1));
        tokio::time::advance(Duration::from_millis(5_990)).await;
        assert!(
            fetchable(first) && fetchable(first + 1),
            "history {history}"
        );
        tokio::time::advance(Duration::from_millis(20)).await;
        assert!(!fetchable(first), "history {history}: expired");
        assert_eq!(fetchable(first + 1), history == 1, "history {history}");
        assert!(
            fetchable(first + 2) && fetchable(first + 3),
            "listed segments stay"
        );
        // Later segments push the history out too.
        tokio::time::advance(Duration::from_secs(60)).await;
        for i in 225..425 {
            writer.write(video(i, 50)).unwrap();
        }
        until("four more segments", || fetchable(first + 7).then_some(())).await;
        tokio::time::advance(Duration::from_secs(60)).await;
        until("pruned", || (!fetchable(first + 1)).then_some(())).await;
        assert_eq!(fetchable(first + 5), history == 1);
    }
}

#[tokio::test(start_paused = true)]
async fn stop_removes_the_window_and_a_restart_continues_the_numbering() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("sports/stop");
    let buffer = BufferId::Stream(code.clone());
    let mut writer = hub.create(buffer.clone(), 1024).unwrap();
    let handle = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer.clone(),
        HlsSettings::default(),
    )
    .unwrap();
    // Segments of 2 s made instantly: numbering runs ahead of Unix time.
    for i in 0..300 {
        writer.write(video(i, 50)).unwrap();
    }
    let text = until_listed(&registry, &code, 5).await;
    let last_uri = uris(&text).last().unwrap().clone();
    let last: u64 = last_uri[4..last_uri.len() - 3].parse().unwrap();
    assert!(registry.get(&code, &last_uri).is_some());

    handle.stop();
    assert!(!registry.contains(&code));
    assert_eq!(registry.get(&code, "index.m3u8"), None);
    assert_eq!(registry.get(&code, &last_uri), None);

    let handle = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer,
        HlsSettings::default(),
    )
    .unwrap();
    for i in 300..500 {
        writer.write(video(i, 50)).unwrap();
    }
    let text = until_listed(&registry, &code, 1).await;
    let first_uri = &uris(&text)[0];
    let first: u64 = first_uri[4..first_uri.len() - 3].parse().unwrap();
    assert!(
        first > last,
        "restart at {first} after {last}: URIs never repeat"
    );
    drop(handle);
    assert!(!registry.contains(&code));
}

#[tokio::test(start_paused = true)]
async fn losses_and_new_sessions_mark_discontinuities() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("gaps");
    let buffer = BufferId::Stream(code.clone());
    let mut writer = hub.create(buffer.clone(), 64).unwrap();
    let _handle = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer.clone(),
        HlsSettings::default(),
    )
    .unwrap();
    let mut i = 0;
    // Written a frame at a time, so the output keeps up.
    while i < 150 {
        writer.write(video(i, 25)).unwrap();
        i += 1;
        tokio::task::yield_now().await;
    }
    until_listed(&registry, &code, 2).await;
    // A burst the output cannot keep up with: the buffer holds 64 frames.
    for _ in 0..300 {
        writer.write(video(i, 25)).unwrap();
        i += 1;
    }
    // Then at a pace it follows again, so the segment after the loss closes.
    for _ in 0..100 {
        writer.write(video(i, 25)).unwrap();
        i += 1;
        tokio::task::yield_now().await;
    }
    let text = until("a discontinuity after the loss", || {
        playlist(&registry, &code).filter(|p| p.contains("#EXT-X-DISCONTINUITY\n"))
    })
    .await;
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
    let stats = hub.stats(&buffer).unwrap();
    assert!(
        stats
            .drops
            .iter()
            .any(|d| d.class == "hls" && d.dropped > 0)
    );

    // A reconnect: a new session.
    let before = text.matches("#EXT-X-DISCONTINUITY\n").count();
    writer.start_session(SessionReason::Reconnect);
    for _ in 0..150 {
        writer.write(video(i, 25)).unwrap();
        i += 1;
        tokio::task::yield_now().await;
    }
    until("a discontinuity after the new session", || {
        playlist(&registry, &code).filter(|p| p.matches("#EXT-X-DISCONTINUITY\n").count() > before)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_new_segment_length_applies_at_the_next_keyframe_in_the_same_playlist() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("resegment");
    let buffer = BufferId::Stream(code.clone());
    let mut writer = hub.create(buffer.clone(), 64).unwrap();
    let settings = HlsSettings {
        window: 20,
        ..HlsSettings::default()
    };
    let handle = start_hls(&registry, &hub, code.clone(), buffer, settings).unwrap();
    // Keyframes every second, S = 2 s.
    for i in 0..165 {
        writer.write(video(i, 25)).unwrap();
        tokio::task::yield_now().await;
    }
    until_listed(&registry, &code, 3).await;
    let error = handle.set_segment(0.0).unwrap_err().to_string();
    assert!(error.contains("publisher.hls.live_segment_sec"), "{error}");
    handle.set_segment(4.0).unwrap();
    for i in 165..665 {
        writer.write(video(i, 25)).unwrap();
        tokio::task::yield_now().await;
    }
    let text = until("segments of the new length", || {
        playlist(&registry, &code).filter(|p| p.matches("#EXTINF:4.000,").count() >= 3)
    })
    .await;
    assert!(text.contains("#EXT-X-TARGETDURATION:4\n"), "{text}");
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    let numbers: Vec<u64> = uris(&text)
        .iter()
        .map(|uri| tributary_packager::parse_segment_name(uri).unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    // 2 s segments, the one open at the change (closed at the next keyframe), then 4 s ones
    // from the discontinuity on.
    let (before, after) = text.split_once("#EXT-X-DISCONTINUITY\n").unwrap();
    assert!(before.matches("#EXTINF:2.000,").count() >= 3, "{text}");
    let after: Vec<&str> = after.lines().filter(|l| l.starts_with("#EXTINF")).collect();
    assert!(after.iter().all(|l| *l == "#EXTINF:4.000,"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn uncarried_tracks_become_warnings() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("opus");
    let buffer = BufferId::Stream(code.clone());
    let mut writer = hub.create(buffer.clone(), 1024).unwrap();
    let handle = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer,
        HlsSettings::default(),
    )
    .unwrap();
    for i in 0..75 {
        writer.write(video(i, 25)).unwrap();
        writer.write(opus(2 * i)).unwrap();
        writer.write(opus(2 * i + 1)).unwrap();
    }
    until_listed(&registry, &code, 1).await;
    assert_eq!(
        handle.warnings(),
        ["hls: track 258 (opus) omitted: HLS-TS cannot carry opus"]
    );
}

#[tokio::test]
async fn start_errors_name_the_stream() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("errors");
    let buffer = BufferId::Stream(code.clone());

    let missing = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer.clone(),
        HlsSettings::default(),
    );
    let Err(error) = missing else {
        panic!("subscribed to a missing buffer")
    };
    assert!(matches!(error, PublishError::Subscribe { .. }));
    assert_eq!(
        error.to_string(),
        "stream errors: cannot read buffer errors: buffer errors does not exist"
    );
    assert!(!registry.contains(&code));

    let _writer = hub.create(buffer.clone(), 16).unwrap();
    for (settings, field) in [
        (
            HlsSettings {
                window: 0,
                ..HlsSettings::default()
            },
            "publisher.hls.live_window",
        ),
        (
            HlsSettings {
                segment_sec: f64::NAN,
                ..HlsSettings::default()
            },
            "publisher.hls.live_segment_sec",
        ),
        (
            HlsSettings {
                segment_sec: 0.0,
                ..HlsSettings::default()
            },
            "publisher.hls.live_segment_sec",
        ),
        (
            HlsSettings {
                format: tributary_packager::SegmentFormat::Fmp4,
                part_sec: Some(0.5),
                part_hold_back_sec: Some(0.9),
                ..HlsSettings::default()
            },
            "publisher.hls.part_hold_back_sec",
        ),
    ] {
        let Err(error) = start_hls(
            &registry,
            &hub,
            code.clone(),
            buffer.clone(),
            settings.clone(),
        ) else {
            panic!("accepted {settings:?}")
        };
        assert!(
            matches!(error, PublishError::InvalidSettings { field: f, .. } if f == field),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("stream errors: invalid setting {field}: ")),
            "{error}"
        );
    }

    let _running = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer.clone(),
        HlsSettings::default(),
    )
    .unwrap();
    let Err(error) = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer,
        HlsSettings::default(),
    ) else {
        panic!("two outputs for one stream")
    };
    assert_eq!(error, PublishError::AlreadyRunning { code });
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("no-runtime");
    let buffer = BufferId::Stream(code.clone());
    let _writer = hub.create(buffer.clone(), 16).unwrap();
    let Err(error) = start_hls(
        &registry,
        &hub,
        code.clone(),
        buffer,
        HlsSettings::default(),
    ) else {
        panic!("started without a runtime")
    };
    assert_eq!(error, PublishError::NoRuntime { code });
}

#[tokio::test(start_paused = true)]
async fn an_abr_master_lists_fmp4_variants_that_serve_inits_and_segments() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("ladder");
    let variants = (1..=2)
        .map(|n| tributary_publish::Variant {
            track: format!("track_{n}"),
            bandwidth: 1_000_000 * n,
            average_bandwidth: 900_000 * n,
        })
        .collect();
    registry.register_master(&code, variants, None);
    let settings = HlsSettings {
        format: tributary_packager::SegmentFormat::Fmp4,
        ..HlsSettings::default()
    };
    let mut writers = Vec::new();
    let mut handles = Vec::new();
    for rung in 0..2u16 {
        let buffer = BufferId::Rendition(code.clone(), rung);
        writers.push(hub.create(buffer.clone(), 1024).unwrap());
        handles.push(
            tributary_publish::start_hls_variant(
                &registry,
                &hub,
                code.clone(),
                Some(rung),
                buffer,
                settings.clone(),
            )
            .unwrap(),
        );
    }
    for frame in clip_frames() {
        for writer in &mut writers {
            writer.write(frame.clone()).unwrap();
        }
    }
    let variant = |rung: u16| {
        let asset = registry.get_variant(&code, Some(rung), "index.m3u8")?;
        let text = String::from_utf8(asset.body.to_vec()).unwrap();
        (uris(&text).len() >= 2).then_some(text)
    };
    let first = until("variant 1 lists 2 segments", || variant(0)).await;
    let second = until("variant 2 lists 2 segments", || variant(1)).await;
    let master =
        String::from_utf8(registry.get(&code, "index.m3u8").unwrap().body.to_vec()).expect("UTF-8");
    assert!(master.contains("track_1/index.m3u8") && master.contains("track_2/index.m3u8"));
    assert!(
        master.contains("CODECS=\"avc1.64001f,mp4a.40.2\""),
        "{master}"
    );
    for (rung, text) in [(0, &first), (1, &second)] {
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"), "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"), "{text}");
        let init = registry.get_variant(&code, Some(rung), "init.mp4").unwrap();
        assert_eq!(init.content_type, "video/mp4");
        assert_eq!(&init.body[4..8], b"ftyp");
        for uri in uris(text) {
            assert!(uri.ends_with(".m4s"), "{uri}");
            let segment = registry.get_variant(&code, Some(rung), &uri).unwrap();
            assert_eq!(segment.content_type, "video/mp4");
            assert_eq!(&segment.body[4..8], b"moof");
            let ts = uri.replace(".m4s", ".ts");
            assert_eq!(registry.get_variant(&code, Some(rung), &ts), None);
        }
    }
    assert_eq!(
        uris(&first)[..2],
        uris(&second)[..2],
        "the variants number alike"
    );
}
