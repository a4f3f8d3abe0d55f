//! A loaded model: transformer, VQ-VAE and tokenizer of one bundle, on one
//! device. This is what samplers and the worker hold.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Serialize;

use crate::bundle::{Bundle, SpecialTokens};
use crate::error::{Error, Result};
use crate::model::{Llada, VqModel};

/// Where to run. `Auto` takes the GPU when built with `cuda` and one is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(i) => Device::new_cuda(i).map_err(|e| {
                Error::invalid(format!("CUDA device {i} unavailable ({e}); build with `--features cuda` or use the CPU"))
            }),
            DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        }
    }
}

/// What front ends show about a loaded model.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    pub parameters: usize,
    pub stored_dtype: String,
    pub compute_dtype: String,
    pub device: String,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub mlp_hidden: usize,
    pub vocab: usize,
    pub text_vocab: usize,
    pub codebook_size: usize,
    pub vq_factor: usize,
    pub vq_block_out_channels: Vec<usize>,
    pub special_tokens: SpecialTokens,
    pub tokenizer_vocab: usize,
    /// The projections' quantized type (`Q8_0`, `Q4K`) of a GGUF bundle.
    pub quantization: Option<String>,
    pub default_width: Option<usize>,
    pub default_height: Option<usize>,
    pub default_steps: Option<usize>,
    pub default_cfg: Option<f32>,
    pub default_edit_cfg: Option<f32>,
    pub default_edit_cfg_img: Option<f32>,
    pub default_temperature: Option<f32>,
    /// Retouch crops run at most at this area (see [`crate::crop`]).
    pub work_area: crate::crop::WorkArea,
    /// Answer positions for understanding, when the bundle names them.
    pub default_gen_length: Option<usize>,
    /// How a picture is described as a prompt (the bundle's, else the release's).
    #[serde(default = "crate::bundle::Describe::release")]
    pub describe: crate::bundle::Describe,
}

impl ModelInfo {
    /// (text, image) guidance of a task by default: the bundle's, else the
    /// release's (what [`crate::bundle::BundleDefaults::guidance`] says).
    pub fn guidance(&self, edit: bool) -> (f32, f32) {
        let d = crate::bundle::BundleDefaults {
            cfg: self.default_cfg,
            edit_cfg: self.default_edit_cfg,
            edit_cfg_img: self.default_edit_cfg_img,
            ..Default::default()
        };
        d.guidance(edit)
    }

    pub fn from_bundle(b: &Bundle, tokenizer_vocab: usize, device: &Device, dtype: DType) -> Self {
        let c = &b.config;
        Self {
            name: b.name(),
            path: b.dir.display().to_string(),
            parameters: c.parameter_count(),
            stored_dtype: b.stored_dtype(),
            quantization: b.quantization(),
            compute_dtype: format!("{dtype:?}").to_lowercase(),
            device: device_name(device),
            d_model: c.d_model,
            n_layers: c.n_layers,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            mlp_hidden: c.mlp_hidden,
            vocab: c.vocab,
            text_vocab: b.special.image_offset as usize,
            codebook_size: b.special.codebook_size as usize,
            vq_factor: b.vq_config.factor(),
            vq_block_out_channels: b.vq_config.block_out_channels.clone(),
            special_tokens: b.special,
            tokenizer_vocab,
            default_width: b.defaults.width,
            default_height: b.defaults.height,
            default_steps: b.defaults.steps,
            default_cfg: b.defaults.cfg,
            default_edit_cfg: b.defaults.edit_cfg,
            default_edit_cfg_img: b.defaults.edit_cfg_img,
            default_temperature: b.defaults.temperature,
            work_area: b.defaults.work_area(),
            default_gen_length: b.defaults.gen_length,
            describe: b.defaults.describe.clone().unwrap_or_else(crate::bundle::Describe::release),
        }
    }
}

pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

pub fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer> {
    tokenizers::Tokenizer::from_file(path).map_err(|e| Error::bundle(path, format!("unreadable tokenizer: {e}")))
}

pub struct Engine {
    pub bundle: Bundle,
    pub llada: Llada,
    pub vq: VqModel,
    pub tokenizer: tokenizers::Tokenizer,
    pub special: SpecialTokens,
    pub info: ModelInfo,
}

impl Engine {
    /// Opens, checks and loads a bundle. CPU computes in f32 (stored bf16/f16
    /// is upcast), CUDA in bf16.
    pub fn load(dir: impl AsRef<Path>, device: DeviceChoice) -> Result<Self> {
        let bundle = Bundle::open(dir)?;
        let device = device.resolve()?;
        let dtype = if device.is_cuda() { DType::BF16 } else { DType::F32 };
        let tokenizer = load_tokenizer(&bundle.tokenizer)?;

        // SAFETY: the weight files are memory-mapped read-only; headers were
        // checked above, and candle copies each tensor out on load.
        let llada = if bundle.is_quantized() {
            Llada::load_gguf(&bundle.config, &bundle.weight_files[0], &device, dtype)
                .map_err(|e| Error::bundle(&bundle.weight_files[0], format!("loading the quantized transformer: {e}")))?
        } else {
            let vb = unsafe { VarBuilder::from_mmaped_safetensors(&bundle.weight_files, dtype, &device) }
                .map_err(|e| Error::bundle(&bundle.weight_files[0], format!("cannot map weights: {e}")))?;
            Llada::load(&bundle.config, vb).map_err(|e| Error::bundle(&bundle.dir, format!("loading the transformer: {e}")))?
        };
        let vq = load_vq(&bundle, &device)?;
        let info = ModelInfo::from_bundle(&bundle, tokenizer.get_vocab_size(true), &device, dtype);
        let special = bundle.special;
        Ok(Self { bundle, llada, vq, tokenizer, special, info })
    }
}

/// The VQ-VAE of a checked bundle, in f32.
pub fn load_vq(bundle: &Bundle, device: &Device) -> Result<VqModel> {
    // SAFETY: as for the transformer weights.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&bundle.vq_weights], DType::F32, device) }
        .map_err(|e| Error::bundle(&bundle.vq_weights, format!("cannot map weights: {e}")))?;
    VqModel::load(&bundle.vq_config, vb).map_err(|e| Error::bundle(&bundle.vq_weights, e.to_string()))
}
