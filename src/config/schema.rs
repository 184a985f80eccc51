//! The TOML walker: turns the parsed document into a
//! [`Config`](super::Config), collecting every error with its line and key.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::rules::{
    find_header, ifname_problem, key_repr, network_name_problem, parse_host_address,
};
use super::{BackendChoice, ConfigError, Error, NetworkConfig, Result, Unnat, VlanConfig};

/// Validation context: the source (for line numbers) and the errors so far.
pub(super) struct Cx<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<ConfigError>,
    /// The top-level `metadata` switch, once walked.
    pub(super) metadata: bool,
    /// The network hook's view: gateways and domains are not walked.
    pub(super) skip_routed: bool,
    /// The qemu hook's view: only this domain (and every gateway), no networks.
    pub(super) only_domain: Option<String>,
    routed: routed::Walked,
}

mod routed;

type Table<'i> = DeTable<'i>;

/// Where a VLAN's values are, for errors found after parsing them.
#[derive(Default)]
struct Spans {
    id: std::ops::Range<usize>,
    name: std::ops::Range<usize>,
    addrs: Vec<std::ops::Range<usize>>,
}

impl<'a> Cx<'a> {
    pub(super) fn new(text: &'a str, file: &'a str) -> Self {
        Cx {
            text,
            file,
            errors: Vec::new(),
            metadata: true,
            skip_routed: false,
            only_domain: None,
            routed: routed::Walked::default(),
        }
    }

    pub(super) fn finish<T>(mut self, value: T) -> Result<T> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            // The cross-network checks run last; report in file order all
            // the same. Stable: errors on one line keep the order found.
            self.errors.sort_by_key(|e| e.line);
            Err(Error::Invalid(self.errors))
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

    pub(super) fn walk(&mut self, only: Option<&str>) -> BTreeMap<String, NetworkConfig> {
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
                "gateways" | "domains" if self.skip_routed => {}
                "gateways" => self.gateways(v),
                "domains" => self.domains(v),
                "networks" if self.only_domain.is_some() => {}
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
                "metadata" => match v.get_ref() {
                    DeValue::Boolean(b) => self.metadata = *b,
                    other => self.err(
                        v.span(),
                        "metadata",
                        format!(
                            "expected true or false (read network config from libvirt's <metadata>), found {}",
                            other.type_str()
                        ),
                    ),
                },
                other => {
                    let key = key_repr(other);
                    self.err(k.span(), &key, "unknown key (expected: networks, gateways, domains, metadata)")
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
                "strict" => {
                    if let Some(b) = self.boolean(v, &kpath) {
                        net.strict = b;
                    }
                }
                "vlans" => {
                    saw_vlans = true;
                    let Some(items) = self.array_of_tables(v, &kpath) else {
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

    fn boolean(&mut self, v: &Spanned<DeValue<'_>>, path: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    v.span(),
                    path,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// `[[PATH]]` tables; the error names the key's last part.
    fn array_of_tables<'v, 'i>(
        &mut self,
        v: &'v Spanned<DeValue<'i>>,
        path: &str,
    ) -> Option<&'v toml::de::DeArray<'i>> {
        match v.get_ref() {
            DeValue::Array(items) => Some(items),
            _ => {
                let last = path.rsplit('.').next().unwrap_or(path);
                self.err(
                    v.span(),
                    path,
                    format!("expected an array of tables ([[...{last}]])"),
                );
                None
            }
        }
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
    pub(super) fn check_global(&mut self, networks: &BTreeMap<String, NetworkConfig>) {
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
