use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::protocol::AudioFailure;

fn code() -> StreamCode {
    StreamCode::parse("cam1").unwrap()
}

fn ctx(code: &StreamCode) -> DetectContext<'_> {
    DetectContext {
        rtmp_port: Some(1935),
        own_code: Some(code),
    }
}

fn parse(url: &str) -> Result<ParsedInput, Vec<(String, ErrorCode, String)>> {
    parse_with(Input::new(url, 0))
}

fn parse_with(input: Input) -> Result<ParsedInput, Vec<(String, ErrorCode, String)>> {
    let code = code();
    ParsedInput::parse(&input, ctx(&code)).map_err(|e| {
        e.0.into_iter()
            .map(|f| (f.path, f.code, f.message))
            .collect()
    })
}

fn paths(url: &str) -> Vec<(String, ErrorCode)> {
    parse(url)
        .unwrap_err()
        .into_iter()
        .map(|(path, code, _)| (path, code))
        .collect()
}

fn with_params(url: &str, params: &[(&str, &str)]) -> Input {
    let mut input = Input::new(url, 0);
    input.params = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    input
}

#[test]
fn udp_options_are_parsed_once() {
    let parsed =
        parse("udp://239.1.1.1:5000?localaddr=10.0.0.2&source=10.0.0.9&rtp=0&pkt_size=188")
            .unwrap();
    assert_eq!(parsed.kind(), InputKind::Udp);
    assert!(parsed.hot());
    let Source::Udp(udp) = parsed.source else {
        panic!("not UDP")
    };
    assert_eq!(
        udp,
        UdpSource {
            host: "239.1.1.1".into(),
            port: 5000,
            group: Some("239.1.1.1".parse().unwrap()),
            interface: Some(MulticastInterface::Addr("10.0.0.2".parse().unwrap())),
            source: Some("10.0.0.9".parse().unwrap()),
            rtp: false,
            pkt_size: 188,
        }
    );
    let Source::Udp(any) = parse("udp://:5000").unwrap().source else {
        panic!("not UDP")
    };
    assert_eq!(
        (any.host.as_str(), any.group, any.rtp, any.pkt_size),
        ("0.0.0.0", None, true, DEFAULT_PKT_SIZE)
    );
    let Source::Udp(named) = parse("udp://239.1.1.1:5000?iface=eth1").unwrap().source else {
        panic!("not UDP")
    };
    assert_eq!(
        named.interface,
        Some(MulticastInterface::Name("eth1".into()))
    );
}

#[test]
fn udp_option_errors_name_the_field_they_came_from() {
    assert_eq!(
        parse("udp://:5000?pkt_size=0").unwrap_err(),
        [(
            "inputs[0].url".to_owned(),
            ErrorCode::InvalidInputUrl,
            "pkt_size: \"0\" is not a size from 1 to 65536".to_owned()
        )]
    );
    let from_params = parse_with(with_params(
        "udp://:5000?pkt_size=188",
        &[("pkt_size", "70000")],
    ));
    assert_eq!(from_params.unwrap_err()[0].0, "inputs[0].params.pkt_size");
    // Every bad option of one input is reported, not just the first.
    assert_eq!(
        paths("udp://:5000?rtp=maybe&localaddr=nowhere&source=10.0.0.1"),
        [
            ("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl),
            ("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl),
            ("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl),
        ]
    );
    assert!(parse("udp://239.1.1.1:5000?iface=eth1&source=10.0.0.1").is_err());
    assert!(parse("udp://239.1.1.1:5000?iface=not an interface").is_err());
}

#[test]
fn http_inputs_merge_params_and_check_headers() {
    let mut input = with_params(
        "https://origin.example.org/a/master.m3u8?token=a&x=1",
        &[("token", "b")],
    );
    input.headers = BTreeMap::from([("X-Origin-Token".to_owned(), "t0k".to_owned())]);
    input.net.timeout_sec = 20;
    input.net.insecure_tls = true;
    let Source::Hls(hls) = parse_with(input.clone()).unwrap().source else {
        panic!("not HLS")
    };
    assert_eq!(hls.url.query(), Some("x=1&token=b"));
    assert_eq!(hls.headers, [("X-Origin-Token".into(), "t0k".into())]);
    assert_eq!(hls.timeout, Some(Duration::from_secs(20)));
    assert!(hls.insecure_tls);

    input.url = "http://origin.example.org/live.ts".into();
    let parsed = parse_with(input.clone()).unwrap();
    assert_eq!(parsed.kind(), InputKind::HttpTs);
    assert!(!parsed.hot());

    input.headers = BTreeMap::from([
        ("Bad Name".to_owned(), "v".to_owned()),
        ("X-Ok".to_owned(), "line\nbreak".to_owned()),
    ]);
    let errors = parse_with(input).unwrap_err();
    let got: Vec<&str> = errors.iter().map(|(p, ..)| p.as_str()).collect();
    assert_eq!(
        got,
        ["inputs[0].headers.Bad Name", "inputs[0].headers.X-Ok"]
    );
}

#[test]
fn rtmp_pulls_are_split_as_the_client_splits_them() {
    let mut input = Input::new("rtmp://cdn.example.org/live/cam1?key=k", 0);
    input.net.timeout_sec = 4;
    let Source::Rtmp(RtmpSource {
        target: rtmp,
        timeout,
        ..
    }) = parse_with(input).unwrap().source
    else {
        panic!("not RTMP")
    };
    assert_eq!(timeout, Some(Duration::from_secs(4)));
    assert_eq!(
        (
            rtmp.host.as_str(),
            rtmp.port,
            rtmp.tls,
            rtmp.app.as_str(),
            rtmp.name.as_str()
        ),
        ("cdn.example.org", 1935, false, "live", "cam1?key=k")
    );
    let Source::Rtmp(RtmpSource { target: tls, .. }) =
        parse("rtmps://[::1]/app/a/b").unwrap().source
    else {
        panic!("not RTMP")
    };
    assert_eq!(
        (tls.host.as_str(), tls.port, tls.tls, tls.name.as_str()),
        ("::1", 443, true, "a/b")
    );
    for bad in [
        "rtmp://cdn.example.org/only-app",
        "rtmp://cdn.example.org",
        "rtmp://cdn.example.org/app/",
        "rtmp://cdn.example.org//name",
    ] {
        assert_eq!(
            paths(bad),
            [("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl)],
            "{bad}"
        );
    }
}

#[test]
fn rtsp_pulls_take_credentials_and_transport_out_of_the_url() {
    let mut input = with_params(
        "rtsp://admin:p%40ss%2Bw@cam.local:8554/Streaming/101?channel=1&transport=UDP",
        &[("subtype", "0")],
    );
    input.net.timeout_sec = 3;
    let Source::Rtsp(rtsp) = parse_with(input).unwrap().source else {
        panic!("not RTSP")
    };
    assert_eq!(
        rtsp.url.as_str(),
        "rtsp://cam.local:8554/Streaming/101?channel=1&subtype=0"
    );
    assert_eq!(
        rtsp.credentials,
        Some(("admin".to_owned(), "p@ss+w".to_owned()))
    );
    assert_eq!(rtsp.transport, RtspTransport::Udp);
    assert_eq!(rtsp.timeout, Some(Duration::from_secs(3)));

    let Source::Rtsp(plain) = parse("rtsp://cam.local/s").unwrap().source else {
        panic!("not RTSP")
    };
    assert_eq!(
        (
            plain.url.as_str(),
            plain.credentials,
            plain.transport,
            plain.timeout
        ),
        ("rtsp://cam.local/s", None, RtspTransport::Tcp, None)
    );
    // A user without a password is a user with an empty one.
    let Source::Rtsp(user) = parse("rtsp://viewer@cam.local/s").unwrap().source else {
        panic!("not RTSP")
    };
    assert_eq!(user.credentials, Some(("viewer".to_owned(), String::new())));

    assert_eq!(
        paths("rtsp://cam.local/s?transport=http"),
        [("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl)]
    );
    let bad_param = parse_with(with_params(
        "rtsp://cam.local/s",
        &[("transport", "multicast")],
    ));
    assert_eq!(bad_param.unwrap_err()[0].0, "inputs[0].params.transport");
    assert!(!plain.tls && !plain.insecure_tls);

    // RTSP over TLS: TCP only (UDP would need SRTP).
    let mut input = with_params("rtsps://admin:pw@cam.local/s?transport=tcp", &[]);
    input.net.insecure_tls = true;
    let Source::Rtsp(tls) = parse_with(input).unwrap().source else {
        panic!("not RTSP")
    };
    assert_eq!(tls.url.as_str(), "rtsps://cam.local/s");
    assert!(tls.tls && tls.insecure_tls);
    assert_eq!(tls.transport, RtspTransport::Tcp);
    assert_eq!(
        paths("rtsps://cam.local/s?transport=udp"),
        [("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl)]
    );
}

#[test]
fn files_take_their_format_and_loop() {
    let Source::File(file) = parse("/srv/media/a.TS").unwrap().source else {
        panic!("not a file")
    };
    assert_eq!((file.format, file.looping), (FileFormat::Ts, true));
    let Source::File(file) = parse("file:///srv/a.mov?loop=off").unwrap().source else {
        panic!("not a file")
    };
    assert_eq!(file.path, std::path::Path::new("/srv/a.mov"));
    assert_eq!((file.format, file.looping), (FileFormat::Mp4, false));
    let over = parse_with(with_params("/srv/a.mkv?loop=false", &[("loop", "yes")])).unwrap();
    let Source::File(file) = over.source else {
        panic!("not a file")
    };
    assert_eq!((file.format, file.looping), (FileFormat::Mkv, true));

    assert_eq!(
        paths("/srv/a.avi"),
        [("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl)]
    );
    assert_eq!(
        parse("/srv/a.ts?loop=sometimes").unwrap_err()[0].2,
        "loop: \"sometimes\" is not true/false/1/0/yes/no/on/off"
    );
    assert_eq!(
        paths("/srv/a.avi?loop=sometimes").len(),
        2,
        "both problems are named"
    );
    assert_eq!(
        parse_with(with_params("/srv/a.ts", &[("loop", "sometimes")])).unwrap_err()[0].0,
        "inputs[0].params.loop"
    );
    assert_eq!(
        paths("file://vod1/movies/a.mp4"),
        [("inputs[0].url".to_owned(), ErrorCode::InvalidInputUrl)]
    );
}

#[test]
fn mount_files_resolve_through_the_mounts() {
    let mut support = Support::everything();
    support.vod_mounts.insert("vod1".into(), "/srv/vod".into());
    support.roots = std::sync::Arc::new(crate::roots::Roots {
        file_input: vec!["/elsewhere".into()],
        storage: Vec::new(),
    });
    let mut stream = Stream::new(code());
    stream.inputs = vec![Input::new("file://vod1/movies/a.mp4?loop=false", 0)];
    let (spec, _) = crate::validate::parse_stream(stream.clone(), &support).expect("parses");
    let Source::File(file) = &spec.inputs()[0].source else {
        panic!("not a file")
    };
    assert_eq!(file.path, std::path::Path::new("/srv/vod/movies/a.mp4"));
    assert_eq!(file.root.as_deref(), Some(std::path::Path::new("/srv/vod")));
    assert!(!file.looping);
    for url in [
        "file://other/a.mp4",
        "file://vod1/a//b.mp4",
        "file://vod1/a\\b.mp4",
    ] {
        stream.inputs = vec![Input::new(url, 0)];
        let errors = crate::validate::parse_stream(stream.clone(), &support).unwrap_err();
        assert_eq!(errors.0[0].path, "inputs[0].url", "{url}");
    }
}

#[test]
fn push_inputs_say_how_a_publisher_reaches_them() {
    let push = |url: &str| parse(url).unwrap().push().cloned().expect("a push input");
    assert_eq!(
        push("publish://"),
        PushSource {
            via: PushVia::Any,
            address: PushAddress::Stream { slot: None }
        }
    );
    assert_eq!(
        push("rtmp://0.0.0.0/live/backup-key"),
        PushSource {
            via: PushVia::Rtmp,
            address: PushAddress::Key("backup-key".into())
        }
    );
    assert_eq!(push("srt://0.0.0.0:9999").via, PushVia::Srt);
    assert_eq!(
        push("publish://?slot=backup").address,
        PushAddress::Stream {
            slot: Some("backup".into())
        }
    );
    assert_eq!(
        push("rtmp://0.0.0.0").address,
        PushAddress::Stream { slot: None }
    );
    // The loopback URL of this server's own listener and stream is a push slot, reached by
    // the stream's name; another port or code is a pull.
    assert_eq!(
        push("rtmp://127.0.0.1:1935/live/cam1"),
        PushSource {
            via: PushVia::Rtmp,
            address: PushAddress::Stream { slot: None }
        }
    );
    assert_eq!(
        parse("rtmp://127.0.0.1:1936/live/cam1").unwrap().kind(),
        InputKind::Rtmp
    );
    assert_eq!(
        parse("rtmp://127.0.0.1:1935/live/cam2").unwrap().kind(),
        InputKind::Rtmp
    );
}

#[test]
fn in_process_and_other_kinds() {
    assert_eq!(
        parse("copy://up/stream").unwrap().source,
        Source::Copy {
            upstream: StreamCode::parse("up/stream").unwrap()
        }
    );
    assert_eq!(
        parse("mixer://v?audio=a&audio_failure=continue")
            .unwrap()
            .source,
        Source::Mixer(Mixer {
            video: StreamCode::parse("v").unwrap(),
            audio: StreamCode::parse("a").unwrap(),
            audio_failure: AudioFailure::Continue,
        })
    );
    let Source::Srt(srt) = parse_with(with_params(
        "srt://standby.example.org:7001?streamid=m",
        &[("latency", "250")],
    ))
    .unwrap()
    .source
    else {
        panic!("not SRT")
    };
    assert_eq!(srt.streamid.as_deref(), Some("m"));
    assert_eq!(srt.latency, Duration::from_millis(250));
    assert_eq!((srt.host.as_str(), srt.port), ("standby.example.org", 7001));
    assert_eq!(
        parse("rtsp://cam.local/stream1").unwrap().kind(),
        InputKind::Rtsp
    );
}

#[test]
fn program_must_be_a_ts_program_number() {
    let mut input = Input::new("udp://:5000", 0);
    input.program = 7;
    assert_eq!(parse_with(input.clone()).unwrap().program, 7);
    input.program = 70_000;
    assert_eq!(parse_with(input).unwrap_err()[0].0, "inputs[0].program");
}

#[test]
fn a_stream_parses_into_its_spec_or_every_failing_field() {
    let mut stream = Stream::new(code());
    stream.inputs = vec![
        Input::new("publish://", 0),
        Input::new("rtmp://0.0.0.0/live/backup", 1),
        Input::new("udp://:5000?pkt_size=0", 2),
        Input::new("srt://0.0.0.0:9999", 3),
    ];
    let support = Support {
        srt_listener: false,
        ..Support::everything()
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let parsed = parse_inputs(&stream, &support, &mut errors, &mut warnings);
    assert_eq!(parsed.len(), 3, "the failing input is left out");
    let got: Vec<(&str, ErrorCode)> = errors.iter().map(|e| (e.path.as_str(), e.code)).collect();
    assert_eq!(
        got,
        [
            ("inputs[2].url", ErrorCode::InvalidInputUrl),
            ("inputs[3].url", ErrorCode::Unsupported)
        ]
    );

    stream.inputs.truncate(2);
    stream.inputs[1].headers = BTreeMap::from([("X".to_owned(), "y".to_owned())]);
    let (spec, warnings) = crate::validate::parse_stream(stream.clone(), &support).unwrap();
    assert_eq!(spec.stream(), &stream);
    assert_eq!(spec.inputs().len(), 2);
    assert_eq!(spec.inputs()[1].priority(), 1);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("inputs[1].headers"), "{warnings:?}");
}

#[test]
fn push_slots_and_keys_are_unique_within_a_stream() {
    let mut stream = Stream::new(code());
    stream.inputs = vec![
        Input::new("publish://", 0),
        Input::new("publish://?slot=main", 1),
        Input::new("publish:///?slot=main", 2),
        Input::new("rtmp://0.0.0.0/live/k", 3),
        Input::new("rtmp://0.0.0.0/other/k", 4),
        Input::new("rtmp://0.0.0.0", 5),
    ];
    let mut errors = Vec::new();
    parse_inputs(
        &stream,
        &Support::everything(),
        &mut errors,
        &mut Vec::new(),
    );
    let got: Vec<(&str, ErrorCode)> = errors.iter().map(|e| (e.path.as_str(), e.code)).collect();
    assert_eq!(
        got,
        [
            ("inputs[2].url", ErrorCode::DuplicateInput),
            ("inputs[4].url", ErrorCode::DuplicateInput)
        ]
    );
}

#[test]
fn the_own_listener_rule_needs_the_bound_port() {
    let mut stream = Stream::new(code());
    stream.inputs = vec![Input::new("rtmp://127.0.0.1:41935/live/cam1", 0)];
    let unbound = Support {
        rtmp_port: None,
        ..Support::everything()
    };
    let bound = Support {
        rtmp_port: Some(41935),
        ..Support::everything()
    };
    let (pull, _) = crate::validate::parse_stream(stream.clone(), &unbound).unwrap();
    assert_eq!(pull.inputs()[0].kind(), InputKind::Rtmp);
    let (push, _) = crate::validate::parse_stream(stream, &bound).unwrap();
    assert_eq!(push.inputs()[0].kind(), InputKind::Push);
}

proptest! {
    /// UDP options written into the URL or into `params` parse back to the same values.
    #[test]
    fn udp_options_round_trip(
        pkt_size in 1usize..=MAX_PKT_SIZE,
        rtp: bool,
        group in (224u8..=239, 0u8..=255, 0u8..=255, 1u8..=254),
        port in 1u16..,
        in_params: bool,
    ) {
        let host = format!("{}.{}.{}.{}", group.0, group.1, group.2, group.3);
        let rtp_text = if rtp { "on" } else { "0" };
        let input = if in_params {
            with_params(&format!("udp://{host}:{port}?pkt_size=1"), &[
                ("pkt_size", &pkt_size.to_string()),
                ("rtp", rtp_text),
            ])
        } else {
            Input::new(format!("udp://{host}:{port}?rtp={rtp_text}&pkt_size={pkt_size}"), 0)
        };
        let Source::Udp(udp) = parse_with(input).unwrap().source else {
            panic!("not UDP")
        };
        prop_assert_eq!(udp.pkt_size, pkt_size);
        prop_assert_eq!(udp.rtp, rtp);
        prop_assert_eq!(udp.port, port);
        prop_assert_eq!(udp.group, Some(host.parse().unwrap()));
    }

    /// `pkt_size` is accepted exactly when it is a size from 1 to 65536.
    #[test]
    fn pkt_size_accepted_iff_in_range(value in "\\PC{0,12}") {
        let input = with_params("udp://:5000", &[("pkt_size", &value)]);
        let wanted = value.trim().parse::<usize>().ok().filter(|n| (1..=MAX_PKT_SIZE).contains(n));
        match (parse_with(input), wanted) {
            (Ok(parsed), Some(n)) => {
                let Source::Udp(udp) = parsed.source else { panic!("not UDP") };
                prop_assert_eq!(udp.pkt_size, n);
            }
            (Err(errors), None) => prop_assert_eq!(&errors[0].0, "inputs[0].params.pkt_size"),
            (got, wanted) => prop_assert!(false, "{value:?}: {got:?} vs {wanted:?}"),
        }
    }

    /// `loop` is accepted exactly for the boolean words.
    #[test]
    fn loop_accepted_iff_boolean(value in "\\PC{0,8}") {
        let input = with_params("/srv/a.ts", &[("loop", &value)]);
        let wanted = options::parse_bool(&value);
        match (parse_with(input), wanted) {
            (Ok(parsed), Some(b)) => {
                let Source::File(file) = parsed.source else { panic!("not a file") };
                prop_assert_eq!(file.looping, b);
            }
            (Err(_), None) => {}
            (got, wanted) => prop_assert!(false, "{value:?}: {got:?} vs {wanted:?}"),
        }
    }

    /// Parsing never panics and is deterministic: the same input gives the same answer.
    #[test]
    fn parsing_is_total_and_deterministic(
        scheme in prop::sample::select(vec![
            "udp://", "rtmp://", "rtmps://", "http://", "https://", "file://", "srt://",
            "rtsp://", "publish://", "copy://", "mixer://", "/", "",
        ]),
        rest in "\\PC{0,60}",
        key in "[a-z_]{1,8}",
        value in "\\PC{0,8}",
        program in 0u32..70_000,
    ) {
        let mut input = with_params(&format!("{scheme}{rest}"), &[(&key, &value)]);
        input.program = program;
        let first = parse_with(input.clone());
        prop_assert_eq!(first, parse_with(input));
    }
}

#[test]
fn srt_pull_options_are_checked_at_save_naming_the_field() {
    let Source::Srt(srt) = parse_with(with_params(
        "srt://origin.example.org:7001?streamid=live/cam&passphrase=s3cret-pass-1&pbkeylen=32",
        &[],
    ))
    .unwrap()
    .source
    else {
        panic!("not SRT")
    };
    assert_eq!(srt.pbkeylen, Some(32));
    assert!(!format!("{srt:?}").contains("s3cret-pass-1"));
    for (url, params, path, message) in [
        (
            "srt://o.example.org:1?passphrase=short",
            vec![],
            "inputs[0].url",
            "10 to 79",
        ),
        (
            "srt://o.example.org:1?pbkeylen=20&passphrase=long-enough-1",
            vec![],
            "inputs[0].url",
            "16, 24 or 32",
        ),
        (
            "srt://o.example.org:1?pbkeylen=16",
            vec![],
            "inputs[0].url",
            "needs a passphrase",
        ),
        (
            "srt://o.example.org:1",
            vec![("latency", "x")],
            "inputs[0].params.latency",
            "milliseconds",
        ),
        ("srt://o.example.org", vec![], "inputs[0].url", "host:port"),
    ] {
        let errors = parse_with(with_params(url, &params)).unwrap_err();
        let (at, _, text) = &errors[0];
        assert_eq!(at, path, "{url}");
        assert!(text.contains(message), "{url}: {text}");
        assert!(
            !text.contains("short"),
            "{url}: the passphrase in a message"
        );
    }
}
