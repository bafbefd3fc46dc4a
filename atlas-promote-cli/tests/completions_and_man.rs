//! Shell completions, the man page, and examples in every subcommand's help.

mod common;

use common::atlas_promote;

const SUBCOMMANDS: [&[&str]; 19] = [
    &["evaluate"],
    &["lint"],
    &["test"],
    &["diff"],
    &["preset"],
    &["serve"],
    &["config", "check"],
    &["status"],
    &["plan"],
    &["approve"],
    &["hold"],
    &["release"],
    &["override"],
    &["rollback"],
    &["retry"],
    &["audit", "verify"],
    &["audit", "log"],
    &["completions"],
    &["man"],
];

#[test]
fn every_subcommand_has_examples_and_points_to_the_exit_table() {
    for command in SUBCOMMANDS {
        let run = atlas_promote(&[command, &["--help"]].concat());
        assert_eq!(run.code, 0, "{command:?}: {}", run.stderr);
        assert!(run.stdout.contains("Example"), "{command:?} has no examples:\n{}", run.stdout);
        assert!(run.stdout.contains("see the table in `atlas-promote --help`"), "{command:?}:\n{}", run.stdout);
        let name = command.join(" ");
        assert!(
            run.stdout.contains(&format!("atlas-promote {name}")),
            "{command:?}'s examples use it:\n{}",
            run.stdout
        );
    }
}

#[test]
fn completions_are_written_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _atlas__promote"),
        ("zsh", "#compdef atlas-promote"),
        ("fish", "complete -c atlas-promote"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let run = atlas_promote(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}:\n{}", &run.stdout[..run.stdout.len().min(400)]);
        assert!(
            run.stdout.contains("approve") && run.stdout.contains("expect-head"),
            "{shell} completes the operator commands"
        );
    }
    assert_eq!(atlas_promote(&["completions", "tcsh"]).code, 2);
}

#[test]
fn the_man_page_has_every_command_the_exit_statuses_and_the_environment() {
    let run = atlas_promote(&["man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with(".ie"), "{}", &run.stdout[..200]);
    assert!(run.stdout.contains(".TH atlas-promote 1"), "{}", &run.stdout[..400]);
    for command in SUBCOMMANDS {
        assert!(run.stdout.contains(&format!(".SS atlas-promote {}\n", command.join(" "))), "{command:?} missing");
    }
    for text in ["Exit status:", "ATLAS_TOKEN", "--expect-head"] {
        assert!(run.stdout.contains(text), "{text} missing from the man page");
    }
}
