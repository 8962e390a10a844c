//! Starts and stops the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A running `tributary` process.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    /// Every log line so far (JSON), the newest last; at most [`LOG_LINES`].
    logs: Arc<Mutex<Vec<serde_json::Value>>>,
}

/// Log lines a [`Server`] keeps: enough for any test, bounded for a chatty one.
const LOG_LINES: usize = 100_000;

impl Server {
    /// Starts the binary on an ephemeral HTTP port with listeners off, `data_dir` as given,
    /// extra environment variables, and waits until it is ready.
    pub(crate) fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with(data_dir, env, "off")
    }

    /// As [`start`](Self::start), with the RTMP listener on `rtmp` (`host:port` or `off`).
    pub(crate) fn start_with(data_dir: &Path, env: &[(&str, &str)], rtmp: &str) -> Self {
        Self::start_args(data_dir, env, rtmp, &[])
    }

    /// As [`start_with`](Self::start_with), with more command-line arguments (`--config`).
    pub(crate) fn start_args(
        data_dir: &Path,
        env: &[(&str, &str)],
        rtmp: &str,
        args: &[&str],
    ) -> Self {
        Self::launch(
            Command::new(env!("CARGO_BIN_EXE_tributary")),
            data_dir,
            env,
            rtmp,
            args,
            false,
        )
    }

    /// Starts the binary with `toml` as its configuration file (`<dir>/tributary.toml`), data
    /// in `<dir>/data`, and the RTMP listener on `rtmp` (`""`: as the file says).
    pub(crate) fn start_config(dir: &Path, toml: &str, rtmp: &str) -> Self {
        let config = dir.join("tributary.toml");
        std::fs::write(&config, toml).expect("write tributary.toml");
        let args = ["--config", config.to_str().expect("a UTF-8 path")];
        Self::start_args(&dir.join("data"), &[], rtmp, &args)
    }

    /// As [`start_config`](Self::start_config) with every listener (RTMP, SRT, RTSP) as the
    /// file says: no flag pins one, so the config API may move it.
    pub(crate) fn start_config_listeners(dir: &Path, toml: &str) -> Self {
        let config = dir.join("tributary.toml");
        std::fs::write(&config, toml).expect("write tributary.toml");
        let args = ["--config", config.to_str().expect("a UTF-8 path")];
        Self::launch(
            Command::new(env!("CARGO_BIN_EXE_tributary")),
            &dir.join("data"),
            &[],
            "",
            &args,
            true,
        )
    }

    /// As [`start_with`](Self::start_with), under an open-file limit of `soft` (what the
    /// process starts with) and `hard` (what it may raise itself to), set by `sh`'s `ulimit`.
    pub(crate) fn start_fd_limited(data_dir: &Path, rtmp: &str, soft: u32, hard: u32) -> Self {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -S -n {soft} && ulimit -H -n {hard} && exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_tributary"));
        Self::launch(cmd, data_dir, &[], rtmp, &[], false)
    }

    fn launch(
        mut cmd: Command,
        data_dir: &Path,
        env: &[(&str, &str)],
        rtmp: &str,
        args: &[&str],
        listeners_from_file: bool,
    ) -> Self {
        // A configuration file that sets the HTTP address gets no `--http` (which would pin
        // it against the config API).
        let file_sets_http = args.windows(2).any(|pair| {
            pair[0] == "--config"
                && std::fs::read_to_string(pair[1]).is_ok_and(|text| text.contains("http_addr"))
        });
        // A file that logs JSON itself gets no `TRIBUTARY_LOG__FORMAT` (which would pin the
        // format against the config API).
        let file_logs_json = args.windows(2).any(|pair| {
            pair[0] == "--config"
                && std::fs::read_to_string(pair[1])
                    .is_ok_and(|text| text.contains("format = \"json\""))
        });
        if !file_logs_json {
            cmd.env("TRIBUTARY_LOG__FORMAT", "json");
        }
        if !args.contains(&"--http") && !file_sets_http {
            cmd.args(["--http", "127.0.0.1:0"]);
        }
        // `""`: no flag, so the RTMP listener is what the file and environment say (and the
        // API may move it: a flag would pin it).
        if !rtmp.is_empty() {
            cmd.args(["--rtmp", rtmp]);
        }
        for listener in ["--srt", "--rtsp"] {
            if !args.contains(&listener) && !listeners_from_file {
                cmd.args([listener, "off"]);
            }
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tributary");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if value["fields"]["message"] == "HTTP API listening" {
                    let _ = tx.send(value["fields"]["addr"].as_str().unwrap_or("").to_owned());
                }
                if std::env::var_os("TRIBUTARY_TEST_LOG").is_some() {
                    eprintln!("[server] {line}");
                }
                let mut kept = kept.lock().unwrap();
                if kept.len() < LOG_LINES {
                    kept.push(value);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not report its HTTP address within 30 s");
        let server = Self {
            child,
            base: format!("http://{addr}"),
            logs,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = ureq::get(&self.url("/readyz")).call()
                && resp.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "server not ready within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log lines so far (JSON objects) that `pick` selects.
    pub(crate) fn logged(
        &self,
        pick: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let logs = self.logs.lock().unwrap();
        logs.iter().filter(|line| pick(line)).cloned().collect()
    }

    /// The process's peak resident set so far (`VmHWM`) plus the sealed segment files it holds
    /// now (memory of the machine's that no RSS shows), in bytes.
    pub(crate) fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read the server's /proc status");
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM in /proc status")
            * 1024;
        let sealed: usize = self.sealed_segments().iter().map(Vec::len).sum();
        hwm + sealed as u64
    }

    /// The contents of every sealed segment file (`memfd:tributary-segment`) the server holds
    /// now, read through `/proc` as any process of the same user can.
    pub(crate) fn sealed_segments(&self) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("list the server's fds");
        for entry in fds {
            let path = entry.expect("fd entry").path();
            let Ok(target) = std::fs::read_link(&path) else {
                continue; // closed meanwhile
            };
            if target
                .to_string_lossy()
                .starts_with("/memfd:tributary-segment")
                && let Ok(bytes) = std::fs::read(&path)
            {
                files.push(bytes);
            }
        }
        files
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The body of `GET {path}` as text when it answers 200.
    pub(crate) fn text(&self, path: &str) -> Option<String> {
        tributary_testkit::http_get(&self.url(path))
            .ok()
            .filter(|(status, _, _)| *status == 200)
            .map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET /streams/{code}`'s `data.runtime` (`null` if the stream is unknown).
    pub(crate) fn runtime(&self, code: &str) -> serde_json::Value {
        send("GET", &self.url(&format!("/streams/{code}")), None, &[]).body["data"]["runtime"]
            .clone()
    }

    /// SIGTERM, then waits for the exit status.
    pub(crate) fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (`kill -9`), no cleanup.
    pub(crate) fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status and JSON body (`Null` when empty or not JSON).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: serde_json::Value,
    pub(crate) etag: Option<String>,
}

/// Sends a request and returns the answer whatever its status.
pub(crate) fn send(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let etag = resp.header("etag").map(str::to_owned);
    let text = resp.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer { status, body, etag }
}

/// Creates stream `code` fed by a publisher (`publish://`), served as HLS.
pub(crate) fn put_publish_stream(server: &Server, code: &str) {
    put_stream(
        server,
        code,
        r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true}}"#,
    );
}

/// Creates stream `code` with the JSON `body` (`PUT /streams/{code}` answered 201).
pub(crate) fn put_stream(server: &Server, code: &str, body: &str) {
    let answer = send(
        "PUT",
        &server.url(&format!("/streams/{code}")),
        Some(body),
        &[],
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
}
