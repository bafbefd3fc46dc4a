//! Pull-request reviews as approvals for the review → trunk gate
//! (reference §3.B1, B2).

use std::collections::HashMap;

use atlas_promote_core::{ApprovalDecision, ApprovalRecord, Candidate, Result, SourceControl};

use crate::GitHub;
use crate::model::{PullRequest, Review, ReviewState};

/// Review pages read at most (100 reviews each).
const MAX_PAGES: usize = 10;

impl GitHub {
    /// A pull request.
    pub async fn pull_request(&self, number: u64) -> Result<PullRequest> {
        let url = self.repo_url(&["pulls", &number.to_string()]);
        self.client()
            .get_json("get pull request", url)
            .await
            .map_err(|e| e.into_core("get pull request", || format!("pull request #{number}")))
    }

    /// The pull requests a commit belongs to (`GET …/commits/{sha}/pulls`).
    pub async fn pull_requests_for_commit(&self, sha: &str) -> Result<Vec<PullRequest>> {
        let url = self.repo_url(&["commits", sha, "pulls"]);
        self.client()
            .get_pages("list pull requests of commit", url, None, 1)
            .await
            .map_err(|e| e.into_core("list pull requests of commit", || format!("commit {sha}")))
    }

    /// The pull requests of `sha`, remembered for the directory TTL once
    /// there are some: a commit waiting for review keeps its pull request,
    /// so polling its reviews costs one request, not two. A pull request
    /// opened later for the same commit is seen when the entry expires.
    async fn remembered_pull_requests(&self, sha: &str) -> Result<Vec<PullRequest>> {
        let ttl = self.config().directory_ttl;
        {
            let pulls = self.inner.pulls.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, prs)) = pulls.get(sha)
                && at.elapsed() < ttl
            {
                return Ok(prs.clone());
            }
        }
        let prs = self.pull_requests_for_commit(sha).await?;
        if !prs.is_empty() {
            let mut pulls = self.inner.pulls.lock().unwrap_or_else(|p| p.into_inner());
            pulls.retain(|_, (at, _)| at.elapsed() < ttl);
            pulls.insert(sha.to_owned(), (std::time::Instant::now(), prs.clone()));
        }
        Ok(prs)
    }

    /// The reviews of a pull request, in the order submitted, every page.
    pub async fn reviews(&self, number: u64) -> Result<Vec<Review>> {
        let url = self.repo_url(&["pulls", &number.to_string(), "reviews"]);
        self.client()
            .get_pages("list reviews", url, None, MAX_PAGES)
            .await
            .map_err(|e| e.into_core("list reviews", || format!("pull request #{number}")))
    }

    /// The candidate a pull request proposes: its head commit, from its head
    /// branch, authored by the pull request's author and every author of its
    /// commits (so none of them can approve it when self-approval is
    /// forbidden). 2 requests.
    pub async fn pull_request_candidate(&self, number: u64) -> Result<(PullRequest, Candidate)> {
        let pr = self.pull_request(number).await?;
        let mut authors: Vec<String> = pr.user.iter().map(|u| u.login.clone()).collect();
        for author in self.authors(Some(&pr.base.sha), &pr.head.sha).await? {
            if !authors.contains(&author) {
                authors.push(author);
            }
        }
        let mut candidate = Candidate::branch(pr.head.sha.clone(), pr.head.branch.clone(), authors);
        candidate.created_at = pr.created_at;
        Ok((pr, candidate))
    }

    /// Approval records for `sha` entering the review stage, from the reviews
    /// of every pull request whose head is `sha` (or, when none is, every
    /// pull request containing it). One request per pull request, plus one
    /// for the pull requests of `sha` when not remembered.
    pub(crate) async fn review_approvals(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>> {
        let prs = self.remembered_pull_requests(sha).await?;
        let heads: Vec<&PullRequest> = prs.iter().filter(|pr| pr.head.sha == sha).collect();
        let chosen: Vec<&PullRequest> = if heads.is_empty() { prs.iter().collect() } else { heads };
        let mut records = Vec::new();
        for pr in chosen {
            records.extend(review_records(&self.reviews(pr.number).await?, stage, sha));
        }
        Ok(records)
    }
}

/// Approval records from a pull request's reviews (reference §3.B1):
///
/// - each reviewer's **latest** approving, change-requesting or dismissed
///   review counts, keyed by user id (logins can be renamed); comments and
///   pending reviews are ignored, and so are deleted accounts;
/// - `APPROVED` approves, `CHANGES_REQUESTED` rejects, `DISMISSED`
///   withdraws (states in any case: REST says `APPROVED`, webhooks `approved`);
/// - a record is bound to the reviewed `commit_id`: only reviews of `sha`
///   give records, so an approval of an earlier push does not carry over.
pub fn review_records(reviews: &[Review], stage: &str, sha: &str) -> Vec<ApprovalRecord> {
    let mut latest: HashMap<u64, (usize, &Review)> = HashMap::new();
    for (index, review) in reviews.iter().enumerate() {
        let Some(user) = &review.user else { continue };
        if review.submitted_at.is_none() || decision(&review.state).is_none() {
            continue;
        }
        match latest.get(&user.id) {
            Some((_, kept)) if kept.submitted_at > review.submitted_at => {}
            _ => {
                latest.insert(user.id, (index, review));
            }
        }
    }
    let mut kept: Vec<(usize, &Review)> = latest.into_values().collect();
    kept.sort_by_key(|(index, _)| *index);
    kept.into_iter()
        .filter(|(_, review)| review.commit_id.as_deref() == Some(sha))
        .filter_map(|(_, review)| {
            Some(ApprovalRecord {
                approver: review.user.as_ref()?.login.clone(),
                roles: Vec::new(),
                stage: stage.to_owned(),
                sha: sha.to_owned(),
                decision: decision(&review.state)?,
                at: review.submitted_at?,
            })
        })
        .collect()
}

pub(crate) fn decision(state: &ReviewState) -> Option<ApprovalDecision> {
    match state {
        ReviewState::Approved => Some(ApprovalDecision::Approve),
        ReviewState::ChangesRequested => Some(ApprovalDecision::Reject),
        ReviewState::Dismissed => Some(ApprovalDecision::Withdraw),
        ReviewState::Commented | ReviewState::Pending | ReviewState::Unknown(_) => None,
    }
}
