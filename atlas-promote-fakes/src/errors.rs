//! What an error shows, for tests that prove a secret never does.

/// Every text an error shows: its `Display` and `Debug`, and its sources'
/// (each after a ` | `).
pub fn shown(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(" | {e} {e:?}"));
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn every_layer_of_an_error_is_shown() {
        let inner = std::io::Error::other("the cause");
        let text = shown(&Wrapped(inner));
        assert!(text.starts_with("wrapped Wrapped("), "{text}");
        assert!(text.contains(" | the cause"), "the source is shown: {text}");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
