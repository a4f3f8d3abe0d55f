//! A model bundle on disk in the released Lumina-DiMOO layout (spec section 1):
//! everything is checked from file headers before any weight is read, so a bad
//! bundle fails in milliseconds with the file and tensor named.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{LladaConfig, VqConfig};

/// Token ids with a role in the sequence layouts (spec sections 1 and 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct SpecialTokens {
    pub mask: u32,
    pub newline: u32,
    pub boi: u32,
    pub eoi: u32,
    pub uncondition: u32,
    pub answer_start: u32,
    pub answer_end: u32,
    pub eos: u32,
    pub bos: u32,
    pub answer_pad: u32,
    /// VQ code k is token `image_offset + k`.
    pub image_offset: u32,
    pub codebook_size: u32,
}

impl Default for SpecialTokens {
    /// The released checkpoint's ids.
    fn default() -> Self {
        Self {
            mask: 126336,
            newline: 126084,
            boi: 126349,
            eoi: 126350,
            uncondition: 126351,
            answer_start: 126354,
            answer_end: 126355,
            eos: 126081,
            bos: 126080,
            answer_pad: 126339,
            image_offset: 126356,
            codebook_size: 8192,
        }
    }
}

impl SpecialTokens {
    pub fn codebook(&self) -> std::ops::Range<usize> {
        self.image_offset as usize..(self.image_offset + self.codebook_size) as usize
    }
}

/// Optional defaults a bundle can suggest to front ends (`unmask.json` "defaults").
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct BundleDefaults {
    pub width: Option<usize>,
    pub height: Option<usize>,
    pub steps: Option<usize>,
    pub cfg: Option<f32>,
    /// Text and image guidance of instruction edits.
    pub edit_cfg: Option<f32>,
    pub edit_cfg_img: Option<f32>,
    pub temperature: Option<f32>,
    /// Answer positions for understanding.
    pub gen_length: Option<usize>,
    pub name: Option<String>,
    /// The most pixels one retouch run sees, as `[width, height]` (its area
    /// counts); default: `width` x `height` above, else 1024 x 1024.
    pub working_size: Option<[usize; 2]>,
    /// How many times a small retouch crop may be enlarged (default 4; 1 for
    /// a model that knows one scale).
    pub max_upscale: Option<f64>,
    /// How to describe a picture in a prompt the model draws from (the
    /// Studio's "Describe" on a region): questions asked in turn, `{1}`,
    /// `{2}`... standing for earlier answers; default [`Describe::RELEASE`].
    pub describe: Option<Describe>,
}

/// Questions whose answers fill a prompt (see [`BundleDefaults::describe`]).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Describe {
    pub questions: Vec<String>,
    /// The prompt, with `{k}` for the k-th answer.
    pub prompt: String,
}

impl Describe {
    /// Questions asked at most, however many a bundle lists.
    pub const MAX_QUESTIONS: usize = 8;

    /// The released model answers a free question in a sentence.
    pub fn release() -> Self {
        Self { questions: vec!["Describe this image in one short sentence.".into()], prompt: "{1}".into() }
    }

    /// The `k`-th question (from 0) with the answers so far put in, or
    /// `None` past the last.
    pub fn question(&self, k: usize, answers: &[String]) -> Option<String> {
        // a bundle's list is read as given: a few questions make a prompt, not thousands
        self.questions.get(k).filter(|_| k < Self::MAX_QUESTIONS).map(|q| fill(q, answers))
    }

    /// The prompt once every question is answered.
    pub fn prompt(&self, answers: &[String]) -> String {
        fill(&self.prompt, answers).split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn fill(template: &str, answers: &[String]) -> String {
    let mut out = template.to_string();
    // from the last: "{12}" is never read as "{1}" and a "2"
    for (i, a) in answers.iter().enumerate().rev() {
        out = out.replace(&format!("{{{}}}", i + 1), a.trim().trim_end_matches(['.', '?', '!']));
    }
    out
}

impl BundleDefaults {
    /// The retouch working area (see [`crate::crop`]).
    pub fn work_area(&self) -> crate::crop::WorkArea {
        let rel = crate::crop::WorkArea::RELEASE;
        let area = match (self.working_size, self.width, self.height) {
            (Some([w, h]), _, _) => w * h,
            (None, Some(w), Some(h)) => w * h,
            _ => rel.area,
        };
        crate::crop::WorkArea { area, max_upscale: self.max_upscale.unwrap_or(rel.max_upscale) }
    }

    /// (text, image) guidance of a task: the bundle's values, else the
    /// release's (4 for images; 2.5 text and 4 image for edits).
    pub fn guidance(&self, edit: bool) -> (f32, f32) {
        if edit {
            (self.edit_cfg.unwrap_or(2.5), self.edit_cfg_img.unwrap_or(4.0))
        } else {
            (self.cfg.unwrap_or(4.0), 0.0)
        }
    }
}

#[derive(Debug, Deserialize)]
struct UnmaskJson {
    special_tokens: Option<SpecialTokens>,
    #[serde(default)]
    defaults: BundleDefaults,
}

#[derive(Debug, Deserialize)]
struct IndexJson {
    weight_map: BTreeMap<String, String>,
}

/// One stored tensor as its file header describes it.
#[derive(Debug, Clone)]
pub struct StoredTensor {
    pub file: PathBuf,
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// A checked bundle: configs parsed, every transformer tensor found with the
/// right shape, VQ weights present and complete.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub config: LladaConfig,
    pub vq_config: VqConfig,
    pub special: SpecialTokens,
    pub defaults: BundleDefaults,
    /// Shard files of the transformer, in name order.
    pub weight_files: Vec<PathBuf>,
    pub tensors: HashMap<String, StoredTensor>,
    pub vq_weights: PathBuf,
    pub tokenizer: PathBuf,
    /// True when `unmask.json` named the special tokens (not the released ids).
    pub custom_tokens: bool,
}

const PICKLE_EXT: [&str; 5] = ["bin", "pt", "pth", "pkl", "ckpt"];

fn is_pickle_name(name: &str) -> bool {
    Path::new(name).extension().and_then(|e| e.to_str()).is_some_and(|e| PICKLE_EXT.contains(&e))
}

fn pickle_refused(path: &Path) -> Error {
    Error::bundle(path, "PyTorch pickle weights are refused (they can run code); convert the checkpoint to safetensors")
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<T> {
    let text = crate::model::config::read_bundle_json(path, what)?;
    serde_json::from_str(&text).map_err(|e| Error::bundle(path, format!("unparsable {what}: {e}")))
}

/// Reads a safetensors header from a memory map (no tensor data is touched)
/// and returns name -> (dtype, shape). Truncated files and pickles are named as such.
pub fn read_safetensors_header(path: &Path) -> Result<Vec<(String, String, Vec<usize>)>> {
    regular_file(path, "weight file")?;
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::bundle(path, "missing weight file")
        } else {
            Error::io(path, e)
        }
    })?;
    // SAFETY: the map is read-only and dropped before this function returns;
    // a file changed underneath us yields a parse error, not unsoundness we rely on.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    if map.starts_with(b"PK\x03\x04") || map.first() == Some(&0x80) {
        return Err(pickle_refused(path));
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&map).map_err(|e| {
        use safetensors::SafeTensorError as E;
        let why = match e {
            E::MetadataIncompleteBuffer => "truncated (file shorter than its header says): download it again".to_string(),
            E::HeaderTooSmall | E::InvalidHeaderLength | E::HeaderTooLarge => {
                "not a safetensors file, or truncated inside its header".to_string()
            }
            other => format!("not a valid safetensors file: {other}"),
        };
        Error::bundle(path, why)
    })?;
    let mut out: Vec<_> =
        meta.tensors().into_iter().map(|(n, i)| (n, format!("{:?}", i.dtype), i.shape.clone())).collect();
    out.sort();
    Ok(out)
}

/// The tensors of a GGUF weight file (`unmask quantize`): name, ggml type,
/// shape. A file shorter than its tensors need, or a type candle does not
/// know, is refused naming the file (and the tensor).
pub fn read_gguf_header(path: &Path) -> Result<Vec<(String, String, Vec<usize>)>> {
    regular_file(path, "weight file")?;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file)
        // the first line: candle appends a backtrace when RUST_BACKTRACE is set
        .map_err(|e| Error::bundle(path, format!("not a GGUF file this version can read (truncated, damaged or an unknown tensor type): {}", e.to_string().lines().next().unwrap_or(""))))?;
    let mut out = Vec::with_capacity(content.tensor_infos.len());
    for (name, info) in &content.tensor_infos {
        let t = info.ggml_dtype;
        // dims come from the file: a product past u64 is damage, not a size
        let n = info.shape.dims().iter().try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::bundle(path, format!("tensor `{name}` claims an impossible shape {:?}", info.shape.dims())))?;
        if n % t.block_size() != 0 {
            return Err(Error::bundle(path, format!("tensor `{name}`: {n} values do not fill whole {t:?} blocks")));
        }
        let bytes = (n / t.block_size()) as u128 * t.type_size() as u128;
        if content.tensor_data_offset as u128 + info.offset as u128 + bytes > len as u128 {
            return Err(Error::bundle(path, format!("truncated: tensor `{name}` reaches past the end of the file; download or quantize it again")));
        }
        out.push((name.clone(), format!("{t:?}").to_uppercase(), info.shape.dims().to_vec()));
    }
    out.sort();
    Ok(out)
}

/// Tensor types a bundle may store: dense (safetensors) or quantized (GGUF).
const DENSE_TYPES: [&str; 3] = ["BF16", "F16", "F32"];
const GGUF_TYPES: [&str; 5] = ["F16", "F32", "Q8_0", "Q4K", "Q4_0"];

/// Refuses what is not a regular file before opening it (opening a FIFO
/// blocks; a link to `/dev/zero` maps endless zeros).
fn regular_file(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::bundle(path, format!("missing {what}"))),
        Err(e) => Err(Error::io(path, e)),
        Ok(m) if !m.is_file() => Err(Error::bundle(
            path,
            format!("the {what} is not a regular file (a folder, device, FIFO or a link to one): replace it with the real file"),
        )),
        Ok(_) => Ok(()),
    }
}

/// A weight_map entry must stay inside the bundle folder.
fn inside(dir: &Path, name: &str, index: &Path) -> Result<PathBuf> {
    let p = Path::new(name);
    let escapes = p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes || name.is_empty() {
        return Err(Error::bundle(index, format!("weight_map names \"{name}\", outside the bundle folder")));
    }
    Ok(dir.join(p))
}

/// The weight file of a quantized bundle.
pub const GGUF_WEIGHTS: &str = "model.gguf";

impl Bundle {
    /// The quantized type of the projections (`Q8_0`, `Q4K`), if any.
    pub fn quantization(&self) -> Option<String> {
        let mut q: Vec<&str> = self.tensors.values().map(|t| t.dtype.as_str()).filter(|d| d.starts_with('Q')).collect();
        q.sort();
        q.dedup();
        (!q.is_empty()).then(|| q.join("+"))
    }

    pub fn is_quantized(&self) -> bool {
        self.weight_files.iter().any(|f| f.extension().is_some_and(|e| e == "gguf"))
    }

    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        // a download in progress is never mistaken for a model
        if let Some(what) = crate::hub::incomplete(&dir) {
            return Err(Error::bundle(&dir, what));
        }
        if !dir.is_dir() {
            return Err(Error::bundle(&dir, "not a folder: pass the model bundle folder (with config.json)"));
        }
        let config = LladaConfig::from_file(&dir.join("config.json"))?;
        let (weight_files, claimed) = Self::find_weights(&dir)?;

        let mut tensors = HashMap::new();
        let gguf = weight_files.iter().any(|f| f.extension().is_some_and(|e| e == "gguf"));
        for file in &weight_files {
            let header = if gguf { read_gguf_header(file)? } else { read_safetensors_header(file)? };
            for (name, dtype, shape) in header {
                tensors.insert(name, StoredTensor { file: file.clone(), dtype, shape });
            }
        }
        for (name, file) in &claimed {
            match tensors.get(name) {
                Some(t) if &t.file == file => {}
                _ => {
                    return Err(Error::bundle(file, format!("index says it holds tensor `{name}`, but it does not")));
                }
            }
        }
        for (name, shape) in config.expected_tensors() {
            let Some(t) = tensors.get(&name) else {
                let hint = claimed.get(&name).unwrap_or(&weight_files[0]);
                return Err(Error::bundle(hint, format!("missing tensor `{name}` (shape {shape:?})")));
            };
            if t.shape != shape {
                return Err(Error::bundle(
                    &t.file,
                    format!("tensor `{name}` has shape {:?}, config.json implies {shape:?}", t.shape),
                ));
            }
            let allowed: &[&str] = if gguf { &GGUF_TYPES } else { &DENSE_TYPES };
            if !allowed.contains(&t.dtype.as_str()) {
                return Err(Error::bundle(&t.file, format!("tensor `{name}` is {}, expected one of {}", t.dtype, allowed.join(", "))));
            }
        }

        let vq_dir = dir.join("vqvae");
        if !vq_dir.is_dir() {
            return Err(Error::bundle(&vq_dir, "missing: the bundle needs the VQ-VAE in vqvae/ (config.json + safetensors)"));
        }
        let vq_config = VqConfig::from_file(&vq_dir.join("config.json"))?;
        let vq_weights = vq_dir.join("diffusion_pytorch_model.safetensors");
        if !vq_weights.exists() && vq_dir.join("diffusion_pytorch_model.bin").exists() {
            return Err(pickle_refused(&vq_dir.join("diffusion_pytorch_model.bin")));
        }
        read_safetensors_header(&vq_weights)?;

        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.exists() {
            return Err(Error::bundle(&tokenizer, "missing: the bundle needs its HF tokenizer.json"));
        }
        regular_file(&tokenizer, "tokenizer")?;
        if std::fs::metadata(&tokenizer).map(|m| m.len()).unwrap_or(0) > crate::input::TOKENIZER_FILE {
            return Err(Error::bundle(&tokenizer, format!("larger than the {} MiB a tokenizer may be", crate::input::TOKENIZER_FILE >> 20)));
        }

        let unmask_path = dir.join("unmask.json");
        let (special, defaults, custom_tokens) = if unmask_path.exists() {
            let u: UnmaskJson = read_json(&unmask_path, "unmask.json")?;
            let custom = u.special_tokens.is_some();
            (u.special_tokens.unwrap_or_default(), u.defaults, custom)
        } else {
            (SpecialTokens::default(), BundleDefaults::default(), false)
        };
        Self::check_special(&special, &config, &vq_config, if custom_tokens { &unmask_path } else { &dir })?;

        Ok(Self { dir, config, vq_config, special, defaults, weight_files, tensors, vq_weights, tokenizer, custom_tokens })
    }

    /// Shards from the index (each named once, in order), or the single file.
    fn find_weights(dir: &Path) -> Result<(Vec<PathBuf>, HashMap<String, PathBuf>)> {
        let index = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let gguf = dir.join(GGUF_WEIGHTS);
        if gguf.exists() {
            regular_file(&gguf, "weight file")?;
            Ok((vec![gguf], HashMap::new()))
        } else if index.exists() {
            let idx: IndexJson = read_json(&index, "model.safetensors.index.json")?;
            let mut files = Vec::new();
            let mut claimed = HashMap::new();
            for (tensor, file) in &idx.weight_map {
                if is_pickle_name(file) {
                    return Err(pickle_refused(&dir.join(file)));
                }
                let path = inside(dir, file, &index)?;
                if !files.contains(&path) {
                    files.push(path.clone());
                }
                claimed.insert(tensor.clone(), path);
            }
            if files.is_empty() {
                return Err(Error::bundle(&index, "weight_map is empty"));
            }
            files.sort();
            for f in &files {
                if !f.exists() {
                    return Err(Error::bundle(f, "missing weight shard named in model.safetensors.index.json"));
                }
                regular_file(f, "weight shard")?;
            }
            Ok((files, claimed))
        } else if single.exists() {
            Ok((vec![single], HashMap::new()))
        } else {
            for pickle in ["pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt"] {
                if dir.join(pickle).exists() {
                    return Err(pickle_refused(&dir.join(pickle)));
                }
            }
            Err(Error::bundle(dir, "no weights: expected model.safetensors.index.json + shards, or model.safetensors"))
        }
    }

    fn check_special(s: &SpecialTokens, cfg: &LladaConfig, vq: &VqConfig, at: &Path) -> Result<()> {
        let v = cfg.vocab as u64;
        let fields = [
            ("mask", s.mask),
            ("newline", s.newline),
            ("boi", s.boi),
            ("eoi", s.eoi),
            ("uncondition", s.uncondition),
            ("answer_start", s.answer_start),
            ("answer_end", s.answer_end),
            ("eos", s.eos),
            ("bos", s.bos),
        ];
        for (name, id) in fields {
            if id as u64 >= v {
                return Err(Error::bundle(at, format!("special token `{name}` = {id} is outside the vocabulary of {v}")));
            }
        }
        if s.image_offset as u64 + s.codebook_size as u64 > v {
            return Err(Error::bundle(
                at,
                format!("image_offset {} + codebook_size {} exceeds the vocabulary of {v}", s.image_offset, s.codebook_size),
            ));
        }
        // every special id has one role: two roles on one id, or an id that
        // is also an image code, make the layouts ambiguous
        let img = s.image_offset as u64..s.image_offset as u64 + s.codebook_size as u64;
        let mut all = fields.to_vec();
        all.push(("answer_pad", s.answer_pad));
        for (i, (name, id)) in all.iter().enumerate() {
            if img.contains(&(*id as u64)) {
                return Err(Error::bundle(at, format!("special token `{name}` = {id} lies among the image codes {}..{}: give it an id of its own", img.start, img.end)));
            }
            if let Some((other, _)) = all[..i].iter().find(|(_, oid)| oid == id) {
                return Err(Error::bundle(at, format!("special tokens `{other}` and `{name}` are both {id}: each needs its own id")));
            }
        }
        if s.codebook_size as usize != vq.num_vq_embeddings {
            return Err(Error::bundle(
                at,
                format!("codebook_size {} differs from vqvae num_vq_embeddings {}", s.codebook_size, vq.num_vq_embeddings),
            ));
        }
        Ok(())
    }

    /// Stored dtype(s) of the transformer weights, e.g. "BF16" or "BF16+F32".
    pub fn stored_dtype(&self) -> String {
        let mut d: Vec<&str> = self.tensors.values().map(|t| t.dtype.as_str()).collect();
        d.sort();
        d.dedup();
        d.join("+")
    }

    pub fn name(&self) -> String {
        self.defaults.name.clone().unwrap_or_else(|| {
            self.dir
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| self.dir.display().to_string())
        })
    }
}

/// Folder name of the embedded default model under `models/`.
pub const EMBEDDED_MODEL: &str = "unmask-shapes";

/// Where the embedded default model is: `$UNMASK_MODEL`, else `models/unmask-shapes`
/// next to the executable or up to three folders above it (a cargo build's
/// `target/release`), else in the source tree this binary was built from.
pub fn default_model_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("UNMASK_MODEL") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        for _ in 0..4 {
            let Some(d) = dir else { break };
            candidates.push(d.join("models").join(EMBEDDED_MODEL));
            dir = d.parent().map(Path::to_path_buf);
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(EMBEDDED_MODEL));
    candidates.into_iter().find(|c| c.join("config.json").is_file())
}
