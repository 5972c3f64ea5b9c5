//! SASL_SSL for real: a broker listener with SCRAM-SHA-512 over TLS, its CA and certificate made
//! here with openssl. The whole pipeline (`run`: producer library and processor) connects with the
//! seed's variables; a wrong password or an untrusted CA ends with an error naming the variable
//! to fix; no output carries a secret.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::broker::{KafkaCluster, SaslSsl};
use common::topic::read_events;

const USER: &str = "pipeline";
const TOPIC: &str = "secure-outcomes";

/// Runs `openssl` with `args` in `dir`; panics with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`<name>.pem`) and, when `server`, a key and certificate for 127.0.0.1 signed by it,
/// together in `server.pem` (Kafka's PEM keystore).
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject,
            "-keyout", &key, "-out", &cert,
        ],
    );
    dir.join(cert)
}

fn make_server_keystore(dir: &Path, ca: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    let key = std::fs::read_to_string(dir.join("server.key")).unwrap();
    let cert = std::fs::read_to_string(dir.join("server.crt")).unwrap();
    let keystore = dir.join("server.pem");
    std::fs::write(&keystore, format!("{key}{cert}")).unwrap();
    keystore
}

/// A random password, so that finding it in output cannot be a coincidence.
fn password() -> String {
    format!("pw-{}", uuid::Uuid::new_v4().simple())
}

/// `feedback-pipeline run` over the SASL_SSL listener with the seed's variables.
fn run_pipeline(servers: &str, ca_file: &Path, password: &str, max_events: u32) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"))
        .args([
            "run",
            "--max-events",
            &max_events.to_string(),
            "--rate",
            "100",
        ])
        .env("KAFKA_BOOTSTRAP_SERVERS", servers)
        .env("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        .env("KAFKA_SSL_CAFILE", ca_file)
        .env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        .env("KAFKA_SASL_USERNAME", USER)
        .env("KAFKA_SASL_PASSWORD", password)
        .env("KAFKA_OUTCOME_TOPIC", TOPIC)
        .env(
            "KAFKA_CONSUMER_GROUP",
            format!("secure-{}", uuid::Uuid::new_v4()),
        )
        .env("SPOOL_DIR", "off")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("running feedback-pipeline run")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_over_sasl_ssl_and_bad_settings_name_the_variable() {
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "cluster-ca");
    let keystore = make_server_keystore(certs.path(), "cluster-ca");
    let stranger = make_ca(certs.path(), "stranger-ca");
    let trusted = certs.path().join("cluster-ca.pem");
    let secret = password();
    let cluster = KafkaCluster::start_with(
        1,
        Some(&SaslSsl {
            keystore_pem: keystore,
            user: USER.into(),
            password: secret.clone(),
        }),
    );
    let secure = cluster.sasl_ssl_servers().expect("a SASL_SSL listener");

    // Right settings: agents publish and the processor consumes, both over SASL_SSL.
    let ran = tokio::task::spawn_blocking({
        let (secure, trusted, secret) = (secure.clone(), trusted.clone(), secret.clone());
        move || run_pipeline(&secure, &trusted, &secret, 100)
    });
    // Wrong password and untrusted CA, at the same time.
    let wrong = password();
    let refused = tokio::task::spawn_blocking({
        let (secure, trusted, wrong) = (secure.clone(), trusted.clone(), wrong.clone());
        move || run_pipeline(&secure, &trusted, &wrong, 10)
    });
    let untrusted = tokio::task::spawn_blocking({
        let (secure, secret) = (secure.clone(), secret.clone());
        move || run_pipeline(&secure, &stranger, &secret, 10)
    });
    let (ran, refused, untrusted) = (
        ran.await.unwrap(),
        refused.await.unwrap(),
        untrusted.await.unwrap(),
    );

    let ran_text = text(&ran);
    assert!(
        ran.status.success(),
        "run over SASL_SSL failed:\n{ran_text}"
    );
    let consumed = String::from_utf8_lossy(&ran.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["type"] == "summary")
        .and_then(|summary| summary["consumed"].as_u64());
    assert!(
        consumed.is_some_and(|n| n > 0),
        "the processor consumed over SASL_SSL:\n{ran_text}"
    );
    // What the agents published is on the topic (read back over the plaintext listener).
    let (events, _) = read_events(
        &cluster.bootstrap_servers(),
        TOPIC,
        100,
        Duration::from_secs(30),
    )
    .await;
    assert!(events.len() >= 100, "{} events on the topic", events.len());

    let refused_text = text(&refused);
    assert!(!refused.status.success(), "a wrong password must fail");
    assert!(
        refused_text.contains("KAFKA_SASL_PASSWORD"),
        "a wrong password names the variable:\n{refused_text}"
    );
    let untrusted_text = text(&untrusted);
    assert!(!untrusted.status.success(), "an untrusted CA must fail");
    assert!(
        untrusted_text.contains("KAFKA_SSL_CAFILE"),
        "an untrusted CA names the variable:\n{untrusted_text}"
    );
    for output in [&ran_text, &refused_text, &untrusted_text] {
        assert!(!output.contains(&secret), "the password was printed");
        assert!(!output.contains(&wrong), "the wrong password was printed");
    }
}
