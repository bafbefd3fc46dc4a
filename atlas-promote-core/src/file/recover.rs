//! Every mistake a parser finds in a file, not only the first.
//!
//! A serde deserializer stops at its first error. To find the next one, the
//! mistake is neutralized in a copy of the text and the copy is parsed again:
//! an unknown field is blanked out (replaced by spaces, so nothing after it
//! moves), a bad value is replaced by one the parser takes (tried from the
//! alternatives the parser's message names, then from a short list of
//! plain values), or, for an optional field, blanked out. Each mistake is
//! located in the original text: the edits are undone on its offset. A
//! required field that is missing is supplied: written into its table with a
//! value the parser takes, so that the rest of the file is still read.
//! Mistakes that come from a neutralization (a required field blanked out)
//! are not reported; where a mistake cannot be neutralized, the search stops.

use std::ops::Range;

use serde::de::DeserializeOwned;

/// The most mistakes looked for in one file.
const MAX_MISTAKES: usize = 64;

/// Values tried in place of a bad one, after the alternatives the parser names.
/// Each is written the same in TOML and YAML flow style.
const PLACEHOLDERS: [&str; 10] =
    ["\"1m\"", "\"00:00\"", "\"UTC\"", "\"2000-01-01T00:00:00Z\"", "\"mon\"", "\"x\"", "1", "true", "[]", "{}"];

/// One field as written: the byte ranges of its key (for a table entry) and of its value.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) key: Option<Range<usize>>,
    pub(super) value: Range<usize>,
}

/// A parser's first mistake in a text: where (a byte range; `None` for the
/// document as a whole) and what.
#[derive(Debug, Clone)]
pub(super) struct Mistake {
    pub(super) span: Option<Range<usize>>,
    pub(super) message: String,
}

/// What a file format offers the search.
pub(super) trait Format {
    /// The whole text as a `T`, or the parser's first mistake.
    fn first<T: DeserializeOwned>(text: &str) -> Result<T, Mistake>;
    /// Every field of the text, for a text that is syntactically valid.
    fn entries(text: &str) -> Vec<Entry>;
    /// Where each field of the text is written, for naming the field of a
    /// mistake at byte `at` (a syntax error may leave only the text before
    /// it to go by).
    fn tree(text: &str, at: Option<usize>) -> super::tree::SpanTree;
    /// How to write the field `key` with `value` into the table the parser
    /// said lacks it, reporting the mistake at byte `at` (`None`: the
    /// top-level table): the offset to insert at and the text to insert.
    /// `None` when the table cannot be found there.
    fn supply(text: &str, at: Option<usize>, key: &str, value: &str) -> Option<(usize, String)>;
}

/// The outcome of the search: the value when every mistake could be
/// neutralized (parsed from the neutralized text: trust it only when there
/// are no mistakes), the mistakes at their offsets in the original text,
/// the original ranges that were neutralized, and which mistakes (indexes
/// into `mistakes`) are missing fields that were supplied.
#[derive(Debug)]
pub(super) struct Found<T> {
    pub(super) value: Option<T>,
    pub(super) mistakes: Vec<(Option<usize>, String)>,
    pub(super) neutralized: Vec<Range<usize>>,
    pub(super) supplied: Vec<usize>,
}

/// One replacement in the text: at `start`, `old` bytes became `new` bytes.
#[derive(Debug, Clone, Copy)]
struct Edit {
    start: usize,
    old: usize,
    new: usize,
}

/// The offset in the original text of `offset` in the edited one.
fn original(edits: &[Edit], mut offset: usize) -> usize {
    for edit in edits.iter().rev() {
        if offset >= edit.start + edit.new {
            offset = offset - edit.new + edit.old;
        } else if offset > edit.start {
            offset = edit.start;
        }
    }
    offset
}

/// Parse `text` as `F`, looking for every mistake.
pub(super) fn every_mistake<F: Format, T: DeserializeOwned>(text: &str) -> Found<T> {
    let mut current = text.to_owned();
    let mut edits: Vec<Edit> = Vec::new();
    let mut found = Found { value: None, mistakes: Vec::new(), neutralized: Vec::new(), supplied: Vec::new() };
    let mut blanked_keys: Vec<String> = Vec::new();
    for _ in 0..MAX_MISTAKES {
        let mistake = match F::first::<T>(&current) {
            Ok(value) => {
                found.value = Some(value);
                return found;
            }
            Err(mistake) => mistake,
        };
        let missing = missing_field(&mistake.message);
        if let Some(field) = missing
            && blanked_keys.iter().any(|k| k == field)
        {
            // A required field this search blanked out: not the author's mistake.
            return found;
        }
        let at = mistake.span.as_ref().map(|span| span.start);
        found.mistakes.push((at.map(|at| original(&edits, at)), mistake.message.clone()));
        if let Some(field) = missing {
            let Some((offset, inserted)) = supply::<F, T>(&current, at, field) else {
                return found;
            };
            found.supplied.push(found.mistakes.len() - 1);
            edits.push(Edit { start: offset, old: 0, new: inserted.len() });
            current.insert_str(offset, &inserted);
            continue;
        }
        let Some(at) = at else {
            return found;
        };
        let entries = F::entries(&current);
        let Some((range, replacement, blanked)) = neutralize::<F, T>(&current, &entries, &mistake, at) else {
            return found;
        };
        if let Some(key) = blanked {
            blanked_keys.push(key);
        }
        let (start, end) = (original(&edits, range.start), original(&edits, range.end));
        found.neutralized.push(start..end);
        edits.push(Edit { start: range.start, old: range.len(), new: replacement.len() });
        current.replace_range(range, &replacement);
    }
    found
}

/// How to supply the required field `field` that the parser found missing
/// at `at`: the offset to insert at and the text to insert, written with the
/// first value the parser takes there.
fn supply<F: Format, T: DeserializeOwned>(text: &str, at: Option<usize>, field: &str) -> Option<(usize, String)> {
    let mut tries: Vec<String> = PLACEHOLDERS.iter().map(|p| (*p).to_owned()).collect();
    let mut tried = 0;
    while tried < tries.len() && tried < 16 {
        let value = tries[tried].clone();
        tried += 1;
        let (offset, inserted) = F::supply(text, at, field, &value)?;
        if !text.is_char_boundary(offset) {
            return None;
        }
        let mut candidate = text.to_owned();
        candidate.insert_str(offset, &inserted);
        let Err(next) = F::first::<T>(&candidate) else {
            return Some((offset, inserted));
        };
        let next_at = next.span.as_ref().map(|span| span.start);
        let back = next_at.map(|o| original(&[Edit { start: offset, old: 0, new: inserted.len() }], o));
        if missing_field(&next.message) == Some(field) && back == at {
            // Still missing where it was: the text went into another table.
            return None;
        }
        let inside = next_at.is_some_and(|o| (offset..offset + inserted.len()).contains(&o));
        if !inside {
            return Some((offset, inserted));
        }
        if let Some(first) = alternatives(&next.message)
            && !tries.contains(&first)
        {
            tries.insert(tried, first);
        }
    }
    None
}

/// How to neutralize `mistake` at `at`: the range to replace, what with, and
/// the key it blanks out (if it does).
fn neutralize<F: Format, T: DeserializeOwned>(
    text: &str,
    entries: &[Entry],
    mistake: &Mistake,
    at: usize,
) -> Option<(Range<usize>, String, Option<String>)> {
    if mistake.message.starts_with("unknown field") {
        let entry = entries.iter().find(|e| e.key.as_ref().is_some_and(|k| k.contains(&at) || k.start == at))?;
        return blank(text, entry);
    }
    // The innermost value the mistake is in.
    let entry = entries
        .iter()
        .filter(|e| e.value.start <= at && at < e.value.end.max(e.value.start + 1))
        .min_by_key(|e| e.value.len())?;
    let mut tries: Vec<String> = alternatives(&mistake.message).into_iter().collect();
    tries.extend(PLACEHOLDERS.iter().map(|p| (*p).to_owned()));
    let mut tried = 0;
    while tried < tries.len() && tried < 16 {
        let replacement = tries[tried].clone();
        tried += 1;
        let mut candidate = text.to_owned();
        candidate.replace_range(entry.value.clone(), &replacement);
        let replaced = entry.value.start..entry.value.start + replacement.len();
        match F::first::<T>(&candidate) {
            Ok(_) => return Some((entry.value.clone(), replacement, None)),
            Err(next) => {
                let inside = next.span.as_ref().is_some_and(|s| replaced.contains(&s.start));
                if !inside {
                    return Some((entry.value.clone(), replacement, None));
                }
                if let Some(first) = alternatives(&next.message)
                    && !tries.contains(&first)
                {
                    tries.insert(tried, first);
                }
            }
        }
    }
    // No value will do: leave the field out (if it is optional, the parse goes on).
    blank(text, entry)
}

/// Blank out `entry` (key and value, and a comma that follows it) with spaces.
fn blank(text: &str, entry: &Entry) -> Option<(Range<usize>, String, Option<String>)> {
    let key = entry.key.clone()?;
    let mut end = entry.value.end.max(key.end);
    let rest = text.get(end..)?;
    let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    if rest[spaces..].starts_with(',') {
        end += spaces + 1;
    }
    let range = key.start..end;
    let old = text.get(range.clone())?;
    // Newlines stay, so that every later line keeps its number.
    let replacement: String = old.chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
    let name = text.get(key.clone())?.trim_matches(['"', '\'']).to_owned();
    Some((range, replacement, Some(name)))
}

/// The first alternative a message names ("expected one of `a`, `b`", or
/// without the backquotes), quoted.
fn alternatives(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("expected one of ")?;
    let first = rest.split([',', ' ']).next()?.trim_matches('`');
    (!first.is_empty() && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then(|| format!("\"{first}\""))
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_after_an_edit_move_back_by_its_growth() {
        let edits = [Edit { start: 10, old: 4, new: 7 }];
        assert_eq!(original(&edits, 5), 5);
        assert_eq!(original(&edits, 20), 17);
        assert_eq!(original(&edits, 12), 10);
    }

    #[test]
    fn the_first_alternative_is_quoted() {
        let message = "unknown variant `env`, expected one of `review`, `trunk`, `environment`";
        assert_eq!(alternatives(message).as_deref(), Some("\"review\""));
        let yaml = "unknown variant `env`, expected one of review, trunk, environment";
        assert_eq!(alternatives(yaml).as_deref(), Some("\"review\""));
    }
}
