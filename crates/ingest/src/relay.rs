//! In-process inputs (SPEC §ABR copy, §Mixer): `copy://X` reads stream X's playback feed,
//! `mixer://V,A` the video of V's and the audio of A's, from the hub, and writes into this
//! input's port like any other source.
//!
//! The playback feed is always the upstream's main buffer `<code>` (the transcoder copies
//! its best rung there), so a plain copy is one hub subscriber. Its frames are hub frames
//! already (access units, parameter sets before keyframes, AAC with its configuration), but
//! they go through the same [`Sink`] checks as every frame source, so a configuration change
//! upstream starts a session here too and the runtime shows the tracks.
//!
//! **Connect loop.** Subscribing to a stream that is not running fails at once (the hub
//! refuses unknown ids); a subscription ends when the upstream's buffer is deleted (stopped,
//! restarted, deleted). Either is reported on the port (the manager may fail over) and
//! retried with the ingest backoff, 1 s doubling to 10 s, reset once frames flowed. Each
//! subscription after the first starts a new session (`reconnect`).
//!
//! **The mixer's clocks.** V's and A's output timelines are each monotonic but anchored
//! independently (each buffer's normaliser started at its own first frame), so their raw
//! timestamps cannot be interleaved. Each side is mapped onto one wall clock at the boundary:
//! at a side's first frame, `out = dts − dts₀ + (arrival₀ − epoch)`, with one `epoch` per
//! mixing run; afterwards each side keeps its own cadence. Sources that share a clock thus
//! keep their own A/V offset, and unrelated ones line up by arrival (SPEC §Mixer "Lip
//! sync"). V ending ends the input; A ending ends it too unless `audio_failure=continue`,
//! where video goes on alone, A is subscribed again with the backoff, and its return starts a
//! new session (`mixer_cycle`).

use std::time::{Duration, Instant};

use tributary_domain::protocol::{AudioFailure, Mixer};
use tributary_hub::{BufferId, Delivery, Hub, SessionReason, SubscribeFrom, Subscriber};
use tributary_media::{Frame, MediaKind, StreamCode, TrackId, Ts90};

use crate::backoff::Backoff;
use crate::sink::{Reporter, Sink, now};

/// The hub subscriber class of these inputs (`buffer_drops_total{subscriber="copy"}`, SPEC
/// §Metrics).
const SUBSCRIBER_CLASS: &str = "copy";

/// Subscribes to `code`'s playback feed, from its latest keyframe.
fn subscribe(hub: &Hub, code: &StreamCode) -> Result<Subscriber, String> {
    hub.subscribe(
        &BufferId::Stream(code.clone()),
        SubscribeFrom::LastKeyframe,
        SUBSCRIBER_CLASS,
    )
    .map_err(|e| format!("stream {code} is not running ({e})"))
}

/// Checks and writes one frame.
fn forward(sink: &mut Sink, frame: Frame) {
    if let Some(ready) = sink.frame(frame) {
        sink.write(ready, now());
    }
}

/// Runs a `copy://<upstream>` input until the worker is stopped.
pub(crate) async fn run_copy(hub: Hub, upstream: StreamCode, reporter: Reporter) {
    let mut sink = Sink::new(reporter, 0);
    let mut backoff = Backoff::new();
    loop {
        match subscribe(&hub, &upstream) {
            Err(e) => sink.reporter.open_failed(format_args!("upstream {e}")),
            Ok(mut feed) => {
                sink.reset();
                sink.reporter.opened();
                while let Some(delivery) = feed.recv().await {
                    if let Delivery::Frame(frame) = delivery {
                        forward(&mut sink, frame);
                    }
                }
                if sink.had_frames() {
                    backoff.reset();
                }
                sink.reporter.lost(format_args!(
                    "upstream stream {upstream} stopped (its playback feed closed)"
                ));
            }
        }
        backoff.wait().await;
    }
}

/// One side of the mixer mapped onto the run's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Side {
    /// `(dts₀, out₀)` of the side's first frame.
    anchor: Option<(i64, i64)>,
}

impl Side {
    /// Restamps `frame` onto the clock that started at `epoch`.
    pub(crate) fn map(&mut self, frame: &mut Frame, epoch: Instant) {
        let (dts0, out0) = *self.anchor.get_or_insert_with(|| {
            let since = frame.arrival.saturating_duration_since(epoch);
            (frame.dts.0, ticks(since))
        });
        let shift = out0 - dts0;
        frame.dts = Ts90(frame.dts.0 + shift);
        frame.pts = Ts90(frame.pts.0 + shift);
    }
}

fn ticks(d: Duration) -> i64 {
    i64::try_from(d.as_micros() * 9 / 100).unwrap_or(i64::MAX)
}

/// Why a mixing run ended.
enum End {
    /// The video stream's feed closed.
    Video,
    /// The audio stream's feed closed (`audio_failure=down`).
    Audio,
}

/// Runs a `mixer://` input until the worker is stopped.
pub(crate) async fn run_mixer(hub: Hub, mixer: Mixer, reporter: Reporter) {
    let mut sink = Sink::new(reporter, 0);
    let mut backoff = Backoff::new();
    loop {
        let video = match subscribe(&hub, &mixer.video) {
            Ok(video) => video,
            Err(e) => {
                sink.reporter.open_failed(format_args!("video {e}"));
                backoff.wait().await;
                continue;
            }
        };
        let audio = match subscribe(&hub, &mixer.audio) {
            Ok(audio) => Some(audio),
            Err(e) if mixer.audio_failure == AudioFailure::Down => {
                sink.reporter.open_failed(format_args!("audio {e}"));
                backoff.wait().await;
                continue;
            }
            Err(e) => {
                sink.reporter.error(format_args!(
                    "audio {e}; video goes on alone (audio_failure=continue)"
                ));
                None
            }
        };
        sink.reset();
        sink.reporter.opened();
        let end = mix(&hub, &mixer, &mut sink, video, audio).await;
        if sink.had_frames() {
            backoff.reset();
        }
        match end {
            End::Video => sink.reporter.lost(format_args!(
                "video stream {} stopped (its playback feed closed)",
                mixer.video
            )),
            End::Audio => sink.reporter.lost(format_args!(
                "audio stream {} stopped (its playback feed closed; audio_failure=down)",
                mixer.audio
            )),
        }
        backoff.wait().await;
    }
}

/// One mixing run: video of `video`, audio of `audio`, until a side ends it.
async fn mix(
    hub: &Hub,
    mixer: &Mixer,
    sink: &mut Sink,
    mut video: Subscriber,
    mut audio: Option<Subscriber>,
) -> End {
    let epoch = now();
    let mut v_side = Side::default();
    let mut a_side = Side::default();
    // Video track ids seen: an audio track with the same id is moved past them.
    let mut video_ids: Vec<TrackId> = Vec::new();
    let mut retry = Backoff::new();
    let mut retry_at = tokio::time::Instant::now() + retry.delay();
    loop {
        let waiting = audio.is_none();
        let audio_next = async {
            match audio.as_mut() {
                Some(a) => a.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            delivery = video.recv() => match delivery {
                None => return End::Video,
                Some(Delivery::Lagged { .. }) => {}
                Some(Delivery::Frame(mut frame)) => {
                    if frame.codec.kind() != MediaKind::Video {
                        continue;
                    }
                    if !video_ids.contains(&frame.track) {
                        video_ids.push(frame.track);
                    }
                    v_side.map(&mut frame, epoch);
                    forward(sink, frame);
                }
            },
            delivery = audio_next => match delivery {
                None if mixer.audio_failure == AudioFailure::Down => return End::Audio,
                None => {
                    sink.reporter.error(format_args!(
                        "audio stream {} stopped; video goes on alone (audio_failure=continue)",
                        mixer.audio
                    ));
                    audio = None;
                    // Video alone from the next keyframe: a session without the audio track,
                    // so the stream manager does not count the audio as lost.
                    sink.reporter.restart(SessionReason::MixerCycle);
                    retry = Backoff::new();
                    retry_at = tokio::time::Instant::now() + retry.delay();
                }
                Some(Delivery::Lagged { .. }) => {}
                Some(Delivery::Frame(mut frame)) => {
                    if frame.codec.kind() != MediaKind::Audio {
                        continue;
                    }
                    if let Some(max) = video_ids.iter().max().filter(|_| video_ids.contains(&frame.track)) {
                        frame.track = TrackId(max.0.saturating_add(1).saturating_add(frame.track.0));
                    }
                    a_side.map(&mut frame, epoch);
                    forward(sink, frame);
                }
            },
            () = tokio::time::sleep_until(retry_at), if waiting => {
                match subscribe(hub, &mixer.audio) {
                    Ok(back) => {
                        tracing::info!(audio = %mixer.audio, "audio stream back: a new session");
                        audio = Some(back);
                        a_side = Side::default();
                        sink.reporter.restart(SessionReason::MixerCycle);
                    }
                    Err(_) => retry_at = tokio::time::Instant::now() + retry.delay(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_media::{Codec, SessionId};

    use super::*;

    fn frame(dts: i64, arrival: Instant) -> Frame {
        Frame {
            track: TrackId(0),
            codec: Codec::Aac,
            pts: Ts90(dts + 10),
            dts: Ts90(dts),
            keyframe: true,
            session: SessionId(1),
            arrival,
            payload: Bytes::from_static(b"x"),
            config: None,
        }
    }

    #[test]
    fn each_side_keeps_its_cadence_on_the_shared_wall_clock() {
        let epoch = Instant::now();
        let mut video = Side::default();
        let mut audio = Side::default();
        // Video's timeline is at 9 000 000, audio's at 45; audio started 1 s after the epoch.
        let mut v = frame(9_000_000, epoch);
        video.map(&mut v, epoch);
        assert_eq!((v.dts.0, v.pts.0), (0, 10));
        let mut a = frame(45, epoch + Duration::from_secs(1));
        audio.map(&mut a, epoch);
        assert_eq!(a.dts.0, 90_000);
        // Later frames keep their spacing whatever their arrival jitter.
        let mut v2 = frame(9_003_000, epoch + Duration::from_millis(500));
        video.map(&mut v2, epoch);
        assert_eq!(v2.dts.0, 3_000);
        let mut a2 = frame(45 + 1_920, epoch);
        audio.map(&mut a2, epoch);
        assert_eq!(a2.dts.0, 90_000 + 1_920);
    }
}
