//! `bench profile list` and `bench profile show NAME`: the profiles compiled into the
//! binary, so that users of an installed `bench` (without the source tree's `profiles/`)
//! can see what each one runs and copy one to edit.

use super::{parse, source_text, ProfileSource, EMBEDDED};
use crate::util::output::{OutputArgs, Style, Table};
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
    List {
        /// Output format (json: one object per profile).
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print a profile's TOML as it is read (embedded, profiles/NAME.toml, or a path).
    Show {
        /// Profile name or path.
        name: String,
    },
}

/// Runs `bench profile`.
pub fn command(args: &ProfileArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.command {
        ProfileCommand::List { output } => list().render(output.format())?,
        ProfileCommand::Show { name } => source_text(name)?.0,
    };
    // A closed stdout (`| head`) is not an error.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// One row per embedded profile: name, description, role names.
fn list() -> Table {
    let mut t = Table::new(["profile", "description", "roles"]).styled(Style::Plain);
    for (name, text) in EMBEDDED {
        let (description, roles) = match parse(text, ProfileSource::Embedded(name.to_string())) {
            Ok(p) => {
                let roles: Vec<&str> = p.roles.iter().map(|r| r.name.as_str()).collect();
                (p.description, roles.join(", "))
            }
            Err(e) => (format!("(does not parse: {e})"), String::new()),
        };
        t.push(vec![name.to_string(), description, roles]);
    }
    t.note("");
    t.note("`bench profile show NAME` prints one; `bench run --profile NAME` runs it.");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names_every_embedded_profile_with_its_roles() {
        let out = list().terminal();
        let smoke = out.lines().find(|l| l.starts_with(" smoke ")).unwrap();
        // profiles/smoke.toml has these roles (read by hand from the file).
        for role in ["target", "draft", "dense2", "moe"] {
            assert!(smoke.contains(role), "{smoke}");
        }
        // Nine profiles in profiles/ and the note.
        assert_eq!(out.lines().filter(|l| !l.is_empty()).count(), 10, "{out}");
    }

    #[test]
    fn show_gives_the_profile_text() {
        // Tests run in the source tree, where profiles/real-small.toml is read first.
        let (text, _) = source_text("real-small").unwrap();
        assert_eq!(text, include_str!("../../profiles/real-small.toml"));
        assert!(source_text("no-such-profile").is_err());
    }
}
