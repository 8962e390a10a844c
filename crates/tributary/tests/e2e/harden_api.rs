//! The admin API against a hostile web page and hostile clients (issue 13, items 3 and 6):
//! cross-site requests and rebinding `Host`s are refused, a dual-stack loopback peer is
//! loopback, and concurrent PATCHes lose no field.

use std::thread;

use serde_json::json;

use crate::server::{Server, send};

/// A browser's request: `Content-Type: text/plain` (no CORS preflight) and the page's origin.
fn browser_post(url: &str, origin: &str, body: &str) -> u16 {
    let result = ureq::post(url)
        .set("Content-Type", "text/plain")
        .set("Origin", origin)
        .set("Sec-Fetch-Site", "cross-site")
        .send_string(body);
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

#[test]
fn cross_site_requests_and_rebinding_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    std::fs::write(&config, "[server]\nallowed_hosts = [\"tv.example\"]\n").unwrap();
    let server = Server::start_args(
        &dir.path().join("data"),
        &[],
        "off",
        &["--config", config.to_str().unwrap()],
    );
    let host = server.base.trim_start_matches("http://").to_owned();
    let port = host.rsplit(':').next().unwrap().to_owned();
    let created = send(
        "PUT",
        &server.url("/streams/cam"),
        Some(r#"{"stream_key": "k3y-secret-1"}"#),
        &[],
    );
    assert_eq!(created.status, 201, "a plain client (curl) is unaffected");

    // A web page POSTs text/plain from its own origin: refused before any handler runs.
    let page = "http://evil.example";
    let status = browser_post(&server.url("/streams/evil"), page, r#"{"name": "x"}"#);
    assert_eq!(status, 403);
    let foreign = send(
        "POST",
        &server.url("/streams/evil"),
        Some("{}"),
        &[("Origin", page)],
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.body["error"]["code"], "CROSS_SITE");
    let fetch = send(
        "GET",
        &server.url("/streams"),
        None,
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(fetch.body["error"]["code"], "CROSS_SITE");
    assert_eq!(
        send("GET", &server.url("/streams/evil"), None, &[]).status,
        404,
        "nothing was created"
    );
    // The server's own origin (its UI) is fine.
    let own = format!("http://{host}");
    let same = send(
        "GET",
        &server.url("/streams/cam"),
        None,
        &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(same.status, 200);

    // After DNS rebinding the page reaches 127.0.0.1 with its own name as Host.
    let reveal = server.url("/streams/cam?reveal=true");
    let rebound_host = format!("rebind.evil.example:{port}");
    let rebound = send("GET", &reveal, None, &[("Host", &rebound_host)]);
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    assert!(!rebound.body.to_string().contains("k3y-secret-1"));
    for good in [format!("localhost:{port}"), format!("tv.example:{port}")] {
        let answer = send("GET", &reveal, None, &[("Host", &good)]);
        assert_eq!(answer.status, 200, "{good}");
        assert_eq!(answer.body["data"]["stream_key"], "k3y-secret-1");
    }
    // Media and public routes are not admin routes.
    assert_eq!(
        send("GET", &server.url("/healthz"), None, &[("Origin", page)]).status,
        200
    );

    // Refusals are logged, at a bounded rate.
    for _ in 0..30 {
        send("GET", &server.url("/streams"), None, &[("Origin", page)]);
    }
    let logged = server.logged(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("admin request refused"))
    });
    assert!(
        (1..=10).contains(&logged.len()),
        "{} refusal lines for 34 refusals",
        logged.len()
    );
    assert!(logged.iter().all(|l| l["fields"]["peer"].is_string()));
}

#[test]
fn a_dual_stack_loopback_peer_is_loopback_and_bearer_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    // Listening on [::] and reached at 127.0.0.1, the peer is ::ffff:127.0.0.1.
    let server = Server::start_args(dir.path(), &[], "off", &["--http", "[::]:0"]);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let v4 = format!("http://127.0.0.1:{port}/streams");
    assert_eq!(send("GET", &v4, None, &[]).status, 200);
    drop(server);

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TRIBUTARY_SECURITY__LOOPBACK_BYPASS", "false"),
            ("TRIBUTARY_SECURITY__ADMIN_TOKEN", "t0k3n"),
        ],
    );
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} t0k3n");
        let answer = send(
            "GET",
            &server.url("/streams"),
            None,
            &[("Authorization", &auth)],
        );
        assert_eq!(answer.status, 200, "{scheme}");
    }
    let wrong = send(
        "GET",
        &server.url("/streams"),
        None,
        &[("Authorization", "Basic t0k3n")],
    );
    assert_eq!(wrong.status, 401);
}

#[test]
fn concurrent_patches_of_two_fields_lose_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let url = server.url("/streams/race");
    assert_eq!(send("PUT", &url, Some("{}"), &[]).status, 201);
    // 20 PATCHes at once, each writing one of two fields.
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            thread::spawn(move || {
                let body = if i % 2 == 0 {
                    json!({"name": format!("name-{i}")})
                } else {
                    json!({"description": format!("description-{i}")})
                };
                send("PATCH", &url, Some(&body.to_string()), &[]).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stored = send("GET", &url, None, &[]);
    let name = stored.body["data"]["name"].as_str().unwrap().to_owned();
    let description = stored.body["data"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        name.starts_with("name-"),
        "the name writes were lost: {name:?}"
    );
    assert!(
        description.starts_with("description-"),
        "the description writes were lost: {description:?}"
    );
    // 1 create + 20 patches, none overwritten: the revision counts every write.
    assert_eq!(stored.etag.as_deref(), Some("\"r21\""));
    // An explicit stale If-Match is still a 412, not retried.
    let stale = send(
        "PATCH",
        &url,
        Some(r#"{"name": "x"}"#),
        &[("If-Match", "\"r1\"")],
    );
    assert_eq!(stale.status, 412);
}
