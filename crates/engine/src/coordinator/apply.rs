//! Applying a configuration to a stream's services: start in SPEC §Coordinator order with
//! rollback, stop in reverse, and updates routed by the restart plan (SPEC §Hot reload). Runs
//! inside the stream's actor, so nothing here races another operation on the same stream.

use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::json;
use tributary_domain::Stream;
use tributary_domain::diff::{Output, compute_diff};
use tributary_domain::event::EventType;
use tributary_domain::plan::{Action, plan};
use tributary_domain::spec::{PushSpec, StreamSpec};

use super::actor::Worker;
use super::{Applied, CoordError, Step};
use crate::mirror::Mirror;
use crate::services::{BufferKind, ServiceError, buffer_plan};

/// What the actor started for a running stream, so stop and rollback undo exactly that.
pub(super) struct Running {
    /// The configuration it runs with, parsed; updates are diffed against its record.
    spec: StreamSpec,
    /// The hub buffers created.
    buffers: Vec<BufferKind>,
    /// Whether the manager has the stream's inputs.
    inputs: bool,
    /// The outputs started, in start order.
    outputs: Vec<Output>,
    /// The push targets started, by trimmed URL.
    pushes: Vec<String>,
    /// Whether FFmpeg runs.
    transcoder: bool,
    /// Whether DVR records.
    dvr: bool,
    /// Whether the thumbnailer runs.
    thumbnail: bool,
    /// The ladder an ABR copy mirrors (SPEC §Coordinator "Topology"); `None` on the normal
    /// path.
    mirror: Option<Mirror>,
}

impl Running {
    fn new(spec: &StreamSpec, mirror: Option<Mirror>) -> Self {
        Self {
            mirror,
            spec: spec.clone(),
            buffers: Vec::new(),
            inputs: false,
            outputs: Vec::new(),
            pushes: Vec::new(),
            transcoder: false,
            dvr: false,
            thumbnail: false,
        }
    }
}

impl Worker {
    /// Moves the running state to `desired` (None: deleted), on the ABR-copy path when
    /// `mirror` says so.
    pub(super) fn converge(
        &mut self,
        desired: Option<StreamSpec>,
        mirror: Option<Mirror>,
    ) -> Result<Applied, CoordError> {
        let desired = desired.filter(|s| s.stream().is_startable());
        if desired.is_none() {
            // Deleted or disabled: a failure to start it no longer applies.
            self.state.lock().last_error = None;
        }
        match (desired, self.running.is_some()) {
            (None, false) => Ok(Applied::default()),
            (None, true) => Ok(self.stop()),
            (Some(stream), false) => self.start(&stream, mirror),
            (Some(stream), true) => self.update(stream, mirror),
        }
    }

    pub(super) fn start(
        &mut self,
        spec: &StreamSpec,
        mirror: Option<Mirror>,
    ) -> Result<Applied, CoordError> {
        if self.running.is_some() {
            return Ok(Applied::default());
        }
        let stream = spec.stream();
        if stream.disabled {
            return Err(CoordError::Disabled(self.code.clone()));
        }
        if stream.inputs.is_empty() {
            return Err(CoordError::NoInputs(self.code.clone()));
        }
        let mut run = Running::new(spec, mirror);
        let mut warnings = Vec::new();
        let mut transcoder_warnings = Vec::new();
        if let Err(e) = self.start_parts(spec, &mut run, &mut warnings, &mut transcoder_warnings) {
            tracing::warn!(stream = %self.code, error = %e, "start failed; rolled back");
            self.teardown(run);
            self.state.lock().last_error = Some(e.to_string());
            return Err(e);
        }
        let seq = self.inner.start_seq.fetch_add(1, Ordering::Relaxed);
        {
            let mut inner = self.state.lock();
            inner.started_at = Some(Utc::now());
            inner.start_seq = seq;
            // The transcoder flags are the transcoder's: it set them while starting.
            inner.inputs_exhausted = false;
            inner.warnings = warnings.clone();
            inner.transcoder_warnings = transcoder_warnings.clone();
            inner.last_error = None;
        }
        warnings.extend(transcoder_warnings);
        self.running = Some(run);
        self.state.running.store(true, Ordering::Release);
        tracing::info!(stream = %self.code, "stream started");
        self.inner
            .events
            .publish(EventType::StreamStarted, self.code.as_str(), json!({}));
        Ok(Applied {
            actions: vec![Action::Start],
            warnings,
        })
    }

    /// SPEC §Coordinator start order; each part is recorded in `run` as soon as it exists.
    /// The transcoder's own warnings go to `transcoder_warnings`, the others' to `warnings`.
    fn start_parts(
        &self,
        spec: &StreamSpec,
        run: &mut Running,
        warnings: &mut Vec<String>,
        transcoder_warnings: &mut Vec<String>,
    ) -> Result<(), CoordError> {
        let svc = &self.inner.services;
        let stream = spec.stream();
        let mirror = run.mirror.clone();
        // An ABR copy: main plus one rendition per mirrored rung, no ingest, and outputs
        // that see the mirrored ladder (SPEC §ABR copy).
        let buffers = match &mirror {
            Some(m) => std::iter::once(BufferKind::Main)
                .chain((0..m.rungs()).map(|i| BufferKind::Rendition(i as u16)))
                .collect(),
            None => buffer_plan(stream),
        };
        svc.buffers
            .create(&self.code, &buffers)
            .map_err(|e| self.failed(Step::Buffers, e))?;
        run.buffers = buffers;
        if mirror.is_none() {
            svc.inputs
                .register(spec)
                .map_err(|e| self.failed(Step::Inputs, e))?;
            run.inputs = true;
        }
        let view = mirror.as_ref().map(|m| m.outputs_view(stream));
        for output in enabled_outputs(stream) {
            svc.outputs
                .start_output(view.as_ref().unwrap_or(stream), output)
                .map_err(|e| self.failed(Step::Output(output), e))?;
            run.outputs.push(output);
        }
        for target in spec.pushes().iter().filter(|p| p.push.enabled) {
            svc.outputs
                .start_push(&self.code, target)
                .map_err(|e| self.failed(Step::Push, e))?;
            run.pushes.push(target.push.url.trim().to_owned());
        }
        if let Some(mirror) = &mirror {
            svc.transcoder
                .start_mirror(&self.code, mirror)
                .map_err(|e| self.failed(Step::Transcoder, e))?;
            run.transcoder = true;
        } else if stream.transcoder.as_ref().is_some_and(|t| t.needs_ffmpeg()) {
            *transcoder_warnings = svc
                .transcoder
                .start(spec)
                .map_err(|e| self.failed(Step::Transcoder, e))?;
            run.transcoder = true;
        }
        if stream.dvr.as_ref().is_some_and(|d| d.enabled) {
            match svc.dvr.start(stream) {
                Ok(()) => run.dvr = true,
                Err(e) => warnings.push(format!("dvr did not start: {e}")),
            }
        }
        if stream.thumbnail.as_ref().is_some_and(|t| t.enabled) {
            match svc.thumbnails.start(stream) {
                Ok(()) => run.thumbnail = true,
                Err(e) => warnings.push(format!("thumbnails did not start: {e}")),
            }
        }
        Ok(())
    }

    /// The transcoder (re)started with `started` as its warnings (none: it stopped): they
    /// replace the last start's in the stream's state and go to the write's `warnings`.
    fn transcoder_started(&self, started: Vec<String>, warnings: &mut Vec<String>) {
        self.state.lock().transcoder_warnings.clone_from(&started);
        warnings.extend(started);
    }

    fn failed(&self, step: Step, source: ServiceError) -> CoordError {
        CoordError::Service {
            code: self.code.clone(),
            step,
            source: Box::new(source),
        }
    }

    pub(super) fn stop(&mut self) -> Applied {
        let Some(run) = self.running.take() else {
            return Applied::default();
        };
        self.teardown(run);
        self.state.running.store(false, Ordering::Release);
        {
            let mut inner = self.state.lock();
            inner.started_at = None;
            inner.inputs_exhausted = false;
            inner.transcoder_unhealthy = false;
            inner.transcoder_unavailable = false;
            inner.warnings.clear();
            inner.transcoder_warnings.clear();
        }
        tracing::info!(stream = %self.code, "stream stopped");
        self.inner
            .events
            .publish(EventType::StreamStopped, self.code.as_str(), json!({}));
        Applied {
            actions: vec![Action::Stop],
            warnings: Vec::new(),
        }
    }

    /// Undoes what `run` records, in SPEC §Coordinator stop order: DVR → publisher →
    /// transcoder → manager → buffers. Synchronous, so it always completes.
    pub(super) fn teardown(&self, run: Running) {
        let svc = &self.inner.services;
        let code = &self.code;
        if run.dvr {
            svc.dvr.stop(code);
        }
        if run.thumbnail {
            svc.thumbnails.stop(code);
        }
        for url in run.pushes.iter().rev() {
            svc.outputs.stop_push(code, url);
        }
        for output in run.outputs.iter().rev() {
            svc.outputs.stop_output(code, *output);
        }
        if run.transcoder {
            svc.transcoder.stop(code);
        }
        if run.inputs {
            svc.inputs.unregister(code);
        }
        if !run.buffers.is_empty() {
            svc.buffers.delete(code, &run.buffers);
        }
    }

    /// `transcoder.ffmpeg_path` or the keyframe interval it derives from
    /// `publisher.hls.live_segment_sec` changed (SPEC §Config "Hot apply"): restarts only this
    /// stream's FFmpeg, which starts with what the service now has (a stream that reported
    /// `transcoder_unavailable` starts transcoding). Its buffers persist, so inputs,
    /// packagers, players, pushes and DVR carry on through a new session. Nothing for a
    /// stopped, passthrough or ABR-copy stream. A failure stops the stream cleanly (the
    /// reconciler heals it).
    pub(super) fn restart_transcoder(&mut self) -> Result<Applied, CoordError> {
        let Some(run) = self.running.as_mut() else {
            return Ok(Applied::default());
        };
        if !run.transcoder || run.mirror.is_some() {
            return Ok(Applied::default());
        }
        let svc = self.inner.services.clone();
        svc.transcoder.stop(&self.code);
        run.transcoder = false;
        let spec = run.spec.clone();
        let warnings = match svc.transcoder.start(&spec) {
            Ok(started) => {
                let mut warnings = Vec::new();
                self.transcoder_started(started, &mut warnings);
                warnings
            }
            Err(e) => {
                let e = self.failed(Step::Transcoder, e);
                tracing::warn!(stream = %self.code, error = %e, "transcoder restart failed; stopping the stream");
                self.stop();
                self.state.lock().last_error = Some(e.to_string());
                return Err(e);
            }
        };
        if let Some(run) = self.running.as_mut() {
            run.transcoder = true;
        }
        tracing::info!(stream = %self.code, "transcoder restarted with the new configuration");
        Ok(Applied {
            actions: vec![Action::RestartTranscoder {
                added: Vec::new(),
                removed: Vec::new(),
            }],
            warnings,
        })
    }

    /// Routes a diff to the smallest set of restarts. Any failure stops the whole stream
    /// cleanly (the reconciler heals it).
    fn update(&mut self, new: StreamSpec, mirror: Option<Mirror>) -> Result<Applied, CoordError> {
        let Some(mut run) = self.running.take() else {
            return self.start(&new, mirror);
        };
        if run.mirror.is_some() || mirror.is_some() {
            // A stream that is or becomes an ABR copy, or whose upstream's ladder changed:
            // full stop + start (SPEC §Hot reload).
            if run.spec == new && run.mirror == mirror {
                self.running = Some(run);
                return Ok(Applied::default());
            }
            self.running = Some(run);
            self.stop();
            let mut applied = self.start(&new, mirror)?;
            applied.actions = vec![Action::Stop, Action::Start];
            return Ok(applied);
        }
        let diff = compute_diff(run.spec.stream(), new.stream());
        let planned = plan(run.spec.stream(), new.stream(), &diff);
        let mut warnings = planned.warnings.clone();
        let mut applied = Vec::new();
        for action in &planned.actions {
            if matches!(action, Action::Stop) {
                self.running = Some(run);
                return Ok(self.stop());
            }
            let result = self.apply(action, &mut run, &new, &mut warnings);
            if let Err(e) = result {
                tracing::warn!(stream = %self.code, error = %e, "update failed; stopping the stream");
                self.running = Some(run);
                self.stop();
                self.state.lock().last_error = Some(e.to_string());
                return Err(e);
            }
            applied.push(action.clone());
        }
        if run.inputs && new.stream().stream_key != run.spec.stream().stream_key {
            // Metadata: no restart; the next publish is checked against the new key.
            self.inner
                .services
                .inputs
                .set_stream_key(&self.code, &new.stream().stream_key);
        }
        run.spec = new;
        self.running = Some(run);
        if !applied.is_empty() {
            tracing::info!(stream = %self.code, actions = applied.len(), "stream updated");
        }
        Ok(Applied {
            actions: applied,
            warnings,
        })
    }

    fn apply(
        &mut self,
        action: &Action,
        run: &mut Running,
        spec: &StreamSpec,
        warnings: &mut Vec<String>,
    ) -> Result<(), CoordError> {
        let svc = self.inner.services.clone();
        let code = self.code.clone();
        let new = spec.stream();
        match action {
            // `update` handles Stop before calling here; Start never accompanies a running
            // stream (the stream is running, so it was enabled).
            Action::Stop | Action::Start => {}
            Action::UpdateInputs => {
                svc.inputs
                    .update_inputs(&run.spec, spec)
                    .map_err(|e| self.failed(Step::Inputs, e))?;
            }
            Action::ReloadTranscoder => {
                let wanted = buffer_plan(new);
                if run.transcoder {
                    // Back to passthrough: the inputs feed the main buffer again once the
                    // transcoder hands its writer back (SPEC §Hot reload: "point the active
                    // ingest at the new target buffer without reconnecting it").
                    if wanted.contains(&BufferKind::Raw) {
                        svc.transcoder.stop(&code);
                    } else {
                        svc.transcoder.stop_to_ingest(&code);
                    }
                    run.transcoder = false;
                    self.transcoder_started(Vec::new(), warnings);
                }
                let gone: Vec<_> = run
                    .buffers
                    .iter()
                    .filter(|b| !wanted.contains(b))
                    .copied()
                    .collect();
                let added: Vec<_> = wanted
                    .iter()
                    .filter(|b| !run.buffers.contains(b))
                    .copied()
                    .collect();
                svc.buffers.delete(&code, &gone);
                run.buffers.retain(|b| !gone.contains(b));
                svc.buffers
                    .create(&code, &added)
                    .map_err(|e| self.failed(Step::Buffers, e))?;
                run.buffers.extend(added);
                svc.inputs
                    .update_inputs(&run.spec, spec)
                    .map_err(|e| self.failed(Step::Inputs, e))?;
                if new.transcoder.as_ref().is_some_and(|t| t.needs_ffmpeg()) {
                    let started = svc
                        .transcoder
                        .start(spec)
                        .map_err(|e| self.failed(Step::Transcoder, e))?;
                    self.transcoder_started(started, warnings);
                    run.transcoder = true;
                }
                for output in run.outputs.clone() {
                    if matches!(output, Output::Hls | Output::Dash) {
                        svc.outputs.stop_output(&code, output);
                        svc.outputs
                            .start_output(new, output)
                            .map_err(|e| self.failed(Step::Output(output), e))?;
                    }
                }
            }
            Action::RestartRung { index } => {
                svc.transcoder
                    .restart_rung(spec, *index)
                    .map_err(|e| self.failed(Step::Transcoder, e))?;
                if run.outputs.contains(&Output::Hls) || run.outputs.contains(&Output::Dash) {
                    svc.outputs.ladder_changed(new);
                }
            }
            Action::AddRung { index } => {
                let buffer = BufferKind::Rendition(*index as u16);
                svc.buffers
                    .create(&code, &[buffer])
                    .map_err(|e| self.failed(Step::Buffers, e))?;
                run.buffers.push(buffer);
                svc.transcoder
                    .add_rung(spec, *index)
                    .map_err(|e| self.failed(Step::Transcoder, e))?;
                if run.outputs.contains(&Output::Hls) || run.outputs.contains(&Output::Dash) {
                    svc.outputs.ladder_changed(new);
                }
            }
            Action::RemoveRung { index } => {
                let buffer = BufferKind::Rendition(*index as u16);
                svc.transcoder.remove_rung(&code, *index);
                if run.outputs.contains(&Output::Hls) || run.outputs.contains(&Output::Dash) {
                    svc.outputs.ladder_changed(new);
                }
                svc.buffers.delete(&code, &[buffer]);
                run.buffers.retain(|b| *b != buffer);
            }
            Action::RestartTranscoder { added, removed } => {
                if run.transcoder {
                    svc.transcoder.stop(&code);
                    run.transcoder = false;
                }
                let gone: Vec<_> = removed
                    .iter()
                    .map(|i| BufferKind::Rendition(*i as u16))
                    .collect();
                svc.buffers.delete(&code, &gone);
                run.buffers.retain(|b| !gone.contains(b));
                let fresh: Vec<_> = added
                    .iter()
                    .map(|i| BufferKind::Rendition(*i as u16))
                    .collect();
                svc.buffers
                    .create(&code, &fresh)
                    .map_err(|e| self.failed(Step::Buffers, e))?;
                run.buffers.extend(fresh);
                let started = svc
                    .transcoder
                    .start(spec)
                    .map_err(|e| self.failed(Step::Transcoder, e))?;
                self.transcoder_started(started, warnings);
                run.transcoder = true;
                if run.outputs.contains(&Output::Hls) || run.outputs.contains(&Output::Dash) {
                    svc.outputs.ladder_changed(new);
                }
            }
            Action::StartOutput { output } => {
                svc.outputs
                    .start_output(new, *output)
                    .map_err(|e| self.failed(Step::Output(*output), e))?;
                run.outputs.push(*output);
            }
            Action::StopOutput { output } => {
                svc.outputs.stop_output(&code, *output);
                run.outputs.retain(|o| o != output);
            }
            Action::StartPush { url } => {
                let Some(target) = push_target(spec, url) else {
                    return Ok(());
                };
                svc.outputs
                    .start_push(&code, target)
                    .map_err(|e| self.failed(Step::Push, e))?;
                run.pushes.push(url.clone());
            }
            Action::StopPush { url } => {
                svc.outputs.stop_push(&code, url);
                run.pushes.retain(|u| u != url);
            }
            Action::RestartPush { url } => {
                svc.outputs.stop_push(&code, url);
                run.pushes.retain(|u| u != url);
                if let Some(target) = push_target(spec, url) {
                    svc.outputs
                        .start_push(&code, target)
                        .map_err(|e| self.failed(Step::Push, e))?;
                    run.pushes.push(url.clone());
                }
            }
            Action::StartDvr => match svc.dvr.start(new) {
                Ok(()) => run.dvr = true,
                Err(e) => warnings.push(format!("dvr did not start: {e}")),
            },
            Action::StopDvr => {
                svc.dvr.stop(&code);
                run.dvr = false;
            }
            Action::RestartDvr => {
                if run.dvr {
                    svc.dvr.stop(&code);
                }
                match svc.dvr.start(new) {
                    Ok(()) => run.dvr = true,
                    Err(e) => {
                        run.dvr = false;
                        warnings.push(format!("dvr did not start: {e}"));
                    }
                }
            }
            Action::ApplyDvr => svc.dvr.apply(new),
            Action::RestartThumbnailer => {
                if run.thumbnail {
                    svc.thumbnails.stop(&code);
                    run.thumbnail = false;
                }
                if new.thumbnail.as_ref().is_some_and(|t| t.enabled) {
                    match svc.thumbnails.start(new) {
                        Ok(()) => run.thumbnail = true,
                        Err(e) => warnings.push(format!("thumbnails did not start: {e}")),
                    }
                }
            }
        }
        Ok(())
    }
}

/// The outputs a stream's protocol flags turn on, in a fixed order.
fn enabled_outputs(stream: &Stream) -> Vec<Output> {
    let p = stream.protocols();
    [
        (p.hls, Output::Hls),
        (p.dash, Output::Dash),
        (p.rtmp, Output::Rtmp),
        (p.rtsp, Output::Rtsp),
        (p.srt, Output::Srt),
    ]
    .into_iter()
    .filter_map(|(on, o)| on.then_some(o))
    .collect()
}

/// The push target of `spec` with this trimmed URL.
fn push_target<'s>(spec: &'s StreamSpec, url: &str) -> Option<&'s PushSpec> {
    spec.pushes().iter().find(|p| p.push.url.trim() == url)
}

/// An output's name in errors and logs.
pub(super) fn output_name(output: Output) -> &'static str {
    match output {
        Output::Hls => "hls",
        Output::Dash => "dash",
        Output::Rtsp => "rtsp",
        Output::Rtmp => "rtmp",
        Output::Srt => "srt",
    }
}
