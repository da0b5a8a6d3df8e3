//! The request headers the project still parses itself now that hyper reads HTTP: the
//! `Host` value (box report page and hub dashboard) and the dashboard's session token
//! from `Authorization` and `Cookie`. Input: three header values separated by NUL bytes.
//! Any bytes give an answer, never a panic; a token returned is 64 hex digits taken from
//! the input; a host name accepted is lower case and allowed by a list naming it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sangdam_wire::headers::{cookie_value, host_name, request_token, AllowedHosts, HostName};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let host = parts.next().unwrap_or("");
    let authorization = parts.next();
    let cookies = parts.next().unwrap_or("");

    let default = AllowedHosts::default();
    let allowed = default.allows(host);
    match host_name(host) {
        Some(HostName::Ip(_)) => assert!(allowed, "IP literals are always answered"),
        Some(HostName::Name(n)) => {
            assert_eq!(n, n.to_ascii_lowercase());
            assert!(!n.ends_with('.'));
            assert_eq!(allowed, n == "localhost");
            assert!(AllowedHosts::new(&[n.clone()]).allows(host));
        }
        None => assert!(!allowed, "an unparsable Host is refused"),
    }
    assert!(AllowedHosts::new(&["*".to_owned()]).allows(host));

    let lines: Vec<&str> = cookies.split('\n').collect();
    if let Some(t) = request_token("sangdam_hub_session", authorization, lines.iter().copied()) {
        assert!(sangdam_wire::headers::valid_token(t));
        assert!(text.contains(t));
    }
    for line in &lines {
        if let Some(v) = cookie_value(line, "sangdam_hub_session") {
            assert!(line.contains(v));
        }
    }
});
