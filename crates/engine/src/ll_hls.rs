//! LL-HLS at the engine's edge: the wait a blocking playlist or preload-hint request makes
//! before it is served (`_HLS_msn`, `_HLS_part`, a hinted part's URI), and whether a request
//! wants the `_HLS_skip` delta update. The waiting itself lives with the HLS windows
//! (`tributary_publish`'s blocking module: a watch per output, bounded in time and number);
//! this module only maps the request path onto an output, so the synchronous
//! [`EngineHandle::media_for`] stays as it is and the HTTP layer awaits this first.

use tributary_publish::{BlockError, LlQuery};

use crate::EngineHandle;
use crate::outputs::split_media_path;

impl EngineHandle {
    /// Waits until the media at `path` (relative to the server root) can answer what `query`
    /// (the URL's query, without `?`) asks for: an LL-HLS playlist with `_HLS_msn` /
    /// `_HLS_part` is held until that segment or part exists, a part URI (a preload hint)
    /// until the part exists. Returns at once for every other request. An error is the
    /// response: [`BlockError::BadRequest`] 400, [`BlockError::Timeout`] and
    /// [`BlockError::Busy`] 503.
    ///
    /// With signed play URLs on, a request whose signature does not hold never waits (it
    /// would hold a waiter's place): it returns at once and [`EngineHandle::media_for`]
    /// refuses it.
    pub async fn media_ready(
        &self,
        path: &str,
        query: &str,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<(), BlockError> {
        let Some((code, rung, name)) = split_media_path(path) else {
            return Ok(());
        };
        if self
            .check_play_signature(&code, query, peer, false)
            .is_err()
        {
            return Ok(());
        }
        let ll = LlQuery::parse(query)?;
        let hls = self.shared.media.outputs.hls_registry();
        hls.wait_ready(&code, rung, name, &ll).await
    }
}

/// Whether `query` asks for the delta update (`_HLS_skip=YES` or `v2`); a malformed query
/// was refused by [`EngineHandle::media_ready`] before.
pub(crate) fn wants_delta(query: &str) -> bool {
    LlQuery::parse(query).is_ok_and(|q| q.skip)
}
