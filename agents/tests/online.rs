//! DQN / C51 and the live actor → learner loop: the C51 projection against a hand-computed case and against the
//! paper's Algorithm 1, a short online run (versions reach the actors, the update ratio holds, the recorded episodes
//! read back), resume of an online run, and the errors of bad online jobs.

mod common;

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use common::{no_stop, quiet, serial};
use frl_agents as agents;
use frl_agents::dqn::{Support, project};
use frl_dataset::dataset::Dataset;
use frl_learner::TrainJob;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn device() -> Device {
    Device::flex()
}

fn tensor2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), &device())
}

fn tensor1(v: Vec<f32>) -> Tensor<1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), &device())
}

fn host(t: Tensor<2>) -> Vec<f32> {
    frl_heads::head::to_host(t)
}

#[test]
fn c51_projection_matches_a_hand_computed_case() {
    // Three atoms on [-3, 3]: z = (-2, 0, 2), Δz = 2.
    let support = Support::new(-3.0, 3.0, 3);
    assert_eq!(support.atoms, vec![-2.0, 0.0, 2.0]);
    let probs = tensor2(vec![0.2, 0.5, 0.3, 0.2, 0.5, 0.3, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0], [3, 3]);
    // Row 0: r = 1, γ = 0.5 → Tz = (0, 1, 2): 0.2 to z1; 0.5 halfway between z1 and z2; 0.3 to z2.
    // Row 1: terminal with r = -5 → every atom lands at -5, clamped to z0.
    // Row 2: r = 0.5, γ = 1 → Tz = (-1.5, 0.5, 2.5 → 2): 3/4 and 1/4 of 1/3 to (z0, z1), 3/4 and 1/4 to (z1, z2).
    let m = host(project(probs, tensor1(vec![1.0, -5.0, 0.5]), tensor1(vec![0.5, 0.0, 1.0]), &support));
    let want = [0.0, 0.45, 0.55, 1.0, 0.0, 0.0, 0.25, 1.0 / 3.0, 5.0 / 12.0];
    for (i, (g, w)) in m.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-6, "entry {i}: {g} vs {w} (all: {m:?})");
    }
    // With a margin the bins cover [-3, 3] (atoms -2.25, -0.75, 0.75, 2.25) while targets clamp to [v_min, v_max] =
    // [-2, 2]: a terminal reward of 5 lands at 2, which splits 1/6 : 5/6 between 0.75 and 2.25 (mean 2 exactly).
    let margin = Support::with_margin(-2.0, 2.0, 4, 0.25);
    assert_eq!((margin.atoms.clone(), margin.clamp), (vec![-2.25, -0.75, 0.75, 2.25], (-2.0, 2.0)));
    let m = host(project(tensor2(vec![0.25; 4], [1, 4]), tensor1(vec![5.0]), tensor1(vec![0.0]), &margin));
    for (i, (g, w)) in m.iter().zip([0.0, 0.0, 1.0 / 6.0, 5.0 / 6.0]).enumerate() {
        assert!((g - w).abs() < 1e-6, "margin, entry {i}: {g} vs {w} (all: {m:?})");
    }
}

/// Algorithm 1 of Bellemare, Dabney & Munos (2017) on the host, with the usual fix for `b` on an atom (`l = u`).
fn algorithm_1(p: &[f32], r: f32, d: f32, z: &[f32], dz: f32) -> Vec<f32> {
    let n = z.len();
    let mut m = vec![0f32; n];
    for j in 0..n {
        let tz = (r + d * z[j]).clamp(z[0], z[n - 1]);
        let b = (tz - z[0]) / dz;
        let (l, u) = (b.floor() as usize, b.ceil() as usize);
        if l == u {
            m[l] += p[j];
        } else {
            m[l] += p[j] * (u as f32 - b);
            m[u] += p[j] * (b - l as f32);
        }
    }
    m
}

#[test]
fn c51_projection_equals_algorithm_1_of_the_paper_on_random_cases() {
    let mut rng = StdRng::seed_from_u64(5);
    let support = Support::new(-10.0, 10.0, 21);
    let (b, n) = (64, 21);
    let mut p = vec![0f32; b * n];
    for row in p.chunks_mut(n) {
        row.iter_mut().for_each(|x| *x = rng.random::<f32>().powi(2));
        let s: f32 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= s);
    }
    let r: Vec<f32> = (0..b).map(|_| rng.random_range(-4.0..4.0)).collect();
    let d: Vec<f32> = (0..b).map(|i| if i % 7 == 0 { 0.0 } else { rng.random_range(0.5..1.0) }).collect();
    let m = host(project(tensor2(p.clone(), [b, n]), tensor1(r.clone()), tensor1(d.clone()), &support));
    for i in 0..b {
        let want = algorithm_1(&p[i * n..(i + 1) * n], r[i], d[i], &support.atoms, support.delta() as f32);
        let got = &m[i * n..(i + 1) * n];
        let sum: f32 = got.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {i} sums to {sum}");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-5, "row {i} atom {k}: {g} vs Algorithm 1's {w}");
        }
    }
}

/// A short online CartPole job: `head` is the `[dqn]` head line (or none for scalar DQN).
fn online_job(dir: &Path, name: &str, head: Option<&str>, env_steps: u64) -> TrainJob {
    let head = head.map(|h| format!("head = {h}\n")).unwrap_or_default();
    let text = format!(
        "name = \"{name}\"\nruns_dir = \"{}\"\nseed = 4\nagent = \"dqn\"\n[dqn]\nhidden = [32]\n{head}atoms = 21\n\
         v_min = -20.0\nv_max = 20.0\ntarget_update_every = 50\nepsilon_decay_steps = 2000\n\
         [online]\nenv = \"CartPole-v1\"\nenv_steps = {env_steps}\nactors = 2\nreplay_capacity = 2000\n\
         learning_starts = 300\nupdates_per_step = 0.25\nbroadcast_every = 20\nrecord = true\n\
         [train]\nbatch_size = 32\nlr = 1e-3\nwarmup_steps = 0\nfinal_lr_fraction = 1.0\nlog_every = 20\n\
         plot_every = 200\ncheckpoint_every = 100\n[train.optimizer]\nweight_decay = 0.0\ngrad_clip = 10.0\n\
         [eval]\nepisodes = 2\nactors = 1\n",
        dir.join("runs").display()
    );
    let job = TrainJob::parse(&text).unwrap();
    agents::validate(&job).unwrap();
    job
}

#[test]
fn an_online_run_trains_at_its_ratio_broadcasts_versions_and_records_its_episodes() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    for (name, head) in
        [("c51", Some("\"linear\"")), ("fourier", Some("{ fourier = { frequencies = 6 } }")), ("dqn", None)]
    {
        let job = online_job(dir.path(), name, head, 3000);
        let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
        let o = s.online.clone().expect("an online summary");
        assert!(o.env_steps >= 3000, "{name}: {o:?}");
        assert!(s.final_loss.is_finite() && s.eval.is_some(), "{name}: {s:?}");
        // Throttled: the updates keep the ratio up to the episodes that can wait in the channel or be in flight
        // (2 actors, a channel of 4 batches, CartPole episodes of at most 500 steps).
        let online = job.online.as_ref().unwrap();
        let due = online.updates_due(o.env_steps);
        let slack = online.updates_due(online.learning_starts + 6 * 500);
        assert!(
            s.steps + slack >= due && s.steps <= due,
            "{name}: {} updates, {due} due after {} env steps",
            s.steps,
            o.env_steps
        );
        // Every episode the learner received is in the recorded dataset, and later ones were acted by newer
        // policies: the weights reached the actors.
        let rec = Dataset::open(&s.run_dir.join("episodes")).unwrap();
        // Throttled DQN actors send one update's steps at a time: the episode each of the 2 actors is running at the
        // end (at most 500 steps) is counted but not recorded.
        assert_eq!(rec.episodes.episodes() as u64, o.episodes, "{name}");
        let recorded = rec.episodes.steps() as u64;
        assert!(recorded <= o.env_steps && recorded + 2 * 500 >= o.env_steps, "{name}: {recorded} of {}", o.env_steps);
        let versions: Vec<u64> = rec.episodes.tags.iter().map(|t| t.policy_version).collect();
        let broadcasts = s.steps / 20;
        let quarter = versions.len() / 4;
        let (early, late) = (versions[..quarter].iter().max().unwrap(), versions[3 * quarter..].iter().max().unwrap());
        assert!(late > early && *late >= 1, "{name}: versions {early} early, {late} late ({broadcasts} broadcasts)");
        assert!(versions.iter().all(|&v| v <= broadcasts), "{name}: a version beyond the {broadcasts} broadcast");
        assert_eq!(versions[0], 0, "{name}");
        // ε-greedy is Markov: actors take new weights between steps, so episodes span versions (recorded per step,
        // never going back, starting at the episode's tag).
        let mut spanning = 0;
        for ep in rec.episodes.iter() {
            assert_eq!(ep.versions.len(), ep.len(), "{name}");
            assert_eq!(ep.versions[0], ep.tag.policy_version, "{name}");
            assert!(ep.versions.windows(2).all(|w| w[0] <= w[1]), "{name}: {:?}", ep.versions);
            spanning += usize::from(ep.versions[0] != *ep.versions.last().unwrap());
        }
        assert!(spanning > 0, "{name}: no episode took a new version while it ran");
        assert!(o.mean_policy_lag.is_finite() && o.mean_policy_lag >= 0.0, "{name}: {o:?}");
        // The checkpoint names the agent and turns into a policy.
        let ckpt = frl_learner::checkpoint::list(&s.run_dir.join("checkpoints")).last().unwrap().1.clone();
        let loaded = agents::load_policy(&ckpt, &device(), &Default::default()).unwrap();
        assert_eq!((loaded.meta.agent.as_str(), loaded.meta.online.as_ref().unwrap().env_steps), ("dqn", o.env_steps));
    }
}

#[test]
fn a_resumed_online_run_continues_its_counts_and_refills_its_replay_from_the_recording() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let first =
        agents::train(&online_job(dir.path(), "resume", Some("\"linear\""), 2000), &quiet(false), no_stop()).unwrap();
    let o1 = first.online.clone().unwrap();
    // Without --resume the run refuses to start over its checkpoints.
    let again = online_job(dir.path(), "resume", Some("\"linear\""), 4000);
    let err = agents::train(&again, &quiet(false), no_stop()).unwrap_err().to_string();
    assert!(err.contains("--resume"), "{err}");
    let second = agents::train(&again, &quiet(true), no_stop()).unwrap();
    let o2 = second.online.clone().unwrap();
    assert!(o2.env_steps >= 4000 && o2.episodes > o1.episodes, "{o1:?} then {o2:?}");
    assert!(second.steps > first.steps, "{} then {} updates", first.steps, second.steps);
    // The replay came back from the recording, so updates resumed at once: the ratio holds over the whole run.
    let online = again.online.as_ref().unwrap();
    let slack = online.updates_due(online.learning_starts + 6 * 500);
    assert!(
        second.steps + slack >= online.updates_due(o2.env_steps),
        "{} updates after {} env steps",
        second.steps,
        o2.env_steps
    );
    // Every finished episode is recorded once; the ones running when each run ended (one per actor, ≤ 500 steps
    // each: 2 runs × 2 actors) are not.
    let rec = Dataset::open(&second.run_dir.join("episodes")).unwrap();
    let recorded = rec.episodes.steps() as u64;
    assert!(recorded <= o2.env_steps && recorded + 4 * 500 >= o2.env_steps, "{recorded} of {}", o2.env_steps);
    assert_eq!(rec.episodes.episodes() as u64, o2.episodes);
    // A job with another agent config does not resume it.
    let mut other = again.clone();
    other.set_agent_field("atoms", toml::Value::Integer(11));
    let err = agents::train(&other, &quiet(true), no_stop()).unwrap_err().to_string();
    assert!(err.contains("another [dqn] section"), "{err}");
}

#[test]
fn bad_online_jobs_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = online_job(dir.path(), "bad", None, 100);
    let check = |job: &TrainJob, want: &str| {
        let err = format!("{:#}", agents::validate(job).unwrap_err());
        assert!(err.contains(want), "{want:?} not in {err:?}");
    };
    let mut j = base.clone();
    j.online.as_mut().unwrap().env.clear();
    check(&j, "online.env");
    let mut j = base.clone();
    j.online.as_mut().unwrap().actors = 0;
    check(&j, "online.actors");
    let mut j = base.clone();
    j.online.as_mut().unwrap().updates_per_step = f64::NAN;
    check(&j, "online.updates_per_step");
    let mut j = base.clone();
    j.online.as_mut().unwrap().fragment_steps = Some(0);
    check(&j, "online.fragment_steps");
    let mut j = base.clone();
    j.agent = "bc".into();
    check(&j, "does not train online");
    let mut j = base.clone();
    j.set_agent_field("v_max", toml::Value::Float(-50.0));
    j.set_agent_field("head", toml::Value::String("linear".into()));
    check(&j, "v_min");
    let mut j = base.clone();
    j.online = None;
    check(&j, "`dataset` is required");
    // A continuous-action env is refused when the agent is built, naming the env.
    let mut j = base.clone();
    j.online.as_mut().unwrap().env = "Pendulum-v1".into();
    let err = format!("{:#}", agents::train(&j, &quiet(false), no_stop()).unwrap_err());
    assert!(err.contains("discrete action space") && err.contains("Pendulum-v1"), "{err}");
}

#[test]
fn a_fixed_behaviour_policy_acts_while_the_agent_learns_off_policy() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut job = online_job(dir.path(), "behaviour", Some("\"linear\""), 4000);
    job.online.as_mut().unwrap().behaviour = Some(frl_envs::BehaviourSpec::Random);
    let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
    let rec = Dataset::open(&s.run_dir.join("episodes")).unwrap();
    // Every episode was acted by the random policy (version 0: nothing broadcast), while the agent trained.
    assert!(rec.episodes.tags.iter().all(|t| t.policy_version == 0));
    assert!(s.steps > 0 && s.final_loss.is_finite(), "{s:?}");
    // Random CartPole episodes last about 22 steps; a learned policy's would grow.
    let mean_len = rec.episodes.steps() as f64 / rec.episodes.episodes() as f64;
    assert!(mean_len < 40.0, "mean episode length {mean_len}");
}

#[test]
fn free_running_actors_stop_at_the_budget_however_fast_they_are() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    // Random actors that never wait produce episodes far faster than the learner records them; the run still ends
    // at its budget with every received episode recorded (before, the learner kept taking episodes and ran out of
    // memory).
    let mut job = online_job(dir.path(), "free", Some("\"linear\""), 200_000);
    let online = job.online.as_mut().unwrap();
    online.behaviour = Some(frl_envs::BehaviourSpec::Random);
    online.throttle = false;
    online.deterministic = false;
    let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
    let o = s.online.clone().unwrap();
    assert!(o.env_steps >= 200_000 && o.env_steps < 200_000 + 50_000, "{o:?}");
    let rec = Dataset::open(&s.run_dir.join("episodes")).unwrap();
    assert_eq!(rec.episodes.steps() as u64, o.env_steps);
}

#[test]
fn keep_best_keeps_the_parameters_of_the_best_evaluation() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut job = online_job(dir.path(), "best", Some("\"linear\""), 4000);
    job.eval.every = 500;
    job.eval.keep_best = true;
    let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
    let ckpts = s.run_dir.join("checkpoints");
    let best = ckpts.join(frl_learner::BEST_FILE);
    let loaded = agents::load_policy(&best, &device(), &Default::default()).unwrap();
    let kept = loaded.meta.eval_return.expect("a best checkpoint says its evaluation return");
    let last = s.eval.as_ref().unwrap().mean;
    assert!(kept >= last, "the best kept ({kept}) is below the final evaluation ({last})");
    let at = loaded.meta.online.as_ref().unwrap().env_steps;
    assert!(at <= s.online.as_ref().unwrap().env_steps, "kept at {at} env steps");
    // Evaluated again with the job's evaluation settings, the kept parameters give exactly the return they were
    // kept for: they are the ones that were judged, not the newest.
    let e = &job.eval;
    let again = frl_learner::evaluate("CartPole-v1", loaded.factory, e.episodes, e.actors, e.seed, no_stop()).unwrap();
    assert_eq!(again.mean, kept, "kept at {at} env steps");
    // It is not one of the run's checkpoints (resume and `online.init` take the newest of those).
    assert!(frl_learner::checkpoint::list(&ckpts).iter().all(|(_, p)| p != &best));
}

#[test]
fn episodes_sent_in_fragments_are_learned_from_and_recorded_whole() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    // One random actor: episode i depends only on (seed, i), and the recording is in index order.
    let run = |name: &str, fragment_steps: Option<usize>| {
        let mut job = online_job(dir.path(), name, Some("\"linear\""), 3000);
        let online = job.online.as_mut().unwrap();
        online.behaviour = Some(frl_envs::BehaviourSpec::Random);
        online.actors = 1;
        online.fragment_steps = fragment_steps;
        let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
        let rec = Dataset::open(&s.run_dir.join("episodes")).unwrap();
        (s, rec.episodes)
    };
    let (whole_run, whole) = run("whole", None);
    let (frag_run, joined) = run("fragments", Some(5));
    // The recording holds whole episodes, equal to those sent whole (the run may stop inside the last one).
    assert!(joined.episodes() > 50 && joined.episodes() <= whole.episodes(), "{} episodes", joined.episodes());
    for (a, b) in joined.iter().zip(whole.iter()) {
        assert!(a.ended(), "episode {} recorded unfinished", a.tag.index);
        assert_eq!((a.tag, a.observations, a.actions, a.rewards), (b.tag, b.observations, b.actions, b.rewards));
    }
    // Env steps count per fragment: the budget is met within one fragment, and the throttled ratio holds to within
    // the fragments that fit in the channel, not whole episodes.
    let o = frag_run.online.clone().unwrap();
    assert!(o.env_steps >= 3000 && o.env_steps < 3000 + 5, "{o:?}");
    let job = online_job(dir.path(), "fragments", None, 3000);
    let online = job.online.as_ref().unwrap();
    let (due, slack) = (online.updates_due(o.env_steps), online.updates_due(online.learning_starts + 6 * 5));
    assert!(frag_run.steps + slack >= due && frag_run.steps <= due, "{} updates, {due} due", frag_run.steps);
    assert!(frag_run.final_loss.is_finite() && whole_run.final_loss.is_finite(), "{frag_run:?}");
}

/// The newest checkpoint of a run: its parameters and optimiser moments by name, bits of every value.
fn checkpoint_bits(run_dir: &Path) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let path = frl_learner::checkpoint::list(&run_dir.join("checkpoints")).last().unwrap().1.clone();
    let ckpt = frl_learner::checkpoint::load(&path).unwrap();
    let mut all: Vec<_> = ckpt
        .model
        .values()
        .chain(ckpt.adam.values())
        .map(|t| (t.name.clone(), t.shape.clone(), t.data.iter().map(|v| v.to_bits()).collect()))
        .collect();
    all.sort();
    all
}

/// A run's TensorBoard scalars but the wall-clock rates (`*_per_sec`), by tag and step (evaluations finish beside
/// training, so where their scalars fall among the others in the file depends on timing).
fn scalars_but_rates(run_dir: &Path) -> Vec<(String, i64, u32)> {
    let mut all: Vec<_> = frl_tensorboard::read_scalars(run_dir)
        .unwrap()
        .into_iter()
        .filter(|s| !s.tag.ends_with("_per_sec"))
        .map(|s| (s.tag, s.step, s.value.to_bits()))
        .collect();
    all.sort();
    all
}

#[test]
fn a_deterministic_run_is_the_same_with_one_or_two_actors() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (name, actors) in [("one", 1), ("two", 2), ("two-again", 2)] {
        let mut job = online_job(dir.path(), name, Some("\"linear\""), 3000);
        let online = job.online.as_mut().unwrap();
        online.actors = actors;
        online.envs = Some(2);
        online.broadcast_every = 1;
        job.eval.every = 1000;
        agents::validate(&job).unwrap();
        let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
        let o = s.online.clone().unwrap();
        assert!(o.deterministic && o.env_steps >= 3000, "{name}: {o:?}");
        let rec = Dataset::open(&s.run_dir.join("episodes")).unwrap();
        runs.push((name, s.steps, checkpoint_bits(&s.run_dir), scalars_but_rates(&s.run_dir), rec.episodes));
    }
    let (_, steps, params, scalars, episodes) = &runs[0];
    assert!(*steps > 500 && scalars.iter().any(|s| s.0 == "eval/return_mean"), "{steps} updates, {scalars:?}");
    for (name, s, p, sc, eps) in &runs[1..] {
        assert_eq!(s, steps, "{name}: updates");
        assert_eq!(p.len(), params.len(), "{name}");
        for (a, b) in p.iter().zip(params) {
            assert!(a == b, "{name}: {} differs from the one-actor run's", a.0);
        }
        assert_eq!(sc.len(), scalars.len(), "{name}: scalars logged");
        for (a, b) in sc.iter().zip(scalars) {
            assert_eq!(a, b, "{name}: a scalar differs from the one-actor run's");
        }
        assert_eq!(eps.steps(), episodes.steps(), "{name}: recorded steps");
        assert_eq!(eps.tags, episodes.tags, "{name}: recorded episodes");
        assert_eq!(eps.actions, episodes.actions, "{name}: recorded actions");
        assert_eq!(eps.versions, episodes.versions, "{name}: recorded policy versions");
    }
}

#[test]
fn an_asynchronous_run_says_it_does_not_repeat() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut job = online_job(dir.path(), "async", None, 1500);
    job.online.as_mut().unwrap().deterministic = false;
    let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
    assert!(!s.online.unwrap().deterministic);
    // Free-running actors cannot follow the deterministic schedule: the job says which field to change.
    let mut free = online_job(dir.path(), "free", None, 1500);
    free.online.as_mut().unwrap().throttle = false;
    let err = agents::validate(&free).unwrap_err().to_string();
    assert!(err.contains("online.deterministic"), "{err}");
}
