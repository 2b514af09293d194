#!/usr/bin/env python3
"""Runs every shell command of README.md and the guide (docs/src), as a reader would type them.

A fenced block (```sh / ```bash) whose first line is a comment starting with `# needs` (Python, a GPU) is checked for
syntax only: `bash -n` on the block, and its `python -m frl.ray` lines parsed by the launcher's own argument parser
(the `frl` lines of every block are parsed by the binary's parser in `cargo test`: `src/main.rs`). Every other command
runs, in order, in a scratch folder that sees the repository's configs, scripts and fixtures, with `frl` on PATH;
where a command trains or evaluates for minutes, QUICK gives the same command with quick settings. Commands run by
another test are listed in ELSEWHERE with that test, which must exist. Fails on a command that exits non-zero, on a
rewrite or an ELSEWHERE entry whose command is no longer in the docs, and on a new command with no way to run.

    python3 scripts/check_commands.py path/to/frl
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs" / "src").glob("*.md") if p.name != "history.md")
SHELLS = {"sh", "bash", "shell", "console"}

# Documented command -> the command run instead (quick settings); each must still be in the docs.
QUICK = {
    "frl forecast train configs/forecast.toml":
        "frl forecast train configs/forecast.toml --set train.steps=4 --set train.checkpoint_every=2000",
    "frl forecast eval --checkpoint runs/forecast/checkpoints/ckpt-00002000.safetensors "
    "--dataset forecast/tests/fixtures/datasets/m1_yearly --dataset forecast/tests/fixtures/datasets/us_employment":
        "frl forecast eval --checkpoint runs/forecast/checkpoints/ckpt-00000004.safetensors --samples 2 "
        "--dataset forecast/tests/fixtures/datasets/m1_yearly --dataset forecast/tests/fixtures/datasets/us_employment",
    "frl forecast predict --checkpoint runs/forecast/checkpoints/ckpt-00002000.safetensors --horizon 8 "
    "--csv forecast/tests/fixtures/datasets/fpp2_quarterly/series.csv --plots fans/":
        "frl forecast predict --checkpoint runs/forecast/checkpoints/ckpt-00000004.safetensors --horizon 8 --samples 2 "
        "--csv forecast/tests/fixtures/datasets/fpp2_quarterly/series.csv --plots fans/",
    "scripts/forecast_experiment.sh":
        "STEPS=2 SAMPLES=2 SEEDS=0 ONLY=fourier-N64-mixed OUT=$PWD/runs/forecast-table RESULTS=$PWD/results "
        "FRL=$(command -v frl) PYTHON=$CHECK_PYTHON scripts/forecast_experiment.sh",
}

# Documented command -> (file, test function) that runs it.
ELSEWHERE = {
    "cargo run --release -- demo": ("tests/cli.rs", "demo_runs_end_to_end_on_a_tiny_config_and_resumes"),
    "scripts/test.sh": (".ci/run", "scripts/test.sh"),
    "cargo run --release --example custom_head": ("scripts/test.sh", "cargo run --quiet --example custom_head"),
}

# What a successful command must leave behind, checked after it ran (relative to the scratch folder).
OUTPUTS = {
    "frl collect --config configs/collect-pendulum-medium.toml": ["data/pendulum-medium/metadata.json"],
    "frl forecast train configs/forecast.toml": ["runs/forecast/checkpoints/ckpt-00000004.safetensors"],
    "frl forecast predict --checkpoint runs/forecast/checkpoints/ckpt-00002000.safetensors --horizon 8 "
    "--csv forecast/tests/fixtures/datasets/fpp2_quarterly/series.csv --plots fans/": ["forecast.csv", "fans/qgas.png"],
    "scripts/forecast_experiment.sh": ["results/forecast-fourier-N64-mixed-seed0/eval.json"],
}


def blocks(path):
    """Fenced shell blocks of a Markdown file: (first line number, lines)."""
    out, lang, start, cur = [], None, 0, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)", line)
        if fence and lang is None:
            lang, start, cur = fence.group(1), n + 1, []
        elif fence:
            if lang in SHELLS:
                out.append((start, cur))
            lang = None
        elif lang is not None:
            cur.append(line.strip())
    return out


def commands(lines):
    """Command lines of a block: continuations joined, comments and blank lines dropped, spaces normalised."""
    text = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            # Words are re-quoted only where they hold spaces or quotes, so redirections and `$VAR`s stay shell.
            out.append(" ".join(shlex.quote(w) if any(ch in w for ch in " \"'{}") else w for w in words))
    return out


def fail(msg):
    print(f"check_commands: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: check_commands.py path/to/frl")
    frl = Path(sys.argv[1]).resolve()
    found, ran, checked = set(), 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        work, bin_dir = Path(tmp) / "work", Path(tmp) / "bin"
        work.mkdir()
        bin_dir.mkdir()
        (bin_dir / "frl").symlink_to(frl)
        for name in ["configs", "scripts", "forecast", "dataset"]:
            (work / name).symlink_to(ROOT / name)
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", CHECK_PYTHON=sys.executable)
        for doc in DOCS:
            for start, lines in blocks(doc):
                where = f"{doc.relative_to(ROOT)}:{start}"
                cmds = commands(lines)
                if lines and lines[0].startswith("# needs"):
                    r = subprocess.run(["bash", "-n"], input="\n".join(lines), text=True, capture_output=True)
                    if r.returncode != 0:
                        fail(f"{where}: not valid shell: {r.stderr.strip()}")
                    for c in cmds:
                        found.add(c)
                        words = shlex.split(c)
                        if words[:3] == ["python", "-m", "frl.ray"]:
                            from frl.ray import parser
                            try:
                                parser().parse_args(words[3:])
                            except SystemExit:
                                fail(f"{where}: `{c}` does not parse as the launcher's arguments")
                        checked += 1
                    continue
                for c in cmds:
                    found.add(c)
                    if c in ELSEWHERE:
                        file, test = ELSEWHERE[c]
                        if test not in (ROOT / file).read_text():
                            fail(f"{where}: `{c}` is said to run in {file} ({test}), which no longer has it")
                        continue
                    run = QUICK.get(c, c)
                    print(f"$ {run}", flush=True)
                    r = subprocess.run(["bash", "-euo", "pipefail", "-c", run], cwd=work, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                    if r.returncode != 0:
                        fail(f"{where}: `{run}` exited {r.returncode}:\n{r.stdout[-3000:]}")
                    for out in OUTPUTS.get(c, []):
                        if not (work / out).exists():
                            fail(f"{where}: `{run}` left no {out}")
                    ran += 1
        for c in list(QUICK) + list(ELSEWHERE) + list(OUTPUTS):
            if c not in found:
                fail(f"`{c}` is in this script's tables but in no documented block (update the tables)")
        shutil.rmtree(work / "runs", ignore_errors=True)
    print(f"check_commands: {ran} commands ran, {checked} checked for syntax, {len(ELSEWHERE)} run by other tests")


if __name__ == "__main__":
    main()
