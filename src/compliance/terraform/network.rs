//! Security group ingress open to the whole internet (`0.0.0.0/0`, `::/0`)
//! on an admin port or on every port: inline `ingress` blocks and
//! `ingress = [...]` lists of `aws_security_group`, and the standalone
//! `aws_security_group_rule` and `aws_vpc_security_group_ingress_rule`.
//! checkov `CKV_AWS_24` (22), `CKV_AWS_25` (3389) and `CKV_AWS_277` (all ports).

use serde_json::{Map, Value};

use super::hcl::{self, File};
use super::rules::finding;
use crate::compliance::finding::Finding;

/// Ports whose exposure to the internet is an incident: remote shells and
/// databases.
const ADMIN_PORTS: &[(i64, &str)] = &[
    (22, "SSH"),
    (3389, "RDP"),
    (3306, "MySQL"),
    (5432, "PostgreSQL"),
    (6379, "Redis"),
    (27017, "MongoDB"),
    (9200, "Elasticsearch"),
];

/// Resources that carry inline ingress rules.
const GROUPS: &[&str] = &["aws_security_group", "aws_default_security_group"];

pub(super) fn check(file: &File, path: &str, out: &mut Vec<Finding>) {
    for (at, block) in file.blocks() {
        let Some((kind, name)) = hcl::resource(block) else { continue };
        // (the rule's attributes, the line to report)
        let mut rules: Vec<(Map<String, Value>, usize)> = Vec::new();
        if GROUPS.contains(&kind) {
            for ingress in block.body.get_blocks("ingress") {
                rules.push((hcl::attributes(&ingress.body), at.line(ingress)));
            }
            if let Some(hcl_edit::expr::Expression::Array(list)) = block.body.get_attribute("ingress").map(|a| &a.value)
            {
                for item in list {
                    if let Value::Object(rule) = hcl::value(item) {
                        rules.push((rule, at.line(item)));
                    }
                }
            }
        } else if kind == "aws_security_group_rule" || kind == "aws_vpc_security_group_ingress_rule" {
            let rule = hcl::attributes(&block.body);
            if kind == "aws_vpc_security_group_ingress_rule" || rule.get("type") == Some(&Value::from("ingress")) {
                rules.push((rule, at.line(block)));
            }
        }
        for (rule, line) in rules {
            if let Some(what) = exposure(&rule) {
                out.push(finding(
                    "terraform/open-admin-port",
                    path,
                    line,
                    format!("{kind}.{name} lets the whole internet reach {what}: allow only your VPN or bastion"),
                ));
            }
        }
    }
}

/// What an ingress rule opens to the whole internet that it should not, if anything.
fn exposure(rule: &Map<String, Value>) -> Option<String> {
    let listed = |key: &str, cidr: &str| match rule.get(key) {
        Some(Value::Array(items)) => items.iter().any(|i| i == cidr),
        Some(Value::String(s)) => s == cidr,
        _ => false,
    };
    let world = listed("cidr_blocks", "0.0.0.0/0")
        || listed("ipv6_cidr_blocks", "::/0")
        || listed("cidr_ipv4", "0.0.0.0/0")
        || listed("cidr_ipv6", "::/0");
    if !world {
        return None;
    }
    let protocol = match rule.get("protocol").or_else(|| rule.get("ip_protocol"))? {
        Value::String(s) => s.to_ascii_lowercase(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    match protocol.as_str() {
        // AWS opens every port for "-1" whatever the port range says.
        "-1" | "all" => return Some("every port and protocol".into()),
        "tcp" | "6" | "udp" | "17" => {}
        // ICMP has no ports; other protocols carry no remote shell.
        _ => return None,
    }
    let port = |key: &str| match rule.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let (from, to) = (port("from_port")?, port("to_port")?);
    // 0-0 and -1 - -1 are how "every port" is commonly written (checkov reads
    // them so); reporting them is the safe side of the ambiguity.
    if (from, to) == (0, 0) || (from, to) == (-1, -1) || (from <= 0 && to >= 65535) {
        return Some(format!("every {protocol} port"));
    }
    ADMIN_PORTS.iter().find(|(p, _)| (from..=to).contains(p)).map(|(p, name)| format!("{name} (port {p})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::terraform::lines_found as found;

    #[test]
    fn every_spelling_of_all_protocols_is_found_whatever_the_spacing() {
        for protocol in [
            "protocol = \"-1\"",
            "protocol          = \"-1\"",
            "protocol=\"-1\"",
            "protocol = \"ALL\"",
            "protocol = -1",
        ] {
            let text = format!(
                "resource \"aws_security_group_rule\" \"r\" {{\n  type = \"ingress\"\n  from_port = 0\n  to_port = 0\n  {protocol}\n  cidr_blocks = [\"0.0.0.0/0\"]\n}}\n"
            );
            assert_eq!(found(check, &text), vec![1], "{protocol}");
        }
    }

    #[test]
    fn the_line_is_the_ingress_block_inside_its_group() {
        let text = "\n\nresource \"aws_security_group\" \"g\" {\n  name = \"g\"\n\n  ingress {\n    from_port = 22\n    to_port = 22\n    protocol = \"tcp\"\n    cidr_blocks = [\"10.0.0.0/8\", \"0.0.0.0/0\"]\n  }\n  ingress {\n    from_port = 443\n    to_port = 443\n    protocol = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n  egress {\n    from_port = 0\n    to_port = 0\n    protocol = \"-1\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n}\n";
        assert_eq!(found(check, text), vec![6]);
    }

    #[test]
    fn lists_standalone_rules_and_ipv6_are_read() {
        let text = r#"resource "aws_security_group" "a" {
  ingress = [{
    from_port = 3389
    to_port = 3389
    protocol = "tcp"
    ipv6_cidr_blocks = ["::/0"]
  }]
}
resource "aws_vpc_security_group_ingress_rule" "b" {
  cidr_ipv4   = "0.0.0.0/0"
  from_port   = 22
  ip_protocol = "tcp"
  to_port     = 22
}
resource "aws_security_group_rule" "egress_is_not_ingress" {
  type = "egress"
  from_port = 22
  to_port = 22
  protocol = "tcp"
  cidr_blocks = ["0.0.0.0/0"]
}
"#;
        assert_eq!(found(check, text), vec![2, 9]);
    }

    #[test]
    fn private_ranges_other_ports_icmp_and_unknowns_are_not_found() {
        let text = r#"resource "aws_security_group" "a" {
  ingress {
    from_port = 22
    to_port = 22
    protocol = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
  ingress {
    from_port = 443
    to_port = 443
    protocol = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port = -1
    to_port = -1
    protocol = "icmp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port = 22
    to_port = 22
    protocol = "tcp"
    cidr_blocks = [var.cidr]
  }
  ingress {
    description = "Self"
    from_port = 0
    to_port = 0
    protocol = "-1"
    self = true
  }
}
"#;
        assert!(found(check, text).is_empty());
    }
}
