//! `capstan new`: a new service's playbook from a template.

use super::args::NewArgs;
use super::usage_error;

pub fn new(args: &NewArgs) -> i32 {
    usage_error(&format!("capstan new --template {:?} is not available yet", args.template), None)
}
