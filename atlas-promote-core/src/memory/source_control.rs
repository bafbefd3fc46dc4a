use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{lock, not_found};
use crate::backend::{ChangedFiles, SourceControl};
use crate::error::Result;
use crate::policy::Person;

const BACKEND: &str = "memory source control";

/// A tiny commit graph in memory: each commit has at most one (first) parent.
///
/// ```
/// use atlas_promote_core::memory::MemorySourceControl;
///
/// let git = MemorySourceControl::new();
/// git.commit("a1", None, "alice", &["README.md"]);
/// git.commit("b2", Some("a1"), "bob", &["pipelines/load.sql"]);
/// git.commit("c3", Some("b2"), "alice", &["src/app.rs"]);
/// ```
///
/// [`changed_files(base, head)`](SourceControl::changed_files) is the union
/// of the files of the commits in `(base, head]`, walking first parents from
/// `head`; when `base` is not among them the result holds the files of all
/// of `head`'s ancestors, marked `complete: false`. Unknown commits are
/// [`Error::NotFound`](crate::Error::NotFound). Both methods return sorted,
/// distinct lists.
#[derive(Debug, Clone, Default)]
pub struct MemorySourceControl {
    commits: Arc<Mutex<HashMap<String, Commit>>>,
}

#[derive(Debug, Clone)]
struct Commit {
    parent: Option<String>,
    author: Person,
    files: Vec<String>,
}

impl MemorySourceControl {
    /// No commits yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add commit `sha` on top of `parent` (`None`: a root), written by
    /// `author`, changing `files`. Adding an existing `sha` replaces it. A
    /// parent that was never added ends the history there.
    pub fn commit(&self, sha: &str, parent: Option<&str>, author: &str, files: &[&str]) {
        let commit = Commit {
            parent: parent.map(str::to_owned),
            author: author.to_owned(),
            files: files.iter().map(|&f| f.to_owned()).collect(),
        };
        lock(&self.commits).insert(sha.to_owned(), commit);
    }

    /// The commits from `head` back along first parents, stopping before
    /// `base`; whether `base` was reached.
    fn walk(&self, base: Option<&str>, head: &str) -> Result<(Vec<Commit>, bool)> {
        let commits = lock(&self.commits);
        for sha in base.into_iter().chain([head]) {
            if !commits.contains_key(sha) {
                return Err(not_found(BACKEND, format!("commit {sha}")));
            }
        }
        let mut seen = HashSet::new();
        let mut walked = Vec::new();
        let mut at = Some(head);
        while let Some(sha) = at {
            if Some(sha) == base {
                return Ok((walked, true));
            }
            // A replaced commit can make a cycle; stop rather than loop.
            let Some(commit) = commits.get(sha).filter(|_| seen.insert(sha)) else { break };
            walked.push(commit.clone());
            at = commit.parent.as_deref();
        }
        Ok((walked, base.is_none()))
    }
}

#[async_trait]
impl SourceControl for MemorySourceControl {
    async fn changed_files(&self, base: &str, head: &str) -> Result<ChangedFiles> {
        let (walked, complete) = self.walk(Some(base), head)?;
        let files: BTreeSet<String> = walked.into_iter().flat_map(|c| c.files).collect();
        Ok(ChangedFiles { files: files.into_iter().collect(), complete })
    }

    async fn authors(&self, base: Option<&str>, head: &str) -> Result<Vec<Person>> {
        let (walked, _) = self.walk(base, head)?;
        let authors: BTreeSet<Person> = walked.into_iter().map(|c| c.author).collect();
        Ok(authors.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn history() -> MemorySourceControl {
        let git = MemorySourceControl::new();
        git.commit("a1", None, "alice", &["README.md"]);
        git.commit("b2", Some("a1"), "bob", &["pipelines/load.sql", "src/lib.rs"]);
        git.commit("c3", Some("b2"), "alice", &["src/lib.rs"]);
        git.commit("x9", Some("a1"), "mallory", &["branch.txt"]);
        git
    }

    #[tokio::test]
    async fn changed_files_are_the_commits_after_base_up_to_head() {
        let git = history();
        let changed = git.changed_files("a1", "c3").await.unwrap();
        assert_eq!(
            changed,
            ChangedFiles { files: vec!["pipelines/load.sql".into(), "src/lib.rs".into()], complete: true }
        );
        let same = git.changed_files("c3", "c3").await.unwrap();
        assert_eq!(same, ChangedFiles { files: vec![], complete: true });
    }

    #[tokio::test]
    async fn a_base_that_is_not_an_ancestor_makes_the_list_incomplete() {
        let git = history();
        let changed = git.changed_files("x9", "c3").await.unwrap();
        assert!(!changed.complete);
        assert!(changed.files.contains(&"README.md".to_owned()));
    }

    #[tokio::test]
    async fn unknown_commits_are_not_found() {
        let git = history();
        assert!(matches!(git.changed_files("a1", "zz").await, Err(Error::NotFound { .. })));
        assert!(matches!(git.changed_files("zz", "c3").await, Err(Error::NotFound { .. })));
        assert!(matches!(git.authors(None, "zz").await, Err(Error::NotFound { .. })));
    }

    #[tokio::test]
    async fn authors_of_a_range_and_of_all_history() {
        let git = history();
        assert_eq!(git.authors(Some("b2"), "c3").await.unwrap(), ["alice"]);
        assert_eq!(git.authors(Some("a1"), "c3").await.unwrap(), ["alice", "bob"]);
        assert_eq!(git.authors(None, "x9").await.unwrap(), ["alice", "mallory"]);
    }

    #[tokio::test]
    async fn a_cycle_ends_the_walk() {
        let git = history();
        git.commit("a1", Some("c3"), "alice", &["README.md"]);
        let changed = git.changed_files("x9", "c3").await.unwrap();
        assert!(!changed.complete);
    }
}
