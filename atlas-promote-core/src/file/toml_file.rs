//! TOML policy files.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Located;
use super::recover::{Entry, Format, Mistake};
use super::tree::{FieldPath, LineIndex, Node, Pos, Shape, SpanTree};
use serde::de::DeserializeOwned;

/// TOML for the search for every mistake.
#[derive(Debug)]
pub(super) struct Toml;

impl Format for Toml {
    fn first<T: DeserializeOwned>(text: &str) -> Result<T, Mistake> {
        // A syntax error's place arrives as an empty span at its offset; an
        // error about the document as a whole (a missing `name`) as an empty
        // span at its start.
        toml::from_str::<T>(text).map_err(|e| {
            let whole = |span: &std::ops::Range<usize>| {
                span.is_empty() && (span.start == 0 || e.message().starts_with("missing field"))
            };
            Mistake { span: e.span().filter(|span| !whole(span)), message: e.message().to_owned() }
        })
    }

    fn entries(text: &str) -> Vec<Entry> {
        let mut entries = Vec::new();
        if let Ok(document) = DeTable::parse(text) {
            table_entries(document.get_ref(), &mut entries);
        }
        entries
    }

    fn tree(text: &str, _at: Option<usize>) -> SpanTree {
        // The document parsed on its own, recovering from syntax errors.
        let (document, _) = DeTable::parse_recoverable(text);
        tree(&document, &LineIndex::new(text))
    }

    fn supply(text: &str, at: Option<usize>, key: &str, value: &str) -> Option<(usize, String)> {
        // A missing field is reported at the table's header or inline
        // table, or (for the top-level table) nowhere.
        let field = format!("{key} = {value}");
        let Some(at) = at else {
            return Some((0, format!("{field}\n")));
        };
        let rest = text.get(at..)?;
        if let Some(inner) = rest.strip_prefix('{') {
            let empty = inner.trim_start().starts_with('}');
            return Some((at + 1, if empty { format!(" {field} ") } else { format!(" {field},") }));
        }
        if rest.starts_with('[') {
            return Some(match rest.find('\n') {
                Some(end) => (at + end + 1, format!("{field}\n")),
                None => (text.len(), format!("\n{field}\n")),
            });
        }
        None
    }
}

fn table_entries(table: &DeTable<'_>, entries: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        entries.push(Entry { key: Some(key.span()), value: value.span() });
        value_entries(value, entries);
    }
}

fn value_entries(value: &Spanned<DeValue<'_>>, entries: &mut Vec<Entry>) {
    match value.get_ref() {
        DeValue::Table(table) => table_entries(table, entries),
        DeValue::Array(items) => {
            for item in items {
                entries.push(Entry { key: None, value: item.span() });
                value_entries(item, entries);
            }
        }
        _ => {}
    }
}

/// Parse TOML text into a policy (or another file of ours) and the positions
/// of its fields; the first mistake only.
pub(super) fn parse<T: DeserializeOwned>(text: &str) -> Result<(T, SpanTree), Located> {
    let index = LineIndex::new(text);
    let policy = Toml::first::<T>(text).map_err(|e| {
        // The deserializer stops at the first error but does not say which
        // field it was in; the document parsed on its own says which field
        // starts there.
        let tree = Toml::tree(text, None);
        match e.span {
            Some(span) => Located::at(index.pos(span.start), &e.message, &tree),
            // An error without a place is about the top-level table, such as a missing `name`.
            None => Located::at_top(&e.message),
        }
    })?;
    let document = DeTable::parse(text).map_err(|e| {
        let pos = e.span().map_or(Pos::START, |span| index.pos(span.start));
        Located { pos, field: None, message: e.message().to_owned() }
    })?;
    Ok((policy, tree(&document, &index)))
}

fn tree(document: &Spanned<DeTable<'_>>, index: &LineIndex<'_>) -> SpanTree {
    let mut tree = SpanTree::default();
    tree.push(Node { path: FieldPath::root(), key: None, value: Pos::START, shape: Shape::Table });
    add_table(&mut tree, index, &FieldPath::root(), document.get_ref());
    tree
}

fn add_table(tree: &mut SpanTree, index: &LineIndex<'_>, at: &FieldPath, table: &DeTable<'_>) {
    for (key, value) in table.iter() {
        let path = at.key(key.get_ref().as_ref());
        add_value(tree, index, path, Some(index.pos(key.span().start)), value);
    }
}

fn add_value(
    tree: &mut SpanTree,
    index: &LineIndex<'_>,
    path: FieldPath,
    key: Option<Pos>,
    value: &Spanned<DeValue<'_>>,
) {
    let pos = index.pos(value.span().start);
    match value.get_ref() {
        DeValue::Table(table) => {
            tree.push(Node { path: path.clone(), key, value: pos, shape: Shape::Table });
            add_table(tree, index, &path, table);
        }
        DeValue::Array(items) => {
            tree.push(Node { path: path.clone(), key, value: pos, shape: Shape::Array });
            for (i, item) in items.iter().enumerate() {
                add_value(tree, index, path.index(i), None, item);
            }
        }
        _ => tree.push(Node { path, key, value: pos, shape: Shape::Scalar }),
    }
}
