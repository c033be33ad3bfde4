//! Every setting that changes labels changes the labeler's fingerprint, and nothing
//! else does. The ledger skips an object only when it was labeled under the same
//! fingerprint, so a setting left out of it would keep stale labels after a change.
//! The model is loaded for real for each setting that changes what is loaded (faces,
//! objects): their digests enter the model version, which the fingerprint holds.
#![allow(clippy::unwrap_used)]

use bucketlens_labeler::ledger::fingerprint;
use bucketlens_labeler::{Backend, Config, LocalModel};
use bucketlens_schemas::ModelInfo;

type Change = fn(&mut Config);

async fn loaded(change: Change) -> String {
    let mut config = Config { concurrency: 1, ..Config::default() };
    change(&mut config);
    let settings = config.validate().unwrap();
    let labeler = LocalModel::of(&settings).load().await.unwrap();
    fingerprint(&settings, labeler.model())
}

/// The fingerprint of the settings alone, with the default model's identity.
fn settled(change: Change, model: &ModelInfo) -> String {
    let mut config = Config::default();
    change(&mut config);
    fingerprint(&config.validate().unwrap(), model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_setting_that_changes_labels_changes_the_fingerprint_and_only_those() {
    let base = loaded(|_| {}).await;
    let mut seen = vec![("defaults", base.clone())];
    let loading: [(&str, Change); 2] = [("faces off", |c| c.faces = false), ("objects off", |c| c.objects = false)];
    for (what, change) in loading {
        seen.push((what, loaded(change).await));
    }
    let model = ModelInfo { name: "efficientnet-lite0+blazeface+ssd-oidv4".into(), version: "v".into() };
    let settings: [(&str, Change); 9] = [
        ("min-confidence", |c| c.min_confidence = 60.0),
        ("max-labels", |c| c.max_labels = 5),
        ("group", |c| c.group = "bucketlens-labeler-v2".into()),
        ("faces-min-confidence", |c| c.faces_min_confidence = 70.0),
        ("objects-min-confidence", |c| c.objects_min_confidence = 70.0),
        ("detector-min-confidence", |c| {
            c.detector = Some("centernet.onnx".into());
            c.detector_min_confidence = 41.0;
        }),
        ("a detector", |c| c.detector = Some("centernet.onnx".into())),
        ("rekognition", |c| c.backend = Backend::Rekognition),
        ("rekognition image-properties", |c| {
            c.backend = Backend::Rekognition;
            c.rekognition.image_properties = true;
        }),
    ];
    let default = settled(|_| {}, &model);
    for (what, change) in settings {
        seen.push((what, settled(change, &model)));
    }
    seen.push(("the default settings with another model identity", default.clone()));
    for (i, (what, print)) in seen.iter().enumerate() {
        for (other, other_print) in &seen[..i] {
            assert_ne!(
                print, other_print,
                "{what} and {other} have one fingerprint: a change between them keeps stale labels"
            );
        }
    }
    // What changes how fast or which images fail, not labels.
    let same: [(&str, Change); 4] = [
        ("concurrency", |c| c.concurrency = 7),
        ("max-bytes", |c| c.max_bytes = 7),
        ("max-pixels", |c| c.max_pixels = 1_000),
        ("rekognition max-tps", |c| c.rekognition.max_tps = 50.0),
    ];
    for (what, change) in same {
        assert_eq!(settled(change, &model), default, "{what} changes no label");
    }
}
