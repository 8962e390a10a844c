//! DASH beside HLS in one output, reading a real hub buffer.

use tributary_hub::{BufferId, Hub};
use tributary_publish::{DashSettings, HlsRegistry, HlsSettings, start_hls};
use tributary_testkit::probe_streams;

use crate::support::{VIDEO, clip_frames, code, frames_of, playlist, until, uris};

/// The MPD of `code` as text, if served.
fn mpd(registry: &HlsRegistry, code: &tributary_media::StreamCode) -> Option<String> {
    let asset = registry.get(code, "index.mpd")?;
    assert_eq!(asset.content_type, "application/dash+xml");
    assert_eq!(asset.cache_control, "no-store, max-age=0, must-revalidate");
    Some(String::from_utf8(asset.body.to_vec()).expect("the MPD is UTF-8"))
}

/// `(t, d)` of each `<S>` of the `index`-th SegmentTimeline, `r` expanded.
fn entries(mpd: &str, index: usize) -> Vec<(u64, u64)> {
    let body = mpd.split("<SegmentTimeline>").nth(index + 1).unwrap();
    let body = body.split("</SegmentTimeline>").next().unwrap();
    let attr = |tag: &str, name: &str| {
        let key = format!(" {name}=\"");
        let at = tag.find(&key)? + key.len();
        tag[at..].split('"').next()?.parse::<u64>().ok()
    };
    let mut out = Vec::new();
    let mut next = 0;
    for s in body.split("<S").skip(1) {
        let tag = s.split("/>").next().unwrap();
        let (t, d) = (attr(tag, "t").unwrap_or(next), attr(tag, "d").unwrap());
        let repeat = attr(tag, "r").unwrap_or(0);
        for i in 0..=repeat {
            out.push((t + i * d, d));
        }
        next = t + (repeat + 1) * d;
    }
    out
}

/// What ffprobe reads of `bytes` (an init and its segments), written to a temporary file
/// named after `label`.
fn probe_mp4(label: &str, bytes: &[u8]) -> Vec<tributary_testkit::ProbeStream> {
    let path = std::env::temp_dir().join(format!(
        "tributary-publish-dash-{label}-{}.mp4",
        std::process::id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let streams = probe_streams(path.to_str().unwrap());
    let _ = std::fs::remove_file(&path);
    streams.unwrap()
}

#[tokio::test(start_paused = true)]
async fn dash_cuts_and_numbers_as_hls_and_its_segments_decode() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("both");
    let buffer = BufferId::Stream(code.clone());
    let mut writer = hub.create(buffer.clone(), 1024).unwrap();
    let settings = HlsSettings {
        dash: Some(DashSettings::default()),
        ..HlsSettings::default()
    };
    let handle = start_hls(&registry, &hub, code.clone(), buffer.clone(), settings).unwrap();
    assert_eq!(mpd(&registry, &code), None, "404 before a segment");
    for frame in clip_frames() {
        writer.write(frame).unwrap();
    }
    hub.delete(&buffer);
    until("the task to finish", || handle.is_finished().then_some(())).await;

    let hls = playlist(&registry, &code).unwrap();
    let text = mpd(&registry, &code).unwrap();
    assert_eq!(text.matches("<Period").count(), 1, "{text}");
    assert!(text.contains("width=\"1280\" height=\"720\""), "{text}");
    assert!(text.contains("audioSamplingRate=\"48000\""), "{text}");
    // The same cuts and numbers as HLS: the first number, the count, the durations.
    let uris = uris(&hls);
    let first: u64 = uris[0]["seg_".len()..uris[0].len() - 3].parse().unwrap();
    assert!(
        text.contains(&format!("timescale=\"90000\" startNumber=\"{first}\"")),
        "{text}\n{hls}"
    );
    let video = entries(&text, 0);
    assert_eq!(video.len(), uris.len(), "{text}\n{hls}");
    let extinfs: Vec<f64> = hls
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse().unwrap())
        .collect();
    // The last, closed by the end of the stream, lasts to its last frame's end: in HLS that
    // may be an audio frame's.
    for ((_, d), extinf) in video.iter().zip(&extinfs).take(extinfs.len() - 1) {
        assert!(
            (*d as f64 / 90_000.0 - extinf).abs() < 0.002,
            "{text}\n{hls}"
        );
    }
    for pair in video.windows(2) {
        assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "gap or overlap: {text}");
    }
    let audio = entries(&text, 1);
    assert!(audio.len() >= 2, "{text}");

    // init + segments of each track decode as what they carry.
    for (video, init, count) in [
        (true, "init_v.mp4", video.len()),
        (false, "init_a.mp4", audio.len()),
    ] {
        let kind = if video { 'v' } else { 'a' };
        let mut bytes = registry.get(&code, init).unwrap().body.to_vec();
        let start: u64 = text
            .split(&format!("initialization=\"init_{kind}.mp4\""))
            .next()
            .and_then(|head| head.rsplit("startNumber=\"").next())
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        for n in start..start + count as u64 {
            let asset = registry
                .get(&code, &format!("seg_{kind}_{n:06}.m4s"))
                .unwrap_or_else(|| panic!("seg_{kind}_{n}: {text}"));
            assert_eq!(
                asset.content_type,
                if video { "video/mp4" } else { "audio/mp4" }
            );
            bytes.extend_from_slice(&asset.body);
        }
        let streams = probe_mp4(&kind.to_string(), &bytes);
        assert_eq!(streams.len(), 1, "{streams:?}");
        let name = streams[0].codec_name.as_deref();
        assert_eq!(name, Some(if video { "h264" } else { "aac" }));
    }
    // Names no packager wrote, and the MPD under a rung, are 404.
    for name in [
        "seg_v_1.m4s",
        "seg_x_000001.m4s",
        "track_1/index.mpd",
        "init.mp4",
    ] {
        assert_eq!(registry.get(&code, name), None, "{name}");
    }
    handle.stop();
    assert_eq!(registry.get(&code, "index.mpd"), None);
    assert_eq!(registry.get(&code, "init_v.mp4"), None);
}

#[tokio::test(start_paused = true)]
async fn a_dash_only_output_serves_no_hls() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("dashonly");
    let buffer = BufferId::Stream(code.clone());
    let mut writer = hub.create(buffer.clone(), 1024).unwrap();
    let settings = HlsSettings {
        hls: false,
        dash: Some(DashSettings {
            audio: false,
            ..DashSettings::default()
        }),
        ..HlsSettings::default()
    };
    let handle = start_hls(&registry, &hub, code.clone(), buffer.clone(), settings).unwrap();
    for frame in clip_frames() {
        writer.write(frame).unwrap();
    }
    let text = until("the MPD", || mpd(&registry, &code)).await;
    assert_eq!(playlist(&registry, &code), None);
    // This rung does not package audio: no audio AdaptationSet.
    assert!(!text.contains("contentType=\"audio\""), "{text}");
    assert!(registry.get(&code, "init_a.mp4").is_none());
    assert!(registry.get(&code, "init_v.mp4").is_some());
    handle.stop();
}

/// A running output of `name` with DASH as `dash` says, fed by the returned writer.
fn dash_output(
    name: &str,
    dash: DashSettings,
) -> (
    Hub,
    HlsRegistry,
    tributary_media::StreamCode,
    BufferId,
    tributary_hub::Writer,
    tributary_publish::HlsHandle,
) {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code(name);
    let buffer = BufferId::Stream(code.clone());
    let writer = hub.create(buffer.clone(), 4096).unwrap();
    let settings = HlsSettings {
        dash: Some(dash),
        ..HlsSettings::default()
    };
    let handle = start_hls(&registry, &hub, code.clone(), buffer.clone(), settings).unwrap();
    (hub, registry, code, buffer, writer, handle)
}

/// Writes `frames` with their timestamps moved `offset` ticks on, letting the output run
/// after each.
async fn write_shifted(
    writer: &mut tributary_hub::Writer,
    frames: impl IntoIterator<Item = tributary_media::Frame>,
    offset: i64,
) {
    for mut frame in frames {
        frame.pts = tributary_media::Ts90(frame.pts.0 + offset);
        frame.dts = tributary_media::Ts90(frame.dts.0 + offset);
        writer.write(frame).unwrap();
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_codec_change_opens_a_period_with_its_own_init() {
    let (hub, registry, code, buffer, mut writer, handle) =
        dash_output("switching", DashSettings::default());
    // 6 s of H.264 + AAC, then the source switches to H.265 + AAC: a new session 6 s on.
    let h265 = frames_of(&tributary_testkit::ClipSpec {
        seconds: 6,
        gop: 60,
        hevc: true,
        ..tributary_testkit::ClipSpec::default()
    });
    let offset = 6 * 90_000 + 90_000;
    write_shifted(&mut writer, clip_frames(), 0).await;
    // What ingest does on a codec change (SPEC §Timeline `config_change`).
    writer.start_session(tributary_hub::SessionReason::ConfigChange);
    write_shifted(&mut writer, h265, offset).await;
    hub.delete(&buffer);
    until("the task to finish", || handle.is_finished().then_some(())).await;

    let text = mpd(&registry, &code).unwrap();
    assert_eq!(text.matches("<Period").count(), 2, "{text}");
    assert!(text.contains("<Period id=\"0\" start=\"PT0S\">"), "{text}");
    assert!(text.contains("codecs=\"avc1."), "{text}");
    assert!(text.contains("codecs=\"hvc1."), "{text}");
    assert!(text.contains("presentationTimeOffset=\""), "{text}");
    // The new Period's video: its own init (named after the new session), and with its
    // segments it decodes as H.265.
    let second = text.split("<Period id=\"").nth(2).unwrap();
    let init = second
        .split("initialization=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert!(init.starts_with("init_v_"), "{text}");
    let start: u64 = second
        .split("startNumber=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let mut bytes = registry.get(&code, init).unwrap().body.to_vec();
    for n in start..start + 2 {
        bytes.extend_from_slice(
            &registry
                .get(&code, &format!("seg_v_{n:06}.m4s"))
                .unwrap()
                .body,
        );
    }
    let streams = probe_mp4("period", &bytes);
    assert_eq!(
        streams[0].codec_name.as_deref(),
        Some("hevc"),
        "{streams:?}"
    );
    // The first Period's init is still served.
    assert!(registry.get(&code, "init_v.mp4").is_some());
    handle.stop();
}

/// The (t, d) of the audio timeline (the last SegmentTimeline of a one-Period MPD).
fn audio_entries(text: &str) -> Vec<(u64, u64)> {
    entries(text, text.matches("<SegmentTimeline>").count() - 1)
}

#[tokio::test(start_paused = true)]
async fn audio_waits_for_the_sessions_first_video_idr() {
    let (hub, registry, code, buffer, mut writer, handle) =
        dash_output("paired", DashSettings::default());
    let frames = clip_frames();
    write_shifted(&mut writer, frames.clone(), 0).await;
    // A new session 7 s on whose video starts 2 s after its audio (its first IDR).
    writer.start_session(tributary_hub::SessionReason::Failover);
    let v0 = frames.iter().find(|f| f.track == VIDEO).unwrap().pts.0;
    let offset = 7 * 90_000;
    let late_video = frames
        .into_iter()
        .filter(|f| f.track != VIDEO || f.pts.0 >= v0 + 2 * 90_000);
    write_shifted(&mut writer, late_video, offset).await;
    hub.delete(&buffer);
    until("the task to finish", || handle.is_finished().then_some(())).await;
    let text = mpd(&registry, &code).unwrap();
    assert_eq!(text.matches("<Period").count(), 1, "{text}");
    // The second session's first audio segment starts with its first video IDR, not 2 s
    // before it: the audio before it is left out.
    let idr = (v0 + offset + 2 * 90_000) * 48_000 / 90_000;
    let audio = audio_entries(&text);
    let after: Vec<_> = audio
        .iter()
        .filter(|(t, _)| *t as i64 > (v0 + 6 * 90_000) * 48_000 / 90_000)
        .collect();
    let first = after.first().unwrap_or_else(|| panic!("{text}"));
    assert!(
        (first.0 as i64 - idr).abs() < 1024 * 2,
        "audio starts at {} not at the IDR {idr}: {text}",
        first.0
    );
    assert_eq!(
        handle.dash_dropped(),
        Some(0),
        "the default queue held it all"
    );
}

/// Audio that waits for video in a queue of `queue_frames` drops what does not fit, and the
/// output counts it (`tributary_dash_queue_dropped_frames_total`).
#[tokio::test(start_paused = true)]
async fn audio_waiting_in_a_full_queue_is_dropped_and_counted() {
    const QUEUE: usize = 8;
    let dash = DashSettings {
        queue_frames: QUEUE,
        ..DashSettings::default()
    };
    let (hub, registry, code, buffer, mut writer, handle) = dash_output("queued", dash);
    let frames = clip_frames();
    // The session's video starts 2 s after its audio (within the 3 s pairing time): every
    // audio frame before its first IDR waits, and the queue holds 8 of them.
    let v0 = frames.iter().find(|f| f.track == VIDEO).unwrap().pts.0;
    let late_video: Vec<_> = frames
        .into_iter()
        .filter(|f| f.track != VIDEO || f.pts.0 >= v0 + 2 * 90_000)
        .collect();
    let waiting = late_video
        .iter()
        .take_while(|f| !(f.track == VIDEO && f.keyframe))
        .filter(|f| f.track != VIDEO)
        .count();
    assert!(
        waiting > QUEUE + 40,
        "{waiting} audio frames before the IDR"
    );
    write_shifted(&mut writer, late_video, 0).await;
    let dropped = (waiting - QUEUE) as u64;
    until("the drops counted", || {
        (handle.dash_dropped() == Some(dropped)).then_some(())
    })
    .await;
    hub.delete(&buffer);
    until("the task to finish", || handle.is_finished().then_some(())).await;
    // The audio after the IDR flows: its segments are listed.
    let text = mpd(&registry, &code).unwrap();
    assert!(!audio_entries(&text).is_empty(), "{text}");
    assert_eq!(handle.dash_dropped(), Some(dropped));
}

#[tokio::test(start_paused = true)]
async fn a_silent_track_is_gone_and_its_last_segment_listed() {
    let dash = DashSettings {
        track_loss_sec: 1.0,
        ..DashSettings::default()
    };
    let (_hub, registry, code, _buffer, mut writer, handle) = dash_output("lossy", dash);
    let frames = clip_frames();
    let a0 = frames.iter().find(|f| f.track != VIDEO).unwrap().pts.0;
    // Audio stops 3 s in; video goes on to 6 s.
    for frame in frames {
        if frame.track != VIDEO && frame.pts.0 >= a0 + 3 * 90_000 {
            continue;
        }
        writer.write(frame).unwrap();
        tokio::task::yield_now().await;
    }
    // While the stream still runs, the audio's last (short) segment is listed: audio is
    // gone, its open segment closed.
    let text = until("the audio's last segment listed", || {
        let text = mpd(&registry, &code)?;
        (audio_entries(&text).len() == 2).then_some(text)
    })
    .await;
    let audio = audio_entries(&text);
    let end = audio[1].0 + audio[1].1;
    assert!(
        end.abs_diff(audio[0].0 + 3 * 48_000) < 2 * 1024,
        "the audio ends 3 s in: {text}"
    );
    assert!(!handle.is_finished());
    handle.stop();
}

/// Starts the DASH packager of `rung` of `code`'s ladder, the audio on rung 0, and the
/// writer of its rendition buffer.
fn dash_rung(
    hub: &Hub,
    registry: &HlsRegistry,
    code: &tributary_media::StreamCode,
    rung: u16,
) -> (tributary_hub::Writer, tributary_publish::HlsHandle) {
    let buffer = BufferId::Rendition(code.clone(), rung);
    let writer = hub.create(buffer.clone(), 4096).unwrap();
    let settings = HlsSettings {
        hls: false,
        dash: Some(DashSettings {
            audio: rung == 0,
            ..DashSettings::default()
        }),
        ..HlsSettings::default()
    };
    let handle = tributary_publish::start_hls_variant(
        registry,
        hub,
        code.clone(),
        Some(rung),
        buffer,
        settings,
    )
    .unwrap();
    (writer, handle)
}

/// The master's variants of a ladder of `rungs` rungs.
fn variants(rungs: u64) -> Vec<tributary_publish::Variant> {
    (1..=rungs)
        .map(|n| tributary_publish::Variant {
            track: format!("track_{n}"),
            bandwidth: 1_000_000 * n,
            average_bandwidth: 900_000 * n,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_ladder_change_keeps_the_mpd_and_opens_a_period_with_the_new_rungs() {
    let hub = Hub::new();
    let registry = HlsRegistry::new();
    let code = code("ladder2");
    let grid = Some(std::time::Duration::from_secs(2));
    registry.register_master(&code, variants(2), grid);
    let (mut rungs, mut handles): (Vec<_>, Vec<_>) = (0..2)
        .map(|rung| dash_rung(&hub, &registry, &code, rung))
        .unzip();
    for frame in clip_frames() {
        for writer in &mut rungs {
            writer.write(frame.clone()).unwrap();
        }
        tokio::task::yield_now().await;
    }
    let before = until("2 video segments", || {
        let text = mpd(&registry, &code)?;
        (entries(&text, 0).len() >= 2).then_some(text)
    })
    .await;
    assert_eq!(before.matches("<Period").count(), 1, "{before}");

    // A third rung, as the engine adds one: the change first, then the master, then its
    // packager; the first two package on.
    registry.dash_ladder_changed(&code, 3);
    registry.register_master(&code, variants(3), grid);
    let pending = mpd(&registry, &code).unwrap();
    assert!(
        !pending.contains("track_3/"),
        "a pending rung is listed:\n{pending}"
    );
    let (writer, handle) = dash_rung(&hub, &registry, &code, 2);
    rungs.push(writer);
    handles.push(handle);
    let later: Vec<_> = clip_frames()
        .into_iter()
        .map(|mut frame| {
            frame.pts.0 += 6 * 90_000;
            frame.dts.0 += 6 * 90_000;
            frame
        })
        .collect();
    for frame in later {
        for writer in &mut rungs {
            writer.write(frame.clone()).unwrap();
        }
        tokio::task::yield_now().await;
    }
    for rung in 0..3 {
        hub.delete(&BufferId::Rendition(code.clone(), rung));
    }
    for handle in &handles {
        until("the task to finish", || handle.is_finished().then_some(())).await;
    }

    let after = mpd(&registry, &code).unwrap();
    let attr = |text: &str| {
        text.split("availabilityStartTime=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    };
    assert_eq!(attr(&before), attr(&after), "availabilityStartTime moved");
    let periods: Vec<&str> = after.split("<Period id=\"").skip(1).collect();
    assert_eq!(periods.len(), 2, "{after}");
    assert!(!periods[0].contains("track_3/"), "{after}");
    assert_eq!(periods[0].matches("<Representation id=\"v").count(), 2);
    assert_eq!(periods[1].matches("<Representation id=\"v").count(), 3);
    assert_eq!(periods[1].matches("<Representation id=\"a\"").count(), 1);
    // The new Period's id is its first number, where the new rung's segments start.
    let id: &str = periods[1].split('"').next().unwrap();
    let third = periods[1].split("track_3/").next().unwrap();
    let start_number = third
        .rsplit("startNumber=\"")
        .next()
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(id, start_number, "{after}");
    assert!(
        periods[1].contains("initialization=\"track_3/init_v.mp4\""),
        "{after}"
    );
    for handle in handles {
        handle.stop();
    }
}

#[tokio::test(start_paused = true)]
async fn a_running_output_takes_a_new_dash_window_and_track_loss_at_once() {
    let (_hub, registry, code, _buffer, mut writer, handle) =
        dash_output("retuned", DashSettings::default());
    let frames = clip_frames();
    write_shifted(&mut writer, frames.clone(), 0).await;
    // Keyframes every 2 s: two video segments out, the third open.
    let text = until("2 video segments listed", || {
        let text = mpd(&registry, &code)?;
        (entries(&text, 0).len() == 2).then_some(text)
    })
    .await;
    assert!(text.contains("timeShiftBufferDepth=\"PT24S\""), "{text}");
    let first = text
        .split("startNumber=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();

    // A window of 1: the oldest segment leaves the MPD at once (still fetchable), the depth
    // says S × 1; the run's audio is kept whatever the settings say.
    handle
        .set_dash(DashSettings {
            window: 1,
            track_loss_sec: 1.0,
            audio: false,
            ..DashSettings::default()
        })
        .unwrap();
    let text = until("1 video segment listed", || {
        let text = mpd(&registry, &code)?;
        (entries(&text, 0).len() == 1).then_some(text)
    })
    .await;
    assert!(text.contains("timeShiftBufferDepth=\"PT2S\""), "{text}");
    assert!(registry.get(&code, &format!("seg_v_{first}.m4s")).is_some());

    // The new track-loss time applies: audio silent for 1 s while video flows is gone, its
    // open segment listed while the stream still runs.
    let a0 = frames.iter().find(|f| f.track != VIDEO).unwrap().pts.0;
    let six = 6 * 90_000;
    let video_only = frames
        .into_iter()
        .filter(|f| f.track == VIDEO || f.pts.0 < a0 + 90_000);
    write_shifted(&mut writer, video_only, six).await;
    // Its last segment lasts the 1 s of audio (at the default 6 s it would still be open:
    // video goes on only 5 s past the audio).
    until("the audio's 1 s segment listed", || {
        let text = mpd(&registry, &code)?;
        let (_, d) = audio_entries(&text).last().copied()?;
        (24_000..=57_600).contains(&d).then_some(())
    })
    .await;
    assert!(!handle.is_finished());
    handle.stop();
}

#[tokio::test(start_paused = true)]
async fn a_new_dash_segment_length_opens_a_period_at_the_next_keyframe() {
    let (hub, registry, code, buffer, mut writer, handle) =
        dash_output("resegmented", DashSettings::default());
    let frames = clip_frames();
    write_shifted(&mut writer, frames.clone(), 0).await;
    until("2 video segments listed", || {
        (entries(&mpd(&registry, &code)?, 0).len() == 2).then_some(())
    })
    .await;
    // Out of range: refused, the key named, nothing changed.
    let refused = handle.set_dash(DashSettings {
        segment_sec: 61.0,
        ..DashSettings::default()
    });
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("publisher.dash.segment_sec"),
    );
    // S 2 → 4 while the third segment is open (keyframes every 2 s): it closes at the next
    // keyframe, and a Period of 4 s segments opens there, numbers continuing.
    handle
        .set_dash(DashSettings {
            segment_sec: 4.0,
            ..DashSettings::default()
        })
        .unwrap();
    let six = 6 * 90_000;
    write_shifted(&mut writer, frames.clone(), six).await;
    write_shifted(&mut writer, frames, 2 * six).await;
    hub.delete(&buffer);
    until("the task to finish", || handle.is_finished().then_some(())).await;

    let text = mpd(&registry, &code).unwrap();
    let periods: Vec<&str> = text.split("<Period id=\"").skip(1).collect();
    assert_eq!(periods.len(), 2, "{text}");
    // The attributes S drives follow it; the longest segment listed is a new one.
    assert!(text.contains("minimumUpdatePeriod=\"PT4S\""), "{text}");
    assert!(text.contains("minBufferTime=\"PT8S\""), "{text}");
    assert!(text.contains("maxSegmentDuration=\"PT4"), "{text}");
    let start_number = |period: &str| -> u64 {
        period
            .split("startNumber=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let (old, new) = (periods[0], periods[1]);
    let old_video = entries(old, 0);
    assert!(old_video.iter().all(|&(_, d)| d == 180_000), "{text}");
    // The new Period's id is its first number, the one after the old Period's last.
    let id: u64 = new.split('"').next().unwrap().parse().unwrap();
    assert_eq!(start_number(new), id, "{text}");
    assert_eq!(id, start_number(old) + old_video.len() as u64, "{text}");
    let new_video = entries(new, 0);
    assert!(new_video.len() >= 2, "{text}");
    assert!(
        new_video[..new_video.len() - 1]
            .iter()
            .all(|&(_, d)| d == 360_000),
        "{text}"
    );
    // The same init: its segments decode as before.
    assert!(new.contains("initialization=\"init_v.mp4\""), "{text}");
    let mut bytes = registry.get(&code, "init_v.mp4").unwrap().body.to_vec();
    for n in id..id + 2 {
        let name = format!("seg_v_{n:06}.m4s");
        bytes.extend_from_slice(&registry.get(&code, &name).unwrap().body);
    }
    assert_eq!(
        probe_mp4("resegmented", &bytes)[0].codec_name.as_deref(),
        Some("h264"),
        "{text}"
    );
    handle.stop();
}
