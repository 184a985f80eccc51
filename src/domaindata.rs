//! The XML libvirt writes to the qemu hook's stdin: the full live
//! `<domain>` (no `<hookData>` wrapper). Only what routed interfaces need is
//! read: the domain's name and its `<interface type='ethernet'>` devices.

use serde::Deserialize;

use crate::hookdata::{Error, Result};

/// One `<interface type='ethernet'>` of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetInterface {
    /// `<target dev>`: the tap; `None` when libvirt picks a `vnetN` name.
    pub tap: Option<String>,
    /// `<target managed='no'>`: the tap exists before the domain starts and
    /// libvirt leaves it alone.
    pub precreated: bool,
    /// `<mac address>`: the guest's MAC.
    pub mac: Option<String>,
    /// `<model type>`, e.g. "virtio".
    pub model: Option<String>,
    /// `<driver queues>`: more than one needs a multi-queue tap.
    pub queues: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDomain {
    pub name: String,
    pub interfaces: Vec<EthernetInterface>,
}

#[derive(Deserialize)]
struct DomainXml {
    name: Option<String>,
    devices: Option<DevicesXml>,
}

#[derive(Deserialize)]
struct DevicesXml {
    #[serde(default)]
    interface: Vec<InterfaceXml>,
}

#[derive(Deserialize)]
struct InterfaceXml {
    #[serde(rename = "@type")]
    kind: Option<String>,
    target: Option<TargetXml>,
    mac: Option<ValueXml>,
    model: Option<TypeXml>,
    driver: Option<DriverXml>,
}

#[derive(Deserialize)]
struct TargetXml {
    #[serde(rename = "@dev")]
    dev: Option<String>,
    #[serde(rename = "@managed")]
    managed: Option<String>,
}

#[derive(Deserialize)]
struct ValueXml {
    #[serde(rename = "@address")]
    address: Option<String>,
}

#[derive(Deserialize)]
struct TypeXml {
    #[serde(rename = "@type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct DriverXml {
    #[serde(rename = "@queues")]
    queues: Option<String>,
}

/// Parses the qemu hook's stdin (or `virsh dumpxml`).
pub fn parse(xml: &str) -> Result<HookDomain> {
    let d: DomainXml = quick_xml::de::from_str(xml)
        .map_err(|e| Error::Input(format!("stdin is not libvirt domain XML: {e}")))?;
    let name = d
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::Input("the domain XML has no <name>".into()))?;
    let mut interfaces = Vec::new();
    for i in d.devices.map(|d| d.interface).unwrap_or_default() {
        if i.kind.as_deref() != Some("ethernet") {
            continue;
        }
        let queues = match i.driver.and_then(|d| d.queues) {
            None => 1,
            Some(q) => q.trim().parse().map_err(|_| {
                Error::Input(format!(
                    "domain {name:?}: <driver queues='{q}'> is not a number"
                ))
            })?,
        };
        let (tap, precreated) = match i.target {
            Some(t) => (
                t.dev.filter(|d| !d.is_empty()),
                t.managed.as_deref() == Some("no"),
            ),
            None => (None, false),
        };
        interfaces.push(EthernetInterface {
            tap,
            precreated,
            mac: i.mac.and_then(|m| m.address),
            model: i.model.and_then(|m| m.kind),
            queues,
        });
    }
    Ok(HookDomain { name, interfaces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_interfaces_and_their_taps() {
        let d = parse(
            "<domain type='qemu'><name>routed-demo</name><devices>\
             <interface type='network'><source network='default'/></interface>\
             <interface type='ethernet'><mac address='52:54:00:1e:10:0a'/>\
             <target dev='tap-routed-demo' managed='no'/><model type='virtio'/>\
             <driver queues='2'/></interface>\
             <interface type='ethernet'><mac address='52:54:00:1e:10:0b'/></interface>\
             </devices></domain>",
        )
        .unwrap();
        assert_eq!(d.name, "routed-demo");
        assert_eq!(
            d.interfaces,
            vec![
                EthernetInterface {
                    tap: Some("tap-routed-demo".into()),
                    precreated: true,
                    mac: Some("52:54:00:1e:10:0a".into()),
                    model: Some("virtio".into()),
                    queues: 2,
                },
                EthernetInterface {
                    tap: None,
                    precreated: false,
                    mac: Some("52:54:00:1e:10:0b".into()),
                    model: None,
                    queues: 1,
                },
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "",
            "<domain><devices/></domain>",
            "<domain><name>x</name><devices><interface type='ethernet'><driver queues='many'/></interface></devices></domain>",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
