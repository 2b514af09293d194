"""Reads a training run written by `frl train` with TensorBoard's own EventAccumulator, the way users will see it.

Usage: check_tensorboard.py FRL_BINARY

Collects a small Pendulum dataset and trains a tiny Decision Transformer with the given binary, then checks with the
`tensorboard` package:
  * scalars: train/loss at every multiple of log_every up to the last step, and its last value equal (to f32
    precision) to the final loss in summary.json; eval/return_mean at the last step equal to the summary's mean;
  * a histogram (weights/...) with counts adding up to the parameter's size;
  * a PNG image per probe window that decodes (Pillow) to the size the event says.
Then trains a small online C51 agent on CartPole-v1 (actors feeding the learner) and checks its learning curves:
online/episode_return, online/policy_lag, online/epsilon and train/loss against env steps (increasing, within the
budget), eval/return_mean at the final env step equal to the summary's mean, and the return-distribution images.
Then fine-tunes a tiny Decision Transformer online (ODT) and checks train/entropy (within (0, ln bins]),
train/temperature (falling while the entropy is above its target) and online/exploration_return.
Last, the online C51 job (deterministic, two env slots) with 1 and with 2 actors: its newest checkpoint and every
scalar but the wall-clock rates equal bit for bit (scripts/compare_runs.py).
Exits non-zero on the first mismatch.
"""

import io
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

STEPS, LOG_EVERY, PLOT_EVERY = 40, 10, 20

JOB = """
name = "tb-check"
dataset = "{data}"
runs_dir = "{runs}"
seed = 3
[dt]
layers = 1
embed_dim = 16
context = 5
max_episode_len = 200
bins = 16
head = {{ fourier = {{ frequencies = 4 }} }}
[train]
steps = {steps}
batch_size = 8
warmup_steps = 5
log_every = {log_every}
plot_every = {plot_every}
checkpoint_every = 20
probe_windows = 3
[eval]
episodes = 2
actors = 2
"""


ONLINE_JOB = """
name = "tb-online"
runs_dir = "{runs}"
seed = 1
agent = "dqn"
[dqn]
hidden = [32]
head = {{ fourier = {{ frequencies = 6 }} }}
atoms = 21
v_min = -20.0
v_max = 20.0
epsilon_decay_steps = 2000
[online]
env = "CartPole-v1"
env_steps = 4000
actors = 2
learning_starts = 500
updates_per_step = 0.25
broadcast_every = 20
[train]
batch_size = 32
log_every = 25
plot_every = 250
checkpoint_every = 500
probe_windows = 2
[eval]
episodes = 2
actors = 1
"""


ODT_JOB = """
name = "tb-odt"
runs_dir = "{runs}"
seed = 2
agent = "dt"
[dt]
layers = 1
embed_dim = 16
context = 5
bins = 16
max_episode_len = 200
entropy = {{ target = 1.0, init_temperature = 0.5 }}
[online]
env = "Pendulum-v1"
env_steps = 1200
actors = 2
learning_starts = 200
updates_per_step = 0.05
broadcast_every = 10
[train]
batch_size = 8
lr = 1e-3
warmup_steps = 0
log_every = 5
plot_every = 20
checkpoint_every = 50
[eval]
episodes = 1
actors = 1
"""


def check_curves(acc, tags, env_steps, what):
    """Each tag is a scalar curve of at least 2 points at increasing env steps within the budget."""
    for tag in tags:
        if tag not in acc.Tags()["scalars"]:
            fail(f"{what}: scalar {tag} missing; have {acc.Tags()['scalars']}")
        steps = [e.step for e in acc.Scalars(tag)]
        if steps != sorted(steps) or steps[-1] > env_steps or len(steps) < 2:
            fail(f"{what}: {tag} steps {steps} are not increasing env steps up to {env_steps}")


def train_online(frl, tmp, template, name):
    """Runs the online job `template` as `name` under tmp; returns its summary, env steps and loaded event files."""
    runs = tmp / f"{name}-runs"
    job = tmp / f"{name}.toml"
    job.write_text(template.format(runs=runs))
    subprocess.run([frl, "train", str(job), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    run = runs / f"tb-{name}"
    summary = json.loads((run / "summary.json").read_text())
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return summary, summary["online"]["env_steps"], acc


def check_odt(frl, tmp):
    """An online Decision Transformer run: its entropy, learned temperature and exploration return as curves."""
    _, env_steps, acc = train_online(frl, tmp, ODT_JOB, "odt")
    check_curves(acc, ["train/entropy", "train/temperature", "online/exploration_return", "online/episode_return"],
                 env_steps, "online DT run")
    entropy = [e.value for e in acc.Scalars("train/entropy")]
    if not all(0.0 < h <= math.log(16) + 1e-4 for h in entropy):
        fail(f"online DT run: entropies {entropy} outside (0, ln 16]")
    # the entropy of 16 bins starts near ln 16 > target 1.0, so the learned temperature falls from 0.5
    temps = [e.value for e in acc.Scalars("train/temperature")]
    if not (temps[0] <= 0.5 + 1e-6 and temps[-1] < temps[0]):
        fail(f"online DT run: temperature {temps[0]} → {temps[-1]} does not fall while entropy is above target")
    return len(acc.Tags()["scalars"])


def check_online(frl, tmp):
    summary, env_steps, acc = train_online(frl, tmp, ONLINE_JOB, "online")
    tags = acc.Tags()
    check_curves(acc, ["online/episode_return", "online/policy_lag", "online/epsilon", "online/env_steps_per_sec",
                       "online/updates_per_sec", "train/loss", "train/cross_entropy"], env_steps, "online run")
    eps = [e.value for e in acc.Scalars("online/epsilon")]
    if not all(a >= b for a, b in zip(eps, eps[1:])):
        fail(f"online/epsilon does not decay: {eps}")
    ret = acc.Scalars("eval/return_mean")
    if ret[-1].step != env_steps or abs(ret[-1].value - summary["eval"]["mean"]) > 1e-3 * abs(summary["eval"]["mean"]):
        fail(f"online run: eval/return_mean {ret[-1]} != summary {summary['eval']['mean']} at env step {env_steps}")
    images = [t for t in tags["images"] if t.startswith("action_pmf/")]
    if len(images) != 2 * 2:  # two probe samples × two actions
        fail(f"online run: expected 4 return-distribution images, got {images}")
    return len(tags["scalars"])


def check_repeat(frl, tmp):
    """The deterministic online job with 1 and 2 actors over 2 env slots: the same checkpoint and scalars."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import compare_runs

    dirs = []
    for actors in [1, 2]:
        runs = tmp / f"repeat{actors}-runs"
        job = tmp / f"repeat{actors}.toml"
        text = ONLINE_JOB.format(runs=runs).replace("actors = 2\n", f"actors = {actors}\nenvs = 2\n", 1)
        job.write_text(text.replace("[eval]\n", "[eval]\nevery = 1000\n"))
        subprocess.run([frl, "train", str(job), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        dirs.append(runs / "tb-online")
    a, b = dirs
    ca, cb = compare_runs.newest_checkpoint(a), compare_runs.newest_checkpoint(b)
    ta, tb = compare_runs.load_file(str(ca)), compare_runs.load_file(str(cb))
    if ca.name != cb.name or set(ta) != set(tb) or any(ta[k].tobytes() != tb[k].tobytes() for k in ta):
        fail(f"deterministic online run: checkpoints {ca} and {cb} differ between 1 and 2 actors")
    sa, sb = compare_runs.scalars(a), compare_runs.scalars(b)
    if sa != sb or "eval/return_mean" not in sa:
        diff = sorted(t for t in set(sa) | set(sb) if sa.get(t) != sb.get(t))
        fail(f"deterministic online run: scalars differ between 1 and 2 actors: {diff}")
    return len(ta), sum(len(v) for v in sa.values())


def fail(msg):
    print(f"check_tensorboard: FAIL: {msg}")
    sys.exit(1)


def main():
    frl = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, runs = tmp / "data", tmp / "runs"
        subprocess.run([frl, "collect", "--env", "Pendulum-v1", "--preset", "medium", "--episodes", "3",
                        "--out", str(data), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        job = tmp / "job.toml"
        job.write_text(JOB.format(data=data, runs=runs, steps=STEPS, log_every=LOG_EVERY, plot_every=PLOT_EVERY))
        subprocess.run([frl, "train", str(job), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        run = runs / "tb-check"
        summary = json.loads((run / "summary.json").read_text())

        acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
        acc.Reload()
        tags = acc.Tags()

        loss = acc.Scalars("train/loss")
        steps = [e.step for e in loss]
        want = list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
        if steps != want:
            fail(f"train/loss steps {steps}, expected {want}")
        if abs(loss[-1].value - summary["final_loss"]) > 1e-5 * max(1.0, abs(summary["final_loss"])):
            fail(f"last train/loss {loss[-1].value} != summary final_loss {summary['final_loss']}")
        for tag in ["train/lr", "train/grad_norm", "train/cross_entropy", "actions/pmf_smoothness"]:
            if tag not in tags["scalars"]:
                fail(f"scalar {tag} missing; have {tags['scalars']}")
        ret = acc.Scalars("eval/return_mean")
        if ret[-1].step != STEPS or abs(ret[-1].value - summary["eval"]["mean"]) > 1e-3 * abs(summary["eval"]["mean"]):
            fail(f"eval/return_mean {ret[-1]} does not match summary {summary['eval']['mean']} at step {STEPS}")

        hist_tags = [t for t in tags["histograms"] if t.startswith("weights/")]
        if not hist_tags:
            fail(f"no weight histograms; have {tags['histograms']}")
        h = acc.Histograms("weights/embed_state.Mlp.layers.0.weight")
        if [e.step for e in h] != [PLOT_EVERY, STEPS]:
            fail(f"histogram steps {[e.step for e in h]}")
        hv = h[-1].histogram_value
        if hv.num != 3 * 16 or sum(hv.bucket) != hv.num or not hv.min <= hv.max:
            fail(f"weights/embed_state.Mlp.layers.0.weight histogram: num {hv.num}, bucket sum {sum(hv.bucket)}")

        images = [t for t in tags["images"] if t.startswith("action_pmf/")]
        if len(images) != 3:
            fail(f"expected 3 PMF images (one per probe window), got {images}")
        for t in images:
            ev = acc.Images(t)
            if [e.step for e in ev] != [0, PLOT_EVERY, STEPS]:
                fail(f"{t} steps {[e.step for e in ev]}")
            img = Image.open(io.BytesIO(ev[-1].encoded_image_string))
            img.load()
            if img.size != (ev[-1].width, ev[-1].height) or img.format != "PNG":
                fail(f"{t}: decoded {img.format} {img.size}, event says {ev[-1].width}x{ev[-1].height}")
        online_tags = check_online(frl, tmp)
        odt_tags = check_odt(frl, tmp)
        tensors, points = check_repeat(frl, tmp)
        print(f"check_tensorboard: ok ({len(tags['scalars'])} scalar tags, {len(tags['histograms'])} histograms, "
              f"{len(images)} images; online run: {online_tags} scalar tags; online DT run: {odt_tags}; "
              f"deterministic online run with 1 and 2 actors: {tensors} tensors, {points} scalar points equal)")


if __name__ == "__main__":
    main()
