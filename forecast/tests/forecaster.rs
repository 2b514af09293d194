//! The forecaster on the run layer: training logs next-token PMFs and resumes bit for bit; sampled forecasts repeat
//! from their seed whatever the batching; bad input is an error that names the series, line or field.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;
use frl_forecast::job::{parse_job, read_csv, train};
use frl_forecast::predict::sample_top_k;
use frl_forecast::{
    Bins, ForecastConfig, ForecastNet, Kernel, Predictor, Sampling, SeriesSet, Tokenizer, TokenizerConfig,
    sample_gp_window, score,
};
use frl_learner::checkpoint;
use frl_learner::params::NamedTensor;
use frl_learner::{TrainJob, TrainOptions};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn pool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pool")
}

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets")
}

/// A forecaster small enough to train in a test: 256 uniform tokens, width 16, one block.
fn tiny_job(runs: &Path, name: &str, head: &str) -> TrainJob {
    let text = format!(
        r#"
name = "{name}"
seed = 3
runs_dir = "{runs}"

[train]
steps = 6
batch_size = 4
lr = 3e-3
warmup_steps = 1
log_every = 2
plot_every = 3
checkpoint_every = 3
keep_checkpoints = 4
probe_windows = 2

[forecast]
context = 12
prediction = 4
min_context = 2
d_model = 16
layers = 1
heads = 2
dropout = 0.1
samples = 5
head = {head}

[forecast.tokenizer]
n_tokens = 256
bins = {{ uniform = {{ low = -15.0, high = 15.0 }} }}

[forecast.data]
pool = "{pool}"
synth_share = 0.5
synth_length = 64
"#,
        runs = runs.display(),
        pool = pool().display(),
    );
    parse_job(&text, Path::new("tiny.toml")).unwrap()
}

fn no_stop() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

fn quiet(resume: bool) -> TrainOptions {
    TrainOptions { resume, quiet: true, ..Default::default() }
}

fn newest(job: &TrainJob) -> (u64, Vec<NamedTensor>) {
    let (step, path) = checkpoint::list(&job.run_dir().join("checkpoints")).last().cloned().expect("a checkpoint");
    let c = checkpoint::load_as::<serde_json::Value>(&path).unwrap();
    let mut all: Vec<NamedTensor> = c.model.into_values().chain(c.adam.into_values()).collect();
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.data.len().cmp(&b.data.len())));
    (step, all)
}

#[test]
fn a_forecaster_trains_logs_next_token_pmfs_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    for head in [r#""linear""#, "{ fourier = { frequencies = 8, gamma = 1e-6 } }"] {
        let whole = tiny_job(dir.path(), &format!("whole-{}", head.len()), head);
        let s = train(&whole, &quiet(false), no_stop()).unwrap();
        assert_eq!((s.agent.as_str(), s.steps), ("forecast", 6));
        assert!(s.final_loss.is_finite() && s.smoothness.is_finite(), "{s:?}");
        let scalars = frl_tensorboard::read_scalars(&whole.run_dir()).unwrap();
        assert!(scalars.iter().any(|e| e.tag == "train/loss" && e.step == 6));
        assert!(scalars.iter().any(|e| e.tag == "next_tokens/pmf_smoothness" && e.step == 6), "next-token PMFs scored");

        // The same job stopped after its step-3 checkpoint and resumed ends with the same bits.
        let mut part = whole.clone();
        part.name = format!("{}-part", whole.name);
        let ckpts = part.run_dir().join("checkpoints");
        std::fs::create_dir_all(&ckpts).unwrap();
        let (_, third) = checkpoint::list(&whole.run_dir().join("checkpoints"))
            .into_iter()
            .find(|(step, _)| *step == 3)
            .expect("a step-3 checkpoint");
        std::fs::copy(&third, ckpts.join(third.file_name().unwrap())).unwrap();
        train(&part, &quiet(true), no_stop()).unwrap();
        let ((sa, a), (sb, b)) = (newest(&whole), newest(&part));
        assert_eq!((sa, sb), (6, 6));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.name, y.name);
            assert!(x.data == y.data, "{head}: {} differs after resuming", x.name);
        }
    }
}

fn predictor(config: &ForecastConfig) -> Predictor {
    let device = Device::flex();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    Predictor::new(ForecastNet::new(config, &mut rng, &device).unwrap(), config.clone(), &device).unwrap()
}

fn tiny_config() -> ForecastConfig {
    let job = tiny_job(Path::new("/tmp"), "x", r#""linear""#);
    job.agent_config().unwrap()
}

#[test]
fn forecasts_repeat_from_their_seed_whatever_the_batching_and_threads() {
    let config = tiny_config();
    let p = predictor(&config);
    let series: Vec<(String, Vec<f64>)> =
        (0..5).map(|i| (format!("s{i}"), (0..20 + 3 * i).map(|t| 10.0 + (t as f64 * 0.7).sin()).collect())).collect();
    let inputs: Vec<(&str, &[f64])> = series.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    // A horizon beyond the forecast window: the forecast so far joins the context.
    let horizon = 2 * config.prediction + 1;
    let run = |per_batch, threads, seed| {
        let s = Sampling { samples: 5, top_k: 50, seed, series_per_batch: per_batch, threads };
        p.forecast(&inputs, horizon, &s).unwrap()
    };
    let a = run(1, 1, 7);
    assert_eq!((a.len(), a[0].len(), a[0][0].len()), (5, 5, horizon));
    assert!(a.iter().flatten().flatten().all(|v| v.is_finite()));
    assert_eq!(a, run(3, 2, 7), "batching and threads change nothing");
    assert_ne!(a, run(1, 1, 8), "another seed, other paths");
    // Series i's paths depend on (seed, i) and its past only.
    let two = p.forecast(
        &inputs[..2],
        horizon,
        &Sampling { samples: 5, top_k: 50, seed: 7, series_per_batch: 4, threads: 1 },
    );
    assert_eq!(two.unwrap()[..], a[..2]);
}

#[test]
fn bad_input_is_an_error_that_names_the_series_or_line() {
    let p = predictor(&tiny_config());
    let s = Sampling { samples: 2, top_k: 0, seed: 0, series_per_batch: 4, threads: 1 };
    let ok = [1.0, 2.0, 3.0];
    let nan = [f64::NAN; 4];
    let zeros = [0.0; 6];
    let inf = [1.0, f64::INFINITY];
    for (name, past, expect) in [
        ("empty-one", &[][..], "no values"),
        ("all-missing", &nan[..], "missing"),
        ("all-zero", &zeros[..], "mean scale is 0"),
        ("infinite", &inf[..], "not finite"),
    ] {
        let e = p.forecast(&[("fine", &ok[..]), (name, past)], 3, &s).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(expect), "{e}");
    }
    let e = p.forecast(&[("fine", &ok[..])], 0, &s).unwrap_err().to_string();
    assert!(e.contains("horizon"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "series,value\na,1.0\na,2.5\na,lots\n").unwrap();
    let e = read_csv(&csv).unwrap_err().to_string();
    assert!(e.contains("bad.csv:4") && e.contains("`lots`") && e.contains("series a"), "{e}");
    std::fs::write(&csv, "").unwrap();
    assert!(read_csv(&csv).unwrap_err().to_string().contains("empty"));
    std::fs::write(&csv, "value\n3\n\nnan\n4\n").unwrap();
    let one = read_csv(&csv).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, "bad");
    assert!(one[0].1[1].is_nan() && one[0].1[2] == 4.0);

    // Job files: another agent, a bad field, a bad tokeniser setting.
    let job = |extra: &str| parse_job(&format!("name = \"j\"\n{extra}"), Path::new("job.toml"));
    let e = job("agent = \"dt\"\n").unwrap_err().to_string();
    assert!(e.contains("job.toml") && e.contains("agent"), "{e}");
    let e = format!("{:#}", job("[forecast]\ncontext = 0\n").unwrap_err());
    assert!(e.contains("`context`"), "{e}");
    let e = format!("{:#}", job("[forecast]\nwidth = 3\n").unwrap_err());
    assert!(e.contains("width"), "{e}");
    let e = format!("{:#}", job("[forecast.tokenizer]\nn_tokens = 3\n").unwrap_err());
    assert!(e.contains("n_tokens"), "{e}");
}

#[test]
fn top_k_sampling_draws_only_the_k_most_likely_tokens_in_proportion() {
    let pmf = [0.05f32, 0.4, 0.05, 0.3, 0.2];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let mut counts = [0usize; 5];
    for _ in 0..20_000 {
        counts[sample_top_k(&pmf, 2, &mut rng) as usize] += 1;
    }
    assert_eq!((counts[0], counts[2], counts[4]), (0, 0, 0), "{counts:?}");
    let share = counts[1] as f64 / 20_000.0;
    assert!((share - 0.4 / 0.7).abs() < 0.02, "{share}");
    // k = 0: every token.
    let all: std::collections::BTreeSet<u32> = (0..2000).map(|_| sample_top_k(&pmf, 0, &mut rng)).collect();
    assert_eq!(all.len(), 5);
}

#[test]
fn decoded_tokens_are_bin_centres_and_special_tokens_decode_to_the_lowest_bin() {
    let t = Tokenizer::new(TokenizerConfig::default()).unwrap();
    let scale = 3.5;
    for v in [-40.0f32, -2.0, -0.3, 0.0, 0.7, 5.0, 20.0, 33.0] {
        let token = t.token(v, scale);
        assert_eq!(t.decode(token, scale), t.value(token, scale).unwrap());
        // Inside the covered range the centre is within half a bin of the value.
        if v.abs() < 14.0 * scale {
            let centres = t.centres();
            let width = centres.windows(2).map(|w| w[1] - w[0]).fold(0f32, f32::max) * scale;
            assert!((t.decode(token, scale) - v).abs() <= width, "{v} -> {token}");
        }
    }
    let lowest = t.centres()[0] * scale;
    assert_eq!((t.decode(0, scale), t.decode(1, scale)), (lowest, lowest));
    let uniform =
        Tokenizer::new(TokenizerConfig { bins: Bins::Uniform { low: -15.0, high: 15.0 }, ..Default::default() });
    assert_eq!(uniform.unwrap().decode(2, 1.0), -15.0);
}

#[test]
fn a_perfect_forecast_scores_zero_and_seasonal_naive_keeps_the_official_m1_figures() {
    let set = SeriesSet::open(&datasets().join("m1_yearly")).unwrap();
    let perfect: Vec<Vec<Vec<f32>>> =
        set.split().iter().map(|(_, _, target)| vec![target.iter().map(|&v| v as f32).collect(); 3]).collect();
    let r = score(&set, &perfect);
    assert!(r.model.mase < 1e-4 && r.model.wql < 1e-6, "{r:?}");
    assert!((r.seasonal_naive.mase - 4.8943).abs() < 1e-3 && (r.seasonal_naive.wql - 0.2093).abs() < 1e-3, "{r:?}");
}

#[test]
fn a_kernel_synth_window_keeps_its_kernel_structure() {
    // A periodic kernel with a 24-point period on a 1024-point axis: a window repeats itself 24 points later.
    let kernel = Kernel::Periodic { period: 24.0 / 1024.0 };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let w = sample_gp_window(&kernel, 1024, 500, 120, &mut rng);
    let acf = |lag: usize| {
        let n = w.len() - lag;
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let var: f32 = w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / w.len() as f32;
        (0..n).map(|i| (w[i] - mean) * (w[i + lag] - mean)).sum::<f32>() / n as f32 / var
    };
    assert!(acf(24) > 0.9 && acf(12) < acf(24) - 0.3, "acf(24) {} acf(12) {}", acf(24), acf(12));
    // A linear kernel's window trends: its two halves' means differ in the direction of the whole window's slope.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let trend = sample_gp_window(&Kernel::Linear { sigma0: 0.0 }, 1024, 600, 100, &mut rng);
    let diffs: Vec<f32> = trend.windows(2).map(|p| p[1] - p[0]).collect();
    let rising = diffs.iter().filter(|d| **d > 0.0).count();
    assert!(rising == 0 || rising == diffs.len(), "a line through the origin is monotone: {rising}/{}", diffs.len());
}
