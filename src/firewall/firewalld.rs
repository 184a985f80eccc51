//! firewalld, when it runs, puts an interface it does not know in its
//! default zone, where forwarding may be rejected: net-hook puts each VLAN
//! in the network's zone (libvirt's bridges are in `libvirt`). Runtime
//! bindings only; a firewalld reload drops them and `reconcile` restores
//! them.

use std::collections::BTreeMap;

use super::{Error, Runner, argv, run_ok};
use crate::plan::Step;

/// The zone of each interface asked about; only read when firewalld runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones {
    pub of: BTreeMap<String, Option<String>>,
}

/// `None` when firewalld is not installed or not running. Asking costs a
/// Python start-up per call: callers ask only for interfaces they manage.
pub fn observe(names: &[String], r: &mut dyn Runner) -> Result<Option<Zones>, Error> {
    if names.is_empty() || !r.has("firewall-cmd") {
        return Ok(None);
    }
    if r.run(&argv(&["firewall-cmd", "--state"]), None)?.0 != 0 {
        return Ok(None);
    }
    let mut zones = Zones::default();
    for n in names {
        // Exit status 2 with "no zone" for an interface in none.
        let (code, out, _) = r.run(
            &argv(&["firewall-cmd", &format!("--get-zone-of-interface={n}")]),
            None,
        )?;
        let zone = (code == 0)
            .then(|| out.trim().to_string())
            .filter(|z| !z.is_empty());
        zones.of.insert(n.clone(), zone);
    }
    Ok(Some(zones))
}

/// The step that puts `name` in `zone`, if it is not there (pure).
pub fn plan(name: &str, zone: &str, zones: &Zones) -> Option<Step> {
    let old = zones.of.get(name).cloned().flatten();
    (old.as_deref() != Some(zone)).then(|| Step::ZoneSet {
        name: name.into(),
        zone: zone.into(),
        old,
    })
}

pub fn run(step: &Step, r: &mut dyn Runner) -> Result<(), Error> {
    let (zone, op) = match step {
        Step::ZoneSet { name, zone, .. } => (zone, format!("--change-interface={name}")),
        Step::ZoneRemove { name, zone } => (zone, format!("--remove-interface={name}")),
        other => {
            return Err(Error::Output {
                program: "firewall-cmd".into(),
                what: other.to_string(),
                why: "not a firewalld step".into(),
            });
        }
    };
    let cmd = argv(&["firewall-cmd", &format!("--zone={zone}"), &op]);
    run_ok(r, &cmd, None, step.to_string()).map(|_| ())
}
