//! `--vocab FILE.gguf`: the tokenizer of a real GGUF (llama.cpp's models/ggml-vocab-qwen2.gguf
//! from the engine's source tree) is copied, padded or truncated to the model's vocab size.

use tpsbench::gguf::Value;
use tpsbench::synth::vocab;

fn qwen2_vocab() -> Option<std::path::PathBuf> {
    let found = tpsbench::llamacpp::managed_source_dir()
        .map(|d| d.join("models/ggml-vocab-qwen2.gguf"))
        .filter(|p| p.is_file());
    if found.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("models/ggml-vocab-qwen2.gguf of the managed engine's source is missing");
    }
    found
}

fn get<'a>(v: &'a vocab::Vocab, key: &str) -> Option<&'a Value> {
    v.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn qwen2_vocab_is_padded_like_the_converter_and_cycles_avoid_specials() {
    let Some(path) = qwen2_vocab() else {
        return eprintln!("SKIPPED: no engine source tree");
    };
    let v = vocab::from_file(&path, 152_064).unwrap();
    let tokens = get(&v, "tokenizer.ggml.tokens")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(tokens.len(), 152_064);
    assert_eq!(tokens[152_063].as_str(), Some("[PAD152063]"));
    assert_eq!(
        get(&v, "tokenizer.ggml.token_type")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        152_064
    );
    assert!(
        get(&v, "tokenizer.ggml.merges")
            .unwrap()
            .as_array()
            .unwrap()
            .len()
            > 100_000
    );
    // <|endoftext|> (151643) and everything after it are specials or padding.
    assert_eq!(v.domain, (0, 151_643));
}

#[test]
fn truncated_vocab_drops_special_ids_it_no_longer_has() {
    let Some(path) = qwen2_vocab() else {
        return eprintln!("SKIPPED: no engine source tree");
    };
    let v = vocab::from_file(&path, 4096).unwrap();
    assert_eq!(
        get(&v, "tokenizer.ggml.tokens")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        4096
    );
    assert!(get(&v, "tokenizer.ggml.eos_token_id").is_none());
    assert_eq!(v.domain, (0, 4096));
}
