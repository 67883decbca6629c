//! The Terraform layout `terraform::scaffold` writes and `capstan new
//! --template terraform` starts from: a module folder per component and an
//! environment folder per environment, each with its own remote state.

use std::fmt::Write as _;

/// The files of the layout: modules/NAME/{main,variables,outputs}.tf
/// and environments/ENV/{main.tf,backend.tf,terraform.tfvars}.
pub fn files(provider: &str, envs: &[String], modules: &[String]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for m in modules {
        files.push((format!("modules/{m}/main.tf"), format!("# {m}: resources of this component.\n")));
        files.push((
            format!("modules/{m}/variables.tf"),
            "variable \"environment\" {\n  type = string\n}\n".to_string(),
        ));
        files.push((format!("modules/{m}/outputs.tf"), format!("# Outputs of {m}.\n")));
    }
    for env in envs {
        let mut main = String::new();
        if provider != "none" {
            let _ = writeln!(main, "provider \"{provider}\" {{}}\n");
        }
        for m in modules {
            let _ = writeln!(
                main,
                "module \"{m}\" {{\n  source      = \"../../modules/{m}\"\n  environment = var.environment\n}}\n"
            );
        }
        let _ = writeln!(main, "variable \"environment\" {{\n  type = string\n}}");
        files.push((format!("environments/{env}/main.tf"), main));
        let backend = match provider {
            "aws" => format!(
                "terraform {{\n  backend \"s3\" {{\n    bucket         = \"CHANGE-ME-terraform-state\"\n    key            = \"{env}/infrastructure.tfstate\"\n    region         = \"us-east-1\"\n    dynamodb_table = \"terraform-locks\"\n    encrypt        = true\n  }}\n}}\n"
            ),
            "google" => format!("terraform {{\n  backend \"gcs\" {{\n    bucket = \"CHANGE-ME-terraform-state\"\n    prefix = \"{env}\"\n  }}\n}}\n"),
            "azurerm" => format!(
                "terraform {{\n  backend \"azurerm\" {{\n    resource_group_name  = \"CHANGE-ME\"\n    storage_account_name = \"CHANGE-ME\"\n    container_name       = \"tfstate\"\n    key                  = \"{env}.tfstate\"\n  }}\n}}\n"
            ),
            _ => format!("terraform {{\n  backend \"local\" {{\n    path = \"../../state/{env}.tfstate\"\n  }}\n}}\n"),
        };
        files.push((format!("environments/{env}/backend.tf"), backend));
        files.push((format!("environments/{env}/terraform.tfvars"), format!("environment = \"{env}\"\n")));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaffold_has_a_backend_per_environment() {
        let files = files("aws", &["staging".into(), "production".into()], &["vpc".into()]);
        let backend = files.iter().find(|(p, _)| p == "environments/production/backend.tf").unwrap();
        assert!(backend.1.contains("key            = \"production/infrastructure.tfstate\""));
        assert!(files.iter().any(|(p, _)| p == "modules/vpc/outputs.tf"));
    }
}
