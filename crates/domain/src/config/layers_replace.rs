//! `PUT /config/yaml` (a full replace by default): the document's `global_config` becomes the
//! whole store layer, where `POST /config` and a PUT with `?prune=false` merge into it.
//!
//! Kept apart from [`Layers::write`] so that the merge path stays exactly as it is; the
//! replace reuses its checks (pins, bootstrap-only fields, `null` sections, validation) by
//! writing the new layer over the layers without a store layer, then reports the paths that
//! change against the layers as they are now.

use serde_json::{Map, Value};

use super::{Layers, MASK, Write, WriteError, changed_paths, invalid, lookup};

impl Layers {
    /// Replaces the store layer with `layer`: a field the current store layer sets and
    /// `layer` leaves out goes back to the value below it (file or default). A `"****"`
    /// string keeps the stored value at its path (a masked secret written back), or the
    /// value below when the store layer has none there.
    pub fn replace(&self, layer: Value) -> Result<Write, WriteError> {
        let Value::Object(mut layer) = layer else {
            return Err(invalid("$", "the configuration must be a JSON object"));
        };
        keep_masked(&mut layer, Some(&self.store));
        let below = self.clone().with_store(Value::Object(Map::new()));
        let mut write = below.write(Value::Object(layer))?;
        let next = self.clone().with_store(write.store.clone());
        write.changed = changed_paths(&self.merged(), &next.merged());
        Ok(write)
    }
}

/// Puts the stored value back under each `"****"` of `layer` (leaving the mask, which the
/// write drops, where nothing is stored).
fn keep_masked(layer: &mut Map<String, Value>, stored: Option<&Value>) {
    for (key, value) in layer.iter_mut() {
        let below = stored.and_then(|s| lookup(s, key));
        match value {
            Value::String(text) if text == MASK => {
                if let Some(kept) = below {
                    *value = kept.clone();
                }
            }
            Value::Object(inner) => keep_masked(inner, below),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn layers() -> Layers {
        Layers::new(
            json!({"manager": {"input_packet_timeout_sec": 20}}),
            json!({"listeners": {"srt": {"port": 7000}}}),
            json!({"data_dir": "/tmp/d"}),
        )
        .with_store(
            json!({"manager": {"frozen_gops": 5, "input_packet_timeout_sec": 25},
                           "listeners": {"srt": {"passphrase": "stored-passphrase"}}}),
        )
    }

    #[test]
    fn a_replace_drops_what_the_layer_leaves_out_and_keeps_masked_secrets() {
        let write = layers()
            .replace(json!({"manager": {"frozen_gops": 6},
                            "listeners": {"srt": {"passphrase": "****"}}}))
            .unwrap();
        assert_eq!(
            write.store,
            json!({"manager": {"frozen_gops": 6},
                   "listeners": {"srt": {"passphrase": "stored-passphrase"}}})
        );
        assert_eq!(
            write.config.manager.input_packet_timeout_sec, 20,
            "the file's again"
        );
        assert_eq!(
            write.changed,
            ["manager.frozen_gops", "manager.input_packet_timeout_sec"]
        );
    }

    #[test]
    fn a_replace_checks_as_a_write_does() {
        let layers = layers();
        let pinned = layers.replace(json!({"listeners": {"srt": {"port": 7001}}}));
        assert!(matches!(pinned, Err(WriteError::Pinned(_))), "{pinned:?}");
        // The pinned value itself, and the bootstrap field as it is, pass and are not stored.
        let same = layers
            .replace(json!({"listeners": {"srt": {"port": 7000}}, "data_dir": "/tmp/d"}))
            .unwrap();
        assert_eq!(same.store, json!({}));
        let invalid = layers.replace(json!({"buffer": {"capacity": 0}}));
        assert!(
            matches!(invalid, Err(WriteError::Invalid(_))),
            "{invalid:?}"
        );
        assert!(layers.replace(json!([])).is_err());
        // The same layer again changes nothing.
        let again = layers.replace(layers.store().clone()).unwrap();
        assert!(again.changed.is_empty(), "{:?}", again.changed);
    }
}
