//! Policy files: TOML, and YAML behind the `yaml` feature (DESIGN §7).
//!
//! Reading a file is two steps: the format's parser turns it into a typed
//! [`Policy`] (syntax, unknown fields, types, durations, times, time zones),
//! then validation checks the rules a shape cannot express (stage order,
//! counts, globs, windows, freezes, …). Either step's mistake is reported as
//! a [`PolicyError`] naming the file, the line and column, and the field.
//! Both steps report every mistake (a syntax error alone, since nothing
//! after it can be read), in the order of the file
//! ([`PolicyError::mistakes`]).

use std::fmt;
use std::path::Path;

use crate::policy::Policy;

mod recover;
mod time;
mod toml_file;
mod tree;
mod validate;
#[cfg(feature = "yaml")]
mod yaml_file;

pub(crate) use time::{instant, invalid_time_message, optional_instant, time_of_day};
pub(crate) use tree::FieldPath;
use tree::{Pos, Shape, SpanTree};

use serde::de::DeserializeOwned;

/// A policy file that could not be read, parsed or validated.
///
/// Names the file, the place (line and column, 1-based, when known) and the
/// field of its first mistake; the file's further mistakes, when validation
/// found several, are in [`also`](Self::also), in the order of the file.
/// `Display` writes each mistake on a line of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (or the name given for a text).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field at fault, as a path such as `stage[3].approvals.require.product-owner`
    /// (keys as written in the file, indexes from 0); `None` when no field can
    /// be named (the file cannot be read, or a syntax error leaves nothing
    /// around it to name).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The file's other mistakes, after this one in the order of the file
    /// (each with an empty `also`). Empty when the file has one mistake, or
    /// a syntax error, which stops reading.
    pub also: Box<[PolicyError]>,
}

impl PolicyError {
    /// Every mistake: this one, then [`also`](Self::also).
    ///
    /// ```
    /// use atlas_promote_core::Policy;
    ///
    /// let text = r#"
    /// name = "two mistakes"
    ///
    /// [[stage]]
    /// name = "trunk"
    /// kind = "trunk"
    ///
    /// [[stage]]
    /// name = "prod"
    /// kind = "environment"
    /// checks = [{ name = "nightly", max_age = "0h" }]
    /// approvals = { require = { product-owner = 0 } }
    /// "#;
    /// let err = Policy::from_toml_str(text, "two.toml").unwrap_err();
    /// let lines: Vec<_> = err.mistakes().map(|m| m.line).collect();
    /// assert_eq!(lines, [Some(11), Some(12)]);
    /// assert_eq!(err.to_string().lines().count(), 2);
    /// ```
    pub fn mistakes(&self) -> impl Iterator<Item = &PolicyError> {
        std::iter::once(self).chain(self.also.iter())
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_one(f)?;
        for mistake in self.also.iter() {
            writeln!(f)?;
            mistake.write_one(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// A mistake at a known place of a text, before the file's name is attached.
#[derive(Debug)]
struct Located {
    pos: Pos,
    field: Option<String>,
    message: String,
}

impl Located {
    /// A parser's error at `pos`, named after the field written there.
    fn at(pos: Pos, message: &str, tree: &SpanTree) -> Self {
        // A missing field reported at the last key of its table (YAML) is
        // pointed at where the table starts, as in TOML.
        let pos = match tree.field_at(pos, missing_field(message).is_some()) {
            Some(table) if missing_field(message).is_some() && table.shape == Shape::Table && table.value < pos => {
                table.value
            }
            _ => pos,
        };
        Self { pos, field: field_at(pos, message, tree).to_field(), message: message.to_owned() }
    }

    /// A parser's error about the document as a whole.
    fn at_top(message: &str) -> Self {
        let path = missing_field(message).map_or_else(FieldPath::root, |field| FieldPath::root().key(field));
        Self { pos: Pos::START, field: path.to_field(), message: message.to_owned() }
    }

    fn in_file(self, file: &str) -> PolicyError {
        PolicyError {
            file: file.to_owned(),
            line: Some(self.pos.line),
            column: Some(self.pos.column),
            field: self.field,
            message: self.message,
            also: Box::default(),
        }
    }
}

/// The field a parser's error at `pos` is about: the field written there,
/// or for a missing field, the table there followed by the field's name.
fn field_at(pos: Pos, message: &str, tree: &SpanTree) -> FieldPath {
    let missing = missing_field(message);
    match (tree.field_at(pos, missing.is_some()), missing) {
        (Some(node), Some(field)) => node.path.key(field),
        (Some(node), None) => node.path.clone(),
        (None, Some(field)) => FieldPath::root().key(field),
        (None, None) => FieldPath::root(),
    }
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Read and validate a policy of format `F`: the policy, or every mistake
/// of both steps, in the order of the file (mistakes at one place in the
/// order they were found).
///
/// Validation looks at the policy as the search for parse mistakes left it
/// (each bad value replaced, each unknown field left out, each missing
/// field supplied); its mistakes
/// about fields the search touched are not reported, since they may be
/// about the stand-in rather than what was written.
fn read_policy<F: recover::Format>(text: &str, file: &str) -> Result<Policy, PolicyError> {
    let found = recover::every_mistake::<F, Policy>(text);
    let index = tree::LineIndex::new(text);
    let first_at = found.mistakes.first().and_then(|(at, _)| *at);
    let tree = F::tree(text, first_at);
    let mut located: Vec<Located> = found
        .mistakes
        .iter()
        .map(|(at, message)| match at {
            Some(at) => Located::at(index.pos(*at), message, &tree),
            None => Located::at_top(message),
        })
        .collect();
    let parsed_cleanly = located.is_empty();
    if let Some(policy) = found.value {
        let supplied = found.supplied.iter().filter_map(|&i| found.mistakes.get(i)).map(|(at, message)| match at {
            Some(at) => field_at(index.pos(*at), message, &tree),
            None => missing_field(message).map_or_else(FieldPath::root, |field| FieldPath::root().key(field)),
        });
        let touched: Vec<FieldPath> = found
            .neutralized
            .iter()
            .filter_map(|range| tree.field_at(index.pos(range.start), false).map(|node| node.path.clone()))
            .chain(supplied)
            .collect();
        for invalid in validate::validate(&policy) {
            if touched.iter().any(|t| t.is_related(&invalid.path)) {
                continue;
            }
            located.push(Located {
                pos: tree.position_of(&invalid.path),
                field: invalid.path.to_field(),
                message: invalid.message,
            });
        }
        if parsed_cleanly && located.is_empty() {
            return Ok(policy);
        }
    }
    located.sort_by_key(|mistake| mistake.pos);
    let mut mistakes = located.into_iter().map(|mistake| mistake.in_file(file));
    match mistakes.next() {
        None => Err(PolicyError::whole_file(file, "the policy could not be read")),
        Some(first) => Err(PolicyError { also: mistakes.collect(), ..first }),
    }
}

impl PolicyError {
    /// This mistake alone, as `file:line:column: field: message`.
    fn write_one(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }

    pub(crate) fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
            also: Box::default(),
        }
    }
}

impl Policy {
    /// Read and validate a policy from TOML text; `file` names it in errors.
    ///
    /// Freezes may be written as TOML date-times (`from = 2026-12-20T00:00:00Z`)
    /// or as quoted RFC 3339 strings; window times as `"09:00"` or `09:00`.
    ///
    /// ```
    /// use atlas_promote_core::Policy;
    ///
    /// let text = r#"
    /// name = "tiny"
    ///
    /// [[stage]]
    /// name = "trunk"
    /// kind = "trunk"
    ///
    /// [[stage]]
    /// name = "prod"
    /// kind = "environment"
    /// approvals = { require = { developer = 0 } }
    /// "#;
    /// let err = Policy::from_toml_str(text, "tiny.toml").unwrap_err();
    /// assert_eq!((err.line, err.column), (Some(11), Some(39)));
    /// assert_eq!(err.field.as_deref(), Some("stage[1].approvals.require.developer"));
    /// assert!(err.to_string().starts_with("tiny.toml:11:39: stage[1].approvals.require.developer: "));
    /// ```
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, PolicyError> {
        read_policy::<toml_file::Toml>(text, file)
    }

    /// Read and validate a policy from YAML text; `file` names it in errors.
    ///
    /// The shape is the TOML file's: `stage` is a list of mappings.
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(text: &str, file: &str) -> Result<Self, PolicyError> {
        read_policy::<yaml_file::Yaml>(text, file)
    }

    /// Read and validate a policy file: `.toml`, or `.yaml` / `.yml` with the `yaml` feature.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let read = || read_text(path, &file, "policy file");
        match extension.as_deref() {
            Some("toml") => Self::from_toml_str(&read()?, &file),
            #[cfg(feature = "yaml")]
            Some("yaml" | "yml") => Self::from_yaml_str(&read()?, &file),
            #[cfg(not(feature = "yaml"))]
            Some("yaml" | "yml") => Err(PolicyError::whole_file(
                &file,
                "reading YAML policy files needs the `yaml` feature of atlas-promote; use a .toml file or enable the feature",
            )),
            _ => Err(PolicyError::whole_file(&file, "unknown policy file type: expected a .toml, .yaml or .yml file")),
        }
    }

    /// The policy as a TOML policy file, which [`Policy::from_toml_str`] reads
    /// back as an equal policy (when the policy is valid).
    ///
    /// This cannot fail: toml refuses only unit values, `None`s it is asked to
    /// write, map keys that are not strings and integers beyond `i64`, and a
    /// policy has none of those (every optional field is skipped when `None`,
    /// every map is keyed by `String`, counts are `u32`, durations, times,
    /// instants and time zones are written as strings). A property test
    /// writes and reads back arbitrary policies to hold it to that.
    pub fn to_toml_string(&self) -> String {
        match toml::to_string_pretty(self) {
            Ok(text) => text,
            // Unreachable (see above); a comment keeps the promise not to
            // panic, and reading it back fails loudly on the missing `name`.
            Err(e) => format!("# atlas-promote could not write this policy as TOML: {e}\n"),
        }
    }
}

/// Another file of ours (a policy test file) as read: its value, and where
/// each of its fields is written, so that a mistake found later is located
/// like a policy file's.
#[derive(Debug)]
pub(crate) struct Parsed<T> {
    pub(crate) value: T,
    pub(crate) file: String,
    tree: SpanTree,
}

impl<T> Parsed<T> {
    /// A mistake about the field at `path`, at the place it is written.
    pub(crate) fn error_at(&self, path: &FieldPath, message: impl Into<String>) -> PolicyError {
        Located { pos: self.tree.position_of(path), field: path.to_field(), message: message.into() }
            .in_file(&self.file)
    }
}

/// The text of the file at `path` (named `file`, a `what` in messages);
/// bytes that are not UTF-8 are refused at their byte offset, line and
/// column.
fn read_text(path: &Path, file: &str, what: &str) -> Result<String, PolicyError> {
    let bytes =
        std::fs::read(path).map_err(|e| PolicyError::whole_file(file, format!("cannot read the {what}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let head = e.as_bytes().get(..valid).and_then(|head| std::str::from_utf8(head).ok()).unwrap_or_default();
        let pos = tree::LineIndex::new(head).pos(valid);
        PolicyError {
            line: Some(pos.line),
            column: Some(pos.column),
            ..PolicyError::whole_file(file, format!("not valid UTF-8 at byte {valid}; a {what} must be UTF-8 text"))
        }
    })
}

/// Read a file of ours other than a policy: `.toml`, or `.yaml` / `.yml`
/// with the `yaml` feature; errors are located as in a policy file.
pub(crate) fn read_located<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Parsed<T>, PolicyError> {
    let file = path.display().to_string();
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let read = || read_text(path, &file, what);
    let (value, tree) = match extension.as_deref() {
        Some("toml") => toml_file::parse(&read()?).map_err(|e| e.in_file(&file))?,
        #[cfg(feature = "yaml")]
        Some("yaml" | "yml") => yaml_file::parse(&read()?).map_err(|e| e.in_file(&file))?,
        _ => {
            return Err(PolicyError::whole_file(
                &file,
                format!("unknown {what} type: expected a .toml, .yaml or .yml file"),
            ));
        }
    };
    Ok(Parsed { value, file, tree })
}

/// A file of your own (a service's config, say) read like a policy file:
/// its typed value, and where each of its fields is written, so that a
/// mistake found after parsing is located by line, column and field too.
///
/// ```
/// use atlas_promote_core::LocatedFile;
///
/// #[derive(serde::Deserialize)]
/// struct Config { listen: String }
///
/// let file = LocatedFile::<Config>::from_toml_str("\nlisten = \"nowhere\"\n", "atlas.toml").unwrap();
/// let err = file.error_at("listen", "expected an address such as 127.0.0.1:8080");
/// assert_eq!(err.to_string(), "atlas.toml:2:10: listen: expected an address such as 127.0.0.1:8080");
/// ```
#[derive(Debug)]
pub struct LocatedFile<T>(Parsed<T>);

impl<T: DeserializeOwned> LocatedFile<T> {
    /// Read `path` (`.toml`, or `.yaml` / `.yml` with the `yaml` feature);
    /// `what` names the kind of file in errors ("config file").
    pub fn read(path: impl AsRef<Path>, what: &str) -> Result<Self, PolicyError> {
        read_located(path.as_ref(), what).map(Self)
    }

    /// Parse TOML text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, PolicyError> {
        let (value, tree) = toml_file::parse(text).map_err(|e| e.in_file(file))?;
        Ok(Self(Parsed { value, file: file.to_owned(), tree }))
    }
}

impl<T> LocatedFile<T> {
    /// The value read.
    pub fn value(&self) -> &T {
        &self.0.value
    }

    /// The file's name as given.
    pub fn file(&self) -> &str {
        &self.0.file
    }

    /// A mistake about the field at `path`, written as in
    /// [`PolicyError::field`] (`notify[1].url_env`, `github.teams.dev-team`),
    /// located where that field is written (or where the nearest enclosing
    /// table is, for a field that is missing).
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> PolicyError {
        self.0.error_at(&field_path(path), message)
    }

    /// Several mistakes as one error, in the order of the file; `None` when
    /// there are none.
    pub fn errors(mistakes: Vec<PolicyError>) -> Option<PolicyError> {
        let mut mistakes = mistakes;
        mistakes.sort_by_key(|m| (m.line, m.column));
        let mut mistakes = mistakes.into_iter();
        let first = mistakes.next()?;
        Some(PolicyError { also: mistakes.collect(), ..first })
    }
}

/// `a.b[2].c` as a field path (keys split at dots, `[n]` indexes).
fn field_path(text: &str) -> FieldPath {
    let mut path = FieldPath::root();
    for part in text.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            path = path.key(key);
        }
        for index in rest.split('[') {
            if let Some(n) = index.trim_end_matches(']').parse::<usize>().ok().filter(|_| index.ends_with(']')) {
                path = path.index(n);
            }
        }
    }
    path
}
