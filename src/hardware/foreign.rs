//! Foreign load: how much CPU the machine gave to processes that are neither the harness
//! nor its servers while a cell was measured, and how much the hypervisor stole. Two
//! measurements side by side ruin each other, and a row that does not say so cannot be
//! trusted; these figures are the row's `foreign_cpu_pct` and `steal_pct`.
//!
//! Foreign CPU is the machine's busy time from `/proc/stat` (user, nice, system, irq,
//! softirq of every CPU) minus our own (`/proc/self/stat` and `/proc/PID/stat` of each
//! server, utime + stime), over the same interval. The other way, summing `/proc/PID/stat`
//! over every process, misses each process that starts and ends between two samples (a
//! compiler's many short `rustc` and `cc` runs, which are exactly the load this is for) and
//! kernel and interrupt time; `/proc/stat` counts every tick whoever spent it. Both count
//! in the same clock ticks (`USER_HZ`), so the difference is a share of the same time; the
//! two accountings can disagree by a tick or two per CPU, which the clamp at zero absorbs.
//! Steal is the `/proc/stat` steal field: time a virtual CPU was ready but the hypervisor
//! ran something else.
//!
//! Parsing is pure ([`parse_proc_stat`], [`parse_pid_ticks`]) and tested on literal text;
//! [`Snapshot::take`] reads the files.

use std::collections::HashMap;
use std::path::Path;

/// The machine's CPU time counters from the first (`cpu `) line of `/proc/stat`, in clock
/// ticks, summed over every CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    /// user + nice + system + irq + softirq (guest time is inside user and nice already).
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    /// Time the hypervisor ran something else while a virtual CPU was ready.
    pub steal: u64,
    /// CPUs (`cpuN` lines).
    pub cpus: u32,
}

impl CpuTicks {
    /// Every tick of every CPU: busy, idle and stolen.
    pub fn total(&self) -> u64 {
        self.busy + self.idle + self.steal
    }
}

/// Reads `/proc/stat` text: the aggregate `cpu` line and the number of `cpuN` lines.
/// `None` when the aggregate line is missing or malformed.
pub fn parse_proc_stat(text: &str) -> Option<CpuTicks> {
    let mut ticks = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let v: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
                // user nice system idle iowait irq softirq steal [guest guest_nice]
                let at = |i: usize| v.get(i).copied().unwrap_or(0);
                if v.len() < 4 {
                    return None;
                }
                ticks = Some(CpuTicks {
                    busy: at(0) + at(1) + at(2) + at(5) + at(6),
                    idle: at(3) + at(4),
                    steal: at(7),
                    cpus: 0,
                });
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    ticks.map(|t| CpuTicks {
        cpus: cpus.max(1),
        ..t
    })
}

/// utime + stime (fields 14 and 15) of `/proc/PID/stat` text, in clock ticks. The command
/// name (field 2) sits in parentheses and may itself hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_pid_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace(); // field 3 (state) first
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The counters at one moment: the machine's and ours (this process and each server).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// The machine's.
    pub machine: CpuTicks,
    /// CPU ticks of each of our processes by pid: this one and the servers it launched.
    pub ours: HashMap<u32, u64>,
}

/// The foreign load over an interval between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForeignLoad {
    /// CPU time of processes other than ours, as a percentage of one core (100 = one core
    /// busy the whole interval).
    pub foreign_cpu_pct: f64,
    /// Our processes' CPU time, as a percentage of one core.
    pub ours_cpu_pct: f64,
    /// Stolen time as a percentage of the machine's CPU time (every CPU).
    pub steal_pct: f64,
    /// Length of the interval as the CPU counters saw it (clock ticks of one CPU).
    pub ticks: u64,
}

impl Snapshot {
    /// Reads `/proc/stat`, `/proc/self/stat` and `/proc/PID/stat` of every pid in
    /// `servers` (a server whose file cannot be read is left out: it has exited).
    pub fn take(servers: &[u32]) -> Result<Snapshot, String> {
        let machine = read("/proc/stat", parse_proc_stat)?;
        let mut ours = HashMap::new();
        ours.insert(
            std::process::id(),
            read("/proc/self/stat", parse_pid_ticks)?,
        );
        for &pid in servers {
            if let Ok(t) = read(&format!("/proc/{pid}/stat"), parse_pid_ticks) {
                ours.insert(pid, t);
            }
        }
        Ok(Snapshot { machine, ours })
    }

    /// The load from `self` to `later`; `None` when no time passed on the counters. A
    /// process of ours seen only in `later` started in between and counts from zero.
    pub fn until(&self, later: &Snapshot) -> Option<ForeignLoad> {
        let (a, b) = (&self.machine, &later.machine);
        let total = b.total().checked_sub(a.total())?;
        let cpus = u64::from(b.cpus.max(1));
        let ticks = total / cpus;
        if ticks == 0 {
            return None;
        }
        let busy = b.busy.saturating_sub(a.busy);
        let ours: u64 = later
            .ours
            .iter()
            .map(|(pid, t)| t.saturating_sub(self.ours.get(pid).copied().unwrap_or(0)))
            .sum();
        let one_core = |t: u64| t as f64 / ticks as f64 * 100.0;
        Some(ForeignLoad {
            foreign_cpu_pct: one_core(busy.saturating_sub(ours)),
            ours_cpu_pct: one_core(ours),
            steal_pct: b.steal.saturating_sub(a.steal) as f64 / total as f64 * 100.0,
            ticks,
        })
    }
}

fn read<T>(path: &str, parse: fn(&str) -> Option<T>) -> Result<T, String> {
    let text = std::fs::read_to_string(Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    parse(&text).ok_or_else(|| format!("{path}: unexpected format"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-CPU `/proc/stat` as Linux 6.x writes it (values of a real VM, shortened tail).
    const STAT: &str = "cpu  10132153 290696 3084719 46828483 16683 0 25195 1501 0 0\n\
cpu0 1393280 32966 462960 22990172 6678 0 16155 700 0 0\n\
cpu1 1338879 27624 446073 23838311 10004 0 9040 801 0 0\n\
intr 199292372 19 10 0 0 0\nctxt 413394633\nbtime 1765090000\nprocesses 2626432\n";

    #[test]
    fn proc_stat_counts_busy_idle_steal_and_cpus() {
        let t = parse_proc_stat(STAT).unwrap();
        assert_eq!(t.busy, 10132153 + 290696 + 3084719 + 25195);
        assert_eq!(t.idle, 46828483 + 16683);
        assert_eq!(t.steal, 1501);
        assert_eq!(t.cpus, 2);
        assert_eq!(parse_proc_stat("intr 1 2\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 x 3 4\n"), None);
    }

    #[test]
    fn pid_stat_ticks_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (llama (server) x) R 1 4242 4242 0 -1 4194304 5010 0 0 0 \
                    1234 56 0 0 20 0 9 0 777 1000000 200 18446744073709551615";
        assert_eq!(parse_pid_ticks(stat), Some(1290));
        assert_eq!(parse_pid_ticks("4242 (x) R 1"), None);
    }

    fn snapshot(busy: u64, idle: u64, steal: u64, ours: &[(u32, u64)]) -> Snapshot {
        Snapshot {
            machine: CpuTicks {
                busy,
                idle,
                steal,
                cpus: 2,
            },
            ours: ours.iter().copied().collect(),
        }
    }

    #[test]
    fn foreign_is_the_machines_busy_time_less_ours_per_core() {
        // One second on 2 CPUs at 100 Hz: 200 ticks. Busy 150, of which ours 60 (the
        // harness 10, a server 50): foreign 90 ticks over 100 ticks of one CPU = 90% of a
        // core; steal 10 of 200 = 5% of the machine.
        let a = snapshot(1000, 5000, 100, &[(1, 500), (7, 900)]);
        let b = snapshot(1150, 5040, 110, &[(1, 510), (7, 950)]);
        let load = a.until(&b).unwrap();
        assert_eq!(load.ticks, 100);
        assert!((load.foreign_cpu_pct - 90.0).abs() < 1e-9, "{load:?}");
        assert!((load.ours_cpu_pct - 60.0).abs() < 1e-9, "{load:?}");
        assert!((load.steal_pct - 5.0).abs() < 1e-9, "{load:?}");
        // A server that appeared in between counts from zero; more ours than busy is zero
        // foreign, not negative.
        let c = snapshot(1150, 5040, 110, &[(1, 510), (8, 200)]);
        let load = a.until(&c).unwrap();
        assert_eq!(load.foreign_cpu_pct, 0.0);
        assert!(a.until(&a).is_none());
    }
}
