//! The machine's CPU while a cell's clients run, from Linux's `/proc/stat`: how busy
//! its cores were, and the core-milliseconds spent per successful reservation. It counts
//! everything on the machine (the clients, the nodes, MariaDB, nats-server), so a cell
//! near 100 % busy was bound by the cores, and its CPU per reservation says what one
//! costs in all; elsewhere than Linux it is not measured.

use std::time::Duration;

use serde::Serialize;

/// The machine's CPU time so far, in the kernel's clock ticks, over all cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Ticks not idle (user, nice, system, irq, softirq, steal).
    busy: u64,
    /// Every tick (busy, idle and waiting for I/O).
    total: u64,
    /// Cores the kernel reports (`cpuN` lines).
    cores: usize,
}

/// The CPU a cell used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuUse {
    /// Share of all cores' time that was busy, 0 to 1.
    pub busy: f64,
    /// Busy core-milliseconds per successful reservation (`None`: none succeeded).
    pub ms_per_reservation: Option<f64>,
}

/// The `/proc/stat` figures now, if this is Linux.
pub fn read() -> Option<CpuTimes> {
    parse(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Reads the aggregate `cpu` line and counts the `cpuN` lines of a `/proc/stat`.
fn parse(stat: &str) -> Option<CpuTimes> {
    let mut lines = stat.lines();
    let mut fields = lines.next()?.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let ticks: Vec<u64> = fields
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = ticks[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    let cores = lines
        .take_while(|line| line.starts_with("cpu"))
        .filter(|line| line[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    Some(CpuTimes {
        busy,
        total: busy + idle + iowait,
        cores: cores.max(1),
    })
}

/// What the machine's cores did between two readings `wall` apart, while `reserved`
/// reservations succeeded.
pub fn between(before: CpuTimes, after: CpuTimes, wall: Duration, reserved: u64) -> Option<CpuUse> {
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    if total == 0 {
        return None;
    }
    let busy = busy as f64 / total as f64;
    let core_ms = busy * wall.as_secs_f64() * after.cores as f64 * 1_000.0;
    Some(CpuUse {
        busy,
        ms_per_reservation: (reserved > 0).then(|| core_ms / reserved as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  600 0 200 150 50 0 0 0 0 0\n\
                        cpu0 300 0 100 75 25 0 0 0 0 0\n\
                        cpu1 300 0 100 75 25 0 0 0 0 0\n\
                        intr 12345 0 0\n\
                        ctxt 999\n";

    #[test]
    fn reads_the_aggregate_line_and_counts_the_cores() {
        assert_eq!(
            parse(STAT),
            Some(CpuTimes {
                busy: 800,
                total: 1_000,
                cores: 2
            })
        );
        assert_eq!(parse("intr 1 2 3\n"), None);
        assert_eq!(parse("cpu  1 2 x 4 5 6 7 8\n"), None);
        assert_eq!(parse("cpu  1 2 3\n"), None);
    }

    #[test]
    fn busy_share_and_core_milliseconds_per_reservation() {
        let before = CpuTimes {
            busy: 800,
            total: 1_000,
            cores: 2,
        };
        // 2 cores for 10 s: 2 000 ticks at 100 Hz, 1 800 of them busy.
        let after = CpuTimes {
            busy: 2_600,
            total: 3_000,
            cores: 2,
        };
        let used = between(before, after, Duration::from_secs(10), 9_000).unwrap();
        assert!((used.busy - 0.9).abs() < 1e-9);
        // 0.9 × 10 s × 2 cores = 18 000 core-ms over 9 000 reservations.
        assert!((used.ms_per_reservation.unwrap() - 2.0).abs() < 1e-9);
        let none = between(before, after, Duration::from_secs(10), 0).unwrap();
        assert_eq!(none.ms_per_reservation, None);
        assert_eq!(between(after, before, Duration::from_secs(10), 1), None);
        assert_eq!(between(before, before, Duration::from_secs(10), 1), None);
    }
}
