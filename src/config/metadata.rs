//! A network's config carried in its own libvirt definition: one element in
//! net-hook's namespace inside `<metadata>`, which libvirt keeps and passes
//! to the hook on stdin with the rest of the network XML.
//!
//! ```xml
//! <metadata>
//!   <nh:net-hook xmlns:nh="urn:net-hook:network:1" strict="no" firewalld-zone="libvirt">
//!     <nh:vlan id="104" name="virbr1.104" mtu="1500">
//!       <nh:address>10.12.8.1/22</nh:address>
//!     </nh:vlan>
//!     <nh:unnat backend="auto">
//!       <nh:destination>10.12.8.0/22</nh:destination>
//!       <nh:source>10.12.4.0/22</nh:source>
//!     </nh:unnat>
//!   </nh:net-hook>
//! </metadata>
//! ```
//!
//! Children may also be unqualified (`<vlan>`): `virsh net-metadata --set`
//! puts only the top element in the namespace.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::rules::{ifname_problem, parse_host_address};
use super::{BackendChoice, NetworkConfig, Unnat, VlanConfig};

/// The namespace; its last part is the schema's version.
pub const NAMESPACE: &str = "urn:net-hook:network:1";
pub const ELEMENT: &str = "net-hook";

/// One problem in the metadata form, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaError {
    pub network: String,
    /// XPath-like, relative to the net-hook element: `vlan[1]/@id`.
    pub path: String,
    pub msg: String,
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "network {:?}: <metadata> <{ELEMENT} xmlns=\"{NAMESPACE}\">",
            self.network
        )?;
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        write!(f, ": {}", self.msg)
    }
}

/// Cheap test before any parsing: false means the XML cannot carry
/// net-hook's element.
pub fn may_carry(xml: &[u8]) -> bool {
    memchr::memmem::find(xml, NAMESPACE.as_bytes()).is_some()
}

type Attrs = Vec<(String, String)>;

/// What the element says, before validation.
#[derive(Default)]
struct Raw {
    attrs: Attrs,
    /// (attributes, addresses) per vlan.
    vlans: Vec<(Attrs, Vec<String>)>,
    /// (attributes, destinations, sources).
    unnat: Option<(Attrs, Vec<String>, Vec<String>)>,
    /// (path, message) found while reading.
    errors: Vec<(String, String)>,
}

/// The network's config from its `<metadata>`, `Ok(None)` when it has no
/// net-hook element. `xml`: the hook's stdin or `virsh net-dumpxml`.
pub fn parse(xml: &str, network: &str) -> Result<Option<NetworkConfig>, Vec<MetaError>> {
    let err = |path: &str, msg: String| MetaError {
        network: network.into(),
        path: path.into(),
        msg,
    };
    let raw = match read(xml) {
        Ok(None) => return Ok(None),
        Ok(Some(r)) => r,
        Err(msg) => return Err(vec![err("", msg)]),
    };
    let mut v = Validator {
        errors: raw.errors.iter().map(|(p, m)| err(p, m.clone())).collect(),
        network,
    };
    let net = v.network(&raw);
    if v.errors.is_empty() {
        Ok(net)
    } else {
        Err(v.errors)
    }
}

fn local(name: &str) -> String {
    name.to_string()
}

fn attrs(e: &BytesStart, path: &str, errors: &mut Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in e.attributes() {
        match a {
            Ok(a) => {
                let key = local(a.key.local_name().as_ref());
                if a.key.prefix().is_some_and(|p| p.as_ref() == "xmlns") || key == "xmlns" {
                    continue;
                }
                match a.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                    Ok(v) => out.push((key, v.into_owned())),
                    Err(e) => errors.push((format!("{path}/@{key}"), format!("bad value: {e}"))),
                }
            }
            Err(e) => errors.push((path.to_string(), format!("bad attribute: {e}"))),
        }
    }
    out
}

/// The element being read one level inside ours.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cur {
    Vlan,
    Unnat,
    Other,
}

/// Finds net-hook's element under `<network><metadata>` and collects it.
fn read(xml: &str) -> Result<Option<Raw>, String> {
    let mut r = quick_xml::reader::NsReader::from_str(xml);
    // Local names from the root; `ours`: the depth of our element.
    let mut stack: Vec<String> = Vec::new();
    let mut ours: Option<usize> = None;
    let mut cur = Cur::Other;
    let mut raw = Raw::default();
    let mut found = false;
    let mut text = String::new();
    loop {
        let (ns, ev) = r
            .read_resolved_event()
            .map_err(|e| format!("the network XML is not well-formed: {e}"))?;
        let in_ns = match ns {
            ResolveResult::Bound(n) => n.as_ref() == NAMESPACE,
            // `virsh net-metadata --set` leaves children unqualified.
            ResolveResult::Unbound => ours.is_some(),
            ResolveResult::Unknown(_) => false,
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = local(e.local_name().as_ref());
                let depth = stack.len();
                match ours {
                    None => {
                        let under_metadata = depth >= 2
                            && stack[depth - 1] == "metadata"
                            && stack[depth - 2] == "network";
                        if in_ns && name == ELEMENT && under_metadata {
                            if found {
                                raw.errors.push((
                                    String::new(),
                                    "appears twice; libvirt keeps one element per namespace".into(),
                                ));
                            }
                            found = true;
                            raw.attrs = attrs(e, "", &mut raw.errors);
                            if !empty {
                                ours = Some(depth);
                            }
                        }
                    }
                    Some(top) => {
                        let rel = depth - top;
                        if rel == 1 {
                            cur = Cur::Other;
                        }
                        child(&mut raw, e, &name, rel, in_ns, &mut cur);
                    }
                }
                text.clear();
                if !empty {
                    stack.push(name);
                }
            }
            Event::Text(t) if ours.is_some() => text.push_str(&t),
            Event::CData(t) if ours.is_some() => text.push_str(&t),
            Event::GeneralRef(g) if ours.is_some() => match local(&g).as_str() {
                "lt" => text.push('<'),
                "gt" => text.push('>'),
                "amp" => text.push('&'),
                "apos" => text.push('\''),
                "quot" => text.push('"'),
                other => raw
                    .errors
                    .push((String::new(), format!("unknown entity &{other};"))),
            },
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if let Some(top) = ours {
                    let depth = stack.len();
                    if depth == top {
                        ours = None;
                    } else if depth == top + 2 {
                        leaf_text(&mut raw, cur, &name, text.trim());
                    }
                }
                text.clear();
            }
            Event::Eof if ours.is_some() => {
                return Err("the network XML ends inside net-hook's element".into());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(found.then_some(raw))
}

/// An element inside ours, `rel` levels down (1: vlan or unnat, 2: their
/// children).
fn child(raw: &mut Raw, e: &BytesStart, name: &str, rel: usize, in_ns: bool, cur: &mut Cur) {
    if !in_ns {
        raw.errors.push((
            name.into(),
            "an element of another namespace inside net-hook's".into(),
        ));
        return;
    }
    match (rel, name, *cur) {
        (1, "vlan", _) => {
            let path = format!("vlan[{}]", raw.vlans.len() + 1);
            let a = attrs(e, &path, &mut raw.errors);
            raw.vlans.push((a, vec![]));
            *cur = Cur::Vlan;
        }
        (1, "unnat", _) => {
            if raw.unnat.is_some() {
                raw.errors
                    .push(("unnat".into(), "appears twice; give one <unnat>".into()));
            }
            let a = attrs(e, "unnat", &mut raw.errors);
            raw.unnat = Some((a, vec![], vec![]));
            *cur = Cur::Unnat;
        }
        (1, other, _) => raw.errors.push((
            other.into(),
            "unknown element (expected: vlan, unnat)".into(),
        )),
        (2, "address", Cur::Vlan) | (2, "destination" | "source", Cur::Unnat) => {}
        (2, other, Cur::Vlan) => raw.errors.push((
            format!("vlan[{}]/{other}", raw.vlans.len()),
            "unknown element (expected: address)".into(),
        )),
        (2, other, Cur::Unnat) => raw.errors.push((
            format!("unnat/{other}"),
            "unknown element (expected: destination, source)".into(),
        )),
        (_, _, Cur::Other) => {}
        (_, other, _) => raw.errors.push((other.into(), "nested too deep".into())),
    }
}

fn leaf_text(raw: &mut Raw, cur: Cur, name: &str, text: &str) {
    match (cur, name) {
        (Cur::Vlan, "address") => {
            if let Some(v) = raw.vlans.last_mut() {
                v.1.push(text.to_string());
            }
        }
        (Cur::Unnat, "destination") => {
            if let Some(u) = raw.unnat.as_mut() {
                u.1.push(text.to_string());
            }
        }
        (Cur::Unnat, "source") => {
            if let Some(u) = raw.unnat.as_mut() {
                u.2.push(text.to_string());
            }
        }
        _ => {}
    }
}

struct Validator<'a> {
    errors: Vec<MetaError>,
    network: &'a str,
}

impl Validator<'_> {
    fn err(&mut self, path: String, msg: impl Into<String>) {
        self.errors.push(MetaError {
            network: self.network.into(),
            path,
            msg: msg.into(),
        });
    }

    fn network(&mut self, raw: &Raw) -> Option<NetworkConfig> {
        let mut net = NetworkConfig {
            name: self.network.into(),
            strict: false,
            vlans: vec![],
            unnat: None,
            firewalld_zone: None,
        };
        for (k, v) in &raw.attrs {
            match k.as_str() {
                "strict" => match v.as_str() {
                    "yes" => net.strict = true,
                    "no" => net.strict = false,
                    _ => self.err(
                        "@strict".into(),
                        format!("{v:?}: expected \"yes\" or \"no\""),
                    ),
                },
                "firewalld-zone" => {
                    if !v.is_empty()
                        && v.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        net.firewalld_zone = Some(v.clone());
                    } else {
                        self.err(
                            "@firewalld-zone".into(),
                            format!("{v:?}: expected a firewalld zone name like \"libvirt\""),
                        );
                    }
                }
                other => self.err(
                    format!("@{other}"),
                    "unknown attribute (expected: strict, firewalld-zone)",
                ),
            }
        }
        for (i, (attrs, addrs)) in raw.vlans.iter().enumerate() {
            if let Some(v) = self.vlan(&format!("vlan[{}]", i + 1), attrs, addrs) {
                net.vlans.push(v);
            }
        }
        self.duplicates(&net.vlans);
        if let Some((attrs, dst, src)) = &raw.unnat {
            net.unnat = self.unnat(attrs, dst, src);
        }
        if raw.vlans.is_empty() && raw.unnat.is_none() {
            self.err(
                String::new(),
                "has neither <vlan> nor <unnat>: add a <vlan id=\"...\">",
            );
        }
        Some(net)
    }

    fn int(
        &mut self,
        path: String,
        v: &str,
        range: std::ops::RangeInclusive<u32>,
        what: &str,
    ) -> Option<u32> {
        match v.trim().parse::<u32>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.err(
                    path,
                    format!("{v:?} is not {what} ({}-{})", range.start(), range.end()),
                );
                None
            }
        }
    }

    fn vlan(
        &mut self,
        path: &str,
        attrs: &[(String, String)],
        addrs: &[String],
    ) -> Option<VlanConfig> {
        let before = self.errors.len();
        let (mut id, mut name, mut mtu) = (None, None, None);
        for (k, v) in attrs {
            let p = format!("{path}/@{k}");
            match k.as_str() {
                "id" => id = self.int(p, v, 1..=4094, "a VLAN ID").map(|n| n as u16),
                "mtu" => mtu = self.int(p, v, 68..=65535, "a valid MTU"),
                "name" => match ifname_problem(v) {
                    None => name = Some(v.clone()),
                    Some(why) => self.err(p, format!("{v:?} is not a valid interface name: {why}")),
                },
                other => self.err(
                    p,
                    format!("unknown attribute {other:?} (expected: id, name, mtu)"),
                ),
            }
        }
        if id.is_none() && !attrs.iter().any(|(k, _)| k == "id") {
            self.err(path.into(), "missing attribute id (the VLAN ID, 1-4094)");
        }
        let mut addresses = Vec::new();
        for (i, a) in addrs.iter().enumerate() {
            match parse_host_address(a) {
                Ok(n) => addresses.push(n),
                Err(m) => self.err(format!("{path}/address[{}]", i + 1), m),
            }
        }
        if let Some(m) = mtu
            && m < 1280
            && addresses.iter().any(|a| matches!(a, IpNet::V6(_)))
        {
            self.err(
                format!("{path}/@mtu"),
                format!("{m} is below 1280, the IPv6 minimum, but the VLAN has IPv6 addresses"),
            );
        }
        if self.errors.len() != before {
            return None;
        }
        Some(VlanConfig {
            id: id?,
            name,
            addresses,
            mtu,
        })
    }

    fn duplicates(&mut self, vlans: &[VlanConfig]) {
        let mut vids = HashMap::new();
        let mut names = HashMap::new();
        let mut addrs: HashMap<IpAddr, usize> = HashMap::new();
        for (i, v) in vlans.iter().enumerate() {
            let path = format!("vlan[{}]", i + 1);
            if let Some(prev) = vids.insert(v.id, i + 1) {
                self.err(
                    format!("{path}/@id"),
                    format!("VLAN {} is already configured at vlan[{prev}]", v.id),
                );
            }
            if let Some(n) = &v.name
                && let Some(prev) = names.insert(n.clone(), i + 1)
            {
                self.err(
                    format!("{path}/@name"),
                    format!("interface {n} is already configured at vlan[{prev}]"),
                );
            }
            for (j, a) in v.addresses.iter().enumerate() {
                if let Some(prev) = addrs.insert(a.addr(), i + 1) {
                    self.err(
                        format!("{path}/address[{}]", j + 1),
                        format!("address {} is already configured at vlan[{prev}]", a.addr()),
                    );
                }
            }
        }
    }

    fn prefixes(&mut self, path: &str, items: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, s) in items.iter().enumerate() {
            let p = format!("unnat/{path}[{}]", i + 1);
            match s.parse::<IpNet>() {
                Ok(n) if n == n.trunc() => out.push(n),
                Ok(n) => self.err(
                    p,
                    format!("{s:?} is a host address; write the prefix {}", n.trunc()),
                ),
                Err(_) => self.err(
                    p,
                    format!("{s:?} is not a prefix like \"10.12.8.0/22\" or \"fd00:12:8::/64\""),
                ),
            }
        }
        out
    }

    fn unnat(
        &mut self,
        attrs: &[(String, String)],
        dst: &[String],
        src: &[String],
    ) -> Option<Unnat> {
        let before = self.errors.len();
        let mut backend = BackendChoice::Auto;
        for (k, v) in attrs {
            match (k.as_str(), v.as_str()) {
                ("backend", "auto") => backend = BackendChoice::Auto,
                ("backend", "iptables") => backend = BackendChoice::Iptables,
                ("backend", "nftables") => backend = BackendChoice::Nftables,
                ("backend", _) => self.err(
                    "unnat/@backend".into(),
                    format!("{v:?}: expected \"auto\", \"iptables\" or \"nftables\""),
                ),
                (other, _) => self.err(
                    format!("unnat/@{other}"),
                    "unknown attribute (expected: backend)",
                ),
            }
        }
        let destinations = self.prefixes("destination", dst);
        let sources = self.prefixes("source", src);
        if dst.is_empty() {
            self.err(
                "unnat".into(),
                "has no <destination>: list at least one prefix, like 10.12.8.0/22",
            );
        }
        for s in &sources {
            for d in destinations.iter().filter(|d| crate::model::overlaps(s, d)) {
                self.err("unnat/source".into(), format!("{s} overlaps destination {d}: traffic within one prefix is never masqueraded anyway"));
            }
        }
        (self.errors.len() == before).then(|| Unnat {
            destinations,
            sources: (!src.is_empty()).then_some(sources),
            backend,
        })
    }
}

/// The metadata element for `net`, to paste into `virsh net-edit` or to
/// pass to `virsh net-metadata`.
pub fn to_xml(net: &NetworkConfig) -> String {
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let mut s = format!("<nh:{ELEMENT} xmlns:nh=\"{NAMESPACE}\"");
    if net.strict {
        s.push_str(" strict=\"yes\"");
    }
    if let Some(z) = &net.firewalld_zone {
        s.push_str(&format!(" firewalld-zone=\"{}\"", esc(z)));
    }
    s.push_str(">\n");
    for v in &net.vlans {
        s.push_str(&format!("  <nh:vlan id=\"{}\"", v.id));
        if let Some(n) = &v.name {
            s.push_str(&format!(" name=\"{}\"", esc(n)));
        }
        if let Some(m) = v.mtu {
            s.push_str(&format!(" mtu=\"{m}\""));
        }
        if v.addresses.is_empty() {
            s.push_str("/>\n");
            continue;
        }
        s.push_str(">\n");
        for a in &v.addresses {
            s.push_str(&format!("    <nh:address>{a}</nh:address>\n"));
        }
        s.push_str("  </nh:vlan>\n");
    }
    if let Some(u) = &net.unnat {
        let backend = match u.backend {
            BackendChoice::Auto => "",
            BackendChoice::Iptables => " backend=\"iptables\"",
            BackendChoice::Nftables => " backend=\"nftables\"",
        };
        s.push_str(&format!("  <nh:unnat{backend}>\n"));
        for d in &u.destinations {
            s.push_str(&format!("    <nh:destination>{d}</nh:destination>\n"));
        }
        for src in u.sources.iter().flatten() {
            s.push_str(&format!("    <nh:source>{src}</nh:source>\n"));
        }
        s.push_str("  </nh:unnat>\n");
    }
    s.push_str(&format!("</nh:{ELEMENT}>\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(inner: &str) -> String {
        format!(
            "<hookData><network><name>1_provider</name><metadata>{inner}</metadata>\
             <forward mode='nat'/><bridge name='virbr1'/></network></hookData>"
        )
    }

    const FULL: &str = r#"<nh:net-hook xmlns:nh="urn:net-hook:network:1" strict="yes" firewalld-zone="trusted">
        <nh:vlan id="104"><nh:address>10.12.8.1/22</nh:address><nh:address>fd00:12:8::1/64</nh:address></nh:vlan>
        <nh:vlan id="105" name="vip105" mtu="1400"/>
        <nh:unnat backend="nftables"><nh:destination>10.12.8.0/22</nh:destination><nh:source>10.12.4.0/22</nh:source></nh:unnat>
      </nh:net-hook>"#;

    fn errors(inner: &str) -> Vec<String> {
        parse(&wrap(inner), "1_provider")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_full_form_parses_and_round_trips_through_export() {
        let net = parse(&wrap(FULL), "1_provider").unwrap().unwrap();
        assert!(net.strict);
        assert_eq!(net.zone(), "trusted");
        assert_eq!(net.vlans.len(), 2);
        assert_eq!(net.vlans[0].addresses.len(), 2);
        assert_eq!(
            (net.vlans[1].name.as_deref(), net.vlans[1].mtu),
            (Some("vip105"), Some(1400))
        );
        let u = net.unnat.as_ref().unwrap();
        assert_eq!(u.backend, BackendChoice::Nftables);
        assert_eq!(u.sources.as_ref().unwrap().len(), 1);
        let again = parse(&wrap(&to_xml(&net)), "1_provider").unwrap().unwrap();
        assert_eq!(again, net);
    }

    #[test]
    fn unqualified_children_as_virsh_net_metadata_leaves_them() {
        let inner = r#"<k:net-hook xmlns:k="urn:net-hook:network:1"><vlan id="104"><address>10.12.8.1/22</address></vlan></k:net-hook>"#;
        let net = parse(&wrap(inner), "1_provider").unwrap().unwrap();
        assert_eq!(net.vlans[0].id, 104);
        assert!(!net.strict);
        // A default namespace works too.
        let inner = r#"<net-hook xmlns="urn:net-hook:network:1"><vlan id="7"/></net-hook>"#;
        assert_eq!(
            parse(&wrap(inner), "1_provider").unwrap().unwrap().vlans[0].id,
            7
        );
    }

    #[test]
    fn other_namespaces_and_places_are_not_ours() {
        // The recorded libvirt 9.0 network with a foreign metadata element.
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/hookdata/libvirt-9.0/test-metadata_started_begin.xml");
        let xml = std::fs::read_to_string(p).unwrap();
        assert!(!may_carry(xml.as_bytes()));
        assert_eq!(parse(&xml, "test-metadata").unwrap(), None);
        // Our namespace outside <metadata> (e.g. in a description) is ignored.
        let xml = "<network><name>n</name><description>urn:net-hook:network:1</description>\
                   <x:net-hook xmlns:x='urn:net-hook:network:1'><x:vlan id='1'/></x:net-hook></network>";
        assert!(may_carry(xml.as_bytes()));
        assert_eq!(parse(xml, "n").unwrap(), None);
        // Another version of the schema is another namespace.
        let inner =
            r#"<nh:net-hook xmlns:nh="urn:net-hook:network:2"><nh:vlan id="1"/></nh:net-hook>"#;
        assert_eq!(parse(&wrap(inner), "1_provider").unwrap(), None);
    }

    #[test]
    fn every_error_names_the_network_and_the_element_or_attribute() {
        let e = |body: &str| {
            errors(&format!(
                r#"<nh:net-hook xmlns:nh="urn:net-hook:network:1">{body}</nh:net-hook>"#
            ))
        };
        let cases: &[(&str, &str)] = &[
            (
                r#"<nh:vlan id="4095"/>"#,
                r#"vlan[1]/@id: "4095" is not a VLAN ID (1-4094)"#,
            ),
            (r#"<nh:vlan id="x"/>"#, "vlan[1]/@id"),
            (r#"<nh:vlan/>"#, "vlan[1]: missing attribute id"),
            (r#"<nh:vlan id="1" mtu="9"/>"#, "vlan[1]/@mtu"),
            (r#"<nh:vlan id="1" name="a/b"/>"#, "vlan[1]/@name"),
            (
                r#"<nh:vlan id="1" colour="red"/>"#,
                "vlan[1]/@colour: unknown attribute",
            ),
            (
                r#"<nh:vlan id="1"><nh:address>10.12.8.0/22</nh:address></nh:vlan>"#,
                "vlan[1]/address[1]: \"10.12.8.0/22\" is the network address",
            ),
            (
                r#"<nh:vlan id="1"><nh:address>10.12.8.1</nh:address></nh:vlan>"#,
                "no prefix length",
            ),
            (
                r#"<nh:vlan id="1" mtu="1200"><nh:address>fd00::1/64</nh:address></nh:vlan>"#,
                "below 1280",
            ),
            (
                r#"<nh:vlan id="1"/><nh:vlan id="1"/>"#,
                "vlan[2]/@id: VLAN 1 is already configured at vlan[1]",
            ),
            (
                r#"<nh:vlan id="1"><nh:addr>10.0.0.1/8</nh:addr></nh:vlan>"#,
                "vlan[1]/addr: unknown element",
            ),
            (r#"<nh:bridge/>"#, "bridge: unknown element"),
            (r#"<nh:unnat/>"#, "unnat: has no <destination>"),
            (
                r#"<nh:unnat><nh:destination>10.12.8.1/22</nh:destination></nh:unnat>"#,
                "unnat/destination[1]: \"10.12.8.1/22\" is a host address",
            ),
            (
                r#"<nh:unnat backend="pf"><nh:destination>10.12.8.0/22</nh:destination></nh:unnat>"#,
                "unnat/@backend",
            ),
            (
                r#"<nh:unnat><nh:destination>10.0.0.0/8</nh:destination><nh:source>10.12.4.0/22</nh:source></nh:unnat>"#,
                "overlaps destination",
            ),
            ("", "has neither <vlan> nor <unnat>"),
            (
                r#"<nh:vlan id="1"><x:y xmlns:x="urn:other"/></nh:vlan>"#,
                "another namespace",
            ),
        ];
        for (body, want) in cases {
            let got = e(body);
            assert!(
                got.iter().any(|g| g.starts_with(
                    "network \"1_provider\": <metadata> <net-hook xmlns=\"urn:net-hook:network:1\">"
                ) && g.contains(want)),
                "{body}: want {want:?}, got {got:?}"
            );
        }
        let top = errors(
            r#"<nh:net-hook xmlns:nh="urn:net-hook:network:1" strict="maybe" zone="x"><nh:vlan id="1"/></nh:net-hook>"#,
        );
        assert!(top.iter().any(|g| g.contains("@strict")), "{top:?}");
        assert!(
            top.iter().any(|g| g.contains("@zone: unknown attribute")),
            "{top:?}"
        );
        // Truncated or malformed XML is one error, not a panic.
        for bad in [
            "<network><metadata><nh:net-hook xmlns:nh='urn:net-hook:network:1'>",
            "<network><metadata><nh:net-hook xmlns:nh='urn:net-hook:network:1'><nh:vlan id='1'></nh:unnat>",
        ] {
            let e = parse(bad, "n").unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
        }
    }
}
