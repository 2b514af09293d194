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
