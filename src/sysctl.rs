//! Per-device sysctls under /proc/sys, read and written as files (no
//! `sysctl` process). Keys are paths (`net/ipv4/conf/tap0/proxy_arp`):
//! a dot in an interface name stays a dot there.

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("setting {} to {value}: {source}{}", .key.replace('/', "."), hint(.source))]
pub struct Error {
    pub key: String,
    pub value: String,
    pub source: std::io::Error,
}

fn hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => " (the device is gone, or the kernel lacks the setting)",
        std::io::ErrorKind::PermissionDenied => " (needs root; is /proc/sys mounted read-only?)",
        _ => "",
    }
}

fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key)
}

/// The key's value, trimmed; `None` when it cannot be read.
pub fn read(key: &str) -> Option<String> {
    std::fs::read_to_string(path(key))
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn write(key: &str, value: &str) -> Result<(), Error> {
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open(path(key))
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| Error {
        key: key.to_string(),
        value: value.to_string(),
        source,
    })
}
