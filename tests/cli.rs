//! The `frl` binary: exit codes and error messages for bad input, and a tiny synthetic-benchmark run.

use std::process::Command;

fn frl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_frl"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("runs frl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn toy_runs_and_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(frl()
        .args(["toy", "--quiet", "--dataset", "gmm2", "--head", "linear", "--head"])
        .arg("{ mixture = { components = 2 } }")
        .args(["--seed", "1", "--seed", "2", "--epochs", "1", "--out"])
        .arg(dir.path()));
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("| gmm2 | linear |"), "{stdout}");
    assert!(stdout.contains("| gmm2 | GMM K=2 |"), "{stdout}");
    assert!(stdout.contains("ms/step"), "{stdout}");
    assert!(dir.path().join("results.json").exists());
}

#[test]
fn bad_head_spec_is_a_clear_error() {
    let (code, _, stderr) = run(frl().args(["toy", "--head", "transformer"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("transformer"), "{stderr}");
    let (code, _, stderr) = run(frl().args(["toy", "--head", "{ fourier = { frequencies = 0 } }"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("frequencies"), "{stderr}");
    let (code, _, stderr) = run(frl().args(["toy", "--dataset", "mnist"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("mnist"), "{stderr}");
}

#[test]
fn bad_job_file_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.toml");
    std::fs::write(&path, "epochs = 3\nseedz = [1]\n").unwrap();
    let (code, _, stderr) = run(frl().args(["toy", "--config"]).arg(&path));
    assert_ne!(code, 0);
    assert!(stderr.contains("job.toml") && stderr.contains("seedz"), "{stderr}");
    std::fs::write(&path, "epochs = 0\n").unwrap();
    let (code, _, stderr) = run(frl().args(["toy", "--config"]).arg(&path).arg("--out").arg(dir.path().join("o")));
    assert_ne!(code, 0);
    assert!(stderr.contains("epochs"), "{stderr}");
    let (code, _, stderr) = run(frl().args(["toy", "--config"]).arg(dir.path().join("missing.toml")));
    assert_ne!(code, 0);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}
