//! Templates in SQLite (migration 0005): one row per template, its JSON keyed by its code.
//! Kept beside `sqlite.rs` (same connection, same conventions) so that file stays one concept:
//! streams, hooks and the schema.

use chrono::Utc;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use tributary_domain::template::Template;

use super::{SqliteStore, format_time};
use crate::{StoreError, TemplateRepository};

impl TemplateRepository for SqliteStore {
    fn list_templates(&self) -> Result<Vec<Template>, StoreError> {
        let db = |source| StoreError::Database {
            operation: "list templates",
            code: None,
            source,
        };
        let rows: Vec<(String, String)> = {
            let conn = self.lock();
            let mut statement = conn
                .prepare_cached("SELECT code, json FROM templates ORDER BY code")
                .map_err(db)?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?
        };
        let mut templates = Vec::with_capacity(rows.len());
        for (code, json) in rows {
            match serde_json::from_str::<Template>(&json) {
                Ok(template) => templates.push(template),
                Err(e) => {
                    tracing::error!(template = %code, error = %e, "skipping corrupt template row");
                }
            }
        }
        Ok(templates)
    }

    fn template(&self, code: &str) -> Result<Option<Template>, StoreError> {
        let json: Option<String> = self
            .lock()
            .query_row(
                "SELECT json FROM templates WHERE code = ?1",
                [code],
                |row| row.get(0),
            )
            .optional()
            .map_err(|source| StoreError::Database {
                operation: "get template",
                code: Some(code.to_owned()),
                source,
            })?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                code: format!("template {code}"),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    fn put_template(&self, template: &Template) -> Result<bool, StoreError> {
        let json = serde_json::to_string(template).map_err(|e| StoreError::Encode {
            code: format!("template {}", template.code),
            reason: e.to_string(),
        })?;
        let db = |source| StoreError::Database {
            operation: "put template",
            code: Some(template.code.clone()),
            source,
        };
        let now = format_time(Utc::now());
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM templates WHERE code = ?1",
                [&template.code],
                |_| Ok(()),
            )
            .optional()
            .map_err(db)?
            .is_some();
        tx.execute(
            "INSERT INTO templates (code, json, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (code) DO UPDATE SET json = excluded.json,
             updated_at = excluded.updated_at",
            params![template.code, json, now],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(!exists)
    }

    fn delete_template(&self, code: &str) -> Result<bool, StoreError> {
        let deleted = self
            .lock()
            .execute("DELETE FROM templates WHERE code = ?1", [code])
            .map_err(|source| StoreError::Database {
                operation: "delete template",
                code: Some(code.to_owned()),
                source,
            })?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tributary_domain::template::decode_template;

    use super::*;

    #[test]
    fn templates_are_created_replaced_listed_and_deleted() {
        let store = SqliteStore::open_in_memory().expect("open");
        let a = decode_template(
            "a",
            json!({"prefixes": ["live/a"], "stream_key": "0123456789"}),
        )
        .expect("decodes");
        assert!(store.put_template(&a).expect("put"));
        let mut b = a.clone();
        b.code = "b".into();
        assert!(store.put_template(&b).expect("put"));
        b.name = "B".into();
        assert!(!store.put_template(&b).expect("replace"));
        assert_eq!(store.template("b").expect("get"), Some(b.clone()));
        assert_eq!(store.list_templates().expect("list"), [a, b]);
        assert!(store.delete_template("a").expect("delete"));
        assert!(!store.delete_template("a").expect("delete again"));
        assert_eq!(store.template("a").expect("get"), None);
    }
}
