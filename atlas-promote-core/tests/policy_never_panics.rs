//! Reading a policy never panics, whatever the text: it is a policy or an
//! error that says where.

use atlas_promote_core::Policy;
use proptest::prelude::*;

const ATLAS_TOML: &str = include_str!("../../examples/policies/atlas.toml");
#[cfg(feature = "yaml")]
const ATLAS_YAML: &str = include_str!("../../examples/policies/atlas.yaml");

/// `text` with the characters in `at..at + cut` replaced by `insert`.
fn mutate(text: &str, at: usize, cut: usize, insert: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + cut).min(chars.len());
    chars[..at].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect()
}

fn edit() -> impl Strategy<Value = (usize, usize, String)> {
    (any::<usize>(), 0usize..8, prop_oneof![Just(String::new()), "[\\[\\]{}=:,\"'\\-# \n\t0-9a-z]{1,4}"])
}

#[track_caller]
fn assert_located(result: Result<Policy, atlas_promote_core::PolicyError>) {
    if let Err(err) = result {
        let mut previous = None;
        for mistake in err.mistakes() {
            assert!(mistake.line.is_some_and(|l| l >= 1) && mistake.column.is_some_and(|c| c >= 1), "{err}");
            // in the order of the file
            let place = (mistake.line, mistake.column);
            assert!(previous <= Some(place), "{err}");
            previous = Some(place);
        }
    }
}

proptest! {
    #[test]
    fn any_text_is_a_policy_or_a_located_error(text in any::<String>()) {
        assert_located(Policy::from_toml_str(&text, "any.toml"));
        #[cfg(feature = "yaml")]
        assert_located(Policy::from_yaml_str(&text, "any.yaml"));
    }

    #[test]
    fn an_edited_atlas_toml_is_a_policy_or_a_located_error((at, cut, insert) in edit()) {
        assert_located(Policy::from_toml_str(&mutate(ATLAS_TOML, at, cut, &insert), "atlas.toml"));
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn an_edited_atlas_yaml_is_a_policy_or_a_located_error((at, cut, insert) in edit()) {
        assert_located(Policy::from_yaml_str(&mutate(ATLAS_YAML, at, cut, &insert), "atlas.yaml"));
    }
}
