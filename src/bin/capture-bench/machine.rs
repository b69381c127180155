//! Where the machine's CPU went during a measured run, by role: the service (measured on its
//! own, `ServerUse`), the sandbox (the providers' stand-in), this load generator, PostgreSQL's
//! processes, and anything else. On a machine whose cores every role shares, a scenario's rate
//! is bound by the sum, so each role's share per call names what bounds it.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::processes;

/// CPU time used so far, by role.
pub struct Snapshot {
    /// The whole machine's busy time (not idle, not waiting for I/O).
    busy: Duration,
    load_generator: Duration,
    sandbox: Duration,
    postgres: Duration,
}

/// Every role's CPU time now. `service`: the measured server's process, which is not the
/// sandbox though it is this process's child too.
pub fn snapshot(service: Option<u32>) -> Snapshot {
    let me = std::process::id();
    let mut snapshot = Snapshot {
        busy: machine_busy(),
        load_generator: processes::cpu_time_of(me),
        sandbox: Duration::ZERO,
        postgres: Duration::ZERO,
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return snapshot;
    };
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        if Some(pid) == service || pid == me {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(')')) else {
            continue;
        };
        // The parent's pid is the second field after the name.
        let parent = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(me) {
            snapshot.sandbox += processes::cpu_time_of(pid);
        } else if name == "postgres" {
            snapshot.postgres += processes::cpu_time_of(pid);
        }
    }
    snapshot
}

/// The roles' CPU per call between two snapshots, as report fields, and the machine's busy
/// cores. `service`: the service's own CPU over the same span, counted out of "other".
pub fn per_call(
    before: &Snapshot,
    after: &Snapshot,
    service: Duration,
    elapsed: Duration,
    ops: u64,
) -> Map<String, Value> {
    let mut fields = Map::new();
    if ops == 0 || elapsed.is_zero() {
        return fields;
    }
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 / ops as f64 * 1000.0).round() / 1000.0;
    let load_generator = after.load_generator.saturating_sub(before.load_generator);
    let sandbox = after.sandbox.saturating_sub(before.sandbox);
    let postgres = after.postgres.saturating_sub(before.postgres);
    let busy = after.busy.saturating_sub(before.busy);
    let other = busy
        .saturating_sub(load_generator)
        .saturating_sub(sandbox)
        .saturating_sub(postgres)
        .saturating_sub(service);
    fields.insert("loadgen_cpu_ms_per_op".into(), ms(load_generator).into());
    fields.insert("sandbox_cpu_ms_per_op".into(), ms(sandbox).into());
    fields.insert("postgres_cpu_ms_per_op".into(), ms(postgres).into());
    fields.insert("other_cpu_ms_per_op".into(), ms(other).into());
    let cores = busy.as_secs_f64() / elapsed.as_secs_f64();
    fields.insert(
        "machine_busy_cores".into(),
        ((cores * 100.0).round() / 100.0).into(),
    );
    fields
}

/// The machine's busy CPU time so far: every state of `/proc/stat`'s first line but idle and
/// I/O wait (guest time is already in user time).
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(state, _)| *state != 3 && *state != 4)
        .filter_map(|(_, t)| t.parse::<u64>().ok())
        .sum();
    processes::ticks_to_duration(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(busy: u64, load_generator: u64, sandbox: u64, postgres: u64) -> Snapshot {
        let ms = Duration::from_millis;
        Snapshot {
            busy: ms(busy),
            load_generator: ms(load_generator),
            sandbox: ms(sandbox),
            postgres: ms(postgres),
        }
    }

    #[test]
    fn each_role_is_charged_its_own_time_per_call_and_the_rest_is_other() {
        let before = at(1_000, 100, 50, 200);
        // 1.9 s busy over one second: 0.3 load generator, 0.2 sandbox, 0.6 PostgreSQL, 0.5
        // the service, so 0.3 other. Over 1,000 calls.
        let after = at(2_900, 400, 250, 800);
        let fields = per_call(
            &before,
            &after,
            Duration::from_millis(500),
            Duration::from_secs(1),
            1_000,
        );
        assert_eq!(fields["loadgen_cpu_ms_per_op"], 0.3);
        assert_eq!(fields["sandbox_cpu_ms_per_op"], 0.2);
        assert_eq!(fields["postgres_cpu_ms_per_op"], 0.6);
        assert_eq!(fields["other_cpu_ms_per_op"], 0.3);
        assert_eq!(fields["machine_busy_cores"], 1.9);
        assert!(per_call(&before, &after, Duration::ZERO, Duration::from_secs(1), 0).is_empty());
    }

    #[test]
    fn a_snapshot_of_this_machine_sees_this_process_run() {
        let before = snapshot(None);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(300) {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        let after = snapshot(None);
        assert!(after.load_generator > before.load_generator);
        assert!(after.busy > before.busy);
    }
}
