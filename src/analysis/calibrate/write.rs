//! Writes a calibration: `<dir>/<host>.md`, `<dir>/<host>.toml` (the expectations a profile
//! reads) and `<dir>/<host>.fits.toml` (the fits, for tools).

use super::*;

/// File-name-safe host name.
fn safe_host(host: &str) -> String {
    let s = crate::util::safe_file_name(host, "-.");
    if s.is_empty() {
        "unknown-host".into()
    } else {
        s
    }
}

/// Writes `<dir>/<host>.md` and `<dir>/<host>.toml`; returns the TOML path.
pub fn write(cal: &Calibration, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let host = safe_host(&cal.expectations.calibration.host);
    let md = dir.join(format!("{host}.md"));
    std::fs::write(&md, cal.markdown()).with_context(|| format!("writing {}", md.display()))?;
    let toml_path = dir.join(format!("{host}.toml"));
    let body = format!(
        "# Written by `bench calibrate`: this machine's expected decode rates. A profile uses them with\n# expectations = \"{}\"\n{}",
        toml_path.display(),
        toml::to_string(&profile_expectations(cal))?
    );
    std::fs::write(&toml_path, body).with_context(|| format!("writing {}", toml_path.display()))?;
    let fits_path = dir.join(format!("{host}.fits.toml"));
    let fits = format!(
        "# Written by `bench calibrate`: roofline fits, acceleration, speculative model.\n{}",
        toml::to_string(&cal.expectations)?
    );
    std::fs::write(&fits_path, fits).with_context(|| format!("writing {}", fits_path.display()))?;
    Ok(toml_path)
}
