//! What `helm::` and `kubectl::` share: the cluster options every call
//! takes (`namespace`, `context`, `kubeconfig`), running the tool, and the
//! result shapes.

use std::sync::Arc;

use rhai::{Dynamic, Map};
use serde::Serialize;

use super::options::Text;
use super::tool::{self, ToolCall};
use super::values::to_map;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::process::Outcome;
use crate::services::Services;

/// An options struct with the cluster options after its own fields.
macro_rules! cluster_options {
    ($(#[$meta:meta])* struct $name:ident { $($field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        pub(super) struct $name {
            namespace: Option<$crate::api::options::Text>,
            context: Option<$crate::api::options::Text>,
            kubeconfig: Option<$crate::api::options::Text>,
            $($field: $ty,)*
        }

        impl $name {
            fn cluster(&self) -> $crate::api::cluster::Cluster<'_> {
                $crate::api::cluster::Cluster {
                    namespace: self.namespace.as_ref(),
                    context: self.context.as_ref(),
                    kubeconfig: self.kubeconfig.as_ref(),
                }
            }
        }
    };
}
pub(super) use cluster_options;

/// The cluster a call talks to.
pub struct Cluster<'a> {
    pub namespace: Option<&'a Text>,
    pub context: Option<&'a Text>,
    pub kubeconfig: Option<&'a Text>,
}

impl Cluster<'_> {
    /// The flags, with the tool's own name for the context flag.
    pub fn args(&self, context_flag: &str) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, value) in
            [(context_flag, self.context), ("--kubeconfig", self.kubeconfig), ("--namespace", self.namespace)]
        {
            if let Some(v) = value {
                args.extend([flag.to_string(), v.0.clone()]);
            }
        }
        args
    }
}

/// A CLI that talks to a cluster, and its name for the context flag.
pub struct ClusterTool {
    program: &'static str,
    context_flag: &'static str,
}

pub const KUBECTL: ClusterTool = ClusterTool { program: "kubectl", context_flag: "--context" };
pub const HELM: ClusterTool = ClusterTool { program: "helm", context_flag: "--kube-context" };

impl ClusterTool {
    /// Run it with `args` and then the cluster's flags, as [`exec`] does.
    pub fn exec(
        &self,
        services: &Arc<Services>,
        mut args: Vec<String>,
        cluster: &Cluster<'_>,
        read_only: bool,
        quiet: bool,
    ) -> RhaiResultOf<Option<Outcome>> {
        args.extend(cluster.args(self.context_flag));
        exec(services, self.program, args, read_only, quiet)
    }
}

/// Run the tool; `None` in dry-run; a non-zero exit is an error with its words.
pub fn exec(
    services: &Arc<Services>,
    program: &str,
    args: Vec<String>,
    read_only: bool,
    quiet: bool,
) -> RhaiResultOf<Option<Outcome>> {
    let mut call = ToolCall::new(program, args);
    call.read_only = read_only;
    call.quiet = quiet;
    tool::checked(services, &call, None)
}

/// The JSON the tool printed, as script values; `()` under --dry-run.
pub fn json_result(out: Option<Outcome>) -> RhaiResultOf<Dynamic> {
    let Some(out) = out else { return Ok(Dynamic::UNIT) };
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| failure(FailureKind::Command, format!("cannot read the JSON the tool printed: {e}")))?;
    rhai::serde::to_dynamic(v)
}

/// What a changing call returns.
#[derive(Serialize)]
struct Done {
    dry_run: bool,
    stdout: String,
}

pub fn done(out: Option<Outcome>) -> RhaiResultOf<Map> {
    to_map(&Done { dry_run: out.is_none(), stdout: out.map(|o| o.stdout).unwrap_or_default() })
}
