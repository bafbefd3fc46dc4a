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
/// `head`. When `base` is not among them, it is what `git diff base...head`
/// (and GitHub's compare) shows: the files of the commits from the merge
/// base of the two up to `head` (none when `head` is an ancestor of `base`;
/// all of `head`'s history when they share none), marked `complete: false`.
/// [`authors`](SourceControl::authors) walks the same commits. The cost of
/// either is the distance between the two commits, not the length of the
/// history. Unknown commits are
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

    /// What `git diff base...head` walks: the commits from `head` back
    /// along first parents to the merge base of `base` and `head`
    /// (exclusive), and whether that merge base is `base` itself. Without
    /// `base`, all of `head`'s ancestors, complete.
    ///
    /// The two histories are walked in step, so the cost is the distance
    /// between the commits, not the length of the history, whichever of
    /// them is newer.
    fn walk<T>(&self, base: Option<&str>, head: &str, take: impl Fn(&Commit) -> T) -> Result<(Vec<T>, bool)> {
        let commits = lock(&self.commits);
        for sha in base.into_iter().chain([head]) {
            if !commits.contains_key(sha) {
                return Err(not_found(BACKEND, format!("commit {sha}")));
            }
        }
        // Each side's commits so far, in walk order; a replaced commit can
        // make a cycle, which ends that side's walk.
        let mut from_head: Vec<&str> = Vec::new();
        let mut head_seen: HashMap<&str, usize> = HashMap::new();
        let mut base_seen: HashSet<&str> = HashSet::new();
        let (mut h, mut b) = (Some(head), base);
        // Where the head side's list ends, and whether it ended at `base`.
        let (end, complete) = loop {
            if let Some(sha) = h {
                if Some(sha) == base {
                    break (from_head.len(), true);
                }
                if base_seen.contains(sha) {
                    // The merge base, found from the head side.
                    break (from_head.len(), false);
                }
                h = match commits.get(sha) {
                    Some(commit) if !head_seen.contains_key(sha) => {
                        head_seen.insert(sha, from_head.len());
                        from_head.push(sha);
                        commit.parent.as_deref()
                    }
                    _ => None,
                };
            }
            if let Some(sha) = b {
                if let Some(&at) = head_seen.get(sha) {
                    // The merge base, found from the base side: the head
                    // side walked past it.
                    break (at, false);
                }
                b = match commits.get(sha) {
                    Some(commit) if base_seen.insert(sha) => commit.parent.as_deref(),
                    _ => None,
                };
            }
            if h.is_none() && b.is_none() {
                // Unrelated histories (or no base): all of head's.
                break (from_head.len(), base.is_none());
            }
        };
        let taken = from_head[..end].iter().filter_map(|sha| commits.get(*sha)).map(take).collect();
        Ok((taken, complete))
    }
}

#[async_trait]
impl SourceControl for MemorySourceControl {
    async fn changed_files(&self, base: &str, head: &str) -> Result<ChangedFiles> {
        let (walked, complete) = self.walk(Some(base), head, |c| c.files.clone())?;
        let files: BTreeSet<String> = walked.into_iter().flatten().collect();
        Ok(ChangedFiles { files: files.into_iter().collect(), complete })
    }

    async fn authors(&self, base: Option<&str>, head: &str) -> Result<Vec<Person>> {
        let (walked, _) = self.walk(base, head, |c| c.author.clone())?;
        let authors: BTreeSet<Person> = walked.into_iter().collect();
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
    async fn a_base_that_is_not_an_ancestor_lists_the_changes_since_the_merge_base() {
        let git = history();
        // x9 branched off a1: what c3 changed since a1, as `git diff x9...c3`.
        let changed = git.changed_files("x9", "c3").await.unwrap();
        assert_eq!(
            changed,
            ChangedFiles { files: vec!["pipelines/load.sql".into(), "src/lib.rs".into()], complete: false }
        );
        assert_eq!(git.authors(Some("x9"), "c3").await.unwrap(), ["alice", "bob"]);
        // b2 is behind c3: nothing of b2's is missing from c3.
        let behind = git.changed_files("c3", "b2").await.unwrap();
        assert_eq!(behind, ChangedFiles { files: vec![], complete: false });
        // Unrelated histories: all of head's.
        git.commit("r1", None, "rita", &["other.txt"]);
        let unrelated = git.changed_files("r1", "c3").await.unwrap();
        assert!(!unrelated.complete);
        assert_eq!(unrelated.files, ["README.md", "pipelines/load.sql", "src/lib.rs"]);
    }

    #[tokio::test]
    async fn in_a_long_history_ranges_near_the_head_are_exact() {
        let git = MemorySourceControl::new();
        let shas: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
        for (i, sha) in shas.iter().enumerate() {
            let parent = i.checked_sub(1).map(|p| shas[p].as_str());
            git.commit(sha, parent, &format!("author{}", i % 3), &[&format!("file{i}")]);
        }
        let last = shas.len() - 1;
        let changed = git.changed_files(&shas[last - 2], &shas[last]).await.unwrap();
        assert_eq!(changed.files, [format!("file{}", last - 1), format!("file{last}")]);
        assert!(changed.complete);
        let behind = git.changed_files(&shas[last], &shas[last - 2]).await.unwrap();
        assert_eq!(behind, ChangedFiles { files: vec![], complete: false });
        assert_eq!(git.authors(None, &shas[last]).await.unwrap(), ["author0", "author1", "author2"]);
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
