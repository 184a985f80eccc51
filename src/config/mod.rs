//! The config file: parsing, validation with file/line/key errors, and the
//! cheap pre-scan that lets the hook exit for networks it does not manage
//! without parsing anything.
//!
//! `load` reads the file and judges who could have written it, `prescan`
//! rules networks out before any parsing, `schema` walks the TOML and
//! `rules` judges single values.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;

use ipnet::IpNet;

mod load;
pub mod metadata;
mod prescan;
mod rules;
mod schema;

use schema::Cx;

pub use load::{Loaded, check_secure, load, load_if_mentions, read_file, strict_hint};
pub use prescan::might_mention;
pub use rules::{ifname_problem, key_repr, parse_host_address};

pub const DEFAULT_PATH: &str = "/etc/net-hook/net-hook.toml";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub networks: BTreeMap<String, NetworkConfig>,
    /// Whether a network may carry its config in its libvirt `<metadata>`
    /// (top-level `metadata = false` turns that off).
    pub metadata: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            networks: BTreeMap::new(),
            metadata: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub name: String,
    /// On failure exit non-zero (libvirt fails the start) instead of logging.
    pub strict: bool,
    pub vlans: Vec<VlanConfig>,
    /// Traffic from the network to these prefixes is not masqueraded.
    pub unnat: Option<Unnat>,
    /// firewalld zone for the VLANs when firewalld runs (default `libvirt`).
    pub firewalld_zone: Option<String>,
}

impl NetworkConfig {
    pub fn zone(&self) -> &str {
        self.firewalld_zone.as_deref().unwrap_or("libvirt")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unnat {
    pub destinations: Vec<IpNet>,
    /// `None`: the network's own subnets, from its XML.
    pub sources: Option<Vec<IpNet>>,
    pub backend: BackendChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// Follow libvirt: its network.conf, else the rules it installed.
    #[default]
    Auto,
    Iptables,
    Nftables,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VlanConfig {
    pub id: u16,
    /// Interface name; `None` means `<bridge>.<id>`, known only at hook time.
    pub name: Option<String>,
    pub addresses: Vec<IpNet>,
    /// `None` keeps what the kernel gives a new VLAN: the bridge's MTU.
    pub mtu: Option<u32>,
}

impl VlanConfig {
    pub fn ifname(&self, bridge: &str) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("{bridge}.{}", self.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.msg)
        } else {
            write!(f, "{}:{}: {}: {}", self.file, self.line, self.key, self.msg)
        }
    }
}

/// Why the config cannot be used. Its own type, so that this module depends
/// on nothing that depends on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more validation errors; each already names file, line and key.
    #[error("{}", join_config_errors(.0))]
    Invalid(Vec<ConfigError>),

    #[error("cannot read config {}: {source}; create it or pass --config", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("refusing config {}: {why}; {fix}", path.display())]
    Insecure {
        path: PathBuf,
        why: String,
        fix: &'static str,
    },

    /// The network's libvirt `<metadata>` form is invalid; each error names
    /// the network and the element or attribute.
    #[error("{}", join_meta_errors(.0))]
    Metadata(Vec<metadata::MetaError>),

    /// Both the file and the network's `<metadata>` configure it.
    #[error(
        "network {network:?} is configured both in {} and in its libvirt <metadata> ({}); remove one of them (`net-hook config export {network}` prints the file's as metadata)",
        file.display(), metadata::NAMESPACE
    )]
    Both { network: String, file: PathBuf },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn join_config_errors(errs: &[ConfigError]) -> String {
    let mut s = errs.first().map(ToString::to_string).unwrap_or_default();
    if errs.len() > 1 {
        s.push_str(&format!(
            " (and {} more; run `net-hook config check`)",
            errs.len() - 1
        ));
    }
    s
}

fn join_meta_errors(errs: &[metadata::MetaError]) -> String {
    let mut s = errs.first().map(ToString::to_string).unwrap_or_default();
    if errs.len() > 1 {
        s.push_str(&format!(" (and {} more)", errs.len() - 1));
    }
    s
}

impl Config {
    /// Parses and validates the whole file.
    pub fn parse(text: &str, file: &str) -> Result<Config> {
        let mut cx = Cx::new(text, file);
        let networks = cx.walk(None);
        cx.check_global(&networks);
        let metadata = cx.metadata;
        cx.finish(Config { networks, metadata })
    }

    /// Parses the file but validates only `network` (and the top level): a
    /// mistake in another network's section must not break this one.
    pub fn parse_network(text: &str, file: &str, network: &str) -> Result<Option<NetworkConfig>> {
        Self::parse_one(text, file, network).map(|(n, _)| n)
    }

    /// [`parse_network`](Self::parse_network), and the `metadata` switch.
    pub fn parse_one(
        text: &str,
        file: &str,
        network: &str,
    ) -> Result<(Option<NetworkConfig>, bool)> {
        let mut cx = Cx::new(text, file);
        let mut networks = cx.walk(Some(network));
        let found = networks.remove(network);
        let metadata = cx.metadata;
        cx.finish((found, metadata))
    }
}

#[cfg(test)]
mod tests;
