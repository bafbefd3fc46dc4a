//! `atlas-promote completions SHELL` and `atlas-promote man`: what a
//! package puts in the shell's completion folder and in `man1/`.

use std::io::Write;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell as Generator;

use crate::args::Cli;
use crate::exit::{Failure, Status};

/// The shells completions are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    /// Bash (`source <(atlas-promote completions bash)`).
    Bash,
    /// Zsh (save as `_atlas-promote` in a folder of `$fpath`).
    Zsh,
    /// Fish (save in `~/.config/fish/completions/atlas-promote.fish`).
    Fish,
    /// PowerShell (`atlas-promote completions powershell | Out-String | Invoke-Expression`).
    Powershell,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: Shell,
}

/// Write the completion script for `shell`.
pub(crate) fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<Status, Failure> {
    let shell = match args.shell {
        Shell::Bash => Generator::Bash,
        Shell::Zsh => Generator::Zsh,
        Shell::Fish => Generator::Fish,
        Shell::Powershell => Generator::PowerShell,
    };
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "atlas-promote", &mut buffer);
    out.write_all(&buffer).map_err(Failure::output)?;
    Ok(Status::Success)
}

/// Write the man page `atlas-promote(1)` (roff): every subcommand, its
/// options, the exit statuses and the environment.
pub(crate) fn man(out: &mut dyn Write) -> Result<Status, Failure> {
    let command = Cli::command();
    let page = clap_mangen::Man::new(command.clone());
    let mut buffer = Vec::new();
    page.render_title(&mut buffer).map_err(Failure::output)?;
    page.render_name_section(&mut buffer).map_err(Failure::output)?;
    page.render_synopsis_section(&mut buffer).map_err(Failure::output)?;
    page.render_description_section(&mut buffer).map_err(Failure::output)?;
    page.render_options_section(&mut buffer).map_err(Failure::output)?;
    // Each subcommand with its own options and examples, as `--help` shows them.
    writeln!(buffer, ".SH COMMANDS").map_err(Failure::output)?;
    for sub in command.get_subcommands() {
        write_subcommand(&mut buffer, sub, "atlas-promote")?;
    }
    page.render_extra_section(&mut buffer).map_err(Failure::output)?;
    page.render_version_section(&mut buffer).map_err(Failure::output)?;
    out.write_all(&buffer).map_err(Failure::output)?;
    Ok(Status::Success)
}

fn write_subcommand(buffer: &mut Vec<u8>, sub: &clap::Command, parent: &str) -> Result<(), Failure> {
    let name = format!("{parent} {}", sub.get_name());
    let mut sub = sub.clone().bin_name(&name);
    let help = sub.render_long_help().to_string();
    writeln!(buffer, ".SS {}", roff(&name)).map_err(Failure::output)?;
    writeln!(buffer, ".nf").map_err(Failure::output)?;
    for line in help.lines() {
        writeln!(buffer, "{}", roff(line)).map_err(Failure::output)?;
    }
    writeln!(buffer, ".fi").map_err(Failure::output)?;
    for nested in sub.get_subcommands().filter(|s| s.get_name() != "help") {
        write_subcommand(buffer, nested, &name)?;
    }
    Ok(())
}

/// A line of text as roff: backslashes escaped, a leading `.` or `'` kept literal.
fn roff(line: &str) -> String {
    let escaped = line.replace('\\', "\\e");
    if escaped.starts_with('.') || escaped.starts_with('\'') { format!("\\&{escaped}") } else { escaped }
}
