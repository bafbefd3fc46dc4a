//! Reading pipelines, workflows and jobs, with the caches that keep polling cheap.
//!
//! API requests are this backend's real cost (rate limits), so what cannot
//! change is read once:
//! - the trunk branch's pipeline list is read incrementally: newest page
//!   first, stopping at the first pipeline already known;
//! - a pipeline's workflow list is reused while every workflow in it has
//!   finished, for `settled_ttl` (a rerun adds a workflow only to a finished one);
//! - a finished workflow's jobs never change, and are kept;
//! - user logins are kept.

use std::collections::HashSet;
use std::time::Instant;

use atlas_promote_core::{Error, Result};
use chrono::{DateTime, Utc};

use crate::cache::{Cache, Listed};
use crate::client::segment;
use crate::model::{Job, Pipeline, Workflow, jobs_final};
use crate::{CircleCi, lock};

impl CircleCi {
    fn project_path(&self) -> String {
        format!("/project/{}", self.inner.settings.project_slug)
    }

    /// The trunk branch's pipelines created at or after `cutoff`, newest
    /// first, read incrementally.
    pub(crate) async fn trunk_pipelines(&self, cutoff: DateTime<Utc>) -> Result<Vec<Pipeline>> {
        let (known, covered): (HashSet<String>, bool) = {
            let cache = lock(&self.inner.cache);
            let covered = cache.trunk_covers.is_some_and(|c| c <= cutoff);
            (if covered { cache.trunk.iter().map(|p| p.id.clone()).collect() } else { HashSet::new() }, covered)
        };
        let branch = self.inner.settings.trunk_branch.clone();
        let path = format!("{}/pipeline", self.project_path());
        let listing = self
            .inner
            .client
            .list::<Pipeline>("list pipelines", &path, &[("branch", branch.as_str())], |page| {
                !page.iter().any(|p| known.contains(&p.id) || p.created_at < cutoff)
            })
            .await?;
        let reached_known = listing.items.iter().any(|p| known.contains(&p.id));
        let mut cache = lock(&self.inner.cache);
        let fresh_ids: HashSet<&str> = listing.items.iter().map(|p| p.id.as_str()).collect();
        if covered && reached_known {
            let older: Vec<Pipeline> = cache.trunk.drain(..).filter(|p| !fresh_ids.contains(p.id.as_str())).collect();
            cache.trunk = listing.items;
            cache.trunk.extend(older);
        } else {
            let oldest = listing.items.last().map(|p| p.created_at);
            cache.trunk_covers = match (listing.complete, oldest) {
                // Reached the cutoff, or the end of the list.
                (true, Some(oldest)) if oldest < cutoff => Some(cutoff),
                (true, _) => Some(DateTime::<Utc>::MIN_UTC),
                (false, oldest) => oldest,
            };
            cache.trunk = listing.items;
        }
        cache.trunk.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        Ok(cache.trunk.iter().filter(|p| p.created_at >= cutoff).cloned().collect())
    }

    /// A pipeline's workflows, from the cache while they are all finished and
    /// younger than `settled_ttl`, or when `live_by_jobs` says one is still going.
    pub(crate) async fn workflows(&self, pipeline_id: &str) -> Result<Vec<Workflow>> {
        if let Some(cached) = self.cached_workflows(pipeline_id) {
            return Ok(cached);
        }
        self.read_workflows(pipeline_id).await
    }

    /// A pipeline's workflows, like [`workflows`](Self::workflows), except
    /// that a settled list none of whose workflows is `relevant` is reused
    /// however old: a rerun adds a workflow of the same name as one already
    /// there, so it cannot add a relevant one (a deploy pipeline never grows
    /// a check workflow or an approval job).
    pub(crate) async fn workflows_if_relevant(
        &self,
        pipeline_id: &str,
        relevant: impl Fn(&Workflow, &Cache) -> bool,
    ) -> Result<Vec<Workflow>> {
        {
            let cache = lock(&self.inner.cache);
            if let Some(listed) = cache.workflows.get(pipeline_id)
                && !listed.value.is_empty()
                && listed.value.iter().all(|w| w.status.is_terminal() && !relevant(w, &cache))
            {
                return Ok(listed.value.clone());
            }
        }
        self.workflows(pipeline_id).await
    }

    /// A pipeline's workflows, read now.
    pub(crate) async fn read_workflows(&self, pipeline_id: &str) -> Result<Vec<Workflow>> {
        let path = format!("/pipeline/{}/workflow", segment(pipeline_id));
        let workflows: Vec<Workflow> = self.inner.client.list_all("list workflows", &path).await?;
        lock(&self.inner.cache)
            .workflows
            .insert(pipeline_id.to_owned(), Listed { value: workflows.clone(), at: Instant::now() });
        Ok(workflows)
    }

    fn cached_workflows(&self, pipeline_id: &str) -> Option<Vec<Workflow>> {
        let cache = lock(&self.inner.cache);
        let listed = cache.workflows.get(pipeline_id)?;
        let settled = !listed.value.is_empty() && listed.value.iter().all(|w| w.status.is_terminal());
        // A workflow still going cannot have been rerun yet: if its jobs show
        // it still going, the list is as good as new.
        let live = listed.value.iter().any(|w| match cache.jobs.get(&w.id) {
            Some(jobs) => !jobs_final(&jobs.value),
            None => false,
        });
        let fresh = listed.at.elapsed() < self.inner.settings.settled_ttl;
        ((settled && fresh) || live).then(|| listed.value.clone())
    }

    /// A workflow's jobs: kept once they have all ended.
    pub(crate) async fn jobs(&self, workflow: &Workflow) -> Result<Vec<Job>> {
        if let Some(listed) = lock(&self.inner.cache).jobs.get(&workflow.id)
            && jobs_final(&listed.value)
        {
            return Ok(listed.value.clone());
        }
        let path = format!("/workflow/{}/job", segment(&workflow.id));
        let jobs: Vec<Job> = self.inner.client.list_all("list workflow jobs", &path).await?;
        lock(&self.inner.cache).jobs.insert(workflow.id.clone(), Listed { value: jobs.clone(), at: Instant::now() });
        Ok(jobs)
    }

    /// Forget a workflow's jobs (after approving or cancelling one).
    pub(crate) fn forget_jobs(&self, workflow_id: &str) {
        lock(&self.inner.cache).jobs.remove(workflow_id);
    }

    /// A user's login, resolved once through `GET /user/{id}`; the id itself
    /// when CircleCI does not know the user.
    pub(crate) async fn login(&self, user_id: &str) -> Result<String> {
        if let Some(login) = lock(&self.inner.cache).logins.get(user_id) {
            return Ok(login.clone());
        }
        let path = format!("/user/{}", segment(user_id));
        let login = match self.inner.client.get::<crate::model::User>("get user", &path, &[]).await {
            Ok(user) => user.login,
            Err(Error::NotFound { .. }) => user_id.to_owned(),
            Err(e) => return Err(e),
        };
        lock(&self.inner.cache).logins.insert(user_id.to_owned(), login.clone());
        Ok(login)
    }

    /// The token's own login (`GET /me`, once).
    pub(crate) async fn me(&self) -> Result<String> {
        if let Some(me) = lock(&self.inner.cache).me.clone() {
            return Ok(me);
        }
        let user: crate::model::User = self.inner.client.get("get current user", "/me", &[]).await?;
        lock(&self.inner.cache).me = Some(user.login.clone());
        Ok(user.login)
    }

    /// `GET /pipeline/{id}`.
    pub(crate) async fn pipeline(&self, pipeline_id: &str) -> Result<Pipeline> {
        self.inner.client.get("get pipeline", &format!("/pipeline/{}", segment(pipeline_id)), &[]).await
    }
}
