//! `[gateways.NAME]` and `[domains.NAME]` with `[[domains.NAME.interfaces]]`:
//! routed VM interfaces (the qemu hook).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use toml::Spanned;
use toml::de::DeValue;

use super::Cx;
use crate::config::rules::{ifname_problem, key_repr, network_name_problem, parse_host_address};
use crate::config::{
    DEFAULT_ROUTE_PROTOCOL, DomainConfig, GatewayConfig, MAIN_TABLE, NetworkConfig,
    RoutedInterface, TapMode,
};
use crate::model::{Mac, overlaps};

/// What the walk found, with where, for the checks that need all of it.
#[derive(Default)]
pub(in crate::config) struct Walked {
    gateways: BTreeMap<String, (GatewayConfig, Range<usize>)>,
    domains: BTreeMap<String, (DomainConfig, Vec<Range<usize>>)>,
}

pub(in crate::config) type Gateways = BTreeMap<String, GatewayConfig>;
pub(in crate::config) type Domains = BTreeMap<String, DomainConfig>;

const GATEWAY_KEYS: &str = "addresses, mac";
const DOMAIN_KEYS: &str = "strict, interfaces";
const IFACE_KEYS: &str = "tap, gateway, addresses, route_protocol, table, tap_mode, rp_filter";

impl Cx<'_> {
    pub(in crate::config) fn gateways(&mut self, v: &Spanned<DeValue<'_>>) {
        let Some(t) = self.table(v, "gateways") else {
            return;
        };
        for (k, gv) in t.iter() {
            let name: &str = k.get_ref();
            let path = format!("gateways.{}", key_repr(name));
            if let Some(p) = ifname_problem(name) {
                self.err(
                    k.span(),
                    &path,
                    format!("{name:?} is not a valid interface name for the gateway device: {p}"),
                );
                continue;
            }
            if let Some(g) = self.gateway(name, gv, &path) {
                self.routed.gateways.insert(name.to_string(), (g, k.span()));
            }
        }
    }

    fn gateway(
        &mut self,
        name: &str,
        v: &Spanned<DeValue<'_>>,
        path: &str,
    ) -> Option<GatewayConfig> {
        let t = self.table(v, path)?;
        let before = self.errors.len();
        let mut addresses = None;
        let mut mac = None;
        for (k, val) in t.iter() {
            let key: &str = k.get_ref();
            let kpath = format!("{path}.{}", key_repr(key));
            match key {
                "addresses" => {
                    let list = self.addresses(val, &kpath, |s| {
                        let a = parse_host_address(s)?;
                        if a.addr().is_ipv6() {
                            return Err(format!(
                                "{s:?}: IPv6 gateways are not supported on the gateway device (the kernel answers a neighbour solicitation only for addresses of the receiving interface); a VM's IPv6 gateway is its tap's link-local address"
                            ));
                        }
                        Ok(a)
                    });
                    if list.as_ref().is_some_and(Vec::is_empty) {
                        self.err(
                            val.span(),
                            &kpath,
                            "is empty; list the gateway's address, like [\"172.31.16.1/24\"]",
                        );
                    }
                    addresses = list;
                }
                "mac" => match val.get_ref().as_str().map(str::parse::<Mac>) {
                    Some(Ok(m)) if m.0[..3] == [0x52, 0x54, 0x00] => mac = Some(m),
                    Some(Ok(m)) => self.err(
                        val.span(),
                        &kpath,
                        format!("{m} is not in libvirt's format 52:54:00:xx:xx:xx"),
                    ),
                    _ => self.err(
                        val.span(),
                        &kpath,
                        "expected a MAC address like \"52:54:00:12:34:56\"",
                    ),
                },
                _ => self.err(
                    k.span(),
                    &kpath,
                    format!("unknown key (expected: {GATEWAY_KEYS})"),
                ),
            }
        }
        if addresses.is_none() && self.errors.len() == before {
            self.err(
                v.span(),
                path,
                "missing key `addresses` (the gateway's address, like [\"172.31.16.1/24\"])",
            );
        }
        if self.errors.len() != before {
            return None;
        }
        Some(GatewayConfig {
            name: name.to_string(),
            addresses: addresses?,
            mac,
        })
    }

    pub(in crate::config) fn domains(&mut self, v: &Spanned<DeValue<'_>>) {
        let Some(t) = self.table(v, "domains") else {
            return;
        };
        for (k, dv) in t.iter() {
            let name: &str = k.get_ref();
            if self.only_domain.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            let path = format!("domains.{}", key_repr(name));
            if let Some(p) = network_name_problem(name) {
                self.err(k.span(), &path, p.replace("network", "domain"));
                continue;
            }
            if let Some(d) = self.domain(name, dv, &path) {
                self.routed.domains.insert(name.to_string(), d);
            }
        }
    }

    fn domain(
        &mut self,
        name: &str,
        v: &Spanned<DeValue<'_>>,
        path: &str,
    ) -> Option<(DomainConfig, Vec<Range<usize>>)> {
        let t = self.table(v, path)?;
        let before = self.errors.len();
        let mut d = DomainConfig {
            name: name.to_string(),
            strict: false,
            interfaces: Vec::new(),
        };
        let mut spans = Vec::new();
        let mut saw = false;
        for (k, val) in t.iter() {
            let key: &str = k.get_ref();
            let kpath = format!("{path}.{}", key_repr(key));
            match key {
                "strict" => {
                    if let Some(b) = self.boolean(val, &kpath) {
                        d.strict = b;
                    }
                }
                "interfaces" => {
                    saw = true;
                    let Some(items) = self.array_of_tables(val, &kpath) else {
                        continue;
                    };
                    if items.is_empty() {
                        self.err(
                            val.span(),
                            &kpath,
                            "is empty; add an [[...interfaces]] table",
                        );
                    }
                    for (i, item) in items.iter().enumerate() {
                        if let Some(iface) = self.interface(item, &format!("{kpath}[{i}]")) {
                            d.interfaces.push(iface);
                            spans.push(item.span());
                        }
                    }
                }
                _ => self.err(
                    k.span(),
                    &kpath,
                    format!("unknown key (expected: {DOMAIN_KEYS})"),
                ),
            }
        }
        if !saw && self.errors.len() == before {
            self.err(
                v.span(),
                path,
                "missing key `interfaces` (add a [[...interfaces]] table)",
            );
        }
        (self.errors.len() == before).then_some((d, spans))
    }

    fn interface(&mut self, v: &Spanned<DeValue<'_>>, path: &str) -> Option<RoutedInterface> {
        let t = self.table(v, path)?;
        let before = self.errors.len();
        let (mut tap, mut gateway, mut addresses) = (None, None, None);
        let mut i = RoutedInterface {
            tap: String::new(),
            gateway: String::new(),
            addresses: Vec::new(),
            route_protocol: DEFAULT_ROUTE_PROTOCOL,
            table: MAIN_TABLE,
            tap_mode: TapMode::Libvirt,
            rp_filter: 1,
        };
        for (k, val) in t.iter() {
            let key: &str = k.get_ref();
            let kpath = format!("{path}.{}", key_repr(key));
            match key {
                "tap" | "gateway" => match val.get_ref().as_str() {
                    Some(s) => match ifname_problem(s).or_else(|| tap_name_problem(s)) {
                        None if key == "tap" => tap = Some(s.to_string()),
                        None => gateway = Some(s.to_string()),
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
                "addresses" => {
                    let list = self.addresses(val, &kpath, vm_address);
                    if list.as_ref().is_some_and(Vec::is_empty) {
                        self.err(val.span(), &kpath, "is empty; list the VM's addresses, like [\"172.31.16.10/32\"]");
                    }
                    addresses = list;
                }
                "route_protocol" => match self.int(val, &kpath) {
                    Some(n) if (5..=255).contains(&n) && n != 12 => i.route_protocol = n as u8,
                    Some(n) => self.err(
                        val.span(),
                        &kpath,
                        format!("{n} is not usable: pick 5-255 (0-4 are the kernel's, 12 is BIRD's own)"),
                    ),
                    None => {}
                },
                "table" => match self.int(val, &kpath) {
                    Some(n) if (1..=i64::from(u32::MAX)).contains(&n) && n != 255 => {
                        i.table = n as u32
                    }
                    Some(n) => self.err(
                        val.span(),
                        &kpath,
                        format!("{n} is not a usable routing table (1-4294967295, not 255: local)"),
                    ),
                    None => {}
                },
                "tap_mode" => match val.get_ref().as_str() {
                    Some("libvirt") => i.tap_mode = TapMode::Libvirt,
                    Some("precreated") => i.tap_mode = TapMode::Precreated,
                    _ => self.err(
                        val.span(),
                        &kpath,
                        "expected \"libvirt\" (libvirt creates the tap) or \"precreated\" (net-hook does; the domain says managed='no')",
                    ),
                },
                "rp_filter" => match self.int(val, &kpath) {
                    Some(n) if (0..=2).contains(&n) => i.rp_filter = n as u8,
                    Some(n) => self.err(
                        val.span(),
                        &kpath,
                        format!("{n} is not an rp_filter value (0 off, 1 strict, 2 loose)"),
                    ),
                    None => {}
                },
                _ => self.err(
                    k.span(),
                    &kpath,
                    format!("unknown key (expected: {IFACE_KEYS})"),
                ),
            }
        }
        for (missing, what) in [
            (
                tap.is_none(),
                "`tap` (the <target dev> of the domain's interface)",
            ),
            (gateway.is_none(), "`gateway` (a [gateways.NAME] device)"),
            (
                addresses.is_none(),
                "`addresses` (the VM's addresses, like [\"172.31.16.10/32\"])",
            ),
        ] {
            if missing && self.errors.len() == before {
                self.err(v.span(), path, format!("missing key {what}"));
            }
        }
        if self.errors.len() != before {
            return None;
        }
        i.tap = tap?;
        i.gateway = gateway?;
        i.addresses = addresses?;
        Some(i)
    }

    /// An array of strings, each judged by `parse`.
    fn addresses(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        path: &str,
        parse: impl Fn(&str) -> Result<IpNet, String>,
    ) -> Option<Vec<IpNet>> {
        let Some(items) = v.get_ref().as_array() else {
            self.err(v.span(), path, "expected an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{n}]");
            match item.get_ref().as_str() {
                Some(s) => match parse(s) {
                    Ok(a) => out.push(a),
                    Err(m) => self.err(item.span(), &ipath, m),
                },
                None => self.err(
                    item.span(),
                    &ipath,
                    format!("expected a string, found {}", item.get_ref().type_str()),
                ),
            }
        }
        Some(out)
    }

    pub(in crate::config) fn take_routed(&mut self) -> (Gateways, Domains) {
        let w = std::mem::take(&mut self.routed);
        (
            w.gateways.into_iter().map(|(k, (g, _))| (k, g)).collect(),
            w.domains.into_iter().map(|(k, (d, _))| (k, d)).collect(),
        )
    }

    /// Names and addresses used once across gateways, domains and VLANs;
    /// every interface names a configured gateway.
    pub(in crate::config) fn check_routed(
        &mut self,
        networks: &BTreeMap<String, NetworkConfig>,
        gateways: &Gateways,
        domains: &Domains,
    ) {
        let mut names: HashMap<String, String> = HashMap::new();
        let mut addrs: HashMap<IpAddr, String> = HashMap::new();
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut vlan_prefixes: Vec<(IpNet, String)> = Vec::new();
        for (net, cfg) in networks {
            for v in &cfg.vlans {
                if let Some(n) = &v.name {
                    names.insert(n.clone(), format!("network {net}'s VLAN {}", v.id));
                }
                for a in &v.addresses {
                    addrs.insert(a.addr(), format!("network {net}'s VLAN {}", v.id));
                    vlan_prefixes.push((a.trunc(), format!("network {net}'s VLAN {}", v.id)));
                }
            }
        }
        let mut macs: HashMap<Mac, String> = HashMap::new();
        for (g, cfg) in gateways {
            let here = format!("gateways.{}", key_repr(g));
            if let Some(m) = cfg.mac
                && let Some(prev) = macs.insert(m, g.clone())
            {
                problems.push((
                    format!("{here}.mac"),
                    format!("mac {m} is also gateway {prev}'s"),
                ));
            }
            if let Some(prev) = names.insert(g.clone(), format!("gateway {g}")) {
                problems.push((here.clone(), format!("interface {g} is also {prev}")));
            }
            for a in &cfg.addresses {
                if let Some(prev) = addrs.insert(a.addr(), format!("gateway {g}")) {
                    problems.push((
                        here.clone(),
                        format!("address {} is also configured for {prev}", a.addr()),
                    ));
                }
                for (p, who) in vlan_prefixes
                    .iter()
                    .filter(|(p, _)| overlaps(p, &a.trunc()))
                {
                    problems.push((
                        here.clone(),
                        format!("prefix {} overlaps {p} of {who}", a.trunc()),
                    ));
                }
            }
        }
        for (d, cfg) in domains {
            for (n, i) in cfg.interfaces.iter().enumerate() {
                let here = format!("domains.{}.interfaces[{n}]", key_repr(d));
                let me = format!("domain {d}'s interface {}", i.tap);
                if !gateways.contains_key(&i.gateway) {
                    problems.push((
                        format!("{here}.gateway"),
                        format!(
                            "no gateway {:?} is configured; add a [gateways.{}] table",
                            i.gateway,
                            key_repr(&i.gateway)
                        ),
                    ));
                }
                if let Some(prev) = names.insert(i.tap.clone(), me.clone()) {
                    problems.push((
                        format!("{here}.tap"),
                        format!("interface {} is also {prev}", i.tap),
                    ));
                }
                for a in &i.addresses {
                    if let Some(prev) = addrs.insert(a.addr(), me.clone()) {
                        problems.push((
                            format!("{here}.addresses"),
                            format!("address {} is also configured for {prev}", a.addr()),
                        ));
                    }
                    for (p, who) in vlan_prefixes.iter().filter(|(p, _)| p.contains(&a.addr())) {
                        problems.push((
                            format!("{here}.addresses"),
                            format!("{a} is inside {p} of {who}"),
                        ));
                    }
                }
            }
        }
        for (key, msg) in problems {
            let offset = header_offset(self.text, &key);
            self.err(offset..offset, &key, msg);
        }
    }
}

/// What libvirt or a domain's XML cannot take in a tap's name: libvirt
/// treats `vnet*`, `macvtap*` and `macvlan*` as names it generates, and the
/// name goes into XML (`net-hook routed xml`).
fn tap_name_problem(name: &str) -> Option<&'static str> {
    if ["vnet", "macvtap", "macvlan"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        Some("starts with vnet, macvtap or macvlan, which libvirt reserves for names it generates")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("use letters, digits, '-', '_' and '.' only")
    } else {
        None
    }
}

/// A VM address to route: a host address as a /32 or /128.
fn vm_address(s: &str) -> Result<IpNet, String> {
    let a = parse_host_address(s)?;
    if a.prefix_len() != a.max_prefix_len() {
        let host = IpNet::new(a.addr(), a.max_prefix_len()).map_err(|e| e.to_string())?;
        return Err(format!(
            "{s:?}: a routed VM address is one host, routed on its own; write {host}"
        ));
    }
    Ok(a)
}

/// Where the table a key belongs to starts, for the error's line.
fn header_offset(text: &str, key: &str) -> usize {
    let mut parts = key.splitn(3, '.');
    let (Some(kind), Some(name)) = (parts.next(), parts.next()) else {
        return 0;
    };
    let name = name.split('[').next().unwrap_or(name);
    text.find(&format!("{kind}.{name}"))
        .or_else(|| text.find(name))
        .unwrap_or(0)
}
