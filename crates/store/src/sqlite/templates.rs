//! Templates in SQLite (migration 0005): one row per template, its JSON keyed by its code.
//! Kept beside `sqlite.rs` (same connection, same conventions) so that file stays one concept:
//! streams and the schema.

use tributary_domain::template::Template;

use super::{JsonTable, SqliteStore};
use crate::{StoreError, TemplateRepository};

impl TemplateRepository for SqliteStore {
    fn list_templates(&self) -> Result<Vec<Template>, StoreError> {
        self.json_rows(
            "list templates",
            "template",
            "SELECT code, json FROM templates ORDER BY code",
        )
    }

    fn template(&self, code: &str) -> Result<Option<Template>, StoreError> {
        self.json_row(
            "get template",
            "template",
            "SELECT json FROM templates WHERE code = ?1",
            code,
        )
    }

    fn put_template(&self, template: &Template) -> Result<bool, StoreError> {
        self.put_json(JsonTable::TEMPLATES, &template.code, template, None)
    }

    fn delete_template(&self, code: &str) -> Result<bool, StoreError> {
        self.delete_json(JsonTable::TEMPLATES, code)
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
