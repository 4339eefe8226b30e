//! CPU time for the driver's `client_cpu_pct`, the harness's own CPU time during measurement
//! as a share of the server's: the server's from `/proc/<pid>/stat` (10 ms ticks), the
//! harness's own from `getrusage` (microseconds).

use std::io;
use std::time::Duration;

/// User plus system CPU time consumed so far by process `pid` (all its threads).
pub fn process_cpu_time(pid: u32) -> io::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
    let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected format of {path}"),
        )
    })?;
    Ok(ticks_to_duration(ticks))
}

/// CPU time consumed so far by this harness process (all threads), from `getrusage`, which
/// counts in microseconds: the harness uses little CPU, and `/proc` counts in 10 ms ticks.
pub fn self_cpu_time() -> io::Result<Duration> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(io::Error::from)?;
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_micros((t.tv_sec().max(0) as u64) * 1_000_000 + t.tv_usec().max(0) as u64)
    };
    Ok(micros(usage.user_time()) + micros(usage.system_time()))
}

/// utime + stime (fields 14 and 15) in clock ticks. The command name (field 2) sits in
/// parentheses and may itself contain spaces and parentheses, so fields are counted from
/// the last ')'.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace(); // starts at field 3 (state)
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    let per_second = if per_second > 0 {
        per_second as u64
    } else {
        100
    };
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_a_tricky_name() {
        let stat = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 5 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        // Ticks are 10 ms and the machine may be busy: spin until the figure moves (it
        // must, long before the 10 s cap) rather than for a fixed wall time.
        let before = self_cpu_time().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while self_cpu_time().unwrap() == before && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        assert!(self_cpu_time().unwrap() > before);
    }

    #[test]
    fn missing_process_is_an_error_naming_the_path() {
        let err = process_cpu_time(u32::MAX).unwrap_err();
        assert!(err.to_string().contains("/proc/4294967295/stat"));
    }
}
