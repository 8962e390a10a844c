//! The admin API against a hostile web page and hostile clients (issue 13, items 3, 6 and 9):
//! cross-site requests and rebinding `Host`s are refused, a dual-stack loopback peer is
//! loopback, concurrent PATCHes lose no field, and fields, lists and the stream list are
//! bounded at the edge.

use std::collections::BTreeSet;
use std::thread;

use serde_json::json;

use crate::server::{Answer, Server, send};
use crate::turn::shared;

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
    let _turn = shared();
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
    let _turn = shared();
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
    let _turn = shared();
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

#[test]
fn fields_lists_and_the_stream_list_are_bounded() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let paths = |answer: &Answer| -> BTreeSet<String> {
        answer.body["error"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| f["path"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // A 1 MiB name (the attack of the issue) and friends: 422 naming each field.
    let huge = json!({
        "name": "n".repeat(1 << 19),
        "description": "d".repeat(4097),
        "tags": vec!["t"; 65],
        "inputs": (0..33).map(|i| json!({"url": format!("udp://127.0.0.1:{}", 5000 + i)})).collect::<Vec<_>>(),
    });
    let refused = send(
        "PUT",
        &server.url("/streams/big"),
        Some(&huge.to_string()),
        &[],
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "INVALID_FIELD");
    assert_eq!(
        paths(&refused),
        ["description", "inputs", "name", "tags"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let url = json!({"push": [{"url": format!("rtmp://h/app/{}", "k".repeat(4096))}]});
    let refused = send(
        "PUT",
        &server.url("/streams/big"),
        Some(&url.to_string()),
        &[],
    );
    assert_eq!(paths(&refused), BTreeSet::from(["push[0].url".to_owned()]));

    // The list pages: ?limit, then ?cursor from next_cursor.
    for i in 0..5 {
        let code = format!("s{i}");
        assert_eq!(
            send(
                "PUT",
                &server.url(&format!("/streams/{code}")),
                Some("{}"),
                &[]
            )
            .status,
            201
        );
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = send(
            "GET",
            &server.url(&format!("/streams?limit=2&cursor={cursor}")),
            None,
            &[],
        );
        assert_eq!(page.status, 200, "{}", page.body);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|s| s["code"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ["s0", "s1", "s2", "s3", "s4"]);
    for bad in ["limit=0", "limit=1001", "limit=x", "cursor=..%2F"] {
        let answer = send("GET", &server.url(&format!("/streams?{bad}")), None, &[]);
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(answer.body["error"]["code"], "INVALID_QUERY");
    }
}

#[test]
fn a_config_value_that_would_panic_later_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    std::fs::write(&config, "[publisher.hls]\nlive_segment_sec = 1e30\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--rtmp",
            "off",
            "--srt",
            "off",
            "--rtsp",
            "off",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .env(
            "TRIBUTARY_SERVER__ADMIN_TIMEOUT_SEC",
            "18446744073709551615",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("publisher.hls.live_segment_sec"),
        "{stderr}"
    );
    assert!(stderr.contains("server.admin_timeout_sec"), "{stderr}");
}

#[test]
fn file_inputs_stay_inside_file_input_roots() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("clips");
    let outside = dir.path().join("private");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let clip = tributary_testkit::cached_clip(&tributary_testkit::ClipSpec::default(), "ts")
        .expect("encode the test clip");
    std::fs::copy(&clip, root.join("ok.ts")).unwrap();
    std::fs::copy(&clip, outside.join("secret.ts")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.ts"), root.join("link.ts")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    let toml = format!(
        "[security]\nfile_input_roots = [{:?}]\n",
        root.display().to_string()
    );
    let server = Server::start_config(dir.path(), &toml, "off");
    let put = |code: &str, path: &std::path::Path| {
        let body =
            json!({"inputs": [{"url": path.display().to_string()}], "protocols": {"hls": true}});
        send(
            "PUT",
            &server.url(&format!("/streams/{code}")),
            Some(&body.to_string()),
            &[],
        )
    };
    // Outside the roots as written: refused at save, naming the field.
    let refused = put("out", &outside.join("secret.ts"));
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["fields"][0]["path"], "inputs[0].url");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside security.file_input_roots")
    );
    // Inside as written, outside once resolved: saved, but never opened.
    for (code, path, why) in [
        ("link", root.join("link.ts"), "symbolic link"),
        (
            "escape",
            root.join("escape/secret.ts"),
            "outside security.file_input_roots",
        ),
    ] {
        assert_eq!(put(code, &path).status, 201);
        let mut last = serde_json::Value::Null;
        tributary_testkit::wait_until(std::time::Duration::from_secs(20), why, || {
            last = server.runtime(code)["inputs"][0]["errors"].clone();
            last.to_string().contains(why)
        })
        .unwrap_or_else(|e| panic!("{e}: {last}"));
    }
    // A file inside plays meanwhile.
    assert_eq!(put("ok", &root.join("ok.ts")).status, 201);
    tributary_testkit::wait_until(
        std::time::Duration::from_secs(30),
        "the HLS playlist",
        || {
            tributary_testkit::http_get(&server.url("/ok/index.m3u8"))
                .is_ok_and(|(status, _, _)| status == 200)
        },
    )
    .unwrap();
}
