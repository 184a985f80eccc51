//! Rules for single values: names, addresses, and how keys are shown.

use ipnet::IpNet;

/// Longest network name we accept: the ownership mark `net-hook:<name>` must
/// fit the kernel's 255-byte interface alias.
const MAX_NETWORK_NAME: usize = 200;

/// Where a network's section starts, for error lines of global checks.
pub(super) fn find_header(text: &str, network: &str) -> usize {
    let quoted = format!("\"{network}\"");
    let bare = format!("networks.{network}");
    text.find(&format!("networks.{quoted}"))
        .or_else(|| text.find(&bare))
        .unwrap_or(0)
}

/// Renders a key the way it would be written in TOML.
pub fn key_repr(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

pub(super) fn network_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("network name is empty".into())
    } else if name.contains('/') {
        Some("libvirt network names cannot contain '/'".into())
    } else if name.len() > MAX_NETWORK_NAME {
        Some(format!("network name longer than {MAX_NETWORK_NAME} bytes"))
    } else if name.chars().any(char::is_control) {
        Some("network name contains control characters".into())
    } else {
        None
    }
}

/// Why `name` is not a valid Linux interface name (the kernel's
/// `dev_valid_name`), or `None` when it is.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.len() > 15 {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains(':') {
        Some("contains ':'")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace")
    } else {
        None
    }
}

/// Parses `ADDR/PREFIX` where ADDR must be usable as a host address.
pub fn parse_host_address(s: &str) -> std::result::Result<IpNet, String> {
    if !s.contains('/') {
        return Err(format!(
            "{s:?} has no prefix length (write it like \"10.12.8.1/22\")"
        ));
    }
    let net: IpNet = s.parse().map_err(|_| {
        format!("{s:?} is not an address with a prefix, like \"10.12.8.1/22\" or \"fd00::1/64\"")
    })?;
    let addr = net.addr();
    let host_bits = net.max_prefix_len() - net.prefix_len();
    if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() {
        return Err(format!("{s:?} is not a unicast host address"));
    }
    match net {
        IpNet::V4(n) => {
            if n.addr().is_broadcast() {
                return Err(format!("{s:?} is not a unicast host address"));
            }
            if host_bits >= 2 && n.addr() == n.network() {
                return Err(format!(
                    "{s:?} is the network address of {}; use a host address such as {}/{}",
                    n.trunc(),
                    first_host_v4(n),
                    n.prefix_len()
                ));
            }
            if host_bits >= 2 && n.addr() == n.broadcast() {
                return Err(format!("{s:?} is the broadcast address of {}", n.trunc()));
            }
        }
        IpNet::V6(n) => {
            if n.addr().segments()[0] & 0xffc0 == 0xfe80 {
                return Err(format!(
                    "{s:?} is link-local; the kernel assigns link-local addresses itself"
                ));
            }
            if host_bits >= 2 && n.addr() == n.network() {
                return Err(format!(
                    "{s:?} is the subnet-router anycast address of {}; use a host address",
                    n.trunc()
                ));
            }
        }
    }
    Ok(net)
}

fn first_host_v4(n: ipnet::Ipv4Net) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(n.network()).wrapping_add(1))
}
