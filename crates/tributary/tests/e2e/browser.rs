//! Real players in a real browser: `tests/browser/play.mjs` (hls.js, dash.js in Debian's
//! headless Chromium) run against a live server; see `tests/browser/README.md`.

use std::process::Command;

use serde_json::Value;

/// Plays `url` with the player of `kind` (`hls`, `dash`) for `seconds`, with `extra`
/// arguments of play.mjs (`--width`, `--height`, `--levels`, …). Returns whether it played
/// (exit 0) and its JSON report; fails the test if play.mjs could not run or printed no report.
pub(crate) fn play(url: &str, kind: &str, seconds: u32, extra: &[&str]) -> (bool, Value) {
    let output = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/browser/play.mjs"
        ))
        .args([
            "--url",
            url,
            "--kind",
            kind,
            "--seconds",
            &seconds.to_string(),
        ])
        .args(extra)
        .output()
        .expect("run node tests/browser/play.mjs (scripts/test installs node deps and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "play.mjs printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), report)
}
