//! Every task's token sequences and their unconditional branches, built in one
//! place (spec section 4). Pure: text in, token ids out.

use crate::bundle::SpecialTokens;
use crate::error::{Error, Result};
use crate::model::CodeGrid;

pub const T2I_SYSTEM: &str = "Generate an image according to the text prompt.";
pub const EDIT_SYSTEM: &str =
    "Generate an image applying the following editing instruction based on the original image.";
pub const STYLE_SYSTEM: &str = "Transform the current image into the style of the provided image.";
pub const MMU_SYSTEM: &str = "You are a multimodal model that can process both text and images. Answer the following question based on the provided images. Analyze each image and combine relevant details to answer.";

/// A user's text may not exceed this many tokens: longer prompts are refused
/// with a clear message rather than silently cut.
pub const MAX_PROMPT_TOKENS: usize = 512;
/// The most token cells one image layout holds (128 x 128; the release trains at 64 x 64).
pub const MAX_CELLS: usize = 16384;

pub fn prompt_text(system: &str, user: &str) -> String {
    format!("<system>{system}</system><user>{user}</user>")
}

/// Whether `text` holds a character a reader can see: not whitespace, not a
/// control character, not an invisible format character (zero-width
/// spaces and joiners U+200B-U+200F, the byte-order mark U+FEFF, the soft
/// hyphen, word joiners and bidirectional marks).
pub fn has_printable(text: &str) -> bool {
    text.chars().any(|c| {
        !(c.is_whitespace()
            || c.is_control()
            || matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'))
    })
}

/// Tokenises prompts with the bundle's tokenizer and writes image blocks.
pub struct Prompter<'a> {
    pub tokenizer: &'a tokenizers::Tokenizer,
    pub special: SpecialTokens,
}

impl<'a> Prompter<'a> {
    pub fn new(tokenizer: &'a tokenizers::Tokenizer, special: SpecialTokens) -> Self {
        Self { tokenizer, special }
    }

    /// `P`: the conditional prompt, post-processor applied (Python `tokenizer(text)`).
    pub fn prompt(&self, system: &str, user: &str) -> Result<Vec<u32>> {
        let question = system == MMU_SYSTEM;
        if user.trim().is_empty() {
            return Err(Error::invalid(if question {
                "the question is empty: ask something about the image"
            } else {
                "the prompt is empty: say what the image should show"
            }));
        }
        if !has_printable(user) {
            return Err(Error::invalid(format!(
                "the {} has no printable text (only spaces, control or zero-width characters): {}",
                if question { "question" } else { "prompt" },
                if question { "ask something about the image" } else { "say what the image should show" }
            )));
        }
        let user_ids = self.encode(user)?;
        if user_ids.len() > MAX_PROMPT_TOKENS {
            return Err(Error::invalid(format!(
                "prompt too long: {} tokens, at most {MAX_PROMPT_TOKENS}; shorten it",
                user_ids.len()
            )));
        }
        self.encode_with_special(&prompt_text(system, user))
    }

    /// `U`: the unconditional prompt (`<uncondition>` in place of the user text).
    pub fn uncond(&self, system: &str) -> Result<Vec<u32>> {
        self.encode_with_special(&prompt_text(system, "<uncondition>"))
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| Error::invalid(format!("the model's tokenizer.json cannot encode the prompt ({e}); `unmask info` checks it")))?;
        Ok(enc.get_ids().to_vec())
    }

    fn encode_with_special(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| Error::invalid(format!("the model's tokenizer.json cannot encode the prompt ({e}); `unmask info` checks it")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// `[boi] rows [eoi]`, a newline token after every row.
    pub fn image_block(&self, grid: &CodeGrid) -> Vec<u32> {
        let s = &self.special;
        let mut out = vec![s.boi];
        for row in grid.codes.chunks(grid.width) {
            out.extend(row.iter().map(|&c| s.image_offset + c));
            out.push(s.newline);
        }
        out.push(s.eoi);
        out
    }

    /// `P[:-1] + blocks + P[-1:]`: images go before the prompt's last token.
    pub fn with_images(prompt: &[u32], blocks: &[Vec<u32>]) -> Vec<u32> {
        let (last, head) = prompt.split_last().map(|(l, h)| (vec![*l], h.to_vec())).unwrap_or_default();
        let mut out = head;
        for b in blocks {
            out.extend_from_slice(b);
        }
        out.extend(last);
        out
    }

    pub fn text_to_image(&self, prompt: &str, height: usize, width: usize) -> Result<ImageLayout> {
        check_grid(height, width)?;
        Ok(ImageLayout {
            cond: self.prompt(T2I_SYSTEM, prompt)?,
            text_free: Some(self.uncond(T2I_SYSTEM)?),
            image_free: None,
            height,
            width,
            cells: vec![None; height * width],
        })
    }

    /// Inpaint / outpaint / retouch: cells where `regenerate` is true are masked,
    /// the others keep their codes.
    pub fn inpaint(&self, prompt: &str, grid: &CodeGrid, regenerate: &[bool]) -> Result<ImageLayout> {
        if regenerate.len() != grid.codes.len() {
            return Err(Error::invalid(format!(
                "mask covers {} cells, the image has {} x {} = {}",
                regenerate.len(),
                grid.height,
                grid.width,
                grid.codes.len()
            )));
        }
        let mut l = self.text_to_image(prompt, grid.height, grid.width)?;
        l.cells = grid.codes.iter().zip(regenerate).map(|(&c, &r)| if r { None } else { Some(c) }).collect();
        Ok(l)
    }

    /// Instruction editing: text-free branch keeps the image, image-free keeps the text.
    pub fn edit(&self, instruction: &str, image: &CodeGrid) -> Result<ImageLayout> {
        self.image_conditioned(EDIT_SYSTEM, instruction, &[image])
    }

    /// Style transfer: content then style image; both stay in the text-free branch.
    pub fn style(&self, content: &CodeGrid, style: &CodeGrid) -> Result<ImageLayout> {
        self.image_conditioned(STYLE_SYSTEM, STYLE_SYSTEM, &[content, style])
    }

    /// An image-to-image task whose target has the first image's size: images
    /// in the conditional and text-free branches, text alone in the image-free one.
    fn image_conditioned(&self, system: &str, user: &str, images: &[&CodeGrid]) -> Result<ImageLayout> {
        let p = self.prompt(system, user)?;
        let u = self.uncond(system)?;
        let blocks: Vec<Vec<u32>> = images.iter().map(|g| self.image_block(g)).collect();
        let first = images[0];
        Ok(ImageLayout {
            cond: Self::with_images(&p, &blocks),
            text_free: Some(Self::with_images(&u, &blocks)),
            image_free: Some(p),
            height: first.height,
            width: first.width,
            cells: vec![None; first.codes.len()],
        })
    }

    /// Understanding: `P[:-1] + image + P[-1:] + [answer_start] + mask*G + [answer_end]`.
    pub fn understanding(&self, question: &str, image: &CodeGrid, gen_length: usize) -> Result<TextLayout> {
        if gen_length == 0 {
            return Err(Error::invalid("gen_length must be positive"));
        }
        let p = self.prompt(MMU_SYSTEM, question)?;
        let s = &self.special;
        let mut seq = Self::with_images(&p, &[self.image_block(image)]);
        seq.push(s.answer_start);
        let answer_start = seq.len();
        seq.extend(std::iter::repeat_n(s.mask, gen_length));
        seq.push(s.answer_end);
        Ok(TextLayout { seq, answer_start, gen_length })
    }
}

fn check_grid(h: usize, w: usize) -> Result<()> {
    if h == 0 || w == 0 {
        return Err(Error::invalid(format!("image grid {h} x {w} is empty")));
    }
    if h * w > MAX_CELLS {
        return Err(Error::invalid(format!("image grid {h} x {w} has more than {MAX_CELLS} cells")));
    }
    Ok(())
}

/// An image task: per-branch prefixes and the target grid's initial state.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    /// Conditional prefix (everything before the target).
    pub cond: Vec<u32>,
    /// Prefix of the text-unconditional branch (guided by `cfg`).
    pub text_free: Option<Vec<u32>>,
    /// Prefix of the image-unconditional branch (guided by `cfg_img`); its
    /// presence selects the edit form of guidance.
    pub image_free: Option<Vec<u32>>,
    pub height: usize,
    pub width: usize,
    /// Row-major cells: `Some(code)` is kept, `None` is to be generated.
    pub cells: Vec<Option<u32>>,
}

impl ImageLayout {
    /// `[answer_start, boi] rows [eoi, answer_end]`, mask token in open cells.
    pub fn target(&self, special: &SpecialTokens, cells: &[Option<u32>]) -> Vec<u32> {
        let s = special;
        let mut out = Vec::with_capacity(4 + self.height * (self.width + 1));
        out.extend([s.answer_start, s.boi]);
        for row in cells.chunks(self.width) {
            out.extend(row.iter().map(|c| c.map_or(s.mask, |k| s.image_offset + k)));
            out.push(s.newline);
        }
        out.extend([s.eoi, s.answer_end]);
        out
    }

    /// Offset of cell `i` inside the target.
    pub fn cell_offset(&self, i: usize) -> usize {
        2 + (i / self.width) * (self.width + 1) + i % self.width
    }
}

/// An understanding task: the sequence and where the answer region starts.
#[derive(Debug, Clone)]
pub struct TextLayout {
    pub seq: Vec<u32>,
    pub answer_start: usize,
    pub gen_length: usize,
}
