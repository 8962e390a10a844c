//! Fault injection on inputs (`POST /debug/fault`, SPEC §API): a test drops one pulled input's
//! connection through its worker, so the ordinary path — the worker reports the loss, this
//! manager's failover machine reacts, the worker reconnects after its backoff — runs exactly
//! as after a real network failure. The manager chooses nothing here: it only finds the
//! input's worker.

use tributary_domain::StreamCode;
use tributary_domain::redact::mask_url;

use super::Manager;
use crate::fault::FaultError;

impl Manager {
    /// Drops the open connection of input `priority` (the active input when `None`) of
    /// running stream `code`: returns the input's priority and its masked URL.
    pub(crate) fn drop_connection(
        &self,
        code: &StreamCode,
        priority: Option<u32>,
    ) -> Result<(u32, String), FaultError> {
        let ctl = self
            .ctl(code)
            .ok_or_else(|| FaultError::NotRunning(code.to_string()))?;
        let managed = ctl.lock();
        let Some(priority) = priority.or_else(|| managed.failover.active()) else {
            return Err(FaultError::NothingToKill(format!(
                "stream {code} has no active input; name one with `priority`"
            )));
        };
        let slot = managed
            .slots
            .get(&priority)
            .ok_or_else(|| FaultError::UnknownPriority {
                code: code.to_string(),
                priority,
            })?;
        let url = mask_url(&slot.input.input.url);
        if slot.push.is_some() {
            return Err(FaultError::NothingToKill(format!(
                "stream {code}, input {priority} ({url}) is a push input: its publisher's \
                 connection belongs to the listener; only pulled inputs can be dropped"
            )));
        }
        if !slot.worker.as_ref().is_some_and(|w| w.drop_connection()) {
            return Err(FaultError::NothingToKill(format!(
                "stream {code}, input {priority} ({url}) has no open connection"
            )));
        }
        Ok((priority, url))
    }
}
