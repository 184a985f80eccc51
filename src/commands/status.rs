//! `net-hook status [NETWORK]`: desired versus actual, per configured
//! network, judged by the plan a bring-up would make.

use serde::Serialize;

use super::{Ctx, NetInfo, Source};
use crate::config::NetworkConfig;
use crate::error::Result;
use crate::exec::{Host, Scope, System};
use crate::firewall::Read;
use crate::model::Observed;
use crate::ops;
use crate::plan::Problem;
use crate::state::{Outcome, RunDir};

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VlanState {
    Ok,
    Missing,
    Drifted,
    Foreign,
    Conflict,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetState {
    Ok,
    Drift,
    Inactive,
    Undefined,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UnnatState {
    Present,
    Missing,
    NotApplicable,
}

macro_rules! names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn name(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
    };
}
names!(VlanState { Ok => "ok", Missing => "missing", Drifted => "drifted", Foreign => "foreign", Conflict => "conflict" });
names!(NetState { Ok => "ok", Drift => "drift", Inactive => "inactive", Undefined => "undefined" });
names!(UnnatState { Present => "present", Missing => "missing", NotApplicable => "not-applicable" });

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct VlanStatus {
    pub id: u16,
    pub name: String,
    pub state: VlanState,
    /// Marked as net-hook's for this network.
    pub owned: bool,
    /// What differs from the config, as the steps that would fix it, or the
    /// problems that stop net-hook.
    pub details: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct NetworkStatus {
    pub network: String,
    pub state: NetState,
    pub active: bool,
    pub bridge: Option<String>,
    pub vlans: Vec<VlanStatus>,
    /// The last hook or command outcome from the run dir.
    pub last: Option<Outcome>,
    /// The un-NAT exemption: `null` when not configured.
    pub unnat: Option<UnnatState>,
    /// For a missing exemption, the steps that would install it; when not
    /// applicable, why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unnat_details: Vec<String>,
    /// Where the config comes from: "file" or "metadata"; null when it
    /// cannot be used (see `config_error`).
    pub config: Option<Source>,
    /// Why the network's config cannot be used (invalid, or in both places).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

impl NetworkStatus {
    /// An active network that is not as configured.
    pub fn drifted(&self) -> bool {
        self.state == NetState::Drift
    }
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
        state: NetState::Ok,
        active: info.is_some_and(|i| i.active),
        bridge: info.and_then(|i| i.net.bridge.clone()),
        vlans: Vec::new(),
        last,
        unnat: None,
        unnat_details: vec![],
        config: Some(Source::File),
        config_error: None,
    };
    let Some(info) = info else {
        st.state = NetState::Undefined;
        return st;
    };
    if !info.active {
        st.state = NetState::Inactive;
        return st;
    }
    let bridge = info.net.bridge.clone().unwrap_or_default();
    for v in super::vlan_views(net, &bridge, obs) {
        let (state, details) = match (v.link, v.plan) {
            (_, Err(problems)) => {
                let state = if problems
                    .iter()
                    .any(|p| matches!(p, Problem::Foreign { .. } | Problem::OwnedByOther { .. }))
                {
                    VlanState::Foreign
                } else if problems
                    .iter()
                    .any(|p| matches!(p, Problem::Conflict { .. }))
                {
                    VlanState::Conflict
                } else {
                    VlanState::Missing
                };
                (state, problems.iter().map(ToString::to_string).collect())
            }
            (None, Ok(_)) => (VlanState::Missing, vec![]),
            (Some(_), Ok(steps)) if steps.is_empty() => (VlanState::Ok, vec![]),
            (Some(_), Ok(steps)) => (
                VlanState::Drifted,
                steps.iter().map(ToString::to_string).collect(),
            ),
        };
        st.vlans.push(VlanStatus {
            id: v.vlan.id,
            name: v.name,
            state,
            owned: v.owned,
            details,
        });
    }
    if let Some(u) = super::unnat_plan(net, info, obs) {
        let (state, details) = match u {
            Err(why) => (UnnatState::NotApplicable, vec![why]),
            Ok(steps) if steps.is_empty() => (UnnatState::Present, vec![]),
            Ok(steps) => (
                UnnatState::Missing,
                steps.iter().map(ToString::to_string).collect(),
            ),
        };
        st.unnat = Some(state);
        st.unnat_details = details;
    }
    if st.vlans.iter().any(|v| v.state != VlanState::Ok) || st.unnat == Some(UnnatState::Missing) {
        st.state = NetState::Drift;
    }
    st
}

pub fn run(cx: &Ctx, only: Option<&str>) -> Result<Vec<NetworkStatus>> {
    let cfg = super::load_config(cx.config)?;
    let infos = cx.libvirt.networks()?;
    let info_of = |n: &str| infos.iter().find(|i| i.name() == n);
    if let Some(n) = only {
        super::network_config(&cfg, cx.config, n, info_of(n))?;
    }
    // Each configured network with where its config comes from; one whose
    // config cannot be used is shown with the reason.
    let mut nets: Vec<(NetworkConfig, Option<Source>, Option<String>)> = Vec::new();
    for name in super::configured_names(&cfg, &infos) {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        match super::resolve(&cfg, cx.config, &name, info_of(&name)) {
            Ok(Some((net, source))) => nets.push((net, Some(source), None)),
            Ok(None) => {}
            Err(e) => nets.push((
                NetworkConfig {
                    name: name.clone(),
                    strict: false,
                    vlans: vec![],
                    unnat: None,
                    firewalld_zone: None,
                },
                None,
                Some(e.to_string()),
            )),
        }
    }
    // One observation for every network shown.
    let mut scope = Scope {
        firewall: nets
            .iter()
            .any(|(n, _, _)| n.unnat.is_some())
            .then_some(Read::Chosen(crate::config::BackendChoice::Auto)),
        zones: vec![],
        ..Scope::default()
    };
    for (n, _, _) in &nets {
        if let Some(b) = info_of(&n.name).and_then(|i| i.net.bridge.as_deref()) {
            scope.zones.extend(ops::up_scope(n, b).zones);
        }
    }
    let obs = System::open()?.observe(&scope)?;
    let rundir = RunDir::new(cx.run_dir);
    Ok(nets
        .into_iter()
        .map(|(n, source, error)| {
            let mut st = compare(&n, info_of(&n.name), &obs, rundir.read(&n.name));
            st.config = source;
            if let Some(e) = error {
                st.config_error = Some(e);
                if st.active {
                    st.state = NetState::Drift;
                }
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
            paint(n.state.name())
        );
        for v in &n.vlans {
            let own = if v.owned { "owned" } else { "not owned" };
            println!(
                "  VLAN {:>4}  {:<15}  {:<9}  {own}",
                v.id,
                v.name,
                paint(v.state.name())
            );
            for d in &v.details {
                println!("             - {d}");
            }
        }
        match (&n.config, &n.config_error) {
            (_, Some(e)) => println!("  config: {}", paint(&format!("unusable: {e}"))),
            (Some(Source::Metadata), None) => println!("  config: libvirt <metadata>"),
            _ => {}
        }
        if let Some(u) = n.unnat {
            println!("  unnat exemption: {}", paint(u.name()));
            for d in &n.unnat_details {
                println!("             - {d}");
            }
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
            (NetState::Ok, VlanState::Ok, true)
        );

        // An address removed by hand is drift, with the fix spelled out.
        let s = compare(
            &provider(),
            Some(&info(true)),
            &host(None, Some("net-hook:1_provider")),
            None,
        );
        assert_eq!(
            (s.state, s.vlans[0].state),
            (NetState::Drift, VlanState::Drifted)
        );
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
        assert_eq!(
            (s.state, s.vlans[0].state),
            (NetState::Drift, VlanState::Missing)
        );

        let s = compare(&provider(), Some(&info(false)), &host(None, None), None);
        assert_eq!(s.state, NetState::Inactive);
        assert_eq!(
            compare(&provider(), None, &host(None, None), None).state,
            NetState::Undefined
        );

        let s = compare(
            &provider(),
            Some(&info(true)),
            &host(Some("10.12.8.1/22"), Some("net-hook:other")),
            None,
        );
        assert_eq!(
            (s.vlans[0].state, s.vlans[0].owned),
            (VlanState::Foreign, false)
        );
        // The JSON keeps its documented names.
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["state"], "drift");
        assert_eq!(j["vlans"][0]["state"], "foreign");
    }
}
