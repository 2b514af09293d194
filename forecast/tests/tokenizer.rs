//! The tokenisers against what Chronos' own code made of the same series (`scripts/gen_chronos_token_fixtures.py`:
//! `chronos-forecasting`'s `MeanScaleUniformBins`, the Fourier-head paper's `MeanScaleMixedUniformBins`).

use frl_forecast::{Bins, Tokenizer, TokenizerConfig};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chronos_tokens.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().map(|f| f as f32).unwrap_or(f32::NAN)).collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn tokenizer(kind: &str) -> Tokenizer {
    let bins = match kind {
        "uniform" => Bins::Uniform { low: -15.0, high: 15.0 },
        _ => TokenizerConfig::default().bins,
    };
    Tokenizer::new(TokenizerConfig { bins, ..Default::default() }).unwrap()
}

#[test]
fn tokens_scales_and_centres_equal_chronos() {
    let f = fixture();
    let context_length = f["context_length"].as_u64().unwrap() as usize;
    for kind in ["uniform", "mixed"] {
        let t = tokenizer(kind);
        let reference = &f[kind];
        let mut ours = t.centres();
        if kind == "mixed" {
            // The paper lists each upper layout's centres without its first (the lower layout's last, -1 and 10).
            ours.remove(600 + 3277);
            ours.remove(600);
        }
        let theirs = floats(&reference["centres"]);
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        assert!(ours.len() == theirs.len() && first.is_none(), "{kind}: centres differ first at {first:?}");
        for case in reference["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let (context, label) = (floats(&case["context"]), floats(&case["label"]));
            // PyTorch sums the context in its own (vectorised) order, so the scale may differ in the last bits.
            let (tokens, scale) = t.encode_context(&context, context_length);
            let theirs = case["scale"].as_f64().unwrap() as f32;
            assert!((scale - theirs).abs() <= 2.0 * f32::EPSILON * theirs, "{kind} {name}: scale {scale} vs {theirs}");
            assert_eq!(tokens, ids(&case["context_tokens"]), "{kind} {name}: context tokens");
            // At Chronos' own scale, every token is the same.
            let context = &context[context.len() - context_length..];
            assert_eq!(t.encode(context, theirs), ids(&case["context_tokens"]), "{kind} {name}: at their scale");
            assert_eq!(t.encode(&label, theirs), ids(&case["label_tokens"]), "{kind} {name}: label tokens");
        }
    }
}

#[test]
fn uniform_tokens_decode_to_chronos_values() {
    let f = fixture();
    let t = tokenizer("uniform");
    let want = floats(&f["uniform"]["decoded_at_scale_2"]);
    // Chronos clamps special ids to the first centre; frl says they stand for no value.
    for (token, want) in want.iter().enumerate().skip(3) {
        assert_eq!(t.value(token as u32, 2.0), Some(*want), "token {token}");
    }
    assert_eq!((t.value(0, 2.0), t.value(1, 2.0)), (None, None));
}

#[test]
fn mixed_bins_split_as_the_paper_and_decode_to_their_own_centres() {
    let f = fixture();
    let t = tokenizer("mixed");
    // The paper's split of 4096 tokens: 603 sparse below -1, 3278 dense, 215 sparse from 10 on.
    assert_eq!(ids(&f["mixed"]["segments"]), [603, 3278, 215]);
    assert_eq!(t.centres().len(), 600 + 3277 + 214);
    // Edges: the last sparse bin below -1, the first and last dense ones, the first from 10 on.
    let at = |x: f32| t.token(x, 1.0);
    assert_eq!(
        (at(-15.0), at(-1.0 - 1e-3), at(-1.0), at(9.999), at(10.0), at(15.0), at(1e6)),
        (3, 602, 604, 3880, 3882, 4095, 4095)
    );
    // Every token decodes to the centre of the bin it stands for, and that centre encodes back to it; except the
    // last bin of the two lower layouts, whose centre is the next layout's first (-1 and 10, as in the paper): their
    // values lie just below it.
    for token in 3..4096u32 {
        match (token, t.value(token, 1.0)) {
            (602 | 3880, Some(v)) => assert_eq!((at(v), at(v - 1e-3)), (token + 2, token), "token {token}"),
            (_, Some(v)) => assert_eq!(at(v), token, "token {token}, centre {v}"),
            (_, None) => assert!(token == 603 || token == 3881, "token {token} has no value"),
        }
    }
    // The paper's decoding indexes its list of centres by `token - 3`, which agrees with its encoding only below -1:
    // from -1 on it decodes a token to the centre two bins higher, from 10 on four bins higher.
    let fork = floats(&f["mixed"]["decoded_at_scale_2"]);
    for token in [3u32, 100, 602] {
        assert_eq!(t.value(token, 2.0), Some(fork[token as usize]), "token {token}");
    }
    for (token, shift) in [(604u32, 2), (1000, 2), (3878, 2), (3882, 4), (3900, 4), (4091, 4)] {
        assert_eq!(t.value(token + shift, 2.0), Some(fork[token as usize]), "token {token}");
    }
}

#[test]
fn bad_settings_name_the_field() {
    let bad = |bins| Tokenizer::new(TokenizerConfig { bins, ..Default::default() }).unwrap_err().to_string();
    assert!(bad(Bins::Uniform { low: 1.0, high: 1.0 }).contains("`bins`"));
    let e = bad(Bins::Mixed { low: -15.0, mid1: -1.0, mid2: 10.0, high: 15.0, sparse_density: 1.5 });
    assert!(e.contains("sparse_density"), "{e}");
    let e = Tokenizer::new(TokenizerConfig { n_tokens: 8, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("n_tokens"), "{e}");
    let e = Tokenizer::new(TokenizerConfig { eos: 5, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("n_special"), "{e}");
}

#[test]
fn missing_and_zero_contexts_follow_chronos() {
    let t = tokenizer("uniform");
    // An all-zero or all-missing context has scale 1; missing values are PAD.
    assert_eq!(Tokenizer::scale(&[0.0, 0.0]), 1.0);
    assert_eq!(Tokenizer::scale(&[f32::NAN, f32::NAN]), 1.0);
    assert_eq!(t.encode(&[f32::NAN, 0.0], 1.0), [0, 2049, 1]);
}
