//! `capture-faults`: breaks the service on purpose, many times, at random points, and counts
//! what happened against the providers' own book (README "What we test by breaking it").
//!
//! ```sh
//! cargo run --release --bin capture-faults -- --scenario all|NAME --db sqlite|postgres \
//!     [--iterations N] [--seed S]
//! ```
//! The service (the `capture-service` binary, built beside this one) and the standalone
//! sandbox run as processes of their own, as in production. One JSON line is printed per
//! scenario; a run that finds a double charge, a lost capture, a wrong answer or a panic
//! prints its seed and exits 1, and the same seed runs the same faults again.

#[path = "../shared/fresh_database.rs"]
mod fresh_database;
// Shared with the black-box tests, which also blackhole at a chosen statement.
#[allow(dead_code)]
#[path = "../shared/db_outage.rs"]
mod outage;
// Shared with capture-bench, which uses the rest of it.
#[allow(dead_code)]
#[path = "../shared/processes.rs"]
mod processes;

mod client;
mod db_outage;
mod kill9;
mod kill9_release;
mod overload;
mod provider_faults;
mod replicas;
mod report;
mod rng;
mod trace_sink;
mod truth;
mod webhook_chaos;
mod world;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use fresh_database::Db;
use report::Report;

/// Breaks the service on purpose and counts doubles, losses and wrong answers.
#[derive(Debug, Parser)]
#[command(name = "capture-faults")]
struct Options {
    /// all, or one of: kill9, kill9_release, replicas, db_outage, provider_faults, webhook_chaos, overload
    #[arg(long, default_value = "all")]
    scenario: String,
    /// sqlite or postgres (a fresh database on the local server, dropped afterwards)
    #[arg(long, value_parser = parse_db)]
    db: Db,
    /// Faults per scenario
    #[arg(long, default_value_t = 20)]
    iterations: u32,
    /// Reproduces a run: the seed a run printed
    #[arg(long)]
    seed: Option<u64>,
}

fn parse_db(name: &str) -> Result<Db, String> {
    Db::parse(name).ok_or_else(|| "sqlite or postgres".to_owned())
}

const SCENARIOS: [&str; 7] = [
    "kill9",
    "kill9_release",
    "replicas",
    "db_outage",
    "provider_faults",
    "webhook_chaos",
    "overload",
];

fn main() -> ExitCode {
    let options = Options::parse();
    let names: Vec<&'static str> = match options.scenario.as_str() {
        "all" => SCENARIOS.to_vec(),
        name => match SCENARIOS.iter().find(|s| **s == name) {
            Some(known) => vec![*known],
            None => {
                eprintln!(
                    "capture-faults: unknown scenario {name:?}: all, {}",
                    SCENARIOS.join(", ")
                );
                return ExitCode::from(2);
            }
        },
    };
    let seed = options.seed.unwrap_or_else(rng::fresh_seed);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("capture-faults: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for name in names {
        let mut report = Report {
            scenario: name,
            db: options.db.name(),
            seed,
            iterations: options.iterations,
            ..Report::default()
        };
        let started = Instant::now();
        let ran = runtime.block_on(run(name, &options, &mut report));
        report.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        match ran {
            Ok(()) => {
                println!("{}", report.to_json_line());
                if report.failed() {
                    eprintln!(
                        "capture-faults: {name} on {} FAILED; reproduce with --scenario {name} --db {} --iterations {} --seed {seed}",
                        options.db.name(),
                        options.db.name(),
                        options.iterations
                    );
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("capture-faults: {name} (seed {seed}) could not run: {e:#}");
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

async fn run(name: &str, options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let mut rng = rng::Rng::new(report.seed);
    match name {
        "kill9" => {
            let world = world::World::new(options.db, name, kill9::LATENCY).await?;
            kill9::run(&world, options.iterations, &mut rng, report).await
        }
        "kill9_release" => {
            let world = world::World::new(options.db, name, kill9::LATENCY).await?;
            kill9_release::run(&world, options.iterations, &mut rng, report).await
        }
        "replicas" => replicas::run(options.db, options.iterations, &mut rng, report).await,
        "db_outage" => db_outage::run(options.db, options.iterations, &mut rng, report).await,
        "provider_faults" => {
            provider_faults::run(options.db, options.iterations, &mut rng, report).await
        }
        "webhook_chaos" => {
            webhook_chaos::run(options.db, options.iterations, &mut rng, report).await
        }
        "overload" => overload::run(options.db, options.iterations, &mut rng, report).await,
        _ => anyhow::bail!("unknown scenario {name}"),
    }
}
