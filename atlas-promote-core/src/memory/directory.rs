use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::lock;
use crate::backend::Directory;
use crate::error::Result;
use crate::policy::{Person, Policy, Role};

/// A directory from a fixed table of person → roles, such as a policy's
/// `[directory]`, that tests can change with [`grant`](Self::grant) and
/// [`revoke`](Self::revoke).
///
/// ```
/// use atlas_promote_core::Policy;
/// use atlas_promote_core::memory::StaticDirectory;
///
/// let directory = StaticDirectory::from_policy(&Policy::atlas());
/// directory.grant("erin", "product-owner");
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory {
    roles: Arc<Mutex<BTreeMap<Person, Vec<Role>>>>,
}

impl StaticDirectory {
    /// A directory holding exactly `roles`.
    pub fn new(roles: BTreeMap<Person, Vec<Role>>) -> Self {
        Self { roles: Arc::new(Mutex::new(roles)) }
    }

    /// The policy's static directory.
    pub fn from_policy(policy: &Policy) -> Self {
        Self::new(policy.directory.clone())
    }

    /// Give `person` `role` (no change if they hold it).
    pub fn grant(&self, person: &str, role: &str) {
        let mut roles = lock(&self.roles);
        let held = roles.entry(person.to_owned()).or_default();
        if !held.iter().any(|r| r == role) {
            held.push(role.to_owned());
        }
    }

    /// Take `role` from `person` (no change if they do not hold it).
    pub fn revoke(&self, person: &str, role: &str) {
        let mut roles = lock(&self.roles);
        if let Some(held) = roles.get_mut(person) {
            held.retain(|r| r != role);
            if held.is_empty() {
                roles.remove(person);
            }
        }
    }
}

impl From<BTreeMap<Person, Vec<Role>>> for StaticDirectory {
    fn from(roles: BTreeMap<Person, Vec<Role>>) -> Self {
        Self::new(roles)
    }
}

#[async_trait]
impl Directory for StaticDirectory {
    async fn roles(&self, person: &str) -> Result<Vec<Role>> {
        Ok(lock(&self.roles).get(person).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_and_revocations_apply_at_once() {
        let directory = StaticDirectory::new(BTreeMap::from([("dan".into(), vec!["developer".into()])]));
        let engine_side = directory.clone();
        directory.grant("dan", "dev-team");
        directory.grant("dan", "dev-team");
        assert_eq!(engine_side.roles("dan").await.unwrap(), ["developer", "dev-team"]);
        directory.revoke("dan", "developer");
        directory.revoke("nobody", "developer");
        assert_eq!(engine_side.roles("dan").await.unwrap(), ["dev-team"]);
        assert!(engine_side.roles("nobody").await.unwrap().is_empty());
    }
}
