//! The processes a run drives: the service, the standalone sandbox and the echo server, and
//! what `/proc` says about their CPU and memory. Shared by `capture-bench` and
//! `capture-faults`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The API key the load generator calls with, and the tenant it belongs to.
pub const API_KEY: &str = "capture-bench-key-0123456789";
pub const TENANT: &str = "bench";

/// A child process, killed when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(self.pid())
    }

    /// Resident memory now, in MiB.
    pub fn rss_mb(&self) -> f64 {
        status_kb(self.pid(), "VmRSS:") as f64 / 1024.0
    }
}

impl Process {
    /// SIGKILL, and the exit reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU time process `pid` has used so far (its threads' together); zero for one
/// that is gone.
pub fn cpu_time_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may itself hold spaces: utime and stime are the
    // 14th and 15th fields of the whole line.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks_to_duration(ticks)
}

/// Clock ticks (the unit of `/proc`'s CPU times) as time.
pub fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf only reads a constant of the running system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).unwrap_or(100).max(1);
    Duration::from_micros(ticks * 1_000_000 / per_second)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Samples a process's RSS every 50 ms and keeps the largest, until dropped.
pub struct PeakRss {
    peak_kb: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    pub fn watch(pid: u32) -> PeakRss {
        let peak_kb = Arc::new(AtomicU64::new(status_kb(pid, "VmRSS:")));
        let peak = Arc::clone(&peak_kb);
        let task = tokio::spawn(async move {
            loop {
                peak.fetch_max(status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        PeakRss { peak_kb, task }
    }

    pub fn mb(&self) -> f64 {
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The `capture-service` binary: `CAPTURE_BENCH_SERVICE_BINARY`, or the one beside this binary,
/// built (or found up to date) first when run by cargo.
pub fn service_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("CAPTURE_BENCH_SERVICE_BINARY") {
        return Ok(PathBuf::from(path));
    }
    let own = std::env::current_exe()?;
    let dir = own.parent().context("this binary has no directory")?;
    let binary = dir.join("capture-service");
    if let Ok(cargo) = std::env::var("CARGO") {
        // `cargo run --bin capture-bench` builds only this binary: build the service the same
        // way (release when this is), so a stale service is never measured.
        let release = dir.ends_with("release");
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--locked", "--bin", "capture-service"])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        if release {
            build.arg("--release");
        }
        let status = build.status().context("running cargo build")?;
        if !status.success() {
            bail!("cargo build --bin capture-service failed");
        }
    }
    if !binary.exists() {
        bail!(
            "{} not found: run `cargo build --release` first",
            binary.display()
        );
    }
    Ok(binary)
}

/// A command that inherits no `CAPTURE_*` variable from this environment.
fn clean_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("CAPTURE_")) {
        command.env_remove(name);
    }
    command
}

/// The standalone sandbox (`capture-service sandbox`) and the variables a service needs to
/// capture there, read from what it prints.
pub struct Sandbox {
    /// Kept so that the sandbox lives as long as the scenario.
    pub _process: Process,
    pub origin: String,
    pub service_env: Vec<(String, String)>,
}

pub fn start_sandbox(binary: &Path, latency: Duration) -> anyhow::Result<Sandbox> {
    let addr = free_addr()?;
    let mut child = clean_command(binary)
        .args(["sandbox", "--addr", &addr.to_string(), "--latency-ms"])
        .arg(latency.as_millis().to_string())
        .env("CAPTURE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the sandbox")?;
    let stdout = child.stdout.take().context("sandbox stdout")?;
    let process = Process { child };
    let mut lines = BufReader::new(stdout).lines();
    let mut service_env = Vec::new();
    for line in lines.by_ref() {
        let line = line?;
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            service_env.push((name.to_owned(), value.to_owned()));
            if name == "CAPTURE_SANDBOX" {
                break;
            }
        }
    }
    // Keep draining what it prints, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    if service_env.is_empty() {
        bail!("the sandbox printed no variables");
    }
    Ok(Sandbox {
        _process: process,
        origin: format!("http://{addr}"),
        service_env,
    })
}

/// A running service and its ports. Dropping it kills it (SIGKILL).
pub struct Service {
    pub process: Process,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// From spawn to the first `SERVING` health answer.
    pub ready_after: Duration,
    dir: TempDir,
}

/// What a service is started with.
pub struct ServiceSetup<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub sandbox_env: &'a [(String, String)],
    /// Further `CAPTURE_*` settings, applied last.
    pub env: &'a [(&'a str, String)],
    /// Keep what it logs (standard output) in `stdout.log`; else discard it, as a benchmark
    /// does so that writing logs is not measured.
    pub keep_log: bool,
}

pub async fn start_service(setup: &ServiceSetup<'_>) -> anyhow::Result<Service> {
    let dir = TempDir::new("service")?;
    let (grpc, http) = (free_addr()?, free_addr()?);
    let digest = hex::encode(Sha256::digest(API_KEY.as_bytes()));
    let started = Instant::now();
    let child = clean_command(setup.binary)
        .current_dir(dir.path())
        .envs(setup.sandbox_env.iter().map(|(k, v)| (k, v)))
        .env("CAPTURE_DATABASE_URL", setup.database_url)
        .env("CAPTURE_GRPC_ADDR", grpc.to_string())
        .env("CAPTURE_HTTP_ADDR", http.to_string())
        .env("CAPTURE_API_KEYS", format!("{TENANT}:{digest}"))
        .envs(setup.env.iter().map(|(k, v)| (k, v)))
        .stdout(if setup.keep_log {
            Stdio::from(std::fs::File::create(dir.path().join("stdout.log"))?)
        } else {
            Stdio::null()
        })
        .stderr(std::fs::File::create(dir.path().join("stderr.log"))?)
        .spawn()
        .context("starting the service")?;
    let process = Process { child };
    let ready_after = wait_serving(grpc, "capture.v1.CaptureService", started)
        .await
        .with_context(|| {
            let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            format!("the service did not become ready; its stderr:\n{log}")
        })?;
    Ok(Service {
        process,
        grpc,
        http,
        ready_after,
        dir,
    })
}

impl Service {
    /// What the service wrote so far: its log (when kept) and its standard error, where a
    /// panic's message goes.
    pub fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        format!(
            "{}{}",
            read("stdout.log").unwrap_or_default(),
            read("stderr.log").unwrap_or_default()
        )
    }
}

/// Runs `capture-service migrate` on a database, so it can be seeded before the service starts.
pub fn migrate(binary: &Path, database_url: &str) -> anyhow::Result<()> {
    let output = clean_command(binary)
        .arg("migrate")
        .env("CAPTURE_DATABASE_URL", database_url)
        .stdout(Stdio::null())
        .output()?;
    if !output.status.success() {
        bail!(
            "capture-service migrate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The bare tonic server of the `echo` ceiling: this binary, `serve-echo`.
pub async fn start_echo() -> anyhow::Result<(Process, SocketAddr)> {
    let addr = free_addr()?;
    let started = Instant::now();
    let child = Command::new(std::env::current_exe()?)
        .args(["serve-echo", &addr.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    let process = Process { child };
    wait_serving(addr, "", started).await?;
    Ok((process, addr))
}

/// Polls the gRPC health service every 2 ms until `service` is `SERVING`.
async fn wait_serving(
    addr: SocketAddr,
    service: &str,
    started: Instant,
) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(60);
    while Instant::now() < deadline {
        if serving(addr, service).await {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("{addr} did not answer SERVING within 60 s")
}

/// Whether `service` answers `SERVING` to a gRPC health check at `addr` now.
pub async fn serving(addr: SocketAddr, service: &str) -> bool {
    let Ok(endpoint) = Channel::from_shared(format!("http://{addr}")) else {
        return false;
    };
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await;
    answer.is_ok_and(|a| a.into_inner().status == ServingStatus::Serving as i32)
}

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(purpose: &str) -> anyhow::Result<TempDir> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("{e}"))?;
        let path =
            std::env::temp_dir().join(format!("capture-bench-{purpose}-{}", hex::encode(random)));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
