//! `capstan man`: one man page (roff) for capstan and every subcommand,
//! rendered from the same definitions as `--help`.

use clap::CommandFactory;

use super::args::Cli;
use crate::error::Error;

/// The exit codes every command shares.
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success.
.TP
\fB1\fR
The run failed (a step or gate failed); any undo or rollback completed.
.TP
\fB2\fR
Usage error, script compile error, missing param or secret: nothing was executed.
.TP
\fB3\fR
Blocked: an approval was not given, or a lock is held by another run.
.TP
\fB4\fR
The run failed and an undo or rollback also failed: a person must act.
.TP
\fB130\fR
Interrupted (SIGINT or SIGTERM) after cleanup.
"#;

/// Put the `.TH` line first (`clap_mangen` starts with a string definition),
/// and name the `after_help` section after what it holds.
fn title_first(page: &str) -> String {
    let mut lines: Vec<&str> = page.lines().collect();
    if let Some(i) = lines.iter().position(|l| l.starts_with(".TH ")) {
        let title = lines.remove(i);
        lines.insert(0, title);
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(if line == ".SH EXTRA" { ".SH EXAMPLES" } else { line });
        out.push('\n');
    }
    out
}

pub fn man() -> Result<(), Error> {
    let text = page().map_err(|e| Error::io("cannot render the man page", None, e))?;
    outln!("{}", text.trim_end());
    Ok(())
}

/// The main page (name, synopsis, description, options, the list of
/// subcommands, examples), then a section per subcommand with its synopsis,
/// description, options and examples.
fn page() -> std::io::Result<String> {
    let mut command = Cli::command();
    // Building gives every subcommand its full name (`capstan run`) for the synopses.
    command.build();
    let mut main = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut main)?;
    let mut out = title_first(&String::from_utf8_lossy(&main)).into_bytes();
    out.extend_from_slice(EXIT_STATUS.as_bytes());
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_bin_name().map_or_else(|| format!("capstan {}", sub.get_name()), ToString::to_string);
        let man = clap_mangen::Man::new(sub.clone());
        let mut section = Vec::new();
        man.render_synopsis_section(&mut section)?;
        man.render_description_section(&mut section)?;
        man.render_options_section(&mut section)?;
        if sub.has_subcommands() {
            man.render_subcommands_section(&mut section)?;
        }
        man.render_extra_section(&mut section)?;
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        // The subcommand's own sections become subsections of its section.
        for line in String::from_utf8_lossy(&section).lines() {
            let line = match line.strip_prefix(".SH ") {
                Some("EXTRA") => ".SS EXAMPLES".to_string(),
                Some(rest) => format!(".SS {rest}"),
                None => line.to_string(),
            };
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
