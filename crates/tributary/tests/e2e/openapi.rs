//! Swagger UI can call the API (issue 18): the OpenAPI document the real binary serves at
//! `/swagger/doc.json` is followed literally — path from its `paths`, method from its
//! operations, path parameters escaped as Swagger UI escapes them (`encodeURIComponent`, so a
//! stream code's `/` is `%2F`), a body built from the operation's request-body schema — and
//! each answer's status must be one the operation documents. `/swagger/` and its vendored
//! assets are served without network access.

use serde_json::{Map, Value, json};

use crate::server::{Server, send};
use crate::turn::{heavy, shared};

/// The `$ref`-resolved schema.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(document, &document["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A value of `schema`: objects with their required properties (and `name` when the schema
/// has one, so the record is recognisable), the first of a `oneOf`/`anyOf`, the first enum
/// value, a sample of each scalar type.
fn example(document: &Value, schema: &Value) -> Value {
    let schema = resolve(document, schema);
    if let Some(first) = schema["oneOf"].get(0).or_else(|| schema["anyOf"].get(0)) {
        return example(document, first);
    }
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned(),
        other => Some(other.clone()),
    };
    match kind.as_ref().and_then(Value::as_str) {
        Some("string") => json!("swagger"),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        _ => {
            let mut object = Map::new();
            let properties = &schema["properties"];
            let required = schema["required"].as_array().cloned().unwrap_or_default();
            for name in required.iter().filter_map(Value::as_str) {
                object.insert(name.to_owned(), example(document, &properties[name]));
            }
            if properties["name"].is_object() && !object.contains_key("name") {
                object.insert("name".into(), json!("from the OpenAPI document"));
            }
            Value::Object(object)
        }
    }
}

/// Escapes a path parameter as `encodeURIComponent` does for the characters codes use.
fn encode(value: &str) -> String {
    value.replace('/', "%2F")
}

/// Calls `method path` as the document describes it, with `params` for its path parameters
/// (those it does not declare are not used); asserts the answer's status is documented and returns the answer.
fn call(
    server: &Server,
    document: &Value,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
) -> crate::server::Answer {
    let operation = &document["paths"][path][method];
    assert!(
        operation.is_object(),
        "{method} {path} is not in the document"
    );
    let mut uri = path.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap();
        let value = params
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no value for {name} of {method} {path}"))
            .1;
        uri = uri.replace(&format!("{{{name}}}"), &encode(value));
    }
    assert!(
        !uri.contains('{'),
        "{uri}: a path parameter is not declared"
    );
    let body = operation["requestBody"]["content"]["application/json"]["schema"]
        .as_object()
        .map(|schema| example(document, &Value::Object(schema.clone())).to_string());
    let answer = send(
        &method.to_uppercase(),
        &server.url(&uri),
        body.as_deref(),
        &[],
    );
    let responses = &operation["responses"];
    assert!(
        responses[answer.status.to_string()].is_object(),
        "{method} {uri} with {body:?} answered {} {}, which {method} {path} does not document",
        answer.status,
        answer.body
    );
    answer
}

#[test]
fn swagger_ui_can_call_the_documented_operations() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let document = send("GET", &server.url("/swagger/doc.json"), None, &[]).body;
    assert!(
        document["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{document}"
    );

    // Each call fills the operation's path parameter (`code`, or a recording's `rid`) with
    // `value`; operations without one ignore it.
    let op = |method: &str, path: &str, value: &str| {
        call(
            &server,
            &document,
            method,
            path,
            &[("code", value), ("rid", value)],
        )
    };
    // A stream code with a '/', sent escaped: created, replaced, read, listed, its sessions
    // and recordings.
    let code = "studio/swagger";
    let created = op("post", "/streams/{code}", code);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["data"]["code"], code);
    assert_eq!(created.body["data"]["name"], "from the OpenAPI document");
    assert_eq!(op("put", "/streams/{code}", code).status, 200);
    assert_eq!(
        op("get", "/streams/{code}", code).body["data"]["code"],
        code
    );
    let list = op("get", "/streams", "");
    let codes: Vec<&Value> = list.body["data"].as_array().unwrap().iter().collect();
    assert!(codes.iter().any(|s| s["code"] == code), "{}", list.body);
    op("get", "/streams/{code}/sessions", code);
    op("get", "/streams/{code}/recordings", code);

    let config = op("get", "/config", "");
    assert!(config.body["global_config"].is_object(), "{}", config.body);
    let sessions = op("get", "/sessions", "");
    assert!(sessions.body["sessions"].is_array(), "{}", sessions.body);

    // Templates: created from the schema, listed, read, deleted.
    let template = op("post", "/templates/{code}", "swagger");
    assert_eq!(template.status, 201, "{}", template.body);
    assert_eq!(op("get", "/templates", "").body["total"], 1);
    op("get", "/templates/{code}", "swagger");
    assert_eq!(op("delete", "/templates/{code}", "swagger").status, 204);

    // Media and recordings of the stream: documented answers too (nothing published: 404).
    op("get", "/{code}/index.m3u8", code);
    op("get", "/recordings/{rid}/info", code);
    assert_eq!(op("delete", "/streams/{code}", code).status, 204);
    assert_eq!(op("get", "/streams/{code}", code).status, 404);

    // The UI and its vendored assets, served from the binary.
    let page = server.text("/swagger/").expect("/swagger/ answers 200");
    assert!(page.contains("swagger-ui"), "{page}");
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let text = server
            .text(&format!("/swagger/{asset}"))
            .unwrap_or_else(|| panic!("/swagger/{asset} is not served"));
        assert!(!text.is_empty(), "{asset}");
    }
    let initializer = server.text("/swagger/swagger-initializer.js").unwrap();
    assert!(
        initializer.contains("/swagger/doc.json"),
        "the UI loads the served document: {initializer}"
    );
}

/// Runs `tests/browser/swagger.mjs` on the server's `/swagger/`, executing `operation`.
fn swagger_ui(server: &Server, operation: &str) -> Value {
    let output = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/browser/swagger.mjs"
        ))
        .args(["--url", &server.url("/swagger/"), "--execute", operation])
        .output()
        .expect(
            "run node tests/browser/swagger.mjs (scripts/test installs node deps and chromium)",
        );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "swagger.mjs printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn swagger_ui_renders_every_operation_and_executes_them_in_chromium() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let document = send("GET", &server.url("/swagger/doc.json"), None, &[]).body;
    let mut documented: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{method} {path}"))
        })
        .collect();
    documented.sort();
    for operation in [
        "get /config",
        "get /streams",
        "get /sessions",
        "get /templates",
    ] {
        let report = swagger_ui(&server, operation);
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(
            report["status"], "200",
            "{operation} from Swagger UI: {report}"
        );
        let mut rendered: Vec<String> = report["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_owned())
            .collect();
        rendered.sort();
        assert_eq!(rendered, documented, "Swagger UI renders every operation");
    }
}
