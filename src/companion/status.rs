//! `net-hook status [NETWORK]`: desired versus actual, per configured network.

use serde::Serialize;

use super::{Ctx, NetInfo};
use crate::config::NetworkConfig;
use crate::error::Result;
use crate::model::Observed;
use crate::netlink::{Net, Rtnl};
use crate::plan;
use crate::state::{Outcome, RunDir};

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct VlanStatus {
    pub id: u16,
    pub name: String,
    /// "ok", "missing", "drifted", "foreign" or "conflict".
    pub state: &'static str,
    /// Marked as net-hook's for this network.
    pub owned: bool,
    /// What differs from the config, as the steps that would fix it, or the
    /// problems that stop net-hook.
    pub details: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct NetworkStatus {
    pub network: String,
    /// "ok", "drift", "inactive" or "undefined".
    pub state: &'static str,
    pub active: bool,
    pub bridge: Option<String>,
    pub vlans: Vec<VlanStatus>,
    /// The last hook or command outcome from the run dir.
    pub last: Option<Outcome>,
    /// The un-NAT exemption: `null` when not configured, else "present",
    /// "missing" or "not-applicable" (e.g. not a NAT network).
    pub unnat: Option<&'static str>,
}

/// Compares one network's config with the host (pure).
pub fn compare(
    net: &NetworkConfig,
    info: Option<&NetInfo>,
    obs: &Observed,
    last: Option<Outcome>,
) -> NetworkStatus {
    let mut st = NetworkStatus {
        network: net.name.clone(),
        state: "ok",
        active: info.is_some_and(|i| i.active),
        bridge: info.and_then(|i| i.bridge.clone()),
        vlans: Vec::new(),
        last,
        unnat: None,
    };
    let Some(info) = info else {
        st.state = "undefined";
        return st;
    };
    if !info.active {
        st.state = "inactive";
        return st;
    }
    let bridge = info.bridge.clone().unwrap_or_default();
    for v in super::vlan_views(net, &bridge, obs) {
        let (state, details) = match (v.link, v.plan) {
            (_, Err(problems)) => {
                use plan::Problem as P;
                let state = if problems
                    .iter()
                    .any(|p| matches!(p, P::Foreign { .. } | P::OwnedByOther { .. }))
                {
                    "foreign"
                } else if problems.iter().any(|p| matches!(p, P::Conflict { .. })) {
                    "conflict"
                } else {
                    "missing"
                };
                (state, problems.iter().map(ToString::to_string).collect())
            }
            (None, Ok(_)) => ("missing", vec![]),
            (Some(_), Ok(steps)) if steps.is_empty() => ("ok", vec![]),
            (Some(_), Ok(steps)) => ("drifted", steps.iter().map(ToString::to_string).collect()),
        };
        st.vlans.push(VlanStatus {
            id: v.vlan.id,
            name: v.name,
            state,
            owned: v.owned,
            details,
        });
    }
    if st.vlans.iter().any(|v| v.state != "ok") {
        st.state = "drift";
    }
    st
}

pub fn run(cx: &Ctx, only: Option<&str>) -> Result<Vec<NetworkStatus>> {
    let cfg = super::load_config(cx.config)?;
    if let Some(n) = only {
        super::network_config(&cfg, n, cx.config)?;
    }
    let infos = cx.libvirt.networks()?;
    let obs = Rtnl::open()?.observe()?;
    let rundir = RunDir::new(cx.run_dir);
    Ok(cfg
        .networks
        .values()
        .filter(|n| only.is_none_or(|o| o == n.name))
        .map(|n| {
            let info = infos.iter().find(|i| i.name == n.name);
            let mut st = compare(n, info, &obs, rundir.read(&n.name));
            if let Some(present) = info
                .filter(|i| i.active)
                .and_then(|i| super::unnat_present(n, i))
            {
                st.unnat = Some(match present {
                    Err(_) => "not-applicable",
                    Ok(true) => "present",
                    Ok(false) => {
                        st.state = "drift";
                        "missing"
                    }
                });
            }
            st
        })
        .collect())
}

pub fn print(list: &[NetworkStatus], color: bool) {
    let paint = |s: &str| {
        let code = match s {
            "ok" | "present" => "32",
            "inactive" | "missing" | "drifted" => "33",
            _ => "31",
        };
        super::paint(s, code, color)
    };
    for n in list {
        let bridge = n.bridge.as_deref().unwrap_or("-");
        println!(
            "{:<20} {:<9} bridge {bridge}",
            format!("{:?}", n.network),
            paint(n.state)
        );
        for v in &n.vlans {
            let own = if v.owned { "owned" } else { "not owned" };
            println!(
                "  VLAN {:>4}  {:<15}  {:<9}  {own}",
                v.id,
                v.name,
                paint(v.state)
            );
            for d in &v.details {
                println!("             - {d}");
            }
        }
        if let Some(u) = n.unnat {
            println!("  unnat exemption: {}", paint(u));
        }
        if let Some(o) = &n.last {
            println!(
                "  last: {} {} at {} (unix): {}",
                o.op, o.result, o.time, o.message
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{self, bridge, obs, provider, vlan_link};

    fn info(active: bool) -> NetInfo {
        testutil::info(active, true, Some("nat"))
    }

    /// virbr1 and virbr1.104 (with `alias`), and `addr` on the VLAN.
    fn host(addr: Option<&str>, alias: Option<&str>) -> Observed {
        let vlan = vlan_link(9, "virbr1.104", 5, 104, alias);
        let addrs = addr.map(|a| testutil::addr(9, a)).into_iter().collect();
        obs(vec![bridge(), vlan], addrs)
    }

    #[test]
    fn states() {
        let s = compare(
            &provider(),
            Some(&info(true)),
            &host(Some("10.12.8.1/22"), Some("net-hook:1_provider")),
            None,
        );
        assert_eq!(
            (s.state, s.vlans[0].state, s.vlans[0].owned),
            ("ok", "ok", true)
        );

        // An address removed by hand is drift, with the fix spelled out.
        let s = compare(
            &provider(),
            Some(&info(true)),
            &host(None, Some("net-hook:1_provider")),
            None,
        );
        assert_eq!((s.state, s.vlans[0].state), ("drift", "drifted"));
        assert_eq!(s.vlans[0].details, vec!["add 10.12.8.1/22 to virbr1.104"]);

        let s = compare(
            &provider(),
            Some(&info(true)),
            &Observed {
                links: host(None, None).links[..1].to_vec(),
                ..Observed::default()
            },
            None,
        );
        assert_eq!((s.state, s.vlans[0].state), ("drift", "missing"));

        let s = compare(&provider(), Some(&info(false)), &host(None, None), None);
        assert_eq!(s.state, "inactive");
        assert_eq!(
            compare(&provider(), None, &host(None, None), None).state,
            "undefined"
        );

        let s = compare(
            &provider(),
            Some(&info(true)),
            &host(Some("10.12.8.1/22"), Some("net-hook:other")),
            None,
        );
        assert_eq!((s.vlans[0].state, s.vlans[0].owned), ("foreign", false));
    }
}
