//! [`SourceControl`]: what changed between two commits, and who wrote it
//! (reference §3.B4).

use async_trait::async_trait;
use atlas_promote_core::{ChangedFiles, Person, Result, SourceControl};

use crate::GitHub;
use crate::model::{Commit, Comparison, ComparisonStatus};

/// GitHub lists at most 300 files for a whole comparison (reference §0.6).
pub(crate) const COMPARE_FILE_LIMIT: usize = 300;
/// Commit pages read at most for authors (100 commits each).
const MAX_COMMIT_PAGES: usize = 50;

#[async_trait]
impl SourceControl for GitHub {
    /// One request: `GET /repos/{o}/{r}/compare/{base}...{head}`.
    ///
    /// Both the new and the old path of a rename count as changed. The list
    /// is `complete: false` when GitHub may have truncated it (300 files or
    /// more), or when `head` does not descend from `base` (`behind`,
    /// `diverged`: a rollback or a force-push), or when the status is one
    /// this library does not know: callers then assume the pipeline changed.
    async fn changed_files(&self, base: &str, head: &str) -> Result<ChangedFiles> {
        let basehead = format!("{base}...{head}");
        let url = self.repo_url(&["compare", &basehead]);
        let comparison: Comparison = self
            .client()
            .get_json("compare commits", url)
            .await
            .map_err(|e| e.into_core("compare commits", || format!("comparison {basehead}")))?;
        let mut files = Vec::with_capacity(comparison.files.len());
        for entry in &comparison.files {
            files.push(entry.filename.clone());
            if let Some(previous) = &entry.previous_filename
                && previous != &entry.filename
            {
                files.push(previous.clone());
            }
        }
        let descends = matches!(comparison.status, ComparisonStatus::Ahead | ComparisonStatus::Identical);
        let complete = descends && comparison.files.len() < COMPARE_FILE_LIMIT;
        Ok(ChangedFiles { files, complete })
    }

    /// The distinct authors (GitHub logins; the git e-mail when the commit
    /// maps to no account), in commit order. With a base: the commits of
    /// the comparison, every page; without: the history of `head` (up to
    /// 5,000 commits, beyond which it fails rather than answer partially).
    async fn authors(&self, base: Option<&str>, head: &str) -> Result<Vec<Person>> {
        let (commits, more) = match base {
            Some(base) => {
                let basehead = format!("{base}...{head}");
                let url = self.repo_url(&["compare", &basehead]);
                self.client()
                    .get_pages_more::<Commit>("compare commits", url, Some("commits"), MAX_COMMIT_PAGES)
                    .await
                    .map_err(|e| e.into_core("compare commits", || format!("comparison {basehead}")))?
            }
            None => {
                let mut url = self.repo_url(&["commits"]);
                url.query_pairs_mut().append_pair("sha", head);
                self.client()
                    .get_pages_more::<Commit>("list commits", url, None, MAX_COMMIT_PAGES)
                    .await
                    .map_err(|e| e.into_core("list commits", || format!("commit {head}")))?
            }
        };
        if more {
            return Err(atlas_promote_core::Error::Invalid {
                what: "commit range".into(),
                message: format!("more than {} commits up to {head}; give a base commit", MAX_COMMIT_PAGES * 100),
            });
        }
        Ok(commit_authors(&commits))
    }
}

pub(crate) fn commit_authors(commits: &[Commit]) -> Vec<Person> {
    let mut authors: Vec<Person> = Vec::new();
    for commit in commits {
        let person = commit.author.as_ref().map(|u| u.login.clone()).or_else(|| {
            let git = commit.commit.author.as_ref()?;
            git.email.clone().or_else(|| git.name.clone())
        });
        if let Some(person) = person
            && !authors.contains(&person)
        {
            authors.push(person);
        }
    }
    authors
}
