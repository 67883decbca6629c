//! The Dockerfile `capstan init` writes when a repository has none: a
//! builder stage that copies the manifests and lock files and installs the
//! dependencies before it copies the sources (so a source change reuses the
//! dependency layer), then a slim runtime stage from a pinned tag that runs
//! as a numeric non-root user and has a HEALTHCHECK against the service's
//! health path. No `RUN` in the runtime stage, and the health check needs no
//! tool the runtime image lacks.

use std::fmt::Write as _;

use super::detect::{Project, Stack};

/// Files no image needs; keeps the build context small and secrets out of it.
pub const DOCKERIGNORE: &str = "\
# Not sent to `docker build`: VCS data, dependencies and build output the
# builder stage makes again, local environments, capstan's journal.
.git
.gitignore
.dockerignore
Dockerfile
**/node_modules
**/target
.venv
venv
**/__pycache__
*.pyc
.pytest_cache
.ruff_cache
dist
bin
.terraform
*.tfstate
*.tfstate.backup
*.tfplan
.capstan
reports
.env
.env.*
*.pem
*.key
";

/// The first line of every Dockerfile `init` writes says so with these words.
pub const MARK: &str = "written by `capstan init`";

/// The uid and gid the runtime stage and the Kubernetes manifests run as.
pub const UID: u32 = 10001;

/// The HEALTHCHECK's command: the stack's own runtime makes the request
/// where it has an HTTP client; elsewhere bash's /dev/tcp sends it.
/// The port is `$PORT`, as the service's, so a container started with
/// another PORT is still checked where it listens.
fn health_command(stack: &Stack, port: u16, path: &str) -> String {
    match stack {
        Stack::Python { .. } => format!(
            "[\"python3\", \"-c\", \"import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s{path}' % os.environ.get('PORT', '{port}'), timeout=2)\"]"
        ),
        Stack::Node { .. } => format!(
            "[\"node\", \"-e\", \"require('http').get('http://127.0.0.1:' + (process.env.PORT || {port}) + '{path}', (r) => process.exit(r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1))\"]"
        ),
        _ => format!(
            "[\"bash\", \"-c\", \"exec 3<>/dev/tcp/127.0.0.1/${{PORT:-{port}}} && printf 'GET {path} HTTP/1.0\\\\r\\\\n\\\\r\\\\n' >&3 && head -n 1 <&3 | grep -q ' [23][0-9][0-9] '\"]"
        ),
    }
}

/// The base images: (builder, runtime), each with a version in its tag.
fn bases(stack: &Stack) -> (String, String) {
    match stack {
        Stack::Rust { .. } => ("rust:1.83-slim-bookworm".into(), "debian:12.8-slim".into()),
        Stack::Node { version, .. } => {
            let image = format!("node:{version}-bookworm-slim");
            (image.clone(), image)
        }
        Stack::Python { version, .. } => {
            let image = format!("python:{version}-slim-bookworm");
            (image.clone(), image)
        }
        Stack::Go { version, .. } => (format!("golang:{version}-bookworm"), "debian:12.8-slim".into()),
        Stack::Java { tool, .. } if tool == "maven" => {
            ("maven:3.9-eclipse-temurin-21".into(), "eclipse-temurin:21-jre-jammy".into())
        }
        Stack::Java { .. } => ("gradle:8.10-jdk21".into(), "eclipse-temurin:21-jre-jammy".into()),
    }
}

fn builder(out: &mut String, stack: &Stack, image: &str) {
    let _ = writeln!(out, "FROM {image} AS builder\nWORKDIR /src");
    out.push_str("# Dependencies first: this layer is rebuilt only when the manifests change.\n");
    match stack {
        Stack::Rust { package, locked } => {
            let lock = if *locked { " Cargo.lock" } else { "" };
            let flag = if *locked { " --locked" } else { "" };
            let _ = writeln!(
                out,
                "COPY Cargo.toml{lock} ./
RUN mkdir src && echo 'fn main() {{}}' > src/main.rs && cargo build --release{flag} && rm -rf src
COPY . .
RUN touch src/main.rs && cargo build --release{flag} && cp target/release/{package} /service"
            );
        }
        Stack::Node { manager, lock, scripts, .. } => {
            let lock = lock.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
            let (install, prune) = match manager.as_str() {
                "pnpm" => ("corepack enable && pnpm install --frozen-lockfile", "pnpm prune --prod"),
                "yarn" => {
                    ("corepack enable && yarn install --frozen-lockfile", "yarn install --production --frozen-lockfile")
                }
                _ if lock.is_empty() => ("npm install", "npm prune --omit=dev"),
                _ => ("npm ci", "npm prune --omit=dev"),
            };
            let _ = writeln!(out, "COPY package.json{lock} ./\nRUN {install}\nCOPY . .");
            if scripts.iter().any(|s| s == "build") {
                let _ = writeln!(out, "RUN {manager} run build && {prune}");
            } else {
                let _ = writeln!(out, "RUN {prune}");
            }
        }
        Stack::Python { requirements, pyproject, .. } => {
            out.push_str("ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1\nRUN python3 -m venv /opt/venv\n");
            if requirements.iter().any(|r| r == "requirements.txt") {
                out.push_str(
                    "COPY requirements.txt ./\nRUN /opt/venv/bin/pip install --no-cache-dir -r requirements.txt\n",
                );
            }
            if *pyproject {
                // pyproject.toml's [project] dependencies, read with tomllib,
                // so the layer depends on the manifest and not on the sources.
                out.push_str(
                    "COPY pyproject.toml ./
RUN /opt/venv/bin/python -c \"import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb')).get('project', {}).get('dependencies', [])))\" > /tmp/deps.txt \\
    && if [ -s /tmp/deps.txt ]; then /opt/venv/bin/pip install --no-cache-dir -r /tmp/deps.txt; fi
",
                );
            }
            out.push_str("COPY . .\nRUN /opt/venv/bin/python -m compileall -q .\n");
        }
        Stack::Go { sum, .. } => {
            let sum = if *sum { " go.sum" } else { "" };
            let _ = writeln!(
                out,
                "COPY go.mod{sum} ./\nRUN go mod download\nCOPY . .\nRUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /service ."
            );
        }
        Stack::Java { tool, wrapper } => {
            if tool == "maven" {
                let mvn = if *wrapper { "./mvnw" } else { "mvn" };
                let extra = if *wrapper { " mvnw\nCOPY .mvn .mvn" } else { "" };
                let _ = writeln!(
                    out,
                    "COPY pom.xml{extra} ./\nRUN {mvn} -B -q dependency:go-offline\nCOPY . .\nRUN {mvn} -B -DskipTests package && cp target/*.jar /service.jar"
                );
            } else {
                let _ = writeln!(
                    out,
                    "COPY build.gradle* settings.gradle* ./\nRUN gradle --no-daemon -q dependencies\nCOPY . .\n\
                     RUN gradle --no-daemon assemble && find build/libs -name '*.jar' ! -name '*-plain.jar' -exec cp {{}} /service.jar \\;"
                );
            }
        }
    }
    out.push('\n');
}

/// The Dockerfile's text for a detected stack.
pub fn render(p: &Project, stack: &Stack) -> String {
    let (build_image, run_image) = bases(stack);
    let path = p.health_path.as_deref().unwrap_or("/");
    let port = p.port;
    let mut out = format!(
        "# The image of {name}, {MARK}: a builder stage, then a slim\n\
         # runtime stage that runs as uid {UID}. `capstan check --compliance Dockerfile` reviews it.\n",
        name = p.name
    );
    builder(&mut out, stack, &build_image);
    let _ = writeln!(out, "FROM {run_image}\nARG VERSION=dev\nLABEL org.opencontainers.image.title=\"{}\" \\\n      org.opencontainers.image.version=\"${{VERSION}}\"\nWORKDIR /app", p.name);
    let command = match stack {
        Stack::Rust { .. } | Stack::Go { .. } => {
            out.push_str("COPY --from=builder /service /usr/local/bin/service\n");
            "[\"/usr/local/bin/service\"]".to_string()
        }
        Stack::Node { main, .. } => {
            let _ = writeln!(out, "ENV NODE_ENV=production\nCOPY --from=builder /src /app");
            format!("[\"node\", \"{main}\"]")
        }
        Stack::Python { entry, .. } => {
            out.push_str(
                "ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app/src:/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\n\
                 COPY --from=builder /opt/venv /opt/venv\nCOPY --from=builder /src /app\n",
            );
            serde_json::to_string(entry).unwrap_or_default().replace("\",\"", "\", \"")
        }
        Stack::Java { .. } => {
            out.push_str("COPY --from=builder /service.jar /app/service.jar\n");
            "[\"java\", \"-XX:MaxRAMPercentage=75\", \"-jar\", \"/app/service.jar\"]".to_string()
        }
    };
    let start = if matches!(stack, Stack::Java { .. }) { "60s" } else { "10s" };
    let _ = writeln!(
        out,
        "ENV PORT={port}\nUSER {UID}:{UID}\nEXPOSE {port}\nHEALTHCHECK --interval=10s --timeout=3s --start-period={start} --retries=3 \\\n    CMD {}\nCMD {command}",
        health_command(stack, port, path)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::init::detect::{Commands, Deploy};

    fn project(stack: Stack) -> Project {
        Project {
            name: "shop".into(),
            stack: Some(stack.clone()),
            summary: String::new(),
            commands: Commands::default(),
            deploy: Deploy::default(),
            health_path: Some("/healthz".into()),
            ready_path: None,
            port: 8080,
        }
    }

    #[test]
    fn the_lock_file_is_copied_before_the_sources_and_the_runtime_is_not_root() {
        let stack = Stack::Rust { package: "shop".into(), locked: true };
        let text = render(&project(stack.clone()), &stack);
        let lock = text.find("COPY Cargo.toml Cargo.lock ./").expect(&text);
        let sources = text.find("COPY . .").expect(&text);
        assert!(lock < sources, "{text}");
        assert!(text.contains("USER 10001:10001") && text.contains("HEALTHCHECK"), "{text}");
        assert!(text.contains("/dev/tcp/127.0.0.1/${PORT:-8080}") && text.contains("GET /healthz"), "{text}");
        assert_eq!(text.matches("FROM ").count(), 2, "two stages: {text}");
    }
}
