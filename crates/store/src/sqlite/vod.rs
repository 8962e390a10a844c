//! VOD mounts in SQLite (migration 0006): one row per mount, its JSON keyed by its name.
//! Kept beside `sqlite.rs` like the templates, so that file stays one concept.

use tributary_domain::vod::VodMount;

use super::{JsonTable, SqliteStore};
use crate::{StoreError, VodRepository};

impl VodRepository for SqliteStore {
    fn list_mounts(&self) -> Result<Vec<VodMount>, StoreError> {
        self.json_rows(
            "list VOD mounts",
            "VOD mount",
            "SELECT name, json FROM vod_mounts ORDER BY name",
        )
    }

    fn mount(&self, name: &str) -> Result<Option<VodMount>, StoreError> {
        self.json_row(
            "get VOD mount",
            "VOD mount",
            "SELECT json FROM vod_mounts WHERE name = ?1",
            name,
        )
    }

    fn put_mount(&self, mount: &VodMount, create_only: bool) -> Result<bool, StoreError> {
        let refuse = create_only.then_some(StoreError::MountExists {
            name: mount.name.clone(),
        });
        self.put_json(JsonTable::VOD_MOUNTS, &mount.name, mount, refuse)
    }

    fn delete_mount(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_json(JsonTable::VOD_MOUNTS, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_created_refused_twice_replaced_listed_and_deleted() {
        let store = SqliteStore::open_in_memory().expect("open");
        let mut a = VodMount {
            name: "a".into(),
            storage: "/srv/a".into(),
            comment: String::new(),
        };
        let b = VodMount {
            name: "b".into(),
            ..a.clone()
        };
        assert!(store.put_mount(&a, true).expect("create"));
        assert!(store.put_mount(&b, true).expect("create"));
        assert!(matches!(
            store.put_mount(&a, true),
            Err(StoreError::MountExists { .. })
        ));
        a.comment = "films".into();
        assert!(!store.put_mount(&a, false).expect("replace"));
        assert_eq!(store.mount("a").expect("get"), Some(a.clone()));
        assert_eq!(store.list_mounts().expect("list"), [a, b]);
        assert!(store.delete_mount("a").expect("delete"));
        assert!(!store.delete_mount("a").expect("delete again"));
        assert_eq!(store.mount("a").expect("get"), None);
    }
}
