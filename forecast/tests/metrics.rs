//! MASE and weighted quantile loss against gluonts' evaluation (the functions Chronos' evaluation calls) on the same
//! forecasts (`scripts/gen_gluonts_metric_fixtures.py`).

use frl_forecast::metrics::{mase, quantile, seasonal_error};
use frl_forecast::{Evaluated, scores};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn mase_and_wql_equal_gluonts() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gluonts_metrics.json");
    let f: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let levels = floats(&f["quantiles"]);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let m = case["seasonality"].as_u64().unwrap() as usize;
        let items: Vec<Evaluated> = case["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| Evaluated {
                past: floats(&i["past"]),
                target: floats(&i["target"]),
                samples: i["samples"].as_array().unwrap().iter().map(floats).collect(),
            })
            .collect();
        for (item, want) in items.iter().zip(floats(&case["item_mase"])) {
            assert!(close(mase(item, m), want), "{name}: item MASE {} vs gluonts {want}", mase(item, m));
        }
        let s = scores(&items, m, &levels);
        let (mase_want, wql_want) = (case["mase"].as_f64().unwrap(), case["wql"].as_f64().unwrap());
        assert!(close(s.mase, mase_want), "{name}: MASE {} vs gluonts {mase_want}", s.mase);
        assert!(close(s.wql, wql_want), "{name}: WQL {} vs gluonts {wql_want}", s.wql);
    }
}

#[test]
fn quantiles_are_order_statistics_and_the_seasonal_error_falls_back_to_lag_one() {
    // gluonts takes the order statistic at round((n - 1) q), ties to even: 1.5 -> 2, 2.5 -> 2.
    assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.5), 3.0);
    assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.5), 3.0);
    assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.1), 1.0);
    assert_eq!(seasonal_error(&[1.0, 2.0, 4.0, 7.0], 2), 4.0);
    assert_eq!(seasonal_error(&[1.0, 2.0, 4.0], 12), 1.5);
}
