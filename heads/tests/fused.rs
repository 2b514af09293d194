//! The Fourier head's fused CPU operations (`frl_heads::fused`) against burn's composition of the same head
//! (`fused::set_enabled(false)`): log-PMF, regulariser and the gradients of a loss of both with respect to the
//! features and every parameter, tracked and plain. One test, because the switch is process-wide.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor, TensorData};
use common::{device, randn, to_vec};
use frl_heads::{FourierHeadConfig, Head, HeadConfig, fused};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Gradients of every float parameter of `module`, in visiting order.
fn param_grads<M: Module>(module: &M, grads: &Gradients) -> Vec<Vec<f32>> {
    struct Collect<'a> {
        grads: &'a Gradients,
        out: Vec<Vec<f32>>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.push(param.val().grad(self.grads).map(to_vec).unwrap_or_default());
        }
    }
    let mut c = Collect { grads, out: Vec::new() };
    module.visit(&mut c);
    c.out
}

/// Everything one path produces for the same head, features and loss weights.
struct Outcome {
    logits: Vec<f32>,
    regularizer: f32,
    d_features: Vec<f32>,
    d_params: Vec<Vec<f32>>,
    plain_logits: Vec<f32>,
    plain_regularizer: f32,
}

/// Which of the head's outputs the loss reads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reads {
    Both,
    LogitsOnly,
    RegularizerOnly,
}

fn run(frequencies: usize, bins: usize, rows: usize, enabled: bool, reads: Reads) -> Outcome {
    fused::set_enabled(enabled);
    let device = device();
    let mut rng = StdRng::seed_from_u64(7);
    let head =
        HeadConfig::Fourier(FourierHeadConfig::new(frequencies, 1e-3)).init(12, bins, &mut rng, &device).unwrap();
    let x = randn(&mut rng, rows, 12, &device).require_grad();
    let weights: Vec<f32> = (0..rows * bins).map(|_| rng.random_range(-1.0..1.0)).collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [rows, bins]), &device);
    let out = head.forward(x.clone());
    let regularizer = out.regularizer.expect("gamma > 0");
    let loss = match reads {
        Reads::Both => (out.logits.clone() * weights).sum() + regularizer.clone().mul_scalar(100.0),
        Reads::LogitsOnly => (out.logits.clone() * weights).sum(),
        Reads::RegularizerOnly => regularizer.clone().mul_scalar(100.0),
    };
    let grads = loss.backward();
    let plain = head.valid().forward(x.clone().inner());
    let outcome = Outcome {
        logits: to_vec(out.logits),
        regularizer: to_vec(regularizer)[0],
        d_features: x.grad(&grads).map(to_vec).unwrap(),
        d_params: param_grads(&head, &grads),
        plain_logits: to_vec(plain.logits),
        plain_regularizer: to_vec(plain.regularizer.unwrap())[0],
    };
    fused::set_enabled(true);
    outcome
}

fn assert_close(name: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{name}: lengths");
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{name}[{i}]: fused {x}, composed {y} (scale {scale})");
    }
}

#[test]
fn fused_fourier_head_equals_the_composition() {
    // 150 rows: more than one block of rows and not a whole number of lane groups; N = 16 as the DT's, N = 64 over
    // a large vocabulary as the forecaster's. A loss of both outputs (the regulariser's gradient joins the log-PMF's
    // in one product), and of either alone (each reaches the features on its own).
    let cases = [
        (16, 64, 150, Reads::Both),
        (5, 20, 3, Reads::Both),
        (64, 1024, 40, Reads::Both),
        (16, 64, 150, Reads::LogitsOnly),
        (16, 64, 150, Reads::RegularizerOnly),
    ];
    for (frequencies, bins, rows, reads) in cases {
        let fused = run(frequencies, bins, rows, true, reads);
        let composed = run(frequencies, bins, rows, false, reads);
        let what = format!("N={frequencies} m={bins} rows={rows} {reads:?}");
        assert_close(&format!("{what} logits"), &fused.logits, &composed.logits, 1e-5);
        assert_close(&format!("{what} plain logits"), &fused.plain_logits, &composed.logits, 1e-5);
        let reg = composed.regularizer;
        assert!(reg > 0.0, "{what}: the regulariser is {reg}: the test checks nothing");
        for (label, r) in [("regulariser", fused.regularizer), ("plain regulariser", fused.plain_regularizer)] {
            assert!((r - reg).abs() <= 1e-4 * reg, "{what} {label}: fused {r}, composed {reg}");
        }
        assert_close(&format!("{what} d_features"), &fused.d_features, &composed.d_features, 1e-4);
        assert_eq!(fused.d_params.len(), composed.d_params.len());
        for (i, (a, b)) in fused.d_params.iter().zip(&composed.d_params).enumerate() {
            assert!(!b.is_empty(), "{what}: parameter {i} has no gradient");
            assert_close(&format!("{what} d_param{i}"), a, b, 1e-4);
        }
    }
}
