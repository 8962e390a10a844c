//! No secret leaks past the mask (issue 13, item 5): a stream full of secrets (a key, an input
//! URL with a password and secret query values, secret headers, a zoo of push URLs whose keys
//! span trailing slashes, empty and several segments and query values) is written, read,
//! listed and dry-run while its input and push targets fail and log; no response and no log
//! line carries any of them, nor the admin token generated at first boot.

use std::time::Duration;

use serde_json::{Value, json};
use tributary_testkit::{free_tcp_port, wait_until};

use crate::server::{Server, send};
use crate::turn::shared;

#[test]
fn no_response_or_log_line_carries_a_secret() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let token = token.trim().to_owned();
    let generated = server.logged(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("generated the admin token"))
    });
    assert_eq!(generated.len(), 1, "the token's path is logged once");
    assert!(
        generated[0]["fields"]["path"]
            .as_str()
            .unwrap()
            .ends_with("admin-token")
    );

    let closed = free_tcp_port();
    let secrets = [
        "SKEY0001-stream",
        "PWIN0002",
        "TOKIN0003",
        "SKIN0004",
        "HDR0005",
        "COOK0006",
        "KEYA0007",
        "KEYB0008",
        "KEYX0009",
        "KEYY0010",
        "PWPUSH0011",
        "QV0012",
        "ACC0013",
        "KEYZ0014",
        "NEWKEY0015",
    ];
    let push = |url: String| json!({"url": url, "enabled": true, "retry_timeout_sec": 1});
    let body = json!({
        "stream_key": "SKEY0001-stream",
        "inputs": [{
            "url": format!("https://user:PWIN0002@127.0.0.1:{closed}/live.m3u8?token=TOKIN0003&streamkey=SKIN0004"),
            "headers": {"Authorization": "Bearer HDR0005", "Cookie": "COOK0006"},
        }],
        "protocols": {"hls": true},
        "push": [
            push(format!("rtmp://127.0.0.1:{closed}/app/KEYA0007/")),
            push(format!("rtmp://127.0.0.1:{closed}/app//KEYB0008")),
            push(format!("rtmp://127.0.0.1:{closed}/app/KEYX0009/KEYY0010")),
            push(format!(
                "rtmps://u:PWPUSH0011@127.0.0.1:{closed}/app/KEYZ0014?streamkey=QV0012&access_token=ACC0013"
            )),
        ],
    });
    let url = server.url("/streams/vault");
    let mut answers: Vec<Value> = Vec::new();
    let created = send("PUT", &url, Some(&body.to_string()), &[]);
    assert_eq!(created.status, 201, "{}", created.body);
    answers.push(created.body);

    // The input and every push target fail against the closed port, and say so.
    wait_until(
        Duration::from_secs(30),
        "errors from the input and every push",
        || {
            let runtime = server.runtime("vault");
            let pushes = runtime["publisher"]["pushes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            runtime["inputs"][0]["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
                && pushes.len() == 4
                && pushes
                    .iter()
                    .all(|p| p["errors"].as_array().is_some_and(|e| !e.is_empty()))
        },
    )
    .unwrap();

    answers.push(send("GET", &url, None, &[]).body);
    answers.push(send("GET", &server.url("/streams"), None, &[]).body);
    answers.push(send("GET", &server.url("/config"), None, &[]).body);
    // Dry runs: a changed push list, by PATCH and by PUT (the masked record written back).
    let mut changed = body.clone();
    changed["push"][1] = push(format!("rtmp://127.0.0.1:{closed}/app/NEWKEY0015"));
    changed["push"][2]["timeout_sec"] = json!(3);
    let patch = json!({"push": changed["push"]});
    let dry = send(
        "PATCH",
        &format!("{url}?dry_run=true"),
        Some(&patch.to_string()),
        &[],
    );
    assert_eq!(dry.status, 200, "{}", dry.body);
    let diff = &dry.body["data"]["diff"]["push"];
    assert_eq!(diff["added"], json!([1]), "{}", dry.body);
    assert_eq!(diff["removed"], json!([1]), "{}", dry.body);
    assert_eq!(diff["updated"], json!([2]), "{}", dry.body);
    answers.push(dry.body);
    let masked = send("GET", &url, None, &[]).body["data"].clone();
    let echoed = send(
        "PUT",
        &format!("{url}?dry_run=true"),
        Some(&masked.to_string()),
        &[],
    );
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    assert_eq!(
        echoed.body["data"]["actions"],
        json!([]),
        "writing the masked record back changes nothing: {}",
        echoed.body
    );
    answers.push(echoed.body);
    let kept = send("PUT", &url, Some(&masked.to_string()), &[]);
    answers.push(kept.body);
    let revealed = send("GET", &format!("{url}?reveal=true"), None, &[]).body;
    let urls = |push: &Value| -> Vec<Value> {
        push.as_array()
            .unwrap()
            .iter()
            .map(|p| p["url"].clone())
            .collect()
    };
    assert_eq!(
        urls(&revealed["data"]["push"]),
        urls(&body["push"]),
        "writing the mask back kept every stored push URL, each at its place"
    );

    let logs: Vec<String> = server
        .logged(|_| true)
        .iter()
        .map(Value::to_string)
        .collect();
    for secret in secrets.iter().copied().chain([token.as_str()]) {
        for answer in &answers {
            assert!(!answer.to_string().contains(secret), "{secret} in {answer}");
        }
        for line in &logs {
            assert!(!line.contains(secret), "{secret} in the log: {line}");
        }
    }
}
