//! Running a plan: all-or-nothing for bring-up, best-effort for teardown.

use crate::error::{Error, Result};
use crate::netlink::Net;
use crate::plan::Step;

/// Runs `steps` in order. On the first failure, undoes what this call did,
/// newest first, and returns the failure with anything the rollback could
/// not undo. `done` receives each step as it succeeds (for logging).
pub fn apply(net: &mut dyn Net, steps: &[Step], mut done: impl FnMut(&Step)) -> Result<()> {
    let mut applied: Vec<&Step> = Vec::new();
    for step in steps {
        match net.run(step) {
            Ok(()) => {
                done(step);
                applied.push(step);
            }
            Err(cause) => return Err(undo(net, &applied, cause)),
        }
    }
    Ok(())
}

/// Rolls back `applied` because of `cause`: the error to return, with
/// anything the rollback could not undo.
pub fn undo(net: &mut dyn Net, applied: &[&Step], cause: Error) -> Error {
    Error::Applied {
        rollback: rollback(net, applied),
        cause: Box::new(cause),
    }
}

/// Undoes `applied` in reverse. Changes to an interface this run created are
/// skipped: deleting the interface undoes them all at once.
fn rollback(net: &mut dyn Net, applied: &[&Step]) -> Vec<String> {
    let created: Vec<&str> = applied
        .iter()
        .filter_map(|s| match s {
            Step::CreateVlan { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut failed = Vec::new();
    for step in applied.iter().rev() {
        let redundant =
            !matches!(step, Step::CreateVlan { .. }) && created.contains(&step.target());
        if redundant {
            continue;
        }
        if let Some(undo) = step.undo()
            && let Err(e) = net.run(&undo)
        {
            failed.push(format!("{undo}: {e}"));
        }
    }
    failed
}

/// Runs every step even when some fail, and returns all failures: a
/// teardown should remove as much as it can.
pub fn teardown(net: &mut dyn Net, steps: &[Step], mut done: impl FnMut(&Step)) -> Vec<Error> {
    let mut errors = Vec::new();
    for step in steps {
        match net.run(step) {
            Ok(()) => done(step),
            Err(e) => errors.push(e),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Observed;

    /// Records steps; fails the step whose index is `fail_at`.
    struct Fake {
        ran: Vec<Step>,
        fail_at: Option<usize>,
        fail_undo: bool,
    }

    impl Net for Fake {
        fn observe(&mut self) -> Result<Observed> {
            Ok(Observed::default())
        }
        fn run(&mut self, step: &Step) -> Result<()> {
            let n = self.ran.len();
            self.ran.push(step.clone());
            let is_undo = self.fail_at.is_some_and(|f| n > f);
            if Some(n) == self.fail_at || (is_undo && self.fail_undo) {
                return Err(Error::Netlink {
                    what: step.to_string(),
                    errno: Some(libc::EPERM),
                });
            }
            Ok(())
        }
    }

    fn steps() -> Vec<Step> {
        let n = "virbr1.104".to_string();
        vec![
            Step::BridgeVidAdd {
                bridge: "virbr1".into(),
                vid: 104,
            },
            Step::CreateVlan {
                name: n.clone(),
                parent: "virbr1".into(),
                vid: 104,
                mtu: None,
            },
            Step::SetAlias {
                name: n.clone(),
                alias: Some("net-hook:1_provider".into()),
                old: None,
            },
            Step::AddAddr {
                name: n.clone(),
                addr: "10.12.8.1/22".parse().unwrap(),
            },
            Step::SetUp { name: n },
        ]
    }

    #[test]
    fn failure_rolls_back_newest_first_and_skips_changes_to_created_links() {
        let mut f = Fake {
            ran: vec![],
            fail_at: Some(3),
            fail_undo: false,
        };
        let err = apply(&mut f, &steps(), |_| {}).unwrap_err();
        assert!(
            matches!(&err, Error::Applied { rollback, .. } if rollback.is_empty()),
            "{err}"
        );
        assert!(err.to_string().contains("rolled back"), "{err}");
        // 4 attempted, then: delete the created VLAN (its alias undo is
        // redundant), then take the bridge VID back.
        assert_eq!(
            f.ran[4..],
            [
                Step::DeleteLink {
                    name: "virbr1.104".into()
                },
                Step::BridgeVidDel {
                    bridge: "virbr1".into(),
                    vid: 104
                },
            ]
        );
    }

    #[test]
    fn failed_rollback_is_reported() {
        let mut f = Fake {
            ran: vec![],
            fail_at: Some(2),
            fail_undo: true,
        };
        let err = apply(&mut f, &steps(), |_| {}).unwrap_err();
        let Error::Applied { rollback, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(rollback.len(), 2, "{rollback:?}");
        assert!(
            err.to_string().contains("fix by hand: delete virbr1.104"),
            "{err}"
        );
    }

    #[test]
    fn adopted_link_changes_are_undone_individually() {
        let n = "virbr1.104".to_string();
        let s = vec![
            Step::SetAlias {
                name: n.clone(),
                alias: Some("net-hook:x".into()),
                old: Some("admin".into()),
            },
            Step::DelAddr {
                name: n.clone(),
                addr: "10.1.1.1/24".parse().unwrap(),
            },
            Step::AddAddr {
                name: n.clone(),
                addr: "10.12.8.1/22".parse().unwrap(),
            },
        ];
        let mut f = Fake {
            ran: vec![],
            fail_at: Some(2),
            fail_undo: false,
        };
        apply(&mut f, &s, |_| {}).unwrap_err();
        assert_eq!(
            f.ran[3..],
            [
                Step::AddAddr {
                    name: n.clone(),
                    addr: "10.1.1.1/24".parse().unwrap()
                },
                Step::SetAlias {
                    name: n,
                    alias: Some("admin".into()),
                    old: Some("net-hook:x".into())
                },
            ]
        );
    }

    #[test]
    fn teardown_runs_everything_and_gathers_errors() {
        let s = vec![
            Step::DeleteLink { name: "a".into() },
            Step::DeleteLink { name: "b".into() },
            Step::DeleteLink { name: "c".into() },
        ];
        let mut f = Fake {
            ran: vec![],
            fail_at: Some(0),
            fail_undo: true,
        };
        let mut ok = 0;
        let errs = teardown(&mut f, &s, |_| ok += 1);
        assert_eq!(f.ran.len(), 3);
        assert_eq!(errs.len(), 3);
        assert_eq!(ok, 0);
    }
}
