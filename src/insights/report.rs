//! The HTML report page and its read-only local server.
