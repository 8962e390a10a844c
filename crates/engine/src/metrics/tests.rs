use super::*;

fn code(text: &str) -> StreamCode {
    text.parse().unwrap()
}

#[test]
fn tallies_expose_as_prometheus_text_and_go_with_their_stream() {
    let metrics = Metrics::default();
    let cam = code("cam");
    metrics.failover(&cam, "timeout", Some(Duration::from_millis(380)));
    metrics.failover(&cam, "timeout", Some(Duration::from_secs(90)));
    metrics.failover(&cam, "manual", None);
    metrics.ingest_error(&cam, IngestError::Reconnect);
    metrics.play_refused(Some(&cam), "rtmp", PlayRefusal::Cap);
    metrics.play_refused(None, "srt", PlayRefusal::NotFound);
    metrics.publish_refused("rtmp", PublishRefusal::Auth);

    let mut out = Exposition::default();
    metrics.expose(&mut out);
    out.sort();
    let text = out.encode();
    for line in [
        "# TYPE tributary_manager_failovers_total counter",
        "tributary_manager_failovers_total{stream_code=\"cam\",reason=\"timeout\"} 2",
        "tributary_manager_failovers_total{stream_code=\"cam\",reason=\"manual\"} 1",
        "# TYPE tributary_failover_gap_seconds histogram",
        "tributary_failover_gap_seconds_bucket{stream_code=\"cam\",reason=\"timeout\",le=\"0.25\"} 0",
        "tributary_failover_gap_seconds_bucket{stream_code=\"cam\",reason=\"timeout\",le=\"0.5\"} 1",
        "tributary_failover_gap_seconds_bucket{stream_code=\"cam\",reason=\"timeout\",le=\"60\"} 1",
        "tributary_failover_gap_seconds_bucket{stream_code=\"cam\",reason=\"timeout\",le=\"+Inf\"} 2",
        "tributary_failover_gap_seconds_sum{stream_code=\"cam\",reason=\"timeout\"} 90.38",
        "tributary_failover_gap_seconds_count{stream_code=\"cam\",reason=\"timeout\"} 2",
        "tributary_ingestor_errors_total{stream_code=\"cam\",reason=\"reconnect\"} 1",
        "tributary_playback_rejected_total{stream_code=\"cam\",proto=\"rtmp\",reason=\"cap\"} 1",
        "tributary_playback_rejected_total{stream_code=\"\",proto=\"srt\",reason=\"not_found\"} 1",
        "tributary_publish_rejected_total{proto=\"rtmp\",reason=\"auth\"} 1",
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in\n{text}"
        );
    }
    // A manual switch without a measured gap has no histogram series.
    assert!(!text.contains("reason=\"manual\",le="), "{text}");

    // Deleted: its series go; the unlabelled ones stay.
    metrics.forget(&cam);
    let mut out = Exposition::default();
    metrics.expose(&mut out);
    let text = out.encode();
    assert!(!text.contains("stream_code=\"cam\""), "{text}");
    assert!(text.contains("tributary_publish_rejected_total"), "{text}");

    // A scrape keeps only stored streams' tallies.
    metrics.ingest_error(&code("gone"), IngestError::Open);
    metrics.ingest_error(&cam, IngestError::Open);
    metrics.retain(&[&cam].into_iter().collect());
    let mut out = Exposition::default();
    metrics.expose(&mut out);
    let text = out.encode();
    assert!(!text.contains("gone"), "{text}");
    assert!(
        text.contains("stream_code=\"cam\",reason=\"open\"} 1"),
        "{text}"
    );
}

#[test]
fn label_values_are_escaped() {
    let mut out = Exposition::default();
    out.gauge(
        PUSH_STATE,
        labels([("stream_code", "a"), ("dest_url", "rtmp://h/\"x\"\\y")]),
        3,
    );
    let text = out.encode();
    assert!(
        text.contains(
            r#"tributary_publisher_push_state{stream_code="a",dest_url="rtmp://h/\"x\"\\y"} 3"#
        ),
        "{text}"
    );
}

#[test]
fn the_catalogue_lists_every_family_once_in_exposition_spelling() {
    let declared = include_str!("mod.rs").matches(": Spec =").count();
    assert_eq!(FAMILIES.len(), declared, "a Spec missing from FAMILIES");
    let families = families();
    let names: HashSet<&str> = families.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names.len(),
        families.len(),
        "a family listed twice: {families:?}"
    );
    for (name, kind) in [
        ("tributary_stream_status", "gauge"),
        ("tributary_manager_failovers_total", "counter"),
        ("tributary_failover_gap_seconds", "histogram"),
        ("tributary_buffer_drops_total", "counter"),
        ("process_cpu_seconds_total", "counter"),
        ("process_open_fds", "gauge"),
    ] {
        assert!(
            families.contains(&(name.to_owned(), kind.to_owned())),
            "{name} {kind} not in {families:?}"
        );
    }
    assert_eq!(
        families
            .iter()
            .filter(|(n, _)| n.starts_with("tributary_"))
            .count(),
        FAMILIES.len()
    );
}
