//! Buffers whose writer runs the timeline normaliser (SPEC §Timeline), fed through an intake.

use std::time::Duration;

use tributary_hub::{BufferConfig, Hub, Intake, PortKey, SessionReason, SubscribeFrom};
use tributary_media::Frame;

use crate::support::{audio, drain, frames, id, origin, video};

fn normalised(hub: &Hub, code: &str) -> Intake {
    let config = BufferConfig {
        normalise: true,
        ..BufferConfig::default()
    };
    Intake::new(hub.create_with(id(code), config).unwrap())
}

/// Video and audio at 40 ms steps from source time `from` ms, arriving from `arrive` ms on.
fn av(from: i64, arrive: i64, count: i64) -> Vec<Frame> {
    let mut out = Vec::new();
    for i in 0..count {
        let mut v = video(from + 40 * i, i % 25 == 0);
        let mut a = audio(from + 40 * i);
        let at = origin() + Duration::from_millis((arrive + 40 * i) as u64);
        v.arrival = at;
        a.arrival = at;
        out.push(v);
        out.push(a);
    }
    out
}

fn assert_monotonic(frames: &[Frame]) {
    for track in [0u16, 1] {
        let dts: Vec<i64> = frames
            .iter()
            .filter(|f| f.track.0 == track)
            .map(|f| f.dts.0)
            .collect();
        assert!(!dts.is_empty(), "track {track} delivered nothing");
        assert!(dts[0] >= 0, "negative output DTS {}", dts[0]);
        for pair in dts.windows(2) {
            assert!(
                pair[1] > pair[0],
                "track {track}: DTS {} then {}",
                pair[0],
                pair[1]
            );
        }
    }
}

#[test]
fn a_restarted_sender_opens_one_new_session_and_stays_monotonic() {
    let hub = Hub::new();
    let intake = normalised(&hub, "udp");
    let port = intake.add_port(PortKey(0), true).unwrap();
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    let mut sub = hub
        .subscribe(&id("udp"), SubscribeFrom::Now, "test")
        .unwrap();

    // A camera clock at one hour, then the sender restarts from zero (a jump back).
    for frame in av(3_600_000, 0, 100) {
        port.write(frame).unwrap();
    }
    for frame in av(0, 4_000, 100) {
        port.write(frame).unwrap();
    }
    let got = frames(&drain(&mut sub));
    assert_eq!(got.len(), 400, "every frame comes out exactly once");
    assert_monotonic(&got);
    let mut sessions: Vec<_> = got.iter().map(|f| f.session).collect();
    sessions.dedup();
    assert_eq!(
        sessions.len(),
        2,
        "one session per source timeline: {sessions:?}"
    );
    // Output starts near the writer's origin, not at the camera's one hour.
    assert!(
        got[0].dts.as_millis() < 5_000,
        "first output DTS {:?}",
        got[0].dts
    );
}

#[test]
fn a_failover_continues_the_output_timeline() {
    let hub = Hub::new();
    let intake = normalised(&hub, "fo");
    let main = intake.add_port(PortKey(0), true).unwrap();
    let backup = intake.add_port(PortKey(1), true).unwrap();
    intake.select(PortKey(0), SessionReason::Fresh).unwrap();
    let mut sub = hub
        .subscribe(&id("fo"), SubscribeFrom::Now, "test")
        .unwrap();

    for frame in av(90_000, 0, 50) {
        main.write(frame).unwrap();
    }
    // The backup runs on an unrelated clock; it takes over at its next keyframe.
    intake.select(PortKey(1), SessionReason::Failover).unwrap();
    for frame in av(7_000_000, 2_000, 50) {
        backup.write(frame).unwrap();
    }
    let got = frames(&drain(&mut sub));
    assert_monotonic(&got);
    let first = got.first().unwrap().session;
    let last = got.last().unwrap().session;
    assert!(last > first, "the switch opens a new session");
    // The backup's frames continue where the main input's ended, not at its own clock.
    let main_end = got
        .iter()
        .filter(|f| f.session == first)
        .map(|f| f.dts.0)
        .max()
        .unwrap();
    let backup_start = got
        .iter()
        .filter(|f| f.session == last)
        .map(|f| f.dts.0)
        .min()
        .unwrap();
    assert!(backup_start > main_end);
    assert!(
        backup_start - main_end < 90_000 * 3,
        "gap {} ticks",
        backup_start - main_end
    );
}

#[test]
fn a_lone_track_is_released_after_the_seed_hold() {
    let hub = Hub::new();
    let config = BufferConfig {
        normalise: true,
        ..BufferConfig::default()
    };
    let mut writer = hub.create_with(id("solo"), config).unwrap();
    let mut sub = hub
        .subscribe(&id("solo"), SubscribeFrom::Now, "test")
        .unwrap();
    writer.write(video(0, true)).unwrap();
    assert!(drain(&mut sub).is_empty(), "held for a partner");
    let deadline = writer.poll_timeout().expect("a held track arms the timer");
    writer.handle_timeout(deadline).unwrap();
    let got = frames(&drain(&mut sub));
    assert_eq!(got.len(), 1);
    assert!(got[0].keyframe);
    assert_eq!(writer.poll_timeout(), None);
}
