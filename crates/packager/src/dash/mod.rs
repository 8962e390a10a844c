//! DASH: the live MPD (SPEC §DASH), written from the same segments HLS cuts.
//!
//! DASH here is not a second packager. A rung's video and its audio each go through their own
//! [`HlsSegmenter`](crate::HlsSegmenter) in fMP4 mode, fed the same frames and numbered
//! exactly as HLS numbers that rung (same first number, same keyframe grid), so HLS-TS,
//! HLS-fMP4 and DASH share cut points and numbers. What DASH adds is only what its manifest
//! needs:
//!
//! - [`Timeline`]: the last W segments of one track as `SegmentTimeline` entries (number,
//!   start, duration in 90 kHz), kept so that `<S>` entries never overlap and `$Number$` maps
//!   onto them (a gap in the numbers starts the list over after it).
//! - [`Periods`]: which Period each segment belongs to. A segment whose init segment differs
//!   from its track's previous one (a codec change: the segmenter names a new init only when
//!   its bytes differ) opens a new Period at its start; an input switch whose inits are byte
//!   for byte the old ones stays in the Period it is in (SPEC §DASH "Periods").
//! - [`Mpd`] and [`Mpd::render`]: the dynamic MPD text, its Periods in order (the first from
//!   media time 0 at `availabilityStartTime`, each later one from its first segment's media
//!   time, with `presentationTimeOffset` so the `tfdt` clock runs on unchanged), each with a
//!   video AdaptationSet with one Representation per rung and one audio AdaptationSet, each
//!   Representation with its own `SegmentTemplate` (paths, init and timescale of its own rung
//!   in that Period). Pure: the same description renders the same bytes.
//! - [`Ladder`]: a change of the transcoder ladder (rungs added, removed or changed) opens a
//!   Period for the whole ladder at one segment number, once every new rung has a segment
//!   there (decided when the MPD is rendered; the module `ladder` says why).
//!
//! Why a codec change needs a Period and not just a new init: a DASH player appends a
//! Representation's init once and then only media segments; a segment of another codec (or
//! other parameter sets) behind the old init fails to decode. A new Period makes the player
//! set up its decoders again from the new init, and old Periods stay listed while their
//! segments are in the window so a player behind the live edge plays them out.
//!
//! Why video and audio are separate segments, unlike HLS-fMP4's muxed ones: DASH players
//! (dash.js, Shaka, ExoPlayer) expect one media type per AdaptationSet, and an ABR ladder
//! packages its audio once for every rung (SPEC §DASH "Tracks").

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use tributary_media::{SessionId, Ts90};

use crate::{InitName, Segment, UnixMillis};

pub use ladder::{Ladder, LadderCut, LadderCuts};
pub use period::{Assigned, PeriodMark, Periods};

/// The MPD's file name under the stream (`/{code}/index.mpd`).
pub const MPD_NAME: &str = "index.mpd";

/// The sliding window of one track's segments, as the MPD's `SegmentTimeline` lists them.
///
/// Push each finished segment of the track's segmenter; the oldest beyond `window` slides
/// out. Each entry lasts until the next one starts, so entries neither overlap nor gap (the
/// newest keeps its measured duration until the next one comes). Entries keep their numbers
/// consecutive: a segment whose number is not the last one +
/// 1 (a cell a grid-cut rung missed) or that starts before the last one ended (a timeline
/// that went back) clears the list first, so `startNumber` + position is always the number
/// and `<S>` entries never overlap.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The listed segments, oldest first.
    entries: VecDeque<TimelineEntry>,
    /// How many are listed at most (`live_window`).
    window: usize,
}

/// One listed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Its number (`$Number$`).
    pub number: u64,
    /// The PTS of its first frame.
    pub start: Ts90,
    /// Its duration.
    pub duration: Ts90,
    /// The session its frames belong to.
    pub session: SessionId,
    /// The init segment it needs.
    pub init: InitName,
    /// The id of the Period it is listed in ([`Periods`]).
    pub period: u64,
}

impl Timeline {
    /// An empty timeline listing `window` segments at most (at least 1).
    pub fn new(window: usize) -> Self {
        let window = window.max(1);
        Self {
            entries: VecDeque::with_capacity(window),
            window,
        }
    }

    /// Lists a finished segment in Period `period`; returns the entry that slid out, if any.
    pub fn push(&mut self, segment: &Segment, period: u64) -> Option<TimelineEntry> {
        let entry = TimelineEntry {
            number: segment.number,
            start: segment.start,
            duration: segment.duration,
            session: segment.session,
            init: segment.init.unwrap_or(InitName::First),
            period,
        };
        if let Some(last) = self.entries.back()
            && (entry.number != last.number + 1 || entry.start.0 < last.start.0 + 1)
        {
            self.entries.clear();
        }
        // A segment lasts until the next one starts (SPEC §DASH "Cutting"): one measured to
        // end after that (its last frame's duration guessed) is clipped, and one followed by
        // a gap (the end of a session: an input switch) is stretched over it, so the `<S>`
        // entries neither overlap nor leave a hole a player would find no segment for; the
        // player steps over the small hole in its buffer instead.
        if let Some(last) = self.entries.back_mut() {
            last.duration = Ts90(entry.start.0 - last.start.0);
        }
        self.entries.push_back(entry);
        if self.entries.len() > self.window {
            return self.entries.pop_front();
        }
        None
    }

    /// Moves the listed entries of `session` that end after `start` into Period `period` (a
    /// Period the other track opened at `start` for the session after these were listed);
    /// returns how many moved.
    pub fn retag(&mut self, session: SessionId, start: Ts90, period: u64) -> usize {
        let moved = |e: &&mut TimelineEntry| {
            e.session == session && e.period != period && e.start.0 + e.duration.0 > start.0
        };
        let mut count = 0;
        for entry in self.entries.iter_mut().filter(moved) {
            entry.period = period;
            count += 1;
        }
        count
    }

    /// Lists `window` segments at most from now on (at least 1): a smaller window slides the
    /// oldest entries out at once and returns them, oldest first; a larger one lists more as
    /// segments come (`publisher.dash.window` changed on a running server).
    pub fn set_window(&mut self, window: usize) -> Vec<TimelineEntry> {
        self.window = window.max(1);
        let over = self.entries.len().saturating_sub(self.window);
        self.entries.drain(..over).collect()
    }

    /// How many segments are listed at most.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The listed entries, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &TimelineEntry> + '_ {
        self.entries.iter()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The longest listed duration.
    pub fn longest(&self) -> Ts90 {
        self.entries
            .iter()
            .map(|e| e.duration)
            .max()
            .unwrap_or(Ts90(0))
    }
}

/// A dynamic MPD as [`render`](Self::render) writes it (SPEC §DASH).
#[derive(Debug, Clone, PartialEq)]
pub struct Mpd {
    /// `availabilityStartTime`: the wall time of media time 0, one for the stream's life and
    /// for every rung (SPEC §DASH "One `availabilityStartTime`").
    pub availability_start: UnixMillis,
    /// `publishTime`, and the time `UTCTiming` (`urn:mpeg:dash:utc:direct:2014`) tells the
    /// player: when the MPD is rendered.
    pub publish_time: UnixMillis,
    /// S, the shortest segment: `minimumUpdatePeriod`, and `minBufferTime`,
    /// `suggestedPresentationDelay` derived from it.
    pub segment: Duration,
    /// W, the segments listed: `timeShiftBufferDepth` = S × W.
    pub window: usize,
    /// The Periods, oldest first; one without a Representation is left out.
    pub periods: Vec<Period>,
}

/// One Period of an [`Mpd`]: what plays from its start until the next one's.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// `id`, stable while the Period is listed ([`PeriodMark::id`]).
    pub id: u64,
    /// Its start in media time (`start`, relative to `availabilityStartTime`; also each
    /// `SegmentTemplate`'s `presentationTimeOffset`).
    pub start: Ts90,
    /// The video Representations, one per rung, in profile order.
    pub video: Vec<Representation>,
    /// The audio Representation, packaged once.
    pub audio: Option<Representation>,
}

/// One Representation with its `SegmentTemplate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Representation {
    /// `id`, unique in the MPD (`v1`, `a`).
    pub id: String,
    /// The directory of its files relative to the MPD: empty, or `track_<N>/`.
    pub dir: String,
    /// The RFC 6381 `codecs` string.
    pub codecs: String,
    /// `bandwidth`, bits per second.
    pub bandwidth: u64,
    /// Video: displayed width and height.
    pub size: Option<(u32, u32)>,
    /// Video: `frameRate` as (frames, per seconds).
    pub frame_rate: Option<(u32, u32)>,
    /// Audio: `audioSamplingRate`.
    pub sample_rate: Option<u32>,
    /// Audio: channels, for the `AudioChannelConfiguration`.
    pub channels: Option<u8>,
    /// The `timescale` of its media segments' `tfdt` (the init's `mdhd`).
    pub timescale: u32,
    /// Its init segment's file name in `dir` ([`dash_init_name`]).
    pub init: String,
    /// Its segments.
    pub timeline: Vec<TimelineEntry>,
}

impl Mpd {
    /// The MPD text. Video segments are `seg_v_$Number$.m4s`, audio `seg_a_$Number$.m4s`,
    /// each with the init its Representation names, under each Representation's `dir`.
    pub fn render(&self) -> String {
        let s = self.segment.as_millis() as i64;
        let longest = self
            .periods
            .iter()
            .flat_map(|p| p.video.iter().chain(&p.audio))
            .flat_map(|r| r.timeline.iter().map(|e| e.duration.as_millis()))
            .max()
            .unwrap_or(0)
            .max(s);
        let window = i64::try_from(self.window).unwrap_or(i64::MAX);
        let mut out = String::with_capacity(2048);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
             profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"dynamic\" \
             availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"{}\" \
             minBufferTime=\"{}\" suggestedPresentationDelay=\"{}\" \
             timeShiftBufferDepth=\"{}\" maxSegmentDuration=\"{}\">",
            self.availability_start,
            self.publish_time,
            iso_duration(s),
            iso_duration((2 * s).max(4000)),
            iso_duration((3 * s).max(6000)),
            iso_duration(s.saturating_mul(window)),
            iso_duration(longest),
        );
        for period in &self.periods {
            if period.video.is_empty() && period.audio.is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "  <Period id=\"{}\" start=\"{}\">",
                period.id,
                iso_duration(period.start.as_millis())
            );
            adaptation_set(&mut out, 'v', &period.video, period.start);
            adaptation_set(&mut out, 'a', period.audio.as_slice(), period.start);
            out.push_str("  </Period>\n");
        }
        let _ = writeln!(
            out,
            "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>",
            self.publish_time
        );
        out.push_str("</MPD>\n");
        out
    }
}

/// The name of a DASH media segment: `seg_v_<n>.m4s` (video) or `seg_a_<n>.m4s` (audio), the
/// number zero-padded to 6 digits like HLS's.
pub fn dash_segment_name(video: bool, number: u64) -> String {
    format!("seg_{}_{number:06}.m4s", if video { 'v' } else { 'a' })
}

/// The name of a DASH init segment: `init_v.mp4` / `init_a.mp4` for the output's first
/// init, `init_v_<session>.mp4` (and `init_v_<session>_<i>.mp4`) for later ones, as HLS names
/// `init.mp4` and `init_<session>.mp4`.
pub fn dash_init_name(video: bool, init: InitName) -> String {
    let kind = if video { 'v' } else { 'a' };
    match init {
        InitName::First => format!("init_{kind}.mp4"),
        InitName::Session(session, 0) => format!("init_{kind}_{}.mp4", session.0),
        InitName::Session(session, index) => format!("init_{kind}_{}_{index}.mp4", session.0),
    }
}

/// The file a DASH name under a stream (or rung) directory names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashName {
    /// `index.mpd`.
    Mpd,
    /// `init_v.mp4` (`true`) or `init_a.mp4`, or a later init ([`dash_init_name`]).
    Init {
        /// Video rather than audio.
        video: bool,
        /// Which init of the output.
        init: InitName,
    },
    /// `seg_v_<n>.m4s` or `seg_a_<n>.m4s`.
    Segment {
        /// Video rather than audio.
        video: bool,
        /// The number.
        number: u64,
    },
}

impl DashName {
    /// Parses a name exactly as [`Mpd::render`] and [`dash_segment_name`] spell them; any
    /// other name is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        if name == MPD_NAME {
            return Some(Self::Mpd);
        }
        if let Some(rest) = name.strip_prefix("init_") {
            let (video, rest) = match rest.split_at_checked(1)? {
                ("v", rest) => (true, rest),
                ("a", rest) => (false, rest),
                _ => return None,
            };
            // `init_v.mp4` is HLS's `init.mp4`, `init_v_<s>.mp4` its `init_<s>.mp4`.
            let init = InitName::parse(&format!("init{rest}"))?;
            return (dash_init_name(video, init) == name).then_some(Self::Init { video, init });
        }
        let rest = name.strip_prefix("seg_")?.strip_suffix(".m4s")?;
        let (kind, digits) = rest.split_at_checked(2)?;
        let video = match kind {
            "v_" => true,
            "a_" => false,
            _ => return None,
        };
        if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = digits.parse().ok()?;
        (dash_segment_name(video, number) == name).then_some(Self::Segment { video, number })
    }
}

/// Writes the video (`kind` `v`) or audio (`a`) AdaptationSet with its Representations;
/// nothing without one.
fn adaptation_set(
    out: &mut String,
    kind: char,
    representations: &[Representation],
    period_start: Ts90,
) {
    if representations.is_empty() {
        return;
    }
    let (id, content, mime) = match kind {
        'v' => (0, "video", "video/mp4"),
        _ => (1, "audio", "audio/mp4"),
    };
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" \
         segmentAlignment=\"true\" startWithSAP=\"1\">"
    );
    for r in representations {
        let _ = write!(
            out,
            "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
            xml(&r.id),
            xml(&r.codecs),
            r.bandwidth
        );
        if let Some((w, h)) = r.size {
            let _ = write!(out, " width=\"{w}\" height=\"{h}\"");
        }
        match r.frame_rate {
            Some((n, 1)) => {
                let _ = write!(out, " frameRate=\"{n}\"");
            }
            Some((n, d)) => {
                let _ = write!(out, " frameRate=\"{n}/{d}\"");
            }
            None => {}
        }
        if let Some(rate) = r.sample_rate {
            let _ = write!(out, " audioSamplingRate=\"{rate}\"");
        }
        out.push_str(">\n");
        if let Some(channels) = r.channels {
            let _ = writeln!(
                out,
                "        <AudioChannelConfiguration \
                 schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" \
                 value=\"{channels}\"/>"
            );
        }
        template(out, r, kind, period_start);
        out.push_str("      </Representation>\n");
    }
    out.push_str("    </AdaptationSet>\n");
}

/// Writes a Representation's `SegmentTemplate` with its `SegmentTimeline`; a Period starting
/// after media time 0 gets a `presentationTimeOffset` of its start.
fn template(out: &mut String, r: &Representation, kind: char, period_start: Ts90) {
    let dir = xml(&r.dir);
    let start_number = r.timeline.first().map_or(0, |e| e.number);
    let scale = |t: Ts90| {
        i64::try_from(i128::from(t.0) * i128::from(r.timescale) / i128::from(Ts90::HZ))
            .unwrap_or(i64::MAX)
    };
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"{}\" startNumber=\"{start_number}\" ",
        r.timescale
    );
    if period_start.0 > 0 {
        let _ = write!(out, "presentationTimeOffset=\"{}\" ", scale(period_start));
    }
    let _ = writeln!(
        out,
        "initialization=\"{dir}{}\" media=\"{dir}seg_{kind}_$Number%06d$.m4s\">",
        xml(&r.init)
    );
    out.push_str("          <SegmentTimeline>\n");
    // Runs of equal durations become one `<S>` with `r`; `t` is written first and after any
    // gap.
    let mut run: Option<(i64, i64, u32)> = None; // (t, d, repeats)
    let mut end = None;
    for e in &r.timeline {
        let t = scale(e.start);
        let d = (scale(Ts90(e.start.0 + e.duration.0)) - t).max(1);
        let contiguous = end == Some(t);
        match &mut run {
            Some((_, rd, repeats)) if contiguous && *rd == d => *repeats += 1,
            _ => {
                if let Some(open) = run.take() {
                    write_s(out, open);
                }
                run = Some((if contiguous { -1 } else { t }, d, 0));
            }
        }
        end = Some(t + d);
    }
    if let Some(open) = run {
        write_s(out, open);
    }
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
}

/// One `<S>`; `t` < 0 means it follows the previous one and is left out.
fn write_s(out: &mut String, (t, d, repeats): (i64, i64, u32)) {
    out.push_str("            <S");
    if t >= 0 {
        let _ = write!(out, " t=\"{t}\"");
    }
    let _ = write!(out, " d=\"{d}\"");
    if repeats > 0 {
        let _ = write!(out, " r=\"{repeats}\"");
    }
    out.push_str("/>\n");
}

/// An `xs:duration` of whole milliseconds: `PT2S`, `PT2.5S`, `PT0.04S`.
fn iso_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let (secs, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return format!("PT{secs}S");
    }
    let frac = format!("{frac:03}");
    format!("PT{secs}.{}S", frac.trim_end_matches('0'))
}

/// `text` escaped for an XML attribute.
fn xml(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

mod ladder;
mod period;
#[cfg(test)]
mod tests;
