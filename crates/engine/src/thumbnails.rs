//! The thumbnail service (SPEC §Publisher "Thumbnail"): per stream with `thumbnail.enabled`,
//! a task that every `interval_sec` takes the last keyframe of the playback feed, has one
//! short-lived FFmpeg decode it into a JPEG (`tributary_transcode::snapshot`), and keeps the
//! latest in memory for `GET /{code}/thumbnail.jpg`.
//!
//! The keyframe comes from a subscription opened for that moment only (class `thumbnail`,
//! from the buffer's cached GOP) and dropped right after, so a thumbnailer holds nothing of
//! the hub between snapshots and never lags. A failure (no keyframe yet, FFmpeg missing or
//! failing) keeps the previous JPEG, is logged (the first time, then every 10th), and the task
//! tries again at the next interval.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tributary_domain::ffmpeg::ThumbnailSpec;
use tributary_domain::{Stream, StreamCode};
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom};
use tributary_media::{Codec, Frame};
use tributary_transcode::{Launcher, snapshot};

use crate::lock;
use crate::services::{ServiceError, ThumbnailService};

/// Every stream's thumbnailer and latest JPEG.
pub(crate) struct Thumbnails {
    hub: Hub,
    /// `transcoder.ffmpeg_path`, for thumbnailers started from now on
    /// ([`set_ffmpeg_path`](Thumbnails::set_ffmpeg_path)).
    ffmpeg_path: Mutex<PathBuf>,
    /// Each thumbnailer's FFmpeg runs in its own directory under here.
    workdir: PathBuf,
    running: Mutex<HashMap<StreamCode, JoinHandle<()>>>,
    latest: Arc<Mutex<HashMap<StreamCode, Bytes>>>,
    /// Numbers the working directories (codes may hold `/`).
    next_dir: Mutex<u64>,
}

impl Thumbnails {
    pub(crate) fn new(hub: Hub, ffmpeg_path: PathBuf, workdir: PathBuf) -> Self {
        Self {
            hub,
            ffmpeg_path: Mutex::new(ffmpeg_path),
            workdir,
            running: Mutex::new(HashMap::new()),
            latest: Arc::new(Mutex::new(HashMap::new())),
            next_dir: Mutex::new(0),
        }
    }

    /// `transcoder.ffmpeg_path` changed through the config API: thumbnailers started from
    /// now on run `path`.
    pub(crate) fn set_ffmpeg_path(&self, path: PathBuf) {
        *lock(&self.ffmpeg_path) = path;
    }

    /// The latest thumbnail of `code`, if one was made.
    pub(crate) fn get(&self, code: &StreamCode) -> Option<Bytes> {
        lock(&self.latest).get(code).cloned()
    }
}

impl ThumbnailService for Thumbnails {
    fn start(&self, stream: &Stream) -> Result<(), ServiceError> {
        let spec = ThumbnailSpec::of(&stream.thumbnail.clone().unwrap_or_default());
        let path = lock(&self.ffmpeg_path).clone();
        let launcher = Launcher::resolve(&path).map_err(|e| ServiceError::NeedsFfmpeg {
            feature: "thumbnails",
            reason: e.to_string(),
        })?;
        let dir = {
            let mut next = lock(&self.next_dir);
            *next += 1;
            self.workdir.join(next.to_string())
        };
        let code = stream.code.clone();
        let task = Task {
            hub: self.hub.clone(),
            buffer: BufferId::Stream(code.clone()),
            launcher,
            spec,
            dir,
            latest: Arc::clone(&self.latest),
            code: code.clone(),
        };
        let span = tracing::info_span!("thumbnail", stream = %code);
        let handle = tokio::spawn(tracing::Instrument::instrument(task.run(), span));
        if let Some(previous) = lock(&self.running).insert(code, handle) {
            previous.abort();
        }
        Ok(())
    }

    fn stop(&self, code: &StreamCode) {
        if let Some(task) = lock(&self.running).remove(code) {
            task.abort();
        }
        lock(&self.latest).remove(code);
    }
}

/// One stream's thumbnailer.
struct Task {
    hub: Hub,
    buffer: BufferId,
    launcher: Launcher,
    spec: ThumbnailSpec,
    dir: PathBuf,
    latest: Arc<Mutex<HashMap<StreamCode, Bytes>>>,
    code: StreamCode,
}

impl Task {
    async fn run(self) {
        let mut failures = 0u64;
        loop {
            match self.once().await {
                Ok(jpeg) => {
                    if failures > 0 {
                        tracing::info!("thumbnails work again");
                    }
                    failures = 0;
                    lock(&self.latest).insert(self.code.clone(), jpeg);
                }
                Err(why) => {
                    failures += 1;
                    if failures % 10 == 1 {
                        tracing::warn!(failures, "no thumbnail: {why}");
                    }
                }
            }
            tokio::time::sleep(self.spec.interval).await;
        }
    }

    /// One snapshot of the last keyframe.
    async fn once(&self) -> Result<Bytes, String> {
        let keyframe = self.keyframe().await?;
        let input = match keyframe.codec {
            Codec::H264 => "h264",
            Codec::H265 => "hevc",
            other => return Err(format!("thumbnails of {other} video are not supported")),
        };
        snapshot(
            &self.launcher,
            &self.spec.argv(input),
            &keyframe.payload,
            &self.dir,
            SNAPSHOT_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// The buffer's last video keyframe, or the next one within the interval.
    async fn keyframe(&self) -> Result<Frame, String> {
        let mut subscriber = self
            .hub
            .subscribe(&self.buffer, SubscribeFrom::LastKeyframe, CLASS)
            .map_err(|e| format!("the playback feed is not there: {e}"))?;
        let wait = async {
            loop {
                match subscriber.recv().await {
                    Some(Delivery::Frame(frame)) if frame.keyframe && is_video(&frame) => {
                        return Ok(frame);
                    }
                    Some(_) => {}
                    None => return Err("the playback feed ended".to_owned()),
                }
            }
        };
        tokio::time::timeout(self.spec.interval.max(MIN_WAIT), wait)
            .await
            .map_err(|_| "no video keyframe in the playback feed".to_owned())?
    }
}

fn is_video(frame: &Frame) -> bool {
    frame.codec.kind() == tributary_media::MediaKind::Video
}

/// The hub subscriber class of thumbnailers.
const CLASS: &str = "thumbnail";
/// The longest one FFmpeg decode may take.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest wait for a keyframe (a short interval still waits a GOP or two).
const MIN_WAIT: Duration = Duration::from_secs(5);
