//! Evaluation datasets: M1 yearly (exported from the aeon wheel by `scripts/export_forecast_datasets.py`) scored with
//! seasonal naive under Chronos' protocol gives the official figures; bad files are errors naming file and line.

use std::path::Path;

use frl_forecast::{Evaluated, SeriesSet, scores, seasonal_naive};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets").join(name)
}

#[test]
fn m1_yearly_seasonal_naive_gives_the_official_chronos_figures() {
    let set = SeriesSet::open(&fixture("m1_yearly")).unwrap();
    assert_eq!((set.series.len(), set.meta.horizon, set.meta.seasonality), (181, 6, 1));
    let m = set.meta.seasonality;
    let items: Vec<Evaluated> = set
        .split()
        .into_iter()
        .map(|(_, past, target)| {
            let forecast = seasonal_naive(past, m, target.len());
            Evaluated { past: past.to_vec(), target: target.to_vec(), samples: vec![forecast; 20] }
        })
        .collect();
    let levels: Vec<f64> = (1..10).map(|i| i as f64 / 10.0).collect();
    let s = scores(&items, m, &levels);
    // Chronos' `seasonal-naive-zero-shot.csv`, row `monash_m1_yearly`: MASE 4.8943, WQL 0.2093.
    assert!((s.mase - 4.8943).abs() < 1e-3, "MASE {}", s.mase);
    assert!((s.wql - 0.2093).abs() < 1e-3, "WQL {}", s.wql);
}

#[test]
fn seasonal_naive_repeats_the_last_season() {
    assert_eq!(seasonal_naive(&[1.0, 2.0, 3.0, 4.0, 5.0], 2, 5), [4.0, 5.0, 4.0, 5.0, 4.0]);
    assert_eq!(seasonal_naive(&[1.0, 2.0], 12, 3), [2.0, 2.0, 2.0]);
}

#[test]
fn bad_datasets_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |meta: &str, csv: &str| {
        std::fs::write(dir.path().join("meta.json"), meta).unwrap();
        std::fs::write(dir.path().join("series.csv"), csv).unwrap();
        SeriesSet::open(dir.path()).map(|_| ()).unwrap_err().to_string()
    };
    let meta = r#"{"name":"t","frequency":"M","seasonality":12,"horizon":2,"source":"test","series":1}"#;
    let e = write(meta, "series,value\na,1\na,two\na,3\n");
    assert!(e.contains("series.csv:3") && e.contains("`two`"), "{e}");
    let e = write(meta, "series,value\na,1\na,2\n");
    assert!(e.contains("not more than the horizon"), "{e}");
    let e = write(meta, "series,value\na,1\nb,2\na,3\n");
    assert!(e.contains("series.csv:4") && e.contains("two places"), "{e}");
    let e = write(meta, "series,value\na,1\na,NaN\na,3\n");
    assert!(e.contains("not finite"), "{e}");
    let e = write(&meta.replace("\"horizon\":2", "\"horizon\":0"), "series,value\na,1\n");
    assert!(e.contains("meta.json") && e.contains("horizon"), "{e}");
    let e = write(meta, "value\n1\n");
    assert!(e.contains("series.csv:1"), "{e}");
}

#[test]
fn seasonal_naive_scores_equal_gluonts_on_every_exported_dataset() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gluonts_metrics.json");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let levels: Vec<f64> = (1..10).map(|i| i as f64 / 10.0).collect();
    let datasets = [
        ("m1_yearly", 181, 6, 1),
        ("us_employment", 148, 12, 12),
        ("fpp2_monthly", 4, 18, 12),
        ("fpp2_quarterly", 4, 8, 4),
    ];
    for (name, count, horizon, seasonality) in datasets {
        let set = SeriesSet::open(&fixture(name)).unwrap();
        assert_eq!((set.series.len(), set.meta.horizon, set.meta.seasonality), (count, horizon, seasonality), "{name}");
        let items: Vec<Evaluated> = set
            .split()
            .into_iter()
            .map(|(_, past, target)| Evaluated {
                past: past.to_vec(),
                target: target.to_vec(),
                samples: vec![seasonal_naive(past, seasonality, horizon); 20],
            })
            .collect();
        let s = scores(&items, seasonality, &levels);
        let want = &reference["seasonal_naive"][name];
        let (mase, wql) = (want["mase"].as_f64().unwrap(), want["wql"].as_f64().unwrap());
        // gluonts reads the values as f32; frl keeps f64.
        assert!((s.mase - mase).abs() < 1e-6 * mase, "{name}: MASE {} vs gluonts {mase}", s.mase);
        assert!((s.wql - wql).abs() < 1e-6 * wql, "{name}: WQL {} vs gluonts {wql}", s.wql);
    }
}
