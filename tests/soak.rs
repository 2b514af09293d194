//! A soaked online loop: online C51 on a CartPole whose actors panic, fail and stall on schedule
//! (`chaos:` env), interrupted with SIGINT at random moments (start-up included) and resumed each time. Every
//! interruption must end the process within seconds with exit 130 and a resumable run, progress never goes back,
//! every injected failure is counted, and memory stays bounded once the replay store is full.
//!
//! `FRL_SOAK_SECONDS` sets the length (CI: 24 s); `scripts/soak.sh` runs minutes and prints the figures.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

const REPLAY_CAPACITY: usize = 20_000;

fn job(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "name = \"soak\"\nruns_dir = \"{}\"\nagent = \"dqn\"\nseed = 3\n[dqn]\nhidden = [64, 64]\natoms = 51\n\
         v_min = 0.0\nv_max = 500.0\n[online]\nenv = \"chaos:panic@1700,error@2300,slow@500/40:CartPole-v1\"\n\
         env_steps = 100000000\nactors = 2\nreplay_capacity = {REPLAY_CAPACITY}\nlearning_starts = 500\n\
         updates_per_step = 0.1\nrecord = true\nmax_failures = 1000000\n[train]\nbatch_size = 64\nlog_every = 200\n\
         checkpoint_every = 250\n[eval]\nepisodes = 1\nactors = 1\n",
        dir.join("runs").display()
    );
    let path = dir.join("soak.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The process's resident set (`VmRSS`) and its peak (`VmHWM`), in KiB.
fn memory(child: &Child) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let field =
        |name: &str| status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok();
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[test]
fn sigint_at_random_moments_under_injected_faults() {
    let seconds: f64 = std::env::var("FRL_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(24.0);
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let start = Instant::now();
    let (mut interrupts, mut slowest_exit, mut failures, mut peak_kib) = (0u32, Duration::ZERO, 0u64, 0u64);
    let mut last_env_steps = 0u64;
    // Resident memory over the last invocation (the longest): (seconds since it started, KiB).
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut invocation = 0;
    while start.elapsed().as_secs_f64() < seconds {
        let last = start.elapsed().as_secs_f64() > seconds * 0.5;
        // Early invocations live 0.05–3 s (start-up, the first checkpoints); the last one the rest of the time.
        let life = if last {
            Duration::from_secs_f64((seconds - start.elapsed().as_secs_f64()).max(1.0))
        } else {
            Duration::from_secs_f64(rng.random_range(0.05..3.0))
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_frl"));
        // Stderr to a file: the injected panics print a message each, more than a pipe holds unread.
        let log = dir.path().join(format!("stderr-{invocation}.txt"));
        cmd.arg("train").arg(&job).arg("--quiet").env("RUST_BACKTRACE", "0").stdout(Stdio::null());
        cmd.stderr(std::fs::File::create(&log).unwrap());
        if invocation > 0 {
            cmd.arg("--resume");
        }
        let mut child = cmd.spawn().unwrap();
        let born = Instant::now();
        samples.clear();
        while born.elapsed() < life {
            if let Some((rss, hwm)) = memory(&child) {
                peak_kib = peak_kib.max(hwm);
                samples.push((born.elapsed().as_secs_f64(), rss));
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let sent = Instant::now();
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let deadline = sent + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("invocation {invocation}: no exit within 15 s of SIGINT (after {life:?})");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        slowest_exit = slowest_exit.max(sent.elapsed());
        let stderr = std::fs::read_to_string(&log).unwrap();
        let tail = (stderr.len().saturating_sub(2000)..stderr.len()).find(|&i| stderr.is_char_boundary(i));
        let stderr = &stderr[tail.unwrap_or(0)..];
        // 130 after Ctrl-C; a process interrupted before it had parsed its job may also just stop (signal).
        assert!(status.code() == Some(130) || status.code().is_none(), "invocation {invocation}: {status:?}: {stderr}");
        interrupts += 1;
        let ckpts = frl_learner::checkpoint::list(&dir.path().join("runs/soak/checkpoints"));
        if let Some((_, newest)) = ckpts.last() {
            let progress = frl_learner::checkpoint::load(newest).unwrap().meta.online.unwrap();
            assert!(progress.env_steps >= last_env_steps, "progress went back: {progress:?} after {last_env_steps}");
            assert!(progress.actor_failures >= failures, "failures went back: {progress:?} after {failures}");
            (last_env_steps, failures) = (progress.env_steps, progress.actor_failures);
        }
        invocation += 1;
    }
    let ckpts = frl_learner::checkpoint::list(&dir.path().join("runs/soak/checkpoints"));
    let newest = frl_learner::checkpoint::load(&ckpts.last().expect("checkpoints").1).unwrap();
    let progress = newest.meta.online.unwrap();
    assert_eq!(progress.actor_failures, failures);
    // The schedule injects a panic every 1,700 and an error every 2,300 steps of each env instance.
    let expected_at_least = progress.env_steps / 2 / 2300;
    println!(
        "soak: {:.0} s, {interrupts} SIGINTs (slowest exit {:.2} s), {} env steps, {} updates, {failures} actor \
         failures counted across resumes (≥ {expected_at_least} expected), peak RSS {:.0} MiB with a replay store of {REPLAY_CAPACITY} \
         steps",
        start.elapsed().as_secs_f64(),
        slowest_exit.as_secs_f64(),
        progress.env_steps,
        progress.updates,
        peak_kib as f64 / 1024.0
    );
    assert!(progress.env_steps > 20_000, "{progress:?}");
    assert!(failures > 0 && failures >= expected_at_least, "{failures} failures counted");
    // Memory stays flat once the store is full: the last invocation's second half grows < 25% over its first.
    let span = samples.last().map(|s| s.0).unwrap_or(0.0);
    let max_in = |from: f64, to: f64| samples.iter().filter(|s| s.0 >= from && s.0 < to).map(|s| s.1).max();
    if let (Some(first), Some(second)) = (max_in(span * 0.25, span * 0.6), max_in(span * 0.6, f64::INFINITY)) {
        println!("soak: last invocation RSS {:.0} MiB → {:.0} MiB", first as f64 / 1024.0, second as f64 / 1024.0);
        assert!(second as f64 <= first as f64 * 1.25 + 32.0 * 1024.0, "RSS grew from {first} KiB to {second} KiB");
    }
    assert!(peak_kib < 1024 * 1024, "peak RSS {peak_kib} KiB");
}
