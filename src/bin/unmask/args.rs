//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Largest image side (and canvas border), as a flag's bound.
const MAX_SIDE: u64 = unmask::image_io::MAX_SIDE as u64;

#[derive(Parser)]
#[command(name = "unmask", version, about = "Lumina-DiMOO image generation, retouching, editing and understanding")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// At the end, print one JSON object on stderr: wall time per phase,
    /// forwards, tokens computed and bytes copied from the device per step
    #[arg(long, global = true)]
    pub profile: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check a model bundle and print a summary
    Info {
        #[command(flatten)]
        model: ModelArgs,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Also read every weight and check it is a finite number (slow on big models)
        #[arg(long)]
        verify: bool,
    },
    /// Encode an image to VQ codes (CODES.json)
    Encode {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        image: PathBuf,
        #[arg(long)]
        tokens_out: PathBuf,
        #[arg(long, value_enum, default_value_t = FitArg::Native)]
        fit: FitArg,
    },
    /// Decode VQ codes (CODES.json) to a PNG
    Decode {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Text to image
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        prompt: String,
        /// Width in pixels (multiple of the VQ factor); default from the bundle, else 1024
        #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, MAX_SIDE, "pixels"))]
        width: Option<usize>,
        #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, MAX_SIDE, "pixels"))]
        height: Option<usize>,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Regenerate the white part of a mask (inpaint, outpaint, retouch);
    /// several regions, each with its own prompt, run in one go with --region
    Inpaint {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        /// What the painted area becomes (with --mask)
        #[arg(long, requires = "mask")]
        prompt: Option<String>,
        #[arg(long)]
        image: PathBuf,
        /// PNG the size of the image; white = regenerate (with --prompt)
        #[arg(long, requires = "prompt")]
        mask: Option<PathBuf>,
        /// A region and its prompt: --region MASK.png "PROMPT"; repeat for more,
        /// they run in order, each seeing the ones before it
        #[arg(long, num_args = 2, value_names = ["MASK", "PROMPT"], conflicts_with_all = ["mask", "prompt", "regions"])]
        region: Vec<String>,
        /// The regions as JSON: [{"mask": "a.png", "prompt": "..."}, ...]; mask
        /// paths are relative to the JSON file's folder
        #[arg(long, conflicts_with_all = ["mask", "prompt"])]
        regions: Option<PathBuf>,
        /// The image's own codes (CODES.json) when the model made it: kept cells stay bit-identical
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Grow the region by this many token cells
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<usize>(0, MAX_SIDE, "token cells"))]
        grow: usize,
        /// Which token cells regenerate: any (every cell the paint touches) or half
        /// (cells more than half painted, the release's rule); only painted pixels change either way
        #[arg(long, default_value = "any")]
        cover: unmask::tasks::Cover,
        #[command(flatten)]
        retouch: RetouchArgs,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Extend the canvas and fill the new border from the prompt and the image
    Outpaint {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        image: PathBuf,
        /// Pixels to add on the left
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<u32>(0, MAX_SIDE, "pixels"))]
        left: u32,
        /// Pixels to add on the right
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<u32>(0, MAX_SIDE, "pixels"))]
        right: u32,
        /// Pixels to add at the top
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<u32>(0, MAX_SIDE, "pixels"))]
        top: u32,
        /// Pixels to add at the bottom
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<u32>(0, MAX_SIDE, "pixels"))]
        bottom: u32,
        #[command(flatten)]
        retouch: RetouchArgs,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Edit an image by instruction
    Edit {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        image: PathBuf,
        #[arg(long, value_enum, default_value_t = FitArg::Auto)]
        fit: FitArg,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Answer a question about an image
    Ask {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        image: PathBuf,
        #[arg(long)]
        question: String,
        #[arg(long, value_enum, default_value_t = FitArg::Auto)]
        fit: FitArg,
        /// Answer positions (default from the bundle, else 64)
        #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
        gen_length: Option<usize>,
        /// Block length of the text sampler (default: the whole answer, at most 32)
        #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
        block_length: Option<usize>,
        /// Text sampler steps (default: one per answer position)
        #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
        steps: Option<usize>,
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        temperature: f32,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX, ""))]
        seed: u64,
        /// The text cache: faster, approximate (a block's later steps reuse the
        /// image's and prompt's K/V from its first step)
        #[arg(long)]
        cache: bool,
        /// Print {"answer": ..., "answer_ids": [...]}
        #[arg(long)]
        json: bool,
    },
    /// Estimate the peak memory of a text-to-image (or edit) request, part by part
    Plan {
        /// A released model by name, no download needed: lumina-dimoo-8b
        #[arg(long)]
        preset: Option<String>,
        #[command(flatten)]
        model: ModelArgs,
        /// Width in pixels (default: the bundle's, else 1024)
        #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, MAX_SIDE, "pixels"))]
        width: Option<usize>,
        #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, MAX_SIDE, "pixels"))]
        height: Option<usize>,
        /// Text guidance (default 4); 0 runs one branch
        #[arg(long, allow_negative_numbers = true)]
        cfg: Option<f32>,
        /// Image guidance of an edit (a third branch when > 0)
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        cfg_img: f32,
        /// Plan an instruction edit (the input image rides in the prompt)
        #[arg(long)]
        edit: bool,
        /// With the ML-Cache
        #[arg(long)]
        cache: bool,
        #[arg(long, value_enum, default_value_t = DtypeArg::Bf16)]
        dtype: DtypeArg,
        /// Quantized projections: q8_0 or q4k (default: the bundle's, else none)
        #[arg(long)]
        quant: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Download Lumina-DiMOO (or a bundle of its layout) from the Hugging Face
    /// hub: progress, resume, verification. Honours HF_ENDPOINT, HF_TOKEN, HF_HOME.
    /// --dir must not exist (or be empty, or already be this download)
    Download {
        #[arg(long, default_value = unmask::hub::DEFAULT_REPO)]
        repo: String,
        #[arg(long, default_value = "main")]
        revision: String,
        /// The bundle folder to make (default: the data folder's models/NAME)
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The hub's address (default: HF_ENDPOINT, else https://huggingface.co)
        #[arg(long)]
        endpoint: Option<String>,
        /// An access token (default: HF_TOKEN, else the token file in HF_HOME)
        #[arg(long)]
        token: Option<String>,
        /// Seconds the hub may send nothing before the transfer fails (what
        /// arrived is kept for a rerun)
        #[arg(long, value_name = "SECS", default_value_t = 60, allow_negative_numbers = true, value_parser = whole::<u64>(1, 86_400, "seconds"))]
        timeout: u64,
    },
    /// Write a quantized copy of a bundle (GGUF projections; VQ-VAE, tokenizer and configs copied)
    Quantize {
        #[command(flatten)]
        model: ModelArgs,
        /// The new bundle folder (must not exist)
        #[arg(long)]
        out: PathBuf,
        /// q8_0 (8-bit, ~1.06 bytes a weight) or q4k (4-bit, ~0.56)
        #[arg(long = "type", default_value = "q8_0")]
        kind: String,
    },
    /// Serve the model over HTTP to the Studio and `--server` clients
    /// (docs/server-protocol.md). Prints the address and token, then serves until Ctrl-C
    Serve {
        #[command(flatten)]
        model: ModelArgs,
        /// Address to listen on; anything but loopback reaches the network:
        /// put a TLS proxy in front (see the protocol doc)
        #[arg(long, default_value = "127.0.0.1:7860")]
        listen: std::net::SocketAddr,
        /// The clients' bearer token (default: --token-file, else one made
        /// on first start and kept in the data folder)
        #[arg(long)]
        token: Option<String>,
        /// A file whose first line is the token
        #[arg(long)]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        bounds: ServeBounds,
    },
    /// Evaluate a shapes-world model on fresh scenes and print a table
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        /// Scenes to draw (each runs every task once)
        #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
        n: usize,
        #[arg(long, default_value_t = 1000, allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX, ""))]
        seed: u64,
    },
}

/// `unmask serve`'s bounds on slow and numerous clients (docs/server-protocol.md).
#[derive(Args)]
pub struct ServeBounds {
    /// Seconds a request's headers may take; over it the connection is closed [default: 10]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX, ""))]
    pub header_timeout: Option<u64>,
    /// Seconds a request's body may take after its headers; over it, 408 and closed [default: 120]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX, ""))]
    pub body_timeout: Option<u64>,
    /// Open connections in all (job streams included); more are refused with 503 [default: 64]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
    pub max_connections: Option<usize>,
    /// Open connections from one client address (behind a proxy, the proxy's) [default: 8]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
    pub max_connections_per_client: Option<usize>,
}

#[derive(Args)]
pub struct ModelArgs {
    /// Model bundle folder (default: the embedded model)
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// cpu, cuda or auto
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Running a task on `unmask serve` elsewhere instead of here.
#[derive(Args)]
pub struct RemoteArgs {
    /// Run on this server (http://HOST:PORT, started with `unmask serve`) instead of here
    #[arg(long)]
    pub server: Option<String>,
    /// The server's token (default: UNMASK_TOKEN)
    #[arg(long)]
    pub token: Option<String>,
    /// A file whose first line is the server's token
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// What inpaint and outpaint share: how the result is blended and what the model sees.
#[derive(Args)]
pub struct RetouchArgs {
    /// Blend band inside the region's edge, in pixels (default: half a cell)
    #[arg(long, allow_negative_numbers = true)]
    pub feather: Option<f32>,
    /// What the model sees around the region: auto (about the region's size on
    /// each side), whole (the whole image), or a margin in pixels (e.g. 256)
    #[arg(long, default_value = "auto", value_parser = parse_context)]
    pub context: unmask::crop::Context,
}

/// A whole-number flag that reads a negative number as its value (not as
/// flags), so the message names the flag and the value: `--width -48: use a
/// whole number from 1 to 16384`.
#[derive(Clone, Copy)]
pub struct Whole<T> {
    min: u64,
    max: u64,
    unit: &'static str,
    _t: std::marker::PhantomData<fn() -> T>,
}

/// Values of `min..=max` (in `unit`, "" for a plain count) of type `T`.
pub fn whole<T>(min: u64, max: u64, unit: &'static str) -> Whole<T> {
    Whole { min, max, unit, _t: std::marker::PhantomData }
}

impl<T: TryFrom<u64> + Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Whole<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &std::ffi::OsStr) -> Result<T, clap::Error> {
        let flag = arg.and_then(|a| a.get_long()).map(|l| format!("--{l}")).unwrap_or_else(|| "a value".into());
        let text = value.to_string_lossy();
        let unit = if self.unit.is_empty() { String::new() } else { format!(" {}", self.unit) };
        let range = if self.max == u64::MAX {
            format!("use a whole number, {} or more", self.min)
        } else {
            format!("use a whole number from {} to {}{unit}", self.min, self.max)
        };
        let fail = |why: String| clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{flag} {text}: {why}\n")).with_cmd(cmd);
        let t = text.trim();
        let v: u64 = match t.parse::<u64>() {
            Ok(v) => v,
            Err(_) => match t.parse::<f64>() {
                Ok(x) if t.starts_with('-') && !x.is_nan() => return Err(fail(format!("a negative number; {range}"))),
                Ok(x) if x.is_finite() && x.fract() == 0.0 && x > 0.0 => x.min(u64::MAX as f64) as u64,
                Ok(_) => return Err(fail(format!("not a whole number; {range}"))),
                Err(_) => return Err(fail(format!("not a number; {range}"))),
            },
        };
        if !(self.min..=self.max).contains(&v) {
            return Err(fail(if self.max == u64::MAX { range } else { format!("must be between {} and {}{unit}", self.min, self.max) }));
        }
        T::try_from(v).map_err(|_| fail("too large for this machine".into()))
    }
}

fn parse_context(s: &str) -> Result<unmask::crop::Context, String> {
    use unmask::crop::Context;
    match s.trim() {
        "auto" => Ok(Context::Auto),
        "whole" => Ok(Context::Whole),
        t => t
            .trim_end_matches("px")
            .parse::<u32>()
            .map(Context::Margin)
            .map_err(|_| format!("'{s}': use auto, whole, or a margin in pixels such as 256")),
    }
}

#[derive(Args)]
pub struct SamplingArgs {
    /// Sampling steps (default from the bundle, else 64)
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
    pub steps: Option<usize>,
    /// Text guidance scale (default 4; edit 2.5), 0 to 50
    #[arg(long, allow_negative_numbers = true)]
    pub cfg: Option<f32>,
    /// Image guidance scale (edit only; default 4), 0 to 50
    #[arg(long, allow_negative_numbers = true)]
    pub cfg_img: Option<f32>,
    /// 0 = greedy; default from the bundle, else 1
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    /// Random seed (default: a fresh one, printed)
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX, ""))]
    pub seed: Option<u64>,
    /// Turn on the ML-Cache
    #[arg(long)]
    pub cache: bool,
    /// ML-Cache: share of positions kept from the cache (default 0.9; needs --cache)
    #[arg(long, allow_negative_numbers = true)]
    pub cache_ratio: Option<f64>,
    /// ML-Cache: share of steps before the cache is used (default 0.3; needs --cache)
    #[arg(long, allow_negative_numbers = true)]
    pub warmup_ratio: Option<f64>,
    /// ML-Cache: full pass every this many steps (default 5; needs --cache)
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(0, u64::MAX, ""))]
    pub refresh_interval: Option<usize>,
}

#[derive(Args)]
pub struct OutArgs {
    /// Output PNG
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the result's VQ codes
    #[arg(long)]
    pub tokens_out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DtypeArg {
    /// 2 bytes a value (CUDA)
    Bf16,
    /// 4 bytes a value (CPU)
    F32,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FitArg {
    Auto,
    Native,
    Bucket,
}
