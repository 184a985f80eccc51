//! `net-hook install` / `uninstall`: the `network.d` and `qemu.d` entries
//! libvirt runs.
//!
//! The entry is a symlink to the binary in /usr/bin. AppArmor mediates the
//! symlink's target, and Debian's libvirtd profile runs /usr/bin programs
//! outside its own confinement (`PUx`), which denies hooks `netlink dgram`
//! and forbids anything under /usr/local outright.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why install or uninstall did nothing (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root, or an entry that is not net-hook's: nothing was touched.
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl Error {
    fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub const DEFAULT_HOOKS_DIR: &str = "/etc/libvirt/hooks";
pub const ENTRY_NAME: &str = "50-net-hook";
const BINARY_NAME: &str = "net-hook";

pub struct Opts {
    pub hooks_dir: PathBuf,
    pub target: PathBuf,
    pub dry_run: bool,
}

/// What the entry path holds now.
enum Entry {
    Absent,
    /// A symlink to a `net-hook` binary: ours to replace or remove.
    Ours(PathBuf),
    /// Anything else: never touched.
    Foreign(String),
}

fn entry_state(entry: &Path) -> Result<Entry> {
    match fs::symlink_metadata(entry) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Entry::Absent),
        Err(e) => Err(Error::io(format!("reading {}", entry.display()), e)),
        Ok(m) if m.file_type().is_symlink() => {
            let to = fs::read_link(entry)
                .map_err(|e| Error::io(format!("reading {}", entry.display()), e))?;
            if to.file_name() == Some(BINARY_NAME.as_ref()) {
                Ok(Entry::Ours(to))
            } else {
                Ok(Entry::Foreign(format!("a symlink to {}", to.display())))
            }
        }
        Ok(m) if m.is_file() => Ok(Entry::Foreign("a regular file".into())),
        Ok(_) => Ok(Entry::Foreign("not a symlink".into())),
    }
}

fn require_root(verb: &str, dry_run: bool) -> Result<()> {
    if dry_run || nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "`net-hook {verb}` writes under libvirt's hooks directory and must run as root (try sudo, or --dry-run)"
    )))
}

/// An executable regular file (following symlinks), as libvirt runs hooks.
pub(crate) fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Every network hook libvirt would run: `hooks_dir/network` and the
/// executables in `hooks_dir/network.d` (ours included), sorted.
pub(crate) fn network_hooks(hooks_dir: &Path) -> Vec<PathBuf> {
    hooks_of(hooks_dir, "network")
}

/// [`network_hooks`] for `driver` ("network" or "qemu").
fn hooks_of(hooks_dir: &Path, driver: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = vec![hooks_dir.join(driver)];
    if let Ok(rd) = fs::read_dir(hooks_dir.join(format!("{driver}.d"))) {
        found.extend(rd.flatten().map(|e| e.path()));
    }
    found.retain(|p| is_executable(p));
    found.sort();
    found
}

/// Running libvirt daemons that own networks (libvirtd, virtnetworkd), as
/// their name and their `/proc/PID` directory under `proc_root`.
pub(crate) fn libvirt_daemons(proc_root: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir(proc_root) {
        for e in rd.flatten() {
            let dir = e.path();
            if let Ok(comm) = fs::read_to_string(dir.join("comm")) {
                let comm = comm.trim();
                if comm == "libvirtd" || comm == "virtnetworkd" {
                    found.push((comm.to_string(), dir));
                }
            }
        }
    }
    found
}

/// Network hooks other than ours: libvirt runs hooks only if some existed
/// when the daemon started.
fn other_hooks(hooks_dir: &Path, driver: &str) -> Vec<PathBuf> {
    let mut found = hooks_of(hooks_dir, driver);
    found.retain(|p| p.file_name() != Some(ENTRY_NAME.as_ref()));
    found
}

/// The names of the running libvirt daemons that own networks, once each.
fn running_daemons(driver: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let modular = if driver == "qemu" {
        "virtqemud"
    } else {
        "virtnetworkd"
    };
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Ok(comm) = fs::read_to_string(e.path().join("comm")) {
                let comm = comm.trim().to_string();
                if (comm == "libvirtd" || comm == modular) && !found.contains(&comm) {
                    found.push(comm);
                }
            }
        }
    }
    found
}

/// `driver`: "network" or "qemu" (whose hooks libvirt also checks for once,
/// at daemon start).
fn restart_advice(hooks_dir: &Path, driver: &str) -> String {
    let others = other_hooks(hooks_dir, driver);
    let event = if driver == "qemu" {
        "domain"
    } else {
        "network"
    };
    if !others.is_empty() {
        return format!(
            "libvirt already runs {driver} hooks ({}), so it runs this one from the next {event} event; no restart needed",
            others
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match running_daemons(driver).as_slice() {
        [] => "no libvirt daemon is running; it will see the hook when it starts".to_string(),
        daemons => {
            let d = &daemons[0];
            format!(
                "{} is running and checked for {driver} hooks when it started, when there were none: run `systemctl restart {d}` (or `systemctl kill -s HUP {d}`) so libvirt runs the hook; running VMs and networks survive it",
                daemons.join(" and ")
            )
        }
    }
}

/// The hook directories net-hook has an entry in: networks (VLANs) and
/// domains (routed interfaces).
pub const HOOK_DIRS: [&str; 2] = ["network.d", "qemu.d"];

/// Installs both entries, or neither: a foreign entry in either stops it
/// before anything is changed.
pub fn install(o: &Opts) -> Result<Vec<String>> {
    require_root("install", o.dry_run)?;
    for d in HOOK_DIRS {
        let entry = o.hooks_dir.join(d).join(ENTRY_NAME);
        if let Entry::Foreign(what) = entry_state(&entry)? {
            return Err(Error::Refused(format!(
                "{} exists and is {what}, which net-hook did not create; left untouched (and nothing installed): move it away or pass another --hooks-dir",
                entry.display()
            )));
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut made: Vec<PathBuf> = Vec::new();
    for d in HOOK_DIRS {
        let entry = o.hooks_dir.join(d).join(ENTRY_NAME);
        let absent = matches!(entry_state(&entry)?, Entry::Absent);
        match install_entry(o, d) {
            Ok(lines) => {
                if absent && !o.dry_run {
                    made.push(entry);
                }
                for line in lines {
                    if !out.contains(&line) {
                        out.push(line);
                    }
                }
            }
            Err(e) => {
                // Both or neither: take back the entry this run made.
                for m in &made {
                    let _ = fs::remove_file(m);
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn install_entry(o: &Opts, kind: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let would = if o.dry_run { "would " } else { "" };
    let dir = o.hooks_dir.join(kind);
    let entry = dir.join(ENTRY_NAME);
    if !o.target.is_absolute() {
        return Err(Error::Refused(format!(
            "the hook target must be an absolute path, not {}",
            o.target.display()
        )));
    }
    if o.target.starts_with("/usr/local") {
        out.push(format!(
            "warning: {} is under /usr/local, which Debian's libvirtd AppArmor profile forbids hooks to run; install the binary to /usr/bin",
            o.target.display()
        ));
    }
    match entry_state(&entry)? {
        Entry::Ours(to) if to == o.target => {
            out.push(format!(
                "{} already links to {}; nothing to do",
                entry.display(),
                to.display()
            ));
            return Ok(out);
        }
        Entry::Foreign(what) => {
            return Err(Error::Refused(format!(
                "{} exists and is {what}, which net-hook did not create; left untouched: move it away or pass another --hooks-dir",
                entry.display()
            )));
        }
        Entry::Ours(to) => {
            out.push(format!(
                "{would}replace {} -> {} with -> {}",
                entry.display(),
                to.display(),
                o.target.display()
            ));
            if !o.dry_run {
                // Replace atomically: libvirt may run hooks at any moment.
                let tmp = dir.join(format!(".{ENTRY_NAME}.new"));
                let _ = fs::remove_file(&tmp);
                std::os::unix::fs::symlink(&o.target, &tmp)
                    .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
                fs::rename(&tmp, &entry)
                    .map_err(|e| Error::io(format!("replacing {}", entry.display()), e))?;
            }
        }
        Entry::Absent => {
            let advice = restart_advice(&o.hooks_dir, kind.trim_end_matches(".d"));
            if !dir.is_dir() {
                out.push(format!("{would}create {}", dir.display()));
                if !o.dry_run {
                    fs::create_dir_all(&dir)
                        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                }
            }
            out.push(format!(
                "{would}link {} -> {}",
                entry.display(),
                o.target.display()
            ));
            if !o.dry_run {
                std::os::unix::fs::symlink(&o.target, &entry)
                    .map_err(|e| Error::io(format!("creating {}", entry.display()), e))?;
            }
            out.push(advice);
        }
    }
    if !o.target.is_file() {
        out.push(format!(
            "warning: {} does not exist (yet); libvirt skips a dangling hook",
            o.target.display()
        ));
    }
    Ok(out)
}

/// Removes both entries (each only if it is net-hook's).
pub fn uninstall(hooks_dir: &Path, dry_run: bool) -> Result<Vec<String>> {
    require_root("uninstall", dry_run)?;
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for d in HOOK_DIRS {
        match uninstall_entry(hooks_dir, d, dry_run) {
            Ok(lines) => out.extend(lines),
            Err(Error::Refused(why)) => refused.push(why),
            Err(e) => return Err(e),
        }
    }
    if !refused.is_empty() {
        // Say what was done too, not only what was refused.
        out.extend(refused);
        return Err(Error::Refused(out.join("; ")));
    }
    Ok(out)
}

fn uninstall_entry(hooks_dir: &Path, kind: &str, dry_run: bool) -> Result<Vec<String>> {
    let entry = hooks_dir.join(kind).join(ENTRY_NAME);
    let would = if dry_run { "would " } else { "" };
    match entry_state(&entry)? {
        Entry::Absent => Ok(vec![format!(
            "{} does not exist; nothing to do",
            entry.display()
        )]),
        Entry::Foreign(what) => Err(Error::Refused(format!(
            "{} is {what}, which net-hook did not create; left untouched",
            entry.display()
        ))),
        Entry::Ours(to) => {
            if !dry_run {
                fs::remove_file(&entry)
                    .map_err(|e| Error::io(format!("removing {}", entry.display()), e))?;
            }
            Ok(vec![
                format!("{would}remove {} -> {}", entry.display(), to.display()),
                if kind == "qemu.d" {
                    "routes of running domains stay until they stop; gateways until `net-hook teardown --all`".to_string()
                } else {
                    "VLAN interfaces net-hook created stay until their network stops".to_string()
                },
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> Opts {
        Opts {
            hooks_dir: dir.to_path_buf(),
            target: PathBuf::from("/usr/bin/net-hook"),
            dry_run: false,
        }
    }

    #[test]
    #[ignore = "needs root"]
    fn install_is_idempotent_and_uninstall_removes_only_ours() {
        let d = tempfile::tempdir().unwrap();
        let entry = d.path().join("network.d").join(ENTRY_NAME);
        let first = install(&opts(d.path())).unwrap();
        assert!(first.iter().any(|l| l.contains("link")), "{first:?}");
        assert_eq!(
            fs::read_link(&entry).unwrap(),
            PathBuf::from("/usr/bin/net-hook")
        );
        let second = install(&opts(d.path())).unwrap();
        assert!(second[0].contains("nothing to do"), "{second:?}");
        uninstall(d.path(), false).unwrap();
        assert!(fs::symlink_metadata(&entry).is_err());
        assert!(uninstall(d.path(), false).unwrap()[0].contains("nothing to do"));
    }

    #[test]
    #[ignore = "needs root"]
    fn foreign_entries_and_scripts_are_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let nd = d.path().join("network.d");
        fs::create_dir_all(&nd).unwrap();
        fs::write(nd.join(ENTRY_NAME), "#!/bin/sh\n").unwrap();
        fs::write(d.path().join("network"), "#!/bin/sh\n").unwrap();
        assert!(
            install(&opts(d.path()))
                .unwrap_err()
                .to_string()
                .contains("did not create")
        );
        assert!(uninstall(d.path(), false).is_err());
        assert_eq!(
            fs::read_to_string(nd.join(ENTRY_NAME)).unwrap(),
            "#!/bin/sh\n"
        );
        assert!(d.path().join("network").exists());
    }

    #[test]
    fn dry_run_changes_nothing_and_advice_sees_other_hooks() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path());
        o.dry_run = true;
        let out = install(&o).unwrap();
        assert!(out.iter().any(|l| l.starts_with("would link")), "{out:?}");
        assert!(!d.path().join("network.d").exists());
        let script = d.path().join("network");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(restart_advice(d.path(), "network").contains("no restart needed"));
    }
}
