//! README.md's command synopsis and reference are generated from the four command lines' own
//! definitions (the clap commands their `--help` prints), and this test holds the README to them:
//! a flag added, renamed or reworded fails it until `UPDATE_README=1` rewrites the blocks.

use clap::CommandFactory;

/// Where the reference is wrapped.
const WIDTH: usize = 100;

/// Each generated block of README.md: its marker's name and its text.
fn blocks() -> Vec<(&'static str, String)> {
    vec![
        ("provisioner synopsis", synopsis(&provisioner::cli::Cli::command())),
        ("app", reference(&app::config::Cli::command())),
        ("provisioner", reference(&provisioner::cli::Cli::command())),
        ("loadtest", reference(&loadtest::cli::Cli::command())),
        ("monitor", reference(&monitor::cli::Cli::command())),
    ]
}

/// The arguments a reader gives (not --help/--version, not hidden ones).
fn arguments(cmd: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    cmd.get_arguments().filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
}

/// How an argument is written: `--since <SINCE>`, `-f, --follow`, `<FILES>…`, `[-- <COMMAND>…]`.
fn form(a: &clap::Arg) -> String {
    let value = a
        .get_value_names()
        .and_then(|v| v.first())
        .map_or_else(|| a.get_id().as_str().to_uppercase(), ToString::to_string);
    let many =
        a.get_num_args().is_some_and(|n| n.max_values() > 1) || matches!(a.get_action(), clap::ArgAction::Append);
    let dots = if many { "…" } else { "" };
    if a.is_positional() {
        return if a.is_last_set() { format!("-- <{value}>{dots}") } else { format!("<{value}>{dots}") };
    }
    let short = a.get_short().map(|s| format!("-{s}, ")).unwrap_or_default();
    let long = a.get_long().map(|l| format!("--{l}")).unwrap_or_default();
    if a.get_action().takes_values() { format!("{short}{long} <{value}>{dots}") } else { format!("{short}{long}") }
}

/// The command's usage on one (wrapped) line: `provisioner logs [-f, --follow] [--since <SINCE>]`.
fn usage(path: &str, cmd: &clap::Command) -> String {
    let mut words = vec![path.to_owned()];
    for a in arguments(cmd) {
        let f = form(a);
        words.push(if a.is_required_set() { f } else { format!("[{f}]") });
    }
    if cmd.has_subcommands() {
        words.push(if cmd.is_subcommand_required_set() { "<COMMAND>".into() } else { "[COMMAND]".into() });
    }
    wrap_units(words.iter().map(String::as_str), "", "    ")
}

/// `text` wrapped at WIDTH: the first line after `first`, the others after `rest`.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    wrap_units(text.split_whitespace(), first, rest)
}

/// `units` (words, or a usage's arguments, never cut) joined by spaces and wrapped at WIDTH.
fn wrap_units<'a>(units: impl Iterator<Item = &'a str>, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in units {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// The first paragraph of a command's or argument's help, on one line.
fn first_paragraph(help: Option<&clap::builder::StyledStr>) -> String {
    let text = help.map(ToString::to_string).unwrap_or_default();
    text.split("\n\n").next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every command with its full path (`provisioner image build`), depth first.
fn commands(path: String, cmd: &clap::Command) -> Vec<(String, &clap::Command)> {
    let mut all = vec![(path.clone(), cmd)];
    for sub in cmd.get_subcommands() {
        all.extend(commands(format!("{path} {}", sub.get_name()), sub));
    }
    all
}

/// One line per command (its usage) and the first sentence of what it does.
fn synopsis(tool: &clap::Command) -> String {
    let mut out = String::new();
    for (path, cmd) in commands(tool.get_name().to_owned(), tool) {
        if cmd.has_subcommands() && path != tool.get_name() {
            continue;
        }
        out.push_str(&usage(&path, cmd));
        if path != tool.get_name() {
            let about = first_paragraph(cmd.get_about());
            let sentence = about.split(". ").next().unwrap_or_default().trim_end_matches('.');
            out.push_str(&wrap(sentence, "        ", "        "));
        }
    }
    out
}

/// Every command: its usage, what it does, and each argument with its help, default and
/// environment variable.
fn reference(tool: &clap::Command) -> String {
    let mut out = String::new();
    for (path, cmd) in commands(tool.get_name().to_owned(), tool) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&usage(&path, cmd));
        out.push_str(&wrap(&first_paragraph(cmd.get_about()), "  ", "  "));
        for a in arguments(cmd) {
            let mut help = first_paragraph(a.get_help());
            let defaults: Vec<String> =
                a.get_default_values().iter().map(|d| d.to_string_lossy().into_owned()).collect();
            if !defaults.is_empty() && a.get_action().takes_values() {
                help.push_str(&format!(" [default: {}]", defaults.join(", ")));
            }
            if let Some(env) = a.get_env() {
                help.push_str(&format!(" [env: {}]", env.to_string_lossy()));
            }
            out.push_str(&wrap(&format!("{} — {help}", form(a)), "    ", "        "));
        }
    }
    out
}

/// The fenced block after `<!-- cli-reference: NAME (…) -->` in `readme`: (start, end) of its text.
fn block_at(readme: &str, name: &str) -> Option<(usize, usize)> {
    let marker = readme.find(&format!("<!-- cli-reference: {name} ("))?;
    let start = readme[marker..].find("```text\n")? + marker + "```text\n".len();
    let end = readme[start..].find("```\n")? + start;
    Some((start, end))
}

#[test]
fn the_readmes_command_reference_is_what_the_command_lines_define() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let mut readme = std::fs::read_to_string(path).expect("README.md");
    let update = std::env::var_os("UPDATE_README").is_some();
    let mut stale = Vec::new();
    for (name, text) in blocks() {
        let (start, end) = block_at(&readme, name).unwrap_or_else(|| {
            panic!("README.md has no block `<!-- cli-reference: {name} … -->` followed by ```text … ```")
        });
        if readme[start..end] != text {
            stale.push(name);
            readme.replace_range(start..end, &text);
        }
    }
    if update && !stale.is_empty() {
        std::fs::write(path, &readme).expect("rewrite README.md");
    } else {
        assert!(
            stale.is_empty(),
            "README.md's command reference of {stale:?} differs from the command lines: run this test with \
             UPDATE_README=1 and commit README.md"
        );
    }
}

#[test]
fn the_reference_names_every_flag_with_its_help() {
    let provisioner = reference(&provisioner::cli::Cli::command());
    for needle in [
        "provisioner plan [--detailed-exitcode] [--image-repository <IMAGE_REPOSITORY>] [--update-ami]",
        "provisioner ci-role --github-repo <GITHUB_REPO>",
        "provisioner image build [--program <PROGRAM>] [--source <SOURCE>] [--output <OUTPUT>]",
        "    --output <OUTPUT> — Where to write the OCI image layout",
        "provisioner loadtest",
    ] {
        assert!(provisioner.contains(needle), "{needle}\n{provisioner}");
    }
    let loadtest = reference(&loadtest::cli::Cli::command());
    for flag in ["--quiet", "--threads <THREADS>", "--timeout <TIMEOUT>"] {
        assert!(loadtest.contains(&format!("    {flag} — ")), "{flag}\n{loadtest}");
    }
    // Every argument of every tool says what it does.
    for (name, text) in blocks() {
        let bare: Vec<&str> = text.lines().filter(|l| l.ends_with(" —") || l.contains(" — [")).collect();
        assert!(bare.is_empty(), "{name}: arguments without help (a /// line in its cli.rs): {bare:?}");
    }
    let monitor = reference(&monitor::cli::Cli::command());
    assert!(monitor.contains("[-H, --url <URL>]") && monitor.contains("[env: API_URL]"), "{monitor}");
}
