//! Checkpoints are verified on load: any flipped byte (header or tensor data), truncation or insertion is refused
//! with the file named and the previous checkpoint pointed to; version 2 files without a checksum still load.

use std::collections::HashMap;
use std::path::Path;

use frl_dataset::mutate::{CappedAlloc, FuzzPlan, fuzz};
use frl_learner::TrainJob;
use frl_learner::checkpoint::{self, CHECKSUM_KEY, CheckpointMeta};
use frl_learner::params::NamedTensor;
use safetensors::{Dtype, tensor::TensorView};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fn meta(version: u32) -> CheckpointMeta<serde_json::Value> {
    CheckpointMeta {
        format: checkpoint::FORMAT.into(),
        format_version: version,
        agent: "bc".into(),
        step: 7,
        job: TrainJob::parse("name = \"flip\"\nagent = \"bc\"\n").unwrap(),
        data: serde_json::json!({ "env": "Pendulum-v1", "obs_dim": 3 }),
        online: None,
        eval_return: None,
    }
}

fn tensors() -> (Vec<NamedTensor>, Vec<NamedTensor>) {
    let t = |name: &str, shape: Vec<usize>, k: f32| NamedTensor {
        name: name.into(),
        data: (0..shape.iter().product::<usize>()).map(|i| i as f32 * k - 1.0).collect(),
        shape,
    };
    (vec![t("fc.weight", vec![16, 8], 0.25), t("fc.bias", vec![3], 0.5)], vec![t("model.fc.bias.m", vec![3], 0.01)])
}

fn write_valid(path: &Path) -> Vec<u8> {
    let (model, adam) = tensors();
    checkpoint::save(path, &meta(checkpoint::FORMAT_VERSION), &model, &adam).unwrap();
    std::fs::read(path).unwrap()
}

fn load(path: &Path) -> Result<CheckpointMeta<serde_json::Value>, String> {
    checkpoint::load_as::<serde_json::Value>(path).map(|c| c.meta).map_err(|e| format!("{e:#}"))
}

#[test]
fn a_saved_checkpoint_loads_and_carries_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(checkpoint::file_name(7));
    let bytes = write_valid(&path);
    let needle = format!("\"{CHECKSUM_KEY}\":\"");
    assert!(bytes.windows(needle.len()).any(|w| w == needle.as_bytes()));
    let c = checkpoint::load_as::<serde_json::Value>(&path).unwrap();
    assert_eq!(c.meta, meta(checkpoint::FORMAT_VERSION));
    assert_eq!(c.model["fc.weight"].data, tensors().0[0].data);
    assert_eq!(c.adam["model.fc.bias.m"].data, tensors().1[0].data);
}

/// The case (a byte XOR-ed with 0xFF) at every offset of the file, header and data alike.
#[test]
fn every_inverted_byte_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(checkpoint::file_name(7));
    let valid = write_valid(&path);
    let flip = dir.path().join("flip.safetensors");
    for i in 0..valid.len() {
        let mut b = valid.clone();
        b[i] ^= 0xFF;
        std::fs::write(&flip, &b).unwrap();
        let e = load(&flip).err().unwrap_or_else(|| panic!("byte {i} of {} inverted: loaded", valid.len()));
        assert!(e.contains("flip.safetensors"), "byte {i}: {e}");
    }
    // The data's 100th byte from the end, as the issue found it, says what is wrong.
    let mut b = valid.clone();
    let i = b.len() - 100;
    b[i] ^= 0xFF;
    std::fs::write(&flip, &b).unwrap();
    let e = load(&flip).unwrap_err();
    assert!(e.contains("CRC-32C mismatch") && e.contains("damaged"), "{e}");
}

#[test]
fn a_damaged_checkpoint_points_to_the_one_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (model, adam) = tensors();
    for step in [5, 7] {
        let mut m = meta(checkpoint::FORMAT_VERSION);
        m.step = step;
        checkpoint::save(&dir.path().join(checkpoint::file_name(step)), &m, &model, &adam).unwrap();
    }
    let newest = dir.path().join(checkpoint::file_name(7));
    let mut b = std::fs::read(&newest).unwrap();
    let n = b.len();
    b[n - 1] ^= 1;
    std::fs::write(&newest, &b).unwrap();
    let e = load(&newest).unwrap_err();
    assert!(e.contains(&newest.display().to_string()) && e.contains("ckpt-00000005.safetensors"), "{e}");
    assert!(e.contains("--resume"), "{e}");
    assert_eq!(load(&dir.path().join(checkpoint::file_name(5))).unwrap().step, 5);
}

/// Writes a checkpoint as version 2 did: no checksum in the header.
fn write_v2(path: &Path, version: u32) {
    let (model, _) = tensors();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .iter()
        .map(|t| (format!("model.{}", t.name), t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView)> =
        bytes.iter().map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
    let info = HashMap::from([("frl".to_string(), serde_json::to_string(&meta(version)).unwrap())]);
    std::fs::write(path, safetensors::serialize(views, Some(info)).unwrap()).unwrap();
}

#[test]
fn version_2_loads_without_a_checksum_but_version_3_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.safetensors");
    write_v2(&old, checkpoint::FORMAT_VERSION_UNCHECKED);
    assert_eq!(load(&old).unwrap().format_version, checkpoint::FORMAT_VERSION_UNCHECKED);
    let stripped = dir.path().join("stripped.safetensors");
    write_v2(&stripped, checkpoint::FORMAT_VERSION);
    let e = load(&stripped).unwrap_err();
    assert!(e.contains("stripped.safetensors") && e.contains(CHECKSUM_KEY), "{e}");
}

/// Random damage of every kind (bits, truncation, insertion, deletion, repeats, huge lengths): refused with the
/// file named or, rarely, a file that still checks out; never a panic or a huge allocation.
#[test]
fn fuzzed_checkpoints_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let valid = write_valid(&dir.path().join("valid.safetensors"));
    let case = dir.path().join("case.safetensors");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let plan = FuzzPlan::new("checkpoint", 3000, false).fixtures(&fixtures).refuse_all();
    let report = fuzz(&plan, &valid, "case.safetensors", move |b| {
        std::fs::write(&case, b).unwrap();
        load(&case).map(|_| ())
    });
    assert!(report.refused >= 3000, "{report:?}");
}
