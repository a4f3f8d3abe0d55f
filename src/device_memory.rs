//! Which memory a request is counted against (issue 29): on CUDA the GPU's
//! free memory (cudarc's `mem_get_info`), otherwise the host's available
//! memory. Compiles without the `cuda` feature too; then only the host is known.

use candle_core::{Device, DeviceLocation};

/// Where a model's tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    Host,
    Gpu(usize),
}

impl Memory {
    pub fn of(device: &Device) -> Self {
        match device.location() {
            DeviceLocation::Cuda { gpu_id } => Memory::Gpu(gpu_id),
            _ => Memory::Host,
        }
    }

    /// From a [`crate::ModelInfo`]'s device ("cpu", "cuda" = GPU 0, "cuda:1").
    pub fn of_name(name: &str) -> Self {
        match name.strip_prefix("cuda") {
            Some("") => Memory::Gpu(0),
            Some(n) => n.strip_prefix(':').and_then(|n| n.parse().ok()).map_or(Memory::Host, Memory::Gpu),
            None => Memory::Host,
        }
    }

    /// Where `DeviceChoice::Auto` would put a model: GPU 0 when one is found.
    pub fn auto() -> Self {
        if gpu_count() > 0 {
            Memory::Gpu(0)
        } else {
            Memory::Host
        }
    }

    /// "host RAM" or "GPU 0 (NVIDIA GeForce RTX 4090)": the memory a message names.
    pub fn describe(self) -> String {
        match self {
            Memory::Host => "host RAM".into(),
            Memory::Gpu(i) => match gpu_name(i) {
                Some(n) => format!("GPU {i} ({n})"),
                None => format!("GPU {i}"),
            },
        }
    }

    /// Bytes usable now: the GPU's free memory, or the host's `MemAvailable`.
    pub fn free(self) -> Option<u64> {
        self.free_total().map(|(f, _)| f)
    }

    /// (free, total) bytes, when they can be read.
    pub fn free_total(self) -> Option<(u64, u64)> {
        match self {
            Memory::Host => host(),
            Memory::Gpu(i) => gpu(i),
        }
    }
}

/// `MemAvailable` and `MemTotal` of /proc/meminfo, in bytes.
fn host() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |key: &str| -> Option<u64> { text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok() };
    Some((kb("MemAvailable:")? * 1024, kb("MemTotal:")? * 1024))
}

/// NVIDIA GPUs this build can use (0 without the `cuda` feature or a driver).
pub fn gpu_count() -> usize {
    #[cfg(feature = "cuda")]
    {
        cuda::CudaContext::device_count().map_or(0, |n| n.max(0) as usize)
    }
    #[cfg(not(feature = "cuda"))]
    0
}

#[cfg(feature = "cuda")]
use candle_core::cuda_backend::cudarc::driver as cuda;

/// The primary context of GPU `i`, retained once for the process: the same
/// context candle uses, so asking costs no second context on the card.
#[cfg(feature = "cuda")]
fn context(i: usize) -> Option<std::sync::Arc<cuda::CudaContext>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CONTEXTS: OnceLock<Mutex<HashMap<usize, Arc<cuda::CudaContext>>>> = OnceLock::new();
    let mut m = CONTEXTS.get_or_init(Default::default).lock().ok()?;
    if let Some(c) = m.get(&i) {
        return Some(c.clone());
    }
    let c = cuda::CudaContext::new(i).ok()?;
    m.insert(i, c.clone());
    Some(c)
}

fn gpu(_i: usize) -> Option<(u64, u64)> {
    #[cfg(feature = "cuda")]
    {
        let (free, total) = context(_i)?.mem_get_info().ok()?;
        Some((free as u64, total as u64))
    }
    #[cfg(not(feature = "cuda"))]
    None
}

fn gpu_name(_i: usize) -> Option<String> {
    #[cfg(feature = "cuda")]
    {
        context(_i)?.name().ok()
    }
    #[cfg(not(feature = "cuda"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_map_to_their_memory() {
        assert_eq!(Memory::of_name("cpu"), Memory::Host);
        assert_eq!(Memory::of_name("cuda"), Memory::Gpu(0));
        assert_eq!(Memory::of_name("cuda:1"), Memory::Gpu(1));
        assert_eq!(Memory::of(&Device::Cpu), Memory::Host);
        assert_eq!(Memory::Host.describe(), "host RAM");
        let (free, total) = Memory::Host.free_total().unwrap();
        assert!(free > 0 && free <= total);
    }
}
