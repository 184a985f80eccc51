//! net-hook's runtime directory (`/run/net-hook/`): the lock that serialises
//! hook runs, and the last outcome per network for `net-hook status`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat, mkdirat};
use serde::{Deserialize, Serialize};

use crate::firewall::Backend;
use crate::plan::Step;

/// The run directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// An entry of the run dir that nobody but us may have written is not
    /// as it must be.
    #[error("refusing {path}: {why}; {fix}")]
    Insecure {
        path: String,
        why: String,
        fix: &'static str,
    },
    #[error(
        "locking {path}: another net-hook run held it for {secs} s; check for a stuck net-hook process"
    )]
    LockTimeout { path: String, secs: u64 },
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

pub const DEFAULT_RUN_DIR: &str = "/run/net-hook";

/// How long a hook waits for another run (another network autostarting).
/// Runs take milliseconds; this only bounds a stuck holder.
const LOCK_WAIT: Duration = Duration::from_secs(20);

/// How long a companion command waits. It runs outside libvirt's locks, and
/// at boot it can queue behind the hooks of every autostarted network and
/// the firewalld listener, each spawning slow firewall tools: seen to exceed
/// 20 s on a loaded host, where giving up left the unit failed.
const COMPANION_LOCK_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct BridgeVid {
    pub bridge: String,
    pub vid: u16,
}

/// What a run was: a hook op or a command.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunOp {
    Start,
    #[default]
    Started,
    Stopped,
    Apply,
    Teardown,
    /// The qemu hook's `prepare begin`, `release end`, `reconnect begin`.
    Prepare,
    Release,
    Reconnect,
}

impl RunOp {
    pub fn name(self) -> &'static str {
        match self {
            RunOp::Start => "start",
            RunOp::Started => "started",
            RunOp::Stopped => "stopped",
            RunOp::Apply => "apply",
            RunOp::Teardown => "teardown",
            RunOp::Prepare => "prepare",
            RunOp::Release => "release",
            RunOp::Reconnect => "reconnect",
        }
    }

    /// Whether the run brings a network up (and so records bridge VIDs).
    pub fn is_bring_up(self) -> bool {
        matches!(self, RunOp::Started | RunOp::Apply)
    }
}

impl std::fmt::Display for RunOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    #[default]
    Ok,
    Unchanged,
    /// Nothing was changed: a problem stopped the plan.
    Refused,
    /// A step failed (and a bring-up was rolled back).
    Failed,
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunResult::Ok => "ok",
            RunResult::Unchanged => "unchanged",
            RunResult::Refused => "refused",
            RunResult::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Outcome {
    pub network: String,
    pub op: RunOp,
    /// Unix time, seconds.
    pub time: u64,
    pub result: RunResult,
    pub message: String,
    /// The steps the run carried out, in order (what a rollback undid is
    /// not among them).
    #[serde(default, deserialize_with = "lenient_steps")]
    pub actions: Vec<Step>,
    #[serde(default)]
    pub problems: Vec<String>,
    /// Interfaces holding addresses we wanted (the ordering trap).
    #[serde(default)]
    pub holders: Vec<String>,
    /// VIDs this network added to filtering bridges, to take back on stop.
    #[serde(default)]
    pub bridge_vids_added: Vec<BridgeVid>,
    /// The firewall backend holding this network's un-NAT exemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unnat_backend: Option<Backend>,
    /// The step that failed, for a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<Step>,
}

/// Records written before steps were recorded as data hold prose: skip
/// what is not a step rather than lose the whole record.
fn lenient_steps<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<Step>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Maybe {
        Step(Step),
        #[allow(dead_code)]
        Other(serde::de::IgnoredAny),
    }
    Ok(Vec::<Maybe>::deserialize(d)?
        .into_iter()
        .filter_map(|m| match m {
            Maybe::Step(s) => Some(s),
            Maybe::Other(_) => None,
        })
        .collect())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub struct RunDir {
    pub path: PathBuf,
    /// The records' subdirectory: `networks`, or `domains` for the qemu hook.
    records: &'static str,
}

/// What a fix for a refused run-dir entry is.
const FIX_REMOVE: &str = "remove it; net-hook creates it again, owned by root";
const FIX_OWNER: &str = "fix with `chown root:root` and `chmod go-w`, or remove it";

/// Largest record we read: records are a few KiB.
const MAX_RECORD: u64 = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

fn errno_io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// Refuses a descriptor that is not a `kind` owned by us (root, in
/// production) and closed to writes by group and others: the hook acts on
/// what the run dir holds, so nobody else may have written it.
fn check_fd(path: &Path, fd: &OwnedFd, kind: Kind) -> Result<()> {
    let st =
        fstat(fd).map_err(|e| Error::io(format!("checking {}", path.display()), errno_io(e)))?;
    let fmt = st.st_mode & libc::S_IFMT;
    let refuse = |why: String, fix| {
        Err(Error::Insecure {
            path: path.display().to_string(),
            why,
            fix,
        })
    };
    match kind {
        Kind::Dir if fmt != libc::S_IFDIR => return refuse("not a directory".into(), FIX_REMOVE),
        Kind::File if fmt != libc::S_IFREG => {
            return refuse("not a regular file".into(), FIX_REMOVE);
        }
        _ => {}
    }
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        let who = if me == 0 {
            "root".to_string()
        } else {
            format!("uid {me}")
        };
        return refuse(format!("owned by uid {}, not {who}", st.st_uid), FIX_OWNER);
    }
    if st.st_mode & 0o022 != 0 {
        return refuse(
            format!(
                "writable by group or others (mode {:o})",
                st.st_mode & 0o7777
            ),
            FIX_OWNER,
        );
    }
    if kind == Kind::File && st.st_nlink > 1 {
        return refuse(format!("has {} hard links", st.st_nlink), FIX_REMOVE);
    }
    Ok(())
}

/// Why `name` in `dir` could not be opened without following a link.
fn open_error(dir: &OwnedFd, path: &Path, name: &str, e: Errno) -> Error {
    match e {
        Errno::ELOOP | Errno::ENOTDIR | Errno::ENXIO => {
            let why = match nix::fcntl::readlinkat(dir, name) {
                Ok(t) => format!("it is a symlink (to {}), not followed", t.to_string_lossy()),
                Err(_) if e == Errno::ENOTDIR => "not a directory".to_string(),
                Err(_) => "not a regular file".to_string(),
            };
            Error::Insecure {
                path: path.display().to_string(),
                why,
                fix: FIX_REMOVE,
            }
        }
        e => Error::io(format!("opening {}", path.display()), errno_io(e)),
    }
}

/// Opens `name` in `dir` (creating it if `create`) without following a
/// symlink planted in its place, and checks the descriptor. `None`: it does
/// not exist and `create` was not asked.
fn open_in(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &str,
    kind: Kind,
    create: bool,
) -> Result<Option<OwnedFd>> {
    let path = dir_path.join(name);
    let base = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let (flags, mode) = match kind {
        Kind::Dir => {
            if create {
                match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(Error::io(
                            format!("creating {}", path.display()),
                            errno_io(e),
                        ));
                    }
                }
            }
            (base | OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
        }
        // O_NONBLOCK: a FIFO planted as the lock must not hang the hook.
        Kind::File if create => (
            base | OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(0o600),
        ),
        Kind::File => (base | OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty()),
    };
    let fd = match openat(dir, name, flags, mode) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if !create => return Ok(None),
        Err(e) => return Err(open_error(dir, &path, name, e)),
    };
    check_fd(&path, &fd, kind)?;
    Ok(Some(fd))
}

impl RunDir {
    pub fn new(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
            records: "networks",
        }
    }

    /// The same directory and lock, with the records of domains (routed
    /// interfaces, the qemu hook) instead of networks'.
    pub fn domains(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
            records: "domains",
        }
    }

    /// The run directory itself, opened as [`open_in`] does; its parent
    /// (`/run`) is taken as it is, and created if `create`.
    fn open_root(&self, create: bool) -> Result<Option<OwnedFd>> {
        let bad = || Error::Insecure {
            path: self.path.display().to_string(),
            why: "not a directory path".into(),
            fix: "pass a directory such as /run/net-hook",
        };
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(bad)?;
        let parent = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if create {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let pfd = match nix::fcntl::open(
            parent,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    format!("opening {}", parent.display()),
                    errno_io(e),
                ));
            }
        };
        open_in(&pfd, parent, name, Kind::Dir, create)
    }

    /// `networks/` inside the run directory.
    fn open_networks(&self, create: bool) -> Result<Option<OwnedFd>> {
        let Some(root) = self.open_root(create)? else {
            return Ok(None);
        };
        open_in(&root, &self.path, self.records, Kind::Dir, create)
    }

    /// Takes the global lock for a companion command, waiting up to
    /// [`COMPANION_LOCK_WAIT`].
    pub fn lock(&self) -> Result<Flock<File>> {
        self.lock_within(COMPANION_LOCK_WAIT).map(|(l, _)| l)
    }

    /// Takes the global lock for a hook, waiting up to [`LOCK_WAIT`], and
    /// says how long it waited for another run.
    pub fn lock_timed(&self) -> Result<(Flock<File>, Duration)> {
        self.lock_within(LOCK_WAIT)
    }

    fn lock_within(&self, wait: Duration) -> Result<(Flock<File>, Duration)> {
        let root = self.open_root(true)?.ok_or_else(|| {
            Error::io(
                format!("opening {}", self.path.display()),
                errno_io(Errno::ENOENT),
            )
        })?;
        let p = self.path.join("lock");
        let mut file = File::from(
            open_in(&root, &self.path, "lock", Kind::File, true)?.ok_or_else(|| {
                Error::io(format!("opening {}", p.display()), errno_io(Errno::ENOENT))
            })?,
        );
        let start = Instant::now();
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok((l, start.elapsed())),
                Err((f, Errno::EWOULDBLOCK)) if start.elapsed() < wait => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(Error::LockTimeout {
                        path: p.display().to_string(),
                        secs: wait.as_secs(),
                    });
                }
                Err((_, e)) => {
                    return Err(Error::io(format!("locking {}", p.display()), errno_io(e)));
                }
            }
        }
    }

    fn networks_path(&self) -> PathBuf {
        self.path.join(self.records)
    }

    /// The network's last outcome; `None` when there is none or it cannot
    /// be trusted (see [`read_checked`](Self::read_checked)).
    pub fn read(&self, network: &str) -> Option<Outcome> {
        self.read_checked(network).ok().flatten()
    }

    /// The network's last outcome, refusing a record that is not a regular
    /// file of ours (a symlink, a foreign or group-writable file).
    pub fn read_checked(&self, network: &str) -> Result<Option<Outcome>> {
        let Some(dir) = self.open_networks(false)? else {
            return Ok(None);
        };
        read_record(&dir, &self.networks_path(), &record_name(network))
    }

    /// Every network's last outcome (records that cannot be trusted or
    /// parsed are left out).
    pub fn list(&self) -> Vec<Outcome> {
        let Ok(Some(dir)) = self.open_networks(false) else {
            return vec![];
        };
        let names: Vec<String> = match dir
            .try_clone()
            .map_err(|_| Errno::EBADF)
            .and_then(nix::dir::Dir::from_fd)
        {
            Ok(mut d) => d
                .iter()
                .flatten()
                .filter_map(|e| e.file_name().to_str().ok().map(String::from))
                .filter(|n| n.ends_with(".toml") && !n.starts_with('.'))
                .collect(),
            Err(_) => return vec![],
        };
        let dpath = self.networks_path();
        let mut out: Vec<Outcome> = names
            .iter()
            .filter_map(|n| read_record(&dir, &dpath, n).ok().flatten())
            .collect();
        out.sort_by(|a, b| a.network.cmp(&b.network));
        out
    }

    /// Replaces the network's record atomically (write + rename), inside
    /// the checked directory.
    pub fn write(&self, o: &Outcome) -> Result<()> {
        let dir = self.open_networks(true)?.ok_or_else(|| {
            Error::io(
                format!("opening {}", self.networks_path().display()),
                errno_io(Errno::ENOENT),
            )
        })?;
        let name = record_name(&o.network);
        let path = self.networks_path().join(&name);
        let text = toml::to_string(o)
            .map_err(|e| Error::io("encoding the outcome record", std::io::Error::other(e)))?;
        remove_stale_temps(&dir, &name);
        let tmp = format!(".{name}.{}", std::process::id());
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o644);
        // A run killed with this pid may have left its temporary file.
        let fd = match openat(&dir, tmp.as_str(), flags, mode) {
            Err(Errno::EEXIST) => {
                let _ = nix::unistd::unlinkat(
                    &dir,
                    tmp.as_str(),
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                );
                openat(&dir, tmp.as_str(), flags, mode)
            }
            r => r,
        };
        let res = fd
            .map_err(errno_io)
            .and_then(|fd| File::from(fd).write_all(text.as_bytes()))
            .and_then(|()| renameat(&dir, tmp.as_str(), &dir, name.as_str()).map_err(errno_io));
        if res.is_err() {
            let _ =
                nix::unistd::unlinkat(&dir, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        res.map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// [`write`](Self::write), reporting a failure on stderr: a run's
    /// outcome is worth keeping, but not worth failing the run over.
    pub fn record(&self, o: &Outcome) {
        if let Some(why) = self.try_record(o) {
            eprintln!("net-hook: {}: {why}", crate::log::shown(&o.network));
        }
    }

    /// [`write`](Self::write), returning a one-line report of a failure.
    pub fn try_record(&self, o: &Outcome) -> Option<String> {
        self.write(o)
            .err()
            .map(|e| format!("could not record the outcome: {e}"))
    }
}

/// Removes `.NAME.PID` files of runs that died between writing a record
/// and renaming it (SIGKILL, a crash): the pid no longer runs. A live
/// run's file is left alone.
fn remove_stale_temps(dir: &OwnedFd, name: &str) {
    let Ok(mut d) = dir
        .try_clone()
        .map_err(|_| Errno::EBADF)
        .and_then(nix::dir::Dir::from_fd)
    else {
        return;
    };
    let prefix = format!(".{name}.");
    let stale: Vec<String> = d
        .iter()
        .flatten()
        .filter_map(|e| e.file_name().to_str().ok().map(String::from))
        .filter(|n| {
            n.strip_prefix(&prefix)
                .and_then(|pid| pid.parse::<i32>().ok())
                .filter(|&pid| pid > 0)
                .is_some_and(|pid| {
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                        == Err(Errno::ESRCH)
                })
        })
        .collect();
    for n in stale {
        let _ = nix::unistd::unlinkat(dir, n.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
}

fn read_record(dir: &OwnedFd, dir_path: &Path, name: &str) -> Result<Option<Outcome>> {
    let Some(fd) = open_in(dir, dir_path, name, Kind::File, false)? else {
        return Ok(None);
    };
    let path = dir_path.join(name);
    let mut text = String::new();
    File::from(fd)
        .take(MAX_RECORD)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(toml::from_str(&text).ok())
}

/// The record's file name: the escaped network name, shortened with a hash
/// when escaping would pass the 255-byte limit of a file name.
fn record_name(network: &str) -> String {
    let e = escape(network);
    if e.len() <= 160 {
        return format!("{e}.toml");
    }
    // FNV-1a: stable across releases, unlike std's hasher.
    let h = network.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}~{h:016x}.toml", &e[..160])
}

/// A file name for any network name: percent-encodes all but [A-Za-z0-9_-]
/// (and '.' after the first byte, so no hidden or `..` names).
pub fn escape(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_is_safe_and_injective_enough() {
        assert_eq!(escape("1_provider"), "1_provider");
        assert_eq!(escape("provider vip"), "provider%20vip");
        assert_eq!(escape(".."), "%2E.");
        assert_eq!(escape("a/b"), "a%2Fb");
        assert_ne!(escape("a b"), escape("a%20b"));
    }

    #[test]
    fn records_round_trip_and_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::new(dir.path());
        assert_eq!(rd.read("n"), None);
        let o = Outcome {
            network: "provider vip".into(),
            op: RunOp::Started,
            time: 5,
            result: RunResult::Refused,
            actions: vec![Step::AddAddr {
                name: "virbr1.104".into(),
                addr: "10.12.8.1/22".parse().unwrap(),
            }],
            message: "m".into(),
            holders: vec!["virbr2".into()],
            bridge_vids_added: vec![BridgeVid {
                bridge: "virbr1".into(),
                vid: 104,
            }],
            ..Outcome::default()
        };
        rd.write(&o).unwrap();
        assert_eq!(rd.read("provider vip"), Some(o.clone()));
        // Scalars stay top-level lines (scenarios grep them), steps are tables.
        let text = toml::to_string(&Outcome {
            unnat_backend: Some(Backend::Nftables),
            ..o
        })
        .unwrap();
        assert!(text.contains("\nunnat_backend = \"nftables\"\n"), "{text}");
        assert!(text.contains("[[actions]]\nstep = \"add_addr\""), "{text}");
        // A record from before steps were data keeps everything else.
        let old = "network = \"n\"\nop = \"started\"\ntime = 1\nresult = \"ok\"\nmessage = \"m\"\nactions = [\"create virbr1.104\"]\n[[bridge_vids_added]]\nbridge = \"virbr1\"\nvid = 104\n";
        fs::create_dir_all(dir.path().join("networks")).unwrap();
        fs::write(dir.path().join("networks/n.toml"), old).unwrap();
        let o = rd.read("n").unwrap();
        assert!(o.actions.is_empty());
        assert_eq!(o.bridge_vids_added.len(), 1);
        let held = rd.lock().unwrap();
        let f = File::open(dir.path().join("lock")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        let f = File::open(dir.path().join("lock")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok());
    }

    fn outcome(network: &str) -> Outcome {
        Outcome {
            network: network.into(),
            message: "m".into(),
            ..Outcome::default()
        }
    }

    fn refused(r: Result<impl std::fmt::Debug>, path: &Path, why: &str) {
        let e = r.expect_err("must refuse").to_string();
        assert!(
            e.starts_with(&format!("refusing {}: ", path.display())) && e.contains(why),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn a_symlink_planted_as_the_run_dir_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let run = dir.path().join("run");
        std::os::unix::fs::symlink(&elsewhere, &run).unwrap();
        let rd = RunDir::new(&run);
        refused(rd.lock(), &run, "it is a symlink (to ");
        refused(rd.write(&outcome("n")), &run, "symlink");
        assert_eq!(rd.read("n"), None);
        assert!(rd.list().is_empty());
        assert_eq!(
            fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "nothing written through it"
        );
        assert!(
            rd.try_record(&outcome("n"))
                .unwrap()
                .contains("could not record the outcome: refusing")
        );
    }

    #[test]
    fn symlinks_inside_the_run_dir_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "precious").unwrap();
        let run = dir.path().join("run");
        fs::create_dir(&run).unwrap();
        std::os::unix::fs::symlink(&target, run.join("lock")).unwrap();
        let rd = RunDir::new(&run);
        refused(rd.lock(), &run.join("lock"), "symlink");
        // networks/ planted as a symlink to a directory.
        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        std::os::unix::fs::symlink(&other, run.join("networks")).unwrap();
        refused(rd.write(&outcome("n")), &run.join("networks"), "symlink");
        assert_eq!(fs::read_dir(&other).unwrap().count(), 0);
        // A record planted as a symlink is not read, and writing replaces
        // the link, not its target.
        fs::remove_file(run.join("networks")).unwrap();
        fs::create_dir(run.join("networks")).unwrap();
        let rec = run.join("networks/n.toml");
        std::os::unix::fs::symlink(&target, &rec).unwrap();
        fs::write(&target, toml::to_string(&outcome("n")).unwrap()).unwrap();
        refused(rd.read_checked("n"), &rec, "symlink");
        assert_eq!(rd.read("n"), None);
        assert!(rd.list().is_empty());
        rd.write(&outcome("n")).unwrap();
        assert!(!fs::symlink_metadata(&rec).unwrap().file_type().is_symlink());
        assert_eq!(rd.read("n"), Some(outcome("n")));
        assert_eq!(rd.list(), vec![outcome("n")]);
        // A hard link to a file elsewhere is refused as well.
        fs::remove_file(&rec).unwrap();
        fs::hard_link(&target, &rec).unwrap();
        refused(rd.read_checked("n"), &rec, "hard links");
        // A FIFO as the lock does not hang the run.
        fs::remove_file(run.join("lock")).unwrap();
        nix::unistd::mkfifo(&run.join("lock"), Mode::from_bits_truncate(0o600)).unwrap();
        refused(rd.lock(), &run.join("lock"), "not a regular file");
    }

    #[test]
    fn a_group_writable_or_foreign_run_dir_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        fs::create_dir(&run).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o775)).unwrap();
        let rd = RunDir::new(&run);
        refused(rd.lock(), &run, "writable by group or others (mode 775)");
        refused(rd.write(&outcome("n")), &run, "chmod go-w");
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        rd.write(&outcome("n")).unwrap();
        let rec = run.join("networks/n.toml");
        fs::set_permissions(&rec, fs::Permissions::from_mode(0o666)).unwrap();
        refused(
            rd.read_checked("n"),
            &rec,
            "writable by group or others (mode 666)",
        );
        fs::set_permissions(&rec, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(rd.read_checked("n").unwrap().is_some());
        // Owned by someone else: only root can make one to test with.
        if nix::unistd::geteuid().is_root() {
            let nobody = nix::unistd::Uid::from_raw(65534);
            nix::unistd::chown(&run, Some(nobody), None).unwrap();
            refused(rd.lock(), &run, "owned by uid 65534, not root");
            nix::unistd::chown(&run, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
            nix::unistd::chown(&rec, Some(nobody), None).unwrap();
            refused(rd.read_checked("n"), &rec, "owned by uid 65534, not root");
        }
    }

    #[test]
    fn a_killed_runs_temporary_record_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::new(dir.path());
        rd.write(&outcome("n")).unwrap();
        let nets = dir.path().join("networks");
        // A pid above pid_max: never a live run.
        let dead = nets.join(".n.toml.999999999");
        let other = nets.join(".m.toml.999999999");
        for p in [&dead, &other] {
            fs::write(p, "x").unwrap();
        }
        rd.write(&outcome("n")).unwrap();
        assert!(!dead.exists());
        assert!(
            other.exists(),
            "another network's file is its own run's business"
        );
    }

    #[test]
    fn long_and_odd_names_get_short_distinct_record_files() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::new(&dir.path().join("run"));
        let long = "\u{e9}".repeat(127); // 254 bytes, 762 escaped
        let names = [
            long.clone(),
            format!("{long}x"),
            "a/../b".into(),
            "\n".into(),
            "..".into(),
        ];
        for n in &names {
            assert!(record_name(n).len() <= 200, "{n}");
            rd.write(&outcome(n)).unwrap();
        }
        for n in &names {
            assert_eq!(rd.read(n).map(|o| o.network), Some(n.clone()));
        }
        assert_eq!(rd.list().len(), names.len());
        assert_ne!(record_name(&long), record_name(&format!("{long}x")));
    }
}
