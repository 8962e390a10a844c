//! What ffprobe and a decoding ffmpeg say about a file or URL.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Deserializer};

use crate::ffmpeg::{ffmpeg, ffprobe, run};

/// One stream as `ffprobe -show_streams` reports it. Fields ffprobe left out are `None`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ProbeStream {
    /// The stream index in the container.
    pub index: u32,
    /// `video`, `audio`, `data`, ...
    pub codec_type: Option<String>,
    /// `h264`, `hevc`, `aac`, ...
    pub codec_name: Option<String>,
    /// `High`, `Main`, `LC`, ...
    pub profile: Option<String>,
    /// Picture width in pixels.
    pub width: Option<u32>,
    /// Picture height in pixels.
    pub height: Option<u32>,
    /// `yuv420p`, ...
    pub pix_fmt: Option<String>,
    /// The stream's frame rate as a fraction (`30/1`).
    pub r_frame_rate: Option<String>,
    /// The average frame rate as a fraction (`30/1`).
    pub avg_frame_rate: Option<String>,
    /// Audio sample rate in Hz.
    #[serde(default, deserialize_with = "number")]
    pub sample_rate: Option<u32>,
    /// Audio channels.
    pub channels: Option<u32>,
    /// The container's stream id (the PID in MPEG-TS), as ffprobe prints it (`0x100`).
    pub id: Option<String>,
}

/// One packet as `ffprobe -show_packets` reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProbePacket {
    /// `video`, `audio`, ...
    pub codec_type: Option<String>,
    /// The stream the packet belongs to.
    pub stream_index: u32,
    /// Presentation time in seconds.
    pub pts_time: Option<f64>,
    /// Decode time in seconds.
    pub dts_time: Option<f64>,
    /// Duration in seconds.
    pub duration_time: Option<f64>,
    /// Payload size in bytes.
    pub size: Option<u64>,
    /// ffprobe's flags (`K__`: keyframe, `_D_`: discard, `__C`: corrupt).
    pub flags: String,
    /// Whether the flags hold `K`.
    pub keyframe: bool,
}

/// The streams of a file or URL (`ffprobe -show_streams -of json`), in index order.
///
/// Fails when ffprobe cannot open the input or does not finish within 60 s.
pub fn probe_streams(url_or_path: &str) -> anyhow::Result<Vec<ProbeStream>> {
    #[derive(Deserialize)]
    struct Streams {
        #[serde(default)]
        streams: Vec<ProbeStream>,
    }
    let mut command = ffprobe();
    command.args(["-show_streams", "-of", "json", "-i", url_or_path]);
    let json: Streams = probe_json(&mut command, url_or_path)?;
    Ok(json.streams)
}

/// The packets of a file or URL (`ffprobe -show_packets -of json <extra_args> -i URL`), in
/// file order.
///
/// `extra_args` go before the input: `["-select_streams", "v"]`, `["-read_intervals",
/// "%+5"]` (the first 5 s: needed for a live URL, which never ends). Fails when ffprobe cannot
/// open the input or does not finish within 60 s.
pub fn probe_packets(url_or_path: &str, extra_args: &[&str]) -> anyhow::Result<Vec<ProbePacket>> {
    #[derive(Deserialize)]
    struct Packets {
        #[serde(default)]
        packets: Vec<RawPacket>,
    }
    #[derive(Deserialize)]
    struct RawPacket {
        codec_type: Option<String>,
        stream_index: u32,
        #[serde(default, deserialize_with = "number")]
        pts_time: Option<f64>,
        #[serde(default, deserialize_with = "number")]
        dts_time: Option<f64>,
        #[serde(default, deserialize_with = "number")]
        duration_time: Option<f64>,
        #[serde(default, deserialize_with = "number")]
        size: Option<u64>,
        #[serde(default)]
        flags: String,
    }
    let mut command = ffprobe();
    command.args(["-show_packets", "-of", "json"]);
    command.args(extra_args);
    command.args(["-i", url_or_path]);
    let json: Packets = probe_json(&mut command, url_or_path)?;
    Ok(json
        .packets
        .into_iter()
        .map(|p| ProbePacket {
            keyframe: p.flags.contains('K'),
            codec_type: p.codec_type,
            stream_index: p.stream_index,
            pts_time: p.pts_time,
            dts_time: p.dts_time,
            duration_time: p.duration_time,
            size: p.size,
            flags: p.flags,
        })
        .collect())
}

/// The DTS (seconds) of the packets of `track` (`v`, `a`: ffprobe's stream specifier) in a
/// file, checked to rise strictly from packet to packet: a pushed or recorded timeline that
/// steps back or repeats fails, naming the step. Packets without a DTS are skipped.
pub fn rising_dts(path: &str, track: &str) -> anyhow::Result<Vec<f64>> {
    let dts: Vec<f64> = probe_packets(path, &["-select_streams", track])?
        .iter()
        .filter_map(|p| p.dts_time)
        .collect();
    if let Some(pair) = dts.windows(2).find(|pair| pair[1] <= pair[0]) {
        anyhow::bail!("{path}: {track} DTS from {} to {}", pair[0], pair[1]);
    }
    Ok(dts)
}

/// Decodes the first `seconds` of a file or URL (`ffmpeg -v error -i URL -t S -f null -`)
/// and returns what the decoders complained about: empty means a clean decode.
///
/// A non-zero exit adds a last line `ffmpeg exited with ...`, so a failed open is never
/// empty. Fails only when ffmpeg cannot be started or takes longer than `seconds` + 60 s.
///
/// The decoded frames keep the source's time base (`-enc_time_base -1`): by default the
/// null muxer counts video in frame periods, and millisecond timestamps (RTMP's) whose grid
/// sits half a period off can round two frames onto one tick, which it reports as a
/// "non monotonically increasing dts" error the stream does not have.
pub fn decode_errors(url_or_path: &str, seconds: f64) -> anyhow::Result<String> {
    let mut command = ffmpeg();
    command.args([
        "-i",
        url_or_path,
        "-t",
        &seconds.to_string(),
        "-enc_time_base",
        "-1",
        "-f",
        "null",
        "-",
    ]);
    let timeout = Duration::from_secs_f64(seconds.max(0.0) + 60.0);
    let output = run(&mut command, timeout).with_context(|| format!("decoding {url_or_path}"))?;
    let mut errors = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        errors.push_str(&format!("ffmpeg exited with {}\n", output.status));
    }
    Ok(errors)
}

/// Runs an ffprobe that prints JSON and parses it.
fn probe_json<T: for<'de> Deserialize<'de>>(
    command: &mut std::process::Command,
    input: &str,
) -> anyhow::Result<T> {
    let output = run(command, PROBE_TIMEOUT).with_context(|| format!("probing {input}"))?;
    if !output.status.success() {
        bail!(
            "ffprobe failed on {input} ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parsing ffprobe's JSON for {input}"))
}

/// ffprobe prints most numbers as strings (`"sample_rate": "48000"`, `"pts_time":
/// "1.400000"`); takes either form, and `"N/A"` as absent.
fn number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + TryFrom<NumberValue>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => T::try_from(NumberValue(n)).ok(),
        _ => None,
    })
}

/// A JSON number on its way into a field's type.
struct NumberValue(serde_json::Number);

impl TryFrom<NumberValue> for u32 {
    type Error = ();
    fn try_from(n: NumberValue) -> Result<Self, ()> {
        n.0.as_u64().and_then(|v| v.try_into().ok()).ok_or(())
    }
}

impl TryFrom<NumberValue> for u64 {
    type Error = ();
    fn try_from(n: NumberValue) -> Result<Self, ()> {
        n.0.as_u64().ok_or(())
    }
}

impl TryFrom<NumberValue> for f64 {
    type Error = ();
    fn try_from(n: NumberValue) -> Result<Self, ()> {
        n.0.as_f64().ok_or(())
    }
}

/// How long an ffprobe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
