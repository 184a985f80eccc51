//! The config file: parsing, validation with file/line/key errors, and the
//! cheap pre-scan that lets the hook exit for networks it does not manage
//! without parsing anything.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ipnet::IpNet;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, Result};

pub const DEFAULT_PATH: &str = "/etc/net-hook/net-hook.toml";

/// Longest network name we accept: the ownership mark `net-hook:<name>` must
/// fit the kernel's 255-byte interface alias.
const MAX_NETWORK_NAME: usize = 200;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub networks: BTreeMap<String, NetworkConfig>,
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

/// The config file's text, and why the hook must not trust it, if so.
pub enum Loaded {
    /// No config file: nothing is managed.
    Missing,
    /// [`load_if_mentions`] only: the file cannot configure the network.
    NotMentioned,
    Text {
        text: String,
        insecure: Option<Error>,
    },
}

/// Reads the config and checks that nobody but root could have written it:
/// the hook runs as root and acts on what it says. The check applies only
/// when we are root ourselves; an unprivileged run can do no harm.
pub fn load(path: &Path) -> Result<Loaded> {
    load_inner(path, None)
}

/// [`load`] for the hook: first streams the file through the pre-scan
/// ([`might_mention`]) and stops there if it cannot name `network`, the
/// common case on a busy host. That path neither keeps the text nor
/// validates UTF-8, so its cost does not grow with the number of networks.
pub fn load_if_mentions(path: &Path, network: &str) -> Result<Loaded> {
    load_inner(path, Some(network))
}

fn load_inner(path: &Path, prescan: Option<&str>) -> Result<Loaded> {
    use std::io::{Read, Seek};
    let read_err = |source| Error::ConfigRead {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(read_err(e)),
    };
    if let Some(network) = prescan {
        // An insecure file that cannot name the network is equally not ours.
        if !might_mention(&mut file, network).map_err(read_err)? {
            return Ok(Loaded::NotMentioned);
        }
        file.rewind().map_err(read_err)?;
    }
    let mut insecure = None;
    if nix::unistd::geteuid().is_root() {
        let meta = file.metadata().map_err(read_err)?;
        insecure = check_secure(path, meta.uid(), meta.mode()).err();
        if insecure.is_none()
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            // Whoever can write the directory can replace the file.
            let dmeta = std::fs::metadata(dir).map_err(read_err)?;
            insecure = check_secure(dir, dmeta.uid(), dmeta.mode()).err();
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_err)?;
    Ok(Loaded::Text { text, insecure })
}

/// [`load`] for commands that need the file: missing or insecure is an error.
pub fn read_file(path: &Path) -> Result<String> {
    match load(path)? {
        Loaded::Missing | Loaded::NotMentioned => Err(Error::ConfigRead {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }),
        Loaded::Text {
            insecure: Some(e), ..
        } => Err(e),
        Loaded::Text { text, .. } => Ok(text),
    }
}

/// Best effort, for error paths: does the file say `strict = true` for
/// `network`, even if it is otherwise invalid?
pub fn strict_hint(text: &str, network: &str) -> bool {
    let Ok(root) = DeTable::parse(text) else {
        return false;
    };
    root.get_ref()
        .get("networks")
        .and_then(|n| n.get_ref().get(network))
        .and_then(|n| n.get_ref().get("strict"))
        .and_then(|s| s.get_ref().as_bool())
        .unwrap_or(false)
}

pub fn check_secure(path: &Path, uid: u32, mode: u32) -> Result<()> {
    let why = if uid != 0 {
        format!("owned by uid {uid}, not root")
    } else if mode & 0o022 != 0 {
        format!("writable by group or others (mode {:o})", mode & 0o7777)
    } else {
        return Ok(());
    };
    Err(Error::ConfigInsecure {
        path: path.to_path_buf(),
        why,
    })
}

/// Cheap test run before any parsing: false means the text cannot configure
/// `network`, so the hook may exit at once. It looks for the name as a whole
/// key token; anything it cannot rule out (escapes, odd names, non-ASCII
/// neighbours) returns true and the caller parses for real.
pub fn might_mention(text: &mut impl std::io::Read, network: &str) -> std::io::Result<bool> {
    scan(text, network, 16 * 1024)
}

/// [`might_mention`] reading `chunk` bytes at a time. A window holds the chunk plus
/// the previous one's last `name + 1` bytes, so a name split across reads is
/// still seen with the byte before it.
fn scan(r: &mut impl std::io::Read, network: &str, chunk: usize) -> std::io::Result<bool> {
    let name = network.as_bytes();
    if name.is_empty()
        || name
            .iter()
            .any(|&b| matches!(b, b'"' | b'\'' | b'\\') || b.is_ascii_control())
    {
        return Ok(true);
    }
    let keep = name.len() + 1;
    let mut window = vec![0; keep + chunk];
    let finder = memchr::memmem::Finder::new(name);
    // `held` bytes carried over; `from_start`: window[0] is the file's first.
    let (mut held, mut from_start) = (0, true);
    loop {
        let n = match r.read(&mut window[held..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (len, eof) = (held + n, n == 0);
        // Escapes could spell any name: parse for real.
        if memchr::memchr(b'\\', &window[held..len]).is_some() {
            return Ok(true);
        }
        for i in finder.find_iter(&window[..len]) {
            let after = window.get(i + name.len()).filter(|_| i + name.len() < len);
            if after.is_none() && !eof {
                break; // its next byte comes with the next read
            }
            if i == 0 && !from_start {
                continue; // judged in the previous window
            }
            let before = i.checked_sub(1).map(|j| window[j]);
            if before_ok(before) && after_ok(after.copied()) {
                return Ok(true);
            }
        }
        if eof {
            return Ok(false);
        }
        let start = len.saturating_sub(keep);
        window.copy_within(start..len, 0);
        held = len - start;
        from_start &= start == 0;
    }
}

// Bytes that may stand next to a bare or quoted key. Non-ASCII bytes could
// be Unicode whitespace: do not rule them out.
fn before_ok(b: Option<u8>) -> bool {
    b.is_none_or(|b| matches!(b, b'.' | b'[' | b'"' | b'\'' | b'{' | b',') || is_space(b))
}

fn after_ok(b: Option<u8>) -> bool {
    b.is_none_or(|b| matches!(b, b'.' | b']' | b'"' | b'\'' | b'=') || is_space(b))
}

fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b || !b.is_ascii()
}

impl Config {
    /// Parses and validates the whole file.
    pub fn parse(text: &str, file: &str) -> Result<Config> {
        let mut cx = Cx::new(text, file);
        let networks = cx.walk(None);
        cx.check_global(&networks);
        cx.finish(Config { networks })
    }

    /// Parses the file but validates only `network` (and the top level): a
    /// mistake in another network's section must not break this one.
    pub fn parse_network(text: &str, file: &str, network: &str) -> Result<Option<NetworkConfig>> {
        let mut cx = Cx::new(text, file);
        let mut networks = cx.walk(Some(network));
        let found = networks.remove(network);
        cx.finish(found)
    }
}

/// Validation context: the source (for line numbers) and the errors so far.
struct Cx<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<ConfigError>,
}

type Table<'i> = DeTable<'i>;

/// Where a VLAN's values are, for errors found after parsing them.
#[derive(Default)]
struct Spans {
    id: std::ops::Range<usize>,
    name: std::ops::Range<usize>,
    addrs: Vec<std::ops::Range<usize>>,
}

impl<'a> Cx<'a> {
    fn new(text: &'a str, file: &'a str) -> Self {
        Cx {
            text,
            file,
            errors: Vec::new(),
        }
    }

    fn finish<T>(self, value: T) -> Result<T> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(Error::Config(self.errors))
        }
    }

    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&mut self, span: std::ops::Range<usize>, key: &str, msg: impl Into<String>) {
        let line = self.line(span.start);
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            key: key.to_string(),
            msg: msg.into(),
        });
    }

    fn walk(&mut self, only: Option<&str>) -> BTreeMap<String, NetworkConfig> {
        let mut out = BTreeMap::new();
        let root = match DeTable::parse(self.text) {
            Ok(t) => t,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_string();
                self.err(span, "", format!("TOML syntax error: {msg}"));
                return out;
            }
        };
        for (k, v) in root.get_ref().iter() {
            match k.get_ref().as_ref() {
                "networks" => {
                    let Some(nets) = self.table(v, "networks") else {
                        continue;
                    };
                    for (nk, nv) in nets.iter() {
                        let name: &str = nk.get_ref();
                        if only.is_some_and(|o| o != name) {
                            continue;
                        }
                        let path = format!("networks.{}", key_repr(name));
                        if let Some(msg) = network_name_problem(name) {
                            self.err(nk.span(), &path, msg);
                            continue;
                        }
                        if let Some(net) = self.network(name, nv, &path) {
                            out.insert(name.to_string(), net);
                        }
                    }
                }
                other => {
                    let key = key_repr(other);
                    self.err(k.span(), &key, "unknown key (expected: networks)")
                }
            }
        }
        out
    }

    fn table<'v, 'i>(&mut self, v: &'v Spanned<DeValue<'i>>, path: &str) -> Option<&'v Table<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    v.span(),
                    path,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn network(
        &mut self,
        name: &str,
        v: &Spanned<DeValue<'_>>,
        path: &str,
    ) -> Option<NetworkConfig> {
        let t = self.table(v, path)?;
        let mut net = NetworkConfig {
            name: name.to_string(),
            strict: false,
            unnat: None,
            firewalld_zone: None,
            vlans: Vec::new(),
        };
        let errors_before = self.errors.len();
        let mut saw_vlans = false;
        let mut vlans = Vec::new();
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            let kpath = format!("{path}.{}", key_repr(key));
            match key {
                "strict" => match v.get_ref() {
                    DeValue::Boolean(b) => net.strict = *b,
                    other => self.err(
                        v.span(),
                        &kpath,
                        format!("expected true or false, found {}", other.type_str()),
                    ),
                },
                "vlans" => {
                    saw_vlans = true;
                    let DeValue::Array(items) = v.get_ref() else {
                        self.err(
                            v.span(),
                            &kpath,
                            "expected an array of tables ([[...vlans]])",
                        );
                        continue;
                    };
                    for (i, item) in items.iter().enumerate() {
                        let ipath = format!("{kpath}[{i}]");
                        if let Some((vlan, spans)) = self.vlan(item, &ipath) {
                            vlans.push((vlan, spans, ipath));
                        }
                    }
                }
                "unnat" => net.unnat = self.unnat(v, &kpath),
                "firewalld_zone" => match v.get_ref().as_str() {
                    Some(z)
                        if !z.is_empty()
                            && z.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                    {
                        net.firewalld_zone = Some(z.to_string())
                    }
                    _ => self.err(
                        v.span(),
                        &kpath,
                        "expected a firewalld zone name like \"libvirt\"",
                    ),
                },
                _ => self.err(
                    k.span(),
                    &kpath,
                    "unknown key (expected: strict, vlans, unnat, firewalld_zone)",
                ),
            }
        }
        if !saw_vlans && net.unnat.is_none() {
            self.err(
                v.span(),
                path,
                "missing key `vlans` (add a [[...vlans]] table)",
            );
        }
        net.vlans = self.check_network_dups(vlans);
        (self.errors.len() == errors_before).then_some(net)
    }

    fn unnat(&mut self, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Unnat> {
        let t = self.table(v, path)?;
        let errors_before = self.errors.len();
        let mut destinations = None;
        let mut sources = None;
        let mut backend = BackendChoice::Auto;
        for (k, val) in t.iter() {
            let key: &str = k.get_ref();
            let kpath = format!("{path}.{}", key_repr(key));
            match key {
                "destinations" => destinations = self.prefixes(val, &kpath),
                "sources" => sources = self.prefixes(val, &kpath),
                "backend" => match val.get_ref().as_str() {
                    Some("auto") => backend = BackendChoice::Auto,
                    Some("iptables") => backend = BackendChoice::Iptables,
                    Some("nftables") => backend = BackendChoice::Nftables,
                    _ => self.err(
                        val.span(),
                        &kpath,
                        "expected \"auto\", \"iptables\" or \"nftables\"",
                    ),
                },
                _ => self.err(
                    k.span(),
                    &kpath,
                    "unknown key (expected: destinations, sources, backend)",
                ),
            }
        }
        match &destinations {
            None if self.errors.len() == errors_before => self.err(
                v.span(),
                path,
                "missing key `destinations` (the prefixes, like [\"10.12.8.0/22\"])",
            ),
            Some(d) if d.is_empty() && self.errors.len() == errors_before => self.err(
                v.span(),
                &format!("{path}.destinations"),
                "is empty; list at least one prefix",
            ),
            _ => {}
        }
        if let (Some(src), Some(dst)) = (&sources, &destinations) {
            for s in src {
                for d in dst.iter().filter(|d| crate::model::overlaps(s, d)) {
                    self.err(v.span(), &format!("{path}.sources"), format!("{s} overlaps destination {d}: traffic within one prefix is never masqueraded anyway"));
                }
            }
        }
        if self.errors.len() != errors_before {
            return None;
        }
        Some(Unnat {
            destinations: destinations?,
            sources,
            backend,
        })
    }

    /// An array of prefixes (network addresses with a length, not hosts).
    fn prefixes(&mut self, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Vec<IpNet>> {
        let Some(items) = v.get_ref().as_array() else {
            self.err(
                v.span(),
                path,
                "expected an array of prefixes like [\"10.12.8.0/22\"]",
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let Some(s) = item.get_ref().as_str() else {
                self.err(
                    item.span(),
                    &ipath,
                    format!("expected a string, found {}", item.get_ref().type_str()),
                );
                continue;
            };
            match s.parse::<IpNet>() {
                Ok(n) if n == n.trunc() => out.push(n),
                Ok(n) => self.err(
                    item.span(),
                    &ipath,
                    format!("{s:?} is a host address; write the prefix {}", n.trunc()),
                ),
                Err(_) => self.err(
                    item.span(),
                    &ipath,
                    format!("{s:?} is not a prefix like \"10.12.8.0/22\" or \"fd00:12:8::/64\""),
                ),
            }
        }
        Some(out)
    }

    fn check_network_dups(&mut self, vlans: Vec<(VlanConfig, Spans, String)>) -> Vec<VlanConfig> {
        let mut vids: HashMap<u16, String> = HashMap::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut addrs: HashMap<IpAddr, String> = HashMap::new();
        for (vlan, spans, path) in &vlans {
            if let Some(prev) = vids.insert(vlan.id, path.clone()) {
                self.err(
                    spans.id.clone(),
                    &format!("{path}.id"),
                    format!("VLAN {} is already configured at {prev}", vlan.id),
                );
            }
            if let Some(n) = &vlan.name
                && let Some(prev) = names.insert(n.clone(), path.clone())
            {
                self.err(
                    spans.name.clone(),
                    &format!("{path}.name"),
                    format!("interface {n} is already configured at {prev}"),
                );
            }
            for (i, a) in vlan.addresses.iter().enumerate() {
                if let Some(prev) = addrs.insert(a.addr(), path.clone()) {
                    let span = spans.addrs.get(i).cloned().unwrap_or_default();
                    self.err(
                        span,
                        &format!("{path}.addresses[{i}]"),
                        format!("address {} is already configured at {prev}", a.addr()),
                    );
                }
            }
        }
        vlans.into_iter().map(|(v, _, _)| v).collect()
    }

    fn vlan(&mut self, v: &Spanned<DeValue<'_>>, path: &str) -> Option<(VlanConfig, Spans)> {
        let t = self.table(v, path)?;
        let mut spans = Spans::default();
        let errors_before = self.errors.len();
        let mut id = None;
        let mut name = None;
        let mut addresses = None;
        let mut mtu = None;
        for (k, val) in t.iter() {
            let key: &str = k.get_ref();
            let kpath = format!("{path}.{}", key_repr(key));
            match key {
                "id" => spans.id = val.span(),
                "name" => spans.name = val.span(),
                _ => {}
            }
            match key {
                "id" => match self.int(val, &kpath) {
                    Some(n) if (1..=4094).contains(&n) => id = Some(n as u16),
                    Some(n) => {
                        self.err(val.span(), &kpath, format!("{n} is not a VLAN ID (1-4094)"))
                    }
                    None => {}
                },
                "name" => match val.get_ref().as_str() {
                    Some(s) => match ifname_problem(s) {
                        None => name = Some(s.to_string()),
                        Some(p) => self.err(
                            val.span(),
                            &kpath,
                            format!("{s:?} is not a valid interface name: {p}"),
                        ),
                    },
                    None => self.err(
                        val.span(),
                        &kpath,
                        format!("expected a string, found {}", val.get_ref().type_str()),
                    ),
                },
                "mtu" => match self.int(val, &kpath) {
                    Some(n) if (68..=65535).contains(&n) => mtu = Some(n as u32),
                    Some(n) => self.err(
                        val.span(),
                        &kpath,
                        format!("{n} is not a valid MTU (68-65535)"),
                    ),
                    None => {}
                },
                "addresses" => {
                    let Some(items) = val.get_ref().as_array() else {
                        self.err(
                            val.span(),
                            &kpath,
                            "expected an array of strings like [\"10.12.8.1/22\"]",
                        );
                        continue;
                    };
                    let mut list = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let ipath = format!("{kpath}[{i}]");
                        spans.addrs.push(item.span());
                        match item.get_ref().as_str() {
                            Some(s) => match parse_host_address(s) {
                                Ok(a) => list.push(a),
                                Err(m) => self.err(item.span(), &ipath, m),
                            },
                            None => self.err(
                                item.span(),
                                &ipath,
                                format!("expected a string, found {}", item.get_ref().type_str()),
                            ),
                        }
                    }
                    addresses = Some(list);
                }
                _ => self.err(
                    k.span(),
                    &kpath,
                    "unknown key (expected: id, addresses, name, mtu)",
                ),
            }
        }
        if id.is_none() && self.errors.len() == errors_before {
            self.err(v.span(), path, "missing key `id` (the VLAN ID, 1-4094)");
        }
        if addresses.is_none() && self.errors.len() == errors_before {
            self.err(
                v.span(),
                path,
                "missing key `addresses` (use [] for a VLAN without addresses)",
            );
        }
        if let (Some(mtu), Some(addrs)) = (mtu, &addresses)
            && mtu < 1280
            && addrs.iter().any(|a| matches!(a, IpNet::V6(_)))
        {
            self.err(
                v.span(),
                &format!("{path}.mtu"),
                format!("{mtu} is below 1280, the IPv6 minimum, but the VLAN has IPv6 addresses"),
            );
        }
        if self.errors.len() != errors_before {
            return None;
        }
        let vlan = VlanConfig {
            id: id?,
            name,
            addresses: addresses?,
            mtu,
        };
        Some((vlan, spans))
    }

    fn int(&mut self, v: &Spanned<DeValue<'_>>, path: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.err(v.span(), path, "integer out of range");
                    None
                }
            },
            other => {
                self.err(
                    v.span(),
                    path,
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// Checks that need every network: an address or interface name may be
    /// used by one network only.
    fn check_global(&mut self, networks: &BTreeMap<String, NetworkConfig>) {
        let mut addrs: HashMap<IpAddr, &str> = HashMap::new();
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut clashes = Vec::new();
        for (net, cfg) in networks {
            for vlan in &cfg.vlans {
                for a in &vlan.addresses {
                    if let Some(prev) = addrs.insert(a.addr(), net)
                        && prev != net
                    {
                        clashes.push((
                            net.clone(),
                            format!("address {} is also configured for network {prev}", a.addr()),
                        ));
                    }
                }
                if let Some(n) = &vlan.name
                    && let Some(prev) = names.insert(n, net)
                    && prev != net
                {
                    clashes.push((
                        net.clone(),
                        format!("interface {n} is also configured for network {prev}"),
                    ));
                }
            }
        }
        for (net, msg) in clashes {
            let offset = find_header(self.text, &net);
            self.err(offset..offset, &format!("networks.{}", key_repr(&net)), msg);
        }
    }
}

/// Where a network's section starts, for error lines of global checks.
fn find_header(text: &str, network: &str) -> usize {
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

fn network_name_problem(name: &str) -> Option<String> {
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

#[cfg(test)]
mod tests;
