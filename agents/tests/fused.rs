//! The whole DT with its fused CPU layers against the same DT built from burn's layers (`fused::set_enabled`): the
//! same features and input gradients in a training pass with dropout, and the same values without autodiff. A
//! binary of its own, since the switch is process-wide.

use burn::tensor::{Device, Tensor, TensorData};
use frl_agents::dt::{DecisionTransformer, DecisionTransformerConfig, DropoutDraw, DtInput, fused, random_input};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn model(device: &Device) -> DecisionTransformer {
    let config = DecisionTransformerConfig {
        layers: 2,
        heads: 4,
        embed_dim: 32,
        context: 7,
        dropout: 0.1,
        ..DecisionTransformerConfig::default()
    };
    let mut rng = StdRng::seed_from_u64(5);
    DecisionTransformer::new(&config, 3, 2, 2, config.bins, &mut rng, device).unwrap()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Features of a training pass and the gradient of their weighted sum with respect to the states.
fn pass(model: &DecisionTransformer, input: &DtInput) -> (Vec<f32>, Vec<f32>) {
    let states = input.states.clone().require_grad();
    let input = DtInput { states: states.clone(), ..input.clone() };
    let features = model.features_train(input, DropoutDraw { seed: 11, first_window: 0 });
    let n = features.shape().num_elements();
    let w: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let w = Tensor::<3>::from_data(TensorData::new(w, features.shape()), &features.device());
    let grads = (features.clone() * w).sum().backward();
    (host(features), host(states.grad(&grads).unwrap()))
}

fn assert_close(what: &str, ours: &[f32], burns: &[f32], tol: f32) {
    let scale = burns.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    let worst = ours.iter().zip(burns).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= tol * scale, "{what}: largest difference {worst:e} at scale {scale:e}");
}

#[test]
fn the_fused_dt_computes_what_burns_layers_compute() {
    let device = Device::flex().autodiff();
    let model = model(&device);
    let input = random_input(3, 7, 3, 2, &device);
    let (features, grad) = pass(&model, &input);
    fused::set_enabled(false);
    let (burn_features, burn_grad) = pass(&model, &input);
    let burn_plain = host(model.features(input.clone()));
    fused::set_enabled(true);
    assert_close("features", &features, &burn_features, 1e-5);
    assert_close("state gradient", &grad, &burn_grad, 1e-4);
    // Dropout was on: the inference pass differs.
    let plain = host(model.features(input.clone()));
    assert!(plain.iter().zip(&features).any(|(a, b)| (a - b).abs() > 1e-3), "no dropout in the training pass");
    assert_close("inference features", &plain, &burn_plain, 1e-5);
}
