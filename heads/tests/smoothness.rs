//! Smoothness and its Gaussian filter against scipy (fixtures from scripts/gen_smoothness_fixtures.py).

use frl_heads::metrics::{gaussian_filter_wrap, smoothness};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    m: usize,
    kind: String,
    y: Vec<f64>,
    filtered: std::collections::BTreeMap<String, Vec<f64>>,
    smoothness: f64,
}

#[derive(Deserialize)]
struct Fixtures {
    cases: Vec<Case>,
}

#[test]
fn smoothness_matches_scipy() {
    let path = std::env::var("FRL_SMOOTHNESS_FIXTURE").unwrap_or_else(|_| {
        format!(
            "{}/tests/fixtures/smoothness.json",
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let fixtures: Fixtures = serde_json::from_str(&text).unwrap();
    assert!(fixtures.cases.len() >= 10, "too few fixture cases");
    for case in &fixtures.cases {
        assert_eq!(case.y.len(), case.m);
        for (sigma, expect) in &case.filtered {
            let got = gaussian_filter_wrap(&case.y, sigma.parse().unwrap());
            for (a, b) in got.iter().zip(expect) {
                assert!((a - b).abs() < 1e-12, "m={} {} sigma={sigma}: {a} vs scipy {b}", case.m, case.kind);
            }
        }
        let s = smoothness(&case.y);
        let rows = frl_heads::metrics::smoothness_rows(&case.y, case.m).unwrap();
        assert!(
            (rows[0] - case.smoothness).abs() < 1e-10 * case.smoothness.max(1.0),
            "m={} {}: spectral {} vs scipy {}",
            case.m,
            case.kind,
            rows[0],
            case.smoothness
        );
        assert!(
            (s - case.smoothness).abs() < 1e-10 * case.smoothness.max(1.0),
            "m={} {}: {s} vs scipy {}",
            case.m,
            case.kind,
            case.smoothness
        );
    }
}
