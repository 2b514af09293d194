//! Head configs: the job-file syntax, serde round trips, and clear errors for bad values.

mod common;

use frl_heads::{FourierHeadConfig, HeadConfig, HeadError, MixtureHeadConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Job {
    head: HeadConfig,
}

fn parse(toml_text: &str) -> Result<HeadConfig, String> {
    toml::from_str::<Job>(toml_text).map(|j| j.head).map_err(|e| e.to_string())
}

#[test]
fn job_file_syntax_parses() {
    assert_eq!(parse(r#"head = "linear""#).unwrap(), HeadConfig::Linear);
    assert_eq!(
        parse("head = { fourier = { frequencies = 12, gamma = 1e-6 } }").unwrap(),
        HeadConfig::Fourier(FourierHeadConfig::new(12, 1e-6))
    );
    assert_eq!(
        parse("head = { mixture = { components = 2 } }").unwrap(),
        HeadConfig::Mixture(MixtureHeadConfig::new(2))
    );
    let f = parse("head = { fourier = { frequencies = 8, eps = 1e-4, init_weight_div = 10.0 } }").unwrap();
    let HeadConfig::Fourier(f) = f else { panic!("not fourier") };
    assert_eq!((f.frequencies, f.gamma, f.eps, f.init_weight_div, f.init_bias_div), (8, 0.0, 1e-4, 10.0, 100.0));
}

#[test]
fn configs_round_trip_through_toml_and_json() {
    let configs = [
        HeadConfig::Linear,
        HeadConfig::Fourier(FourierHeadConfig::new(16, 1e-6)),
        HeadConfig::Fourier(FourierHeadConfig { eps: 1e-3, init_bias_div: 7.0, ..FourierHeadConfig::new(3, 0.0) }),
        HeadConfig::Mixture(MixtureHeadConfig { learned_weights: true, ..MixtureHeadConfig::new(4) }),
    ];
    for head in configs {
        let job = Job { head: head.clone() };
        let text = toml::to_string(&job).unwrap();
        assert_eq!(toml::from_str::<Job>(&text).unwrap(), job, "TOML:\n{text}");
        let json = serde_json::to_string(&head).unwrap();
        assert_eq!(serde_json::from_str::<HeadConfig>(&json).unwrap(), head, "JSON: {json}");
        // the command-line form accepts what the job file accepts
        let inline = text.trim().strip_prefix("head = ").map(str::to_string);
        if let Some(inline) = inline {
            assert_eq!(inline.parse::<HeadConfig>().unwrap(), head, "inline {inline}");
        }
    }
}

#[test]
fn bad_configs_give_clear_errors() {
    let dev = common::device();
    let mut rng = StdRng::seed_from_u64(0);
    let err = HeadConfig::Fourier(FourierHeadConfig::new(0, 0.0)).init(4, 10, &mut rng, &dev).unwrap_err();
    assert!(matches!(&err, HeadError::InvalidConfig { field: "frequencies", .. }), "{err}");
    assert!(err.to_string().contains("frequencies"), "{err}");

    let err = HeadConfig::Fourier(FourierHeadConfig::new(4, -1e-3)).init(4, 10, &mut rng, &dev).unwrap_err();
    assert!(err.to_string().contains("gamma") && err.to_string().contains("-0.001"), "{err}");

    for cfg in [
        HeadConfig::Linear,
        HeadConfig::Fourier(FourierHeadConfig::default()),
        HeadConfig::Mixture(MixtureHeadConfig::default()),
    ] {
        let err = cfg.init(4, 1, &mut rng, &dev).unwrap_err();
        assert!(err.to_string().contains("bins") && err.to_string().contains("at least 2"), "{cfg}: {err}");
        assert!(cfg.init(0, 4, &mut rng, &dev).unwrap_err().to_string().contains("input_dim"));
    }
    let err = HeadConfig::Mixture(MixtureHeadConfig::new(0)).init(4, 10, &mut rng, &dev).unwrap_err();
    assert!(err.to_string().contains("components"), "{err}");
    assert!(HeadConfig::Fourier(FourierHeadConfig { eps: f64::NAN, ..Default::default() }).validate().is_err());
    assert!(HeadConfig::Fourier(FourierHeadConfig { init_weight_div: 0.0, ..Default::default() }).validate().is_err());

    // unknown heads and fields are parse errors that name them
    let err = parse(r#"head = "transformer""#).unwrap_err();
    assert!(err.contains("transformer") || err.contains("unknown variant"), "{err}");
    let err = parse("head = { fourier = { frequencys = 12 } }").unwrap_err();
    assert!(err.contains("frequencys"), "{err}");
    let err = "transformer".parse::<HeadConfig>().unwrap_err();
    assert!(err.to_string().contains("transformer"), "{err}");
    let err = "{ fourier = { frequencies = 0 } }".parse::<HeadConfig>().unwrap_err();
    assert!(err.to_string().contains("frequencies"), "{err}");
    let err = "{ fourier = { gamma = -1 } }".parse::<HeadConfig>().unwrap_err();
    assert!(err.to_string().contains("gamma"), "{err}");
}
