//! The embedded model's tokenizer: a word-level vocabulary of the shapes world
//! and the system prompts, with the special tokens at fixed ids.

use std::collections::HashMap;
use std::path::Path;

use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};
use unmask::bundle::SpecialTokens;
use unmask::sampler::layout::{EDIT_SYSTEM, MMU_SYSTEM, STYLE_SYSTEM, T2I_SYSTEM};
use unmask::shapes::world;

/// Special tokens first, in the order of their ids.
pub const SPECIALS: [&str; 15] = [
    "<|startoftext|>",
    "<|endoftext|>",
    "<|mdm_mask|>",
    "<|reserved_token_0|>",
    "<IMAGE>",
    "</IMAGE>",
    "<uncondition>",
    "<answer>",
    "</answer>",
    "<|reserved_token_255|>",
    "<system>",
    "</system>",
    "<user>",
    "</user>",
    "[UNK]",
];

/// Splits like the Whitespace pre-tokenizer: runs of word characters, runs of
/// other non-space characters.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_word = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let w = ch.is_alphanumeric() || ch == '_';
        if !cur.is_empty() && w != cur_word {
            out.push(std::mem::take(&mut cur));
        }
        cur_word = w;
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn special_tokens(text_vocab: u32, codebook: u32) -> SpecialTokens {
    SpecialTokens {
        bos: 0,
        eos: 1,
        mask: 2,
        newline: 3,
        boi: 4,
        eoi: 5,
        uncondition: 6,
        answer_start: 7,
        answer_end: 8,
        answer_pad: 9,
        image_offset: text_vocab,
        codebook_size: codebook,
    }
}

/// Builds the tokenizer and returns it with its text vocabulary size.
pub fn build() -> Result<(Tokenizer, u32), String> {
    let mut words: Vec<String> = world::vocabulary();
    for s in [T2I_SYSTEM, EDIT_SYSTEM, STYLE_SYSTEM, MMU_SYSTEM, "? ."] {
        words.extend(pieces(s));
    }
    for w in world::vocabulary() {
        words.extend(pieces(&w));
    }
    words.sort();
    words.dedup();
    let mut vocab: HashMap<String, u32> = HashMap::new();
    for (i, s) in SPECIALS.iter().enumerate() {
        vocab.insert(s.to_string(), i as u32);
    }
    for w in words {
        let n = vocab.len() as u32;
        vocab.entry(w).or_insert(n);
    }
    let size = vocab.len() as u32;
    let model = WordLevel::builder().vocab(vocab.into_iter().collect()).unk_token("[UNK]".into()).build().map_err(|e| e.to_string())?;
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    let specials: Vec<AddedToken> = SPECIALS[..14].iter().map(|s| AddedToken::from(*s, true)).collect();
    tok.add_special_tokens(specials).map_err(|e| e.to_string())?;
    let post = TemplateProcessing::builder()
        .try_single("<|startoftext|> $A")
        .map_err(|e| e.to_string())?
        .special_tokens(vec![("<|startoftext|>", 0)])
        .build()
        .map_err(|e| e.to_string())?;
    tok.with_post_processor(Some(post));
    Ok((tok, size))
}

pub fn save(tok: &Tokenizer, path: &Path) -> Result<(), String> {
    tok.save(path, true).map_err(|e| e.to_string())?;
    Ok(())
}

