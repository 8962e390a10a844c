//! The argv of one FFmpeg process (SPEC §Transcoder, "Argument builder").
//!
//! Order: log and progress flags → input flags → for each output: maps → video → audio →
//! `extra_args` → `-f mpegts … pipe:<fd>`. Output *i* of a process writes to file
//! descriptor [`FIRST_OUTPUT_FD`]` + i`; progress goes to [`PROGRESS_FD`] every second; the
//! input is stdin. The transcoder wires those descriptors; nothing here touches them.

use tributary_media::Ts90;

use super::encoder::{Family, Hw, Preset};
use super::overlay::{Overlay, OverlayFilters, decimal};
use super::{Audio, Encode, Ladder, Parity, Resize, Rung};

/// Where FFmpeg writes `-progress` (stdout).
pub const PROGRESS_FD: u32 = 1;

/// The descriptor of a process's first output; output *i* is `FIRST_OUTPUT_FD + i`.
pub const FIRST_OUTPUT_FD: u32 = 3;

/// Which rungs one FFmpeg process encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Every rung (`multi` mode): output *i* is rung *i*.
    Ladder,
    /// One rung (`per_profile` mode): its only output. An index past the ladder has no
    /// output, so FFmpeg refuses to start.
    Rung(usize),
}

/// What is known only when a process starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Context<'a> {
    /// The source's video frame rate, when the input reported one; GOP sizes fall back to
    /// 25 fps without it (SPEC §Defaults).
    pub source_fps: Option<f64>,
    /// `publisher.hls.live_segment_sec`: the keyframe interval of rungs that set none.
    pub segment_sec: f64,
    /// The PTS of the first video frame the process will read (the keyframe the feeder starts
    /// it at). FFmpeg's keyframe expression counts time from a process's first frame; this
    /// offset turns that back into absolute time, so processes started at different moments
    /// force keyframes on the same instants. `None`: the grid starts at the first frame.
    pub first_pts: Option<Ts90>,
    /// The watermark to draw, if any.
    pub overlay: Option<OverlayInput<'a>>,
}

impl Context<'_> {
    /// A context with HLS segments of `segment_sec`, no known source rate or first PTS, and
    /// no watermark.
    pub fn new(segment_sec: f64) -> Self {
        Self {
            source_fps: None,
            segment_sec,
            first_pts: None,
            overlay: None,
        }
    }
}

/// A watermark and the file it draws from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayInput<'a> {
    /// The parsed watermark.
    pub overlay: &'a Overlay,
    /// For text: the file the transcoder wrote the text to. For an image: the image (its
    /// `image_path`, or the library file of its `asset_id`).
    pub file: &'a str,
}

/// The argv (without the program name) of the FFmpeg process that runs `job` of `ladder`.
pub fn argv(ladder: &Ladder, job: Job, ctx: &Context<'_>) -> Vec<String> {
    let mut args = Args(Vec::with_capacity(64));
    args.push_all(&[
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostdin",
        "-nostats",
        "-progress",
    ]);
    args.push(format!("pipe:{PROGRESS_FD}"));
    args.push_all(&["-stats_period", "1", "-copyts"]);
    input_flags(&mut args, ladder);

    let rungs: Vec<&Rung> = match job {
        Job::Ladder => ladder.rungs.iter().collect(),
        Job::Rung(i) => ladder.rungs.get(i).into_iter().collect(),
    };
    let widest = ladder
        .rungs
        .iter()
        .filter_map(|r| r.encode().map(|e| e.width))
        .max()
        .unwrap_or(0);
    for (output, rung) in (0u32..).zip(rungs) {
        args.push_all(&["-map", "0:v:0?", "-map", "0:a:0?"]);
        match rung {
            Rung::Copy => args.push_all(&["-c:v", "copy"]),
            Rung::Encode(encode) => video(&mut args, ladder, encode, widest, ctx),
        }
        audio(&mut args, ladder);
        for extra in &ladder.extra_args {
            args.push(extra.clone());
        }
        // Timestamps leave as they came: `-mpegts_copyts` alone still lets the muxer shift
        // a stream whose first DTS is negative (FFmpeg reads timestamps just below the 33-bit
        // wrap as negative) to start at 0.
        args.push_all(&[
            "-f",
            "mpegts",
            "-mpegts_copyts",
            "1",
            "-avoid_negative_ts",
            "disabled",
            "-muxdelay",
            "0",
            "-muxpreload",
            "0",
            "-flush_packets",
            "1",
        ]);
        args.push(format!("pipe:{}", FIRST_OUTPUT_FD + output));
    }
    args.0
}

/// The argv under construction.
struct Args(Vec<String>);

impl Args {
    fn push(&mut self, arg: String) {
        self.0.push(arg);
    }

    fn push_all(&mut self, args: &[&str]) {
        self.0.extend(args.iter().map(|a| (*a).to_owned()));
    }

    fn pair(&mut self, flag: &str, value: impl ToString) {
        self.0.push(flag.to_owned());
        self.0.push(value.to_string());
    }
}

/// Input flags: probing, hardware decoding, the decoder, then stdin as MPEG-TS.
///
/// The probe is short (**Tributary**; SPEC's table and open-streamer say 15 s / 32 MiB): the
/// input is the feeder's own MPEG-TS, which announces every track in its first PMT and
/// starts at a keyframe with its parameter sets, so one second tells FFmpeg all it needs. On
/// a live pipe FFmpeg reads the whole probe before it writes anything: 15 s of probe held
/// every rung back about 13 s at start and after each restart, and FFmpeg then caught up at
/// twice real time.
fn input_flags(args: &mut Args, ladder: &Ladder) {
    args.push_all(&[
        "-fflags",
        "+genpts+discardcorrupt",
        "-analyzeduration",
        PROBE_MICROS,
        "-probesize",
        PROBE_BYTES,
    ]);
    let render_node = format!("/dev/dri/renderD{}", 128 + ladder.device);
    match ladder.hw {
        Hw::None => {}
        Hw::Nvenc => {
            args.push_all(&["-hwaccel", "cuda", "-hwaccel_output_format", "cuda"]);
            args.pair("-hwaccel_device", ladder.device);
        }
        Hw::Vaapi => {
            args.push_all(&["-hwaccel", "vaapi", "-hwaccel_output_format", "vaapi"]);
            args.pair("-hwaccel_device", render_node);
        }
        Hw::Qsv => {
            args.push_all(&["-hwaccel", "qsv", "-hwaccel_output_format", "qsv"]);
            args.pair("-qsv_device", render_node);
        }
        Hw::VideoToolbox => args.push_all(&["-hwaccel", "videotoolbox"]),
    }
    if let Some(decoder) = &ladder.decoder {
        args.pair("-c:v", decoder);
    }
    args.push_all(&["-f", "mpegts", "-i", "pipe:0"]);
}

/// The video options of one encoded output.
fn video(args: &mut Args, ladder: &Ladder, e: &Encode, widest: u32, ctx: &Context<'_>) {
    let family = e.encoder.family;
    args.pair("-c:v", &e.encoder.name);
    match &e.preset {
        None => {}
        Some(Preset::Named(name)) => args.pair("-preset", name),
        Some(Preset::CpuUsed(n)) => {
            args.pair("-deadline", "realtime");
            args.pair("-cpu-used", n);
        }
    }
    let graph = filter_graph(ladder, e, widest, ctx);
    if !graph.is_empty() {
        args.pair("-vf", graph);
    }

    args.pair("-b:v", format!("{}k", e.bitrate_kbps));
    if let Some(max) = e.max_bitrate_kbps {
        args.pair("-maxrate", format!("{max}k"));
        args.pair("-bufsize", format!("{}k", u64::from(max) * 2));
    }

    // GOP: `global.gop` frames, else one keyframe interval of frames; keyframes are forced
    // on a grid of absolute instants every `interval` seconds, the same in every rung and
    // every process (timestamps pass through), so segments line up.
    let fps = e
        .fps
        .or(ctx.source_fps)
        .filter(|f| *f > 0.0)
        .unwrap_or(25.0);
    let interval = match ladder.gop {
        Some(gop) => f64::from(gop) / fps,
        None => e.keyframe_interval.unwrap_or(ctx.segment_sec),
    };
    let interval = if interval > 0.0 { interval } else { 2.0 };
    let gop = ladder
        .gop
        .unwrap_or_else(|| ((interval * fps).round() as u32).max(1));
    args.pair("-g", gop);
    args.pair("-keyint_min", (gop / 2).max(1));
    // Timestamps: with the source's rate, the encoder keeps the demuxer's 90 kHz time base,
    // so every frame keeps its PTS exactly; with a set rate, frames sit on that rate's grid
    // (within half a frame of the source's).
    match e.fps {
        Some(fps) => {
            args.pair("-r", decimal(fps));
            args.pair("-fps_mode", "cfr");
        }
        None => {
            args.pair("-fps_mode", "passthrough");
            args.pair("-enc_time_base:v", "-1");
        }
    }
    // FFmpeg's `t` counts from the process's first frame: adding that frame's PTS makes it
    // absolute, on the raw buffer's 64-bit timeline (where the transcoder puts the output
    // back and the HLS variants cut their grid), not on the 33 bits FFmpeg reads. A frame
    // counts as on an instant from half a frame before it with a set rate (whose rounding
    // moves the first frame by up to that much), so every process picks the same frame;
    // with the source's rate only float noise needs absorbing.
    let offset = ctx.first_pts.map_or(0.0, |pts| pts.0 as f64 / 90_000.0);
    let slack = e.fps.map_or(0.0001, |fps| 0.5 / fps);
    let at = format!("{:.6}", offset + slack);
    let k = decimal(interval);
    args.pair(
        "-force_key_frames",
        format!(
            "expr:if(isnan(prev_forced_t),1,gte(floor((t+{at})/{k}),floor((prev_forced_t+{at})/{k})+1))"
        ),
    );
    if matches!(family, Family::X264 | Family::X265 | Family::Nvenc) {
        args.push_all(&["-forced-idr", "1"]);
    }
    if ladder.rungs.len() > 1 {
        match family {
            Family::X264 => args.push_all(&["-sc_threshold", "0"]),
            Family::X265 => args.push_all(&["-x265-params", "scenecut=0"]),
            Family::Nvenc => args.push_all(&["-no-scenecut", "1"]),
            Family::SvtAv1 => args.push_all(&["-svtav1-params", "scd=0"]),
            _ => {}
        }
    }

    if let Some(bf) = e.bframes {
        args.pair("-bf", bf);
        if family == Family::Nvenc && bf > 0 {
            args.push_all(&["-b_ref_mode", "middle"]);
        }
    }
    if let Some(refs) = e.refs {
        args.pair("-refs", refs);
    }
    if let Some(profile) = &e.profile {
        args.pair("-profile:v", profile);
    }
    if let Some(level) = &e.level {
        args.pair("-level", level);
    }
}

/// The audio options of one output.
fn audio(args: &mut Args, ladder: &Ladder) {
    match &ladder.audio {
        Audio::Copy => args.push_all(&["-c:a", "copy"]),
        Audio::Encode(a) => {
            args.pair("-c:a", a.codec.encoder());
            args.pair("-b:a", format!("{}k", a.bitrate_kbps));
            if let Some(rate) = a.sample_rate {
                args.pair("-ar", rate);
            }
            if let Some(channels) = a.channels {
                args.pair("-ac", channels);
            }
            let mut filters = Vec::new();
            if a.normalize {
                filters.push("loudnorm=I=-23:LRA=7:TP=-2".to_owned());
            }
            if let Some(volume) = &a.volume {
                filters.push(format!("volume={volume}"));
            }
            if !filters.is_empty() {
                args.pair("-af", filters.join(","));
            }
        }
    }
    if let Some(language) = &ladder.language {
        args.pair("-metadata:s:a:0", format!("language={language}"));
    }
}

/// The `-vf` graph of an encoded rung: deinterlace → resize → `setsar` → watermark (SPEC
/// §Transcoder "Filters"); empty when there is nothing to do.
fn filter_graph(ladder: &Ladder, e: &Encode, widest: u32, ctx: &Context<'_>) -> String {
    let hw = ladder.hw;
    let mut chain: Vec<String> = Vec::new();
    if let Some(parity) = ladder.deinterlace {
        let p = match parity {
            Parity::Auto => -1,
            Parity::Tff => 0,
            Parity::Bff => 1,
        };
        chain.push(match hw {
            Hw::Nvenc => format!("yadif_cuda=mode=0:parity={p}:deint=0"),
            Hw::Vaapi => "deinterlace_vaapi".to_owned(),
            Hw::Qsv => "deinterlace_qsv".to_owned(),
            Hw::None | Hw::VideoToolbox => format!("yadif=mode=0:parity={p}:deint=0"),
        });
    }
    resize(&mut chain, hw, e);
    if let Some((num, den)) = e.sar {
        chain.push(format!("setsar=sar={num}/{den}"));
    }

    let Some(mark) = ctx.overlay else {
        return chain.join(",");
    };
    let scale = if widest > 0 && e.width > 0 {
        f64::from(e.width) / f64::from(widest)
    } else {
        1.0
    };
    // NVENC frames live in GPU memory: download for the CPU filter, upload again after it.
    let (down, up) = if hw == Hw::Nvenc {
        (Some("hwdownload,format=nv12"), ",hwupload_cuda")
    } else {
        (None, "")
    };
    chain.extend(down.map(str::to_owned));
    match mark.overlay.filters(mark.file, scale) {
        OverlayFilters::Chain(filter) => {
            chain.push(filter);
            let mut graph = chain.join(",");
            graph.push_str(up);
            graph
        }
        OverlayFilters::Source { source, overlay } => {
            if chain.is_empty() {
                format!("{source}[wm];[in][wm]{overlay}{up}[out]")
            } else {
                let base = chain.join(",");
                format!("[in]{base}[base];{source}[wm];[base][wm]{overlay}{up}[out]")
            }
        }
    }
}

/// The resize filters of a rung (SPEC §Transcoder "Filters").
fn resize(chain: &mut Vec<String>, hw: Hw, e: &Encode) {
    let scaler = match hw {
        Hw::Nvenc => "scale_cuda",
        Hw::Vaapi => "scale_vaapi",
        Hw::Qsv => "scale_qsv",
        Hw::None | Hw::VideoToolbox => "scale",
    };
    let (w, h) = (e.width, e.height);
    let fit = "force_original_aspect_ratio=decrease:force_divisible_by=2";
    match (w, h) {
        (0, 0) => {}
        (w, 0) => chain.push(format!("{scaler}=w={w}:h=-2")),
        (0, h) => chain.push(format!("{scaler}=w=-2:h={h}")),
        (w, h) => match e.resize {
            Resize::Stretch => chain.push(format!("{scaler}=w={w}:h={h}")),
            Resize::Fit => chain.push(format!("{scaler}=w={w}:h={h}:{fit}")),
            Resize::Crop => {
                chain.push(format!(
                    "{scaler}=w={w}:h={h}:force_original_aspect_ratio=increase"
                ));
                chain.push(format!("crop=w={w}:h={h}"));
            }
            Resize::Pad => {
                chain.push(format!("{scaler}=w={w}:h={h}:{fit}"));
                chain.push(format!("pad=w={w}:h={h}:x=-1:y=-1"));
            }
        },
    }
}

/// `-analyzeduration`: 1 s of the feeder's stream (see [`input_flags`]).
const PROBE_MICROS: &str = "1000000";
/// `-probesize`: 5 MB, a keyframe of a high-rate 4K source with room to spare; the duration
/// limit is what ends the probe of ordinary sources.
const PROBE_BYTES: &str = "5000000";
