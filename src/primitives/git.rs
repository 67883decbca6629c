//! `git::`: what a release playbook asks of the repository. Read-only: they
//! run under `--dry-run` too, quietly.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map, Module};

use super::registration::module_func;
use crate::failure::{failure_with_hint, terminated, FailureKind, RhaiResultOf};
use crate::process::{self, CommandSpec, ProcessError};
use crate::state::RunState;

fn git(state: &RunState, args: &[&str], options: &Map) -> RhaiResultOf<String> {
    let mut spec = CommandSpec::new("git", args.iter().map(|s| (*s).to_string()).collect());
    spec.quiet = true;
    for (k, v) in options {
        match k.as_str() {
            "dir" => spec.cwd = Some(v.to_string().into()),
            other => {
                return Err(failure_with_hint(
                    FailureKind::Usage,
                    format!("unknown git option `{other}`"),
                    "the option is: dir",
                ))
            }
        }
    }
    let outcome = match process::execute(state.services.as_ref(), &spec) {
        Ok(o) => o,
        Err(ProcessError::Interrupted(reason)) => return Err(terminated(reason)),
        Err(e) => {
            return Err(failure_with_hint(
                FailureKind::Command,
                e.to_string(),
                "install git, or run capstan inside a repository",
            ))
        }
    };
    if !outcome.success() {
        return Err(failure_with_hint(
            FailureKind::Command,
            format!("`{}` failed: {}", spec.display(), outcome.stderr.trim()),
            "run it inside a git repository (or pass `#{ dir: ... }`)",
        ));
    }
    Ok(outcome.stdout.trim_end().to_string())
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    for (with_options, params) in [(false, vec!["String"]), (true, vec!["options: Map", "String"])] {
        let s = state.clone();
        let doc = "The commit checked out (`git rev-parse HEAD`). Option: `dir`.\n```rhai\nlet sha = git::sha();\n```";
        if with_options {
            module_func(&mut m, "sha", &params, doc, move |o: Map| git(&s, &["rev-parse", "HEAD"], &o));
        } else {
            module_func(&mut m, "sha", &params, doc, move || git(&s, &["rev-parse", "HEAD"], &Map::new()));
        }
        let s = state.clone();
        let doc = "The branch checked out (`HEAD` when detached). Option: `dir`.\n```rhai\nif git::branch() != \"main\" { fail(\"deploy from main\"); }\n```";
        if with_options {
            module_func(&mut m, "branch", &params, doc, move |o: Map| {
                git(&s, &["rev-parse", "--abbrev-ref", "HEAD"], &o)
            });
        } else {
            module_func(&mut m, "branch", &params, doc, move || {
                git(&s, &["rev-parse", "--abbrev-ref", "HEAD"], &Map::new())
            });
        }
    }
    let s = state.clone();
    module_func(
        &mut m,
        "dirty",
        &["bool"],
        "True when the work tree has uncommitted changes.\n```rhai\ngate(\"clean work tree\", !git::dirty());\n```",
        move || git(&s, &["status", "--porcelain"], &Map::new()).map(|o| !o.is_empty()),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "changed_files",
        &["base: &str", "Array"],
        "Files changed between `base` and HEAD (`git diff --name-only base...HEAD`).\n\
         ```rhai\nlet infra = git::changed_files(\"origin/main\").filter(|f| f.starts_with(\"infra/\"));\n```",
        move |base: &str| -> RhaiResultOf<Array> {
            let range = format!("{base}...HEAD");
            let out = git(&s, &["diff", "--name-only", &range], &Map::new())?;
            Ok(out.lines().filter(|l| !l.is_empty()).map(|l| Dynamic::from(l.to_string())).collect())
        },
    );
    engine.register_static_module("git", m.into());
}
