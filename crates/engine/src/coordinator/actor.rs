//! One stream's actor: the task that runs the stream's lifecycle commands one at a time, in
//! queue order, including the store writes of a PUT or DELETE (so the write and the apply are
//! under one lock). Applying a configuration is in `apply.rs`.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tributary_domain::diff::{changed_groups, compute_diff};
use tributary_domain::event::EventType;
use tributary_domain::spec::{Source, StreamSpec, refs};
use tributary_domain::{Stream, StreamCode};
use tributary_store::{Expect, StoreError, StoredStream};

use super::apply::Running;
use super::registry::Ticket;
use super::state::StreamState;
use super::{Applied, CoordError, Inner, PutOutcome};
use crate::mirror::{Mirror, MixAudio};

/// A lifecycle operation on one stream.
pub(super) enum Command {
    /// Write the record to the store, then converge on it.
    Put(
        Box<StreamSpec>,
        Expect,
        oneshot::Sender<Result<PutOutcome, CoordError>>,
    ),
    /// Delete the record, then stop the stream; replies whether it existed.
    Delete(oneshot::Sender<Result<bool, CoordError>>),
    /// Stop, then start from the stored record.
    Restart(oneshot::Sender<Result<Applied, CoordError>>),
    /// Re-read the stored record and converge on it (the reconciler).
    Converge(oneshot::Sender<Result<Applied, CoordError>>),
    /// Stop the stream (shutdown).
    Stop(oneshot::Sender<Result<Applied, CoordError>>),
    /// Restart only the stream's FFmpeg, if it transcodes (`transcoder.ffmpeg_path` changed).
    RestartTranscoder(oneshot::Sender<Result<Applied, CoordError>>),
}

/// A command with the caller's ticket, which keeps the actor registered until the command ran.
pub(super) struct Envelope {
    pub(super) command: Command,
    pub(super) ticket: Ticket,
}

/// The actor task of one stream.
pub(super) struct Worker {
    /// The coordinator's shared parts: services, store, events, registry.
    pub(super) inner: Arc<Inner>,
    /// The stream.
    pub(super) code: StreamCode,
    /// The live state readers see.
    pub(super) state: Arc<StreamState>,
    /// What runs, so stop and rollback undo exactly that (`None`: stopped).
    pub(super) running: Option<Running>,
}

impl Worker {
    /// Runs commands until the stream is blank and no caller holds a ticket, then leaves the
    /// registry (see `registry.rs`).
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Envelope>) {
        while let Some(Envelope { command, ticket }) = rx.recv().await {
            self.handle(command).await;
            drop(ticket);
            if self.state.is_blank() && self.inner.registry.reclaim(&self.code, &self.state) {
                tracing::debug!(stream = %self.code, "idle stream actor reclaimed");
                return;
            }
        }
        if let Some(running) = self.running.take() {
            self.teardown(running);
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Put(spec, expect, reply) => {
                self.record("put");
                let result = self.put(*spec, expect).await;
                let _ = reply.send(result);
            }
            Command::Delete(reply) => {
                self.record("delete");
                let result = self.delete().await;
                let _ = reply.send(result);
            }
            Command::Restart(reply) => {
                self.record("restart");
                let result = self.restart().await;
                let _ = reply.send(result);
            }
            Command::Converge(reply) => {
                self.record("converge");
                let result = match self.load().await {
                    Ok(desired) => {
                        let mirror = match &desired {
                            Some(spec) => self.mirror(spec).await,
                            None => None,
                        };
                        self.converge(desired, mirror)
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = &result {
                    tracing::warn!(stream = %self.code, error = %e, "reconcile failed; retrying next pass");
                }
                let _ = reply.send(result);
            }
            Command::Stop(reply) => {
                self.record("stop");
                let _ = reply.send(Ok(self.stop()));
            }
            Command::RestartTranscoder(reply) => {
                self.record("restart_transcoder");
                let _ = reply.send(self.restart_transcoder());
            }
        }
    }

    #[cfg(test)]
    fn record(&self, op: &'static str) {
        crate::lock(&self.inner.processed).push((self.code.clone(), op));
    }

    #[cfg(not(test))]
    fn record(&self, _op: &'static str) {}

    /// The stored record, as written.
    async fn stored(&self) -> Result<Option<StoredStream>, CoordError> {
        let store = self.inner.store.clone();
        let code = self.code.clone();
        tokio::task::spawn_blocking(move || store.get(&code))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))
    }

    /// The record to run, parsed as the API parses a write (the same context: what this
    /// build supports, the RTMP listener's bound port) and resolved over its template (SPEC
    /// §Templates, "resolution happens on read", so a template edit reaches the stream at its
    /// next converge). The store's record wins; without one, an auto-published stream's
    /// runtime record. A record that no longer parses (its template deleted, ...) is
    /// reported as the stream's last error.
    async fn load(&self) -> Result<Option<StreamSpec>, CoordError> {
        let record = match self.stored().await? {
            Some(stored) => stored.stream,
            None => match self.inner.runtime.record(&self.code) {
                Some(record) => record,
                None => return Ok(None),
            },
        };
        let template = match record.template.clone() {
            Some(name) => {
                let store = self.inner.store.clone();
                tokio::task::spawn_blocking(move || store.template(&name))
                    .await
                    .map_err(|e| CoordError::Store(e.to_string()))?
                    .map_err(|e| CoordError::Store(e.to_string()))?
            }
            None => None,
        };
        match self
            .inner
            .supported
            .parse_resolved(record, template.as_ref())
        {
            Ok((spec, _)) => Ok(Some(spec)),
            Err(source) => {
                let error = CoordError::Invalid {
                    code: self.code.clone(),
                    source,
                };
                self.state.lock().last_error = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// The ABR-copy (or ABR-mixer) topology of `spec` (SPEC §Coordinator "Topology"): its
    /// only input is `copy://X` (or `mixer://X?audio=A`), it has no ladder of its own, and X
    /// has one, or mirrors one (a chained copy). Read from the stored records at every start
    /// and converge, so a change of the upstream's ladder is seen by the next reconcile pass,
    /// which restarts the copy.
    async fn mirror(&self, spec: &StreamSpec) -> Option<Mirror> {
        let [input] = spec.inputs() else {
            return None;
        };
        let mixer = match &input.source {
            Source::Copy { .. } => None,
            Source::Mixer(mixer) => Some(mixer.clone()),
            _ => return None,
        };
        let upstream = refs::mirrored_upstream(spec.stream())?;
        let store = self.inner.store.clone();
        let from = upstream.clone();
        let root = tokio::task::spawn_blocking(move || {
            refs::ladder_root(&from, |code| {
                store.get(code).ok().flatten().map(|s| s.stream)
            })
        })
        .await
        .ok()??;
        let (root, _) = self.inner.supported.parse(root).ok()?;
        Some(Mirror {
            url: spec.stream().inputs[0].url.clone(),
            upstream,
            ladder: root.transcode()?.ladder.clone(),
            transcoder: root.stream().transcoder.clone()?,
            audio: mixer.map(|mixer| MixAudio {
                stream: mixer.audio,
                failure: mixer.audio_failure,
                root: root.stream().code.clone(),
            }),
        })
    }

    async fn put(&mut self, spec: StreamSpec, expect: Expect) -> Result<PutOutcome, CoordError> {
        // What was stored before, as written, for `stream.updated`'s field groups.
        let previous = self.stored().await?;
        let store = self.inner.store.clone();
        let code = self.code.clone();
        let to_store: Stream = spec.record().clone();
        let upserted = tokio::task::spawn_blocking(move || store.upsert(&to_store, expect))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| match e {
                StoreError::Conflict {
                    expected, actual, ..
                } => CoordError::Precondition {
                    code: code.clone(),
                    expected: format!("{expected:?}"),
                    actual,
                },
                other => CoordError::Store(other.to_string()),
            })?;
        let (kind, payload) = match previous.filter(|_| !upserted.created) {
            Some(previous) => {
                let (old, new) = (&previous.stream, &upserted.stored.stream);
                let changed = changed_groups(old, new, &compute_diff(old, new));
                (EventType::StreamUpdated, json!({ "changed": changed }))
            }
            None => (EventType::StreamCreated, json!({})),
        };
        self.inner.events.publish(kind, self.code.as_str(), payload);
        let mirror = self.mirror(&spec).await;
        let applied = self.converge(Some(spec), mirror);
        Ok(PutOutcome {
            stored: upserted.stored,
            created: upserted.created,
            applied,
        })
    }

    async fn delete(&mut self) -> Result<bool, CoordError> {
        let store = self.inner.store.clone();
        let code = self.code.clone();
        let existed = tokio::task::spawn_blocking(move || store.delete(&code))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))?;
        self.stop();
        // The stream is gone: a failure to start it no longer applies.
        self.state.lock().last_error = None;
        if existed {
            self.inner
                .events
                .publish(EventType::StreamDeleted, self.code.as_str(), json!({}));
        }
        Ok(existed)
    }

    async fn restart(&mut self) -> Result<Applied, CoordError> {
        let Some(stored) = self.load().await? else {
            return Err(CoordError::NotFound(self.code.clone()));
        };
        if stored.stream().disabled {
            return Err(CoordError::Disabled(self.code.clone()));
        }
        let mirror = self.mirror(&stored).await;
        let mut stopped = self.stop();
        let started = self.start(&stored, mirror)?;
        stopped.actions.extend(started.actions);
        stopped.warnings.extend(started.warnings);
        Ok(stopped)
    }
}
