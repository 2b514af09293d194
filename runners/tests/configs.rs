//! The shipped configurations parse and validate, and the demo's jobs are one per head.

use std::path::Path;

use frl_agents::dt::DecisionTransformerConfig;

fn dt(job: &frl_learner::TrainJob) -> DecisionTransformerConfig {
    job.agent_config().unwrap()
}

#[test]
fn shipped_configs_parse_and_validate() {
    let demo = frl_runners::demo::DemoConfig::parse(frl_runners::demo::DEFAULT_DEMO, "configs/demo.toml").unwrap();
    let jobs = demo.jobs().unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.dataset == demo.collect.out));
    assert_ne!(jobs[0].name, jobs[1].name);
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")).join("..");
    let job = frl_agents::load_job(&root.join("configs/dt-experiment.toml")).unwrap();
    assert_eq!(dt(&job).bins, 64);
    for name in ["bc-experiment.toml", "iql-experiment.toml"] {
        let job = frl_agents::load_job(&root.join("configs").join(name)).unwrap();
        assert_eq!(job.agent, name.split('-').next().unwrap());
    }
    // Every job file of an agent (all but the demo's, the toy's and the forecaster's) loads and validates.
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(root.join("configs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // A job names its agent at the top level, before the first section (the demo's template is inside one).
        let top = text.lines().take_while(|l| !l.starts_with('['));
        let kind = top.filter_map(|l| l.strip_prefix("agent = \"")).next().map(|k| k.trim_end_matches('"'));
        if let Some(kind) = kind.filter(|k| frl_agents::kinds().contains(k)) {
            let job = frl_agents::load_job(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert_eq!(job.agent, kind, "{}", path.display());
            loaded.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for want in ["dqn-cartpole.toml", "ppo-cartpole.toml", "ppo-pendulum.toml", "dqn-seaquest-ram.toml"] {
        assert!(loaded.iter().any(|l| l == want), "{want} not among {loaded:?}");
    }
    let bad = frl_runners::demo::DemoConfig::parse(
        &frl_runners::demo::DEFAULT_DEMO.replace("steps = 1500", "steps = 0"),
        "edited",
    );
    assert!(format!("{:#}", bad.unwrap_err()).contains("train.steps"));
}
