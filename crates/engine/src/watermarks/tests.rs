use std::path::Path;

use serde_json::{Value, json};
use tributary_domain::config::Layers;

use super::*;
use crate::Engine;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-rest-of-a-png";
const GIF: &[u8] = b"GIF89a\x01\0\x01\0-rest";

/// Writes the asset `<id>.<ext>` as an upload would have (a PNG or a GIF by `ext`, uploaded
/// on the first of `month` 2026): the image and its sidecar.
fn stored(dir: &Path, image: &str, name: &str, month: u32) {
    let (id, ext) = image.split_once('.').unwrap();
    let bytes = if ext == "gif" { GIF } else { PNG };
    std::fs::write(dir.join(image), bytes).unwrap();
    let at = format!("2026-{month:02}-01T00:00:00.000Z");
    let sidecar = json!({"name": name, "file_name": format!("{name}.{ext}"), "uploaded_at": at});
    std::fs::write(dir.join(format!("{id}.json")), sidecar.to_string()).unwrap();
}

fn ids(library: &Library) -> Vec<String> {
    library.list().unwrap().into_iter().map(|a| a.id).collect()
}

#[test]
fn the_directory_is_the_library_newest_first_and_only_real_images_are_assets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stored(d, "00000000000000aa.png", "old", 1);
    stored(d, "00000000000000bb.gif", "new", 3);
    stored(d, "00000000000000cc.png", "mid", 2);
    // Not assets: a leftover upload, an orphan sidecar, a name that is no id, an image whose
    // bytes are not its extension's type, a symlink, a directory.
    std::fs::write(d.join(".upload-0123456789abcdef"), PNG).unwrap();
    std::fs::write(d.join("00000000000000dd.json"), b"{}").unwrap();
    std::fs::write(d.join("logo.png"), PNG).unwrap();
    std::fs::write(d.join("00000000000000ee.png"), b"<svg/>").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("00000000000000ff.png")).unwrap();
    std::fs::create_dir(d.join("0000000000000011.png")).unwrap();
    let library = Library::at(d.to_owned());

    assert_eq!(
        ids(&library),
        ["00000000000000bb", "00000000000000cc", "00000000000000aa"]
    );
    let listed = library.list().unwrap();
    assert_eq!(listed[0].name, "new");
    assert_eq!(listed[0].file_name, "new.gif");
    assert_eq!(listed[0].content_type, "image/gif");
    assert_eq!(listed[0].size_bytes, GIF.len() as u64);
    assert_eq!(listed[0].uploaded_at, "2026-03-01T00:00:00.000Z");

    // Rescan: a file copied in without a sidecar is an asset under its own name and time;
    // one removed by hand is gone; nothing is cached.
    std::fs::write(d.join("0000000000000022.png"), PNG).unwrap();
    std::fs::remove_file(d.join("00000000000000aa.png")).unwrap();
    let listed = library.list().unwrap();
    assert_eq!(listed.len(), 3);
    let copied = listed.iter().find(|a| a.id == "0000000000000022").unwrap();
    assert_eq!(copied.name, "0000000000000022.png");
    assert!(library.asset("00000000000000aa").is_err());

    // Another directory (the config API's hot apply): the next listing is that one.
    let other = tempfile::tempdir().unwrap();
    stored(other.path(), "0000000000000033.png", "x", 1);
    library.set(Ok(other.path().to_owned()));
    assert_eq!(ids(&library), ["0000000000000033"]);
    // Off: every operation names watermarks.dir.
    library.set(Err("outside the roots".into()));
    match library.list() {
        Err(WatermarkError::Invalid(errors)) => assert_eq!(errors.0[0].path, "watermarks.dir"),
        other => panic!("{other:?}"),
    }
    assert!(
        library
            .resolve("0000000000000033")
            .unwrap_err()
            .contains("off")
    );
}

#[test]
fn ids_are_parsed_before_they_reach_a_path_and_delete_removes_image_then_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stored(d, "00000000000000aa.png", "logo", 1);
    std::fs::write(dir.path().join("secret.png"), PNG).unwrap();
    let library = Library::at(d.to_owned());
    for bad in [
        "../secret",
        "secret",
        "00000000000000AA",
        "00000000000000aa.png",
        "",
    ] {
        assert!(
            matches!(library.asset(bad), Err(WatermarkError::NotFound(_))),
            "{bad:?}"
        );
        assert!(matches!(
            library.delete(bad),
            Err(WatermarkError::NotFound(_))
        ));
    }
    let path = library.resolve("00000000000000aa").unwrap();
    assert_eq!(path, d.join("00000000000000aa.png"));
    let unknown = library.resolve("00000000000000ab").unwrap_err();
    assert!(unknown.contains("no asset"), "{unknown}");

    library.delete("00000000000000aa").unwrap();
    assert!(!d.join("00000000000000aa.png").exists());
    assert!(!d.join("00000000000000aa.json").exists());
    assert!(ids(&library).is_empty());
    assert!(matches!(
        library.delete("00000000000000aa"),
        Err(WatermarkError::NotFound(_))
    ));
    assert!(d.join("secret.png").exists());
}

#[tokio::test]
async fn uploads_are_sniffed_capped_and_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let file = json!({"data_dir": dir.path().display().to_string()});
    let engine = Engine::open(Layers::new(file, Value::Null, Value::Null))
        .expect("open")
        .handle();
    let library = dir.path().join("watermarks");
    assert!(library.is_dir(), "created at start");
    let hidden = || {
        std::fs::read_dir(&library)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count()
    };

    // A PNG in small chunks (the type known only after the 8th byte).
    let mut upload = engine
        .watermark_upload(None, Some("logo.png"))
        .await
        .unwrap();
    for chunk in PNG.chunks(3) {
        upload.write(chunk).await.unwrap();
    }
    let asset = upload.finish().await.unwrap();
    assert_eq!(asset.id.len(), 16);
    assert_eq!(
        (asset.name.as_str(), asset.file_name.as_str()),
        ("logo.png", "logo.png")
    );
    assert_eq!(asset.content_type, "image/png");
    assert_eq!(asset.size_bytes, PNG.len() as u64);
    assert_eq!(engine.watermark(&asset.id).await.unwrap(), asset);
    assert_eq!(
        std::fs::read(library.join(format!("{}.png", asset.id))).unwrap(),
        PNG
    );

    // Not an image: refused at the first bytes; too large: refused past the cap; an
    // upload abandoned halfway (the client went away). Nothing of them stays or is listed.
    let mut text = engine.watermark_upload(Some("t"), None).await.unwrap();
    assert!(matches!(
        text.write(b"<svg onload=alert(1)>").await,
        Err(WatermarkError::NotImage(_))
    ));
    drop(text);
    let mut short = engine.watermark_upload(Some("s"), None).await.unwrap();
    short.write(b"GIF").await.unwrap();
    assert!(matches!(
        short.finish().await,
        Err(WatermarkError::NotImage(_))
    ));
    let mut big = engine.watermark_upload(Some("b"), None).await.unwrap();
    big.cap = 16;
    big.write(PNG).await.unwrap_err();
    drop(big);
    let mut halfway = engine.watermark_upload(Some("h"), None).await.unwrap();
    halfway.write(&PNG[..10]).await.unwrap();
    assert_eq!(hidden(), 1, "the upload in progress is hidden");
    assert_eq!(engine.list_watermarks().await.unwrap().0.len(), 1);
    drop(halfway);
    assert_eq!(hidden(), 0);
    let (listed, shown_dir) = engine.list_watermarks().await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&asset));
    assert_eq!(shown_dir, library.display().to_string());

    // Names: ?name= wins; too long, or absent with no file name, is named.
    match engine.watermark_upload(Some(&"n".repeat(129)), None).await {
        Err(WatermarkError::Invalid(errors)) => assert_eq!(errors.0[0].path, "name"),
        other => panic!("{other:?}"),
    }
    match engine.watermark_upload(None, None).await {
        Err(WatermarkError::Invalid(errors)) => assert_eq!(errors.0[0].path, "file"),
        other => panic!("{other:?}"),
    }
    match engine
        .watermark_upload(Some("n"), Some(&"f".repeat(256)))
        .await
    {
        Err(WatermarkError::Invalid(errors)) => assert_eq!(errors.0[0].path, "file"),
        other => panic!("{other:?}"),
    }

    engine.delete_watermark(&asset.id).await.unwrap();
    assert!(matches!(
        engine.watermark(&asset.id).await,
        Err(WatermarkError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_directory_follows_the_config_api_inside_the_storage_roots_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = json!({"data_dir": data.display().to_string()});
    let engine = Engine::open(Layers::new(file, Value::Null, Value::Null))
        .expect("open")
        .handle();
    let outside = dir.path().join("elsewhere");
    let refused = engine
        .write_config(json!({"watermarks": {"dir": outside.display().to_string()}}))
        .await
        .unwrap_err();
    let crate::ConfigWriteError::Invalid(errors) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(errors.0[0].path, "watermarks.dir");
    assert!(errors.0[0].message.contains("storage_roots"), "{errors}");
    assert!(!outside.exists());

    let moved = data.join("logos");
    std::fs::create_dir_all(&moved).unwrap();
    stored(&moved, "00000000000000aa.png", "there", 1);
    engine
        .write_config(json!({"watermarks": {"dir": moved.display().to_string()}}))
        .await
        .expect("a directory inside the data directory applies at once");
    let (listed, shown) = engine.list_watermarks().await.unwrap();
    assert_eq!(shown, moved.display().to_string());
    assert_eq!(listed[0].name, "there");
}
