//! The crate's structure: no two modules reach into each other.

use std::collections::{BTreeMap, BTreeSet};

/// The modules `text` names through `crate::module::…` paths, `use crate::{a::…, b::…}` included.
fn modules_named(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let heads: Vec<&str> = match rest.strip_prefix('{') {
            // Top-level items of the group (nested groups belong to their head).
            Some(group) => {
                let (mut depth, mut start, mut items) = (0, 0, Vec::new());
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            items.push(&group[start..i]);
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(&group[start..i]);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                items
            }
            None => vec![rest],
        };
        for head in heads {
            let head = head.trim_start();
            let name = ident(head);
            if head[name.len()..].starts_with("::") && modules.contains(&name) {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn no_two_modules_import_each_other() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: BTreeMap<String, String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .filter(|(name, _)| name != "lib")
        .collect();
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let uses: BTreeMap<&str, BTreeSet<String>> = files
        .iter()
        .map(|(name, text)| (name.as_str(), modules_named(text, &modules).into_iter().filter(|m| m != name).collect()))
        .collect();
    // Every circle, found by walking each module's imports depth first.
    let mut circles = BTreeSet::new();
    for start in uses.keys() {
        let mut stack = vec![(start.to_string(), vec![start.to_string()])];
        while let Some((at, path)) = stack.pop() {
            for next in &uses[at.as_str()] {
                if next == start {
                    let mut circle = path.clone();
                    let first = circle.iter().enumerate().min_by_key(|(_, m)| (*m).clone()).map(|(i, _)| i).unwrap();
                    circle.rotate_left(first);
                    circles.insert(circle.join(" → "));
                } else if !path.contains(next) {
                    stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
                }
            }
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}\nimports: {uses:#?}");
}
