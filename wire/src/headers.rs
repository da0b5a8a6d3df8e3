//! The HTTP header values the project parses itself, for the box's report page and the
//! hub's dashboard (hyper parses the rest):
//!
//! - `Host`: [`host_name`], and [`AllowedHosts`], the list a server answers to. Both
//!   servers refuse names they were not configured for, so that a web page on some other
//!   name that resolves to them (DNS rebinding) cannot read them through a browser.
//! - The dashboard's session token from `Authorization: Bearer` or a `Cookie` header:
//!   [`request_token`], [`cookie_value`].

use std::net::{IpAddr, Ipv6Addr};

/// The `Host` header values the server answers to. Always `localhost` and every IP
/// address literal (`127.0.0.1`, `[::1]`, the box's LAN address: a rebinding page is on
/// a name, never on an address), plus the configured names; `"*"` turns the check off.
/// Names are compared without case, a trailing dot or the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    names: Vec<String>,
    any: bool,
}

impl Default for AllowedHosts {
    fn default() -> Self {
        AllowedHosts::new(&[])
    }
}

impl AllowedHosts {
    /// `localhost` and IP addresses plus `names` (entries that are not a host name, an
    /// address or `"*"` are left out; the config's validation names them).
    pub fn new(names: &[String]) -> AllowedHosts {
        let mut list = vec!["localhost".to_owned()];
        list.extend(names.iter().filter_map(|n| match host_name(n) {
            Some(HostName::Name(n)) => Some(n),
            _ => None,
        }));
        AllowedHosts {
            names: list,
            any: names.iter().any(|n| n.trim() == "*"),
        }
    }

    /// Whether a request with this `Host` header value is answered.
    pub fn allows(&self, host: &str) -> bool {
        match host_name(host) {
            _ if self.any => true,
            Some(HostName::Ip(_)) => true,
            Some(HostName::Name(n)) => self.names.contains(&n),
            None => false,
        }
    }
}

/// A `Host` value without its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostName {
    Ip(IpAddr),
    /// Lower case, without a trailing dot.
    Name(String),
}

/// Parses a `Host` header value or an `insights.allowed_hosts` entry: `name`,
/// `name:port`, `1.2.3.4[:port]` or `[v6][:port]`. `None` for anything else.
pub fn host_name(value: &str) -> Option<HostName> {
    let v = value.trim();
    let port_ok = |p: &str| p.is_empty() || (p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if let Some(rest) = v.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => "",
            _ => after.strip_prefix(':')?,
        };
        if !port_ok(port) {
            return None;
        }
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| HostName::Ip(IpAddr::V6(a)));
    }
    let (host, port) = v.split_once(':').unwrap_or((v, ""));
    if !port_ok(port) {
        return None;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(HostName::Ip(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then_some(HostName::Name(name))
}

/// The session token a request carries: `Authorization: Bearer TOKEN` first, else the
/// cookie `cookie_name`. Only well-formed tokens (64 hex digits) are returned.
pub fn request_token<'a>(
    cookie_name: &str,
    authorization: Option<&'a str>,
    cookie_headers: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    if let Some(auth) = authorization {
        let auth = auth.trim();
        let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let t = rest.trim();
            return valid_token(t).then_some(t);
        }
    }
    for header in cookie_headers {
        if let Some(v) = cookie_value(header, cookie_name) {
            if valid_token(v) {
                return Some(v);
            }
        }
    }
    None
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`), without quotes.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        if n.trim() != name {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v),
        )
    })
}

/// A session token: 64 hex digits (32 random bytes).
pub fn valid_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}
