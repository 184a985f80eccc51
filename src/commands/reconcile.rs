//! `net-hook reconcile`: apply every active configured network; tear down
//! what is marked for networks that are not active or no longer
//! configured. For after a daemon restart (hooks do not re-run) or a VLAN
//! deleted by hand.

use super::Ctx;
use crate::error::Result;
use crate::exec::{Host, System};

/// Runs everything and returns one line per network, errors included, and
/// how many networks failed.
pub fn run(cx: &Ctx, dry_run: bool) -> Result<(Vec<String>, usize)> {
    let cfg = super::load_config(cx.config)?;
    let nets = cx.libvirt.networks()?;
    let mut lines = Vec::new();
    let mut failures = 0;
    let mut keep = Vec::new();
    for net in cfg.networks.values() {
        let Some(info) = nets.iter().find(|i| i.name() == net.name) else {
            lines.push(format!("{}: not defined in libvirt; skipped", net.name));
            continue;
        };
        if !info.active {
            continue;
        }
        keep.push(net.name.clone());
        match super::apply::apply_net(cx, net, info, dry_run) {
            Ok(_) if dry_run => lines.push(format!("{}: planned above (dry run)", net.name)),
            Ok(a) if a.is_empty() => lines.push(format!("{}: as configured", net.name)),
            Ok(a) => lines.push(format!("{}: {}", net.name, join(&a))),
            Err(e) => {
                failures += 1;
                lines.push(format!("{}: {e}", net.name));
            }
        }
    }
    // Leftovers: marked links whose network is not active and configured.
    let obs = System::open()?.observe(&Default::default())?;
    let orphans: Vec<String> = obs
        .owners()
        .into_iter()
        .filter(|n| !keep.contains(n))
        .collect();
    for n in orphans {
        match super::teardown::one(cx.run_dir, Some(&cfg), &n, dry_run, false) {
            Ok(_) if dry_run => lines.push(format!(
                "{n}: not active; leftovers planned above (dry run)"
            )),
            Ok(a) => lines.push(format!("{n}: not active; {}", join(&a))),
            Err(e) => {
                failures += 1;
                lines.push(format!("{n}: {e}"));
            }
        }
    }
    Ok((lines, failures))
}

fn join(steps: &[crate::plan::Step]) -> String {
    steps
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
