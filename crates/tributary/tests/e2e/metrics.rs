//! `GET /metrics` (issue 17): a real Prometheus (Debian's package, started here on loopback with
//! a generated configuration) scrapes the server; after a forced failover (the primary UDP
//! sender stops, 2 s packet timeout) PromQL finds the stream's status, the failover counter
//! and the gap histogram; `promtool check metrics` accepts the exposition; the stream's series
//! go when it is deleted. The alert rules of `deploy/` run in that Prometheus: they evaluate
//! without error and the lost primary puts `TributaryStandbyInputDown` on pending; the
//! dashboard's stream panels answer with data.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, free_tcp_port, free_udp_port, http_get, wait_until,
};

use crate::deploy;
use crate::server::{Server, put_stream, send};
use crate::turn::shared;

/// A Prometheus server run by a test, killed (and its data removed) on drop.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port, scraping `target` (`host:port`) every
    /// second at `/metrics` and evaluating `deploy/`'s alert rules every second.
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  \
                 evaluation_interval: 1s\n\
                 rule_files:\n  - '{}'\n\
                 scrape_configs:\n  - job_name: tributary\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                deploy::alert_rules().display()
            ),
        )
        .unwrap();
        let port = free_tcp_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (scripts/test installs Debian's package)");
        let prometheus = Self {
            child,
            base: format!("http://{listen}"),
            _dir: dir,
        };
        wait_until(Duration::from_secs(30), "Prometheus ready", || {
            http_get(&format!("{}/-/ready", prometheus.base)).is_ok_and(|(s, _, _)| s == 200)
        })
        .unwrap();
        prometheus
    }

    /// The value of the one series an instant PromQL query returns, if exactly one.
    fn query(&self, promql: &str) -> Option<f64> {
        let url = format!("{}/api/v1/query?query={}", self.base, encode(promql));
        let (status, _, body) = http_get(&url).ok()?;
        let answer: Value = serde_json::from_slice(&body).ok()?;
        assert_eq!(status, 200, "{promql}: {answer}");
        let result = answer["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// The series an instant PromQL query returns.
    fn series(&self, promql: &str) -> Vec<Value> {
        self.api(&format!("query?query={}", encode(promql)))["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `data` of a `GET /api/v1/<path>` answer.
    fn api(&self, path: &str) -> Value {
        let (status, _, body) = http_get(&format!("{}/api/v1/{path}", self.base)).unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "{path}: {answer}");
        answer["data"].clone()
    }

    /// Waits until `promql` returns one series of value `want`.
    fn wait_for(&self, promql: &str, want: f64) {
        let mut last = None;
        wait_until(Duration::from_secs(30), promql, || {
            last = self.query(promql);
            last == Some(want)
        })
        .unwrap_or_else(|e| panic!("{e}: last {last:?}"));
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stream `code` fed by two live UDP senders (priority 0 with a 2 s packet timeout, then 1),
/// once input 0 is active and both deliver: the senders, primary first. Stopping the first
/// forces a `timeout` failover.
pub(crate) fn two_udp_inputs(server: &Server, code: &str) -> [LiveSender; 2] {
    let clip = cached_clip(&ClipSpec::default(), "ts").expect("encode the clip");
    let ports = [free_udp_port(), free_udp_port()];
    let senders = ports.map(|port| LiveSender::start(&clip, port).unwrap());
    put_stream(
        server,
        code,
        &format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{}","priority":0,"packet_timeout_sec":2}},
                          {{"url":"udp://127.0.0.1:{}","priority":1}}],
                "protocols":{{"hls":true}}}}"#,
            ports[0], ports[1]
        ),
    );
    wait_until(
        Duration::from_secs(20),
        "input 0 active, both delivering",
        || {
            let runtime = server.runtime(code);
            runtime["active_input_priority"] == 0
                && runtime["inputs"][1]["last_packet_at"].is_string()
        },
    )
    .unwrap();
    senders
}

#[test]
fn prometheus_scrapes_status_and_a_forced_failover() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let [mut main, _backup] = two_udp_inputs(&server, "cam");

    // The exposition: its content type, and promtool's linter accepts it.
    let (status, headers, body) = http_get(&server.url("/metrics")).unwrap();
    assert_eq!(status, 200);
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        content_type,
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(body).unwrap();
    for series in [
        "tributary_stream_status{stream_code=\"cam\"} 1",
        "tributary_manager_input_health{stream_code=\"cam\",input_priority=\"1\"} 1",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(series), "{series:?} in\n{text}");
    }
    assert!(
        text.contains("tributary_ingestor_bytes_total{stream_code=\"cam\",protocol=\"udp\"}"),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1"), "no URL in a label:\n{text}");
    promtool_check(&text);

    let target = server.base.trim_start_matches("http://");
    let prometheus = Prometheus::start(target);
    prometheus.wait_for("tributary_stream_status{stream_code=\"cam\"}", 1.0);

    // Force a failover: the primary goes silent, the 2 s timeout moves to the backup.
    main.kill();
    wait_until(Duration::from_secs(15), "input 1 active", || {
        server.runtime("cam")["active_input_priority"] == 1
    })
    .unwrap();
    let runtime = server.runtime("cam");
    let gap_ms = runtime["switches"][0]["gap_ms"].as_u64();
    prometheus.wait_for(
        "tributary_manager_failovers_total{stream_code=\"cam\",reason=\"timeout\"}",
        1.0,
    );
    prometheus.wait_for(
        "tributary_failover_gap_seconds_count{stream_code=\"cam\",reason=\"timeout\"}",
        1.0,
    );
    let gap = prometheus
        .query("tributary_failover_gap_seconds_sum{stream_code=\"cam\",reason=\"timeout\"}")
        .unwrap();
    assert_eq!(
        Some((gap * 1000.0).round() as u64),
        gap_ms,
        "gap histogram sum vs runtime.switches: {runtime:#}"
    );
    prometheus.wait_for("tributary_stream_status{stream_code=\"cam\"}", 1.0);
    prometheus.wait_for(
        "tributary_manager_input_health{stream_code=\"cam\",input_priority=\"0\"}",
        0.0,
    );
    let (_, _, body) = http_get(&server.url("/metrics")).unwrap();
    promtool_check(&String::from_utf8(body).unwrap());
    deploy_rules_and_dashboard_work(&prometheus);

    // Segments reach the playlist about a segment (2 s) after their first frame arrived.
    let series = "{stream_code=\"cam\",format=\"hls\",profile=\"main\"}";
    let mut listed = None;
    wait_until(
        Duration::from_secs(20),
        "ingest_to_playlist observations",
        || {
            listed = prometheus.query(&format!(
                "tributary_ingest_to_playlist_seconds_count{series}"
            ));
            listed.is_some_and(|n| n >= 2.0)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {listed:?}"));
    let sum = prometheus
        .query(&format!("tributary_ingest_to_playlist_seconds_sum{series}"))
        .unwrap();
    let mean = sum / listed.unwrap();
    assert!(
        (1.0..8.0).contains(&mean),
        "ingest to playlist: {mean} s on average"
    );

    // Deleted: every series of the stream is gone from the exposition.
    assert_eq!(
        send("DELETE", &server.url("/streams/cam"), None, &[]).status,
        204
    );
    let (_, _, body) = http_get(&server.url("/metrics")).unwrap();
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("stream_code=\"cam\""), "{text}");
}

/// With input 0 of `cam` lost and input 1 playing: every alert rule of `deploy/` evaluates
/// without error, the lost standby's alert is pending, and the dashboard's stream panels
/// answer with `cam`'s series.
fn deploy_rules_and_dashboard_work(prometheus: &Prometheus) {
    let mut pending = Vec::new();
    wait_until(
        Duration::from_secs(20),
        "TributaryStandbyInputDown pending",
        || {
            pending = prometheus.api("alerts")["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            pending.iter().any(|alert| {
                alert["labels"]["alertname"] == "TributaryStandbyInputDown"
                    && alert["labels"]["stream_code"] == "cam"
                    && alert["labels"]["input_priority"] == "0"
                    && alert["state"] == "pending"
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {pending:#?}"));
    let groups = prometheus.api("rules")["groups"].clone();
    let rules: Vec<&Value> = groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .collect();
    assert_eq!(rules.len(), 16, "{groups:#}");
    for rule in rules {
        assert_eq!(rule["health"], "ok", "{rule:#}");
    }
    assert!(
        !pending
            .iter()
            .any(|a| a["labels"]["alertname"] == "TributaryStreamNoInput"),
        "input 1 delivers: {pending:#?}"
    );

    let panels = deploy::dashboard_queries();
    for title in [
        "Stream status",
        "Input health",
        "Ingest bitrate",
        "Ingest frames/s",
        "Failovers",
        "Failover gap (p50, p95 over 1 h)",
    ] {
        let (_, exprs) = panels
            .iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        let expr = deploy::fill_in(&exprs[0], "cam", "30s");
        // A rate needs two scrapes of a new series: wait for them.
        let mut series = Vec::new();
        wait_until(Duration::from_secs(10), title, || {
            series = prometheus.series(&expr);
            series.iter().any(|s| s["metric"]["stream_code"] == "cam")
        })
        .unwrap_or_else(|e| panic!("{e}: {expr} answered {series:?}"));
    }
}

/// Runs `promtool check metrics` on `exposition`; fails the test with its findings.
pub(crate) fn promtool_check(exposition: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (scripts/test installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
