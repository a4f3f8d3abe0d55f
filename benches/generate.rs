//! Text-to-image timings with and without the ML-Cache: on the fixture model
//! (its t2i case), and at the mid-size config for a 32 x 32 grid, 16 steps,
//! guidance 4. Prints milliseconds and the cache's speed-up as a ratio.
//!
//! `cargo bench --bench generate`

mod common;

use unmask::bundle::SpecialTokens;
use unmask::model::Llada;
use unmask::sampler::{sample_image, CacheSettings, ImageLayout, ImageSettings, Prompter, Quiet};
use unmask::{DeviceChoice, Engine};

fn time(llada: &Llada, special: &SpecialTokens, layout: &ImageLayout, s: &ImageSettings, reps: usize) -> f64 {
    common::median_ms(reps, || {
        sample_image(llada, special, layout, s, &mut Quiet).expect("sample");
    })
}

fn compare(what: &str, llada: &Llada, special: &SpecialTokens, layout: &ImageLayout, base: ImageSettings, cache: CacheSettings, reps: usize) {
    let plain = time(llada, special, layout, &base, reps);
    let cached = time(llada, special, layout, &ImageSettings { cache: Some(cache), ..base.clone() }, reps);
    println!(
        "{what}: {} steps, cfg {}: no cache {plain:.1} ms, ML-Cache {:.2}/{:.2}/{} {cached:.1} ms, speed-up x{:.2}",
        base.steps, base.cfg, cache.ratio, cache.warmup_ratio, cache.refresh_interval, plain / cached
    );
}

fn main() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-dimoo/model");
    if fixture.is_dir() {
        let e = Engine::load(&fixture, DeviceChoice::Cpu).expect("fixture model");
        let p = Prompter::new(&e.tokenizer, e.special);
        let layout = p.text_to_image("a red circle on the left", 6, 10).expect("layout");
        let base = ImageSettings { steps: 10, cfg: 4.0, temperature: 0.0, ..Default::default() };
        let cache = CacheSettings { ratio: 0.7, warmup_ratio: 0.3, refresh_interval: 3 };
        compare("fixture t2i 6x10", &e.llada, &e.special, &layout, base, cache, 21);
    } else {
        println!("fixture model not found at {}: skipped", fixture.display());
    }

    let model = common::mid_model();
    let special = SpecialTokens {
        mask: 3, newline: 4, boi: 5, eoi: 6, uncondition: 7, answer_start: 8, answer_end: 9, eos: 1, bos: 0,
        answer_pad: 10, image_offset: 1024, codebook_size: 8192,
    };
    let prompt: Vec<u32> = (0..40).map(|i| 20 + i * 13 % 900).collect();
    let uncond: Vec<u32> = (0..28).map(|i| 20 + i * 7 % 900).collect();
    let layout = ImageLayout { cond: prompt, text_free: Some(uncond), image_free: None, height: 32, width: 32, cells: vec![None; 1024] };
    let base = ImageSettings { steps: 16, cfg: 4.0, temperature: 1.0, seed: 1, ..Default::default() };
    compare("mid-size 32x32", &model, &special, &layout, base.clone(), CacheSettings::default(), 1);
    // greedy: the pick runs on the model's device (temperature > 0 picks on the host)
    let greedy = ImageSettings { temperature: 0.0, ..base.clone() };
    let t_greedy = time(&model, &special, &layout, &greedy, 3);
    let t_host = time(&model, &special, &layout, &base, 3);
    println!("mid-size 32x32, 16 steps, cfg 4: greedy {t_greedy:.0} ms, temperature 1 {t_host:.0} ms, ratio x{:.2}", t_host / t_greedy);
}
