//! [`TansuBroker`]: a real Kafka-protocol broker process on a free loopback port.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long a starting broker may take to answer a metadata request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the broker keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In memory: gone when the process stops.
    Memory,
    /// A sqlite file in the broker's work directory, surviving restarts of the broker.
    Sqlite,
}

/// A tansu broker child process, killed when dropped.
pub struct TansuBroker {
    child: Option<Child>,
    port: u16,
    storage: Storage,
    workdir: tempfile::TempDir,
}

/// The tansu binary, installed (or found in the cache) by `scripts/install-broker.sh`.
pub fn tansu_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("TANSU_BIN") {
            return PathBuf::from(path);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-broker.sh");
        let output = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/install-broker.sh");
        assert!(
            output.status.success(),
            "scripts/install-broker.sh failed; install tansu with it or set TANSU_BIN"
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

impl TansuBroker {
    /// Starts a broker with in-memory storage.
    pub fn start() -> Self {
        Self::start_with(Storage::Memory)
    }

    /// Starts a broker with the given storage on a free port.
    pub fn start_with(storage: Storage) -> Self {
        let workdir = tempfile::tempdir().expect("broker work directory");
        let mut broker = Self {
            child: None,
            port: free_port(),
            storage,
            workdir,
        };
        broker.launch();
        broker
    }

    /// The `host:port` clients connect to.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A client configuration pointing at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap_servers());
        config
    }

    /// Kills the broker (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let storage = match &self.storage {
            Storage::Memory => "memory://tansu/".to_owned(),
            // tansu resolves the path against its working directory, the broker's own.
            Storage::Sqlite => "sqlite://tansu.db".to_owned(),
        };
        let log_path = self.workdir.path().join("tansu.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("broker log file");
        let child = Command::new(tansu_binary())
            .current_dir(self.workdir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &storage])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        self.wait_ready(&log_path);
    }

    fn wait_ready(&mut self, log_path: &Path) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("tansu exited with {status}: {}", read_log(log_path));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.answers_metadata() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "tansu not ready after {READY_TIMEOUT:?}: {}",
                    read_log(log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn answers_metadata(&self) -> bool {
        let consumer: BaseConsumer = match self.client_config().create() {
            Ok(consumer) => consumer,
            Err(_) => return false,
        };
        consumer
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok()
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The broker's side of a failed test; its work directory is about to go.
            eprintln!(
                "--- tansu log (tail) ---\n{}",
                read_log(&self.workdir.path().join("tansu.log"))
            );
        }
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}
