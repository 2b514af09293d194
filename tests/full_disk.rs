//! Writes that start failing, as on a full disk: the release-built `frl` runs under a file-size limit
//! (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored so a write past it fails with `EFBIG`). Collecting, recording an online run
//! and writing a checkpoint stop with an error naming the file, and what was written before still opens with no
//! temporary file left; a TensorBoard file that cannot grow is reported once and the run goes on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn frl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_frl"))
}

/// `frl args...` with files limited to `kib` KiB.
fn limited(kib: u64) -> Command {
    let mut c = Command::new("bash");
    c.args(["-c", &format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_frl")]);
    c
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Files left by an atomic write that did not finish.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(temporaries(&p));
        } else if p.file_name().unwrap().to_string_lossy().contains(".tmp-") {
            out.push(p);
        }
    }
    out
}

fn dataset_steps(dir: &Path) -> u64 {
    let (code, info, stderr) = run(frl().args(["dataset", "info", "--json"]).arg(dir));
    assert_eq!(code, 0, "{} does not open: {stderr}", dir.display());
    serde_json::from_str::<serde_json::Value>(&info).unwrap()["steps"].as_u64().unwrap()
}

#[test]
fn collect_on_a_full_disk_names_the_shard_and_keeps_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let collect = |cmd: &mut Command, episodes: &str, append: bool| {
        cmd.args(["collect", "--quiet", "--env", "Pendulum-v1", "--policy", "random", "--episodes", episodes])
            .args(["--shard-steps", "100000", "--out"])
            .arg(&data);
        if append {
            cmd.arg("--append");
        }
        run(cmd)
    };
    let (code, _, stderr) = collect(&mut frl(), "2", false);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dataset_steps(&data), 400);
    // 40 more episodes make one shard of ~8,000 steps: far past 64 KiB.
    let (code, _, stderr) = collect(&mut limited(64), "40", true);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("shard-00001.safetensors") && stderr.contains("too large"), "{stderr}");
    assert_eq!(dataset_steps(&data), 400, "the episodes written before are all there");
    assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
}

fn bc_job(dir: &Path, name: &str, hidden: usize, steps: u64, plot_every: u64) -> PathBuf {
    let data = dir.join("data");
    if !data.exists() {
        let (code, _, stderr) = run(frl()
            .args(["collect", "--quiet", "--env", "Pendulum-v1", "--preset", "medium", "--episodes", "2", "--out"])
            .arg(&data));
        assert_eq!(code, 0, "{stderr}");
    }
    let job = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\ndataset = \"{}\"\nruns_dir = \"{}\"\nagent = \"bc\"\n[bc]\nhidden = [{hidden}, {hidden}]\n\
         bins = 16\n[train]\nsteps = {steps}\nbatch_size = 4\nwarmup_steps = 1\ncheckpoint_every = 3\nlog_every = 1\n\
         plot_every = {plot_every}\nkeep_checkpoints = 5\n[eval]\nepisodes = 1\nactors = 1\n",
        data.display(),
        dir.join("runs").display()
    );
    std::fs::write(&job, text).unwrap();
    job
}

#[test]
fn a_checkpoint_on_a_full_disk_is_named_and_the_one_before_loads() {
    let dir = tempfile::tempdir().unwrap();
    // Hidden 256: a checkpoint of ~0.8 MB (parameters and both Adam moments); the event file stays small.
    let job = bc_job(dir.path(), "ckpt", 256, 3, 1000);
    let (code, _, stderr) = run(frl().arg("train").arg(&job).arg("--quiet"));
    assert_eq!(code, 0, "{stderr}");
    let ckpts = dir.path().join("runs/ckpt/checkpoints");
    assert_eq!(frl_learner::checkpoint::list(&ckpts).len(), 1);
    std::fs::write(&job, std::fs::read_to_string(&job).unwrap().replace("steps = 3\n", "steps = 6\n")).unwrap();
    let (code, _, stderr) = run(limited(256).arg("train").arg(&job).args(["--quiet", "--resume"]));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("ckpt-00000006.safetensors") && stderr.contains("too large"), "{stderr}");
    let list = frl_learner::checkpoint::list(&ckpts);
    assert_eq!(list.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![3]);
    frl_learner::checkpoint::load(&list[0].1).unwrap();
    assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
    // With room again, the same command finishes the run.
    let (code, _, stderr) = run(frl().arg("train").arg(&job).args(["--quiet", "--resume"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(frl_learner::checkpoint::list(&ckpts).last().unwrap().0, 6);
}

#[test]
fn a_tensorboard_file_that_cannot_grow_is_reported_once_and_training_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // PMF images every step fill a 96 KiB event file within a few steps; checkpoints of hidden 16 stay small.
    let job = bc_job(dir.path(), "tb", 16, 30, 1);
    let (code, _, stderr) = run(limited(96).arg("train").arg(&job).arg("--quiet"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("warning: TensorBoard file").count(), 1, "{stderr}");
    assert!(stderr.contains("events.out.tfevents") && stderr.contains("too large"), "{stderr}");
    let run_dir = dir.path().join("runs/tb");
    assert_eq!(frl_learner::checkpoint::list(&run_dir.join("checkpoints")).last().unwrap().0, 30);
    assert!(run_dir.join("summary.json").exists());
    // The events written before the limit still read back.
    let scalars = frl_tensorboard::read_scalars(&run_dir).unwrap();
    assert!(!scalars.is_empty());
}

#[test]
fn an_online_recording_on_a_full_disk_is_named_and_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("online.toml");
    let write_job = |env_steps: u64, checkpoint_every: u64| {
        let text = format!(
            "name = \"online\"\nruns_dir = \"{}\"\nagent = \"dqn\"\n[dqn]\nhidden = [16]\natoms = 11\nv_min = -20.0\n\
             v_max = 20.0\n[online]\nenv = \"CartPole-v1\"\nenv_steps = {env_steps}\nactors = 1\nlearning_starts = 200\n\
             updates_per_step = 0.05\nrecord = true\n[train]\nbatch_size = 16\nlog_every = 1000\nplot_every = 100000\n\
             checkpoint_every = {checkpoint_every}\n[eval]\nepisodes = 1\nactors = 1\n",
            dir.path().join("runs").display()
        );
        std::fs::write(&job, text).unwrap();
    };
    // The recording is flushed (a shard) before every checkpoint: 3,000 steps in small shards first.
    write_job(3000, 20);
    let (code, _, stderr) = run(frl().arg("train").arg(&job).arg("--quiet"));
    assert_eq!(code, 0, "{stderr}");
    let recording = dir.path().join("runs/online/episodes");
    let before = dataset_steps(&recording);
    // All but the episode running at the end (at most 500 steps).
    assert!(before + 500 >= 3000, "{before}");
    // Resumed without checkpoints until the end, the next shard holds ~17,000 steps: past 128 KiB.
    write_job(20_000, 100_000);
    let (code, _, stderr) = run(limited(128).arg("train").arg(&job).args(["--quiet", "--resume"]));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("episodes") && stderr.contains("shard-") && stderr.contains("too large"), "{stderr}");
    assert_eq!(dataset_steps(&recording), before, "the shards written before the limit are the recording");
    assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
}
