//! The forecasting inputs under damaged input: a job file, a CSV of series (read and checked as `frl forecast
//! predict` does) and an evaluation dataset folder (`meta.json`, `series.csv`). Each damaged copy is refused with the
//! file named (or still read as valid), never a panic, a hang or an unbounded allocation.

use std::fs;
use std::path::{Path, PathBuf};

use frl_dataset::mutate::{CappedAlloc, FuzzPlan, fuzz};
use frl_forecast::job::{load_job, read_csv};
use frl_forecast::predict::Predictor;
use frl_forecast::series::SeriesSet;

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/fuzz")
}

/// The header and the first `n` whole series of the M1 yearly fixture.
fn csv_head(n: usize) -> Vec<u8> {
    let text = fs::read_to_string(root().join("tests/fixtures/datasets/m1_yearly/series.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    let mut names: Vec<&str> = Vec::new();
    for l in lines {
        let name = l.split(',').next().unwrap();
        if names.last() != Some(&name) {
            if names.len() == n {
                break;
            }
            names.push(name);
        }
        out += &format!("{l}\n");
    }
    out.into_bytes()
}

#[test]
fn damaged_forecast_jobs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let valid = fs::read(root().join("../configs/forecast.toml")).unwrap();
    assert!(load_job(&root().join("../configs/forecast.toml"), &[]).is_ok());
    let path = tmp.path().join("case.toml");
    let plan = FuzzPlan::new("forecast-job", 1500, true).fixtures(&fixtures());
    let r = fuzz(&plan, &valid, "case.toml", move |b| {
        fs::write(&path, b).unwrap();
        load_job(&path, &[]).map(|_| ()).map_err(|e| format!("{e:#}"))
    });
    assert!(r.refused > r.cases / 4, "{r:?}");
}

#[test]
fn damaged_series_csv_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("case.csv");
    let plan = FuzzPlan::new("forecast-csv", 1500, true).fixtures(&fixtures());
    let r = fuzz(&plan, &csv_head(5), "case.csv", move |b| {
        fs::write(&path, b).unwrap();
        let series = read_csv(&path).map_err(|e| format!("{e:#}"))?;
        for (name, values) in &series {
            Predictor::check_context(name, values).map_err(|e| format!("{}: {e:#}", path.display()))?;
        }
        Ok(())
    });
    assert!(r.refused > 0 && r.accepted > 0, "{r:?}");
}

#[test]
fn damaged_evaluation_datasets_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("case");
    fs::create_dir_all(&dir).unwrap();
    let src = root().join("tests/fixtures/datasets/m1_yearly");
    let csv = csv_head(5);
    let text = String::from_utf8_lossy(&csv).to_string();
    let count =
        text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect::<std::collections::BTreeSet<_>>().len();
    let meta =
        fs::read_to_string(src.join("meta.json")).unwrap().replace("\"series\": 181", &format!("\"series\": {count}"));
    for (file, valid) in [("meta.json", meta.clone().into_bytes()), ("series.csv", csv.clone())] {
        fs::write(dir.join("meta.json"), &meta).unwrap();
        fs::write(dir.join("series.csv"), &csv).unwrap();
        assert!(SeriesSet::open(&dir).is_ok(), "{:?}", SeriesSet::open(&dir).err());
        let plan = FuzzPlan::new(&format!("forecast-dataset-{file}"), 1000, true).fixtures(&fixtures());
        let target = dir.join(file);
        let d = dir.clone();
        let r = fuzz(&plan, &valid, file, move |b| {
            fs::write(&target, b).unwrap();
            SeriesSet::open(&d).map(|_| ()).map_err(|e| e.to_string())
        });
        assert!(r.refused > 0, "{file}: {r:?}");
    }
}
