//! What a job runs on and how it gets capstan: `--install`, `--image`,
//! `--runs-on`, and which tools the default image and runner have (the
//! pipeline notes those the playbook's `require_tools([...])` lacks).

use crate::cli::args::{CiArgs, Platform};
use crate::error::Error;

/// The capstan the generated pipeline installs: this one.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The crate capstan is published as (`capstan` on crates.io is another project).
pub const CRATE: &str = "capstan-cli";

/// GitLab's and `CircleCI`'s image: it has cargo, for the default install.
pub const DEFAULT_IMAGE: &str = "rust:1";

/// GitHub's runner.
pub const DEFAULT_RUNS_ON: &str = "ubuntu-latest";

/// Programs the default image has (the Debian-based `rust:1` is
/// `buildpack-deps` plus rustup): not terraform, docker, helm nor kubectl.
pub const IMAGE_TOOLS: &[&str] =
    &["sh", "bash", "cargo", "rustc", "git", "curl", "wget", "ssh", "scp", "make", "gcc", "tar", "gzip", "python3"];

/// Programs GitHub's Ubuntu runner lists among its installed software.
/// Terraform is not one of them since `ubuntu-latest` became Ubuntu 24.04.
#[rustfmt::skip]
pub const RUNNER_TOOLS: &[&str] = &[
    "sh", "bash", "cargo", "rustc", "git", "curl", "wget", "ssh", "scp", "make", "gcc", "tar", "gzip", "zip", "unzip",
    "jq", "python3", "node", "npm", "docker", "kubectl", "helm", "kustomize", "aws", "az",
];

/// How each job gets capstan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// `cargo install capstan-cli` at this version, cached between jobs.
    Cargo,
    /// A shell line of the user's (a prebuilt binary's download).
    Command(String),
    /// Nothing: the image already has capstan.
    Nothing,
}

/// Where the jobs keep the run (`--state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChoice {
    /// A store URL with no password in it: written into the file.
    Url(String),
    /// The URL is the CI secret `CAPSTAN_STATE`.
    Secret,
}

/// The secret `--state secret` reads the store's URL from.
pub const STATE_SECRET: &str = "CAPSTAN_STATE";

pub struct Settings {
    pub install: Install,
    /// `--state`: the jobs share the run through a store, not the journal artifact.
    pub state: Option<StateChoice>,
    /// `--image`, when given.
    pub image: Option<String>,
    /// `--runs-on`, when given.
    pub runs_on: Option<String>,
}

impl Settings {
    /// The settings `args` ask for; an option the platform has no use for
    /// is refused rather than silently dropped.
    pub fn from_args(args: &CiArgs) -> Result<Self, Error> {
        let image_platform = matches!(args.platform, Platform::Gitlab | Platform::Circleci);
        if args.image.is_some() && !image_platform {
            return Err(Error::usage_with_hint(
                "--image is for GitLab and CircleCI, whose jobs run in a container image",
                match args.platform {
                    Platform::Github => "on GitHub, choose the runner with --runs-on LABEL",
                    _ => "a Jenkins stage runs on `agent any`: give the agents the tools the playbook needs",
                },
            ));
        }
        if args.runs_on.is_some() && args.platform != Platform::Github {
            return Err(Error::usage_with_hint(
                "--runs-on is for GitHub, whose jobs run on a runner label",
                "on GitLab and CircleCI, choose the container with --image IMAGE",
            ));
        }
        let install = match args.install.as_deref().map(str::trim) {
            None => Install::Cargo,
            Some("") => Install::Nothing,
            Some(line) if line.contains(['\n', '\r']) => {
                return Err(Error::usage_with_hint(
                    "--install takes one shell line",
                    "join the commands with && or put them in a script the job runs",
                ))
            }
            Some(line) => Install::Command(line.to_string()),
        };
        let state = args.state.as_deref().map(state_choice).transpose()?;
        Ok(Self { install, state, image: args.image.clone(), runs_on: args.runs_on.clone() })
    }

    /// The credentials the store needs from the platform's secrets: the
    /// URL itself (`--state secret`), an S3 store's AWS keys.
    pub fn state_secrets(&self) -> Vec<String> {
        match &self.state {
            Some(StateChoice::Secret) => vec![STATE_SECRET.into()],
            Some(StateChoice::Url(url)) if url.starts_with("s3://") => {
                vec!["AWS_ACCESS_KEY_ID".into(), "AWS_SECRET_ACCESS_KEY".into()]
            }
            None | Some(StateChoice::Url(_)) => Vec::new(),
        }
    }

    /// The image as a YAML scalar: `rust:1` reads back as itself unquoted.
    pub fn image(&self) -> String {
        scalar(self.image.as_deref().unwrap_or(DEFAULT_IMAGE))
    }

    pub fn runs_on(&self) -> String {
        scalar(self.runs_on.as_deref().unwrap_or(DEFAULT_RUNS_ON))
    }
}

/// `--state`: `secret`, or a URL of a store every runner can reach that
/// holds no password (the file is committed; a password goes in a secret).
fn state_choice(given: &str) -> Result<StateChoice, Error> {
    use crate::store::url::{masked, parse, StateUrl};
    if given == "secret" {
        return Ok(StateChoice::Secret);
    }
    let hint = "give a postgres:// or s3:// URL, or `--state secret` and the URL in the CI secret CAPSTAN_STATE";
    match parse(given) {
        Err(e) => Err(Error::usage_with_hint(format!("--state {}: {e}", masked(given)), hint)),
        Ok(StateUrl::File(_)) => Err(Error::usage_with_hint(
            "--state file://… is one machine's folder: the jobs of a pipeline run on fresh runners",
            "leave --state out to carry the journal between jobs as an artifact, or give a shared store",
        )),
        Ok(_) if masked(given) != given => Err(Error::usage_with_hint(
            format!("--state {}: the URL holds a password, which the pipeline file would show", masked(given)),
            "store the whole URL in the CI secret CAPSTAN_STATE and pass `--state secret`",
        )),
        Ok(_) => Ok(StateChoice::Url(given.to_string())),
    }
}

/// An image reference or a label: plain when it is one (letters, digits and
/// `._/:@-`, a colon never followed by a space), else quoted.
fn scalar(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._/:@-".contains(c))
        && !s.ends_with(':');
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// The default install line: this version, from crates.io, with the
/// versions of its dependencies that were tested (`--locked`).
pub fn cargo_install() -> String {
    format!("cargo install {CRATE} --version {VERSION} --locked")
}

/// The shell line that installs capstan `$CAPSTAN_VERSION` unless that one
/// is already on PATH (restored from a cache).
pub fn install_unless_present() -> String {
    format!(
        "capstan --version 2>/dev/null | grep -qxF \"capstan $CAPSTAN_VERSION\" || cargo install {CRATE} --version \"$CAPSTAN_VERSION\" --locked"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_install_names_the_published_crate() {
        assert_eq!(cargo_install(), format!("cargo install capstan-cli --version {VERSION} --locked"));
        assert!(install_unless_present().contains("cargo install capstan-cli --version \"$CAPSTAN_VERSION\""));
    }
}
