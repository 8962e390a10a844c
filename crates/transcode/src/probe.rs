//! The FFmpeg probe (SPEC §Transcoder "Probe"): what an FFmpeg binary can do, asked once at
//! boot and again on `POST /config/transcoder/probe`.
//!
//! [`probe`] runs the binary with `-version`, `-encoders`, `-muxers`, `-filters` and
//! `-hwaccels` (each within its own time budget, never through a shell) and gathers a
//! [`ProbeReport`]: the version, the encoders, muxers and filters the transcoder needs or can
//! use, the hardware acceleration methods the build knows, and why the binary is unusable if
//! it is. The parsing is pure ([`parse_version`], [`parse_list`], [`parse_filters`],
//! [`parse_hwaccels`]) and tested on captured output.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::process::Launcher;

/// What the probe found. `ok` = the binary runs, says "ffmpeg version" and has every required
/// encoder and muxer; `errors` says why not, `warnings` names the optional features missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeReport {
    /// Usable for transcoding.
    pub ok: bool,
    /// The binary probed (resolved on `PATH`), or the path asked for when it was not found.
    pub path: String,
    /// The version it reports (`5.1.9-0+deb12u1`); empty when it did not run.
    pub version: String,
    /// The encoders the transcoder needs or can use that the binary has.
    pub encoders: Encoders,
    /// The muxers the transcoder needs that the binary has (`mpegts`).
    pub muxers: Vec<String>,
    /// The filters watermarks need that the binary has.
    pub filters: Vec<String>,
    /// The hardware acceleration methods of the build (`-hwaccels`: `vaapi`, `cuda`, ...).
    pub hwaccels: Vec<String>,
    /// Optional features missing.
    pub warnings: Vec<String>,
    /// Why the binary is unusable; empty when `ok`.
    pub errors: Vec<String>,
}

/// Encoders found, by need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoders {
    /// Of [`REQUIRED_ENCODERS`].
    pub required: Vec<String>,
    /// Of [`OPTIONAL_ENCODERS`] (and the NVENC ones when an NVIDIA device is present).
    pub optional: Vec<String>,
}

/// Encoders without which no ladder runs.
pub const REQUIRED_ENCODERS: [&str; 2] = ["libx264", "aac"];
/// Encoders some settings need.
pub const OPTIONAL_ENCODERS: [&str; 4] = ["libx265", "libopus", "libmp3lame", "ac3"];
/// Encoders of an NVIDIA device (`/dev/nvidia0`).
pub const NVENC_ENCODERS: [&str; 2] = ["h264_nvenc", "hevc_nvenc"];
/// Muxers the pipes need.
pub const REQUIRED_MUXERS: [&str; 1] = ["mpegts"];
/// Filters watermarks need.
pub const WATERMARK_FILTERS: [&str; 4] = ["drawtext", "overlay", "movie", "colorchannelmixer"];

/// Probes the FFmpeg at `path` (a bare name is looked up on `PATH`), each invocation within
/// `each` (SPEC: 5 s). `nvidia`: an NVIDIA device is present, so its encoders are looked for.
pub async fn probe(path: &Path, each: Duration, nvidia: bool) -> ProbeReport {
    let mut report = ProbeReport {
        path: path.display().to_string(),
        ..ProbeReport::default()
    };
    let launcher = match Launcher::resolve(path) {
        Ok(launcher) => launcher,
        Err(e) => {
            report.errors.push(e.to_string());
            return report;
        }
    };
    let binary = launcher.ffmpeg().to_owned();
    report.path = binary.display().to_string();
    let run = |arg: &'static str| run(&binary, arg, each);

    match run("-version").await {
        Ok(text) => match parse_version(&text) {
            Some(version) => report.version = version,
            None => report.errors.push(format!(
                "{} -version does not say \"ffmpeg version\": {}",
                report.path,
                first_line(&text)
            )),
        },
        Err(e) => report.errors.push(e),
    }
    if !report.errors.is_empty() {
        return report;
    }

    let mut optional: Vec<&str> = OPTIONAL_ENCODERS.to_vec();
    if nvidia {
        optional.extend(NVENC_ENCODERS);
    }
    match run("-encoders").await {
        Ok(text) => {
            let found = parse_list(&text);
            let (present, missing) = split(&found, &REQUIRED_ENCODERS);
            report.encoders.required = present;
            report.errors.extend(
                missing
                    .iter()
                    .map(|name| format!("required encoder {name} is missing")),
            );
            let (present, missing) = split(&found, &optional);
            report.encoders.optional = present;
            report.warnings.extend(
                missing
                    .iter()
                    .map(|name| format!("optional encoder {name} is missing")),
            );
        }
        Err(e) => report.errors.push(e),
    }
    match run("-muxers").await {
        Ok(text) => {
            let (present, missing) = split(&parse_list(&text), &REQUIRED_MUXERS);
            report.muxers = present;
            report.errors.extend(
                missing
                    .iter()
                    .map(|name| format!("required muxer {name} is missing")),
            );
        }
        Err(e) => report.errors.push(e),
    }
    match run("-filters").await {
        Ok(text) => {
            let (present, missing) = split(&parse_filters(&text), &WATERMARK_FILTERS);
            report.filters = present;
            report.warnings.extend(
                missing
                    .iter()
                    .map(|name| format!("filter {name} is missing: watermarks may not work")),
            );
        }
        Err(e) => report.errors.push(e),
    }
    match run("-hwaccels").await {
        Ok(text) => report.hwaccels = parse_hwaccels(&text),
        Err(e) => report.warnings.push(e),
    }
    report.ok = report.errors.is_empty();
    report
}

/// The version in `ffmpeg -version`'s first line (`ffmpeg version 5.1.9-0+deb12u1
/// Copyright ...` → `5.1.9-0+deb12u1`); `None` when it is not FFmpeg's.
pub fn parse_version(text: &str) -> Option<String> {
    let rest = text
        .lines()
        .next()?
        .trim()
        .strip_prefix("ffmpeg version ")?;
    let version = rest.split_whitespace().next()?;
    Some(version.chars().take(MAX_NAME).collect())
}

/// The names of an `-encoders` or `-muxers` listing: the second column of every line after
/// the ` ------`/` --` separator (flags, then the name).
pub fn parse_list(text: &str) -> Vec<String> {
    let mut lines = text.lines();
    let mut names = Vec::new();
    if !lines.any(|l| {
        let l = l.trim();
        !l.is_empty() && l.chars().all(|c| c == '-')
    }) {
        return names;
    }
    for line in lines.take(MAX_LINES) {
        let mut words = line.split_whitespace();
        let (Some(_flags), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        // `-muxers` may list several names for one muxer (`mov,mp4,...`).
        names.extend(
            name.split(',')
                .filter(|n| !n.is_empty())
                .map(|n| n.chars().take(MAX_NAME).collect()),
        );
    }
    names
}

/// The names of a `-filters` listing (which has no separator): the second column of every line
/// whose third says what it takes and gives (`V->V`, `|->N`).
pub fn parse_filters(text: &str) -> Vec<String> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (_flags, name, io) = (words.next()?, words.next()?, words.next()?);
            io.contains("->")
                .then(|| name.chars().take(MAX_NAME).collect())
        })
        .collect()
}

/// The methods `-hwaccels` lists, one per line after its header.
pub fn parse_hwaccels(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Hardware acceleration methods"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(MAX_LINES)
        .map(|l| l.chars().take(MAX_NAME).collect())
        .collect()
}

/// The names of `wanted` that `found` has, and those it lacks, in `wanted`'s order.
fn split<'a>(found: &[String], wanted: &[&'a str]) -> (Vec<String>, Vec<&'a str>) {
    let (present, missing): (Vec<&'a str>, Vec<&'a str>) = wanted
        .iter()
        .copied()
        .partition(|name| found.iter().any(|f| f == name));
    (present.into_iter().map(str::to_owned).collect(), missing)
}

/// Runs `binary -hide_banner <arg>` and returns its stdout, or why it failed.
async fn run(binary: &Path, arg: &str, budget: Duration) -> Result<String, String> {
    let child = tokio::process::Command::new(binary)
        .args(["-hide_banner", arg])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{} {arg}: {e}", binary.display()))?;
    let output = tokio::time::timeout(budget, child.wait_with_output())
        .await
        .map_err(|_| format!("{} {arg} took more than {budget:?}", binary.display()))?
        .map_err(|e| format!("{} {arg}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{} {arg} exited with {}: {}",
            binary.display(),
            output.status,
            first_line(&stderr)
        ));
    }
    Ok(stdout)
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// Lines of a listing read at most.
const MAX_LINES: usize = 10_000;
/// Characters of a name kept.
const MAX_NAME: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_third_word_of_ffmpegs_first_line() {
        let text = "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers\n\
                    built with gcc 12 (Debian 12.2.0-14+deb12u1)\n";
        assert_eq!(parse_version(text).as_deref(), Some("5.1.9-0+deb12u1"));
        assert_eq!(parse_version("avconv version 12\n"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn listings_give_the_names_after_the_separator() {
        // As `ffmpeg -hide_banner -encoders` prints it (abridged).
        let encoders = "Encoders:\n V..... = Video\n A..... = Audio\n ------\n \
                        V....D libx264              libx264 H.264 / AVC\n \
                        A....D aac                  AAC (Advanced Audio Coding)\n \
                        V....D h264_nvenc           NVIDIA NVENC H.264 encoder\n";
        assert_eq!(parse_list(encoders), ["libx264", "aac", "h264_nvenc"]);
        // `-muxers`: two-column flags, names that are lists.
        let muxers = "File formats:\n D. = Demuxing supported\n .E = Muxing supported\n --\n  \
                      E mov             QuickTime / MOV\n  E mp4             MP4 (MPEG-4 Part 14)\n  \
                      E mpegts          MPEG-TS (MPEG-2 Transport Stream)\n  E matroska,webm  Matroska\n";
        assert_eq!(
            parse_list(muxers),
            ["mov", "mp4", "mpegts", "matroska", "webm"]
        );
        assert!(parse_list("no separator here\n V libx264 x\n").is_empty());
        // `-filters` has a legend and no separator.
        let filters = "Filters:\n  T.. = Timeline support\n  | = Source or sink filter\n \
                       TSC drawtext          V->V       Draw text on top of video frames.\n \
                       ... movie             |->N       Read video from a movie source.\n";
        assert_eq!(parse_filters(filters), ["drawtext", "movie"]);
    }

    #[test]
    fn hwaccels_are_the_lines_after_the_header() {
        let text = "Hardware acceleration methods:\nvdpau\ncuda\nvaapi\n\n";
        assert_eq!(parse_hwaccels(text), ["vdpau", "cuda", "vaapi"]);
        assert!(parse_hwaccels("Hardware acceleration methods:\n\n").is_empty());
    }
}
