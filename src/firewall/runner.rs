//! Running firewall programs: a seam, so unit tests answer for them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Error;

/// Runs a firewall command. A fake answers in unit tests.
pub trait Runner {
    /// Returns (exit status, stdout, stderr).
    fn run(&mut self, argv: &[String], stdin: Option<&str>)
    -> Result<(i32, String, String), Error>;
    /// Whether the program exists.
    fn has(&self, program: &str) -> bool;
}

/// The real runner: absolute paths, a clean environment (no reliance on
/// libvirt's PATH), stable C-locale output, in the foreground.
pub struct Sys;

fn find_bin(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

impl Runner for Sys {
    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&str>,
    ) -> Result<(i32, String, String), Error> {
        let name = argv.first().map(String::as_str).unwrap_or_default();
        let prog = find_bin(name).ok_or_else(|| Error::Missing {
            program: name.to_string(),
        })?;
        let spawn = |what: &str, source| Error::Spawn {
            program: name.to_string(),
            what: what.to_string(),
            source,
        };
        let mut child = Command::new(&prog)
            .args(&argv[1..])
            .env_clear()
            .env("LC_ALL", "C")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn("starting it", e))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| spawn("writing its input", e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| spawn("waiting for it", e))?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    fn has(&self, program: &str) -> bool {
        find_bin(program).is_some()
    }
}
