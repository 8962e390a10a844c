//! Fault injection (`POST /debug/fault`): with `debug.fault_injection` on, a fault on the
//! active input of a two-input stream fails it over to the backup and, once the input has
//! reconnected, back; a fault on the transcoder SIGKILLs FFmpeg and the supervisor starts a
//! new process. Off (the default) the route answers 404 naming the flag, and a config write
//! turns it on at once.

use std::time::Duration;

use tributary_testkit::{LiveSender, free_udp_port, wait_until};

use crate::failover::wait_active;
use crate::hls::clip;
use crate::server::{Answer, Server, put_stream, send};
use crate::transcode::{alive, pids};
use crate::turn::{heavy, shared};

const ON: &[(&str, &str)] = &[("TRIBUTARY_DEBUG__FAULT_INJECTION", "true")];

fn fault(server: &Server, body: &str) -> Answer {
    send("POST", &server.url("/debug/fault"), Some(body), &[])
}

#[test]
fn an_input_fault_fails_over_to_the_backup_and_back() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ON);
    let (main_port, backup_port) = (free_udp_port(), free_udp_port());
    let _main = LiveSender::start(&clip(), main_port).unwrap();
    let _backup = LiveSender::start(&clip(), backup_port).unwrap();

    // Not there yet: 404; a bad body names the field whatever the stream.
    let missing = fault(&server, r#"{"stream":"cam","target":"input"}"#);
    assert_eq!(missing.status, 404, "{}", missing.body);
    let unknown = fault(&server, r#"{"stream":"cam","target":"input","prio":0}"#);
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(unknown.body["error"]["code"], "UNKNOWN_FIELD");
    assert_eq!(unknown.body["error"]["fields"][0]["path"], "prio");

    put_stream(
        &server,
        "cam",
        &format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{main_port}","priority":0}},
                          {{"url":"udp://127.0.0.1:{backup_port}","priority":1}}],
                "protocols":{{"hls":true}}}}"#
        ),
    );
    wait_active(&server, "cam", 0, Duration::from_secs(20));
    wait_until(Duration::from_secs(20), "the backup to deliver", || {
        server.runtime("cam")["inputs"][1]["last_packet_at"].is_string()
    })
    .unwrap();

    let bad = fault(&server, r#"{"stream":"cam","target":"input","priority":7}"#);
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.body["error"]["code"], "INVALID_INPUT_PRIORITY");
    let no_ffmpeg = fault(&server, r#"{"stream":"cam","target":"transcoder"}"#);
    assert_eq!(no_ffmpeg.status, 409, "{}", no_ffmpeg.body);
    assert_eq!(no_ffmpeg.body["error"]["code"], "NOTHING_TO_KILL");

    // The active input (no priority named) is dropped: failover to the backup.
    let killed = fault(&server, r#"{"stream":"cam","target":"input"}"#);
    assert_eq!(killed.status, 200, "{}", killed.body);
    assert_eq!(killed.body["data"]["target"], "input");
    assert_eq!(killed.body["data"]["priority"], 0);
    let over = wait_active(&server, "cam", 1, Duration::from_secs(10));
    println!("MEASURED fault failover: backup active {over:?} after the fault");
    let runtime = server.runtime("cam");
    let errors = runtime["inputs"][0]["errors"].to_string();
    assert!(errors.contains("fault injection"), "{runtime:#}");
    let warned = server.logged(|l| {
        l["level"] == "WARN"
            && l["fields"]["stream"] == "cam"
            && l["fields"]["message"] == "fault injection: input connection dropped"
    });
    assert_eq!(warned.len(), 1);

    // The input reconnects after its backoff and the stream fails back after the hold.
    let back = wait_active(&server, "cam", 0, Duration::from_secs(30));
    println!("MEASURED fault failback: primary active {back:?} after the failover");
    assert_eq!(server.runtime("cam")["switches"][0]["reason"], "failback");
}

#[test]
fn a_transcoder_fault_kills_ffmpeg_and_supervision_starts_a_new_one() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ON);
    let port = free_udp_port();
    put_stream(
        &server,
        "abr",
        &format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{port}"}}],"protocols":{{"hls":true}},
                "transcoder":{{"mode":"multi","audio":{{"bitrate":96}},"video":{{"profiles":[
                  {{"width":640,"height":360,"bitrate":800,"preset":"ultrafast"}},
                  {{"width":320,"height":180,"bitrate":300,"preset":"ultrafast"}}]}}}}}}"#
        ),
    );
    let _sender = LiveSender::start(&clip(), port).unwrap();
    let mut before = Vec::new();
    wait_until(Duration::from_secs(60), "FFmpeg running", || {
        before = pids(&server, "abr");
        before.len() == 1
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("abr")));
    let old = before[0];

    let bad = fault(
        &server,
        r#"{"stream":"abr","target":"transcoder","profile":"track_3"}"#,
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.body["error"]["fields"][0]["path"], "profile");

    // Multi mode: any rung names the one process.
    let killed = fault(
        &server,
        r#"{"stream":"abr","target":"transcoder","profile":"track_2"}"#,
    );
    assert_eq!(killed.status, 200, "{}", killed.body);
    assert_eq!(killed.body["data"]["pid"], old);
    assert_eq!(killed.body["data"]["whole_ladder"], true);
    let mut after = Vec::new();
    wait_until(Duration::from_secs(20), "a new FFmpeg", || {
        after = pids(&server, "abr");
        after.len() == 1 && after[0] != old
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("abr")));
    assert!(!alive(old), "the killed FFmpeg {old} was reaped");
    let profile = &server.runtime("abr")["transcoder"]["profiles"][0];
    assert_eq!(profile["restart_count"], 1, "{profile}");
    assert!(
        profile["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("signal")),
        "{profile}"
    );
}

#[test]
fn the_route_is_off_by_default_and_a_config_write_turns_it_on() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let off = fault(&server, r#"{"stream":"cam","target":"input"}"#);
    assert_eq!(off.status, 404, "{}", off.body);
    assert!(
        off.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("debug.fault_injection"),
        "{}",
        off.body
    );

    let on = send(
        "POST",
        &server.url("/config"),
        Some(r#"{"debug":{"fault_injection":true}}"#),
        &[],
    );
    assert_eq!(on.status, 200, "{}", on.body);
    // On: the same request now reaches the stream lookup.
    let missing = fault(&server, r#"{"stream":"cam","target":"input"}"#);
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.body["error"]["message"], "stream cam not found");
}
