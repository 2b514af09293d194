//! The job-file reference and `frl template`: generated from the config structs, every field documented, the
//! committed page current, and each template a job that parses back to the defaults.

use frl_learner::{EvalConfig, OnlineConfig, TrainConfig, TrainJob};
use frl_runners::reference::{self, TEMPLATE_DATASET, TEMPLATE_ENV};

#[test]
fn every_field_of_every_section_has_a_doc_comment_and_a_type() {
    let sections = reference::sections().unwrap();
    let paths: Vec<&str> = sections.iter().map(|s| s.path.as_str()).collect();
    for want in ["", "train", "train.optimizer", "eval", "online", "dt", "bc", "iql", "dqn", "forecast", "head.fourier"]
    {
        assert!(paths.contains(&want), "no section [{want}] in {paths:?}");
    }
    for s in &sections {
        assert!(!s.fields.is_empty(), "[{}] has no fields", s.path);
        for f in &s.fields {
            assert!(!f.doc.is_empty(), "[{}] {} has no doc comment", s.path, f.name);
            assert!(!f.ty.is_empty() && f.ty != "any", "[{}] {}: type {:?}", s.path, f.name, f.ty);
        }
    }
}

#[test]
fn the_committed_reference_is_the_one_the_code_generates() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/src/reference-job-file.md"))
        .expect("docs/src/reference-job-file.md");
    let generated = reference::markdown().unwrap();
    assert!(
        committed == generated,
        "docs/src/reference-job-file.md is stale: regenerate it with `frl reference > docs/src/reference-job-file.md`"
    );
}

#[test]
fn every_template_parses_back_to_the_defaults() {
    for entry in frl_agents::AGENTS {
        for online in [false, true] {
            let what = format!("frl template {}{}", entry.kind, if online { " --online" } else { "" });
            let text = match reference::template(entry.kind, online) {
                Ok(t) => t,
                Err(e) => {
                    assert!((online && entry.fit_online.is_none()) || (!online && entry.online_only), "{what}: {e}");
                    continue;
                }
            };
            let job = TrainJob::parse(&text).unwrap_or_else(|e| panic!("{what}: {e:#}\n{text}"));
            frl_agents::validate(&job).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert_eq!(job.agent, entry.kind, "{what}");
            assert_eq!(job.train, TrainConfig::default(), "{what}");
            assert_eq!(job.eval, EvalConfig::default(), "{what}");
            if online {
                let want = OnlineConfig { env: TEMPLATE_ENV.into(), ..Default::default() };
                assert_eq!(job.online, Some(want), "{what}");
            } else {
                assert_eq!((job.online.as_ref(), job.dataset.to_str()), (None, Some(TEMPLATE_DATASET)), "{what}");
            }
            let (_, defaults) = (entry.section)().unwrap();
            let defaults: toml::Table = defaults.parse().unwrap();
            assert_eq!(job.sections.get(entry.kind), Some(&toml::Value::Table(defaults)), "{what}: [{}]", entry.kind);
            // Every field is written out or shown commented out.
            for s in reference::sections().unwrap().iter().filter(|s| s.path == entry.kind) {
                for f in &s.fields {
                    assert!(text.contains(&format!("\n{} = ", f.name)) || text.contains(&format!("\n# {} = ", f.name)));
                }
            }
        }
    }
    let e = reference::template("nope", false).unwrap_err().to_string();
    assert!(e.contains("unknown agent"), "{e}");
}
