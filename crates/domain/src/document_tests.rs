//! The whole-system document: decoding with document paths, secrets kept through a masked
//! round trip, validation of the system a PUT would leave, and the plan of changes.

use serde_json::{Value, json};

use super::*;

fn support() -> Support {
    Support::everything()
}

/// The system a test starts from: one template with a key, one stream using it, one stream
/// with its own key and a password in its input URL, a hook with a secret, a mount.
fn stored() -> Stored {
    let doc = Document::decode(json!({
        "templates": [{"code": "events", "stream_key": "template-key-123",
                       "prefixes": ["live/events"], "inputs": [{"url": "publish://"}]}],
        "streams": [
            {"code": "a", "template": "events"},
            {"code": "b", "stream_key": "stream-key-456",
             "inputs": [{"url": "rtsp://user:pw-secret@cam.example/1"}]}
        ],
        "hooks": [{"id": "h1", "type": "http", "target": "http://hooks.example/in",
                   "secret": "hook-secret-789"}],
        "vod": [{"name": "films", "storage": "/srv/films"}]
    }))
    .unwrap();
    Stored {
        streams: doc.streams.unwrap(),
        templates: doc.templates.unwrap(),
        hooks: doc.hooks.unwrap(),
        vod: doc.vod.unwrap(),
    }
}

/// The stored system as `GET /config/yaml` masks it, as a JSON value.
fn masked_value(stored: &Stored) -> Value {
    let shown = SystemDocument {
        global_config: json!({}),
        streams: stored.streams.clone(),
        templates: stored.templates.clone(),
        hooks: stored.hooks.clone(),
        vod: stored.vod.clone(),
    }
    .masked(&json!({}));
    serde_json::to_value(shown).unwrap()
}

fn paths(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn unknown_keys_are_named_apart_from_invalid_values() {
    let err = Document::decode(json!({"stream": [], "streams": [{"code": "a", "inputz": []}]}))
        .unwrap_err();
    let DecodeError::Unknown(errors) = err else {
        panic!("{err:?}")
    };
    assert_eq!(paths(&errors.0), ["stream", "streams[0].inputz"]);

    let err = Document::decode(json!({
        "streams": [{"code": "a", "disabled": "yes"}, {"name": "no code"}],
        "hooks": {"id": "h"},
        "global_config": [1]
    }))
    .unwrap_err();
    let DecodeError::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let mut found = paths(&errors.0);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "global_config",
            "hooks",
            "streams[0].disabled",
            "streams[1].code"
        ]
    );
    assert!(matches!(
        Document::decode(json!([1])),
        Err(DecodeError::Invalid(_))
    ));
}

#[test]
fn a_numeric_code_is_its_text() {
    let doc = Document::decode(json!({"streams": [{"code": 1234}],
                                      "templates": [{"code": 7}]}))
    .unwrap();
    assert_eq!(doc.streams.unwrap()[0].code.as_str(), "1234");
    assert_eq!(doc.templates.unwrap()[0].code, "7");
}

#[test]
fn absent_and_null_sections_are_left_alone() {
    let doc = Document::decode(json!({"streams": null, "hooks": []})).unwrap();
    assert_eq!(doc.streams, None);
    assert_eq!(doc.hooks, Some(Vec::new()));
    assert_eq!(doc.global_config, None);
    let plan = doc.plan(&stored(), true);
    assert_eq!(plan.hooks.deleted, ["h1"]);
    assert!(plan.streams.deleted.is_empty(), "absent: not pruned");
}

#[test]
fn a_masked_round_trip_keeps_every_secret_and_changes_nothing() {
    let stored = stored();
    let shown = masked_value(&stored);
    let text = shown.to_string();
    for secret in [
        "template-key-123",
        "stream-key-456",
        "pw-secret",
        "hook-secret-789",
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let mut doc = Document::decode(shown).unwrap();
    assert!(doc.restore_secrets(&stored).is_empty());
    doc.validate(&stored, &support(), false).unwrap();
    let plan = doc.plan(&stored, true);
    assert_eq!(plan.streams.unchanged, ["a", "b"]);
    assert_eq!(plan.templates.unchanged, ["events"]);
    assert_eq!(plan.hooks.unchanged, ["h1"]);
    assert_eq!(plan.vod.unchanged, ["films"]);
    let none: Vec<String> = Vec::new();
    for section in [&plan.streams, &plan.templates, &plan.hooks, &plan.vod] {
        assert_eq!(section.created, none);
        assert_eq!(section.updated, none);
        assert_eq!(section.deleted, none);
    }
    assert_eq!(doc.hooks.unwrap()[0].secret, "hook-secret-789");
}

#[test]
fn a_mask_with_nothing_stored_behind_it_is_named() {
    let mut doc = Document::decode(masked_value(&stored())).unwrap();
    let left = doc.restore_secrets(&Stored::default());
    assert_eq!(
        paths(&left),
        [
            "streams[1].stream_key",
            "streams[1].inputs[0].url",
            "templates[0].stream_key",
            "hooks[0].secret"
        ]
    );
}

#[test]
fn the_plan_says_created_updated_unchanged_and_deleted_only_with_prune() {
    let stored = stored();
    let mut doc = Document::decode(json!({
        "templates": [{"code": "events", "stream_key": "template-key-123",
                       "prefixes": ["live/events/"], "inputs": [{"url": "publish://"}]}],
        "streams": [
            {"code": "a", "template": "events", "name": "renamed"},
            {"code": "c", "inputs": [{"url": "rtmp://origin.example/live/c"}]}
        ],
        "hooks": []
    }))
    .unwrap();
    doc.restore_secrets(&stored);
    let (specs, _) = doc.validate(&stored, &support(), false).unwrap();
    assert_eq!(specs.len(), 2);
    // The trailing `/` is trimmed as a template write trims it: the template is unchanged.
    let plan = doc.plan(&stored, false);
    assert_eq!(plan.templates.unchanged, ["events"]);
    assert_eq!(plan.streams.updated, ["a"]);
    assert_eq!(plan.streams.created, ["c"]);
    assert!(plan.streams.deleted.is_empty() && plan.hooks.deleted.is_empty());
    assert!(
        plan.vod == SectionPlan::default(),
        "vod is not in the document"
    );
    let pruned = doc.plan(&stored, true);
    assert_eq!(pruned.streams.deleted, ["b"]);
    assert_eq!(pruned.hooks.deleted, ["h1"]);
    assert!(pruned.vod.deleted.is_empty());
}

#[test]
fn validation_names_document_paths_and_sees_the_final_system() {
    let stored = stored();
    // A stream naming a template only the document brings validates resolved over it.
    let mut doc = Document::decode(json!({
        "templates": [{"code": "news", "prefixes": ["live/news"],
                       "inputs": [{"url": "rtmp://origin.example/live/news"}]}],
        "streams": [{"code": "n1", "template": "news"}]
    }))
    .unwrap();
    doc.validate(&stored, &support(), false).unwrap();

    let mut doc = Document::decode(json!({
        "templates": [{"code": "t2", "prefixes": ["live/events/x"]}],
        "streams": [
            {"code": "ok", "inputs": [{"url": "rtmp://origin.example/live/ok"}]},
            {"code": "ok", "inputs": [{"url": "rtmp://origin.example/live/ok2"}]},
            {"code": "bad", "inputs": [{"url": "gopher://nowhere"}], "stream_key": "short"},
            {"code": "orphan", "template": "missing"},
            {"code": "rung", "inputs": [{"url": "rtmp://origin.example/live/r"}],
             "push": [{"url": "rtmp://x/a/b", "profile": "track_1"}]}
        ],
        "hooks": [{"id": "h2", "type": "http", "target": "http://x/"},
                  {"id": "h2", "type": "http", "target": "http://y/"}]
    }))
    .unwrap();
    let errors = doc.validate(&stored, &support(), false).unwrap_err();
    assert_eq!(
        paths(&errors.0),
        [
            "templates[0].prefixes[0]",
            "hooks[1].id",
            "streams[1].code",
            "streams[2].stream_key",
            "streams[2].inputs[0].url",
            "streams[3].template",
            "streams[4].push[0].profile"
        ],
        "{errors}"
    );
}

#[test]
fn pruning_a_template_a_kept_stream_needs_is_refused() {
    let stored = stored();
    let mut doc = Document::decode(json!({"templates": []})).unwrap();
    let errors = doc.validate(&stored, &support(), true).unwrap_err();
    assert_eq!(paths(&errors.0), ["templates"], "{errors}");
    // Without prune the template stays, and so does its user.
    doc.validate(&stored, &support(), false).unwrap();
    // Pruning both together is fine.
    let mut doc = Document::decode(json!({"templates": [], "streams": []})).unwrap();
    doc.validate(&stored, &support(), true).unwrap();
}

#[test]
fn copy_references_are_checked_over_the_final_streams() {
    let mut doc = Document::decode(json!({"streams": [
        {"code": "x", "inputs": [{"url": "copy://y"}]},
        {"code": "y", "inputs": [{"url": "copy://x"}]}
    ]}))
    .unwrap();
    let errors = doc
        .validate(&Stored::default(), &support(), true)
        .unwrap_err();
    assert!(
        paths(&errors.0).iter().all(|p| p.starts_with("streams[")),
        "{errors}"
    );
    assert!(!errors.0.is_empty());
}

#[test]
fn config_secrets_are_masked_where_the_redacted_config_masks_them() {
    let shown = SystemDocument {
        global_config: json!({"listeners": {"srt": {"passphrase": "long-passphrase", "port": 9000}},
                              "security": {"admin_token": ""}}),
        streams: Vec::new(),
        templates: Vec::new(),
        hooks: Vec::new(),
        vod: Vec::new(),
    }
    .masked(
        &json!({"listeners": {"srt": {"passphrase": "****", "port": 9000}},
                    "security": {"admin_token": "****"}}),
    );
    assert_eq!(
        shown.global_config,
        json!({"listeners": {"srt": {"passphrase": "****", "port": 9000}},
               "security": {"admin_token": ""}})
    );
}
