//! Foreign load from /proc against processes the test controls: a busy-loop child beside
//! us is foreign load; CPU burnt in the test's own thread is ours, not foreign. The figures
//! the assertions compare with come from elsewhere: the child's busy loop (one core when
//! it runs alone) and `getrusage` (the kernel's own account of this process, not
//! `/proc/self/stat`). The burner is started and killed by pid.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tpsbench::hardware::foreign::{ForeignLoad, Snapshot};

/// A child process killed (SIGKILL, by its pid) and reaped when dropped.
struct Burner(Child);

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn load_over(work: impl FnOnce()) -> (ForeignLoad, Snapshot, Snapshot) {
    let a = Snapshot::take(&[]).unwrap();
    work();
    let b = Snapshot::take(&[]).unwrap();
    (a.until(&b).unwrap(), a, b)
}

/// This process's CPU time by `getrusage` (microseconds).
fn rusage_self() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Duration::from_micros(us(u.user_time()) + us(u.system_time()))
}

#[test]
fn a_busy_loop_beside_the_harness_is_foreign_load() {
    let burner = Burner(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(100));
    let (load, ..) = load_over(|| std::thread::sleep(Duration::from_secs(1)));
    drop(burner);
    eprintln!("busy loop beside us: {load:?}");
    // One core spinning (more when others use the machine too); at least half a core even
    // when two other processes compete for the two cores.
    assert!(load.foreign_cpu_pct > 50.0, "{load:?}");
    assert!(load.ours_cpu_pct < 20.0, "we slept: {load:?}");
}

#[test]
fn cpu_burnt_in_our_own_thread_is_not_foreign() {
    let wall = Instant::now();
    let before = rusage_self();
    let (load, a, b) = load_over(|| {
        let start = Instant::now();
        let mut x = 1u64;
        while start.elapsed() < Duration::from_secs(1) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    });
    let burnt = (rusage_self() - before).as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0;
    eprintln!("our own burn: {load:?}, getrusage {burnt:.1}% of a core");
    assert!(burnt > 30.0, "the burn got {burnt:.1}% of a core");
    // Our burn is counted as ours (the kernel's two accounts agree within a few ticks) ...
    assert!(
        (load.ours_cpu_pct - burnt).abs() < 15.0,
        "{load:?} against getrusage {burnt:.1}%"
    );
    // ... and is not in the foreign figure: foreign is at most the machine's busy time
    // less our burn.
    let ticks = (b.machine.busy + b.machine.idle + b.machine.steal)
        - (a.machine.busy + a.machine.idle + a.machine.steal);
    let machine_busy_pct = (b.machine.busy - a.machine.busy) as f64
        / (ticks as f64 / f64::from(b.machine.cpus))
        * 100.0;
    assert!(
        load.foreign_cpu_pct <= machine_busy_pct - 0.8 * burnt,
        "{load:?}: the machine was busy {machine_busy_pct:.1}%, we burnt {burnt:.1}%"
    );
}
