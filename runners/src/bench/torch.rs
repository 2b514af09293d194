//! PyTorch baselines run beside frl's benchmarks: finding the repository's scripts, running them with an
//! interpreter that has torch, and reading the figures they print (each reader tested on recorded output).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a helper script of the repository's `scripts/` folder is: under `$FRL_SCRIPTS`, `./scripts`, `scripts/`
/// beside the executable, or the source tree this crate was built from, the first that has it.
pub fn find_script(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("FRL_SCRIPTS").map(PathBuf::from).into_iter().collect();
    dirs.push(PathBuf::from("scripts"));
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir.join("scripts"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts"));
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()).ok_or_else(|| {
        let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        anyhow::anyhow!("{name} not found in {} (set FRL_SCRIPTS to the folder that has it)", tried.join(", "))
    })
}

/// Runs the Python file `script` with `python` and these arguments; returns its stdout.
pub fn run_python(python: &Path, script: &Path, args: &[String]) -> anyhow::Result<String> {
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        anyhow::bail!("{} {} failed: {}", python.display(), script.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `scripts/<script>` with `python` and these arguments; returns its stdout.
pub fn run_script(python: &Path, script: &str, args: &[String]) -> anyhow::Result<String> {
    run_python(python, &find_script(script)?, args)
}

/// The milliseconds of the last `name: <ms> ms/step` line (`torch_reference.py`).
pub fn parse_ms_per_step(stdout: &str) -> Option<f64> {
    stdout.lines().rev().find_map(|line| line.rsplit_once(": ")?.1.strip_suffix(" ms/step")?.trim().parse().ok())
}

/// The milliseconds `c51_torch_step.py` prints as the second-to-last word (`c51 linear: 1.234 ms`).
pub fn parse_c51_ms(stdout: &str) -> Option<f64> {
    stdout.split_whitespace().rev().nth(1)?.parse().ok()
}

/// `torch_ops.py`'s `name: <ms> ms` lines by name; an unexpected line is an error quoting it.
pub fn parse_ops(stdout: &str) -> anyhow::Result<HashMap<String, f64>> {
    let mut times = HashMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let parsed =
            line.rsplit_once(": ").and_then(|(name, v)| Some((name, v.strip_suffix(" ms")?.parse::<f64>().ok()?)));
        let (name, ms) = parsed.ok_or_else(|| anyhow::anyhow!("unexpected line from torch_ops.py: {line:?}"))?;
        times.insert(name.to_string(), ms);
    }
    Ok(times)
}

/// The milliseconds of `torch_dt_step.py`'s one line, `dt step: <ms> ms`.
pub fn parse_dt_step(stdout: &str) -> Option<f64> {
    stdout.trim().strip_prefix("dt step: ")?.strip_suffix(" ms")?.parse().ok()
}

/// `torch_reference.py` (PyTorch baselines of the head and DT steps) run by an interpreter that has torch.
pub struct TorchReference {
    python: PathBuf,
    script: PathBuf,
}

impl TorchReference {
    /// Checks that `python` imports torch, then finds the script: `given`, else `torch_reference.py` where
    /// [`find_script`] looks, else `../shared/bench/torch_reference.py` beside the repository or the working
    /// directory.
    pub fn new(python: PathBuf, given: Option<&Path>) -> anyhow::Result<Self> {
        let probe = Command::new(&python)
            .args(["-c", "import torch"])
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", python.display()))?;
        if !probe.status.success() {
            anyhow::bail!(
                "{} cannot import torch (pip install torch): {}",
                python.display(),
                String::from_utf8_lossy(&probe.stderr).trim()
            );
        }
        let script = match given {
            Some(p) if p.is_file() => p.to_path_buf(),
            Some(p) => anyhow::bail!("--reference {}: no such file", p.display()),
            None => find_script("torch_reference.py").or_else(|e| {
                [Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench"), PathBuf::from("../shared/bench")]
                    .iter()
                    .map(|d| d.join("torch_reference.py"))
                    .find(|p| p.is_file())
                    .ok_or_else(|| anyhow::anyhow!("{e}, nor in ../shared/bench (or pass --reference PATH)"))
            })?,
        };
        Ok(Self { python, script })
    }

    /// Milliseconds per step that the script prints (`name: value ms/step`) for these arguments.
    pub fn ms_per_step(&self, args: &[String]) -> anyhow::Result<f64> {
        let stdout = run_python(&self.python, &self.script, args)?;
        parse_ms_per_step(&stdout)
            .ok_or_else(|| anyhow::anyhow!("{} printed no `…: <ms> ms/step` line: {stdout:?}", self.script.display()))
    }
}

/// Whether `python` imports torch with `device` usable (`cpu`, or `cuda` when a GPU is visible).
pub fn torch_runs_on(python: &Path, device: &str) -> bool {
    let probe = format!("import torch, sys; sys.exit(0 if '{device}' == 'cpu' or torch.cuda.is_available() else 1)");
    Command::new(python).args(["-c", &probe]).output().is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_figures_are_read_from_their_recorded_output() {
        // Lines as torch_reference.py, c51_torch_step.py, torch_ops.py and torch_dt_step.py print them.
        let reference = "torch linear head b4096 d128 m64 N16: 2.43 ms/step\n";
        assert_eq!(parse_ms_per_step(reference), Some(2.43));
        let dt = "torch dt-shaped transformer b64x90 d128 L3: 148.2 ms/step\n";
        assert_eq!(parse_ms_per_step(dt), Some(148.2));
        assert_eq!(parse_ms_per_step("torch toy MLP+Fourier(12) batch 32: 95.1 us/step\n"), None);
        assert_eq!(parse_ms_per_step("no figure here\n"), None);

        assert_eq!(parse_c51_ms("c51 linear: 0.734 ms\n"), Some(0.734));
        assert_eq!(parse_c51_ms("failed"), None);

        let ops = parse_ops("matmul 4096x128x64: 0.1250 ms\nsoftmax [64, 90, 90]: 0.031 ms\n\n").unwrap();
        assert_eq!((ops["matmul 4096x128x64"], ops["softmax [64, 90, 90]"]), (0.125, 0.031));
        let e = parse_ops("matmul: 0.1 ms\nTraceback (most recent call last):\n").unwrap_err().to_string();
        assert!(e.contains("Traceback"), "{e}");

        assert_eq!(parse_dt_step("dt step: 12.5 ms\n"), Some(12.5));
        assert_eq!(parse_dt_step("dt step: n/a\n"), None);
    }

    #[test]
    fn a_missing_script_is_named_with_the_folders_tried() {
        let e = find_script("no-such-script.py").unwrap_err().to_string();
        assert!(e.contains("no-such-script.py") && e.contains("FRL_SCRIPTS"), "{e}");
    }
}
