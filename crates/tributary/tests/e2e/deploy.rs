//! What `deploy/` ships for operators (issue 17): the Prometheus alert rules pass `promtool
//! check rules` and their unit tests (`promtool test rules`); every query of the Grafana
//! dashboard is valid PromQL once Grafana's variables are filled in; and the rules and the
//! dashboard name only metrics the server has ([`tributary_engine::metric_families`]). The
//! live half (the rules loaded into a real Prometheus scraping a real server, the dashboard's
//! queries answered) is in `metrics.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `deploy/` of the repository.
pub(crate) fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The alert rules file.
pub(crate) fn alert_rules() -> PathBuf {
    deploy_dir().join("prometheus/tributary-alerts.yml")
}

/// The dashboard's panels that hold queries (rows left out), with `(title, exprs)`.
pub(crate) fn dashboard_queries() -> Vec<(String, Vec<String>)> {
    let path = deploy_dir().join("grafana/tributary-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|panel| panel["type"] != "row")
        .map(|panel| {
            let exprs = panel["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("panel without targets: {panel}"))
                .iter()
                .map(|target| target["expr"].as_str().unwrap().to_owned())
                .collect();
            (panel["title"].as_str().unwrap().to_owned(), exprs)
        })
        .collect()
}

/// `expr` with Grafana's variables filled in: the stream and server selectors match `stream`
/// and any instance, rate windows are `window`.
pub(crate) fn fill_in(expr: &str, stream: &str, window: &str) -> String {
    expr.replace("$__rate_interval", window)
        .replace("$stream_code", stream)
        .replace("$instance", ".*")
}

/// Runs `promtool` with `args` in `dir`; fails the test with its output unless it succeeds.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool (scripts/test installs Debian's prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}: {text}");
    text
}

/// The metric names `expr` refers to (the server's families and Prometheus's own `up`).
fn metric_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("tributary_") || word.starts_with("process_"))
        .collect()
}

/// Whether `name` is a series of one of `families` (a histogram's `_bucket`, `_sum`, `_count`).
fn exposed(name: &str, families: &[(String, String)]) -> bool {
    families.iter().any(|(family, kind)| {
        name == family
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family)))
    })
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = deploy_dir().join("prometheus");
    let checked = promtool(&dir, &["check", "rules", "tributary-alerts.yml"]);
    assert!(checked.contains("SUCCESS: 16 rules found"), "{checked}");
    promtool(&dir, &["test", "rules", "tributary-alerts.test.yml"]);
}

#[test]
fn dashboard_queries_are_promql_and_name_only_exposed_metrics() {
    let panels = dashboard_queries();
    assert!(panels.len() >= 25, "{} panels", panels.len());
    let families = tributary_engine::metric_families();

    // promtool parses every query as a recording rule's expression.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (title, exprs)) in panels.iter().enumerate() {
        assert!(!exprs.is_empty(), "panel {title:?} has no query");
        for (j, expr) in exprs.iter().enumerate() {
            let filled = fill_in(expr, ".*", "1m");
            assert!(
                !filled.contains('$'),
                "{title}: a variable left in {filled}"
            );
            rules.push_str(&format!(
                "      - record: dashboard:panel_{i}_{j}\n        expr: {}\n",
                serde_json::to_string(&filled).unwrap()
            ));
            for name in metric_names(expr) {
                assert!(
                    exposed(name, &families),
                    "panel {title:?} queries {name}, which the server does not expose"
                );
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.yml"), rules).unwrap();
    promtool(dir.path(), &["check", "rules", "dashboard.yml"]);

    // The alert rules and their unit tests' series name only exposed metrics too.
    for file in ["tributary-alerts.yml", "tributary-alerts.test.yml"] {
        let text = std::fs::read_to_string(deploy_dir().join("prometheus").join(file)).unwrap();
        for name in metric_names(&text) {
            assert!(exposed(name, &families), "{file} names {name}");
        }
    }
    // And the checker itself tells a misspelt family from a real one.
    assert!(exposed("tributary_failover_gap_seconds_bucket", &families));
    assert!(!exposed("tributary_stream_statuses", &families));
}
