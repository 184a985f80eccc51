//! `net-hook config check`: validates the whole file and prints what each
//! network will get. Exit status: 0 valid, 1 invalid.

use std::path::Path;

use crate::config::{self, Config};
use crate::error::{Error, Result};

pub fn check(path: &Path) -> u8 {
    let file = path.display().to_string();
    let text = match config::load(path) {
        Ok(config::Loaded::Text {
            text,
            insecure: None,
        }) => text,
        Ok(config::Loaded::Text {
            insecure: Some(e), ..
        }) => {
            eprintln!("net-hook: {e}");
            return 1;
        }
        Ok(config::Loaded::Missing | config::Loaded::NotMentioned) => {
            eprintln!("net-hook: {file} does not exist; the hook manages no network until it does");
            return 1;
        }
        Err(e) => {
            eprintln!("net-hook: {e}");
            return 1;
        }
    };
    if !nix::unistd::geteuid().is_root() {
        // The hook (root) checks ownership; we cannot vouch for it here.
        eprintln!("note: not running as root, so the owner/mode check the hook makes was skipped");
    }
    let cfg = match Config::parse(&text, &file) {
        Ok(c) => c,
        Err(config::Error::Invalid(errors)) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{file}: {} error(s)", errors.len());
            return 1;
        }
        Err(e) => {
            eprintln!("net-hook: {e}");
            return 1;
        }
    };
    println!(
        "{file}: valid, {} network(s), {} domain(s) with routed interfaces, {} gateway(s)",
        cfg.networks.len(),
        cfg.domains.len(),
        cfg.gateways.len()
    );
    if cfg.metadata {
        println!(
            "networks may also carry their config in their libvirt <metadata> ({}); `net-hook status` shows those",
            config::metadata::NAMESPACE
        );
    } else {
        println!(
            "metadata = false: config in libvirt's <metadata> is ignored; only this file counts"
        );
    }
    for net in cfg.networks.values() {
        print_network(net);
    }
    for g in cfg.gateways.values() {
        let addrs: Vec<String> = g.addresses.iter().map(ToString::to_string).collect();
        let mac = g
            .mac
            .map(|m| m.to_string())
            .unwrap_or_else(|| "derived from the machine id".into());
        println!(
            "gateway {}: dummy device, {} (noprefixroute), mac {mac}",
            g.name,
            addrs.join(", ")
        );
    }
    for d in cfg.domains.values() {
        let mode = if d.strict {
            "strict: a failed prepare/started fails the domain's start"
        } else {
            "fail-soft: failures are logged, the domain starts"
        };
        println!("domain {:?} ({mode}):", d.name);
        for i in &d.interfaces {
            let addrs: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
            println!(
                "  {:<15}  via gateway {}, routes {} (proto {}, table {}), tap made by {}",
                i.tap,
                i.gateway,
                addrs.join(", "),
                i.route_protocol,
                i.table,
                match i.tap_mode {
                    config::TapMode::Libvirt => "libvirt",
                    config::TapMode::Precreated => "net-hook (managed='no')",
                }
            );
        }
    }
    0
}

/// What `net` will get, as `config check` shows it.
fn print_network(net: &config::NetworkConfig) {
    let mode = if net.strict {
        "strict: a failure fails the network start"
    } else {
        "fail-soft: failures are logged, the network stays up"
    };
    println!(
        "network {:?} (from this file, {mode}); on started, on its bridge <br>:",
        net.name
    );
    for v in &net.vlans {
        let name = v.name.clone().unwrap_or_else(|| format!("<br>.{}", v.id));
        let addrs: Vec<String> = v.addresses.iter().map(ToString::to_string).collect();
        let mtu = v
            .mtu
            .map(|m| m.to_string())
            .unwrap_or_else(|| "the bridge's".into());
        println!(
            "  VLAN {:>4}  {name:<15}  addresses {}  mtu {mtu}",
            v.id,
            if addrs.is_empty() {
                "none".to_string()
            } else {
                addrs.join(", ")
            }
        );
    }
    if let Some(u) = &net.unnat {
        let src = match &u.sources {
            Some(s) => s
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            None => "the network's own subnets".to_string(),
        };
        let dst: Vec<String> = u.destinations.iter().map(ToString::to_string).collect();
        println!(
            "  unnat: no masquerade from {src} to {} (backend {:?})",
            dst.join(", "),
            u.backend
        );
    }
}

/// `net-hook config export NETWORK`: the file's config of NETWORK as the
/// element for its libvirt `<metadata>`.
pub fn export(path: &Path, network: &str) -> Result<String> {
    let cfg = super::load_config(path)?;
    let net = cfg.networks.get(network).ok_or_else(|| {
        Error::Usage(format!(
            "network {network:?} is not in {}; export prints what the file configures",
            path.display()
        ))
    })?;
    Ok(config::metadata::to_xml(net))
}
