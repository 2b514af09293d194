//! Episode datasets: exact round trips, appending, resuming, and clear errors for damaged files.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use frl_dataset::dataset::{Collection, Dataset, DatasetWriter};
use frl_dataset::episodes::EpisodeBatch;
use frl_envs::BehaviourSpec;
use frl_rollout::collect::{CollectJob, collect};

fn job(env: &str, episodes: u64, out: &Path) -> CollectJob {
    let mut j = CollectJob::new(env, episodes, out);
    j.policy = Some(BehaviourSpec::Expert { noise: 0.3 });
    j.shard_steps = 1000;
    j
}

fn run(j: &CollectJob) -> frl_rollout::collect::CollectSummary {
    collect(j, Arc::new(AtomicBool::new(false)), false).unwrap()
}

/// Episodes generated directly, without the pool.
fn synthetic(obs_dim: usize, act_dim: usize, episodes: usize, discrete: bool) -> EpisodeBatch {
    let mut b = EpisodeBatch::new(obs_dim, act_dim);
    let mut x = 0.5f32;
    let mut next = || {
        x = (x * 3.7 + 0.123).fract();
        x
    };
    for e in 0..episodes {
        let obs: Vec<f32> = (0..obs_dim).map(|_| next()).collect();
        b.begin(&obs);
        let len = 1 + e % 7;
        for t in 0..len {
            let action = if discrete {
                frl_envs::Action::Discrete((next() * 3.0) as usize)
            } else {
                frl_envs::Action::Continuous((0..act_dim).map(|_| next() - 0.5).collect())
            };
            let obs: Vec<f32> = (0..obs_dim).map(|_| next()).collect();
            b.record(&action, next() as f64, &obs, t + 1 == len && e % 2 == 0, t + 1 == len && e % 2 == 1);
        }
        b.finish(frl_dataset::episodes::EpisodeTag { index: e as u64, seed: 1 << 40 | e as u64, policy_version: 3 });
    }
    b
}

fn write(dir: &Path, batch: &EpisodeBatch, obs: frl_envs::Space, act: frl_envs::Space, shard_steps: usize) {
    let c = Collection { policy: "test".into(), seed: 0, first_episode: 0, episodes: 0, requested: 0 };
    let mut w = DatasetWriter::open(dir, "Test-v0", &obs, &act, c, shard_steps, false).unwrap();
    for ep in batch.iter() {
        w.write(&ep).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn round_trip_is_exact_for_discrete_and_continuous_actions() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [(true, frl_envs::Space::Discrete(3)), (false, frl_envs::Space::vector(&[-0.5, -0.5], &[0.5, 0.5]))];
    for (i, (discrete, act)) in cases.into_iter().enumerate() {
        let batch = synthetic(3, act.flat_dim(), 50, discrete);
        let dir = tmp.path().join(format!("d{i}"));
        write(&dir, &batch, frl_envs::Space::vector(&[0.0; 3], &[1.0; 3]), act, 40);
        let d = Dataset::open(&dir).unwrap();
        assert!(d.metadata.shards.len() > 3, "expected several shards");
        assert_eq!(d.episodes, batch);
    }
}

#[test]
fn damaged_datasets_give_errors_that_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    write(
        &dir,
        &synthetic(2, 1, 30, true),
        frl_envs::Space::vector(&[0.0; 2], &[1.0; 2]),
        frl_envs::Space::Discrete(3),
        30,
    );
    let shard = dir.join("shard-00001.safetensors");
    let original = fs::read(&shard).unwrap();
    let err = |d: &Path| Dataset::open(d).expect_err("must fail").to_string();

    fs::write(&shard, &original[..original.len() - 10]).unwrap();
    let e = err(&dir);
    assert!(e.contains("shard-00001.safetensors") && e.contains("truncated"), "{e}");

    let mut flipped = original.clone();
    let n = flipped.len();
    flipped[n - 3] ^= 0x40;
    fs::write(&shard, &flipped).unwrap();
    let e = err(&dir);
    assert!(e.contains("shard-00001.safetensors") && e.contains("corrupted"), "{e}");

    fs::remove_file(&shard).unwrap();
    let e = err(&dir);
    assert!(e.contains("shard-00001.safetensors"), "{e}");
    fs::write(&shard, &original).unwrap();
    Dataset::open(&dir).unwrap();

    let meta = dir.join("metadata.json");
    let text = fs::read_to_string(&meta).unwrap();
    let version = format!("\"format_version\": {}", frl_dataset::dataset::FORMAT_VERSION);
    assert!(text.contains(&version), "{text}");
    fs::write(&meta, text.replace(&version, "\"format_version\": 99")).unwrap();
    let e = err(&dir);
    assert!(e.contains("metadata.json") && e.contains("format_version 99"), "{e}");
    fs::write(&meta, &text[..text.len() / 2]).unwrap();
    let e = err(&dir);
    assert!(e.contains("metadata.json") && e.contains("not valid"), "{e}");
    let e = err(&tmp.path().join("missing"));
    assert!(e.contains("missing") && e.contains("no such dataset"), "{e}");
}

#[test]
fn a_shard_not_in_the_metadata_is_ignored() {
    // What a run killed between writing a shard and updating the metadata leaves behind.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let batch = synthetic(2, 1, 30, true);
    write(&dir, &batch, frl_envs::Space::vector(&[0.0; 2], &[1.0; 2]), frl_envs::Space::Discrete(3), 30);
    let shards = fs::read_dir(&dir).unwrap().count() - 1;
    fs::copy(dir.join("shard-00000.safetensors"), dir.join(format!("shard-{shards:05}.safetensors"))).unwrap();
    fs::write(dir.join(".shard-99999.safetensors.tmp-1"), b"partial").unwrap();
    assert_eq!(Dataset::open(&dir).unwrap().episodes, batch);
}

#[test]
fn collect_is_reproducible_whatever_the_number_of_actors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut datasets = Vec::new();
    for actors in [1, 3] {
        let mut j = job("Pendulum-v1", 40, &tmp.path().join(format!("a{actors}")));
        j.actors = actors;
        let s = run(&j);
        assert_eq!(s.episodes, 40);
        assert!(!s.interrupted);
        let d = Dataset::open(&j.out).unwrap();
        assert_eq!(d.metadata.episodes, 40);
        assert_eq!(d.metadata.steps, 40 * 200);
        assert!((d.episodes.iter().map(|e| e.episode_return()).sum::<f64>() / 40.0 - s.mean_return).abs() < 1e-6);
        datasets.push(d.episodes);
    }
    assert_eq!(datasets[0], datasets[1]);
    let indices: Vec<u64> = datasets[0].tags.iter().map(|t| t.index).collect();
    assert_eq!(indices, (0..40).collect::<Vec<_>>());
}

#[test]
fn append_adds_a_collection_and_refuses_other_envs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    run(&job("CartPole-v1", 20, &out));
    let mut again = job("CartPole-v1", 10, &out);
    let e = collect(&again, Arc::new(AtomicBool::new(false)), false).unwrap_err().to_string();
    assert!(e.contains("--append"), "{e}");
    again.append = true;
    again.policy = Some(BehaviourSpec::Random);
    run(&again);
    let d = Dataset::open(&out).unwrap();
    assert_eq!(d.metadata.episodes, 30);
    assert_eq!(d.metadata.collections.len(), 2);
    assert_eq!(d.metadata.collections[1].first_episode, 20);
    assert_eq!(d.metadata.collections[1].policy, "random");
    let mut other = job("Pendulum-v1", 5, &out);
    other.append = true;
    let e = collect(&other, Arc::new(AtomicBool::new(false)), false).unwrap_err().to_string();
    assert!(e.contains("cannot append") && e.contains("CartPole-v1"), "{e}");
    assert_eq!(Dataset::open(&out).unwrap().metadata.episodes, 30);
}

#[test]
fn a_stopped_collection_resumes_to_the_same_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 3000;
    let mut full = job("Pendulum-v1", n, &tmp.path().join("full"));
    full.shard_steps = 20_000;
    run(&full);
    // Stop a run of the same job once its first shards are on disk, as Ctrl-C does.
    let mut part = full.clone();
    part.out = tmp.path().join("part");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, meta) = (stop.clone(), part.out.join("metadata.json"));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let text = fs::read_to_string(&meta).unwrap_or_default();
                if text.contains("shard-00001") {
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    let s = collect(&part, stop.clone(), false).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.join().unwrap();
    assert!(s.interrupted && s.episodes >= 200 && s.episodes < n, "{s:?}");
    let resumed = run(&part);
    assert_eq!(resumed.resumed_from, s.episodes);
    assert_eq!(resumed.episodes, n - s.episodes);
    let (a, b) = (Dataset::open(&full.out).unwrap(), Dataset::open(&part.out).unwrap());
    assert_eq!(a.episodes, b.episodes);
    assert_eq!(b.metadata.collections.len(), 1);
    assert_eq!(run(&part).episodes, 0, "a complete job has nothing left to do");
}

#[test]
fn bad_jobs_fail_before_touching_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let mut j = job("Nope-v0", 5, &out);
    assert!(collect(&j, Arc::new(AtomicBool::new(false)), false).unwrap_err().to_string().contains("Nope-v0"));
    j.env = "CartPole-v1".into();
    j.policy = Some(BehaviourSpec::Expert { noise: 2.0 });
    let e = format!("{:#}", collect(&j, Arc::new(AtomicBool::new(false)), false).unwrap_err());
    assert!(e.contains("noise 2"), "{e}");
    assert!(!out.exists());
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("notes.txt"), "mine").unwrap();
    j.policy = None;
    let e = collect(&j, Arc::new(AtomicBool::new(false)), false).unwrap_err().to_string();
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn shipped_collect_jobs_parse() {
    let dir =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")).join("../configs");
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("collect-") {
            let job: CollectJob =
                toml::from_str(&fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            job.behaviour().unwrap();
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn minari_arrow_datasets_import_exactly() {
    let fixtures = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../dataset/tests/fixtures/minari");
    let expected: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixtures.join("expected.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for name in ["pendulum", "cartpole"] {
        let want = &expected[name];
        let out = tmp.path().join(name);
        let meta = frl_dataset::dataset::import_minari(&fixtures.join(name), &out, None, 100).unwrap();
        assert_eq!(meta.env_id, want["env_id"].as_str().unwrap());
        let d = Dataset::open(&out).unwrap();
        let rows = want["episodes"].as_array().unwrap();
        assert_eq!(d.episodes.episodes(), rows.len());
        for (ep, row) in d.episodes.iter().zip(rows) {
            let close = |a: f64, key: &str| {
                let b = row[key].as_f64().unwrap();
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{name} episode {}: {key} {a} vs {b}", row["id"]);
            };
            assert_eq!(ep.len() as u64, row["steps"].as_u64().unwrap());
            assert_eq!(ep.tag.index, row["id"].as_u64().unwrap());
            assert_eq!(ep.tag.seed, row["seed"].as_u64().unwrap());
            close(ep.observations.iter().map(|&x| x as f64).sum(), "obs_sum");
            close(ep.actions.iter().map(|&x| x as f64).sum(), "action_sum");
            close(ep.episode_return(), "reward_sum");
            let first: Vec<f32> =
                row["first_obs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            assert_eq!(&ep.observations[..ep.obs_dim], first.as_slice());
            assert_eq!(*ep.terminated.last().unwrap(), row["terminated"].as_bool().unwrap());
            assert_eq!(*ep.truncated.last().unwrap(), row["truncated"].as_bool().unwrap());
        }
    }
    let e = frl_dataset::dataset::import_minari(&tmp.path().join("nothing"), &tmp.path().join("x"), None, 100)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing") && e.contains("metadata.json"), "{e}");
}

#[test]
fn u8_image_observations_are_stored_as_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let shape = [2usize, 4, 3];
    let n: usize = shape.iter().product();
    let mut b = EpisodeBatch::new(n, 1);
    for e in 0..3usize {
        let frame = |t: usize| (0..n).map(|i| ((i * 7 + t * 13 + e * 31) % 256) as f32).collect::<Vec<f32>>();
        b.begin(&frame(0));
        for t in 0..4 {
            b.record(&frl_envs::Action::Discrete(t % 18), 1.0, &frame(t + 1), false, t == 3);
        }
        b.finish(frl_dataset::episodes::EpisodeTag { index: e as u64, seed: 0, policy_version: 0 });
    }
    write(dir.path(), &b, frl_envs::Space::image(&shape), frl_envs::Space::Discrete(18), 7);
    let shard = fs::read(dir.path().join("shard-00000.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&shard).unwrap();
    let obs = st.tensor("observations").unwrap();
    assert_eq!(obs.dtype(), safetensors::Dtype::U8);
    assert_eq!(&obs.shape()[1..], &shape);
    let back = Dataset::open(dir.path()).unwrap();
    assert_eq!(back.metadata.observation_space, frl_envs::Space::image(&shape));
    assert!(back.episodes == b);

    // A value that is not a byte is refused, naming the problem.
    let mut bad = EpisodeBatch::new(n, 1);
    bad.begin(&vec![0.5; n]);
    bad.record(&frl_envs::Action::Discrete(0), 0.0, &vec![1.0; n], true, false);
    bad.finish(frl_dataset::episodes::EpisodeTag { index: 0, seed: 0, policy_version: 0 });
    let other = tempfile::tempdir().unwrap();
    let collection = Collection { policy: "test".into(), seed: 0, first_episode: 0, episodes: 0, requested: 1 };
    let mut w = DatasetWriter::open(
        other.path(),
        "Frames-v0",
        &frl_envs::Space::image(&shape),
        &frl_envs::Space::Discrete(18),
        collection,
        1,
        false,
    )
    .unwrap();
    let err = w.write(&bad.episode(0)).and_then(|_| w.flush()).unwrap_err().to_string();
    assert!(err.contains("u8"), "{err}");
}
