//! How many approval slots a set of people can fill: a bipartite matching.
//!
//! Each role has `count` slots; a person fills at most one slot, of a role
//! they hold. With overlapping roles a greedy pass undercounts (DESIGN §4 G5),
//! so this finds a maximum assignment by augmenting paths.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The most slots of `require` (role → count) that distinct people can fill
/// at once; `people` gives the roles each person holds.
pub(super) fn max_filled<'a>(
    require: &BTreeMap<String, u32>,
    people: impl IntoIterator<Item = &'a BTreeSet<&'a str>>,
) -> u64 {
    let roles: Vec<(&str, usize)> =
        require.iter().map(|(role, n)| (role.as_str(), usize::try_from(*n).unwrap_or(usize::MAX))).collect();
    // holds[p] = the indexes of the rule's roles person p holds.
    let holds: Vec<Vec<usize>> = people
        .into_iter()
        .map(|held| roles.iter().enumerate().filter(|(_, (role, _))| held.contains(role)).map(|(r, _)| r).collect())
        .filter(|held: &Vec<usize>| !held.is_empty())
        .collect();
    // members[r] = the people currently filling a slot of role r.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); roles.len()];
    let mut filled = 0u64;
    for person in 0..holds.len() {
        if augment(person, &roles, &holds, &mut members) {
            filled += 1;
        }
    }
    filled
}

/// Seat `person`, moving seated people to other roles they hold if that frees
/// a slot (a breadth-first search for an augmenting path, so no recursion).
fn augment(person: usize, roles: &[(&str, usize)], holds: &[Vec<usize>], members: &mut [Vec<usize>]) -> bool {
    // came_from[r] = (the person who would take a slot of r, the role they leave, if any).
    let mut came_from: Vec<Option<(usize, Option<usize>)>> = vec![None; roles.len()];
    let mut queue = VecDeque::new();
    for &r in holds.get(person).into_iter().flatten() {
        if came_from[r].is_none() {
            came_from[r] = Some((person, None));
            queue.push_back(r);
        }
    }
    while let Some(r) = queue.pop_front() {
        if members[r].len() < roles[r].1 {
            // A free slot: walk back, moving each person one role along the path.
            let mut role = r;
            while let Some((mover, left)) = came_from[role] {
                members[role].push(mover);
                match left {
                    Some(previous) => {
                        members[previous].retain(|p| *p != mover);
                        role = previous;
                    }
                    None => return true,
                }
            }
            return true;
        }
        for &seated in &members[r] {
            for &other in holds.get(seated).into_iter().flatten() {
                if came_from[other].is_none() {
                    came_from[other] = Some((seated, Some(r)));
                    queue.push_back(other);
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(require: &[(&str, u32)], people: &[(&str, &[&str])]) -> u64 {
        let require = require.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
        let people: Vec<BTreeSet<&str>> = people.iter().map(|(_, roles)| roles.iter().copied().collect()).collect();
        max_filled(&require, &people)
    }

    #[test]
    fn one_person_never_fills_two_slots() {
        assert_eq!(fill(&[("po", 1), ("dev", 1)], &[("dan", &["po", "dev"])]), 1);
    }

    #[test]
    fn moves_a_person_to_free_a_slot_a_greedy_pass_would_block() {
        // Greedy would seat dan as po, leaving pat (po only) with nothing.
        let people: &[(&str, &[&str])] = &[("dan", &["po", "dev"]), ("pat", &["po"])];
        assert_eq!(fill(&[("po", 1), ("dev", 1)], people), 2);
    }

    #[test]
    fn counts_several_slots_of_one_role() {
        let people: &[(&str, &[&str])] = &[("a", &["dev"]), ("b", &["dev"]), ("c", &["ops"])];
        assert_eq!(fill(&[("dev", 3)], people), 2);
    }

    #[test]
    fn huge_counts_cost_nothing() {
        assert_eq!(fill(&[("dev", u32::MAX)], &[("a", &["dev"])]), 1);
    }
}
