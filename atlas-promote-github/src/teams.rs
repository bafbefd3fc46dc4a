//! [`Directory`]: roles from team membership (reference §3.B3), with a
//! time-limited cache, and the static team → role mapping of the config.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atlas_promote_core::{Directory, Result, Role};

use crate::GitHub;
use crate::model::{MembershipState, TeamMembership};

/// Roles per person, remembered for a while.
#[derive(Debug)]
pub(crate) struct TeamCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Vec<Role>)>>,
}

impl TeamCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn get(&self, person: &str) -> Option<Vec<Role>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(person).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, roles)| roles.clone())
    }

    fn put(&self, person: String, roles: Vec<Role>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.ttl;
        entries.retain(|_, (at, _)| at.elapsed() < ttl);
        entries.insert(person, (Instant::now(), roles));
    }
}

impl GitHub {
    /// Whether `user` is an active member of team `team_slug` of the
    /// configured organization (child teams count). An invitation
    /// (`state: pending`) is not membership, and 404 means "not a member"
    /// (also what a token that cannot see the team gets: check the team
    /// slugs once with a token that can).
    pub async fn is_team_member(&self, team_slug: &str, user: &str) -> Result<bool> {
        let url = self.client().url(&["orgs", &self.config().org, "teams", team_slug, "memberships", user]);
        match self.client().get_json::<TeamMembership>("get team membership", url).await {
            Ok(membership) => Ok(membership.state == MembershipState::Active),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e.into_core("get team membership", || format!("team {team_slug}"))),
        }
    }
}

#[async_trait]
impl Directory for GitHub {
    /// The roles mapped from the teams `person` belongs to: one request per
    /// mapped team, then none until the cache entry expires.
    async fn roles(&self, person: &str) -> Result<Vec<Role>> {
        let mapping = &self.config().team_roles;
        if mapping.is_empty() || person.is_empty() {
            return Ok(Vec::new());
        }
        // Logins are case-insensitive on GitHub.
        let key = person.to_ascii_lowercase();
        if let Some(roles) = self.inner.teams.get(&key) {
            return Ok(roles);
        }
        let mut roles: Vec<Role> = Vec::new();
        let mut checked: HashMap<&str, bool> = HashMap::new();
        for (team, role) in mapping {
            if roles.contains(role) {
                continue;
            }
            let member = match checked.get(team.as_str()) {
                Some(member) => *member,
                None => {
                    let member = self.is_team_member(team, person).await?;
                    checked.insert(team, member);
                    member
                }
            };
            if member {
                roles.push(role.clone());
            }
        }
        roles.sort();
        self.inner.teams.put(key, roles.clone());
        Ok(roles)
    }
}
