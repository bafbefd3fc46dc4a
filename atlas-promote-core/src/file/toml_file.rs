//! TOML policy files.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Located;
use super::tree::{FieldPath, LineIndex, Node, Pos, Shape, SpanTree};
use serde::de::DeserializeOwned;

/// Parse TOML text into a policy (or another file of ours) and the positions of its fields.
pub(super) fn parse<T: DeserializeOwned>(text: &str) -> Result<(T, SpanTree), Located> {
    let index = LineIndex::new(text);
    let policy = toml::from_str::<T>(text).map_err(|e| {
        // The deserializer stops at the first error but does not say which
        // field it was in; the document parsed on its own (recovering from
        // syntax errors) says which field starts there.
        let (document, _) = DeTable::parse_recoverable(text);
        let tree = tree(&document, &index);
        // An error without a place (or at the empty span of the document
        // itself) is about the top-level table, such as a missing `name`.
        match e.span().filter(|span| !span.is_empty()) {
            Some(span) => Located::at(index.pos(span.start), e.message(), &tree),
            None => Located::at_top(e.message()),
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
