//! [`KafkaCluster`]: an Apache Kafka KRaft cluster (1 or 3 nodes) on free loopback ports, started
//! by `scripts/start-kafka.sh` and stopped when dropped (or when the test binary exits).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long a metadata request may take while a cluster settles.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A SASL_SSL listener beside the plaintext one: SCRAM-SHA-512 over TLS.
#[derive(Debug, Clone)]
pub struct SaslSsl {
    /// The server's private key and certificate chain, in one PEM file.
    pub keystore_pem: PathBuf,
    /// The SCRAM user created at format time.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// A running cluster; every node is a combined broker and controller.
pub struct KafkaCluster {
    dir: tempfile::TempDir,
    brokers: usize,
    servers: String,
    sasl_servers: Option<String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/start-kafka.sh")
}

/// Runs `scripts/start-kafka.sh` with `args`; returns its KEY=VALUE lines.
fn run_script(args: &[&str], envs: &[(&str, &str)]) -> HashMap<String, String> {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/start-kafka.sh");
    assert!(
        output.status.success(),
        "scripts/start-kafka.sh {args:?} failed (install Kafka with scripts/install-kafka.sh)"
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl KafkaCluster {
    /// Starts a one-node cluster.
    pub fn start() -> Self {
        Self::start_with(1, None)
    }

    /// Starts a cluster of `brokers` nodes (1 or 3), optionally with a SASL_SSL listener.
    pub fn start_with(brokers: usize, sasl_ssl: Option<&SaslSsl>) -> Self {
        let dir = tempfile::tempdir().expect("cluster directory");
        let (brokers_arg, watch) = (brokers.to_string(), std::process::id().to_string());
        let dir_arg = dir.path().to_str().unwrap().to_owned();
        let mut args = vec![
            "--brokers",
            &brokers_arg,
            "--dir",
            &dir_arg,
            "--watch-pid",
            &watch,
        ];
        let mut envs = Vec::new();
        if let Some(sasl) = sasl_ssl {
            args.extend([
                "--sasl-ssl",
                sasl.keystore_pem.to_str().unwrap(),
                "--scram-user",
                &sasl.user,
            ]);
            envs.push(("KAFKA_SCRAM_PASSWORD", sasl.password.as_str()));
        }
        let mut lines = run_script(&args, &envs);
        let cluster = Self {
            dir,
            brokers,
            servers: lines.remove("KAFKA_BOOTSTRAP_SERVERS").expect("servers"),
            sasl_servers: lines.remove("KAFKA_SASL_SSL_SERVERS"),
        };
        cluster.wait_for_brokers(brokers);
        cluster
    }

    /// The plaintext `host:port,...` clients connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.servers.clone()
    }

    /// The SASL_SSL listeners' `host:port,...`, when the cluster has them.
    pub fn sasl_ssl_servers(&self) -> Option<String> {
        self.sasl_servers.clone()
    }

    /// A client configuration pointing at this cluster.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap_servers());
        config
    }

    /// The node ids, 1..=brokers.
    pub fn nodes(&self) -> impl Iterator<Item = i32> {
        1..=self.brokers as i32
    }

    /// The node leading `topic`'s `partition` now.
    pub fn leader_of(&self, topic: &str, partition: i32) -> i32 {
        let consumer: BaseConsumer = self.client_config().create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .expect("topic metadata");
        metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .map(|p| p.leader())
            .expect("partition in metadata")
    }

    /// Kills node `node` with SIGKILL, as a crash would.
    pub fn kill_node(&self, node: i32) {
        let pid = self.node_pid(node).expect("node pid file");
        let status = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(status.success(), "kill -KILL {pid}");
        // Wait for the process to be gone, so its ports are free for the restart.
        while Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `node`'s latest pid, from the file `scripts/start-kafka.sh` writes.
    fn node_pid(&self, node: i32) -> Option<String> {
        let file = self.dir.path().join(format!("node-{node}/pid"));
        std::fs::read_to_string(file)
            .ok()
            .map(|pid| pid.trim().to_owned())
    }

    /// Starts node `node` again on its ports and data (after [`Self::kill_node`]).
    pub fn restart_node(&self, node: i32) {
        let dir = self.dir.path().to_str().unwrap();
        run_script(&["--dir", dir, "--restart", &node.to_string()], &[]);
    }

    /// Kills every node (one-node clusters: a whole-broker outage).
    pub fn kill(&mut self) {
        for node in self.nodes() {
            self.kill_node(node);
        }
    }

    /// Starts a killed one-node cluster again on the same port and data.
    pub fn restart(&mut self) {
        assert_eq!(self.brokers, 1, "restart the nodes of a quorum one by one");
        self.restart_node(1);
        self.wait_for_brokers(1);
    }

    /// Waits until metadata lists `count` brokers.
    pub fn wait_for_brokers(&self, count: usize) {
        let consumer: BaseConsumer = self.client_config().create().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let seen = consumer
                .fetch_metadata(None, METADATA_TIMEOUT)
                .map(|m| m.brokers().len())
                .unwrap_or(0);
            if seen >= count {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{seen} of {count} brokers after 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tails(&self) -> String {
        self.nodes()
            .map(|node| {
                let path = self.dir.path().join(format!("node-{node}/server.log"));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- node {node} server.log (tail) ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The broker's side of a failed test; its directory is about to go.
            eprintln!("{}", self.log_tails());
        }
        // SIGKILL: the data is thrown away with the directory, so a clean shutdown buys nothing.
        // Nodes a test killed already are gone; `kill` saying so is not news.
        for pid in self.nodes().filter_map(|node| self.node_pid(node)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}
