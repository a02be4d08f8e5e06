//! The commands the documentation shows are real. Every `cargo run --release -- …` and
//! `overlap-slam …` command of README.md, docs/, models/ and datasets/ (a line of a shell block,
//! or inline code in prose and tables) is parsed by the command line's own clap definitions (an unknown command or flag, a missing argument or a bad
//! value fails), and the blocks marked ` ```sh run` — those that need only embedded or repository
//! data — are run, in order, in a scratch folder that holds the repository's data folders.

use clap::{CommandFactory, Parser};
use overlap_slam::cli::Cli;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One command the documentation shows.
#[derive(Debug)]
struct DocCommand {
    /// `file:line` of its first line.
    place: String,
    /// The arguments after the program name.
    args: Vec<String>,
    /// It sits in a block marked to be run.
    run: bool,
    /// Written inline in prose or a table, where it may name a command without its required
    /// arguments (`overlap-slam eval`): only its subcommand and flags are checked.
    inline: bool,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file of docs/, models/ and datasets/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for dir in ["docs", "models", "datasets"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// The program's arguments in a shell line that calls it, or `None` for any other line.
fn program_args(line: &str) -> Option<&str> {
    let line = line.trim_start();
    line.strip_prefix("cargo run --release -- ")
        .or_else(|| line.strip_prefix("overlap-slam "))
}

/// Shell words of `line` (quotes group, `#` after a space starts a comment, a trailing `&`
/// backgrounds); an error for what a literal command in the docs must not hold.
fn words(line: &str) -> Result<Vec<String>, String> {
    if let Some(c) = line.chars().find(|c| "$`|;<>*".contains(*c)) {
        return Err(format!(
            "`{c}`: documented commands are literal (no variables, pipes or globs)"
        ));
    }
    let (mut out, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, in_word) = (Some(c), true),
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unclosed quote".into());
    }
    if in_word {
        out.push(word);
    }
    if out.last().is_some_and(|w| w == "&") {
        out.pop();
    }
    if out.iter().any(|w| w.starts_with('[') || w == "..." || w.contains('&')) {
        return Err("placeholder syntax ([optional], ..., &&): write a concrete command".into());
    }
    Ok(out)
}

/// Where a line of Markdown lies.
#[derive(Clone, Copy, PartialEq)]
enum Block {
    Prose,
    /// A shell block; `run`: marked to be run.
    Shell {
        run: bool,
    },
    /// Any other fenced block (text, toml, json...).
    Other,
}

/// The block a fence's info string (`sh run`, `text`...) opens.
fn opened(info: &str) -> Block {
    let mut words = info.split_whitespace();
    match words.next() {
        Some("sh" | "bash" | "shell" | "console") => Block::Shell {
            run: words.any(|w| w == "run"),
        },
        _ => Block::Other,
    }
}

/// The arguments of every command written inline in prose or a table (`` `overlap-slam …` ``).
fn inline_commands(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2).filter_map(program_args)
}

/// Every command in `file`: in its shell blocks, and inline in its prose and tables.
fn commands_in(file: &Path) -> Vec<Result<DocCommand, String>> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    let (mut out, mut block, mut pending) = (Vec::new(), Block::Prose, None::<(usize, String)>);
    for (i, line) in text.lines().enumerate() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            block = if block == Block::Prose {
                opened(info)
            } else {
                Block::Prose
            };
            pending = None;
            continue;
        }
        if block == Block::Prose {
            out.extend(inline_commands(line).map(|rest| {
                let place = format!("{name}:{}", i + 1);
                words(rest)
                    .map(|args| DocCommand {
                        place: place.clone(),
                        args,
                        run: false,
                        inline: true,
                    })
                    .map_err(|e| format!("{place}: {e}"))
            }));
            continue;
        }
        let Block::Shell { run } = block else { continue };
        let (start, joined) = match pending.take() {
            Some((start, so_far)) => (start, format!("{so_far} {}", line.trim())),
            None => (i, line.trim().to_string()),
        };
        if let Some(head) = joined.strip_suffix('\\') {
            pending = Some((start, head.trim_end().to_string()));
            continue;
        }
        let Some(rest) = program_args(&joined) else { continue };
        let place = format!("{name}:{}", start + 1);
        out.push(match words(rest) {
            Ok(args) => Ok(DocCommand {
                place,
                args,
                run,
                inline: false,
            }),
            Err(e) => Err(format!("{place}: {e}")),
        });
    }
    out
}

/// A command in a shell block must parse whole; one inline must name a real subcommand and only
/// flags it has.
fn check(cmd: &DocCommand) -> Result<(), String> {
    if !cmd.inline {
        let argv = std::iter::once("overlap-slam").chain(cmd.args.iter().map(String::as_str));
        return Cli::try_parse_from(argv).map(drop).map_err(|e| {
            let text = e.to_string();
            text.lines().next().unwrap_or_default().to_string()
        });
    }
    let name = cmd.args.first().ok_or("no subcommand")?;
    let cli = Cli::command();
    let sub = cli.find_subcommand(name).ok_or(format!("no subcommand `{name}`"))?;
    for flag in cmd.args.iter().filter_map(|a| a.strip_prefix("--")) {
        let flag = flag.split('=').next().unwrap_or_default();
        if !sub.get_arguments().any(|a| a.get_long() == Some(flag)) && flag != "help" {
            return Err(format!("`{name}` has no flag --{flag}"));
        }
    }
    Ok(())
}

#[test]
fn every_documented_command_parses() {
    let (mut checked, mut errors) = (0, Vec::new());
    for file in documents() {
        for found in commands_in(&file) {
            match found {
                Err(e) => errors.push(e),
                Ok(cmd) => {
                    checked += 1;
                    if let Err(e) = check(&cmd) {
                        errors.push(format!("{}: `{}`: {e}", cmd.place, cmd.args.join(" ")));
                    }
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "documented commands that do not parse:\n{}",
        errors.join("\n")
    );
    assert!(
        checked >= 40,
        "only {checked} documented commands found: is the parser still reading the docs?"
    );
}

#[test]
fn the_readme_gives_the_two_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for command in ["cargo run --release -- replay", "cargo test --release"] {
        assert!(
            readme.lines().any(|l| l.trim_start().starts_with(command)),
            "README.md lacks `{command}`"
        );
    }
    let lines = readme.lines().count();
    assert!(lines <= 320, "README.md has {lines} lines: depth belongs in docs/");
}

#[test]
fn commands_marked_run_succeed_on_repository_data() {
    for file in documents() {
        let runnable: Vec<DocCommand> = commands_in(&file)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|c| c.run)
            .collect();
        if runnable.is_empty() {
            continue;
        }
        let scratch = tempfile::tempdir().unwrap();
        for data in ["datasets", "models", "calib"] {
            std::os::unix::fs::symlink(root().join(data), scratch.path().join(data)).unwrap();
        }
        for cmd in runnable {
            let out = Command::new(env!("CARGO_BIN_EXE_overlap-slam"))
                .args(&cmd.args)
                .current_dir(scratch.path())
                .output()
                .expect("the binary starts");
            assert!(
                out.status.success(),
                "{}: `overlap-slam {}` failed ({}):\n{}",
                cmd.place,
                cmd.args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn the_doc_parser_reads_blocks_continuations_and_refuses_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("x.md");
    std::fs::write(
        &doc,
        "Try `overlap-slam replay --frames 0..3`, not `replay --x`.\n```text\noverlap-slam not-a-command\n```\n```sh run\n# a comment\ncargo run --release -- replay datasets/kitti-00-sample \\\n  --frames 0..3 --out 'a b' # why\noverlap-slam sim-ros2 /points &\n```\n```sh\noverlap-slam replay $K\n```\n",
    )
    .unwrap();
    let mut found = commands_in(&doc);
    assert_eq!(found.len(), 4, "{found:?}");
    let inline = found.remove(0).unwrap();
    assert_eq!(inline.args, ["replay", "--frames", "0..3"]);
    assert!(inline.inline && !inline.run);
    assert!(check(&inline).is_ok());
    let named = DocCommand {
        place: String::new(),
        args: vec!["eval".into()],
        run: false,
        inline: true,
    };
    assert!(check(&named).is_ok(), "a command named inline needs no arguments");
    let wrong = DocCommand {
        args: vec!["eval".into(), "--frames".into()],
        ..named
    };
    assert_eq!(check(&wrong).unwrap_err(), "`eval` has no flag --frames");
    let first = found[0].as_ref().unwrap();
    assert_eq!(
        first.args,
        ["replay", "datasets/kitti-00-sample", "--frames", "0..3", "--out", "a b"]
    );
    assert!(first.run);
    assert_eq!(found[1].as_ref().unwrap().args, ["sim-ros2", "/points"]);
    assert!(found[2].as_ref().unwrap_err().contains("literal"));
    assert!(Cli::try_parse_from(["overlap-slam", "replay", "--no-such-flag"]).is_err());
}
