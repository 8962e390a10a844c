//! The parsed form of a stream record: what the engine and the ingest workers run.
//!
//! The operator's record ([`Stream`]) is stored and served as written (SPEC §API). What it
//! *means* is derived from it once, deterministically, by [`parse_stream`](crate::validate::parse_stream)
//! at the API edge and again when a stored record is loaded at boot or by the reconciler: a
//! [`StreamSpec`], whose inputs are [`ParsedInput`]s classified by the one URL classifier
//! ([`protocol::detect`]) with every option of their kind parsed into a [`Source`]. Nothing
//! behind that edge reads a URL's text or an input's `params` again, and an option that cannot
//! work (`pkt_size=0`, `loop=sometimes`, a `.avi` file) is a 422 naming its field at save
//! instead of an input error later.
//!
//! ```
//! use tributary_domain::Input;
//! use tributary_domain::protocol::DetectContext;
//! use tributary_domain::spec::{ParsedInput, Source};
//!
//! let input = Input::new("udp://239.1.1.1:5000?pkt_size=188&rtp=0", 0);
//! let parsed = ParsedInput::parse(&input, DetectContext::default()).unwrap();
//! let Source::Udp(udp) = &parsed.source else { panic!("not UDP") };
//! assert_eq!((udp.pkt_size, udp.rtp), (188, false));
//!
//! let bad = Input::new("udp://239.1.1.1:5000?pkt_size=0", 0);
//! let error = ParsedInput::parse(&bad, DetectContext::default()).unwrap_err();
//! assert_eq!(error.0[0].path, "inputs[0].url");
//! ```

pub(crate) mod kinds;
mod options;
pub mod refs;
mod source;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use tributary_media::StreamCode;

pub use source::{
    DEFAULT_PKT_SIZE, FileFormat, FileSource, HttpSource, MAX_PKT_SIZE, MulticastInterface,
    PushSource, PushSpec, RtmpSource, RtmpUrl, RtspSource, RtspTransport, Source, SrtSource,
    UdpSource,
};

use crate::ffmpeg::{Ladder, Overlay};
use crate::protocol::{self, DetectContext, InputKind, InputUrl, UrlError};
pub use crate::protocol::{Mixer, PushAddress, PushVia};
use crate::stream::{Input, Stream};
use crate::validate::{ErrorCode, FieldError, Support, ValidationErrors};

/// A stream record and what it means. Made only by parsing, so it cannot hold an input that
/// does not classify or an option that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// The stream as it runs: the record as the operator wrote it, template-resolved when it
    /// names a template (SPEC §Templates).
    stream: Stream,
    /// The record as written, when it differs from `stream` (it names a template): what is
    /// stored and served.
    record: Option<Stream>,
    /// One per `stream.inputs`, in the same order (priority order).
    inputs: Vec<ParsedInput>,
    /// One per `stream.push`, in the same order.
    pushes: Vec<PushSpec>,
    /// The FFmpeg ladder and its watermark; `None` when no FFmpeg runs (no transcoder, or
    /// `video.copy && audio.copy`).
    transcode: Option<Transcode>,
}

/// What the transcoder of a stream runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Transcode {
    /// The ladder.
    pub ladder: Ladder,
    /// The enabled watermark, if any.
    pub overlay: Option<Overlay>,
}

impl StreamSpec {
    /// The stream as it runs: the record, template-resolved (what every service reads).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The record as the operator wrote it (what is stored and served).
    pub fn record(&self) -> &Stream {
        self.record.as_ref().unwrap_or(&self.stream)
    }

    /// The stream's code.
    pub fn code(&self) -> &StreamCode {
        &self.stream.code
    }

    /// The inputs, parsed, by priority.
    pub fn inputs(&self) -> &[ParsedInput] {
        &self.inputs
    }

    /// The push targets, parsed, in `push[]` order.
    pub fn pushes(&self) -> &[PushSpec] {
        &self.pushes
    }

    /// The FFmpeg ladder and its watermark, when the stream runs FFmpeg.
    pub fn transcode(&self) -> Option<&Transcode> {
        self.transcode.as_ref()
    }

    /// The record as written, for storing.
    pub fn into_stream(self) -> Stream {
        self.record.unwrap_or(self.stream)
    }

    /// The spec of `record`, whose template-resolved form this spec was parsed from.
    pub(crate) fn with_record(mut self, record: Stream) -> Self {
        self.record = (record != self.stream).then_some(record);
        self
    }

    pub(crate) fn new(
        stream: Stream,
        inputs: Vec<ParsedInput>,
        pushes: Vec<PushSpec>,
        transcode: Option<Transcode>,
    ) -> Self {
        Self {
            stream,
            record: None,
            inputs,
            pushes,
            transcode,
        }
    }
}

/// One input: the record it came from and what it means.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ParsedInput {
    /// The input as configured: its priority, its URL (its identity across updates, shown
    /// masked in `runtime`) and the settings whose change needs a reconnect.
    pub input: Input,
    /// The kind and its options.
    pub source: Source,
    /// The MPEG-TS program to take from a multi-program TS (`program`); 0 = the first in the
    /// PAT.
    pub program: u16,
}

impl ParsedInput {
    /// Parses one input on its own (its paths are named `inputs[<priority>]`). A stream's
    /// inputs are parsed together by [`parse_stream`](crate::validate::parse_stream), which
    /// also applies the rules across inputs and what the build supports.
    pub fn parse(input: &Input, ctx: DetectContext<'_>) -> Result<Self, ValidationErrors> {
        let prefix = format!("inputs[{}]", input.priority);
        parse_input(&prefix, input, ctx, &BTreeMap::new(), &mut Vec::new())
            .map_err(ValidationErrors)
    }

    /// The kind.
    pub fn kind(&self) -> InputKind {
        self.source.kind()
    }

    /// The priority (lower wins).
    pub fn priority(&self) -> u32 {
        self.input.priority
    }

    /// The trimmed URL: the input's identity across updates.
    pub fn url(&self) -> &str {
        self.input.url.trim()
    }

    /// Whether it stays connected and health-checked while not active: `hot_standby`, else
    /// the kind's default (UDP and push hot, pulls cold).
    pub fn hot(&self) -> bool {
        self.input
            .hot_standby
            .unwrap_or(self.kind().hot_by_default())
    }

    /// Its publisher slot, for a push input.
    pub fn push(&self) -> Option<&PushSource> {
        match &self.source {
            Source::Push(push) => Some(push),
            _ => None,
        }
    }
}

/// Parses a stream's inputs and applies the rules across them (priorities `0..N-1`, unique
/// URLs, copy and mixer shapes) and what `support` allows. Errors and warnings are appended
/// in document order.
pub(crate) fn parse_inputs(
    stream: &Stream,
    support: &Support,
    errors: &mut Vec<FieldError>,
    warnings: &mut Vec<String>,
) -> Vec<ParsedInput> {
    let code = &stream.code;
    let ctx = DetectContext {
        rtmp_port: support.rtmp_port,
        own_code: Some(code),
    };
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(stream.inputs.len());
    for (i, input) in stream.inputs.iter().enumerate() {
        let path = format!("inputs[{i}]");
        if input.priority as usize != i {
            errors.push(FieldError::new(
                format!("{path}.priority"),
                ErrorCode::InvalidInputPriority,
                format!(
                    "priority must be {i} (priorities are 0..N-1 in array order), got {}",
                    input.priority
                ),
            ));
        }
        let trimmed = input.url.trim();
        if !trimmed.is_empty() && !seen.insert(trimmed) {
            errors.push(FieldError::new(
                format!("{path}.url"),
                ErrorCode::DuplicateInput,
                format!("duplicate input URL {trimmed:?}"),
            ));
        }
        let one = match parse_input(&path, input, ctx, &support.vod_mounts, warnings) {
            Ok(one) => one,
            Err(e) => {
                errors.extend(e);
                continue;
            }
        };
        errors.extend(shape_errors(&path, &one.source, code, stream.inputs.len()));
        if let Source::File(file) = &one.source
            && file.root.is_none()
            && !support.roots.file_input.is_empty()
            && !support
                .roots
                .file_input
                .iter()
                .any(|root| file.path.starts_with(root))
        {
            errors.push(FieldError::new(
                format!("{path}.url"),
                ErrorCode::InvalidInputUrl,
                format!(
                    "{} is outside security.file_input_roots",
                    file.path.display()
                ),
            ));
        }
        if let Some(push) = one.push() {
            let clash = parsed.iter().filter_map(ParsedInput::push).any(|other| {
                other.address == push.address
                    && !matches!(push.address, PushAddress::Stream { slot: None })
            });
            if clash {
                errors.push(FieldError::new(
                    format!("{path}.url"),
                    ErrorCode::DuplicateInput,
                    "another push input of this stream has the same slot name or routing key",
                ));
            }
        }
        let kind = one.kind();
        if !support.inputs.contains(&kind) {
            errors.push(FieldError::new(
                format!("{path}.url"),
                ErrorCode::Unsupported,
                format!("{kind} inputs are not supported yet"),
            ));
        } else if one.push().is_some_and(|p| p.via == PushVia::Srt) && !support.srt_listener {
            errors.push(FieldError::new(
                format!("{path}.url"),
                ErrorCode::Unsupported,
                "push inputs through the SRT listener are not supported yet \
                 (publish over RTMP to publish:// instead)",
            ));
        }
        parsed.push(one);
    }
    parsed
}

/// Parses one input whose fields live under `prefix` (`inputs[2]`).
fn parse_input(
    prefix: &str,
    input: &Input,
    ctx: DetectContext<'_>,
    mounts: &BTreeMap<String, PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<ParsedInput, Vec<FieldError>> {
    for (field, set) in [
        ("reconnect", input.reconnect.is_some()),
        ("read_timeout_sec", input.read_timeout_sec.is_some()),
        ("reconnect_delay_sec", input.reconnect_delay_sec.is_some()),
        (
            "reconnect_max_delay_sec",
            input.reconnect_max_delay_sec.is_some(),
        ),
    ] {
        if set {
            warnings.push(format!("{prefix}.{field}: legacy field ignored"));
        }
    }
    let url_error = |code: ErrorCode, message: String| {
        vec![FieldError::new(format!("{prefix}.url"), code, message)]
    };
    let classified = protocol::detect(&input.url, ctx).map_err(|e| {
        let code = match e {
            UrlError::Copy(_) => ErrorCode::InvalidCopyUrl,
            UrlError::Mixer(_) => ErrorCode::InvalidMixerUrl,
            _ => ErrorCode::InvalidInputUrl,
        };
        url_error(code, e.to_string())
    })?;
    let mut errors = Vec::new();
    let program = u16::try_from(input.program).map_err(|_| {
        FieldError::new(
            format!("{prefix}.program"),
            ErrorCode::InvalidField,
            format!(
                "must be an MPEG-TS program number (0 to 65535), got {}",
                input.program
            ),
        )
    });
    let source = match classified {
        InputUrl::Push { via, address } => Ok(Source::Push(PushSource { via, address })),
        InputUrl::Network { kind, url } => match kind {
            InputKind::Udp => {
                let options =
                    options::Options::new(prefix, url.query().unwrap_or(""), &input.params);
                kinds::udp(&url, &options).map(Source::Udp)
            }
            InputKind::Hls => kinds::http(prefix, url, input).map(Source::Hls),
            InputKind::HttpTs => kinds::http(prefix, url, input).map(Source::HttpTs),
            InputKind::Rtmp => kinds::rtmp(prefix, input)
                .map(Source::Rtmp)
                .map_err(|e| vec![e]),
            InputKind::Srt => {
                let options =
                    options::Options::new(prefix, url.query().unwrap_or(""), &input.params);
                kinds::srt(prefix, &url, &options, input).map(Source::Srt)
            }
            _ => {
                let options =
                    options::Options::new(prefix, url.query().unwrap_or(""), &input.params);
                kinds::rtsp(url.clone(), &options, input).map(Source::Rtsp)
            }
        },
        InputUrl::File {
            mount: Some(mount),
            path,
        } => match (mounts.get(&mount), crate::roots::relative(&path)) {
            (None, _) => Err(url_error(
                ErrorCode::InvalidInputUrl,
                format!("names VOD mount {mount:?}, which does not exist (GET /vod lists them)"),
            )),
            (Some(_), Err(e)) => Err(url_error(ErrorCode::InvalidInputUrl, e.to_string())),
            (Some(storage), Ok(rel)) => {
                let full = storage.join(rel).display().to_string();
                kinds::file(prefix, full, input).map(|mut file| {
                    file.root = Some(storage.clone());
                    Source::File(file)
                })
            }
        },
        InputUrl::File { mount: None, path } => kinds::file(prefix, path, input).map(Source::File),
        InputUrl::Copy { upstream } => Ok(Source::Copy { upstream }),
        InputUrl::Mixer(mixer) => Ok(Source::Mixer(mixer)),
    };
    let source = source.map_err(|e| errors.extend(e)).ok();
    let program = program.map_err(|e| errors.push(e)).ok();
    let (Some(source), Some(program)) = (source, program) else {
        return Err(errors);
    };
    if !input.headers.is_empty() && !matches!(source, Source::Hls(_) | Source::HttpTs(_)) {
        warnings.push(format!(
            "{prefix}.headers: only HLS and HTTP inputs send headers; ignored for a {} input",
            source.kind()
        ));
    }
    Ok(ParsedInput {
        input: input.clone(),
        source,
        program,
    })
}

/// SPEC §ABR copy and §Mixer shape rules of one input of stream `code`.
fn shape_errors(
    path: &str,
    source: &Source,
    code: &StreamCode,
    n_inputs: usize,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut bad = |code: ErrorCode, message: &str| {
        errors.push(FieldError::new(format!("{path}.url"), code, message));
    };
    match source {
        Source::Copy { upstream } if upstream == code => {
            bad(ErrorCode::InvalidCopyShape, "a stream cannot copy itself");
        }
        Source::Mixer(mixer) => {
            if &mixer.video == code || &mixer.audio == code {
                bad(
                    ErrorCode::InvalidMixerShape,
                    "a mixer cannot reference its own stream",
                );
            }
            if n_inputs > 1 {
                bad(
                    ErrorCode::InvalidMixerShape,
                    "a mixer input must be the stream's only input",
                );
            }
        }
        _ => {}
    }
    errors
}

#[cfg(test)]
mod tests;
