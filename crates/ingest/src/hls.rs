//! `http(s)://….m3u8`: HLS pull of MPEG-TS segments, paced in real time (SPEC §Ingest "hls").
//!
//! A session has two halves joined by a bounded channel of
//! [`hls_prefetch`](crate::IngestConfig::hls_prefetch) segments, both running in the worker's
//! task:
//!
//! - the **poller** reloads the media playlist every target duration / 2, within [0.5 s, 10 s],
//!   downloads each new segment (by media sequence, so a segment is fetched once) and sends it
//!   down the channel, waiting when the channel is full or the segments queued hold 64 MiB:
//!   that is the prefetch bound (at most 64 MiB queued plus the one segment downloading, where
//!   8 segments of up to 64 MiB each could once hold 512 MiB);
//! - the **player** demuxes the segments in order and writes their frames no faster than their
//!   DTS advances.
//!
//! A master playlist is resolved first: the variant with the highest `BANDWIDTH` (the later one
//! on a tie), through at most 3 nested masters. A live playlist starts 3 segments from its end
//! (where players start); one with `#EXT-X-ENDLIST` starts at its first segment and ends the
//! input after its last (reported as the end of the input). A media sequence that goes
//! backwards (the origin restarted) resets at once: a new session from the new live edge.
//!
//! Not supported yet, reported as errors naming the tag: encrypted segments (`#EXT-X-KEY`
//! other than `NONE`), fMP4 segments (`#EXT-X-MAP`) and byte ranges.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use m3u8_rs::{KeyMethod, MasterPlaylist, MediaPlaylist, Playlist, VariantStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tributary_domain::redact::mask_url;
use tributary_hub::SessionReason;
use url::Url;

use crate::backoff::Backoff;
use crate::http::{HttpClient, HttpError};
use crate::pace::Pacer;
use crate::sink::{Next, Reporter, Sink, now};

/// Runs the HLS worker until stopped or until an `#EXT-X-ENDLIST` playlist has played out.
pub(crate) async fn run(
    url: Url,
    client: HttpClient,
    prefetch: usize,
    program: u16,
    reporter: Reporter,
) {
    let mut sink = Sink::new(reporter.clone(), program);
    let mut pacer = Pacer::new();
    let mut backoff = Backoff::new();
    loop {
        let (media_url, fetched) = match resolve(&client, &url).await {
            Ok(resolved) => resolved,
            Err(e) => {
                reporter.open_failed(format_args!("cannot load playlist: {e}"));
                backoff.wait().await;
                continue;
            }
        };
        reporter.opened();
        tracing::info!(playlist = %mask_url(media_url.as_str()), "playing media playlist");
        sink.reset();
        pacer.reset();

        let (tx, mut rx) = mpsc::channel(prefetch);
        let (played, polled) = {
            let poller = poll(&client, &media_url, fetched, tx, &reporter);
            let player = play(&mut rx, &mut sink, &mut pacer, &reporter);
            tokio::pin!(poller, player);
            let mut polled: Option<Result<(), String>> = None;
            loop {
                tokio::select! {
                    result = &mut poller, if polled.is_none() => polled = Some(result),
                    played = &mut player => break (played, polled),
                }
            }
        };
        let why = match played {
            Played::Ended { last } => {
                reporter.finish(format_args!(
                    "end of input: #EXT-X-ENDLIST reached after segment {last}"
                ));
                return;
            }
            Played::Reopen(why) => why,
            Played::Drained => match polled {
                Some(Err(why)) => format!("playlist lost: {why}"),
                _ => "playlist poller stopped".to_owned(),
            },
        };
        if sink.had_frames() {
            backoff.reset();
        }
        reporter.lost(format_args!("{why}; reopening"));
        backoff.wait().await;
    }
}

/// What the poller sends the player.
enum Item {
    /// One downloaded segment, as the chunks it arrived in.
    Segment {
        seq: u64,
        chunks: Vec<Bytes>,
        arrived: Instant,
        /// Its share of the prefetch budget, given back once played.
        _budget: OwnedSemaphorePermit,
    },
    /// The media sequence went backwards: a new timeline follows.
    Reset,
    /// `#EXT-X-ENDLIST`: nothing follows the segment `last`.
    End { last: u64 },
}

/// How the player stopped.
enum Played {
    /// After the last segment of an ENDLIST playlist.
    Ended { last: u64 },
    /// The demuxer gave up on the source.
    Reopen(String),
    /// The poller stopped sending (it failed, see its result).
    Drained,
}

/// Writes the frames of each segment, paced by DTS.
async fn play(
    rx: &mut mpsc::Receiver<Item>,
    sink: &mut Sink,
    pacer: &mut Pacer,
    reporter: &Reporter,
) -> Played {
    while let Some(item) = rx.recv().await {
        match item {
            Item::Segment {
                seq,
                chunks,
                arrived,
                _budget,
            } => {
                tracing::debug!(seq, "playing segment");
                for chunk in &chunks {
                    sink.push(chunk, arrived);
                    if let Some(why) = drain(sink, pacer).await {
                        return Played::Reopen(format!("segment {seq}: {why}"));
                    }
                }
            }
            Item::Reset => {
                sink.reset();
                pacer.reset();
                reporter.restart(SessionReason::Reconnect);
            }
            Item::End { last } => {
                sink.flush();
                if let Some(why) = drain(sink, pacer).await {
                    return Played::Reopen(why);
                }
                return Played::Ended { last };
            }
        }
    }
    Played::Drained
}

/// Writes every frame the demuxer has, each when due; the reason if the source must reopen.
async fn drain(sink: &mut Sink, pacer: &mut Pacer) -> Option<String> {
    while let Some(next) = sink.next() {
        match next {
            Next::Frame(mut ready) => {
                let released = pacer.wait(ready.frame.dts).await;
                ready.frame.arrival = released;
                sink.write(ready, released);
            }
            Next::Reopen(why) => return Some(why),
        }
    }
    None
}

/// Reloads the media playlist and downloads new segments until ENDLIST, a lost playlist, or
/// the player going away.
async fn poll(
    client: &HttpClient,
    media_url: &Url,
    first: (MediaPlaylist, Url),
    tx: mpsc::Sender<Item>,
    reporter: &Reporter,
) -> Result<(), String> {
    let (mut playlist, mut base) = first;
    let budget = Arc::new(Semaphore::new(PREFETCH_BYTES as usize));
    let mut fetched_at = tokio::time::Instant::now();
    let mut next_seq: Option<u64> = None;
    let mut last_sequence: Option<u64> = None;
    loop {
        if last_sequence.is_some_and(|last| playlist.media_sequence < last) {
            tracing::warn!(
                from = last_sequence,
                to = playlist.media_sequence,
                "media sequence went backwards; resetting"
            );
            next_seq = None;
            if tx.send(Item::Reset).await.is_err() {
                return Ok(());
            }
        }
        last_sequence = Some(playlist.media_sequence);
        let count = playlist.segments.len() as u64;
        let start = next_seq.unwrap_or(if playlist.end_list {
            playlist.media_sequence
        } else {
            playlist
                .media_sequence
                .saturating_add(count.saturating_sub(LIVE_EDGE))
        });
        if next_seq.is_some_and(|next| next < playlist.media_sequence) {
            tracing::warn!(
                missed = playlist.media_sequence - start,
                "segments left the playlist before they were fetched"
            );
        }
        for (i, segment) in playlist.segments.iter().enumerate() {
            // The origin's numbers are not trusted: a sequence at the top of u64 ends here.
            let Some(seq) = playlist.media_sequence.checked_add(i as u64) else {
                return Err(format!(
                    "media sequence {} + {i} overflows",
                    playlist.media_sequence
                ));
            };
            if seq < start {
                continue;
            }
            if let Some(tag) = unsupported(segment) {
                return Err(format!("segment {seq}: {tag} is not supported yet"));
            }
            let url = base
                .join(&segment.uri)
                .map_err(|e| format!("segment {seq}: bad URI {:?}: {e}", segment.uri))?;
            match download(client, &url).await {
                Ok(chunks) => {
                    let size = chunks.iter().map(Bytes::len).sum::<usize>();
                    // A segment larger than the whole budget waits for all of it.
                    let share = u32::try_from(size).unwrap_or(u32::MAX).min(PREFETCH_BYTES);
                    let Ok(share) = Arc::clone(&budget).acquire_many_owned(share).await else {
                        return Ok(());
                    };
                    let item = Item::Segment {
                        seq,
                        chunks,
                        arrived: now(),
                        _budget: share,
                    };
                    if tx.send(item).await.is_err() {
                        return Ok(());
                    }
                }
                Err(e) => reporter.error(format_args!(
                    "segment {seq} skipped after {SEGMENT_TRIES} tries: {e}"
                )),
            }
            next_seq = Some(seq.saturating_add(1));
        }
        let next = *next_seq.get_or_insert(start);
        if playlist.end_list {
            let last = next.saturating_sub(1);
            let _ = tx.send(Item::End { last }).await;
            return Ok(());
        }
        // Half the target duration, within [MIN_POLL, MAX_POLL]: any u64 the origin writes
        // gives a sane reload (and no `Instant` overflow).
        let target = Duration::from_secs(playlist.target_duration.min(MAX_POLL.as_secs() * 2));
        tokio::time::sleep_until(fetched_at + (target / 2).clamp(MIN_POLL, MAX_POLL)).await;
        fetched_at = tokio::time::Instant::now();
        (playlist, base) = match fetch_playlist(client, media_url).await? {
            (Playlist::MediaPlaylist(media), base) => (media, base),
            (Playlist::MasterPlaylist(_), _) => {
                return Err(format!(
                    "{} turned into a master playlist",
                    mask_url(media_url.as_str())
                ));
            }
        };
    }
}

/// Resolves master playlists down to a media playlist: its URL and its first load.
async fn resolve(client: &HttpClient, url: &Url) -> Result<(Url, (MediaPlaylist, Url)), String> {
    let mut url = url.clone();
    for _ in 0..=MAX_NESTED {
        let (playlist, base) = fetch_playlist(client, &url).await?;
        let master = match playlist {
            Playlist::MediaPlaylist(media) => return Ok((url, (media, base))),
            Playlist::MasterPlaylist(master) => master,
        };
        let Some(variant) = best_variant(&master) else {
            return Err(format!(
                "master playlist {} lists no variant",
                mask_url(base.as_str())
            ));
        };
        tracing::info!(bandwidth = variant.bandwidth, uri = %variant.uri, "variant chosen");
        url = base
            .join(&variant.uri)
            .map_err(|e| format!("variant URI {:?}: {e}", variant.uri))?;
    }
    Err(format!(
        "more than {MAX_NESTED} nested master playlists under {}",
        mask_url(url.as_str())
    ))
}

/// The variant with the highest `BANDWIDTH`, the later one on a tie; I-frame-only variants
/// are not playable streams.
fn best_variant(master: &MasterPlaylist) -> Option<&VariantStream> {
    master.variants.iter().filter(|v| !v.is_i_frame).fold(
        None,
        |best: Option<&VariantStream>, v| match best {
            Some(b) if b.bandwidth > v.bandwidth => Some(b),
            _ => Some(v),
        },
    )
}

/// Loads and parses a playlist: up to [`PLAYLIST_TRIES`] tries 0.5 s × 2^k apart, stopping
/// early on errors that retrying cannot fix. Returns the playlist and the URL that served it.
async fn fetch_playlist(client: &HttpClient, url: &Url) -> Result<(Playlist, Url), String> {
    let mut delay = RETRY_FIRST;
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match client.fetch(url, client.timeout, PLAYLIST_CAP).await {
            Ok((chunks, base)) => {
                let text = chunks.concat();
                match m3u8_rs::parse_playlist_res(&text) {
                    Ok(playlist) => return Ok((playlist, base)),
                    Err(e) => {
                        let mut shown = format!("{e:?}");
                        shown.truncate(120);
                        format!("{}: not a playlist ({shown})", mask_url(base.as_str()))
                    }
                }
            }
            Err(e) if e.fatal() => return Err(format!("{e} (not retriable)")),
            Err(e) => e.to_string(),
        };
        if tries >= PLAYLIST_TRIES {
            return Err(format!("{error} (after {tries} tries)"));
        }
        tracing::debug!(
            tries,
            "playlist load failed, retrying in {delay:?}: {error}"
        );
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

/// Downloads a segment: up to [`SEGMENT_TRIES`] tries.
async fn download(client: &HttpClient, url: &Url) -> Result<Vec<Bytes>, HttpError> {
    let total = (client.timeout * 4).max(SEGMENT_TIMEOUT_MIN);
    let mut delay = RETRY_FIRST;
    let mut tries = 0;
    loop {
        tries += 1;
        match client.fetch(url, total, SEGMENT_CAP).await {
            Ok((chunks, _)) => return Ok(chunks),
            Err(e) if tries >= SEGMENT_TRIES || e.fatal() => return Err(e),
            Err(e) => tracing::debug!(tries, "segment download failed, retrying: {e}"),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

/// The tag that makes a segment unplayable for us, if any.
fn unsupported(segment: &m3u8_rs::MediaSegment) -> Option<&'static str> {
    if segment
        .key
        .as_ref()
        .is_some_and(|key| key.method != KeyMethod::None)
    {
        return Some("an encrypted segment (#EXT-X-KEY)");
    }
    if segment.map.is_some() {
        return Some("an fMP4 segment (#EXT-X-MAP)");
    }
    if segment.byte_range.is_some() {
        return Some("a byte-range segment (#EXT-X-BYTERANGE)");
    }
    None
}

/// The playlist budget when `net.timeout_sec` is 0 (SPEC §Defaults "HLS pull").
pub(crate) const PLAYLIST_TIMEOUT: Duration = Duration::from_secs(15);
/// A segment's budget is max(4 × the playlist's, this).
const SEGMENT_TIMEOUT_MIN: Duration = Duration::from_secs(60);
const PLAYLIST_TRIES: u32 = 5;
const SEGMENT_TRIES: u32 = 3;
/// The first retry delay; doubled after each try.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const PLAYLIST_CAP: usize = 8 << 20;
const SEGMENT_CAP: usize = 64 << 20;
const MAX_NESTED: usize = 3;
/// Where a live playlist starts: this many segments from its end.
const LIVE_EDGE: u64 = 3;
/// The shortest playlist reload interval.
const MIN_POLL: Duration = Duration::from_millis(500);
/// Bytes of downloaded segments queued for the player at most (with the prefetch count).
const PREFETCH_BYTES: u32 = 64 << 20;
/// The longest: an origin that announces an absurd target duration (a hostile one may write
/// `u64::MAX`) is still reloaded, so it is followed once it turns sane.
const MAX_POLL: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn master(text: &str) -> MasterPlaylist {
        match m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap() {
            Playlist::MasterPlaylist(m) => m,
            Playlist::MediaPlaylist(_) => panic!("not a master"),
        }
    }

    #[test]
    fn highest_bandwidth_wins_and_ties_go_to_the_later() {
        let m = master(
            "#EXTM3U\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000\nlow.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000\nhigh-a.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000\nhigh-b.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1000000\nmid.m3u8\n\
             #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=9000000,URI=\"iframes.m3u8\"\n",
        );
        assert_eq!(best_variant(&m).unwrap().uri, "high-b.m3u8");
        assert!(best_variant(&MasterPlaylist::default()).is_none());
    }

    #[test]
    fn unsupported_segments_are_named() {
        let media = match m3u8_rs::parse_playlist_res(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
              #EXTINF:2,\na.ts\n\
              #EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:2,\nb.ts\n",
        )
        .unwrap()
        {
            Playlist::MediaPlaylist(m) => m,
            Playlist::MasterPlaylist(_) => panic!("not media"),
        };
        assert_eq!(media.media_sequence, 7);
        assert_eq!(unsupported(&media.segments[0]), None);
        assert!(
            unsupported(&media.segments[1])
                .unwrap()
                .contains("EXT-X-KEY")
        );
    }
}
