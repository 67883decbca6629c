//! How the image is built: secrets baked into ENV/ARG, an app compiled in
//! the image that ships it, dependencies installed after the whole source is
//! copied (every source change then reinstalls them).

use super::finding;
use super::parse::{pairs, Instruction};
use super::shell;
use super::stages::Stage;
use crate::compliance::Finding;

const COMPILE: &[&str] = &[
    "go build",
    "cargo build",
    "mvn ",
    "gradle",
    "npm run build",
    "yarn build",
    "dotnet publish",
    "make",
    "gcc ",
    "g++ ",
    "javac ",
];
const DEPENDENCY_INSTALL: &[&str] = &[
    "npm ci",
    "npm install",
    "yarn install",
    "pip install -r",
    "pip3 install -r",
    "poetry install",
    "bundle install",
    "go mod download",
    "composer install",
];
const SECRET_NAMES: &[&str] =
    &["password", "passwd", "secret", "token", "api_key", "apikey", "access_key", "private_key", "credentials"];

fn runs(ins: &Instruction, patterns: &[&str]) -> bool {
    ins.keyword == "RUN" && {
        let script = shell::run_script(ins);
        patterns.iter().any(|p| script.contains(p))
    }
}

pub fn secrets_in_env(instructions: &[Instruction], file: &str, out: &mut Vec<Finding>) {
    for ins in instructions.iter().filter(|i| i.keyword == "ENV" || i.keyword == "ARG") {
        for (key, value) in pairs(&ins.args) {
            let lower = key.to_ascii_lowercase();
            if SECRET_NAMES.iter().any(|s| lower.contains(s)) && !value.is_empty() && !value.starts_with('$') {
                out.push(finding("dockerfile/secret-in-env", file, ins.line, format!("`{} {key}` sets a secret in the image: pass it at run time or use a build secret (--mount=type=secret)", ins.keyword)));
            }
        }
    }
}

pub fn single_stage_build(stages: &[Stage<'_>], file: &str, out: &mut Vec<Finding>) {
    let [stage] = stages else { return };
    if let Some(ins) = stage.body.iter().find(|i| runs(i, COMPILE)) {
        out.push(finding("dockerfile/single-stage-build", file, ins.line, "the app is compiled in the image that ships it: build in a first stage and copy the result into a small runtime stage".into()));
    }
}

pub fn deps_after_source(stages: &[Stage<'_>], file: &str, out: &mut Vec<Finding>) {
    for stage in stages {
        let copy_all = stage.body.iter().position(|i| {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            (i.keyword == "COPY" || i.keyword == "ADD")
                && words.len() >= 2
                && words[..words.len() - 1].iter().any(|w| *w == "." || *w == "./")
        });
        let install = stage.body.iter().position(|i| runs(i, DEPENDENCY_INSTALL));
        if let (Some(c), Some(r)) = (copy_all, install) {
            if c < r {
                out.push(finding("dockerfile/deps-after-source", file, stage.body[r].line, "dependencies are installed after `COPY . .`: copy the manifests (package.json, requirements.txt, go.mod...) and install first, then copy the source".into()));
            }
        }
    }
}
