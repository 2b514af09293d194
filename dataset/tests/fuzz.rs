//! The dataset readers under damaged input: `metadata.json`, a shard (as damaged, and re-checksummed so the damage
//! reaches the safetensors and array checks), and Minari's files (its metadata, an episode's metadata and its Arrow
//! IPC file). Each damaged copy must be refused with the file named (or still read as valid), never panic, hang or
//! allocate without bound. `FRL_FUZZ_CASES` sets the count (`scripts/fuzz.sh` runs 100× more).

use std::fs;
use std::path::{Path, PathBuf};

use frl_dataset::dataset::{Dataset, import_minari};
use frl_dataset::mutate::{CappedAlloc, FuzzPlan, fuzz};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fn minari_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minari/cartpole")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A valid frl dataset of two shards (the Minari fixture imported).
fn valid_dataset(root: &Path) -> PathBuf {
    let out = root.join("valid");
    import_minari(&minari_fixture(), &out, None, 20).unwrap();
    let d = Dataset::open(&out).unwrap();
    assert!(d.metadata.shards.len() >= 2, "{:?}", d.metadata.shards);
    out
}

#[test]
fn damaged_dataset_metadata_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let valid = valid_dataset(tmp.path());
    let case = tmp.path().join("case");
    copy_dir(&valid, &case);
    let text = fs::read(valid.join("metadata.json")).unwrap();
    let plan = FuzzPlan::new("dataset-metadata", 2000, true).fixtures(&fixtures());
    let r = fuzz(&plan, &text, "case", move |b| {
        fs::write(case.join("metadata.json"), b).unwrap();
        Dataset::open(&case).map(|_| ()).map_err(|e| e.to_string())
    });
    assert!(r.refused > r.cases / 2, "{r:?}");
}

#[test]
fn damaged_shards_are_named_as_stored_and_after_rechecksumming() {
    let tmp = tempfile::tempdir().unwrap();
    let valid = valid_dataset(tmp.path());
    let meta_text = fs::read_to_string(valid.join("metadata.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta_text).unwrap();
    let shard = meta["shards"][0]["file"].as_str().unwrap().to_string();
    let bytes = fs::read(valid.join(&shard)).unwrap();
    for recheck in [false, true] {
        let case = tmp.path().join(format!("case-{recheck}"));
        copy_dir(&valid, &case);
        let (shard, meta) = (shard.clone(), meta.clone());
        let name = if recheck { "dataset-shard-rechecked" } else { "dataset-shard" };
        let plan = FuzzPlan::new(name, 1500, false).fixtures(&fixtures());
        let plan = if recheck { plan } else { plan.refuse_all() };
        let r = fuzz(&plan, &bytes, &shard.clone(), move |b| {
            fs::write(case.join(&shard), b).unwrap();
            if recheck {
                let mut m = meta.clone();
                m["shards"][0]["bytes"] = b.len().into();
                m["shards"][0]["crc32c"] = crc32c::crc32c(b).into();
                fs::write(case.join("metadata.json"), serde_json::to_vec(&m).unwrap()).unwrap();
            }
            Dataset::open(&case).map(|_| ()).map_err(|e| e.to_string())
        });
        assert!(r.refused > r.cases / 2, "{name}: {r:?}");
    }
}

/// Minari's three files, each damaged in turn; the import writes into a fresh folder each time.
#[test]
fn damaged_minari_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        ("minari-metadata", "data/metadata.json", true, 600),
        ("minari-episode-metadata", "data/2/metadata.json", true, 300),
        ("minari-arrow", "data/2/part-0.arrow", false, 900),
    ];
    for (name, file, text, cases) in files {
        let case = tmp.path().join(name);
        copy_dir(&minari_fixture(), &case);
        let valid = fs::read(case.join(file)).unwrap();
        let out = tmp.path().join(format!("{name}-out"));
        let plan = FuzzPlan::new(name, cases, text).fixtures(&fixtures());
        let target = case.join(file);
        let must = Path::new(file).file_name().unwrap().to_string_lossy().to_string();
        let r = fuzz(&plan, &valid, &must, move |b| {
            fs::write(&target, b).unwrap();
            let _ = fs::remove_dir_all(&out);
            import_minari(&case, &out, None, 1000).map(|_| ()).map_err(|e| e.to_string())
        });
        assert!(r.refused > 0, "{name}: {r:?}");
    }
}
