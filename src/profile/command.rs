//! `bench profile list` and `bench profile show NAME`: the profiles compiled into the
//! binary, so that users of an installed `bench` (without the source tree's `profiles/`)
//! can see what each one runs and copy one to edit.

use super::{parse, source_text, ProfileSource, EMBEDDED};
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `bench profile`.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    #[command(subcommand)]
    pub command: ProfileCommand,
}

/// What `bench profile` does.
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// The embedded profiles: name, roles and description.
    List,
    /// Print a profile's TOML as it is read (embedded, profiles/NAME.toml, or a path).
    Show {
        /// Profile name or path.
        name: String,
    },
}

/// Runs `bench profile`.
pub fn command(args: &ProfileArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.command {
        ProfileCommand::List => list(),
        ProfileCommand::Show { name } => source_text(name)?.0,
    };
    // A closed stdout (`| head`) is not an error.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// One line per embedded profile: name, role names, description.
fn list() -> String {
    let mut out = String::new();
    for (name, text) in EMBEDDED {
        let line = match parse(text, ProfileSource::Embedded(name.to_string())) {
            Ok(p) => {
                let roles: Vec<&str> = p.roles.iter().map(|r| r.name.as_str()).collect();
                format!("{name:<11} {} ({})\n", p.description, roles.join(", "))
            }
            Err(e) => format!("{name:<11} (does not parse: {e})\n"),
        };
        out.push_str(&line);
    }
    out.push_str("\n`bench profile show NAME` prints one; `bench run --profile NAME` runs it.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names_every_embedded_profile_with_its_roles() {
        let out = list();
        let smoke = out.lines().find(|l| l.starts_with("smoke ")).unwrap();
        // profiles/smoke.toml has these roles (read by hand from the file).
        for role in ["target", "draft", "dense2", "moe"] {
            assert!(smoke.contains(role), "{smoke}");
        }
        assert_eq!(out.lines().filter(|l| !l.is_empty()).count(), 9, "{out}");
    }

    #[test]
    fn show_gives_the_profile_text() {
        // Tests run in the source tree, where profiles/real-small.toml is read first.
        let (text, _) = source_text("real-small").unwrap();
        assert_eq!(text, include_str!("../../profiles/real-small.toml"));
        assert!(source_text("no-such-profile").is_err());
    }
}
