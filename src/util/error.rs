//! How a command's failure becomes an exit code: bad input (2), a failure of the engine or
//! the environment (4), an interrupt (130 / 143). Every layer marks its errors with these
//! helpers, so they live at the bottom, below everything that fails.

/// Exit code for a command that failed on bad input: a flag, a file, a profile.
pub const EXIT_ERROR: u8 = 2;
/// Exit code for a failure of the engine or the environment rather than of the input, in
/// the commands that measure (`run`, `validate`, `check --profile`): no llama-server to be
/// had, an engine build or self-test that failed, llama-bench failing.
pub const EXIT_ENVIRONMENT: u8 = 4;

/// Marks an error as a failure of the engine or the environment ([`EXIT_ENVIRONMENT`]).
/// A `--server-bin` that names no file is bad input, checked before ([`check_server_bin`]).
/// Transparent: the message and its causes print exactly as the wrapped error's.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EnvironmentError(#[from] anyhow::Error);

/// Wraps an error as an [`EnvironmentError`], for `.map_err(environment)`; an interrupt
/// stays an interrupt (exit 130 or 143).
pub fn environment(err: anyhow::Error) -> anyhow::Error {
    if err
        .chain()
        .any(|e| e.is::<crate::util::interrupt::Interrupted>())
    {
        return err;
    }
    anyhow::Error::new(EnvironmentError(err))
}

/// `--server-bin` must name a file: a wrong flag is bad input (exit 2), not an engine
/// failure.
pub fn check_server_bin(server_bin: Option<&std::path::Path>) -> anyhow::Result<()> {
    match server_bin {
        Some(p) if !p.is_file() => anyhow::bail!("--server-bin {}: no such file", p.display()),
        _ => Ok(()),
    }
}

/// The exit code of a command that failed with `err`: 130 or 143 when SIGINT or SIGTERM
/// stopped it ([`crate::util::interrupt::Interrupted`]), [`EXIT_ENVIRONMENT`] when the engine or
/// the environment failed anywhere in its chain, else [`EXIT_ERROR`].
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if let Some(i) = err
        .chain()
        .find_map(|e| e.downcast_ref::<crate::util::interrupt::Interrupted>())
    {
        return i.exit_code();
    }
    if err.chain().any(|e| e.is::<EnvironmentError>()) {
        EXIT_ENVIRONMENT
    } else {
        EXIT_ERROR
    }
}

/// An error with its sources, `outer: inner: innermost`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn an_environment_failure_keeps_its_code_and_prints_its_cause_once() {
        let cause = std::io::Error::other("llama-server not found");
        let err = environment(anyhow::Error::new(cause).context("finding the engine"));
        let err = Err::<(), _>(err).context("role `x`").unwrap_err();
        assert_eq!(exit_code_of(&err), EXIT_ENVIRONMENT);
        assert_eq!(
            format!("{err:#}"),
            "role `x`: finding the engine: llama-server not found"
        );
        assert_eq!(exit_code_of(&anyhow::anyhow!("bad flag")), EXIT_ERROR);
    }
}
