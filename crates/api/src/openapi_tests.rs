//! The document against the real router: it parses as OpenAPI 3.1, every operation declares
//! its path parameters and answers errors with the shared error body, and every documented
//! operation is served by the router, at its path and method, with a documented status, while
//! the methods it does not document are refused.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use tributary_domain::config::Layers;
use tributary_engine::Engine;

/// A fresh engine over a temporary data directory (kept alive by the returned guard).
fn engine() -> (tributary_engine::EngineHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = serde_json::json!({"data_dir": dir.path().display().to_string()});
    let layers = Layers::new(file, Value::Null, Value::Null);
    let engine = Engine::open(layers).unwrap();
    (engine.handle(), dir)
}

/// A concrete value for a path parameter; stream codes hold a `/`, as auto-published ones
/// do (template codes may not).
fn sample(template: &str, param: &str) -> &'static str {
    match param {
        "code" if template.starts_with("/templates") => "doc-check",
        "code" | "rid" => "cam/doc-check",
        "segment" => "000001.ts",
        "file" => "index.mpd",
        _ => "nope",
    }
}

/// The path with every `{param}` filled by [`sample`].
fn concrete(template: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('{') {
        let (param, after) = after.split_once('}').unwrap();
        path.push_str(before);
        path.push_str(sample(template, param));
        rest = after;
    }
    path.push_str(rest);
    path
}

async fn call(router: &axum::Router, method: &Method, uri: &str) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1")
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

#[test]
fn document_is_openapi_3_with_parameters_and_error_bodies() {
    let (engine, _dir) = engine();
    let text = crate::document(&engine);
    let spec = oas3::from_json(&text).expect("the document parses as OpenAPI 3.1");
    assert!(spec.openapi.starts_with("3."), "{}", spec.openapi);
    let document: Value = serde_json::from_str(&text).unwrap();
    assert!(
        document["components"]["schemas"]["Stream"].is_object(),
        "request body schemas are in the document"
    );
    let paths = document["paths"].as_object().unwrap();
    let mut problems = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            // Swagger UI keys its state by operation id: a shared one executes another
            // operation.
            match operation["operationId"].as_str() {
                Some(id) if ids.insert(id.to_owned()) => {}
                other => problems.push(format!("{method} {path}: operation id {other:?}")),
            }
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for param in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                if !declared.contains(&param) {
                    problems.push(format!(
                        "{method} {path}: path parameter {param} undeclared"
                    ));
                }
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, response) in responses {
                // readyz's 503 is its `{ready: false, reasons}` report, not an error.
                if !status.starts_with(['4', '5']) || (path == "/readyz" && status == "503") {
                    continue;
                }
                if response["content"]["application/json"]["schema"]["$ref"]
                    != "#/components/schemas/ErrorBody"
                {
                    problems.push(format!("{method} {path} {status}: no shared error body"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_nothing_else() {
    let (engine, _dir) = engine();
    let router = crate::router(engine.clone());
    let (status, served) = call(&router, &Method::GET, "/swagger/doc.json").await;
    assert_eq!(status, StatusCode::OK);
    let document: Value = serde_json::from_str(&crate::document(&engine)).unwrap();
    assert_eq!(served, document, "/swagger/doc.json serves the document");
    let mut operations = 0;
    let mut problems = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let media = item
            .as_object()
            .unwrap()
            .values()
            .any(|op| op["tags"][0] == "media");
        // `/events` long-polls when nothing is newer: ask it not to wait.
        let query = if path == "/events" {
            "?timeout_sec=0"
        } else {
            ""
        };
        let uri = format!("{}{query}", concrete(path));
        for method in METHODS {
            let http = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = call(&router, &http, &uri).await;
            match item.get(method) {
                Some(operation) => {
                    operations += 1;
                    let documented = operation["responses"].get(status.as_str()).is_some();
                    if !documented {
                        problems.push(format!(
                            "{method} {uri} answered {status} {body}, not documented for {method} {path}"
                        ));
                    }
                }
                None if media => {
                    if status != StatusCode::NOT_FOUND {
                        problems.push(format!("{method} {uri} (media fallback): {status} {body}"));
                    }
                }
                None => {
                    if status != StatusCode::METHOD_NOT_ALLOWED {
                        problems.push(format!(
                            "{method} {uri} answered {status} {body} but {method} {path} is not documented"
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(operations >= 40, "{operations} operations");
}
