//! The hot apply of the file and storage roots: one write through the config API reaches
//! every service that reads them.

use std::path::Path;

use serde_json::{Value, json};
use tributary_domain::config::Layers;
use tributary_domain::stream::{Dvr, Input};
use tributary_domain::vod::VodMount;
use tributary_domain::{Stream, StreamCode};
use tributary_dvr::DvrError;

use crate::services::{DvrService, ServiceError};
use crate::{Engine, VodError};

/// A stream reading `clip` and recording under `storage`.
fn stream(clip: &Path, storage: &Path) -> Stream {
    let mut stream = Stream::new(StreamCode::parse("roots").unwrap());
    stream.inputs = vec![Input::new(format!("file://{}", clip.display()), 0)];
    stream.dvr = Some(Dvr {
        enabled: true,
        storage_path: storage.display().to_string(),
        ..Dvr::default()
    });
    stream
}

/// The fields validation refuses `stream` on (none: it parses).
fn refused(engine: &crate::EngineHandle, stream: &Stream) -> Vec<String> {
    match engine.shared.supported.parse(stream.clone()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.into_iter().map(|e| e.path).collect(),
    }
}

#[tokio::test]
async fn one_roots_write_reaches_validation_file_inputs_the_dvr_and_vod_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let (old, new) = (base.join("old"), base.join("new"));
    for d in [&old, &new] {
        std::fs::create_dir_all(d).unwrap();
    }
    let file = json!({
        "data_dir": base.join("data").display().to_string(),
        "security": {
            "file_input_roots": [old.display().to_string()],
            "storage_roots": [old.display().to_string()],
        },
    });
    let engine = Engine::open(Layers::new(file, Value::Null, Value::Null))
        .expect("open")
        .handle();
    let shared = &engine.shared;
    let moved = stream(&new.join("clip.ts"), &new.join("rec"));
    let mount = VodMount {
        name: "m".into(),
        storage: new.join("vod").display().to_string(),
        comment: String::new(),
    };

    // Under the boot roots, every reader refuses `new`.
    assert_eq!(
        refused(&engine, &moved),
        ["inputs[0].url", "dvr.storage_path"]
    );
    assert!(matches!(
        DvrService::start(&*shared.media.dvr, &moved),
        Err(ServiceError::Dvr(DvrError::OutsideRoots { .. }))
    ));
    assert!(matches!(
        engine.check_vod(&mount).await,
        Err(VodError::Invalid(_))
    ));
    let ingest = shared.media.manager.ingest_config();
    assert_eq!(ingest.roots.get().file_input, [old.as_path()]);

    // One write through the config API.
    let roots = json!([new.display().to_string()]);
    engine
        .write_config(json!({"security": {"file_input_roots": roots, "storage_roots": roots}}))
        .await
        .expect("the roots apply at once");

    // Every reader sees it, none of them told on its own.
    assert_eq!(refused(&engine, &moved), Vec::<String>::new());
    match DvrService::start(&*shared.media.dvr, &moved) {
        // Past the roots: the stream has no playback feed to record in this test.
        Err(ServiceError::Dvr(DvrError::Subscribe { .. })) => {}
        other => panic!("the DVR still refuses the new root: {other:?}"),
    }
    engine
        .check_vod(&mount)
        .await
        .expect("a mount under the new root");
    assert_eq!(ingest.roots.get().file_input, [new.as_path()]);
    assert_eq!(
        shared.media.manager.ingest_config().roots.get().file_input,
        [new.as_path()]
    );
    // And the old root is out everywhere.
    let stayed = stream(&old.join("clip.ts"), &old.join("rec"));
    assert_eq!(
        refused(&engine, &stayed),
        ["inputs[0].url", "dvr.storage_path"]
    );
}
