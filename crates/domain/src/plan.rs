//! The restart plan of a hot reload (SPEC §Hot reload, the action table).
//!
//! [`plan`] turns a [`StreamDiff`] into the smallest list of [`Action`]s that brings a running
//! stream from `old` to `new`; nothing outside the list restarts. The coordinator executes the
//! actions in order; `?dry_run=true` shows them (with [`Action::describe`]).
//!
//! The order is fixed: [`Action::Stop`] or [`Action::Start`] alone when `disabled` flips;
//! otherwise inputs, then the transcoder ([`Action::ReloadTranscoder`], or rung actions, or
//! [`Action::RestartTranscoder`]), then outputs stopped and started, push targets stopped,
//! restarted and started, DVR, thumbnailer. Within a group, actions are sorted by key.
//!
//! Decisions left to the caller: the ABR-copy / ABR-mixer rule (a stream that is or becomes an
//! ABR copy or mix is fully stopped and started) needs the upstream streams and is not planned
//! here, and a stream that is not running needs no plan at all.
//!
//! ```
//! use tributary_domain::{compute_diff, plan, Action, Output, Protocols, Stream, StreamCode};
//!
//! let old = Stream::new(StreamCode::parse("cam1").unwrap());
//! let mut new = old.clone();
//! new.protocols = Some(Protocols { hls: true, ..Protocols::default() });
//! let diff = compute_diff(&old, &new);
//! let plan = plan(&old, &new, &diff);
//! assert_eq!(plan.actions, vec![Action::StartOutput { output: Output::Hls }]);
//! ```

use serde::Serialize;

use crate::diff::{Output, StreamDiff};
use crate::redact::mask_push_url;
use crate::stream::{Stream, Transcoder, TranscoderMode};

/// One step of a hot reload. Serialised as `{"action": "restart_rung", "index": 1}`.
///
/// Rung indexes count from 0: rung *i* is `track_{i+1}`. Push URLs are the trimmed stored URLs,
/// not redacted; [`describe`](Self::describe) redacts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Stop the whole stream (`disabled` went false → true). Always the only action.
    Stop,
    /// Start the whole stream (`disabled` went true → false). Always the only action.
    Start,
    /// Hand the new input list to the stream manager (`update_inputs`); nothing else restarts.
    UpdateInputs,
    /// Full transcoder reload for a topology change: stop the transcoder, rebuild rendition and
    /// raw buffers, repoint ingest, start the transcoder, restart HLS/DASH packagers.
    ReloadTranscoder,
    /// `per_profile`: restart this rung's FFmpeg only; its buffer persists.
    RestartRung {
        /// Rung index (`track_{index+1}`).
        index: usize,
    },
    /// `per_profile`: create this rung's buffer and start its FFmpeg.
    AddRung {
        /// Rung index (`track_{index+1}`).
        index: usize,
    },
    /// `per_profile`: stop this rung's FFmpeg and delete its buffer.
    RemoveRung {
        /// Rung index (`track_{index+1}`).
        index: usize,
    },
    /// Restart every FFmpeg of the stream with the new config, keeping the buffers of the other
    /// rungs: a `multi` ladder change (buffers of `added` rungs created, of `removed` rungs
    /// dropped), or a watermark change in either mode (both lists empty).
    RestartTranscoder {
        /// Rungs whose buffers are created, ascending.
        added: Vec<usize>,
        /// Rungs whose buffers are dropped, ascending.
        removed: Vec<usize>,
    },
    /// Start an output whose flag went on.
    StartOutput {
        /// The output.
        output: Output,
    },
    /// Stop an output whose flag went off (its viewers are disconnected).
    StopOutput {
        /// The output.
        output: Output,
    },
    /// Start a push target that was added or enabled.
    StartPush {
        /// The target's trimmed URL.
        url: String,
    },
    /// Stop a push target that was removed or disabled.
    StopPush {
        /// The target's trimmed URL.
        url: String,
    },
    /// Restart one push target whose timeout, retry delay, limit or profile changed.
    RestartPush {
        /// The target's trimmed URL.
        url: String,
    },
    /// Start recording (DVR enabled).
    StartDvr,
    /// Stop recording (DVR disabled or removed).
    StopDvr,
    /// Stop recording and start again under the new `storage_path`.
    RestartDvr,
    /// Apply the other DVR settings from the next segment on, without a restart.
    ApplyDvr,
    /// Restart the thumbnailer (it stops for good when the new settings disable it).
    RestartThumbnailer,
}

impl Action {
    /// A short sentence for dry-run output and logs, e.g. `restart rung track_2 (per_profile)`.
    /// Push URLs are redacted ([`mask_push_url`]).
    pub fn describe(&self) -> String {
        match self {
            Self::Stop => "stop the stream".to_owned(),
            Self::Start => "start the stream".to_owned(),
            Self::UpdateInputs => "update the inputs (stream manager only)".to_owned(),
            Self::ReloadTranscoder => "reload the transcoder (topology changed)".to_owned(),
            Self::RestartRung { index } => format!("restart rung {} (per_profile)", rung(*index)),
            Self::AddRung { index } => format!("add rung {} (per_profile)", rung(*index)),
            Self::RemoveRung { index } => format!("remove rung {} (per_profile)", rung(*index)),
            Self::RestartTranscoder { added, removed } => {
                if added.is_empty() && removed.is_empty() {
                    return "restart every FFmpeg of the stream".to_owned();
                }
                let mut text = "restart the transcoder with the new ladder (".to_owned();
                if !added.is_empty() {
                    text.push_str("add ");
                    text.push_str(&rungs(added));
                }
                if !removed.is_empty() {
                    if !added.is_empty() {
                        text.push_str("; ");
                    }
                    text.push_str("remove ");
                    text.push_str(&rungs(removed));
                }
                text.push(')');
                text
            }
            Self::StartOutput { output } => format!("start the {} output", label(*output)),
            Self::StopOutput { output } => format!("stop the {} output", label(*output)),
            Self::StartPush { url } => format!("start push to {}", mask_push_url(url)),
            Self::StopPush { url } => format!("stop push to {}", mask_push_url(url)),
            Self::RestartPush { url } => format!("restart push to {}", mask_push_url(url)),
            Self::StartDvr => "start recording".to_owned(),
            Self::StopDvr => "stop recording".to_owned(),
            Self::RestartDvr => "restart recording in the new storage path".to_owned(),
            Self::ApplyDvr => "apply the DVR settings at the next segment".to_owned(),
            Self::RestartThumbnailer => "restart the thumbnailer".to_owned(),
        }
    }
}

/// The actions of one hot reload, in execution order, and notes for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestartPlan {
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// Changes accepted but without effect, e.g. `watermark needs a transcoder`.
    pub warnings: Vec<String>,
}

impl RestartPlan {
    /// Whether there is nothing to do and nothing to report.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.warnings.is_empty()
    }
}

/// Plans the hot reload of a running stream from `old` to `new` (SPEC §Hot reload).
///
/// `diff` must be `compute_diff(old, new)`; `old` and `new` supply what the diff does not record
/// (mode, whether FFmpeg runs, which DVR fields changed).
pub fn plan(old: &Stream, new: &Stream, diff: &StreamDiff) -> RestartPlan {
    if diff.now_disabled {
        return RestartPlan {
            actions: vec![Action::Stop],
            warnings: Vec::new(),
        };
    }
    if diff.now_enabled {
        return RestartPlan {
            actions: vec![Action::Start],
            warnings: Vec::new(),
        };
    }
    if old.disabled || new.disabled {
        return RestartPlan::default();
    }

    let mut actions = Vec::new();
    let mut warnings = Vec::new();
    if !diff.inputs.is_empty() {
        actions.push(Action::UpdateInputs);
    }

    // Transcoder. A disabled watermark draws nothing, so changing it restarts nothing.
    let watermark_enabled = |stream: &Stream| stream.watermark.as_ref().is_some_and(|w| w.enabled);
    let watermark_live =
        diff.watermark_changed && (watermark_enabled(old) || watermark_enabled(new));
    let running = new.transcoder.as_ref().filter(|t| t.needs_ffmpeg());
    if diff.topology_changed {
        actions.push(Action::ReloadTranscoder);
    } else if let Some(transcoder) = running {
        plan_rungs(transcoder, diff, watermark_live, &mut actions);
    }
    if watermark_live && running.is_none() && watermark_enabled(new) {
        warnings.push("watermark needs a transcoder".to_owned());
    }

    actions.extend(sorted(&diff.protocols.stopped).map(|output| Action::StopOutput { output }));
    actions.extend(sorted(&diff.protocols.started).map(|output| Action::StartOutput { output }));
    actions.extend(sorted(&diff.push.removed).map(|url| Action::StopPush { url }));
    actions.extend(sorted(&diff.push.updated).map(|url| Action::RestartPush { url }));
    actions.extend(sorted(&diff.push.added).map(|url| Action::StartPush { url }));

    if diff.dvr_changed {
        let old_dvr = old.dvr.as_ref().filter(|d| d.enabled);
        let new_dvr = new.dvr.as_ref().filter(|d| d.enabled);
        match (old_dvr, new_dvr) {
            (None, Some(_)) => actions.push(Action::StartDvr),
            (Some(_), None) => actions.push(Action::StopDvr),
            (Some(a), Some(b)) if a.storage_path != b.storage_path => {
                actions.push(Action::RestartDvr);
            }
            (Some(a), Some(b)) if a != b => actions.push(Action::ApplyDvr),
            _ => {}
        }
    }

    let thumbnail_enabled = |stream: &Stream| stream.thumbnail.as_ref().is_some_and(|t| t.enabled);
    if diff.thumbnail_changed && (thumbnail_enabled(old) || thumbnail_enabled(new)) {
        actions.push(Action::RestartThumbnailer);
    }
    RestartPlan { actions, warnings }
}

/// Transcoder actions for an unchanged topology with FFmpeg running.
fn plan_rungs(
    transcoder: &Transcoder,
    diff: &StreamDiff,
    watermark_live: bool,
    actions: &mut Vec<Action>,
) {
    let profiles = &diff.profiles;
    let added: Vec<usize> = sorted(&profiles.added).collect();
    let removed: Vec<usize> = sorted(&profiles.removed).collect();
    if transcoder.mode.effective() == TranscoderMode::PerProfile {
        actions.extend(
            removed
                .into_iter()
                .map(|index| Action::RemoveRung { index }),
        );
        // A watermark change restarts every FFmpeg anyway; no rung restarts twice.
        if !watermark_live {
            actions.extend(sorted(&profiles.updated).map(|index| Action::RestartRung { index }));
        }
        actions.extend(added.into_iter().map(|index| Action::AddRung { index }));
        if watermark_live {
            actions.push(Action::RestartTranscoder {
                added: Vec::new(),
                removed: Vec::new(),
            });
        }
        return;
    }
    if !profiles.is_empty() || watermark_live {
        actions.push(Action::RestartTranscoder { added, removed });
    }
}

/// The items of `keys`, sorted.
fn sorted<K: Ord + Clone>(keys: &[K]) -> impl Iterator<Item = K> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys.into_iter()
}

/// The rung's name, `track_{index+1}`.
fn rung(index: usize) -> String {
    format!("track_{}", index + 1)
}

fn rungs(indexes: &[usize]) -> String {
    indexes
        .iter()
        .map(|&index| rung(index))
        .collect::<Vec<_>>()
        .join(", ")
}

fn label(output: Output) -> &'static str {
    match output {
        Output::Hls => "HLS",
        Output::Dash => "DASH",
        Output::Rtsp => "RTSP",
        Output::Rtmp => "RTMP",
        Output::Srt => "SRT",
    }
}

#[cfg(test)]
mod tests;
