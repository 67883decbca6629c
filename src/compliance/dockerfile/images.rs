//! Base images: a FROM without a tag or digest, or tagged `latest`, builds
//! from whatever the registry serves that day (hadolint DL3006, DL3007,
//! checkov `CKV_DOCKER_7`). Every stage counts: a build stage's base changes
//! what gets built just as much.

use super::finding;
use super::stages::Stage;
use crate::compliance::Finding;

pub fn check(stages: &[Stage<'_>], file: &str, out: &mut Vec<Finding>) {
    for stage in stages {
        let Some(from) = stage.from else { continue };
        let image = stage.image.as_str();
        // `scratch`, an earlier stage, an unresolved argument or a digest pin nothing to a tag.
        if image.is_empty() || image == "scratch" || stage.parent.is_some() || image.contains(['$', '@']) {
            continue;
        }
        // The tag is after the last `/`: `localhost:5000/app` has a port, not a tag.
        let name = image.rsplit('/').next().unwrap_or(image);
        match name.split_once(':') {
            None => out.push(finding(
                "dockerfile/untagged-base",
                file,
                from.line,
                format!("`FROM {image}` has no tag: pin a version (or a digest)"),
            )),
            Some((_, "latest")) => out.push(finding(
                "dockerfile/latest-base",
                file,
                from.line,
                format!("`FROM {image}` uses latest: pin a version (or a digest)"),
            )),
            Some(_) => {}
        }
    }
}
