//! The whole system as one YAML document (issue 18 item 3, SPEC §API `GET/PUT /config/yaml`):
//! read from one server with `?reveal=true`, edited, and put on a fresh server with a fresh
//! data directory, it rebuilds the same streams, templates, hooks and saved configuration with
//! their secrets; a masked document written back keeps every secret and changes nothing;
//! `?dry_run=true` changes nothing; a PUT deletes what the document leaves out (a full replace,
//! VOD mounts too) and `?prune=false` deletes nothing; an invalid field is refused with 422 naming its document
//! path and changes nothing; an unknown key is 400 `INVALID_YAML`; a masked document taken to
//! a server that does not hold the secrets is refused rather than stored with `****` keys.

use serde_json::{Value, json};

use crate::config_api::paths;
use crate::server::{Answer, Server, put_stream, send};
use crate::turn::shared;

const STREAM_KEY: &str = "stream-key-0123456789";
const TEMPLATE_KEY: &str = "template-key-0123456789";
const HOOK_SECRET: &str = "hook-secret-0123456789";
const INPUT_PASSWORD: &str = "input-password-42";

fn put_yaml(server: &Server, query: &str, yaml: &str) -> Answer {
    send(
        "PUT",
        &server.url(&format!("/config/yaml{query}")),
        Some(yaml),
        &[],
    )
}

fn yaml(server: &Server, query: &str) -> String {
    server
        .text(&format!("/config/yaml{query}"))
        .expect("GET /config/yaml answers 200")
}

fn get(server: &Server, path: &str) -> Answer {
    send("GET", &server.url(path), None, &[])
}

/// The revealed records that make up the system, for comparing two servers.
fn system(server: &Server) -> Value {
    let data = |path: &str| get(server, path).body["data"].clone();
    let streams: Vec<Value> = data("/streams?reveal=true")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.as_object_mut().unwrap().remove("runtime");
            s
        })
        .collect();
    json!({
        "streams": streams,
        "templates": data("/templates?reveal=true"),
        "hooks": data("/hooks?reveal=true"),
    })
}

/// Builds the first server's system through the REST routes.
fn populate(server: &Server) {
    let config = send(
        "POST",
        &server.url("/config"),
        Some(&json!({"sessions": {"idle_timeout_sec": 45}}).to_string()),
        &[],
    );
    assert_eq!(config.status, 200, "{}", config.body);
    let template = json!({"stream_key": TEMPLATE_KEY, "prefixes": ["live/events"],
                          "inputs": [{"url": "publish://"}], "protocols": {"hls": true}});
    let created = send(
        "PUT",
        &server.url("/templates/events"),
        Some(&template.to_string()),
        &[],
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let cam = json!({"name": "Camera-one", "stream_key": STREAM_KEY, "disabled": true,
                     "inputs": [{"url": format!("rtsp://viewer:{INPUT_PASSWORD}@127.0.0.1:9/cam")}]});
    put_stream(server, "cam1", &cam.to_string());
    put_stream(
        server,
        "events/a",
        r#"{"template": "events", "disabled": true}"#,
    );
    let hook = json!({"id": "h1", "type": "http", "target": "http://127.0.0.1:9/hook",
                      "secret": HOOK_SECRET, "enabled": false});
    let hook = send("POST", &server.url("/hooks"), Some(&hook.to_string()), &[]);
    assert_eq!(hook.status, 201, "{}", hook.body);
}

#[test]
fn a_revealed_document_rebuilds_the_system_on_a_fresh_server_with_its_secrets() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(&dir.path().join("one"), &[]);
    populate(&first);

    let masked = yaml(&first, "");
    for secret in [STREAM_KEY, TEMPLATE_KEY, HOOK_SECRET, INPUT_PASSWORD] {
        assert!(!masked.contains(secret), "{secret} shown:\n{masked}");
    }
    assert!(masked.contains("****"), "{masked}");
    let revealed = yaml(&first, "?reveal=true");
    for secret in [STREAM_KEY, TEMPLATE_KEY, HOOK_SECRET, INPUT_PASSWORD] {
        assert!(revealed.contains(secret), "{secret} missing:\n{revealed}");
    }
    assert!(revealed.contains("idle_timeout_sec: 45"), "{revealed}");
    // Edit one stream's field.
    assert_eq!(revealed.matches("Camera-one").count(), 1, "{revealed}");
    let edited = revealed.replace("Camera-one", "Camera-two");

    // A masked document cannot carry secrets to a server that does not hold them.
    let second = Server::start(&dir.path().join("two"), &[]);
    let refused = put_yaml(&second, "", &masked);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "VALIDATION_FAILED");
    let named = paths(&refused);
    for path in [
        "streams[0].stream_key",
        "streams[0].inputs[0].url",
        "templates[0].stream_key",
        "hooks[0].secret",
    ] {
        assert!(named.iter().any(|p| p == path), "{path} not in {named:?}");
    }
    assert_eq!(get(&second, "/streams").body["total"], 0, "nothing changed");

    let applied = put_yaml(&second, "", &edited);
    assert_eq!(applied.status, 200, "{}", applied.body);
    let data = &applied.body["data"];
    assert_eq!(data["streams"]["created"], json!(["cam1", "events/a"]));
    assert_eq!(data["templates"]["created"], json!(["events"]));
    assert_eq!(data["hooks"]["created"], json!(["h1"]));
    assert_eq!(
        data["global_config"]["changed"],
        json!(["sessions.idle_timeout_sec"])
    );

    // The same system, secrets included, but for the edited name.
    let mut expected = system(&first);
    expected["streams"][0]["name"] = json!("Camera-two");
    assert_eq!(system(&second), expected);
    let config = get(&second, "/config").body;
    assert_eq!(config["global_config"]["sessions"]["idle_timeout_sec"], 45);
    let explained = get(&second, "/config?explain=true").body;
    assert_eq!(explained["sources"]["sessions.idle_timeout_sec"], "store");

    // The masked document of the second server, written back, keeps every secret and
    // rewrites nothing.
    let masked = yaml(&second, "");
    let again = put_yaml(&second, "", &masked);
    assert_eq!(again.status, 200, "{}", again.body);
    let data = &again.body["data"];
    assert_eq!(data["streams"]["unchanged"], json!(["cam1", "events/a"]));
    assert_eq!(data["templates"]["unchanged"], json!(["events"]));
    assert_eq!(data["hooks"]["unchanged"], json!(["h1"]));
    for section in ["streams", "templates", "hooks"] {
        for kind in ["created", "updated", "deleted"] {
            assert_eq!(data[section][kind], json!([]), "{section} {kind}: {data}");
        }
    }
    assert_eq!(system(&second), expected);
}

#[test]
fn dry_run_and_invalid_documents_change_nothing_and_prune_deletes() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    populate(&server);
    let films = json!({"name": "films", "storage": data.join("vod/films")});
    let mount = send("POST", &server.url("/vod"), Some(&films.to_string()), &[]);
    assert_eq!(mount.status, 201, "{}", mount.body);
    let before = system(&server);
    let original = yaml(&server, "");
    assert!(original.contains("name: films"), "{original}");

    // A mount outside security.storage_roots is named, as its own write names it.
    let outside = original.replace(
        &data.join("vod/films").display().to_string(),
        &dir.path().join("elsewhere").display().to_string(),
    );
    let refused = put_yaml(&server, "", &outside);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(paths(&refused), ["vod[0].storage"]);

    // dry_run: the plan, nothing done.
    let renamed = original.replace("Camera-one", "Camera-dry");
    let dry = put_yaml(&server, "?dry_run=true&prune=true", &renamed);
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["data"]["dry_run"], true);
    assert_eq!(dry.body["data"]["streams"]["updated"], json!(["cam1"]));
    assert!(
        dry.body["data"]["streams"]["actions"]["cam1"].is_array(),
        "{}",
        dry.body
    );
    assert_eq!(system(&server), before, "a dry run changes nothing");

    // An invalid field: 422 naming its document path; nothing changed, not even the valid
    // edit beside it.
    let broken = renamed.replace("publish://", "gopher://nowhere");
    let refused = put_yaml(&server, "", &broken);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "VALIDATION_FAILED");
    // The template's stream inherits the bad input: named too, as its own write would.
    assert_eq!(
        paths(&refused),
        ["templates[0].inputs[0].url", "streams[1].inputs[0].url"]
    );
    assert_eq!(system(&server), before);
    let broken = renamed.replace("rtsp://viewer", "gopher://viewer");
    let refused = put_yaml(&server, "", &broken);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(paths(&refused), ["streams[0].inputs[0].url"]);
    assert_eq!(system(&server), before);

    // A hook is checked by the engine as its own write is (a file target inside
    // hooks.file_root).
    let refused = put_yaml(
        &server,
        "",
        "hooks:\n- {id: f, type: file, target: /etc/tributary-hook.log}\n",
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(paths(&refused), ["hooks[0].target"]);

    // An unknown key, and a syntax error: 400 INVALID_YAML.
    let unknown = renamed.replace("name: Camera-dry", "nmae: Camera-dry");
    let refused = put_yaml(&server, "", &unknown);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "INVALID_YAML");
    assert_eq!(paths(&refused), ["streams[0].nmae"]);
    let refused = put_yaml(&server, "", "streams: [\n  {code: a");
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "INVALID_YAML");
    let refused = put_yaml(
        &server,
        "",
        "global_config:\n  sessions:\n    idle_timeout_sec: x\n",
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(paths(&refused), ["global_config.sessions.idle_timeout_sec"]);
    assert_eq!(system(&server), before);

    // With prune=false, what the document leaves out is kept.
    let only_cam =
        "streams:\n- code: cam1\n  name: Camera-kept\n  disabled: true\n  stream_key: '****'\n";
    let kept = put_yaml(&server, "?prune=false", only_cam);
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(kept.body["data"]["streams"]["updated"], json!(["cam1"]));
    assert_eq!(kept.body["data"]["streams"]["deleted"], json!([]));
    assert_eq!(get(&server, "/streams/events/a").status, 200);
    let cam = get(&server, "/streams/cam1?reveal=true").body;
    assert_eq!(cam["data"]["name"], "Camera-kept");
    assert_eq!(cam["data"]["stream_key"], STREAM_KEY, "the masked key kept");
    assert_eq!(
        cam["data"]["inputs"],
        json!([]),
        "a record is written whole"
    );

    // By default (a full replace): the streams and hooks the document leaves out go; the
    // templates section is absent, so the template stays.
    let pruned = put_yaml(&server, "", &format!("{only_cam}hooks: []\nvod: []\n"));
    assert_eq!(pruned.status, 200, "{}", pruned.body);
    assert_eq!(
        pruned.body["data"]["streams"]["deleted"],
        json!(["events/a"])
    );
    assert_eq!(pruned.body["data"]["hooks"]["deleted"], json!(["h1"]));
    assert_eq!(pruned.body["data"]["vod"]["deleted"], json!(["films"]));
    assert_eq!(get(&server, "/vod/films").status, 404);
    assert_eq!(get(&server, "/streams/events/a").status, 404);
    assert_eq!(get(&server, "/hooks/h1").status, 404);
    assert_eq!(get(&server, "/templates/events").status, 200);
    assert_eq!(get(&server, "/streams").body["total"], 1);
}

#[test]
fn streams_that_swap_a_copy_reference_apply_in_any_document_order() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    put_stream(
        &server,
        "y",
        r#"{"disabled": true, "inputs": [{"url": "rtmp://127.0.0.1:9/live/y"}]}"#,
    );
    put_stream(
        &server,
        "x",
        r#"{"disabled": true, "inputs": [{"url": "copy://y"}]}"#,
    );
    // y now copies x and x stops copying y: written first, y meets a cycle through x's stored
    // record, and is written again once x is.
    let swapped = "streams:\n\
        - {code: y, disabled: true, inputs: [{url: 'copy://x'}]}\n\
        - {code: x, disabled: true, inputs: [{url: 'rtmp://127.0.0.1:9/live/x'}]}\n";
    let applied = put_yaml(&server, "", swapped);
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert_eq!(
        applied.body["data"]["streams"]["updated"],
        json!(["y", "x"])
    );
    let y = get(&server, "/streams/y").body;
    assert_eq!(y["data"]["inputs"][0]["url"], "copy://x");
    // A document that closes a cycle with a stream it keeps is refused whole.
    let cycle = "streams:\n\
        - {code: x, disabled: true, inputs: [{url: 'copy://y'}]}\n";
    let refused = put_yaml(&server, "?prune=false", cycle);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(paths(&refused), ["streams[0].inputs[0].url"]);
    // As a full replace the same document drops y, so there is no cycle: y goes before x is
    // written (x would otherwise meet one through y's old record and stop the PUT half-way).
    let replaced = put_yaml(&server, "", cycle);
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["data"]["streams"]["deleted"], json!(["y"]));
    assert_eq!(replaced.body["data"]["streams"]["updated"], json!(["x"]));
    assert_eq!(get(&server, "/streams/y").status, 404);
}
