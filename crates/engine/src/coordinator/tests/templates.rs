//! Templates through the coordinator: a dependent is resolved when its actor loads it, so a
//! template edit reaches it as an ordinary update; a runtime (auto-published) stream runs from
//! the runtime registry and stops when it leaves it.

use serde_json::json;
use tributary_domain::Stream;
use tributary_domain::template::{decode_template, parse_resolved};
use tributary_store::{Expect, StreamRepository, TemplateRepository};

use super::*;
use crate::autopublish::RuntimeEntry;
use crate::reconciler;

fn template(body: serde_json::Value) -> tributary_domain::template::Template {
    decode_template("t", body).expect("a valid template")
}

#[tokio::test]
async fn a_template_edit_updates_a_running_dependent_with_only_what_changed() {
    let rig = rig();
    let t = template(json!({"inputs": [{"url": "udp://:5000"}]}));
    rig.store.put_template(&t).unwrap();
    let mut dependent = Stream::new(StreamCode::parse("dep").unwrap());
    dependent.template = Some("t".into());
    let (spec, _) = parse_resolved(dependent.clone(), Some(&t), &supported().get()).unwrap();
    assert_eq!(spec.stream().inputs.len(), 1, "inherited");
    rig.coordinator.put(spec, Expect::Any).await.unwrap();
    assert!(rig.coordinator.is_running(&dependent.code));
    let stored = rig.store.get(&dependent.code).unwrap().unwrap();
    assert_eq!(stored.stream, dependent, "the record is stored as written");
    rig.recorder.take();

    let edited = template(json!({"inputs": [{"url": "udp://:5000"}], "protocols": {"hls": true}}));
    rig.store.put_template(&edited).unwrap();
    rig.coordinator.converge(&dependent.code).await.unwrap();
    assert_eq!(rig.recorder.take(), ["outputs.start hls"]);

    // A reconciler pass leaves a converged dependent alone.
    let store: Arc<dyn StreamRepository> = rig.store.clone();
    reconciler::pass(&rig.coordinator, &store, 4).await;
    assert!(rig.recorder.take().is_empty());
}

#[tokio::test]
async fn a_runtime_stream_runs_from_the_registry_and_stops_when_it_leaves() {
    let rig = rig();
    let t = template(json!({"inputs": [{"url": "publish://"}]}));
    rig.store.put_template(&t).unwrap();
    let code = StreamCode::parse("events/a").unwrap();
    let registry = Arc::clone(rig.coordinator.runtime_streams());
    registry.insert(
        code.clone(),
        RuntimeEntry {
            template: "t".into(),
            created: tokio::time::Instant::now(),
        },
    );
    rig.coordinator.converge(&code).await.unwrap();
    assert!(rig.coordinator.is_running(&code));
    // The reconciler does not stop a runtime stream the store does not hold.
    let store: Arc<dyn StreamRepository> = rig.store.clone();
    reconciler::pass(&rig.coordinator, &store, 4).await;
    assert!(rig.coordinator.is_running(&code));
    assert!(rig.store.get(&code).unwrap().is_none(), "never stored");

    assert_eq!(registry.remove(&code).as_deref(), Some("t"));
    rig.coordinator.converge(&code).await.unwrap();
    assert!(!rig.coordinator.is_running(&code));
}
