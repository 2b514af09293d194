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
fn toy_export_start_writes_one_replay_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("start");
    let (code, stdout, stderr) = run(frl()
        .args(["toy", "--dataset", "gaussian", "--head", "linear", "--seed", "3", "--seed", "4", "--epochs", "2"])
        .arg("--export-start")
        .arg(&out));
    assert_eq!(code, 0, "stderr: {stderr}");
    for seed in [3, 4] {
        let path = out.join(format!("gaussian__linear__seed{seed}.json"));
        assert!(stdout.contains(&path.display().to_string()), "{stdout}");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["spec"]["seed"], seed);
        assert_eq!(json["orders"].as_array().unwrap().len(), 2);
        assert_eq!(json["train_y"].as_array().unwrap().len(), json["orders"][0].as_array().unwrap().len());
        assert_eq!(json["params"].as_array().unwrap().len(), 6, "l1, l2 and the linear head, weight and bias each");
    }
    assert!(!dir.path().join("runs").exists(), "--export-start must not train");
    // a file where the folder should be is an error naming it
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let (code, _, stderr) = run(frl().args(["toy", "--epochs", "1", "--export-start"]).arg(&blocker));
    assert_ne!(code, 0);
    assert!(stderr.contains("file"), "{stderr}");
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

#[test]
fn ctrl_c_keeps_finished_runs_and_the_same_command_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    let args = |cmd: &mut Command| {
        cmd.args(["toy", "--quiet", "--dataset", "gaussian", "--head", "linear", "--jobs", "1", "--epochs", "4"]);
        for s in 1..=12 {
            cmd.args(["--seed", &s.to_string()]);
        }
        cmd.arg("--out").arg(&out);
    };
    let mut cmd = frl();
    args(&mut cmd);
    let child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let runs = out.join("runs");
    let started = std::time::Instant::now();
    // finished runs only: a run being saved shows up first as a hidden temp file
    let finished = |runs: &std::path::Path| {
        std::fs::read_dir(runs)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json") && !n.starts_with('.')))
                    .count()
            })
            .unwrap_or(0)
    };
    while finished(&runs) == 0 {
        assert!(started.elapsed().as_secs() < 120, "no run finished in time");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("rerun the same command to resume"), "{stderr}");
    assert!(!out.join("results.json").exists());
    let saved = std::fs::read_dir(&runs).unwrap().filter_map(Result::ok).collect::<Vec<_>>();
    assert!(!saved.is_empty() && saved.len() < 12, "{} runs saved", saved.len());
    for entry in &saved {
        let name = entry.file_name().into_string().unwrap();
        assert!(name.ends_with(".json") && !name.starts_with('.'), "stray file {name}");
        let text = std::fs::read_to_string(entry.path()).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{name} is not whole JSON: {e}"));
    }

    let mut cmd = frl();
    args(&mut cmd);
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("12 runs ({} resumed)", saved.len())), "{stdout}");
}

#[test]
fn kill_9_during_collect_leaves_a_loadable_dataset_and_the_same_command_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cartpole");
    let args = |out: &std::path::Path| {
        let mut c = frl();
        c.args(["collect", "--quiet", "--env", "CartPole-v1", "--policy", "random", "--episodes", "100000"])
            .args(["--actors", "2", "--seed", "5", "--shard-steps", "20000", "--out"])
            .arg(out);
        c
    };
    let mut child = args(&out).spawn().unwrap();
    let meta = out.join("metadata.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&meta).unwrap_or_default().contains("shard-00003") {
        assert!(std::time::Instant::now() < deadline, "no shards appeared");
        assert!(child.try_wait().unwrap().is_none(), "collect ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (code, stdout, stderr) = run(frl().args(["dataset", "info", "--json"]).arg(&out));
    assert_eq!(code, 0, "the killed run's dataset does not load: {stderr}");
    let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let kept = info["episodes"].as_u64().unwrap();
    assert!(kept > 0 && kept < 100_000, "{kept}");

    // The same command resumes; the result equals an uninterrupted run.
    let (code, stdout, stderr) = run(&mut args(&out));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("{} episodes", 100_000 - kept)), "{stdout}");
    let whole = dir.path().join("whole");
    let (code, _, stderr) = run(&mut args(&whole));
    assert_eq!(code, 0, "{stderr}");
    let load = |p| frl_dataset::dataset::Dataset::open(p).unwrap().episodes;
    assert!(load(&out) == load(&whole), "resumed dataset differs from an uninterrupted one");
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, stderr) =
        run(frl().args(["collect", "--quiet", "--env", "CartPole-v1", "--episodes", "3", "--out"]).arg(&data));
    assert_eq!(code, 0, "{stderr}");
    let data = data.to_str().unwrap();
    for args in [
        vec!["dataset", "info", data],
        vec!["--help"],
        vec!["envs", "info", "CartPole-v1"],
        vec!["collect", "--env", "CartPole-v1", "--episodes", "2", "--quiet", "--append", "--out", data],
    ] {
        let mut child = frl()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away before frl writes, as `| head -0` would
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert!(out.status.success() || out.status.signal() == Some(13), "{args:?}: {:?} {stderr}", out.status);
    }
}

#[test]
fn zero_counts_are_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, field) in [("--actors", "actors"), ("--episodes", "episodes"), ("--shard-steps", "shard_steps")] {
        let mut c = frl();
        c.args(["collect", "--quiet", "--env", "CartPole-v1", "--out"]).arg(dir.path().join(field));
        if flag != "--episodes" {
            c.args(["--episodes", "2"]);
        }
        let (code, _, stderr) = run(c.args([flag, "0"]));
        assert_ne!(code, 0, "{flag} 0 was accepted");
        assert!(stderr.contains(field) && stderr.contains(flag), "{stderr}");
        assert!(!dir.path().join(field).exists(), "{flag} 0 left a dataset behind");
    }
    for args in [
        &["bench", "dt", "--steps", "0"][..],
        &["bench", "heads", "--steps", "0"],
        &["bench", "envs", "--steps", "0"],
        &["bench", "collect", "--rounds", "0"],
        &["toy", "--jobs", "0"],
        &["eval", "--actors", "0", "--checkpoint", "x.safetensors"],
    ] {
        let (code, _, stderr) = run(frl().args(args));
        assert_ne!(code, 0, "{args:?} was accepted");
        let flag = args[args.iter().position(|a| *a == "0").unwrap() - 1];
        assert!(stderr.contains(flag) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn collect_and_dataset_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) =
        run(frl().args(["collect", "--env", "Nope-v0", "--episodes", "3", "--out"]).arg(dir.path().join("x")));
    assert_ne!(code, 0);
    assert!(stderr.contains("Nope-v0"), "{stderr}");
    let (code, _, stderr) = run(frl()
        .args(["collect", "--env", "CartPole-v1", "--policy", "mixed", "--noise", "0.2"])
        .args(["--episodes", "3", "--out"])
        .arg(dir.path().join("y")));
    assert_ne!(code, 0);
    assert!(stderr.contains("--noise"), "{stderr}");
    let (code, _, stderr) = run(frl().args(["dataset", "info"]).arg(dir.path().join("none")));
    assert_ne!(code, 0);
    assert!(stderr.contains("no such dataset"), "{stderr}");
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "env = \"CartPole-v1\"\nepisodes = 3\nout = \"z\"\nactor = 2\n").unwrap();
    let (code, _, stderr) = run(frl().args(["collect", "--config"]).arg(&job));
    assert_ne!(code, 0);
    assert!(stderr.contains("job.toml") && stderr.contains("actor"), "{stderr}");
}

fn pendulum_data(dir: &std::path::Path) -> std::path::PathBuf {
    let data = dir.join("data");
    if !data.exists() {
        let (code, _, stderr) = run(frl()
            .args(["collect", "--quiet", "--env", "Pendulum-v1", "--preset", "medium", "--episodes", "3", "--out"])
            .arg(&data));
        assert_eq!(code, 0, "{stderr}");
    }
    data
}

/// A tiny job of agent `kind` named `name`, written to `<dir>/<name>.toml`.
fn train_job(dir: &std::path::Path, kind: &str, name: &str, steps: u64) -> std::path::PathBuf {
    let data = pendulum_data(dir);
    let section = match kind {
        "dt" => "layers = 1\nembed_dim = 16\ncontext = 5\nmax_episode_len = 200\nbins = 16\n",
        "bc" => "hidden = [16]\nbins = 16\nhead = { fourier = { frequencies = 4 } }\n",
        _ => "hidden = [16]\nbins = 16\n",
    };
    let job = dir.join(format!("{name}.toml"));
    std::fs::write(
        &job,
        format!(
            "name = \"{name}\"\ndataset = \"{}\"\nruns_dir = \"{}\"\nagent = \"{kind}\"\n[{kind}]\n{section}\
             [train]\nsteps = {steps}\nbatch_size = 4\nwarmup_steps = 5\ncheckpoint_every = 3\nlog_every = 10\n\
             keep_checkpoints = 2\n[eval]\nepisodes = 1\nactors = 1\n",
            data.display(),
            dir.join("runs").display()
        ),
    )
    .unwrap();
    job
}

fn newest_checkpoint(dir: &std::path::Path, name: &str) -> (u64, std::path::PathBuf) {
    frl_learner::checkpoint::list(&dir.join("runs").join(name).join("checkpoints")).last().unwrap().clone()
}

/// Starts `frl train job --quiet` and returns it once a checkpoint at step 12 or later exists.
fn train_until_checkpoint_12(dir: &std::path::Path, job: &std::path::Path, name: &str) -> std::process::Child {
    let ckpts = dir.join("runs").join(name).join("checkpoints");
    let child = frl().arg("train").arg(job).arg("--quiet").stdout(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while frl_learner::checkpoint::list(&ckpts).iter().all(|(s, _)| *s < 12) {
        assert!(std::time::Instant::now() < deadline, "no checkpoints appeared");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child
}

/// The parameters and optimiser moments of a checkpoint, sorted by name.
fn checkpoint_state(path: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    let c = frl_learner::checkpoint::load(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let mut all: Vec<(String, Vec<f32>)> = c
        .model
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v.data))
        .chain(c.adam.into_iter().map(|(k, v)| (format!("adam.{k}"), v.data)))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn every_agent_resumes_after_kill_9_and_ctrl_c_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    const STEPS: u64 = 400;
    for kind in ["dt", "bc", "iql"] {
        // The uninterrupted run.
        let whole = train_job(dir.path(), kind, &format!("{kind}-whole"), STEPS);
        let (code, _, stderr) = run(frl().arg("train").arg(&whole).arg("--quiet"));
        assert_eq!(code, 0, "{stderr}");
        let (end, path) = newest_checkpoint(dir.path(), &format!("{kind}-whole"));
        assert_eq!(end, STEPS);
        let expected = checkpoint_state(&path);

        // Killed with SIGKILL, possibly in the middle of writing a checkpoint.
        let name = format!("{kind}-killed");
        let job = train_job(dir.path(), kind, &name, STEPS);
        let mut child = train_until_checkpoint_12(dir.path(), &job, &name);
        child.kill().unwrap();
        child.wait().unwrap();
        let ckpts = dir.path().join("runs").join(&name).join("checkpoints");
        let kept = frl_learner::checkpoint::list(&ckpts);
        // Two are kept; a kill between a save and the pruning that follows it leaves a third, also whole.
        assert!(!kept.is_empty() && kept.len() <= 3, "{kept:?}");
        assert!(kept.last().unwrap().0 < STEPS, "{kind}: the run ended before it could be killed");
        for (_, path) in &kept {
            checkpoint_state(path);
        }
        // A plain rerun refuses to overwrite; --resume continues from the newest checkpoint.
        let (code, _, stderr) = run(frl().arg("train").arg(&job).arg("--quiet"));
        assert_ne!(code, 0);
        assert!(stderr.contains("--resume"), "{stderr}");
        let (code, _, stderr) = run(frl().arg("train").arg(&job).arg("--quiet").arg("--resume"));
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains(&format!("from step {}", kept.last().unwrap().0)), "{stderr}");
        for entry in std::fs::read_dir(&ckpts).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.starts_with('.'), "partial checkpoint {name} left behind");
        }
        assert!(checkpoint_state(&newest_checkpoint(dir.path(), &name).1) == expected, "{kind}: kill -9 + resume");

        // Ctrl-C (SIGINT): a checkpoint at the step reached, exit code 130, then resume.
        let name = format!("{kind}-interrupted");
        let job = train_job(dir.path(), kind, &name, STEPS);
        let child = train_until_checkpoint_12(dir.path(), &job, &name);
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{kind}: {}", String::from_utf8_lossy(&out.stderr));
        let (stopped, _) = newest_checkpoint(dir.path(), &name);
        assert!((12..STEPS).contains(&stopped), "{kind}: stopped at {stopped}");
        let (code, _, stderr) = run(frl().arg("train").arg(&job).arg("--quiet").arg("--resume"));
        assert_eq!(code, 0, "{stderr}");
        assert!(checkpoint_state(&newest_checkpoint(dir.path(), &name).1) == expected, "{kind}: Ctrl-C + resume");
    }
}

#[test]
fn eval_runs_every_agents_checkpoint_and_names_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["dt", "bc", "iql"] {
        let job = train_job(dir.path(), kind, kind, 6);
        let (code, stdout, stderr) = run(frl().arg("train").arg(&job).arg("--quiet"));
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(kind), "{stdout}");
        let (_, last_path) = newest_checkpoint(dir.path(), kind);
        let (code, stdout, stderr) =
            run(frl().args(["eval", "--episodes", "2", "--actors", "2", "--json", "--checkpoint"]).arg(&last_path));
        assert_eq!(code, 0, "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["returns"].as_array().unwrap().len(), 2);
        let (code, stdout, stderr) =
            run(frl().args(["eval", "--episodes", "1", "--decode", "mode", "--checkpoint"]).arg(&last_path));
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(&format!("({kind} agent)")), "{stdout}");
        // A negative target return is a value, not a flag.
        let (code, stdout, stderr) =
            run(frl().args(["eval", "--episodes", "1", "--target-return", "-150", "--checkpoint"]).arg(&last_path));
        if kind == "dt" {
            assert_eq!(code, 0, "{stderr}");
            assert!(stdout.contains("target return -150"), "{stdout}");
        } else {
            // Only return-conditioned agents take a target return.
            assert_ne!(code, 0);
            assert!(stderr.contains("--target-return") && stderr.contains("not return-conditioned"), "{stderr}");
        }
        let (code, _, stderr) = run(frl().args(["eval", "--decode", "greedy", "--checkpoint"]).arg(&last_path));
        assert_ne!(code, 0);
        assert!(stderr.contains("greedy"), "{stderr}");
        // One flipped byte (the 100th from the end, in the tensor data) is refused by `eval` and by `--resume`, which
        // point to the checkpoint before it.
        let good = std::fs::read(&last_path).unwrap();
        let mut bad = good.clone();
        let i = bad.len() - 100;
        bad[i] ^= 0xFF;
        std::fs::write(&last_path, &bad).unwrap();
        let name = last_path.file_name().unwrap().to_string_lossy().to_string();
        let (code, _, stderr) = run(frl().args(["eval", "--episodes", "1", "--checkpoint"]).arg(&last_path));
        assert_ne!(code, 0);
        assert!(stderr.contains(&name) && stderr.contains("CRC-32C mismatch"), "{stderr}");
        let (code, _, stderr) = run(frl().arg("train").arg(&job).args(["--quiet", "--resume"]));
        assert_ne!(code, 0);
        assert!(stderr.contains(&name) && stderr.contains("newest checkpoint before it"), "{stderr}");
        std::fs::write(&last_path, &good).unwrap();
    }
    let (code, _, stderr) = run(frl().args(["eval", "--checkpoint", "nowhere.safetensors"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("nowhere.safetensors"), "{stderr}");
    // An unknown agent and a bad field in an agent's section are named with the file.
    let job = dir.path().join("bad.toml");
    std::fs::write(&job, "name = \"x\"\ndataset = \"d\"\nagent = \"ppo\"\n").unwrap();
    let (code, _, stderr) = run(frl().arg("train").arg(&job));
    assert_ne!(code, 0);
    assert!(stderr.contains("bad.toml") && stderr.contains("ppo"), "{stderr}");
    std::fs::write(&job, "name = \"x\"\ndataset = \"d\"\nagent = \"iql\"\n[iql]\nexpectile = 1.5\n").unwrap();
    let (code, _, stderr) = run(frl().arg("train").arg(&job));
    assert_ne!(code, 0);
    assert!(stderr.contains("[iql]") && stderr.contains("expectile"), "{stderr}");
    std::fs::write(&job, "name = \"x\"\ndataset = \"d\"\nagent = \"bc\"\n[dt]\nlayers = 2\n").unwrap();
    let (code, _, stderr) = run(frl().arg("train").arg(&job));
    assert_ne!(code, 0);
    assert!(stderr.contains("`dt`") && stderr.contains("[bc]"), "{stderr}");
}

#[test]
fn demo_runs_end_to_end_on_a_tiny_config_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("demo.toml");
    // The built-in demo, shrunk field by field; a field that moved makes this fail instead of running the full demo.
    let mut demo: toml::Table = toml::from_str(frl_runners::demo::DEFAULT_DEMO).unwrap();
    fn set(table: &mut toml::Table, path: &[&str], value: toml::Value) {
        let (last, parents) = path.split_last().unwrap();
        let mut t = table;
        for p in parents {
            t = t.get_mut(*p).and_then(|v| v.as_table_mut()).unwrap_or_else(|| panic!("demo.toml has no [{p}]"));
        }
        assert!(t.insert(last.to_string(), value).is_some(), "demo.toml has no `{}`", path.join("."));
    }
    let path = |p: &std::path::Path| toml::Value::String(p.display().to_string());
    set(&mut demo, &["collect", "episodes"], 4.into());
    set(&mut demo, &["collect", "out"], path(&dir.path().join("data")));
    set(&mut demo, &["train", "train", "steps"], 6.into());
    set(&mut demo, &["train", "dt", "embed_dim"], 16.into());
    set(&mut demo, &["train", "eval", "every"], 3.into());
    set(&mut demo, &["train", "eval", "episodes"], 2.into());
    demo["train"].as_table_mut().unwrap().insert("runs_dir".into(), path(&dir.path().join("runs")));
    let text = toml::to_string(&demo).unwrap();
    std::fs::write(&config, text).unwrap();
    let (code, stdout, stderr) = run(frl().args(["demo", "--quiet", "--config"]).arg(&config));
    assert_eq!(code, 0, "{stderr}");
    for run in ["demo-pendulum-linear", "demo-pendulum-fourier-N8"] {
        assert!(stdout.contains(run), "{stdout}");
        assert!(dir.path().join("runs").join(run).join("summary.json").exists());
    }
    assert!(stdout.contains("eval return") && stdout.contains("normalised"), "{stdout}");
    // The picture: one column per head, one row per probe row, cells as large as a TensorBoard PMF image.
    let picture = std::fs::read(dir.path().join("runs/demo-pendulum-pmfs.png")).expect("the demo's picture");
    let (w, h) = (
        u32::from_be_bytes(picture[16..20].try_into().unwrap()),
        u32::from_be_bytes(picture[20..24].try_into().unwrap()),
    );
    let cell = frl_tensorboard::pmf_png(&[1.0], None);
    assert_eq!(&picture[1..4], b"PNG");
    assert_eq!(w, 2 * cell.width + 18, "two heads side by side");
    assert!((1..=3).any(|rows| h == rows * cell.height + (rows + 1) * 6), "height {h}");
    assert!(stderr.contains("side by side"), "{stderr}");
    // Everything is done: a rerun restores each run's summary (its evaluation included) and prints the same table.
    let (code, again, stderr) = run(frl().args(["demo", "--quiet", "--config"]).arg(&config));
    assert_eq!(code, 0, "{stderr}");
    let rows = |out: &str| out.lines().filter(|l| l.starts_with("demo-pendulum")).map(String::from).collect::<Vec<_>>();
    assert_eq!(rows(&stdout).len(), 2, "{stdout}");
    assert_eq!(rows(&stdout), rows(&again));
    let (code, _, stderr) = run(frl().args(["demo", "--config", "missing.toml"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

/// An online DQN job on CartPole with recording, `env_steps` long.
fn online_job(dir: &std::path::Path, name: &str, env_steps: u64) -> std::path::PathBuf {
    let text = format!(
        "name = \"{name}\"\nruns_dir = \"{}\"\nagent = \"dqn\"\n[dqn]\nhidden = [32]\natoms = 21\nv_min = -20.0\n\
         v_max = 20.0\n[online]\nenv = \"CartPole-v1\"\nenv_steps = {env_steps}\nactors = 2\nlearning_starts = 300\n\
         updates_per_step = 0.5\nrecord = true\n[train]\nbatch_size = 32\nlog_every = 20\ncheckpoint_every = 40\n\
         [eval]\nepisodes = 1\nactors = 1\n",
        dir.join("runs").display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Ctrl-C before the first update (and so before the first checkpoint) still leaves a checkpoint beside the
/// recording, so the run resumes instead of refusing a recording without one.
#[test]
fn an_online_run_interrupted_before_its_first_update_still_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let job = online_job(dir.path(), "early", 200_000);
    let text = std::fs::read_to_string(&job).unwrap().replace("learning_starts = 300", "learning_starts = 100000000");
    std::fs::write(&job, text).unwrap();
    let run = dir.path().join("runs").join("early");
    let child = frl().arg("train").arg(&job).arg("--quiet").stdout(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !run.join("episodes").exists() {
        assert!(std::time::Instant::now() < deadline, "the recording never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let ckpts = frl_learner::checkpoint::list(&run.join("checkpoints"));
    let (step, path) = ckpts.last().expect("a checkpoint beside the recording").clone();
    let progress = frl_learner::checkpoint::load(&path).unwrap().meta.online.unwrap();
    assert!(step == 0 && progress.env_steps > 0, "update {step}, {progress:?}");
}

#[test]
fn an_online_run_stops_on_ctrl_c_or_kill_9_and_resumes_with_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["-INT", "-KILL"] {
        let name = format!("online{signal}");
        let job = online_job(dir.path(), &name, 200_000);
        let ckpts = dir.path().join("runs").join(&name).join("checkpoints");
        let child = frl().arg("train").arg(&job).arg("--quiet").stdout(std::process::Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while frl_learner::checkpoint::list(&ckpts).iter().all(|(s, _)| *s < 80) {
            assert!(std::time::Instant::now() < deadline, "no checkpoints appeared");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
        let out = child.wait_with_output().unwrap();
        if signal == "-INT" {
            assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let (stopped, path) = frl_learner::checkpoint::list(&ckpts).last().unwrap().clone();
        let meta = frl_learner::checkpoint::load(&path).unwrap().meta;
        let progress = meta.online.expect("an online checkpoint records its progress");
        assert!(stopped >= 80 && progress.env_steps < 200_000, "{signal}: stopped at update {stopped}, {progress:?}");
        // The recording holds what the checkpoint counted (it is flushed before every checkpoint) but for the episodes
        // running then, sent in fragments and recorded once they end (2 actors, CartPole: at most 500 steps each).
        let (code, info, stderr) =
            run(frl().args(["dataset", "info", "--json"]).arg(dir.path().join("runs").join(&name).join("episodes")));
        assert_eq!(code, 0, "{signal}: the recording does not load: {stderr}");
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert!(info["steps"].as_u64().unwrap() + 2 * 500 >= progress.env_steps, "{signal}: {info} vs {progress:?}");
        // Resume with a budget just past where it stopped: the counts continue from the checkpoint.
        let budget = progress.env_steps + 2000;
        let text =
            std::fs::read_to_string(&job).unwrap().replace("env_steps = 200000", &format!("env_steps = {budget}"));
        std::fs::write(&job, text).unwrap();
        let (code, stdout, stderr) = run(frl().arg("train").arg(&job).arg("--quiet").arg("--resume"));
        assert_eq!(code, 0, "{signal}: {stderr}");
        assert!(stderr.contains(&format!("from update {stopped}")), "{signal}: {stderr}");
        assert!(stdout.contains("online (deterministic):"), "{stdout}");
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("runs").join(&name).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert!(summary["online"]["env_steps"].as_u64().unwrap() >= budget, "{summary}");
        assert!(summary["steps"].as_u64().unwrap() > stopped, "{summary}");
        // The recording was taken back to the checkpoint and went on from there: each episode once, and the
        // episodes running at the stop finished whole (none is missing from the numbering).
        let rec = frl_dataset::dataset::Dataset::open(&dir.path().join("runs").join(&name).join("episodes")).unwrap();
        let mut index: Vec<u64> = rec.episodes.tags.iter().map(|t| t.index).collect();
        index.sort_unstable();
        let n = index.len();
        index.dedup();
        assert_eq!(index.len(), n, "{signal}: an episode was recorded twice");
        // Slot j (of 2) runs episodes j, j + 2, j + 4, ...: none is missing before the one running at the end.
        for j in 0..2 {
            let ours: Vec<u64> = index.iter().copied().filter(|i| i % 2 == j).collect();
            let expected: Vec<u64> = (0..ours.len() as u64).map(|n| 2 * n + j).collect();
            assert!(ours == expected, "{signal}: slot {j} recorded {ours:?}");
        }
    }
}

#[test]
fn devices_lists_what_each_device_choice_uses_and_require_gpu_fails_without_one() {
    let (code, stdout, stderr) = run(frl().arg("devices"));
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("cpu") && l.contains("flex (CPU)")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("gpu ")), "{stdout}");
    // This test binary is the default (CPU-only) build: no GPU adapter can be usable.
    let (code, stdout, _) = run(frl().args(["devices", "--require-gpu"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("without one: rebuild with --features wgpu"), "{stdout}");
}

/// `src/main.rs` sets mimalloc option 15 to keep freed memory; with `MIMALLOC_VERBOSE=1` mimalloc lists its options
/// in the order of its `mi_option_t`, so the linked version must list `purge_delay` sixteenth.
#[test]
fn the_allocator_option_set_at_start_up_is_the_purge_delay() {
    const MI_OPTION_PURGE_DELAY: usize = 15;
    let (code, stdout, stderr) = run(frl().args(["envs", "list"]).env("MIMALLOC_VERBOSE", "1"));
    assert_eq!(code, 0, "stderr: {stderr}");
    let options: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter_map(|line| line.trim_start().strip_prefix("option '")?.split('\'').next())
        .collect();
    assert!(options.len() > MI_OPTION_PURGE_DELAY, "mimalloc listed no options: {stderr}");
    assert_eq!(options.iter().position(|o| *o == "purge_delay"), Some(MI_OPTION_PURGE_DELAY), "{options:?}");
}

/// `bench heads --python` runs PyTorch's reference script for the same shapes and prints frl's time over PyTorch's;
/// here a stand-in interpreter reports 2 ms per step for every head.
#[test]
fn bench_heads_prints_ratios_against_the_reference_script() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let python = dir.path().join("python");
    std::fs::write(&python, "#!/bin/sh\necho \"torch $2 head: 2.00 ms/step\"\n").unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.path().join("torch_reference.py");
    std::fs::write(&script, "").unwrap();
    let (code, stdout, stderr) = run(frl()
        .args(["bench", "heads", "--head", "linear", "--batch", "64", "--steps", "2", "--python"])
        .arg(&python)
        .arg("--reference")
        .arg(&script));
    assert_eq!(code, 0, "stderr: {stderr}");
    let ours: f64 = stdout.lines().next().and_then(|l| l.split_whitespace().next()?.parse().ok()).expect(&stdout);
    let line = stdout.lines().find(|l| l.contains("frl / PyTorch")).expect(&stdout);
    let ratio: f64 =
        line.split("frl / PyTorch ").nth(1).and_then(|r| r.split_whitespace().next()?.parse().ok()).unwrap();
    assert!(line.trim_start().starts_with("2.000 ms/step"), "{line}");
    assert!((ratio - ours / 2.0).abs() <= 0.006, "ratio {ratio} for {ours} ms against 2 ms");

    let (code, _, stderr) = run(frl()
        .args(["bench", "heads", "--head", "linear", "--steps", "1", "--python"])
        .arg(dir.path().join("no-python"))
        .arg("--reference")
        .arg(&script));
    assert_eq!(code, 1);
    assert!(stderr.contains("no-python"), "{stderr}");
}

/// A forecasting job small enough for a test, on the repository's pool.
fn forecast_job(dir: &std::path::Path) -> std::path::PathBuf {
    let pool = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("forecast/data/pool");
    let job = dir.join("forecast.toml");
    let text = format!(
        "name = \"fc\"\nseed = 2\nruns_dir = \"{}\"\n\n[train]\nsteps = 4\nbatch_size = 4\nlr = 1e-3\nwarmup_steps = 1\n\
         log_every = 2\nplot_every = 4\ncheckpoint_every = 2\n\n[forecast]\ncontext = 12\nprediction = 4\nmin_context = 2\n\
         d_model = 16\nlayers = 1\nheads = 2\nsamples = 4\nhead = {{ fourier = {{ frequencies = 4 }} }}\n\n\
         [forecast.tokenizer]\nn_tokens = 128\n\n[forecast.data]\npool = \"{}\"\nsynth_length = 32\n",
        dir.join("runs").display(),
        pool.display()
    );
    std::fs::write(&job, text).unwrap();
    job
}

#[test]
fn forecast_trains_evaluates_and_predicts_and_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let job = forecast_job(dir.path());
    let (code, stdout, stderr) = run(frl().args(["forecast", "train", "--quiet"]).arg(&job));
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("fc: 4 steps"), "{stdout}");
    let ckpt = dir.path().join("runs/fc/checkpoints/ckpt-00000004.safetensors");
    assert!(ckpt.exists());

    let datasets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("forecast/tests/fixtures/datasets");
    let json = dir.path().join("eval.json");
    let (code, stdout, stderr) = run(frl()
        .args(["forecast", "eval", "--samples", "3", "--checkpoint"])
        .arg(&ckpt)
        .arg("--dataset")
        .arg(datasets.join("fpp2_quarterly"))
        .arg("--json")
        .arg(&json));
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("fpp2_quarterly") && stdout.contains("geometric mean"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let naive = report["datasets"][0]["seasonal_naive"]["mase"].as_f64().unwrap();
    assert!((naive - 1.1366).abs() < 1e-3, "{report}");
    assert!(report["relative_mase"].as_f64().unwrap().is_finite());

    let csv = dir.path().join("series.csv");
    std::fs::write(&csv, "series,value\na,3\na,4\na,5\na,4\nb,10\nb,12\nb,11\n").unwrap();
    let out = dir.path().join("forecast.csv");
    let plots = dir.path().join("plots");
    let (code, _, stderr) = run(frl()
        .args(["forecast", "predict", "--horizon", "3", "--checkpoint"])
        .arg(&ckpt)
        .arg("--csv")
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .arg("--plots")
        .arg(&plots));
    assert_eq!(code, 0, "stderr: {stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 2 * 3, "{text}");
    assert!(lines[0].starts_with("series,step,mean,q0.1") && lines[1].starts_with("a,1,"), "{text}");
    let png = std::fs::read(plots.join("a.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Bad input: text in a value column, a constant-zero series, a horizon of 0, a job of another kind.
    std::fs::write(&csv, "series,value\na,3\na,three\n").unwrap();
    let (code, _, stderr) =
        run(frl().args(["forecast", "predict", "--horizon", "3", "--checkpoint"]).arg(&ckpt).arg("--csv").arg(&csv));
    assert!(code != 0 && stderr.contains("series.csv:3") && stderr.contains("`three`"), "{stderr}");
    std::fs::write(&csv, "value\n0\n0\n0\n").unwrap();
    let (code, _, stderr) =
        run(frl().args(["forecast", "predict", "--horizon", "3", "--checkpoint"]).arg(&ckpt).arg("--csv").arg(&csv));
    assert!(code != 0 && stderr.contains("series series") && stderr.contains("mean scale is 0"), "{stderr}");
    let (code, _, stderr) =
        run(frl().args(["forecast", "predict", "--horizon", "0", "--checkpoint"]).arg(&ckpt).arg("--csv").arg(&csv));
    assert!(code != 0 && stderr.contains("--horizon"), "{stderr}");
    std::fs::write(&job, "name = \"x\"\nagent = \"bc\"\n").unwrap();
    let (code, _, stderr) = run(frl().args(["forecast", "train"]).arg(&job));
    assert!(code != 0 && stderr.contains("forecast.toml") && stderr.contains("agent"), "{stderr}");
    assert!(!out.with_extension("partial").exists());
}

#[test]
fn template_prints_a_job_file_and_refuses_what_cannot_be() {
    let (code, stdout, stderr) = run(frl().args(["template", "dqn", "--online"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("[online]\n") && stdout.contains("[dqn]\n") && stdout.contains("agent = \"dqn\""),
        "{stdout}"
    );
    let (code, _, stderr) = run(frl().args(["template", "bc", "--online"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("does not train online") && stderr.contains("dqn"), "{stderr}");
    let (code, stdout, _) = run(frl().arg("reference"));
    assert_eq!(code, 0);
    assert!(stdout.starts_with("# Job-file reference") && stdout.contains("## `[dqn]`"), "{stdout}");
}

#[test]
fn set_changes_fields_of_the_job_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let job = train_job(dir.path(), "bc", "set", 100);
    let (code, _, stderr) = run(frl().arg("train").arg(&job).args([
        "--quiet",
        "--set",
        "train.steps=3",
        "--set",
        "name=changed",
        "--set",
        "bc.head=linear",
    ]));
    assert_eq!(code, 0, "{stderr}");
    // The run folder's job is the job as it ran.
    let ran: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.path().join("runs/changed/job.toml")).unwrap()).unwrap();
    assert_eq!(ran["train"]["steps"].as_integer(), Some(3));
    assert_eq!(ran["bc"]["head"].as_str(), Some("linear"));
    assert_eq!(newest_checkpoint(dir.path(), "changed").0, 3);
    for (set, says) in [
        ("train.stepz=3", "unknown field `stepz`"),
        ("train=3", "expected struct TrainConfig"),
        ("train.steps", "expected KEY=VALUE"),
        ("train.steps=0", "`train.steps` must be at least 1"),
        ("seed=-1", "seed"),
    ] {
        let (code, _, stderr) = run(frl().arg("train").arg(&job).args(["--quiet", "--set", set]));
        assert_eq!(code, 1, "--set {set}: {stderr}");
        let names_the_file = stderr.contains("set.toml") || set == "train.steps";
        assert!(stderr.contains(says) && stderr.contains(set) && names_the_file, "--set {set}: {stderr}");
    }
}

#[test]
fn a_job_without_evaluation_episodes_trains_without_evaluating() {
    let dir = tempfile::tempdir().unwrap();
    let job = train_job(dir.path(), "bc", "noeval", 100);
    let (code, stdout, stderr) =
        run(frl().arg("train").arg(&job).args(["--set", "train.steps=4", "--set", "eval.episodes=0"]));
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/noeval/summary.json")).unwrap()).unwrap();
    assert!(summary["eval"].is_null(), "{summary}");
    assert!(!stdout.contains('±'), "an evaluation was reported: {stdout}");
    // Evaluations during training need episodes: the job says which fields clash.
    let (code, _, stderr) =
        run(frl().arg("train").arg(&job).args(["--quiet", "--set", "eval.episodes=0", "--set", "eval.every=2"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("`eval.every` = 2") && stderr.contains("`eval.episodes` = 0"), "{stderr}");
}

#[test]
fn subsample_draws_whole_episodes_within_the_step_budget() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (code, _, stderr) = run(frl()
        .args(["collect", "--quiet", "--env", "CartPole-v1", "--policy", "expert:0.4", "--episodes", "60", "--out"])
        .arg(&src));
    assert_eq!(code, 0, "{stderr}");
    let sub = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        let (code, stdout, stderr) = run(frl()
            .args(["dataset", "subsample"])
            .arg(&src)
            .arg("--out")
            .arg(&out)
            .args(["--steps", "2000", "--seed", seed]));
        (code, stdout, stderr, out)
    };
    let (code, stdout, stderr, a) = sub("a", "1");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("subsample of"), "{stdout}");
    let whole = frl_dataset::dataset::Dataset::open(&src).unwrap();
    let part = frl_dataset::dataset::Dataset::open(&a).unwrap();
    let longest = whole.episodes.iter().map(|e| e.len()).max().unwrap();
    let steps = part.episodes.steps();
    assert!(steps <= 2000 && steps + longest > 2000 && part.episodes.episodes() < 60, "{steps} steps");
    // Each episode is the source's episode of the same index, unchanged, in the source's order.
    let by_index: std::collections::HashMap<u64, usize> =
        whole.episodes.iter().enumerate().map(|(i, e)| (e.tag.index, i)).collect();
    let mut last = None;
    for e in part.episodes.iter() {
        let o = whole.episodes.episode(by_index[&e.tag.index]);
        assert_eq!(
            (e.observations, e.actions, e.rewards, e.tag.seed),
            (o.observations, o.actions, o.rewards, o.tag.seed)
        );
        assert!(last < Some(e.tag.index));
        last = Some(e.tag.index);
    }
    // Every window a sequence model draws from the subset (the DT's `WindowIndex`, K = 20) lies inside one episode
    // and holds the steps of the source episode it came from, in order; the last window of each episode stops at its
    // end.
    let windows = frl_dataset::windows::WindowIndex::new(&part.episodes, 20);
    assert_eq!(windows.steps(), steps);
    let offsets = &part.episodes.offsets;
    let mut ends_seen = 0;
    for start in 0..windows.steps() {
        let e = offsets.partition_point(|&o| o <= start) - 1;
        let (t, len) = (start - offsets[e], windows.len_at(start));
        let episode_len = offsets[e + 1] - offsets[e];
        assert!(len >= 1 && t + len <= episode_len, "window at {start} crosses the end of episode {e}");
        assert_eq!(len, 20.min(episode_len - t), "window at {start} stops early");
        ends_seen += usize::from(t + len == episode_len && len < 20);
        let source = whole.episodes.episode(by_index[&part.episodes.tags[e].index]);
        let rows = |o: &[f32], from: usize| o[from * 4..(from + len) * 4].to_vec();
        assert_eq!(rows(part.episodes.episode(e).observations, t), rows(source.observations, t));
        assert_eq!(&part.episodes.episode(e).actions[t..t + len], &source.actions[t..t + len]);
    }
    assert!(ends_seen >= part.episodes.episodes(), "{ends_seen} windows end at an episode's end");
    // The same seed draws the same episodes; another seed others.
    let (_, _, _, b) = sub("b", "1");
    let (_, _, _, c) = sub("c", "2");
    let indices = |p: &std::path::Path| {
        frl_dataset::dataset::Dataset::open(p).unwrap().episodes.iter().map(|e| e.tag.index).collect::<Vec<_>>()
    };
    assert_eq!(indices(&a), indices(&b));
    assert_ne!(indices(&a), indices(&c));
    // An existing folder is refused and left as it was; nothing temporary is left behind.
    let (code, _, stderr, _) = sub("a", "3");
    assert_eq!(code, 1);
    assert!(stderr.contains("already exists") && stderr.contains("/a"), "{stderr}");
    assert_eq!(indices(&a), indices(&b));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".tmp"))
    );
}

#[test]
fn a_missing_file_is_named_once_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let (code, _, stderr) =
        run(frl().args(["dataset", "import-minari"]).arg(&missing).arg("--out").arg(dir.path().join("out")));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nothing-here/metadata.json"), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "the cause is said once: {stderr}");
}
