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
    /// Routed interfaces' gateway devices (dummies), by name.
    pub gateways: BTreeMap<String, GatewayConfig>,
    /// Domains with routed interfaces (the qemu hook), by name.
    pub domains: BTreeMap<String, DomainConfig>,
    /// Whether a network may carry its config in its libvirt `<metadata>`
    /// (top-level `metadata = false` turns that off).
    pub metadata: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            networks: BTreeMap::new(),
            gateways: BTreeMap::new(),
            domains: BTreeMap::new(),
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

/// A dummy device that holds the routed VMs' gateway address (the same on
/// every host), with no connected route for its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub name: String,
    /// IPv4 host addresses with their prefix, added with `noprefixroute`.
    pub addresses: Vec<IpNet>,
    /// `None`: derived from the host's machine id and the name.
    pub mac: Option<crate::model::Mac>,
}

/// A libvirt domain whose `<interface type='ethernet'>` taps net-hook routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    pub name: String,
    /// A failed `prepare` or `started` fails the domain's start.
    pub strict: bool,
    pub interfaces: Vec<RoutedInterface>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedInterface {
    /// The `<target dev>` of the domain's interface.
    pub tap: String,
    pub gateway: String,
    /// The VM's addresses: IPv4 /32, IPv6 /128.
    pub addresses: Vec<IpNet>,
    /// The routes' protocol number (what BIRD's filters see as `krt_source`).
    pub route_protocol: u8,
    pub table: u32,
    pub tap_mode: TapMode,
    /// The tap's `rp_filter` (0, 1, 2); the kernel uses max(all, tap).
    pub rp_filter: u8,
}

pub const DEFAULT_ROUTE_PROTOCOL: u8 = 200;
pub const MAIN_TABLE: u32 = 254;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TapMode {
    /// libvirt creates the tap (the default `<target dev>`).
    #[default]
    Libvirt,
    /// net-hook creates it at `prepare`; the domain has `managed='no'`.
    Precreated,
}

impl TapMode {
    /// As the config writes it.
    pub fn name(self) -> &'static str {
        match self {
            TapMode::Libvirt => "libvirt",
            TapMode::Precreated => "precreated",
        }
    }
}

impl Config {
    /// The domain's gateways, as configured (unknown names left out: the
    /// parser refuses them).
    pub fn gateways_of(&self, d: &DomainConfig) -> Vec<GatewayConfig> {
        let mut names: Vec<&str> = d.interfaces.iter().map(|i| i.gateway.as_str()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| self.gateways.get(n).cloned())
            .collect()
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
        let (gateways, domains) = cx.take_routed();
        cx.check_routed(&networks, &gateways, &domains);
        cx.finish(Config {
            networks,
            gateways,
            domains,
            metadata,
        })
    }

    /// Parses the file but validates only `domain` and the gateways (the
    /// qemu hook's view): the result holds that domain and every gateway.
    pub fn parse_domain(text: &str, file: &str, domain: &str) -> Result<Config> {
        let mut cx = Cx::new(text, file);
        cx.only_domain = Some(domain.to_string());
        let _ = cx.walk(None);
        let (gateways, domains) = cx.take_routed();
        cx.check_routed(&BTreeMap::new(), &gateways, &domains);
        let metadata = cx.metadata;
        cx.finish(Config {
            networks: BTreeMap::new(),
            gateways,
            domains,
            metadata,
        })
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
        cx.skip_routed = true;
        let mut networks = cx.walk(Some(network));
        let found = networks.remove(network);
        let metadata = cx.metadata;
        cx.finish((found, metadata))
    }
}

#[cfg(test)]
mod tests;
