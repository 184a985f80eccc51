//! Writes the man pages (one per command and subcommand) and the shell
//! completions generated from net-hook's CLI definition, for packaging:
//!
//!     cargo run --example gen-assets -- OUT-DIR
//!
//! Generated, not hand-written, so they cannot drift from `--help`.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/assets".into()),
    );
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let cmd = net_hook::cli::Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "net-hook", &comp)?;
    }
    println!("{}", out.display());
    Ok(())
}
