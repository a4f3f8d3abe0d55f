//! What each subcommand does.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use unmask::bundle::Bundle;
use unmask::engine::{load_tokenizer, load_vq, DeviceChoice, ModelInfo};
use unmask::error::{Error, Result};
use unmask::image_io::{self, Fit};
use unmask::sampler::{CacheSettings, ImageSettings, TextSettings};
use unmask::tasks::{self, checks, Cover, FitMode, Job, Output};
use unmask::codes;
use unmask::device_memory::Memory;
use unmask::output;

use crate::args::{Cli, Command, DtypeArg, FitArg, ModelArgs, OutArgs, SamplingArgs, ServeBounds};
use crate::progress::Bar;
use crate::runner::{device, load, model_dir, Runner};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { model, json, verify } => {
            info(&model, json)?;
            if verify {
                verify_weights(&model)?;
            }
            Ok(())
        }
        Command::Eval { model, n, seed } => eval(&model, n, seed),
        Command::Quantize { model, out, kind } => {
            let kind = unmask::quantize::QuantType::parse("--type", &kind)?;
            let r = unmask::quantize::quantize(&model_dir(&model)?, &out, kind)?;
            let types: Vec<String> = r.types.iter().map(|(t, n)| format!("{n} {t}")).collect();
            println!("{}", r.dir.display());
            eprintln!("wrote {} ({}): tensors {}", r.dir.display(), unmask::limits::gib(r.bytes), types.join(", "));
            Ok(())
        }
        Command::Download { repo, revision, dir, endpoint, token, timeout } => download(repo, revision, dir, endpoint, token, timeout),
        Command::Plan { preset, model, width, height, cfg, cfg_img, edit, cache, dtype, quant, json } => {
            plan_cmd(preset.as_deref(), &model, width, height, cfg, cfg_img, edit, cache, dtype, quant.as_deref(), json)
        }
        Command::Encode { model, image, tokens_out, fit } => {
            output::check_target(&tokens_out, "--tokens-out codes", &["json"])?;
            let dir = model_dir(&model)?;
            let bundle = Bundle::open(&dir)?;
            let dev = device(&model)?.resolve()?;
            let vq = load_vq(&bundle, &dev)?;
            let img = image_io::open_rgb(&image)?;
            let fit = match fit {
                FitArg::Bucket => Fit::Bucket { area: tasks::EDIT_AREA, multiple: vq.factor().max(32) },
                _ => Fit::Native,
            };
            let img = image_io::fit(&img, fit, vq.factor())?;
            let label = format!("--image {}: encoding {}x{} px", image.display(), img.width(), img.height());
            tasks::budget::check_vq_config(&bundle.vq_config, &dev, img.width() as usize, img.height() as usize, &label)?;
            let grid = vq.encode(&image_io::to_rgb(&img))?;
            output::write_all(&[(&tokens_out, codes::to_json(&grid).as_bytes())])?;
            eprintln!("{}x{} px -> {} x {} codes in {}", img.width(), img.height(), grid.height, grid.width, tokens_out.display());
            Ok(())
        }
        Command::Decode { model, tokens, out } => {
            output::check_target(&out, "--out image", &["png"])?;
            let dir = model_dir(&model)?;
            let bundle = Bundle::open(&dir)?;
            let dev = device(&model)?.resolve()?;
            let vq = load_vq(&bundle, &dev)?;
            let grid = codes::read(&tokens, bundle.vq_config.num_vq_embeddings)?;
            let f = vq.factor();
            tasks::budget::check_vq_config(
                &bundle.vq_config,
                &dev,
                grid.width * f,
                grid.height * f,
                &format!("--tokens {}: a {} x {} grid decodes to {}x{} px, which", tokens.display(), grid.height, grid.width, grid.width * f, grid.height * f),
            )?;
            let img = image_io::from_rgb(&vq.decode(&grid)?);
            output::write_all(&[(&out, &image_io::png_bytes(&img, None)?)])?;
            eprintln!("{} x {} codes -> {}x{} px in {}", grid.height, grid.width, img.width(), img.height(), out.display());
            Ok(())
        }
        Command::Serve { model, listen, token, token_file, bounds } => serve(&model, listen, token, token_file.as_deref(), &bounds),
        Command::Generate { model, remote, prompt, width, height, sampling, out } => {
            let runner = Runner::open(&model, &remote)?;
            let d = runner.info();
            let given = width.is_some() || height.is_some();
            let width = width.or(d.default_width).unwrap_or(1024);
            let height = height.or(d.default_height).unwrap_or(1024);
            let label = if given {
                format!("--width {width} --height {height}")
            } else {
                format!("the default size {width}x{height} (set --width and --height)")
            };
            let note = if given { "" } else { " (the default)" };
            checks::side("--width", width, note, d.vq_factor)?;
            checks::side("--height", height, note, d.vq_factor)?;
            let settings = image_settings(d, &sampling, false)?;
            if let Some(engine) = runner.engine() {
                tasks::budget::check_generate(engine, &prompt, width, height, &settings, &label)?;
            }
            finish_image(&runner, Job::Generate { prompt, width, height, settings }, &out)
        }
        Command::Inpaint { model, remote, prompt, image, mask, region, regions, tokens, grow, cover, retouch, sampling, out } => {
            let runner = Runner::open(&model, &remote)?;
            let img = image_io::open_rgb(&image)?;
            let regions = crate::regions::read(prompt, mask, region, regions, img.width(), img.height())?;
            let codes = tokens.map(|t| codes::read(&t, runner.info().codebook_size)).transpose()?;
            let feather = feather_px(runner.info(), retouch.feather)?;
            let settings = image_settings(runner.info(), &sampling, false)?;
            let context = retouch.context;
            let job = Job::Inpaint { regions, image: img, codes, grow, cover, feather, context, content: None, settings };
            announce_crops(&runner, &job, &out)?;
            finish_image(&runner, job, &out)
        }
        Command::Outpaint { model, remote, prompt, image, left, right, top, bottom, retouch, sampling, out } => {
            let runner = Runner::open(&model, &remote)?;
            let img = image_io::open_rgb(&image)?;
            let (canvas, m, content) = tasks::inpaint::extend_canvas(&img, left, right, top, bottom)?;
            let feather = feather_px(runner.info(), retouch.feather)?;
            let settings = image_settings(runner.info(), &sampling, false)?;
            let context = retouch.context;
            eprintln!("{}x{} px -> {}x{} px canvas", img.width(), img.height(), canvas.width(), canvas.height());
            let regions = vec![tasks::Region::new(m, prompt)];
            let job = Job::Inpaint { regions, image: canvas, codes: None, grow: 0, cover: Cover::Any, feather, context, content: Some(content), settings };
            announce_crops(&runner, &job, &out)?;
            finish_image(&runner, job, &out)
        }
        Command::Edit { model, remote, prompt, image, fit, sampling, out } => {
            let runner = Runner::open(&model, &remote)?;
            let img = image_io::open_rgb(&image)?;
            let settings = image_settings(runner.info(), &sampling, true)?;
            let bucket = tasks::bucket(runner.info(), tasks::EDIT_AREA);
            let (ww, wh) = tasks::fit_size(img.width() as usize, img.height() as usize, fit_mode(fit), runner.info().vq_factor, bucket)?;
            if (ww as u32, wh as u32) != img.dimensions() {
                eprintln!("the model works at {ww}x{wh} (its bucket); the result is scaled back to {}x{}", img.width(), img.height());
                if out.tokens_out.is_some() {
                    return Err(Error::invalid(format!(
                        "--tokens-out: the model edits at {}x{}, not at the image's {}x{}, so no codes describe the result; drop --tokens-out or give an image of the working size",
                        ww, wh, img.width(), img.height()
                    )));
                }
            }
            finish_image(&runner, Job::Edit { instruction: prompt, image: img, fit: fit_mode(fit), settings }, &out)
        }
        Command::Ask { model, remote, image, question, fit, gen_length, block_length, steps, temperature, seed, cache, json } => {
            let runner = Runner::open(&model, &remote)?;
            let img = image_io::open_rgb(&image)?;
            let gen_length = gen_length.or(runner.info().default_gen_length).unwrap_or(64);
            let block_length = block_length.unwrap_or(gen_length.min(32));
            checks::answer(("--gen-length", "--block-length"), gen_length, block_length)?;
            let steps = steps.unwrap_or(gen_length);
            checks::answer_steps("--steps", steps, gen_length, block_length)?;
            if let Some(engine) = runner.engine() {
                tasks::budget::check_ask(engine, &question, &img, fit_mode(fit), gen_length, &format!("--gen-length {gen_length}"))?;
            }
            let settings = TextSettings { steps, block_length, temperature, seed, cache };
            let job = Job::Ask { question, image: img, fit: fit_mode(fit), gen_length, settings };
            let mut p = Bar::new(steps, "answering");
            let out = runner.run(&job, &mut p);
            p.bar.finish_and_clear();
            let Output::Answer { text, ids } = out? else { return Err(Error::invalid("unexpected output")) };
            if json {
                println!("{}", serde_json::json!({ "answer": text, "answer_ids": ids }));
            } else {
                println!("{text}");
                if text.trim().is_empty() {
                    // stdout stays the answer (empty) for scripts; the person is told why
                    eprintln!("note: the model gave an empty answer; it may not know this kind of question (its model card lists the ones it does)");
                }
            }
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_cmd(
    preset: Option<&str>,
    model: &ModelArgs,
    width: Option<usize>,
    height: Option<usize>,
    cfg: Option<f32>,
    cfg_img: f32,
    edit: bool,
    cache: bool,
    dtype: DtypeArg,
    quant: Option<&str>,
    json: bool,
) -> Result<()> {
    use unmask::plan;
    let mut quant = quant.map(|q| unmask::quantize::QuantType::parse("--quant", q)).transpose()?;
    let dtype_bytes = match dtype {
        DtypeArg::Bf16 => 2,
        DtypeArg::F32 => 4,
    };
    let (name, lcfg, vq, codebook, vq_weights, defaults) = match (preset, &model.model) {
        (Some(_), Some(_)) => return Err(Error::invalid("--preset and --model: give one of them")),
        (Some("lumina-dimoo-8b"), None) => {
            let (c, v, k) = plan::lumina_dimoo_8b();
            let vqw = unmask::limits::vq_parameters(&v) * 4;
            ("lumina-dimoo-8b".to_string(), c, v, k, vqw, (None, None, None))
        }
        (Some(other), None) => return Err(Error::invalid(format!("--preset {other}: the known preset is lumina-dimoo-8b"))),
        (None, _) => {
            let b = Bundle::open(model_dir(model)?)?;
            let vqw = std::fs::metadata(&b.vq_weights).map(|m| m.len()).unwrap_or(0);
            let d = (b.defaults.width, b.defaults.height, b.defaults.cfg);
            if quant.is_none() {
                quant = b.quantization().map(|q| if q.contains('4') { unmask::quantize::QuantType::Q4K } else { unmask::quantize::QuantType::Q8_0 });
            }
            (b.name(), b.config.clone(), b.vq_config.clone(), b.special.codebook_size as usize, vqw, d)
        }
    };
    let f = vq.factor();
    let width = width.or(defaults.0).unwrap_or(1024);
    let height = height.or(defaults.1).unwrap_or(1024);
    checks::side("--width", width, "", f)?;
    checks::side("--height", height, "", f)?;
    let cfg_label = if cfg.is_some() { "--cfg" } else { "the bundle's default cfg" };
    let cfg = cfg.or(defaults.2).unwrap_or(4.0);
    // the range a run accepts (ImageSettings::check): NaN, infinite or absurd guidance is refused here too
    for (label, v) in [(cfg_label, cfg), ("--cfg-img", cfg_img)] {
        guidance(label, v)?;
    }
    let req = plan::Request {
        width,
        height,
        cfg,
        cfg_img,
        edit,
        cache,
        dtype_bytes,
        attention_bytes: unmask::model::llada::ATTENTION_BYTES as u64,
    };
    let weights = unmask::quantize::weight_bytes(&lcfg, quant, dtype_bytes);
    let mut p = plan::plan(&name, &lcfg, &vq, codebook, &req, weights, vq_weights);
    p.quantization = quant.map(|q| format!("{q:?}").to_lowercase());
    // against the memory the model would run in here: the GPU's when there is one
    let memory = match device(model)? {
        DeviceChoice::Cpu => Memory::Host,
        DeviceChoice::Auto => Memory::auto(),
        DeviceChoice::Cuda(i) if i < unmask::device_memory::gpu_count() => Memory::Gpu(i),
        DeviceChoice::Cuda(i) => {
            let how = if cfg!(feature = "cuda") { "" } else { "build with `--features cuda`, or " };
            return Err(Error::invalid(format!("--device cuda: no CUDA device {i} here; {how}plan with --device cpu")));
        }
    };
    let at = |side: usize| plan::plan(&name, &lcfg, &vq, codebook, &plan::Request { width: side, height: side, ..req }, weights, vq_weights);
    p.fit = Some(plan::fit(&p, memory, memory.free(), unmask::limits::env_limit(), f, at));
    if json {
        println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
    } else {
        println!("{}", p.table());
    }
    Ok(())
}

/// A guidance scale as a run accepts it: finite, 0 to [`MAX_GUIDANCE`](unmask::sampler::image::MAX_GUIDANCE).
fn guidance(label: &str, v: f32) -> Result<()> {
    let max = unmask::sampler::image::MAX_GUIDANCE;
    if !v.is_finite() || !(0.0..=max).contains(&v) {
        return Err(Error::invalid(format!("{label} {v:?}: use a number from 0 to {max}")));
    }
    Ok(())
}

fn eval(model: &ModelArgs, n: usize, seed: u64) -> Result<()> {
    if n == 0 || n > 100_000 {
        return Err(Error::invalid(format!("--n {n}: evaluate 1 to 100000 scenes")));
    }
    let engine = load(model)?;
    let started = std::time::Instant::now();
    let report = unmask::shapes::eval::evaluate(&engine, n, seed)?;
    println!("{}", report.table());
    eprintln!("{n} scenes in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn download(repo: String, revision: String, dir: Option<PathBuf>, endpoint: Option<String>, token: Option<String>, timeout: u64) -> Result<()> {
    let name = repo.rsplit('/').next().unwrap_or("model").to_string();
    let dir = match dir {
        Some(d) => d,
        None => unmask::hub::models_dir().ok_or_else(|| Error::invalid("no home folder to put models in: pass --dir DIR"))?.join(&name),
    };
    let timeout = Some(std::time::Duration::from_secs(timeout));
    let req = unmask::hub::Request { repo, revision, dir, endpoint, token, cache: None, timeout };
    let mut bars = DownloadBars::new();
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let out = unmask::hub::download(&req, &mut bars, cancel)?;
    bars.overall.finish_and_clear();
    println!("{}", out.display());
    if let Some(commit) = &bars.already {
        eprintln!("{} already holds {} (revision {}, commit {commit}): nothing to download; use it with --model {}", out.display(), req.repo, req.revision, out.display());
    } else {
        eprintln!("downloaded {} to {}: use it with --model {}", req.repo, out.display(), out.display());
    }
    Ok(())
}

/// A bar for the file being fetched and one for all of them (bytes, rate, ETA).
struct DownloadBars {
    multi: indicatif::MultiProgress,
    overall: ProgressBar,
    file: Option<(String, ProgressBar)>,
    /// Set when the folder was already this download (its commit).
    already: Option<String>,
}

impl DownloadBars {
    fn new() -> Self {
        let multi = indicatif::MultiProgress::with_draw_target(if std::io::stderr().is_terminal() {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_message("all files");
        Self { multi, overall, file: None, already: None }
    }
}

impl unmask::hub::Progress for DownloadBars {
    fn start(&mut self, files: &[unmask::hub::Entry], to_fetch: u64) {
        let all: u64 = files.iter().map(|e| e.size).sum();
        self.overall.set_length(to_fetch);
        eprintln!("{} files, {} in all, {} to fetch", files.len(), unmask::limits::gib(all), unmask::limits::gib(to_fetch));
    }
    fn file(&mut self, file: &str, done: u64, size: u64, fetched: u64) {
        if self.file.as_ref().map(|(n, _)| n.as_str()) != Some(file) {
            if let Some((_, b)) = self.file.take() {
                b.finish_and_clear();
            }
            let b = self.multi.insert(0, ProgressBar::new(size));
            b.set_style(self.overall.style());
            b.set_message(file.to_string());
            self.file = Some((file.to_string(), b));
        }
        if let Some((_, b)) = &self.file {
            b.set_position(done);
        }
        self.overall.set_position(fetched);
    }
    fn verifying(&mut self, file: &str) {
        if let Some((_, b)) = &self.file {
            b.set_message(format!("{file} (verifying)"));
        }
    }
    fn already(&mut self, _dir: &Path, commit: &str) {
        self.already = Some(commit.to_string());
    }
}

fn fit_mode(f: FitArg) -> FitMode {
    match f {
        FitArg::Auto => FitMode::Auto,
        FitArg::Native => FitMode::Native,
        FitArg::Bucket => FitMode::Bucket,
    }
}

fn image_settings(d: &ModelInfo, s: &SamplingArgs, edit: bool) -> Result<ImageSettings> {
    // a fresh seed when none is given; it is printed with the result and stored in the PNG
    let seed = s.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_nanos() as u64).unwrap_or(0) % 1_000_000_000
    });
    let (cfg, cfg_img) = d.guidance(edit);
    let settings = ImageSettings {
        steps: s.steps.or(d.default_steps).unwrap_or(64),
        cfg: s.cfg.unwrap_or(cfg),
        cfg_img: s.cfg_img.unwrap_or(cfg_img),
        temperature: s.temperature.or(d.default_temperature).unwrap_or(1.0),
        seed,
        cache: s.cache.then(|| {
            let d = CacheSettings::default();
            CacheSettings {
                ratio: s.cache_ratio.unwrap_or(d.ratio),
                warmup_ratio: s.warmup_ratio.unwrap_or(d.warmup_ratio),
                refresh_interval: s.refresh_interval.unwrap_or(d.refresh_interval),
            }
        }),
    };
    if !s.cache && (s.cache_ratio.is_some() || s.warmup_ratio.is_some() || s.refresh_interval.is_some()) {
        return Err(Error::invalid("--cache-ratio, --warmup-ratio and --refresh-interval tune the ML-Cache: add --cache to turn it on"));
    }
    settings.check()?;
    Ok(settings)
}

/// The feather in pixels: half a cell unless given.
fn feather_px(info: &ModelInfo, feather: Option<f32>) -> Result<f32> {
    let f = feather.unwrap_or(info.vq_factor as f32 / 2.0);
    checks::feather("--feather", f)?;
    Ok(f)
}

/// Prints the crops an inpaint will run and refuses, before the run,
/// `--tokens-out` when the result will have no codes at the image's scale.
fn announce_crops(runner: &Runner, job: &Job, out: &OutArgs) -> Result<()> {
    let Job::Inpaint { image, regions, codes, context, settings, .. } = job else { return Ok(()) };
    // a server plans its crops itself; its result says which ran
    let Some(engine) = runner.engine() else { return Ok(()) };
    let w = engine.info.work_area;
    let mut scaled = false;
    for (k, r) in regions.iter().enumerate() {
        let crops = tasks::inpaint::plan(engine, image, &r.mask, codes.as_ref(), *context, settings)?;
        let which = if regions.len() > 1 { format!("region {} \"{}\": ", k + 1, r.prompt) } else { String::new() };
        eprintln!("{which}context {context}: {} crop(s), working area {} px (max upscale {})", crops.len(), w.area, w.max_upscale);
        for (i, c) in crops.iter().enumerate() {
            eprintln!("  crop {}: {}", i + 1, c.describe());
        }
        scaled |= crops.iter().any(|c| !c.native());
    }
    if out.tokens_out.is_some() && scaled {
        return Err(Error::invalid(
            "--tokens-out: the model works on a scaled crop, so no codes describe the result at its own size; \
             drop --tokens-out, or use --context whole on an image within the working area",
        ));
    }
    Ok(())
}

fn finish_image(runner: &Runner, job: Job, out: &OutArgs) -> Result<()> {
    check_outputs(out)?;
    let (total, seed) = match &job {
        Job::Generate { settings, .. } | Job::Inpaint { settings, .. } | Job::Edit { settings, .. } => (settings.steps, settings.seed),
        Job::Ask { settings, .. } => (settings.steps, settings.seed),
    };
    let mut p = Bar::new(total, job.kind());
    let started = std::time::Instant::now();
    let result = runner.run(&job, &mut p);
    p.bar.finish_and_clear();
    let Output::Image { image, codes: grid, parameters, work } = result? else {
        return Err(Error::invalid("unexpected output"));
    };
    if out.tokens_out.is_some() && grid.is_none() {
        return Err(Error::invalid(format!(
            "--tokens-out: the model worked at {}x{}, not at the result's {}x{}, so no codes describe it; drop --tokens-out",
            work.width,
            work.height,
            image.width(),
            image.height()
        )));
    }
    // both outputs or neither
    let png = image_io::png_bytes(&image, Some(&parameters))?;
    let json = grid.as_ref().map(codes::to_json);
    let mut files: Vec<(&Path, &[u8])> = vec![(&out.out, &png)];
    if let (Some(t), Some(j)) = (&out.tokens_out, &json) {
        files.push((t, j.as_bytes()));
    }
    output::write_all(&files)?;

    eprintln!("{} in {:.2}s (seed {seed}) -> {}", job.kind(), started.elapsed().as_secs_f64(), out.out.display());
    Ok(())
}

/// Fails before the (possibly long) run when an output could not be written.
fn check_outputs(out: &OutArgs) -> Result<()> {
    output::check_target(&out.out, "--out image", &["png"])?;
    if let Some(t) = &out.tokens_out {
        output::check_target(t, "--tokens-out codes", &["json"])?;
        if t == &out.out {
            return Err(Error::invalid("--out and --tokens-out name the same file: give them different names"));
        }
    }
    Ok(())
}

/// Reads every stored tensor, one at a time, and fails on the first value
/// that is NaN or infinite, naming the file and tensor.
fn verify_weights(m: &ModelArgs) -> Result<()> {
    let bundle = Bundle::open(model_dir(m)?)?;
    let mut files = bundle.weight_files.clone();
    files.push(bundle.vq_weights.clone());
    let mut n = 0usize;
    for file in &files {
        if file.extension().is_some_and(|e| e == "gguf") {
            // quantized: every tensor dequantized and checked
            let mut f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
            let c = candle_core::quantized::gguf_file::Content::read(&mut f).map_err(|e| Error::bundle(file, e.to_string()))?;
            for (name, ti) in &c.tensor_infos {
                let q = ti.read(&mut f, c.tensor_data_offset, &candle_core::Device::Cpu).map_err(|e| Error::bundle(file, format!("tensor `{name}`: {e}")))?;
                let v = q.dequantize(&candle_core::Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(Error::bundle(file, format!("tensor `{name}` holds {} at index {i}: the weights are damaged; quantize them again", v[i])));
                }
                n += v.len();
            }
            continue;
        }
        n += unmask::quantize::verify_safetensors(file)?;
    }
    println!("verified    {n} weights in {} file(s): all finite", files.len());
    Ok(())
}

fn info(m: &ModelArgs, json: bool) -> Result<()> {
    let dir = model_dir(m)?;
    let bundle = Bundle::open(&dir)?;
    let tok = load_tokenizer(&bundle.tokenizer)?;
    // a tokenizer with no unk token nor byte fallback fails on the first
    // character outside its vocabulary: say so here, not in the middle of a run
    if let Err(e) = tok.encode("a photo of a caf\u{e9} \u{20ac}5 \u{6f22}\u{5b57} \u{1f642}", false) {
        return Err(Error::bundle(&bundle.tokenizer, format!("cannot encode text outside its vocabulary ({e}): it needs an unk token or byte fallback")));
    }
    // the VQ-VAE is small: loading it checks every one of its tensors
    let dev = device(m)?.resolve()?;
    load_vq(&bundle, &dev)?;
    let compute = if dev.is_cuda() { candle_core::DType::BF16 } else { candle_core::DType::F32 };
    let info = ModelInfo::from_bundle(&bundle, tok.get_vocab_size(true), &dev, compute);
    if json {
        println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
        return Ok(());
    }
    let s = &info.special_tokens;
    println!("model       {} ({})", info.name, info.path);
    println!("parameters  {} ({:.3} B)", info.parameters, info.parameters as f64 / 1e9);
    println!("stored      {} in {} shard(s); runs in {} on {}", info.stored_dtype, bundle.weight_files.len(), info.compute_dtype, info.device);
    if let Some(q) = &info.quantization {
        println!("quantized   {q} projections (GGUF {}); norms F32, embedding and head F16", unmask::bundle::GGUF_WEIGHTS);
    }
    println!(
        "transformer d_model {}, {} layers, {} heads ({} kv), MLP {}",
        info.d_model, info.n_layers, info.n_heads, info.n_kv_heads, info.mlp_hidden
    );
    println!("vocab       {} logits = {} text + {} image codes (tokenizer: {})", info.vocab, info.text_vocab, info.codebook_size, info.tokenizer_vocab);
    println!("vq-vae      factor {}, channels {:?}, codebook {}", info.vq_factor, info.vq_block_out_channels, bundle.vq_config.num_vq_embeddings);
    println!(
        "special     mask {} newline {} boi {} eoi {} uncond {} answer {}/{} eos {} bos {} image_offset {}{}",
        s.mask, s.newline, s.boi, s.eoi, s.uncondition, s.answer_start, s.answer_end, s.eos, s.bos, s.image_offset,
        if bundle.custom_tokens { " (unmask.json)" } else { " (released ids)" }
    );
    Ok(())
}


/// `unmask serve`: loads the model, prints where and with which token, serves until Ctrl-C.
fn serve(model: &ModelArgs, listen: std::net::SocketAddr, token: Option<String>, token_file: Option<&Path>, bounds: &ServeBounds) -> Result<()> {
    use unmask::remote::server;
    let kept = server::kept_token_path().ok_or_else(|| Error::invalid("no HOME or XDG_DATA_HOME to keep a server token in: give --token or --token-file"))?;
    let (token, made) = server::token(token, token_file, &kept)?;
    let mut cfg = unmask::remote::ServeConfig::new(model_dir(model)?, listen, token.clone());
    cfg.device = device(model)?;
    // a flag left out keeps the server's default
    if let Some(s) = bounds.header_timeout {
        cfg.header_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(s) = bounds.body_timeout {
        cfg.body_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(n) = bounds.max_connections {
        cfg.max_connections = n;
    }
    if let Some(n) = bounds.max_connections_per_client {
        cfg.max_connections_per_client = n;
    }
    eprintln!("loading {} ...", cfg.model.display());
    let s = unmask::remote::Server::start(cfg)?;
    if !s.addr.ip().is_loopback() {
        eprintln!("warning: listening on {} reaches the network: anyone with the token can run jobs; put a TLS proxy in front (docs/server-protocol.md)", s.addr);
    }
    if made {
        eprintln!("made a token for clients, kept in {} (give it to the Studio or --token):", kept.display());
    }
    eprintln!("serving {} ({} on {}) at http://{}  (Ctrl-C stops)", s.info.name, s.info.parameters, s.info.device, s.addr);
    // stdout: what a script reads
    println!("http://{}", s.addr);
    println!("token {token}");
    s.run_until_ctrl_c();
    Ok(())
}
