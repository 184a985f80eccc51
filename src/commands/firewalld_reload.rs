//! `net-hook firewalld-reload`: reconcile now, then again after each
//! firewalld reload or restart, for as long as it runs (a service,
//! `net-hook-firewalld-reload.service`, PartOf firewalld).
//!
//! Why: `firewall-cmd --reload` and a firewalld restart drop the runtime
//! zone of every VLAN and, where firewalld flushes them, the exemption
//! rules; neither passes through systemd's reload propagation
//! (`firewall-cmd --reload` talks D-Bus), and no hook runs. firewalld
//! announces both on D-Bus: the `Reloaded` signal, and its bus name
//! changing owner. libvirt listens to the same two and re-creates its own
//! rules meanwhile, so the reconcile waits until the events have been
//! quiet for a moment: it then plans against what libvirt has rebuilt.
//!
//! The D-Bus side lives in `net-hook-virt` (behind [`Events`]), so neither
//! the hook nor this loop's tests need a bus.

use std::time::Duration;

/// What the bus said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// firewalld's `Reloaded` signal.
    Reloaded,
    /// firewalld's bus name got an owner (it started or restarted).
    Started,
    /// firewalld's bus name lost its owner (it stopped).
    Stopped,
}

/// Why the loop ended.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "firewalld-reload: lost the D-Bus system bus: {0}; is dbus running? systemd restarts the service"
    )]
    Bus(String),
}

/// The signals, one at a time.
pub trait Events {
    /// The next event; `Ok(None)` when `timeout` passed without one.
    fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, Error>;
}

/// How long the events must be quiet before a reconcile.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Reconciles once, then once after each burst of events, until the bus
/// fails. `reconcile` reports its own outcome (one run's failure is not
/// the loop's: the next reload gets another try); `say` prints a line.
pub fn run(
    events: &mut dyn Events,
    settle: Duration,
    reconcile: &mut dyn FnMut(&str),
    say: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    reconcile("the listener started");
    loop {
        let Some(first) = events.next(None)? else {
            continue;
        };
        let mut why = describe(first);
        let mut last = first;
        while let Some(e) = events.next(Some(settle))? {
            why = describe(e);
            last = e;
        }
        if last == Event::Stopped {
            // Nothing to re-apply against; the next start says so.
            say("firewalld stopped; waiting for it to start again");
            continue;
        }
        reconcile(why);
    }
}

fn describe(e: Event) -> &'static str {
    match e {
        Event::Reloaded => "firewalld reloaded",
        Event::Started => "firewalld started",
        Event::Stopped => "firewalld stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Plays a script: `Some(e)` an event, `None` a quiet timeout; then
    /// the bus fails.
    struct Script(VecDeque<Option<Event>>);

    impl Events for Script {
        fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, Error> {
            loop {
                match self.0.pop_front() {
                    None => return Err(Error::Bus("end of script".into())),
                    // A quiet period only ends a wait that has a timeout.
                    Some(None) if timeout.is_none() => continue,
                    Some(e) => return Ok(e),
                }
            }
        }
    }

    fn play(script: Vec<Option<Event>>) -> (Vec<String>, Vec<String>) {
        let mut runs = Vec::new();
        let mut said = Vec::new();
        let err = run(
            &mut Script(script.into()),
            SETTLE,
            &mut |why| runs.push(why.to_string()),
            &mut |l| said.push(l.to_string()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("end of script"), "{err}");
        (runs, said)
    }

    #[test]
    fn reconciles_at_start_and_once_per_settled_burst() {
        use Event::*;
        let (runs, _) = play(vec![
            Some(Reloaded),
            None,
            // A restart: the name goes, comes back, and firewalld reloads.
            Some(Stopped),
            Some(Started),
            Some(Reloaded),
            None,
        ]);
        assert_eq!(
            runs,
            [
                "the listener started",
                "firewalld reloaded",
                "firewalld reloaded"
            ]
        );
    }

    #[test]
    fn a_stop_alone_waits_for_the_start() {
        use Event::*;
        let (runs, said) = play(vec![Some(Stopped), None, Some(Started), None]);
        assert_eq!(runs, ["the listener started", "firewalld started"]);
        assert_eq!(said, ["firewalld stopped; waiting for it to start again"]);
    }

    #[test]
    fn quiet_without_events_reconciles_nothing_more() {
        let (runs, _) = play(vec![None, None, None]);
        assert_eq!(runs, ["the listener started"]);
    }
}
