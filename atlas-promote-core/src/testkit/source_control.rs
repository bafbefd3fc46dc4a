use crate::backend::SourceControl;
use crate::error::Error;

/// A piece of history the caller set up for [`source_control_suite`].
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// A commit that is an ancestor of `head`.
    pub base: &'a str,
    /// A later commit.
    pub head: &'a str,
    /// Files changed from `base` to `head` (all must be listed).
    pub files: &'a [&'a str],
    /// Authors of the commits in `(base, head]` (all must be listed).
    pub authors: &'a [&'a str],
}

/// Check a [`SourceControl`] against its contract on a history the caller set up.
///
/// It checks: the files changed from `base` to `head` include every one
/// given; nothing changed from `head` to itself; the authors of
/// `(base, head]` include everyone given; an unknown commit is
/// [`Error::NotFound`].
pub async fn source_control_suite(source: &dyn SourceControl, history: History<'_>) {
    let History { base, head, files, authors } = history;
    let changed = source.changed_files(base, head).await.expect("changed_files");
    for file in files {
        assert!(
            !changed.complete || changed.files.iter().any(|f| f == file),
            "SourceControl contract: {file} changed from {base} to {head}, but a complete list {:?} misses it",
            changed.files
        );
    }
    let same = source.changed_files(head, head).await.expect("changed_files of a commit with itself");
    assert!(!same.complete || same.files.is_empty(), "nothing changes from a commit to itself; got {same:?}");

    let got = source.authors(Some(base), head).await.expect("authors");
    for author in authors {
        assert!(
            got.iter().any(|a| a == author),
            "SourceControl contract: {author} wrote a commit in ({base}, {head}], but authors returned {got:?}"
        );
    }

    let unknown = "ffffffffffffffffffffffffffffffffffffffff";
    match source.changed_files(base, unknown).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("SourceControl contract: an unknown commit is Error::NotFound, got {other:?}"),
    }
}
