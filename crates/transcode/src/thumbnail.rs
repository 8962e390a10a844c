//! One thumbnail: a keyframe through a short-lived FFmpeg into a JPEG (SPEC §Publisher
//! "Thumbnail"), with the same child discipline as the ladder's (no shell, own process group,
//! parent-death signal, private working directory) and bounds on time and size.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::process::{Ffmpeg, Launcher, SpawnError, prepare_workdir};

/// Why no thumbnail came out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThumbnailError {
    /// FFmpeg could not start.
    #[error("{0}")]
    Spawn(#[from] SpawnError),
    /// FFmpeg took longer than the bound.
    #[error("FFmpeg made no thumbnail within {0:?}")]
    Timeout(Duration),
    /// FFmpeg failed or wrote nothing; its last words.
    #[error("FFmpeg made no thumbnail (exit {status}): {stderr}")]
    Failed {
        /// Its exit status.
        status: String,
        /// The tail of its log.
        stderr: String,
    },
    /// Reading or writing its pipes failed.
    #[error("FFmpeg's pipes: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes `keyframe` with FFmpeg run with `args` (`tributary_domain::ffmpeg::ThumbnailSpec`)
/// in `workdir` (emptied first) and returns the JPEG, at most [`MAX_JPEG`] bytes, within
/// `timeout`. Call from a task (the parent-death signal follows the spawning thread).
pub async fn snapshot(
    launcher: &Launcher,
    args: &[String],
    keyframe: &[u8],
    workdir: &Path,
    timeout: Duration,
) -> Result<Bytes, ThumbnailError> {
    prepare_workdir(workdir)?;
    let (mut ffmpeg, pipes) = Ffmpeg::spawn(launcher, args, 1, workdir)?;
    let mut stdin = pipes.stdin;
    let Some(mut jpeg_pipe) = pipes.outputs.into_iter().next() else {
        return Err(ThumbnailError::Io(std::io::Error::other("no output pipe")));
    };
    let mut stderr_pipe = pipes.stderr;
    let work = async {
        let feed = async {
            // FFmpeg may stop reading once it has its frame: a broken pipe is not an error.
            let _ = stdin.write_all(keyframe).await;
            drop(stdin);
        };
        let (jpeg, stderr, ()) = tokio::join!(
            read_bounded(&mut jpeg_pipe, MAX_JPEG),
            read_bounded(&mut stderr_pipe, MAX_STDERR),
            feed
        );
        let status = ffmpeg.wait().await?;
        Ok::<_, ThumbnailError>((status, jpeg?, stderr?))
    };
    let (status, jpeg, stderr) = match tokio::time::timeout(timeout, work).await {
        Ok(done) => done?,
        Err(_) => {
            ffmpeg.kill_group();
            let _ = ffmpeg.wait().await;
            return Err(ThumbnailError::Timeout(timeout));
        }
    };
    if !status.success() || !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err(ThumbnailError::Failed {
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        });
    }
    Ok(Bytes::from(jpeg))
}

/// Reads `pipe` to its end, keeping at most `max` bytes (the rest is read and dropped, so the
/// writer never blocks).
async fn read_bounded(pipe: &mut (impl AsyncRead + Unpin), max: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// The largest thumbnail kept: a 4K JPEG at the best quality is well under it.
pub const MAX_JPEG: usize = 8 << 20;
/// The most of FFmpeg's log kept for an error.
const MAX_STDERR: usize = 4096;
