//! `capture-bench`: the service's figures beside the ceilings they are bounded by, measured in
//! one run on this machine (BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release --bin capture-bench -- --scenario all|NAME --db sqlite|postgres \
//!     [--database-url URL] [--concurrency N] [--seconds S]
//! ```
//! Three kinds of process take part, so the service's own CPU and memory can be read from
//! `/proc`: the service (the `capture-service` binary users run, built beside this one), the
//! standalone sandbox (`capture-service sandbox`), and this load generator. The `echo` ceiling
//! is a bare tonic server, this binary again (`capture-bench serve-echo`). One JSON line is
//! printed per scenario.

/// The service's allocator, so that the database ceilings measured in this process run on it
/// too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod database;
mod echo;
// Shared with capture-faults, which also asks where the PostgreSQL server is.
#[allow(dead_code)]
#[path = "../shared/fresh_database.rs"]
mod fresh_database;
mod load;
mod machine;
mod options;
// Shared with capture-faults, which uses the rest of it.
#[allow(dead_code)]
#[path = "../shared/processes.rs"]
mod processes;
mod report;
mod scenarios;

use std::process::ExitCode;

use options::Options;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, addr] = args.as_slice() {
        if command == "serve-echo" {
            return echo::serve(addr);
        }
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("capture-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    let mut ceilings = report::Ceilings::default();
    for scenario in options.scenarios.clone() {
        match runtime.block_on(scenarios::run(scenario, &options)) {
            Ok(report) => println!("{}", ceilings.beside(scenario, report).to_json_line()),
            Err(e) => {
                eprintln!("capture-bench: scenario {}: {e:#}", scenario.name());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
