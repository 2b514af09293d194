//! Decision Transformer network: causality and shapes.

use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_agents::dt::{DecisionTransformer, DecisionTransformerConfig, DtInput, StateEncoderConfig, random_input};
use frl_heads::HeadConfig;
use frl_heads::head::to_host;
use rand::SeedableRng;
use rand::rngs::StdRng;

const T: usize = 6;
const OBS: usize = 3;
const ACT: usize = 2;

fn model(head: HeadConfig) -> DecisionTransformer {
    let config = DecisionTransformerConfig {
        layers: 2,
        heads: 2,
        embed_dim: 16,
        context: T,
        dropout: 0.0,
        max_episode_len: 50,
        bins: 8,
        head,
        bin_margin: 0.0,
        state_encoder: StateEncoderConfig::Mlp { hidden: vec![12] },
        ..DecisionTransformerConfig::default()
    };
    let mut rng = StdRng::seed_from_u64(3);
    DecisionTransformer::new(&config, OBS, ACT, ACT, 8, &mut rng, &Device::flex()).unwrap()
}

fn input(returns: &[f32], states: &[f32], actions: &[f32]) -> DtInput {
    let dev = Device::flex();
    DtInput {
        returns: Tensor::from_data(TensorData::new(returns.to_vec(), [1, T, 1]), &dev),
        states: Tensor::from_data(TensorData::new(states.to_vec(), [1, T, OBS]), &dev),
        actions: Tensor::from_data(TensorData::new(actions.to_vec(), [1, T, ACT]), &dev),
        timesteps: Tensor::<2, Int>::from_data(TensorData::new((0..T as i64).collect::<Vec<_>>(), [1, T]), &dev),
    }
}

fn features(m: &DecisionTransformer, r: &[f32], s: &[f32], a: &[f32]) -> Vec<Vec<f32>> {
    let f = to_host(m.features(input(r, s, a)));
    f.chunks(16).map(|c| c.to_vec()).collect()
}

fn ramp(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * k).sin()).collect()
}

#[test]
fn later_tokens_do_not_change_earlier_outputs() {
    for head in [HeadConfig::Linear, "{ fourier = { frequencies = 4 } }".parse().unwrap()] {
        let m = model(head);
        let (r, s, a) = (ramp(T, 0.3), ramp(T * OBS, 0.7), ramp(T * ACT, 1.1));
        let base = features(&m, &r, &s, &a);

        // Change the state at step 4: outputs at steps 0..4 must not move, step 4 must.
        let mut s2 = s.clone();
        s2[4 * OBS] += 5.0;
        let f = features(&m, &r, &s2, &a);
        for t in 0..4 {
            assert_eq!(f[t], base[t], "step {t} saw the future state at step 4");
        }
        assert_ne!(f[4], base[4], "step 4 must see its own state");

        // Change the action at step 3: it comes after the state token of step 3, so only steps 4.. may move.
        let mut a2 = a.clone();
        a2[3 * ACT] += 5.0;
        let f = features(&m, &r, &s, &a2);
        for t in 0..=3 {
            assert_eq!(f[t], base[t], "step {t} saw the action taken at step 3");
        }
        assert_ne!(f[4], base[4], "step 4 must see the action of step 3");

        // Change the return-to-go at step 5: nothing before it moves.
        let mut r2 = r.clone();
        r2[5] += 5.0;
        let f = features(&m, &r2, &s, &a);
        for t in 0..5 {
            assert_eq!(f[t], base[t], "step {t} saw the return-to-go of step 5");
        }
        assert_ne!(f[5], base[5]);
    }
}

#[test]
fn config_errors_name_the_field() {
    let bad = DecisionTransformerConfig { heads: 3, embed_dim: 16, ..Default::default() };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("heads"), "{e}");
    let bad = DecisionTransformerConfig { dropout: 1.5, ..Default::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("dropout"));
    let parsed: Result<DecisionTransformerConfig, _> = toml::from_str("layers = 2\nlayerz = 3\n");
    assert!(parsed.unwrap_err().to_string().contains("layerz"));
}

#[test]
fn nature_cnn_encodes_frame_stacks() {
    assert_eq!(frl_agents::dt::nature_cnn_output(84, 84), (7, 7));
    let config = DecisionTransformerConfig {
        layers: 1,
        embed_dim: 16,
        context: 3,
        dropout: 0.0,
        state_encoder: StateEncoderConfig::NatureCnn { frames: 2, height: 40, width: 36 },
        ..Default::default()
    };
    let dev = Device::flex();
    let mut rng = StdRng::seed_from_u64(1);
    let obs = 2 * 40 * 36;
    let m = DecisionTransformer::new(&config, obs, 18, 1, 18, &mut rng, &dev).unwrap();
    let input = random_input(2, 3, obs, 18, &dev);
    assert_eq!(m.features(input).dims(), [2, 3, 16]);
    let err = DecisionTransformer::new(&config, obs + 1, 18, 1, 18, &mut rng, &dev).unwrap_err().to_string();
    assert!(err.contains("state_encoder"), "{err}");
    let parsed: DecisionTransformerConfig =
        toml::from_str("state_encoder = { nature_cnn = { frames = 4, height = 84, width = 84 } }").unwrap();
    assert_eq!(parsed.state_encoder.expected_obs_dim(), Some(4 * 84 * 84));
    let small = DecisionTransformerConfig {
        state_encoder: StateEncoderConfig::NatureCnn { frames: 4, height: 20, width: 84 },
        ..Default::default()
    };
    assert!(small.validate().unwrap_err().to_string().contains("nature_cnn"));
}
