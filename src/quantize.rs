//! `unmask quantize` (issue 18): a bundle whose transformer projections are
//! stored in candle's quantized GGUF format (`candle_core::quantized`), so
//! the 8B model fits 12-16 GB GPUs. What stays in higher precision, and why:
//! the norms (F32: a few thousand values, and every activation passes
//! them), the token embedding and the output head (F16: the head's image
//! slice decides every code, the embedding every input; together 2.2 GB of
//! the 8B model). A projection whose input width is not a whole number of
//! the type's blocks (Q4K: 256) falls back to Q4_0 (4-bit, blocks of 32),
//! then Q8_0, else F16: the embedded model (width 128) is Q4_0 under `q4k`. The
//! VQ-VAE, tokenizer, configs and `unmask.json` are copied unchanged. The
//! output folder is written beside its target and renamed when complete.

use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device};

use crate::bundle::{Bundle, GGUF_WEIGHTS};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantType {
    Q8_0,
    Q4K,
}

impl QuantType {
    /// Parses what the user typed for the flag (or field) `label`, which
    /// the message names: `--type` of `unmask quantize`, `--quant` of `unmask plan`.
    pub fn parse(label: &str, s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "q8_0" | "q8" => Ok(Self::Q8_0),
            "q4k" | "q4_k" | "q4" => Ok(Self::Q4K),
            _ => Err(Error::invalid(format!("{label} {s}: use q8_0 or q4k"))),
        }
    }
    fn ggml(self) -> GgmlDType {
        match self {
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4K => GgmlDType::Q4K,
        }
    }
    /// Stored bytes per weight.
    pub fn bytes_per_weight(self) -> f64 {
        let t = self.ggml();
        t.type_size() as f64 / t.block_size() as f64
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Report {
    pub dir: PathBuf,
    pub bytes: u64,
    /// (type, tensors) counts.
    pub types: Vec<(String, usize)>,
}

/// The type each tensor of the transformer gets.
fn choose(name: &str, shape: &[usize], want: QuantType) -> GgmlDType {
    let projection = name.contains(".blocks.") && shape.len() == 2;
    if !projection {
        return if shape.len() == 1 { GgmlDType::F32 } else { GgmlDType::F16 };
    }
    let inner = shape[1];
    // 4-bit stays 4-bit on narrow models: Q4_0's blocks are 32 wide
    let chain: &[GgmlDType] = match want {
        QuantType::Q4K => &[GgmlDType::Q4K, GgmlDType::Q4_0, GgmlDType::Q8_0],
        QuantType::Q8_0 => &[GgmlDType::Q8_0],
    };
    for &t in chain {
        if inner % t.block_size() == 0 {
            return t;
        }
    }
    GgmlDType::F16
}

pub fn quantize(model: &Path, out: &Path, want: QuantType) -> Result<Report> {
    let bundle = Bundle::open(model)?;
    if bundle.is_quantized() {
        return Err(Error::bundle(model, "is quantized already: quantize the safetensors bundle it came from"));
    }
    if out.exists() {
        return Err(Error::bundle(out, "exists already: choose a new --out folder (nothing is overwritten)"));
    }
    // every weight is checked before anything is written: damaged weights
    // (NaN, infinite) would quantize into a bundle that runs to blank images.
    // The VQ-VAE is copied as it is, so it is read here; the transformer is
    // checked tensor by tensor as it is quantized, in memory.
    verify_safetensors(&bundle.vq_weights)?;
    // SAFETY: read-only maps of files the bundle check has opened and parsed.
    let vb = unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&bundle.weight_files, DType::F32, &Device::Cpu) }
        .map_err(|e| Error::bundle(&bundle.weight_files[0], format!("cannot map weights: {e}")))?;
    let file_of = |name: &str| shard_of(&bundle.weight_files, name);
    let (tensors, counts) = quantize_tensors(&bundle.config, &vb, want, &file_of)?;

    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::bundle(parent, format!("cannot create: {e}")))?;
    let tmp = parent.join(format!(".{}.partial", out.file_name().and_then(|n| n.to_str()).unwrap_or("quantized")));
    let _ = std::fs::remove_dir_all(&tmp);
    let r = write(&bundle, &tmp, &tensors, want);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    r?;
    std::fs::rename(&tmp, out).map_err(|e| Error::bundle(out, format!("cannot move the finished bundle in place: {e}")))?;
    Ok(Report { dir: out.to_path_buf(), bytes: dir_bytes(out), types: counts })
}

fn write(bundle: &Bundle, tmp: &Path, tensors: &[(String, QTensor)], want: QuantType) -> Result<()> {
    std::fs::create_dir_all(tmp.join("vqvae")).map_err(|e| Error::bundle(tmp, format!("cannot create: {e}")))?;
    write_file(&tmp.join(GGUF_WEIGHTS), tensors, want)?;
    for rel in ["config.json", "tokenizer.json", "unmask.json", "vqvae/config.json", "vqvae/diffusion_pytorch_model.safetensors"] {
        let from = bundle.dir.join(rel);
        if from.is_file() {
            std::fs::copy(&from, tmp.join(rel)).map_err(|e| Error::bundle(&from, format!("cannot copy: {e}")))?;
        }
    }
    Ok(())
}

/// Writes the transformer of `cfg`, read from `vb` (f32), as a GGUF file at
/// `path` with its projections in `want`; the count of tensors per type.
/// A tensor holding NaN or infinity is refused (naming it) before the file is made.
pub fn write_gguf(cfg: &crate::model::LladaConfig, vb: &candle_nn::VarBuilder, path: &Path, want: QuantType) -> Result<Vec<(String, usize)>> {
    let (tensors, counts) = quantize_tensors(cfg, vb, want, &|_| None)?;
    write_file(path, &tensors, want)?;
    Ok(counts)
}

type Quantized = (Vec<(String, QTensor)>, Vec<(String, usize)>);

/// Every tensor of `cfg` read from `vb` and quantized, in name order, with
/// the count per type. A value that is NaN or infinite fails, naming the
/// tensor and, when `file_of` knows it, its file.
fn quantize_tensors(
    cfg: &crate::model::LladaConfig,
    vb: &candle_nn::VarBuilder,
    want: QuantType,
    file_of: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<Quantized> {
    let mut names: Vec<(String, Vec<usize>)> = cfg.expected_tensors();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (name, shape) in &names {
        let t = vb.get(shape.as_slice(), name).map_err(|e| Error::invalid(format!("reading `{name}`: {e}")))?;
        if let Some((i, v)) = first_non_finite(&t)? {
            let msg = format!("tensor `{name}` holds {v} at index {i}: the weights are damaged, nothing was written; download them again");
            return Err(match file_of(name) {
                Some(f) => Error::bundle(f, msg),
                None => Error::invalid(msg),
            });
        }
        let ty = choose(name, shape, want);
        let q = QTensor::quantize(&t, ty).map_err(|e| Error::invalid(format!("quantizing `{name}` to {ty:?}: {e}")))?;
        *counts.entry(format!("{ty:?}")).or_default() += 1;
        tensors.push((name.clone(), q));
    }
    Ok((tensors, counts.into_iter().collect()))
}

fn write_file(path: &Path, tensors: &[(String, QTensor)], want: QuantType) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| Error::bundle(path, format!("cannot create: {e}")))?;
    let arch = gguf_file::Value::String("llada".into());
    let kind = gguf_file::Value::String(format!("{:?}", want.ggml()).to_lowercase());
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (n.as_str(), q)).collect();
    gguf_file::write(&mut f, &[("general.architecture", &arch), ("unmask.quantization", &kind)], &refs)
        .map_err(|e| Error::bundle(path, format!("cannot write: {e}")))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// The first value of `t` that is NaN or infinite, with its index (row-major).
pub fn first_non_finite(t: &candle_core::Tensor) -> Result<Option<(usize, f32)>> {
    let find = |v: &[f32]| v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i]));
    let t = t.to_dtype(DType::F32)?;
    // an f32 tensor in memory is read in place: the 8B model's embedding is 2 GiB
    {
        let (storage, layout) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(c), Some((a, b))) = (&*storage, layout.contiguous_offsets()) {
            return Ok(find(&c.as_slice::<f32>()?[a..b]));
        }
    }
    Ok(find(&t.flatten_all()?.to_vec1::<f32>()?))
}

/// Reads every tensor of a safetensors file, one at a time, and fails on
/// the first value that is NaN or infinite, naming the file and tensor (what
/// `unmask info --verify` does); the count of values read.
pub fn verify_safetensors(file: &Path) -> Result<usize> {
    // SAFETY: read-only map of a file whose header the bundle check parsed
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(file) }.map_err(|e| Error::bundle(file, format!("cannot map: {e}")))?;
    let mut n = 0;
    for (name, _) in st.tensors() {
        let t = st.load(&name, &Device::Cpu).map_err(|e| Error::bundle(file, format!("tensor `{name}`: {e}")))?;
        if let Some((i, v)) = first_non_finite(&t)? {
            return Err(Error::bundle(file, format!("tensor `{name}` holds {v} at index {i}: the weights are damaged; download them again")));
        }
        n += t.elem_count();
    }
    Ok(n)
}

/// The shard of `files` that stores tensor `name`.
fn shard_of(files: &[PathBuf], name: &str) -> Option<PathBuf> {
    files.iter().find(|f| {
        // SAFETY: read-only map of a shard the bundle check parsed
        unsafe { candle_core::safetensors::MmapedSafetensors::new(f) }.is_ok_and(|st| st.get(name).is_ok())
    }).cloned()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

/// The transformer's bytes in memory when its projections are `quant`
/// (dense: every weight at `dtype_bytes`): the projections at their stored
/// type (the same fallbacks as [`quantize`]), the embedding, head and norms
/// in the compute dtype (they are dequantized at load), plus one projection
/// unpacked at 4 bytes a weight: a pass over more than `DENSE_ROWS` rows on
/// the GPU dequantizes each projection to f16 and then the compute dtype
/// (2 + 2 bytes), one projection at a time.
pub fn weight_bytes(cfg: &crate::model::LladaConfig, quant: Option<QuantType>, dtype_bytes: u64) -> u64 {
    let Some(q) = quant else { return cfg.parameter_count() as u64 * dtype_bytes };
    let mut bytes = 0f64;
    let mut largest = 0u64;
    for (name, shape) in cfg.expected_tensors() {
        let n: usize = shape.iter().product();
        let t = choose(&name, &shape, q);
        bytes += match t {
            GgmlDType::F32 | GgmlDType::F16 => n as f64 * dtype_bytes as f64,
            t => {
                largest = largest.max(n as u64 * 4);
                n as f64 * t.type_size() as f64 / t.block_size() as f64
            }
        };
    }
    bytes as u64 + largest
}
