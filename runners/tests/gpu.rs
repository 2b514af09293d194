//! The GPU backend choice: without a GPU feature `gpu` is a clear error; with `wgpu`, training on Mesa's software
//! Vulkan adapter (the GPU code path, no GPU needed) gives the CPU's losses on the same batches.

use frl_learner::backend::{DeviceChoice, select};

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
#[test]
fn gpu_devices_need_a_gpu_build() {
    for choice in [DeviceChoice::Gpu, DeviceChoice::SoftwareGpu] {
        let err = select(choice).unwrap_err().to_string();
        assert!(err.contains(&choice.to_string()) && err.contains("--features wgpu"), "{err}");
    }
    assert_eq!(select(DeviceChoice::Cpu).unwrap().name, "flex (CPU)");
    assert_eq!("software-gpu".parse::<DeviceChoice>(), Ok(DeviceChoice::SoftwareGpu));
    assert!("tpu".parse::<DeviceChoice>().unwrap_err().contains("tpu"));
}

#[cfg(feature = "wgpu")]
#[test]
fn software_gpu_training_matches_the_cpu() {
    let selected = select(DeviceChoice::SoftwareGpu)
        .expect("the software-gpu device needs Mesa's Vulkan drivers: apt-get install mesa-vulkan-drivers libvulkan1");
    assert!(selected.name.starts_with("wgpu"), "{}", selected.name);
    let agreement = frl_runners::bench::loss_agreement(&selected.device, 3, 1e-3).unwrap();
    assert!(agreement.pass, "{agreement:?}");
    // the steps trained: the loss moved
    assert!((agreement.cpu[0] - agreement.cpu[2]).abs() > 1e-4, "{agreement:?}");
}

#[cfg(feature = "wgpu")]
#[test]
fn gpu_device_refuses_software_adapters() {
    match select(DeviceChoice::Gpu) {
        Ok(s) => assert!(!s.name.contains("llvmpipe"), "{}", s.name),
        Err(e) => assert!(e.to_string().contains("no GPU adapter found"), "{e}"),
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn online_dqn_trains_on_the_software_gpu() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"online-gpu\"\nruns_dir = \"{}\"\nagent = \"dqn\"\n[dqn]\nhidden = [32]\n\
         head = {{ fourier = {{ frequencies = 4 }} }}\natoms = 16\nv_min = -20.0\nv_max = 20.0\n\
         epsilon_decay_steps = 1000\n[online]\nenv = \"CartPole-v1\"\nenv_steps = 1500\nactors = 1\n\
         learning_starts = 300\nupdates_per_step = 0.25\nbroadcast_every = 25\n[train]\nbatch_size = 32\n\
         log_every = 25\ncheckpoint_every = 100\n[eval]\nepisodes = 1\nactors = 1\n",
        dir.path().display()
    );
    let job = frl_learner::TrainJob::parse(&text).unwrap();
    let options = frl_learner::TrainOptions { quiet: true, device: DeviceChoice::SoftwareGpu, ..Default::default() };
    let s = frl_agents::train(&job, &options, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(s.backend.starts_with("wgpu"), "{}", s.backend);
    let o = s.online.unwrap();
    assert!(o.env_steps >= 1500 && s.steps >= 250 && s.final_loss.is_finite(), "{} updates, {o:?}", s.steps);
}
