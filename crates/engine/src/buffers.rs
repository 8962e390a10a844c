//! The buffer service over the hub (SPEC §Buffer hub): one buffer per id a stream needs, and
//! the [`Intake`] in front of the buffer ingest writes to.
//!
//! The main and raw buffers are created with the timeline normaliser on (SPEC §Timeline).
//! Rendition buffers are not: FFmpeg's output keeps the raw buffer's normalised timestamps
//! (the transcoder puts them back on its 64-bit timeline), so a rung's frames carry the PTS
//! of the input frames they encode and every rung the same ones (SPEC §Transcoder
//! "Alignment"); a normaliser per rendition would anchor each rung at the moment its first
//! frame arrived. The ingest target — the main buffer, or `$raw$<code>` while FFmpeg
//! transcodes — gets an intake, which the stream manager finds in [`Intakes`]; the other
//! buffers' writers are kept here until their producer (the transcoder) takes them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tributary_domain::StreamCode;
use tributary_hub::{BufferConfig, BufferId, Hub, Intake, SessionReason, Writer};

use crate::lock;
use crate::services::{BufferKind, BufferService, ServiceError};

/// The intakes of running streams, keyed by stream code: the hub handle the buffer service
/// hands to the stream manager. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Intakes(Arc<Mutex<HashMap<StreamCode, Intake>>>);

impl Intakes {
    /// The intake in front of `code`'s ingest buffer.
    pub(crate) fn get(&self, code: &StreamCode) -> Option<Intake> {
        lock(&self.0).get(code).cloned()
    }

    fn insert(&self, code: StreamCode, intake: Intake) {
        lock(&self.0).insert(code, intake);
    }

    fn remove(&self, code: &StreamCode) -> Option<Intake> {
        lock(&self.0).remove(code)
    }
}

/// The hub-backed [`BufferService`].
pub(crate) struct HubBuffers {
    /// The process's one hub.
    hub: Hub,
    /// Frames per buffer (`buffer.capacity`); a change through the config API applies to the
    /// buffers created from then on (streams started or restarted after it): a running ring
    /// keeps its size, so no subscriber's position is invalidated.
    capacity: std::sync::atomic::AtomicUsize,
    /// Intakes of ingest buffers, shared with the stream manager.
    intakes: Intakes,
    /// Writers of the other buffers, per stream, until a producer takes them.
    writers: Mutex<HashMap<StreamCode, Vec<(BufferKind, Writer)>>>,
}

impl HubBuffers {
    pub(crate) fn new(hub: Hub, capacity: usize, intakes: Intakes) -> Self {
        Self {
            hub,
            capacity: std::sync::atomic::AtomicUsize::new(capacity),
            intakes,
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// `buffer.capacity` changed through the config API: the size of every buffer created
    /// from now on.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity
            .store(capacity, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The hub id of one of `code`'s buffers.
pub(crate) fn buffer_id(code: &StreamCode, kind: BufferKind) -> BufferId {
    match kind {
        BufferKind::Main => BufferId::Stream(code.clone()),
        BufferKind::Raw => BufferId::Raw(code.clone()),
        BufferKind::Rendition(rung) => BufferId::Rendition(code.clone(), rung),
    }
}

/// The buffer ingest writes to: raw while transcoding, else the main buffer.
fn ingest_kind(kinds: &[BufferKind]) -> Option<BufferKind> {
    if kinds.contains(&BufferKind::Raw) {
        Some(BufferKind::Raw)
    } else {
        kinds.iter().copied().find(|k| *k == BufferKind::Main)
    }
}

impl HubBuffers {
    /// The intake in front of `code`'s ingest buffer (an ABR copy writes its playback feed
    /// through it).
    pub(crate) fn intake(&self, code: &StreamCode) -> Option<Intake> {
        self.intakes.get(code)
    }

    /// Takes the writer of `code`'s `kind` buffer kept here, if any.
    pub(crate) fn take_writer(&self, code: &StreamCode, kind: BufferKind) -> Option<Writer> {
        let mut writers = lock(&self.writers);
        let list = writers.get_mut(code)?;
        let at = list.iter().position(|(k, _)| *k == kind)?;
        let (_, writer) = list.swap_remove(at);
        if list.is_empty() {
            writers.remove(code);
        }
        Some(writer)
    }

    /// Takes every writer of `code` kept here (the main buffer's while transcoding, and the
    /// renditions'): their producer, the transcoder, owns them from now on.
    pub(crate) fn take_writers(&self, code: &StreamCode) -> Vec<Writer> {
        lock(&self.writers)
            .remove(code)
            .map(|list| list.into_iter().map(|(_, writer)| writer).collect())
            .unwrap_or_default()
    }
}

impl BufferService for HubBuffers {
    fn create(&self, code: &StreamCode, kinds: &[BufferKind]) -> Result<(), ServiceError> {
        let ingest = ingest_kind(kinds);
        let mut made: Vec<(BufferKind, Writer)> = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let config = BufferConfig {
                capacity: self.capacity.load(std::sync::atomic::Ordering::Relaxed),
                normalise: !matches!(kind, BufferKind::Rendition(_)),
                ..BufferConfig::default()
            };
            match self.hub.create_with(buffer_id(code, kind), config) {
                Ok(writer) => made.push((kind, writer)),
                Err(e) => {
                    // Dropping the writers made so far deletes their buffers.
                    drop(made);
                    return Err(ServiceError::Hub(e));
                }
            }
        }
        let mut others = Vec::new();
        for (kind, writer) in made {
            if Some(kind) != ingest {
                others.push((kind, writer));
                continue;
            }
            match self.intakes.get(code) {
                // A running stream starts transcoding (SPEC §Hot reload "topology_changed"):
                // its intake moves to the raw buffer, the inputs stay connected, and the
                // main buffer's writer waits here for the transcoder's playback tap. Any
                // other writer it held (the raw buffer of a retarget back to passthrough that
                // has not completed: deleted) is dropped.
                Some(intake) => {
                    let previous = intake.retarget(writer, SessionReason::ConfigChange);
                    let main = buffer_id(code, BufferKind::Main);
                    if *previous.id() == main && self.hub.contains(&main) {
                        others.push((BufferKind::Main, previous));
                    }
                }
                None => self.intakes.insert(code.clone(), Intake::new(writer)),
            }
        }
        lock(&self.writers)
            .entry(code.clone())
            .or_default()
            .extend(others);
        Ok(())
    }

    fn delete(&self, code: &StreamCode, kinds: &[BufferKind]) {
        let mut writers = lock(&self.writers);
        if let Some(list) = writers.get_mut(code) {
            list.retain(|(kind, _)| !kinds.contains(kind));
            if list.is_empty() {
                writers.remove(code);
            }
        }
        drop(writers);
        // The intake goes with its stream's main buffer. While only its raw buffer goes (the
        // stream stops transcoding) it stays, and so does that buffer for now: the intake's
        // inputs keep writing into it (a publisher refused by a deleted buffer would hang up)
        // until the transcoder hands the main writer back and points the intake at it, which
        // drops the raw buffer's writer and with it the buffer.
        let fed = if kinds.contains(&BufferKind::Main) {
            self.intakes.remove(code);
            None
        } else {
            self.intakes.get(code).map(|intake| intake.id())
        };
        // Delete explicitly too: ports or subscribers may still hold the intake's writer.
        for &kind in kinds {
            let id = buffer_id(code, kind);
            if fed.as_ref() != Some(&id) {
                self.hub.delete(&id);
            }
        }
    }
}
