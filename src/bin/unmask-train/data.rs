//! Training samples in exactly the samplers' sequence layouts (built with
//! `unmask::sampler::Prompter`): text-to-image, edits and answers, with the
//! masked-diffusion corruption and about 10% unconditional prompts.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use unmask::model::CodeGrid;
use unmask::sampler::layout::{EDIT_SYSTEM, MMU_SYSTEM, T2I_SYSTEM};
use unmask::sampler::Prompter;
use unmask::shapes::world::{random_edit, random_question, Scene};

/// One training sequence and the positions the loss reads.
pub struct Sample {
    pub ids: Vec<u32>,
    /// (position, target index within the codebook)
    pub image_targets: Vec<(usize, u32)>,
    /// (position, target token id)
    pub text_targets: Vec<(usize, u32)>,
}

/// What a sample needs rendered and encoded before it can be built.
pub enum Plan {
    TextToImage { scene: Scene },
    Edit { source: Scene, instruction: String, target: Scene },
    Answer { scene: Scene, question: String, answer: String },
}

/// What a batch trains (one task per batch keeps padding small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    TextToImage,
    Edit,
    Answer,
}

impl Plan {
    /// A plan for `task` on a scene of one to `max_objects` objects.
    pub fn random(task: Task, max_objects: usize, rng: &mut StdRng) -> Plan {
        let scene = Scene::random_upto(rng, max_objects);
        match task {
            Task::TextToImage => Plan::TextToImage { scene },
            Task::Edit => match random_edit(&scene, rng) {
                Some(e) => Plan::Edit { source: scene, instruction: e.instruction, target: e.target },
                None => Plan::TextToImage { scene },
            },
            Task::Answer => {
                let (question, answer) = random_question(&scene, rng);
                Plan::Answer { scene, question, answer }
            }
        }
    }

    /// Scenes whose codes the sample needs, in order.
    pub fn scenes(&self) -> Vec<&Scene> {
        match self {
            Plan::TextToImage { scene } | Plan::Answer { scene, .. } => vec![scene],
            Plan::Edit { source, target, .. } => vec![source, target],
        }
    }
}

/// Masks `ceil(n * cos(pi/2 * u))` of the target cells (the sampler's schedule).
fn image_target(p: &Prompter, grid: &CodeGrid, rng: &mut StdRng) -> (Vec<u32>, Vec<(usize, u32)>) {
    let n = grid.codes.len();
    let u: f32 = rng.random();
    let k = ((n as f32 * (std::f32::consts::FRAC_PI_2 * u).cos()).ceil() as usize).clamp(1, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut masked = vec![false; n];
    for &i in &order[..k] {
        masked[i] = true;
    }
    let s = &p.special;
    let mut seq = vec![s.answer_start, s.boi];
    let mut targets = Vec::new();
    for r in 0..grid.height {
        for c in 0..grid.width {
            let i = r * grid.width + c;
            if masked[i] {
                targets.push((seq.len(), grid.codes[i]));
                seq.push(s.mask);
            } else {
                seq.push(s.image_offset + grid.codes[i]);
            }
        }
        seq.push(s.newline);
    }
    seq.extend([s.eoi, s.answer_end]);
    (seq, targets)
}

fn with_image(prompt: &[u32], block: &[u32]) -> Vec<u32> {
    Prompter::with_images(prompt, &[block.to_vec()])
}

fn image_sample(prefix: Vec<u32>, (target, targets): (Vec<u32>, Vec<(usize, u32)>)) -> Sample {
    let n = prefix.len();
    let mut ids = prefix;
    ids.extend(target);
    let image_targets = targets.into_iter().map(|(i, t)| (i + n, t)).collect();
    Sample { ids, image_targets, text_targets: vec![] }
}

/// The same masked text-to-image target after the caption and after the
/// unconditional prompt: how much lower the first one's loss is measures how
/// much the model reads its captions.
pub fn caption_pair(p: &Prompter, scene: &Scene, grid: &CodeGrid, rng: &mut StdRng) -> unmask::Result<(Sample, Sample)> {
    let target = image_target(p, grid, rng);
    Ok((image_sample(p.prompt(T2I_SYSTEM, &scene.caption())?, target.clone()), image_sample(p.uncond(T2I_SYSTEM)?, target)))
}

/// Builds the sample; `codes` are the plan's scenes' code grids in order.
pub fn build(p: &Prompter, plan: &Plan, codes: &[CodeGrid], gen_length: usize, rng: &mut StdRng) -> unmask::Result<Sample> {
    let uncond = rng.random_range(0..100) < 10;
    match plan {
        Plan::TextToImage { scene } => {
            let prefix = if uncond { p.uncond(T2I_SYSTEM)? } else { p.prompt(T2I_SYSTEM, &scene.caption())? };
            Ok(image_sample(prefix, image_target(p, &codes[0], rng)))
        }
        Plan::Edit { instruction, .. } => {
            let block = p.image_block(&codes[0]);
            let roll = rng.random_range(0..100);
            let prefix = if roll < 5 {
                with_image(&p.uncond(EDIT_SYSTEM)?, &block) // text-free branch
            } else if roll < 10 {
                p.prompt(EDIT_SYSTEM, instruction)? // image-free branch
            } else {
                with_image(&p.prompt(EDIT_SYSTEM, instruction)?, &block)
            };
            Ok(image_sample(prefix, image_target(p, &codes[1], rng)))
        }
        Plan::Answer { question, answer, .. } => {
            let s = p.special;
            let prompt = p.prompt(MMU_SYSTEM, question)?;
            let mut ids = with_image(&prompt, &p.image_block(&codes[0]));
            ids.push(s.answer_start);
            let enc = p.tokenizer.encode(answer.as_str(), false).map_err(|e| unmask::Error::invalid(e.to_string()))?;
            let mut region: Vec<u32> = enc.get_ids().to_vec();
            region.truncate(gen_length - 1);
            // the answer, then answer_end up to the generation length
            region.resize(gen_length, s.answer_end);
            let t: f32 = rng.random_range(0.05..1.0);
            let start = ids.len();
            let mut text_targets = Vec::new();
            for (i, &tok) in region.iter().enumerate() {
                // The answer's words are always masked, the padding after them
                // at rate t. Why: the words are the only hard targets (one or
                // two of 8 positions), and the sampler settles the confident
                // padding first, so "words masked, padding partly known" is
                // the state it asks the model about.
                if tok != s.answer_end || rng.random::<f32>() < t {
                    text_targets.push((start + i, tok));
                    ids.push(s.mask);
                } else {
                    ids.push(tok);
                }
            }
            ids.push(s.answer_end);
            Ok(Sample { ids, image_targets: vec![], text_targets })
        }
    }
}
