//! Where each field of a policy file is written.
//!
//! Both formats are parsed a second time into a flat list of spanned nodes, so
//! that an error found on the typed [`Policy`](crate::Policy) (which has no
//! positions) can be pointed at a line and column, and a position reported by
//! a parser can be named as a field path.

use std::fmt;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Pos {
    /// The start of a document.
    pub(crate) const START: Self = Self { line: 1, column: 1 };
}

/// One step of a field path: a key of a table or an index into an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `stage[3].approvals.require.product-owner`.
///
/// Keys are written as in the file (`stage`, not `stages`); indexes count from 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Seg>);

impl FieldPath {
    /// The path of the document itself.
    pub(crate) fn root() -> Self {
        Self(Vec::new())
    }

    /// This path followed by a key.
    pub(crate) fn key(&self, key: impl Into<String>) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.into()));
        Self(segs)
    }

    /// This path followed by an index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// The path without its last step; `None` for the document itself.
    pub(crate) fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Whether one of the two paths is the other or inside it.
    pub(crate) fn is_related(&self, other: &FieldPath) -> bool {
        self.starts_with(other) || other.starts_with(self)
    }

    /// The path as text, or `None` for the document itself.
    pub(crate) fn to_field(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.to_string())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare =
                        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    if bare { f.write_str(key)? } else { write!(f, "{key:?}")? }
                }
            }
        }
        Ok(())
    }
}

/// What a node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Table,
    Array,
    Scalar,
}

/// A field as written: its path, where its key is (for table entries) and
/// where its value starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) path: FieldPath,
    pub(crate) key: Option<Pos>,
    pub(crate) value: Pos,
    pub(crate) shape: Shape,
}

/// Every field of one document with its position.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpanTree {
    nodes: Vec<Node>,
}

impl SpanTree {
    pub(crate) fn push(&mut self, node: Node) {
        self.nodes.push(node);
    }

    /// Where to point for the field at `path`: its value when that is a
    /// scalar, else its key (the line that opens it). A field that is not
    /// written (a default) is pointed at through its closest written parent.
    pub(crate) fn position_of(&self, path: &FieldPath) -> Pos {
        self.nodes.iter().filter(|n| path.starts_with(&n.path)).max_by_key(|n| n.path.len()).map_or(Pos::START, |n| {
            match (n.shape, n.key) {
                (Shape::Scalar, _) | (_, None) => n.value,
                (_, Some(key)) => key,
            }
        })
    }

    /// The field a parser's error position belongs to: the deepest node whose
    /// key or value starts last at or before `pos`.
    ///
    /// A missing field is reported at the table that lacks it: where the
    /// table starts (TOML: its header or `{`; YAML: its first key) or at its
    /// last key (YAML); `want_table` picks that table.
    pub(crate) fn field_at(&self, pos: Pos, want_table: bool) -> Option<&Node> {
        let start = |n: &Node| [n.key, Some(n.value)].into_iter().flatten().filter(|p| *p <= pos).max();
        let best = self.nodes.iter().filter_map(start).max()?;
        if want_table {
            if let Some(table) =
                self.nodes.iter().filter(|n| n.shape == Shape::Table && n.value == best).max_by_key(|n| n.path.len())
            {
                return Some(table);
            }
            let key = self.nodes.iter().filter(|n| n.key == Some(best)).max_by_key(|n| n.path.len());
            if let Some(parent) = key.and_then(|key| key.path.parent())
                && let Some(table) = self.nodes.iter().find(|n| n.path == parent && n.shape == Shape::Table)
            {
                return Some(table);
            }
        }
        let at_best = self.nodes.iter().filter(|n| start(n) == Some(best));
        at_best.max_by_key(|n| n.path.len())
    }
}

/// Turns byte offsets of one text into positions.
#[derive(Debug)]
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { text, line_starts }
    }

    /// The position of byte `offset` (clamped to the text).
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = match self.text.get(start..offset) {
            Some(prefix) => prefix.chars().count(),
            None => offset - start,
        };
        Pos { line, column: column + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let index = LineIndex::new("ab\nçd\n");
        assert_eq!(index.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(index.pos(3), Pos { line: 2, column: 1 });
        assert_eq!(index.pos(5), Pos { line: 2, column: 2 });
        assert_eq!(index.pos(99), Pos { line: 3, column: 1 });
    }

    #[test]
    fn paths_quote_keys_that_are_not_bare() {
        let path = FieldPath::root().key("stage").index(3).key("approvals").key("a.b");
        assert_eq!(path.to_string(), r#"stage[3].approvals."a.b""#);
    }
}
