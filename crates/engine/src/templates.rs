//! `/templates` behind the API (SPEC §Templates): template writes validated like streams,
//! prefix overlap refused, deletes refused while streams use the template, and a template edit
//! hot-reloading its running dependents.
//!
//! A dependent is converged by its own actor, which re-reads and re-resolves its record (the
//! template is read on every load), so an edit goes through the same diff and restart plan as
//! a stream edit (SPEC §Hot reload "template edited": `update(resolve(old), resolve(new))`),
//! and only what changed restarts.

use std::sync::Arc;

use tributary_domain::spec::StreamSpec;
use tributary_domain::template::{Overlap, Template, overlaps, parse_template};
use tributary_domain::validate::ValidationErrors;
use tributary_domain::{Stream, StreamCode};
use tributary_store::StreamRepository;

use crate::EngineHandle;
use crate::coordinator::CoordError;

/// Why a template operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template does not validate; every failing field is named.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// A prefix overlaps another template's (409 `PREFIX_OVERLAP`).
    #[error("template {code}: {}", overlap_text(.overlaps))]
    Overlap {
        /// The template written.
        code: String,
        /// Each collision.
        overlaps: Vec<Overlap>,
    },
    /// Streams still use the template (409 `TEMPLATE_IN_USE`).
    #[error("template {code} is used by streams {}", .streams.join(", "))]
    InUse {
        /// The template.
        code: String,
        /// The stored and runtime streams that name it, sorted.
        streams: Vec<String>,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

impl EngineHandle {
    /// Every stored template, sorted by code (secrets as stored: the API masks them).
    pub async fn list_templates(&self) -> Result<Vec<Template>, TemplateError> {
        let store = self.store();
        blocking(move || store.list_templates()).await
    }

    /// The stored template with this code.
    pub async fn template(&self, code: &str) -> Result<Option<Template>, TemplateError> {
        let store = self.store();
        let code = code.to_owned();
        blocking(move || store.template(&code)).await
    }

    /// Validates and stores `template` (create or replace; a write that echoes a secret's
    /// mask keeps the stored secret), then converges every running stream that uses it.
    /// Returns the template as stored, whether it was created, and warnings (a dependent that
    /// failed to update; the reconciler retries it).
    pub async fn put_template(
        &self,
        mut template: Template,
    ) -> Result<(Template, bool, Vec<String>), TemplateError> {
        let _one = self.shared.template_writes.lock().await;
        let all = self.list_templates().await?;
        if let Some(stored) = all.iter().find(|t| t.code == template.code) {
            template.restore_secrets(stored);
        }
        let (template, mut warnings) =
            parse_template(template, &self.support()).map_err(TemplateError::Invalid)?;
        let found = overlaps(&template, &all);
        if !found.is_empty() {
            return Err(TemplateError::Overlap {
                code: template.code,
                overlaps: found,
            });
        }
        let store = self.store();
        let written = template.clone();
        let created = blocking(move || store.put_template(&written)).await?;
        for code in self.dependents(&template.code).await? {
            if !self.shared.coordinator.is_running(&code) {
                continue;
            }
            if let Err(e) = self.shared.coordinator.converge(&code).await {
                warnings.push(format!(
                    "stream {code} did not take the template edit: {e}; the reconciler will retry"
                ));
            }
        }
        Ok((template, created, warnings))
    }

    /// Deletes a template; `false` if there was none. Refused while a stored or runtime
    /// stream names it.
    pub async fn delete_template(&self, code: &str) -> Result<bool, TemplateError> {
        let _one = self.shared.template_writes.lock().await;
        let users = self.dependents(code).await?;
        if !users.is_empty() {
            return Err(TemplateError::InUse {
                code: code.to_owned(),
                streams: users.iter().map(ToString::to_string).collect(),
            });
        }
        let store = self.store();
        let code = code.to_owned();
        blocking(move || store.delete_template(&code)).await
    }

    /// Parses a record to store as the coordinator will run it: resolved over the template it
    /// names (SPEC §Templates; a missing one is `TEMPLATE_NOT_FOUND` naming `template`).
    /// The outer error is the store's; the inner one names every failing field.
    pub async fn parse_stream_resolved(
        &self,
        stream: Stream,
    ) -> Result<Result<(StreamSpec, Vec<String>), ValidationErrors>, CoordError> {
        let template = match stream.template.clone() {
            Some(name) => self
                .template(&name)
                .await
                .map_err(|e| CoordError::Store(e.to_string()))?,
            None => None,
        };
        Ok(self
            .shared
            .supported
            .parse_resolved(stream, template.as_ref()))
    }

    /// The auto-published streams and their templates, sorted by code.
    pub fn runtime_streams(&self) -> Vec<(StreamCode, String)> {
        self.shared
            .coordinator
            .runtime_streams()
            .list()
            .into_iter()
            .map(|(code, entry)| (code, entry.template))
            .collect()
    }

    /// The stored and runtime streams that name template `code`, sorted.
    async fn dependents(&self, code: &str) -> Result<Vec<StreamCode>, TemplateError> {
        let stored = self
            .list_streams()
            .await
            .map_err(|e| TemplateError::Store(e.to_string()))?;
        let mut users: Vec<StreamCode> = stored
            .into_iter()
            .filter(|r| r.stream.template.as_deref() == Some(code))
            .map(|r| r.stream.code)
            .collect();
        users.extend(
            self.runtime_streams()
                .into_iter()
                .filter(|(_, template)| template == code)
                .map(|(code, _)| code),
        );
        users.sort();
        users.dedup();
        Ok(users)
    }

    fn store(&self) -> Arc<dyn StreamRepository> {
        Arc::clone(&self.shared.store)
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, tributary_store::StoreError> + Send + 'static,
) -> Result<T, TemplateError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| TemplateError::Store(e.to_string()))?
        .map_err(|e| TemplateError::Store(e.to_string()))
}

fn overlap_text(overlaps: &[Overlap]) -> String {
    overlaps
        .iter()
        .map(|o| {
            format!(
                "prefixes[{}] {:?} overlaps {:?} of template {}",
                o.index, o.prefix, o.overlaps, o.conflicting_with
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
