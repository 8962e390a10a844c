//! The process-wide map from stream code to running HLS output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tributary_media::{StreamCode, TrackInfo, Ts90};
use tributary_packager::{
    DashName, InitName, Ladder, Mpd, PLAYLIST_NAME, Period, Representation, TimelineEntry,
    UnixMillis, dash_init_name, parse_fmp4_segment_name, parse_part_name, parse_segment_name,
    write_rendition_report,
};

use crate::PublishError;
use crate::dash::{DashRung, TrackState};
use crate::hls::master::{self, Variant};
use crate::hls::window::Window;

/// Every running HLS output of the process, by stream code: what the media routes serve.
///
/// Cheap to clone (an `Arc`); make one per process and hand clones to
/// [`start_hls`](crate::start_hls) and to the HTTP layer. Lookups take two short read locks
/// (the map, then the output's window) and clone a `Bytes`; they never wait for an output's
/// task beyond the moment it swaps in a finished segment.
///
/// It also remembers, per stream code, the last segment number a stopped output used, so a
/// restart within the process never reuses a URI (SPEC §HLS "Numbering"): a new run starts at
/// max(Unix seconds now, last + 1). The memory is bounded: a remembered number that Unix time
/// has overtaken no longer matters and is dropped when the next output stops, and at most
/// 4096 codes are remembered (the smallest numbers go first).
#[derive(Clone, Default)]
pub struct HlsRegistry {
    inner: Arc<Inner>,
}

/// DASH rungs by stream and rung (`None`: the stream's only output).
type DashRungs = HashMap<(StreamCode, Option<u16>), Arc<DashRung>>;

/// Running outputs by stream and rung (`None`: the stream's only output).
type Windows = HashMap<(StreamCode, Option<u16>), Arc<Window>>;

/// What the registry shares.
#[derive(Default)]
struct Inner {
    /// Running outputs, by stream and rung (`None`: the stream's only output). Written when
    /// an output starts or stops.
    windows: RwLock<Windows>,
    /// Last number used by stopped outputs, by code (bounded, see the type doc).
    last_numbers: Mutex<HashMap<StreamCode, u64>>,
    /// ABR streams: their master playlist's variants, each served by the output registered
    /// under `<code>/<track>`, and how the variants number their segments.
    masters: RwLock<HashMap<StreamCode, Master>>,
    /// DASH rungs, by stream and rung (`None`: the stream's only output).
    dash: RwLock<DashRungs>,
    /// DASH streams: what their MPD says for every rung (fixed by the first rung to start).
    dash_streams: RwLock<HashMap<StreamCode, DashStream>>,
    /// LL-HLS blocking requests by outcome (`tributary_hls_blocking_requests_total`).
    blocking: crate::hls::blocking::Tally,
}

/// The stream-wide part of a DASH MPD.
#[derive(Debug, Clone)]
struct DashStream {
    /// `availabilityStartTime`: the wall time of media time 0, set by the first segment of any
    /// rung and kept while any rung of the stream runs (SPEC §DASH).
    origin: Option<UnixMillis>,
    /// S.
    segment: Duration,
    /// W.
    window: usize,
    /// The ladder changes, each a Period of the whole ladder once decided.
    ladder: Ladder,
}

/// The master playlist of one ABR stream.
#[derive(Clone)]
struct Master {
    /// The variants, variant *i* served by the output of rung *i*.
    variants: Arc<[Variant]>,
    /// How every variant numbers its segments, fixed when the master is first registered.
    numbering: Numbering,
}

/// How the variants of one ladder number their segments, so that segment *N* of each covers
/// the same time (SPEC §HLS "ABR").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Numbering {
    /// The segmenters' `first_number`: one for every variant of the ladder.
    pub(crate) first_number: u64,
    /// The keyframe grid the variants are cut on, when the ladder has one.
    pub(crate) grid: Option<Ts90>,
}

/// A playlist or segment, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The `Cache-Control`.
    pub cache_control: &'static str,
    /// The body.
    pub body: Bytes,
}

impl HlsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A playlist or segment of a running HLS output; `None` = 404.
    ///
    /// `name` is the path below `/{code}/`: `index.m3u8` (only once the first segment exists),
    /// `seg_<n>.ts` or `seg_<n>.m4s` exactly as the playlist spelled it, while it is listed
    /// or retained, or an fMP4 init (`init.mp4`, `init_<session>.mp4`) while kept. Any other
    /// name, and every name of a stopped output, is `None`.
    pub fn get(&self, code: &StreamCode, name: &str) -> Option<Asset> {
        self.get_variant(code, None, name)
    }

    /// As [`get`](Self::get), for the output of `rung` (`/{code}/track_<rung + 1>/<name>`)
    /// when `Some`. Without a rung, `index.m3u8` of an ABR stream is its master playlist.
    pub fn get_variant(&self, code: &StreamCode, rung: Option<u16>, name: &str) -> Option<Asset> {
        self.get_variant_with(code, rung, name, false)
    }

    /// As [`get_variant`](Self::get_variant); LL-HLS outputs also serve their parts
    /// (`part_<n>.<i>.m4s`, while kept), the `_HLS_skip=YES` delta update of their playlist
    /// when `delta`, and end a variant's playlist with an `#EXT-X-RENDITION-REPORT` for each
    /// other variant of the ladder.
    pub fn get_variant_with(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
        name: &str,
        delta: bool,
    ) -> Option<Asset> {
        if let Some(dash) = DashName::parse(name) {
            return self.dash_asset(code, rung, dash);
        }
        if rung.is_none()
            && name == PLAYLIST_NAME
            && let Some(master) = self.master(code)
        {
            return Some(Asset {
                content_type: PLAYLIST_TYPE,
                cache_control: PLAYLIST_CACHE,
                body: Bytes::from(master),
            });
        }
        let window = self.window(code, rung)?;
        if name == PLAYLIST_NAME {
            let full = window.playlist()?;
            let body = match window.delta().filter(|_| delta) {
                Some(delta) => delta,
                None => full,
            };
            return Some(Asset {
                content_type: PLAYLIST_TYPE,
                cache_control: PLAYLIST_CACHE,
                body: self.with_rendition_reports(code, rung, &window, body),
            });
        }
        if let Some((number, index)) = parse_part_name(name) {
            return Some(Asset {
                content_type: MP4_TYPE,
                cache_control: SEGMENT_CACHE,
                body: window.part(number, index)?,
            });
        }
        let now = tokio::time::Instant::now();
        if let Some(number) = parse_segment_name(name) {
            return Some(Asset {
                content_type: SEGMENT_TYPE,
                cache_control: SEGMENT_CACHE,
                body: window.segment(number, false, now)?,
            });
        }
        if let Some(number) = parse_fmp4_segment_name(name) {
            return Some(Asset {
                content_type: MP4_TYPE,
                cache_control: SEGMENT_CACHE,
                body: window.segment(number, true, now)?,
            });
        }
        Some(Asset {
            content_type: MP4_TYPE,
            // `init.mp4` names the first init of each run of the output, whatever its codecs:
            // never cached as immutable.
            cache_control: PLAYLIST_CACHE,
            body: window.init(InitName::parse(name)?)?,
        })
    }

    /// `playlist` of `rung`'s LL-HLS output, ending with an `#EXT-X-RENDITION-REPORT` for
    /// every other variant of the ladder that has a part out (RFC 8216bis §4.4.5.4). Other
    /// playlists come back as they are.
    fn with_rendition_reports(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
        window: &Window,
        playlist: Bytes,
    ) -> Bytes {
        let (Some(rung), Some(_)) = (rung, window.last_part()) else {
            return playlist;
        };
        let Some(variants) = self.variants(code) else {
            return playlist;
        };
        let mut reports = String::new();
        for other in (0..variants.len()).filter_map(|i| u16::try_from(i).ok()) {
            if other == rung {
                continue;
            }
            let Some((msn, part)) = self.window(code, Some(other)).and_then(|w| w.last_part())
            else {
                continue;
            };
            let uri = format!("../track_{}/{PLAYLIST_NAME}", u32::from(other) + 1);
            write_rendition_report(&mut reports, &uri, msn, part);
        }
        if reports.is_empty() {
            return playlist;
        }
        let mut text = Vec::with_capacity(playlist.len() + reports.len());
        text.extend_from_slice(&playlist);
        text.extend_from_slice(reports.as_bytes());
        Bytes::from(text)
    }

    /// A DASH asset: `index.mpd` of the stream (never under a rung), or a rung's init or
    /// segment; `None` = 404.
    fn dash_asset(&self, code: &StreamCode, rung: Option<u16>, name: DashName) -> Option<Asset> {
        let (video, number) = match name {
            DashName::Mpd => {
                if rung.is_some() {
                    return None;
                }
                return Some(Asset {
                    content_type: MPD_TYPE,
                    cache_control: MPD_CACHE,
                    body: Bytes::from(self.mpd(code)?),
                });
            }
            DashName::Init { video, init } => (video, Err(init)),
            DashName::Segment { video, number } => (video, Ok(number)),
        };
        let served = self.read_dash().get(&(code.clone(), rung)).cloned()?;
        let window = if video { &served.video } else { &served.audio };
        let content_type = if video { MP4_TYPE } else { AUDIO_MP4_TYPE };
        Some(match number {
            Ok(number) => Asset {
                content_type,
                cache_control: SEGMENT_CACHE,
                body: window.segment(number, true, tokio::time::Instant::now())?,
            },
            Err(init) => Asset {
                content_type,
                cache_control: PLAYLIST_CACHE,
                body: window.init(init)?,
            },
        })
    }

    /// The MPD of `code` over every rung with a segment, once the origin is known: the
    /// rungs of the ladder, and a rung removed from it while its segments are listed (in the
    /// Periods before the change). Periods open on a codec change of the rungs (by id: rungs
    /// cut on one grid open theirs at the same number) and on a ladder change.
    fn mpd(&self, code: &StreamCode) -> Option<String> {
        let stream = self
            .inner
            .dash_streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(code)?
            .clone();
        let origin = stream.origin?;
        let variants = self.variants(code);
        let (states, firsts) = {
            let dash = self.read_dash();
            let mut rungs: Vec<Option<u16>> = dash
                .keys()
                .filter(|(c, rung)| c == code && rung.is_some() == variants.is_some())
                .map(|(_, rung)| *rung)
                .collect();
            rungs.sort_unstable();
            let states: Vec<_> = rungs
                .iter()
                .filter_map(|rung| Some((*rung, dash.get(&(code.clone(), *rung))?.state())))
                .collect();
            let firsts: Vec<(u16, u64)> = rungs
                .iter()
                .filter_map(|rung| {
                    let rung = (*rung)?;
                    Some((rung, dash.get(&(code.clone(), Some(rung)))?.first_video()?))
                })
                .collect();
            (states, firsts)
        };
        let video_entries = || {
            states
                .iter()
                .filter_map(|(_, state)| state.video.as_ref())
                .flat_map(|video| &video.timeline)
        };
        let cuts = stream.ladder.cuts(
            |rung| firsts.iter().find(|(r, _)| *r == rung).map(|(_, n)| *n),
            |from| {
                video_entries()
                    .filter(|e| e.number >= from)
                    .map(|e| e.start)
                    .min()
            },
        );
        let mut periods: Vec<Period> = Vec::new();
        let marks = states.iter().flat_map(|(_, state)| &state.periods);
        let marks = marks
            .map(|mark| (mark.id, mark.start))
            .chain(cuts.cuts().iter().filter_map(|c| Some((c.from, c.start?))));
        for (id, start) in marks {
            match periods.iter_mut().find(|p| p.id == id) {
                Some(period) => period.start = period.start.min(start),
                None => periods.push(Period {
                    id,
                    start,
                    video: Vec::new(),
                    audio: None,
                }),
            }
        }
        periods.sort_by_key(|p| (p.start, p.id));
        for period in &mut periods {
            for (rung, state) in &states {
                let index = rung.unwrap_or(0);
                let dir = rung.map_or_else(String::new, |i| format!("track_{}/", u32::from(i) + 1));
                if let Some(video) = &state.video {
                    let configured = rung.and_then(|i| {
                        let variant = variants.as_ref()?.get(usize::from(i))?;
                        Some(variant.average_bandwidth)
                    });
                    let id =
                        rung.map_or_else(|| "v".to_owned(), |i| format!("v{}", u32::from(i) + 1));
                    let listed = |e: &TimelineEntry| {
                        cuts.video(index, e.number, e.period) == Some(period.id)
                    };
                    if let Some((mut r, info)) =
                        representation(id, dir.clone(), true, video, listed)
                    {
                        let size = info.and_then(|i| Some((i.width?, i.height?)));
                        let frame_rate = info
                            .and_then(|i| i.frame_rate)
                            .map(|rate| (rate.num, rate.den));
                        r.bandwidth = configured.unwrap_or(r.bandwidth).max(1);
                        r.size = size;
                        r.frame_rate = frame_rate;
                        period.video.push(r);
                    }
                }
                let listed = |e: &TimelineEntry| {
                    let end = Ts90(e.start.0 + e.duration.0);
                    cuts.audio(index, e.start, end, e.period)
                        .contains(&Some(period.id))
                };
                if let Some(audio) = &state.audio
                    && period.audio.is_none()
                    && let Some((mut r, info)) =
                        representation("a".to_owned(), dir, false, audio, listed)
                {
                    r.sample_rate = info.and_then(|i| i.sample_rate);
                    r.channels = info.and_then(|i| i.channels);
                    period.audio = Some(r);
                }
            }
        }
        periods.retain(|p| !p.video.is_empty() || p.audio.is_some());
        if periods.is_empty() {
            return None;
        }
        let mpd = Mpd {
            availability_start: origin,
            publish_time: UnixMillis::from_system_time(SystemTime::now()),
            segment: stream.segment,
            window: stream.window,
            periods,
        };
        Some(mpd.render())
    }

    /// The ladder of `code` is changing to `rungs` rungs (rung *i* is `track_{i+1}`): call it
    /// before re-registering the master with the new variants. The stream's MPD keeps its
    /// `availabilityStartTime` and opens a Period with the new ladder at the first segment
    /// every new rung has; until then the new rungs are not listed (SPEC §Hot reload, §DASH
    /// "Periods"). Nothing without DASH.
    pub fn dash_ladder_changed(&self, code: &StreamCode, rungs: u16) {
        let old = self
            .variants(code)
            .map_or(0, |v| u16::try_from(v.len()).unwrap_or(u16::MAX));
        let last_listed = {
            let dash = self.read_dash();
            dash.iter()
                .filter(|((c, _), _)| c == code)
                .filter_map(|(_, rung)| rung.state().video?.timeline.last().map(|e| e.number))
                .max()
        };
        self.with_dash_stream(code, |stream| {
            stream.ladder.change(last_listed, old, rungs);
            tracing::info!(stream = %code, old, rungs, ?last_listed, "DASH: the ladder changed; a new Period opens with it");
        });
    }

    /// Runs `f` on the DASH part of `code`'s MPD, if DASH runs for it.
    fn with_dash_stream(&self, code: &StreamCode, f: impl FnOnce(&mut DashStream)) {
        if let Some(stream) = self
            .inner
            .dash_streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(code)
        {
            f(stream);
        }
    }

    /// Registers the DASH side of a starting output: S and W of the stream's MPD are the
    /// first registration's.
    pub(crate) fn register_dash(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
        served: Arc<DashRung>,
        segment: Duration,
        window: usize,
    ) {
        self.inner
            .dash
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((code.clone(), rung), served);
        self.inner
            .dash_streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(code.clone())
            .or_insert(DashStream {
                origin: None,
                segment,
                window,
                ladder: Ladder::new(),
            });
    }

    /// `publisher.dash.window` changed on a running server: `code`'s MPD announces
    /// `timeShiftBufferDepth` = S × `window` from now on (its rungs' timelines follow in their
    /// own tasks).
    pub(crate) fn set_dash_window(&self, code: &StreamCode, window: usize) {
        self.with_dash_stream(code, |stream| stream.window = window.max(1));
    }

    /// `publisher.dash.segment_sec` changed on a running server: `code`'s MPD derives
    /// `minimumUpdatePeriod`, `minBufferTime`, `suggestedPresentationDelay` and
    /// `timeShiftBufferDepth` from `segment` from now on (its rungs open a Period with it in
    /// their own tasks).
    pub(crate) fn set_dash_segment(&self, code: &StreamCode, segment: Duration) {
        self.with_dash_stream(code, |stream| stream.segment = segment);
    }

    /// Records the wall time of `code`'s media time 0, unless a rung did already: one
    /// `availabilityStartTime` for the stream's life and its whole ladder.
    pub(crate) fn set_dash_origin(&self, code: &StreamCode, origin: UnixMillis) {
        self.with_dash_stream(code, |stream| {
            stream.origin.get_or_insert(origin);
        });
    }

    /// Removes a stopping output's DASH side (if it is still the registered one); the last
    /// rung of a stream to go takes the stream's MPD with it.
    pub(crate) fn unregister_dash(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
        served: &Arc<DashRung>,
    ) {
        let mut dash = self
            .inner
            .dash
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        remove_same(&mut dash, (code.clone(), rung), served);
        if !dash.keys().any(|(c, _)| c == code) {
            self.inner
                .dash_streams
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(code);
        }
    }

    fn read_dash(&self) -> std::sync::RwLockReadGuard<'_, DashRungs> {
        self.inner
            .dash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `/{code}/index.m3u8` the master playlist of `variants`, variant *i* being the
    /// output of rung *i* ([`start_hls_variant`](crate::start_hls_variant)). Register it
    /// before starting the variants' outputs: they number their segments as the master says.
    ///
    /// `grid` is the keyframe interval every rung's encoder forces on the same PTS instants,
    /// if the ladder has one: the variants are then cut and numbered on it, so their segments
    /// line up whenever each started (`tributary_packager::HlsConfig::grid`). Without it they
    /// number from one shared first number. Both are fixed by the first registration of the
    /// code: re-registering (a changed ladder) replaces only the variants, so running and new
    /// variants keep one numbering; after [`unregister_master`](Self::unregister_master) a
    /// new ladder starts past every number used (SPEC §HLS "Numbering").
    pub fn register_master(
        &self,
        code: &StreamCode,
        variants: Vec<Variant>,
        grid: Option<Duration>,
    ) {
        let unix_secs = UnixMillis::from_system_time(SystemTime::now()).as_secs();
        let first_number = self.first_number(code, unix_secs);
        let mut masters = self
            .inner
            .masters
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let numbering = masters.get(code).map_or(
            Numbering {
                first_number,
                grid: grid.map(Ts90::from_duration),
            },
            |m| m.numbering,
        );
        masters.insert(
            code.clone(),
            Master {
                variants: variants.into(),
                numbering,
            },
        );
    }

    /// How the variants of `code`'s ladder number their segments, while its master is
    /// registered.
    pub(crate) fn numbering(&self, code: &StreamCode) -> Option<Numbering> {
        self.inner
            .masters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(code)
            .map(|m| m.numbering)
    }

    /// Removes the master playlist of `code`, and the windows of its retired variants: the
    /// stream's HLS is stopping, so nothing of it stays served.
    pub fn unregister_master(&self, code: &StreamCode) {
        self.inner
            .masters
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(code);
        self.inner
            .windows
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(c, _), window| c != code || !window.is_retired());
    }

    /// The variants of `code`'s ladder, while its master is registered.
    fn variants(&self, code: &StreamCode) -> Option<Arc<[Variant]>> {
        self.inner
            .masters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(code)
            .map(|m| Arc::clone(&m.variants))
    }

    /// The master playlist of `code`, once a variant has a segment.
    fn master(&self, code: &StreamCode) -> Option<String> {
        let variants = self.variants(code)?;
        let measured: Vec<_> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let measured = u16::try_from(i)
                    .ok()
                    .and_then(|rung| self.window(code, Some(rung))?.measured());
                (v.clone(), measured)
            })
            .collect();
        master::render(&measured)
    }

    /// Whether an HLS output of this stream is registered.
    pub fn contains(&self, code: &StreamCode) -> bool {
        self.read_windows().contains_key(&(code.clone(), None))
    }

    /// The number a new run for `code` starts at, given Unix seconds now.
    pub(crate) fn first_number(&self, code: &StreamCode, unix_secs: i64) -> u64 {
        let now = u64::try_from(unix_secs).unwrap_or(0);
        let last = self.lock_numbers().get(code).copied();
        last.map_or(now, |last| now.max(last.saturating_add(1)))
    }

    /// Registers a starting output.
    pub(crate) fn register(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
        window: Arc<Window>,
    ) -> Result<(), PublishError> {
        let key = (code.clone(), rung);
        let mut windows = self
            .inner
            .windows
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A retired variant's window lingers for its players; a new output of the rung
        // replaces it (the retiring handle then finds another window and leaves it alone).
        if windows.get(&key).is_some_and(|w| !w.is_retired()) {
            return Err(PublishError::AlreadyRunning { code: code.clone() });
        }
        windows.insert(key, window);
        Ok(())
    }

    /// Removes a stopping output (if `window` is still the registered one) and remembers its
    /// last number; `unix_secs` is now, for forgetting numbers that no longer matter.
    pub(crate) fn unregister(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
        window: &Arc<Window>,
        last_number: Option<u64>,
        unix_secs: i64,
    ) {
        {
            let mut windows = self
                .inner
                .windows
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            remove_same(&mut windows, (code.clone(), rung), window);
        }
        let now = u64::try_from(unix_secs).unwrap_or(0);
        let mut numbers = self.lock_numbers();
        numbers.retain(|_, last| *last >= now);
        if let Some(last) = last_number.filter(|&last| last >= now) {
            let entry = numbers.entry(code.clone()).or_insert(last);
            *entry = (*entry).max(last);
        }
        while numbers.len() > MAX_REMEMBERED {
            let Some(smallest) = numbers
                .iter()
                .min_by_key(|(_, last)| **last)
                .map(|(code, _)| code.clone())
            else {
                break;
            };
            numbers.remove(&smallest);
        }
    }

    /// The LL-HLS blocking request counters.
    pub(crate) fn blocking_tally(&self) -> &crate::hls::blocking::Tally {
        &self.inner.blocking
    }

    pub(crate) fn window(&self, code: &StreamCode, rung: Option<u16>) -> Option<Arc<Window>> {
        self.read_windows().get(&(code.clone(), rung)).cloned()
    }

    fn read_windows(&self) -> std::sync::RwLockReadGuard<'_, Windows> {
        self.inner
            .windows
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_numbers(&self) -> std::sync::MutexGuard<'_, HashMap<StreamCode, u64>> {
        self.inner
            .last_numbers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for HlsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsRegistry")
            .field("outputs", &self.read_windows().len())
            .finish_non_exhaustive()
    }
}

/// Removes `key` from `map` if it still maps to `value` (a newer output may have taken the
/// key over).
fn remove_same<K: std::hash::Hash + Eq, T>(map: &mut HashMap<K, Arc<T>>, key: K, value: &Arc<T>) {
    if map.get(&key).is_some_and(|kept| Arc::ptr_eq(kept, value)) {
        map.remove(&key);
    }
}

/// A track's Representation in a Period: the entries `in_period` lists in it, with their init,
/// and what was measured of the track while that init was current; `None` when it has no
/// entry there. Its bandwidth is the measured one.
fn representation(
    id: String,
    dir: String,
    video: bool,
    track: &TrackState,
    in_period: impl Fn(&TimelineEntry) -> bool,
) -> Option<(Representation, Option<&TrackInfo>)> {
    let mut listed = track.timeline.iter().filter(|e| in_period(e));
    let first = *listed.next()?;
    // Only the entries of its first one's init: an audio segment with a new init waits
    // (unlisted) for the video segment that opens its Period.
    let timeline: Vec<_> = std::iter::once(first)
        .chain(listed.filter(|e| e.init == first.init).copied())
        .collect();
    let init = track.inits.iter().find(|i| i.name == first.init)?;
    let newest = track
        .inits
        .last()
        .is_some_and(|last| last.name == init.name);
    let info = if newest {
        track.info.as_ref()
    } else {
        init.info.as_ref()
    };
    let representation = Representation {
        id,
        dir,
        codecs: init.codecs.clone(),
        bandwidth: track.bandwidth.max(1),
        size: None,
        frame_rate: None,
        sample_rate: None,
        channels: None,
        timescale: init.timescale,
        init: dash_init_name(video, init.name),
        timeline,
    };
    Some((representation, info))
}

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const MPD_TYPE: &str = "application/dash+xml";
/// SPEC §DASH: the MPD is never cached.
const MPD_CACHE: &str = "no-store, max-age=0, must-revalidate";
/// DASH audio segments and init.
const AUDIO_MP4_TYPE: &str = "audio/mp4";
const PLAYLIST_CACHE: &str = "no-cache";
const SEGMENT_TYPE: &str = "video/mp2t";
/// fMP4 segments and init segments.
const MP4_TYPE: &str = "video/mp4";
const SEGMENT_CACHE: &str = "public, max-age=31536000, immutable";
/// Stream codes whose last number is remembered at most.
const MAX_REMEMBERED: usize = 4096;
