//! The one place that picks the tensor backend: burn's pure-Rust `flex` on the CPU by default; with the `wgpu`
//! feature, burn's wgpu backend on a GPU (Vulkan); with the `cuda` feature, burn's CUDA backend.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Where training runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// burn's `flex` CPU backend.
    #[default]
    Cpu,
    /// The build's GPU backend (wgpu or CUDA) on a hardware GPU.
    Gpu,
    /// The wgpu backend on a software Vulkan adapter (Mesa llvmpipe): the GPU code path without a GPU, for tests.
    SoftwareGpu,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Gpu => "gpu",
            DeviceChoice::SoftwareGpu => "software-gpu",
        })
    }
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "gpu" => Ok(DeviceChoice::Gpu),
            "software-gpu" => Ok(DeviceChoice::SoftwareGpu),
            other => Err(format!("unknown device `{other}`: expected cpu, gpu or software-gpu")),
        }
    }
}

/// The GPU backend compiled into this build, if any.
pub const GPU_BACKEND: Option<&str> = if cfg!(feature = "cuda") {
    Some("cuda")
} else if cfg!(feature = "wgpu") {
    Some("wgpu")
} else {
    None
};

/// Errors choosing a device.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The build has no GPU backend.
    #[error("device `{0}` needs a GPU backend, and this frl was built without one: rebuild with --features wgpu")]
    NoGpuBackend(DeviceChoice),
    /// No adapter of the wanted kind exists.
    #[error("no {wanted} found; adapters seen: {seen}")]
    NoAdapter {
        /// What was looked for.
        wanted: &'static str,
        /// The adapters that exist.
        seen: String,
    },
}

/// A device chosen for training, with a description of the hardware behind it.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The autodiff device models train on.
    pub device: Device,
    /// Backend and adapter, for logs and summaries.
    pub name: String,
}

/// The device models train on (with autodiff), for `choice`.
pub fn select(choice: DeviceChoice) -> Result<Selected, BackendError> {
    match choice {
        DeviceChoice::Cpu => Ok(Selected { device: Device::flex().autodiff(), name: "flex (CPU)".into() }),
        DeviceChoice::Gpu | DeviceChoice::SoftwareGpu => gpu(choice),
    }
}

#[cfg(feature = "cuda")]
fn gpu(choice: DeviceChoice) -> Result<Selected, BackendError> {
    if choice == DeviceChoice::SoftwareGpu {
        return Err(BackendError::NoAdapter { wanted: "software adapter (the cuda build has none)", seen: "-".into() });
    }
    Ok(Selected { device: Device::cuda(0).autodiff(), name: "cuda (GPU 0)".into() })
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
fn gpu(choice: DeviceChoice) -> Result<Selected, BackendError> {
    use burn::tensor::DeviceKind;
    use wgpu::DeviceType;

    let adapters = wgpu_adapters();
    let seen = if adapters.is_empty() {
        "none (is a Vulkan loader and driver installed?)".to_string()
    } else {
        adapters
            .iter()
            .map(|a| format!("{} ({:?}, {:?})", a.name, a.device_type, a.backend))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |t: DeviceType| adapters.iter().find(|a| a.device_type == t);
    let (kind, info) = if choice == DeviceChoice::SoftwareGpu {
        match find(DeviceType::Cpu) {
            Some(a) => (DeviceKind::Cpu, a),
            None => return Err(BackendError::NoAdapter { wanted: "software Vulkan adapter", seen }),
        }
    } else if let Some(a) = find(DeviceType::DiscreteGpu) {
        (DeviceKind::DiscreteGpu(0), a)
    } else if let Some(a) = find(DeviceType::IntegratedGpu) {
        (DeviceKind::IntegratedGpu(0), a)
    } else if let Some(a) = find(DeviceType::VirtualGpu) {
        (DeviceKind::VirtualGpu(0), a)
    } else {
        return Err(BackendError::NoAdapter { wanted: "GPU adapter", seen });
    };
    let flavour = if cfg!(feature = "gpu-fusion") { "wgpu+fusion" } else { "wgpu" };
    let name = format!("{flavour} ({}, {:?})", info.name, info.backend);
    Ok(Selected { device: Device::wgpu(kind).autodiff(), name })
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn gpu(choice: DeviceChoice) -> Result<Selected, BackendError> {
    Err(BackendError::NoGpuBackend(choice))
}

/// The adapters wgpu sees on this machine.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapters() -> Vec<wgpu::AdapterInfo> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::yield_now();
        }
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN)).iter().map(wgpu::Adapter::get_info).collect()
}

/// The CPU training device (flex with autodiff).
pub fn training_device() -> Device {
    Device::flex().autodiff()
}

/// A short name of the CPU backend, for logs and summaries.
pub fn backend_name() -> &'static str {
    "flex (CPU)"
}
