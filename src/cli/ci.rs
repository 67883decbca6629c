//! `capstan ci`: a CI pipeline that runs the playbook's phases as jobs.

use super::args::CiArgs;
use super::usage_error;

pub fn ci(args: &CiArgs) -> i32 {
    usage_error(&format!("capstan ci --platform {:?} is not available yet", args.platform), None)
}
