//! Job files under damage: every shipped training job (offline and online agents) with bit flips, truncations,
//! swapped lines and extreme numbers is refused with the file named (or still read as valid), never a panic, a
//! hang or an unbounded allocation. `frl train` checks a job with this same `load_job` before anything runs.

use std::fs;
use std::path::{Path, PathBuf};

use frl_agents::registry::load_job;
use frl_dataset::mutate::{CappedAlloc, FuzzPlan, fuzz};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

#[test]
fn damaged_job_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    for name in ["dt-experiment", "bc-experiment", "iql-experiment", "dqn-cartpole", "odt-pendulum"] {
        let src = configs().join(format!("{name}.toml"));
        load_job(&src).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let valid = fs::read(&src).unwrap();
        let path = tmp.path().join(format!("{name}-case.toml"));
        let plan = FuzzPlan::new(&format!("job-{name}"), 600, true).fixtures(&fixtures);
        let r = fuzz(&plan, &valid, &format!("{name}-case.toml"), move |b| {
            fs::write(&path, b).unwrap();
            load_job(&path).map(|_| ()).map_err(|e| format!("{e:#}"))
        });
        assert!(r.refused > r.cases / 4, "{name}: {r:?}");
    }
}
