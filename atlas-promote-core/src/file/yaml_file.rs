//! YAML policy files, through serde-saphyr.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Options, Spanned, UserMessageFormatter};

use super::Located;
use super::recover::{Entry, Format, Mistake};
use super::tree::{FieldPath, Node, Pos, Shape, SpanTree};

/// YAML for the search for every mistake.
#[derive(Debug)]
pub(super) struct Yaml;

impl Format for Yaml {
    fn first<T: DeserializeOwned>(text: &str) -> Result<T, Mistake> {
        serde_saphyr::from_str_with_options::<T>(text, options()).map_err(|e| {
            let at = e.location().and_then(pos).map(|p| offset_of(text, p));
            Mistake { span: at.map(|at| at..at), message: message(&e) }
        })
    }

    fn entries(text: &str) -> Vec<Entry> {
        let mut entries = Vec::new();
        if let Ok(root) = serde_saphyr::from_str_with_options::<Spanned<YamlNode>>(text, options()) {
            node_entries(&root, &mut entries);
        }
        entries
    }

    fn tree(text: &str, at: Option<usize>) -> SpanTree {
        // A syntax error leaves no document to name the field from; the text
        // up to the error (or up to its line) usually still parses and says
        // which field the error is in.
        // Inside a flow collection (`{ developer: 1, developer: 2 }`), the
        // text up to the error parses once the collections open there are
        // closed, and then still names the keys before the error.
        document(text)
            .ok()
            .or_else(|| {
                let at = at?;
                let line_start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
                let head = text.get(..at)?;
                let closed = format!("{head}{}", closers(head));
                [closed.as_str(), head, text.get(..line_start)?].into_iter().find_map(|head| document(head).ok())
            })
            .unwrap_or_default()
    }

    fn supply(text: &str, at: Option<usize>, key: &str, value: &str) -> Option<(usize, String)> {
        // A missing field is reported at the mapping's first key, or at the
        // `{` of an empty flow mapping.
        let field = format!("{key}: {value}");
        let at = at?;
        let rest = text.get(at..)?;
        if let Some(inner) = rest.strip_prefix('{') {
            let empty = inner.trim_start().starts_with('}');
            return Some((at + 1, if empty { format!(" {field} ") } else { format!(" {field},") }));
        }
        let before = text.get(..at)?;
        if before.trim_end_matches([' ', '\t']).ends_with(['{', ',']) {
            return Some((at, format!("{field}, ")));
        }
        // A block mapping: a line of its own, at the first key's indentation.
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let indent = " ".repeat(before.get(line_start..)?.chars().count());
        Some((at, format!("{field}\n{indent}")))
    }
}

/// What closes the flow collections (`{`, `[`) still open at the end of
/// `text`, innermost first.
fn closers(text: &str) -> String {
    let mut open = Vec::new();
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    for c in text.chars() {
        match (quote, c) {
            _ if comment => comment = c != '\n',
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            // A quote opens a scalar only at its start (`it's` is plain).
            (None, '"' | '\'') if previous.is_whitespace() || matches!(previous, '{' | '[' | ',' | ':') => {
                quote = Some(c);
            }
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '{') => open.push('}'),
            (None, '[') => open.push(']'),
            (None, '}' | ']') => {
                open.pop();
            }
            _ => {}
        }
        previous = c;
    }
    open.iter().rev().collect()
}

/// The byte offset of a 1-based line and character column in `text`.
fn offset_of(text: &str, pos: Pos) -> usize {
    let line_start: usize = text.split_inclusive('\n').take(pos.line.saturating_sub(1)).map(str::len).sum();
    let rest = text.get(line_start..).unwrap_or_default();
    line_start + rest.chars().take(pos.column.saturating_sub(1)).map(char::len_utf8).sum::<usize>()
}

/// The byte range of a node, when the parser knows it.
fn range(location: Location) -> Option<std::ops::Range<usize>> {
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    Some(start..start + len)
}

fn node_entries(node: &Spanned<YamlNode>, entries: &mut Vec<Entry>) {
    match &node.value {
        YamlNode::Scalar => {}
        YamlNode::Sequence(items) => {
            for item in items {
                if let Some(value) = range(item.referenced).filter(|r| !r.is_empty()) {
                    entries.push(Entry { key: None, value });
                }
                node_entries(item, entries);
            }
        }
        YamlNode::Mapping(pairs) => {
            for (k, v) in pairs {
                let key = range(k.referenced).filter(|r| !r.is_empty());
                if let (Some(key), Some(value)) = (key, range(v.referenced).filter(|r| !r.is_empty())) {
                    entries.push(Entry { key: Some(key), value });
                }
                node_entries(v, entries);
            }
        }
    }
}

/// Parse YAML text into a policy (or another file of ours) and the
/// positions of its fields; the first mistake only.
pub(super) fn parse<T: DeserializeOwned>(text: &str) -> Result<(T, SpanTree), Located> {
    let policy = Yaml::first::<T>(text).map_err(|e| {
        let at = e.span.map(|s| s.start);
        let pos = at.map_or(Pos::START, |at| super::tree::LineIndex::new(text).pos(at));
        Located::at(pos, &e.message, &Yaml::tree(text, at))
    })?;
    let tree = document(text).map_err(|e| Located {
        pos: e.location().and_then(pos).unwrap_or(Pos::START),
        field: None,
        message: message(&e),
    })?;
    Ok((policy, tree))
}

fn options() -> Options {
    let mut options = Options::default();
    // The error carries its location; `PolicyError` renders it, not a snippet.
    options.with_snippet = false;
    options
}

fn message(e: &serde_saphyr::Error) -> String {
    // The formatter's text may quote the input; keep a message to one line.
    UserMessageFormatter.format_message(e).chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn pos(location: Location) -> Option<Pos> {
    let line = usize::try_from(location.line()).ok().filter(|l| *l > 0)?;
    let column = usize::try_from(location.column()).ok().filter(|c| *c > 0)?;
    Some(Pos { line, column })
}

fn document(text: &str) -> Result<SpanTree, serde_saphyr::Error> {
    let root = serde_saphyr::from_str_with_options::<Spanned<YamlNode>>(text, options())?;
    let mut tree = SpanTree::default();
    add(&mut tree, FieldPath::root(), None, &root);
    Ok(tree)
}

fn add(tree: &mut SpanTree, path: FieldPath, key: Option<Pos>, node: &Spanned<YamlNode>) {
    let value = pos(node.referenced).unwrap_or(Pos::START);
    match &node.value {
        YamlNode::Scalar => tree.push(Node { path, key, value, shape: Shape::Scalar }),
        YamlNode::Sequence(items) => {
            tree.push(Node { path: path.clone(), key, value, shape: Shape::Array });
            for (i, item) in items.iter().enumerate() {
                add(tree, path.index(i), None, item);
            }
        }
        YamlNode::Mapping(entries) => {
            tree.push(Node { path: path.clone(), key, value, shape: Shape::Table });
            for (k, v) in entries {
                add(tree, path.key(k.value.0.clone()), pos(k.referenced), v);
            }
        }
    }
}

/// A YAML document's shape, without its values.
#[derive(Debug)]
enum YamlNode {
    Scalar,
    Sequence(Vec<Spanned<YamlNode>>),
    Mapping(Vec<(Spanned<YamlKey>, Spanned<YamlNode>)>),
}

impl<'de> Deserialize<'de> for YamlNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

macro_rules! scalars {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<YamlNode, E> {
            Ok(YamlNode::Scalar)
        })*
    };
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = YamlNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128,
             visit_f64: f64, visit_str: &str, visit_bytes: &[u8], visit_char: char);

    fn visit_unit<E: de::Error>(self) -> Result<YamlNode, E> {
        Ok(YamlNode::Scalar)
    }

    fn visit_none<E: de::Error>(self) -> Result<YamlNode, E> {
        Ok(YamlNode::Scalar)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<YamlNode, D::Error> {
        YamlNode::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<YamlNode, D::Error> {
        YamlNode::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(YamlNode::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(YamlNode::Mapping(entries))
    }
}

/// A mapping key as text, whatever scalar it was written as.
#[derive(Debug)]
struct YamlKey(String);

impl<'de> Deserialize<'de> for YamlKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

macro_rules! keys {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method<E: de::Error>(self, v: $ty) -> Result<YamlKey, E> {
            Ok(YamlKey(v.to_string()))
        })*
    };
}

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = YamlKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }

    keys!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128,
          visit_f64: f64, visit_str: &str, visit_char: char);

    fn visit_unit<E: de::Error>(self) -> Result<YamlKey, E> {
        Ok(YamlKey("null".to_owned()))
    }
}
