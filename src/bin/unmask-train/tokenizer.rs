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

/// Each system prompt is one token. Why: they are fixed strings (the spec's
/// layouts keep them verbatim), and as single tokens the understanding
/// sequences shrink from ~100 to ~65 positions, so training steps are cheaper
/// and the caption or question is a larger share of what attention sees.
const SYSTEM_PROMPTS: [&str; 4] = [T2I_SYSTEM, EDIT_SYSTEM, STYLE_SYSTEM, MMU_SYSTEM];

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
    words.extend(pieces("? ."));
    for w in world::vocabulary() {
        words.extend(pieces(&w));
    }
    words.sort();
    words.dedup();
    let mut vocab: HashMap<String, u32> = HashMap::new();
    for (i, s) in SPECIALS.iter().enumerate() {
        vocab.insert(s.to_string(), i as u32);
    }
    for w in words.into_iter().chain(SYSTEM_PROMPTS.iter().map(|s| s.to_string())) {
        let n = vocab.len() as u32;
        vocab.entry(w).or_insert(n);
    }
    let size = vocab.len() as u32;
    let model = WordLevel::builder().vocab(vocab.into_iter().collect()).unk_token("[UNK]".into()).build().map_err(|e| e.to_string())?;
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    let specials: Vec<AddedToken> = SPECIALS[..14].iter().map(|s| AddedToken::from(*s, true)).collect();
    tok.add_special_tokens(specials).map_err(|e| e.to_string())?;
    tok.add_tokens(SYSTEM_PROMPTS.iter().map(|s| AddedToken::from(*s, false))).map_err(|e| e.to_string())?;
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


#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use unmask::sampler::Prompter;

    #[test]
    fn system_prompts_are_single_tokens_and_captions_have_no_unknowns() {
        let (tok, size) = build().unwrap();
        let p = Prompter::new(&tok, special_tokens(size, 256));
        let unk = tok.token_to_id("[UNK]").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let scene = world::Scene::random(&mut rng);
            let (q, a) = world::random_question(&scene, &mut rng);
            for (system, user) in [(T2I_SYSTEM, scene.caption()), (MMU_SYSTEM, q), (MMU_SYSTEM, a)] {
                let ids = p.prompt(system, &user).unwrap();
                // <bos> <system> SYSTEM </system> <user> ...user words... </user>
                assert_eq!(tok.id_to_token(ids[2]).as_deref(), Some(system));
                assert_eq!(ids[3], tok.token_to_id("</system>").unwrap());
                assert!(ids.iter().all(|&i| i != unk && i < size), "{user}: {ids:?}");
            }
        }
    }
}
