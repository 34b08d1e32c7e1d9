//! A CPU limit for an in-process Souk node, as `resources.limits.cpu` sets one for a pod:
//! a cgroup in Linux's v1 `cpu` hierarchy with CFS bandwidth control (a quota of CPU time
//! per 100 ms period, Kubernetes' period), and one of the same name in the `cpuacct`
//! hierarchy (the same cgroup where both controllers share a hierarchy) that counts the
//! CPU the node used. The node's system thread enters both before it builds the node,
//! so every thread the node starts (HTTP workers, arbiters, blocking pools) is created
//! inside them. Needs the v1 `cpu` and `cpuacct` hierarchies
//! mounted under `/sys/fs/cgroup` and writable (root); elsewhere creating one fails and
//! says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

const CPU_ROOT: &str = "/sys/fs/cgroup/cpu";
const CPUACCT_ROOT: &str = "/sys/fs/cgroup/cpuacct";
/// The CFS period Kubernetes sets for a CPU limit.
const PERIOD_US: u64 = 100_000;

/// One node's cgroups, removed when dropped (their remaining threads moved back to the
/// root first).
#[derive(Debug)]
pub struct NodeCgroup {
    /// Cores of CPU time per wall second the node may use.
    cores: f64,
    cpu: PathBuf,
    cpuacct: PathBuf,
    /// `cpu` and `cpuacct` are one cgroup (the controllers share a hierarchy).
    one_hierarchy: bool,
}

/// What a set of node cgroups had counted at one moment, summed over the nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodesCpuTimes {
    /// CPU time the nodes' threads used.
    used: Duration,
    /// CFS periods in which a node had runnable threads, and those it was throttled in.
    periods: u64,
    throttled: u64,
    /// The nodes' limits added up, in cores.
    limit_cores: f64,
}

/// What the limited nodes did during a cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodesCpuUse {
    /// The nodes' limits added up, in cores.
    pub limit_cores: f64,
    /// CPU the nodes used over what their limits allowed in the cell's wall time, 0 to 1.
    pub busy_of_limit: f64,
    /// Core-milliseconds the nodes used per successful reservation.
    pub ms_per_reservation: Option<f64>,
    /// Share of the CFS periods with runnable threads in which a node hit its limit.
    pub throttled_share: Option<f64>,
}

impl NodeCgroup {
    /// Creates the cgroups `name` in both hierarchies, limited to `cores` of CPU time per
    /// wall second.
    pub fn create(name: &str, cores: f64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            cores.is_finite() && cores >= 0.01,
            "a node's cpu limit must be at least 0.01 cores, not {cores}"
        );
        for root in [CPU_ROOT, CPUACCT_ROOT] {
            anyhow::ensure!(
                Path::new(root).join("tasks").exists(),
                "no cgroup v1 hierarchy at {root}: a cpu limit per node needs Linux with the cgroup v1 cpu and cpuacct controllers mounted under /sys/fs/cgroup"
            );
        }
        // Many systems mount both controllers in one hierarchy (`cpu,cpuacct`), which
        // both paths then name.
        let one_hierarchy =
            std::fs::canonicalize(CPU_ROOT)? == std::fs::canonicalize(CPUACCT_ROOT)?;
        let cpu = Path::new(CPU_ROOT).join(name);
        let cpuacct = Path::new(CPUACCT_ROOT).join(name);
        std::fs::create_dir(&cpu).map_err(|error| {
            anyhow::anyhow!("cannot create the cgroup {}: {error}", cpu.display())
        })?;
        if !one_hierarchy {
            if let Err(error) = std::fs::create_dir(&cpuacct) {
                let _ = std::fs::remove_dir(&cpu);
                anyhow::bail!("cannot create the cgroup {}: {error}", cpuacct.display());
            }
        }
        let cgroup = Self {
            cores,
            cpu,
            cpuacct,
            one_hierarchy,
        };
        let quota_us = (cores * PERIOD_US as f64).round() as u64;
        write(
            &cgroup.cpu.join("cpu.cfs_period_us"),
            &PERIOD_US.to_string(),
        )?;
        write(&cgroup.cpu.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
        Ok(cgroup)
    }

    /// Moves the calling thread into both cgroups; the threads it starts from now on are
    /// created inside them.
    pub fn enter_current_thread(&self) -> anyhow::Result<()> {
        let thread = current_thread_id()?;
        for (dir, _) in self.hierarchies() {
            write(&dir.join("tasks"), &thread)?;
        }
        Ok(())
    }

    /// The node's cgroup in each distinct hierarchy, with that hierarchy's root.
    fn hierarchies(&self) -> Vec<(&Path, &'static str)> {
        let mut hierarchies = vec![(self.cpu.as_path(), CPU_ROOT)];
        if !self.one_hierarchy {
            hierarchies.push((self.cpuacct.as_path(), CPUACCT_ROOT));
        }
        hierarchies
    }

    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// The cgroup's path in the `cpu` hierarchy.
    pub fn path(&self) -> &Path {
        &self.cpu
    }

    /// Threads in the node's `cpu` cgroup now.
    pub fn threads(&self) -> anyhow::Result<usize> {
        Ok(read(&self.cpu.join("tasks"))?.lines().count())
    }

    fn times(&self) -> anyhow::Result<NodesCpuTimes> {
        let used_ns: u64 = read(&self.cpuacct.join("cpuacct.usage"))?.trim().parse()?;
        let (periods, throttled) = parse_cpu_stat(&read(&self.cpu.join("cpu.stat"))?)
            .ok_or_else(|| anyhow::anyhow!("cannot read {}/cpu.stat", self.cpu.display()))?;
        Ok(NodesCpuTimes {
            used: Duration::from_nanos(used_ns),
            periods,
            throttled,
            limit_cores: self.cores,
        })
    }
}

impl Drop for NodeCgroup {
    fn drop(&mut self) {
        for (dir, root) in self.hierarchies() {
            if let Ok(tasks) = read(&dir.join("tasks")) {
                for thread in tasks.lines() {
                    let _ = write(&Path::new(root).join("tasks"), thread);
                }
            }
            if let Err(error) = std::fs::remove_dir(dir) {
                eprintln!(
                    "cannot remove the bench node's cgroup {}: {error}",
                    dir.display()
                );
            }
        }
    }
}

impl std::ops::Add for NodesCpuTimes {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            used: self.used + other.used,
            periods: self.periods + other.periods,
            throttled: self.throttled + other.throttled,
            limit_cores: self.limit_cores + other.limit_cores,
        }
    }
}

/// The counters of `cgroups` now, summed; `None` when there are none.
pub fn read_all(cgroups: &[Arc<NodeCgroup>]) -> anyhow::Result<Option<NodesCpuTimes>> {
    let times = cgroups
        .iter()
        .map(|cgroup| cgroup.times())
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(times.into_iter().reduce(|sum, times| sum + times))
}

/// What the nodes did between two readings `wall` apart, while `reserved` reservations
/// succeeded.
pub fn between(
    before: NodesCpuTimes,
    after: NodesCpuTimes,
    wall: Duration,
    reserved: u64,
) -> Option<NodesCpuUse> {
    let used = after.used.checked_sub(before.used)?;
    let periods = after.periods.checked_sub(before.periods)?;
    let throttled = after.throttled.checked_sub(before.throttled)?;
    let allowed = after.limit_cores * wall.as_secs_f64();
    if allowed <= 0.0 {
        return None;
    }
    let used_ms = used.as_secs_f64() * 1_000.0;
    Some(NodesCpuUse {
        limit_cores: after.limit_cores,
        busy_of_limit: used.as_secs_f64() / allowed,
        ms_per_reservation: (reserved > 0).then(|| used_ms / reserved as f64),
        throttled_share: (periods > 0).then(|| throttled as f64 / periods as f64),
    })
}

/// `nr_periods` and `nr_throttled` of a v1 `cpu.stat`.
fn parse_cpu_stat(stat: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        stat.lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.trim().parse().ok())
    };
    Some((field("nr_periods")?, field("nr_throttled")?))
}

/// The kernel's id of the calling thread (`/proc/thread-self` is `<pid>/task/<tid>`).
fn current_thread_id() -> anyhow::Result<String> {
    let link = std::fs::read_link("/proc/thread-self")?;
    link.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("cannot read this thread's id from /proc/thread-self"))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value)
        .map_err(|error| anyhow::anyhow!("cannot write {value} to {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_periods_and_throttled_periods() {
        let stat = "nr_periods 120\nnr_throttled 45\nthrottled_time 900000\nnr_bursts 0\n";
        assert_eq!(parse_cpu_stat(stat), Some((120, 45)));
        assert_eq!(parse_cpu_stat("nr_periods 1\n"), None);
        assert_eq!(parse_cpu_stat("nr_periods x\nnr_throttled 2\n"), None);
    }

    #[test]
    fn share_of_the_limit_and_cost_per_reservation() {
        let before = NodesCpuTimes {
            used: Duration::from_millis(500),
            periods: 10,
            throttled: 1,
            limit_cores: 1.5,
        };
        // Three nodes of 0.5 cores for 2 s may use 3 core-s; they used 2.4.
        let after = NodesCpuTimes {
            used: Duration::from_millis(2_900),
            periods: 70,
            throttled: 31,
            limit_cores: 1.5,
        };
        let used = between(before, after, Duration::from_secs(2), 1_200).unwrap();
        assert!((used.busy_of_limit - 0.8).abs() < 1e-9);
        assert!((used.ms_per_reservation.unwrap() - 2.0).abs() < 1e-9);
        assert!((used.throttled_share.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(between(after, before, Duration::from_secs(2), 1), None);
        assert_eq!(
            between(before, after, Duration::from_secs(2), 0)
                .unwrap()
                .ms_per_reservation,
            None
        );
    }

    /// A thread spinning inside a cgroup limited to a fifth of a core for 1.5 s uses at
    /// most about 0.3 s of CPU, and is throttled. Where the limit cannot be set (no v1
    /// hierarchies, no right to create cgroups) it is refused with a message that says why.
    #[test]
    fn a_limited_thread_uses_no_more_than_its_limit() {
        let name = format!("souk-bench-test-{}", uuid::Uuid::now_v7().simple());
        let has_hierarchy = Path::new(CPU_ROOT).join("tasks").exists();
        let cgroup = match NodeCgroup::create(&name, 0.2) {
            Ok(cgroup) => Arc::new(cgroup),
            Err(error) if !has_hierarchy => {
                assert!(
                    error.to_string().contains("no cgroup v1 hierarchy"),
                    "{error}"
                );
                return;
            }
            // Not root, or a container's read-only cgroup mount.
            Err(error)
                if ["Permission denied", "Read-only file system"]
                    .iter()
                    .any(|reason| error.to_string().contains(reason)) =>
            {
                assert!(
                    error.to_string().contains("cannot create the cgroup"),
                    "{error}"
                );
                return;
            }
            Err(error) => panic!("{error:#}"),
        };
        let before = read_all(std::slice::from_ref(&cgroup)).unwrap().unwrap();
        let wall = Duration::from_millis(1_500);
        let inside = cgroup.clone();
        let spinner = std::thread::spawn(move || {
            inside.enter_current_thread().unwrap();
            let threads_inside = inside.threads().unwrap();
            let started = std::time::Instant::now();
            let mut spins = 0u64;
            while started.elapsed() < wall {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
            threads_inside
        });
        // The spinner alone was in the cgroup (a thread that has exited may still be
        // listed for a moment after `join`, so it is counted from inside).
        assert_eq!(spinner.join().unwrap(), 1);
        let after = read_all(std::slice::from_ref(&cgroup)).unwrap().unwrap();
        let used = between(before, after, wall, 1).unwrap();
        // Unlimited it would use up to the whole 1.5 s; limited, 0.3 s and a period's
        // slack. The other tests share the cores, so it may get less, never more.
        let used_ms = used.ms_per_reservation.unwrap();
        assert!(used_ms > 0.0 && used_ms <= 450.0, "used {used_ms} ms");
        assert!(
            used.throttled_share.unwrap() > 0.0,
            "never throttled: {used:?}"
        );
    }
}
