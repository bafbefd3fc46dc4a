//! The README's embedding example is `examples/embed.rs`, line for line
//! (the file runs in CI; the README's copy runs as a doc test).

const README: &str = include_str!("../README.md");
const EMBED: &str = include_str!("../examples/embed.rs");

#[test]
fn the_readmes_embedding_example_is_examples_embed_rs_line_for_line() {
    let section = README.split("## Embedding the engine").nth(1).expect("the README has an embedding section");
    let code = section.split("```rust\n").nth(1).and_then(|rest| rest.split("\n```").next());
    let code = code.expect("the embedding section has a Rust code block");
    let readme: Vec<&str> = code.lines().collect();
    let file: Vec<&str> = EMBED.lines().collect();
    for (i, (a, b)) in readme.iter().zip(&file).enumerate() {
        assert_eq!(a, b, "line {} of examples/embed.rs differs in the README", i + 1);
    }
    assert_eq!(readme.len(), file.len(), "the README's copy of examples/embed.rs has another length");
}
