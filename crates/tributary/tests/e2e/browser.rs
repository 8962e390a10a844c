//! Real players in a real browser: `tests/browser/play.mjs` (hls.js, dash.js in Debian's
//! headless Chromium) run against a live server; see `tests/browser/README.md`.

use std::fmt;
use std::process::Command;

use serde_json::Value;

/// What one run of play.mjs said.
pub(crate) struct Played {
    /// Whether it played (exit 0: began, advanced, no fatal error, the right size).
    pub(crate) ok: bool,
    /// Its one-line JSON report.
    pub(crate) report: Value,
    /// Its stderr (the player's log with `PLAYER_DEBUG` set).
    pub(crate) stderr: String,
}

impl fmt::Display for Played {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.report, self.stderr)
    }
}

/// Plays `url` with the player of `kind` (`hls`, `dash`) for `seconds`, with `extra`
/// arguments of play.mjs (`--width`, `--height`, `--levels`, …); with `PLAYER_DEBUG` set in
/// the environment, the player logs at debug level. Fails the test if play.mjs could not run
/// or printed no report.
pub(crate) fn play(url: &str, kind: &str, seconds: u32, extra: &[&str]) -> Played {
    let mut command = Command::new("node");
    command
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
        .args(extra);
    if std::env::var_os("PLAYER_DEBUG").is_some() {
        command.arg("--player-debug");
    }
    let output = command
        .output()
        .expect("run node tests/browser/play.mjs (scripts/test installs node deps and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("play.mjs printed no JSON ({e}): {stdout}\n{stderr}"));
    Played {
        ok: output.status.success() && report["ok"] == true,
        report,
        stderr,
    }
}
