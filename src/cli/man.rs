//! `capstan man`: the man page.

use super::usage_error;

pub fn man() -> i32 {
    usage_error("capstan man is not available yet", None)
}
