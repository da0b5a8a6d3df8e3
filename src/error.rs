//! What the error types of the project's crates share. Each library error keeps its
//! cause as [`source`](std::error::Error::source), out of its own message; a binary
//! prints the whole chain on one line ([`error_chain`], or anyhow's `{:#}`).

/// An error and its causes on one line, `what failed: why: ...`, as `{:#}` of an
/// `anyhow::Error` prints them.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
