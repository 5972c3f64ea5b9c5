//! Configuration: the seed's variables, defaults, fail-fast errors naming the variable, librdkafka
//! pass-through, `.env` loading and the published `.env.example`.

use std::process::Command;

use feedback_pipeline::config::{
    Compression, Config, ConfigError, SecurityProtocol, VarSource, unknown_variables, vars,
};

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_source(&VarSource::new(pairs.iter().copied()))
}

fn property(client: &rdkafka::ClientConfig, key: &str) -> Option<String> {
    client.get(key).map(str::to_owned)
}

#[test]
fn defaults_match_the_design_documents() {
    let config = config(&[]).unwrap();
    assert!(config.kafka.enabled);
    assert_eq!(config.kafka.bootstrap_servers, None);
    assert_eq!(config.topics.outcomes, "agent-outcomes");
    assert_eq!(config.topics.metrics, "agent-metrics");
    assert_eq!(config.topics.alerts, "agent-alerts");
    assert_eq!(config.topics.dead_letters, "agent-outcomes-dlq");
    assert_eq!(config.kafka.batch_size, 100);
    assert_eq!(config.kafka.linger_ms, 100);
    assert_eq!(config.kafka.compression, Compression::Gzip);
    assert_eq!(config.kafka.max_retries, 3);
    assert_eq!(config.kafka.security.protocol, SecurityProtocol::Plaintext);
    assert!(config.enable_outcome_logging);
}

#[test]
fn the_default_spool_is_per_user_not_in_the_working_directory() {
    let unset = config(&[]).unwrap().producer.spool_dir.unwrap();
    assert!(unset.is_absolute(), "{unset:?}");
    assert!(unset.ends_with("feedback-pipeline/spool"), "{unset:?}");
    assert_eq!(
        config(&[("SPOOL_DIR", "")]).unwrap().producer.spool_dir,
        Some(unset)
    );
    let chosen = config(&[("SPOOL_DIR", "/var/spool/fp")]).unwrap();
    assert_eq!(chosen.producer.spool_dir, Some("/var/spool/fp".into()));
    assert_eq!(
        config(&[("SPOOL_DIR", "off")]).unwrap().producer.spool_dir,
        None
    );
}

#[test]
fn the_seed_variables_are_read() {
    let config = config(&[
        ("ENABLE_KAFKA", "false"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092, kafka-2:9092"),
        ("KAFKA_OUTCOME_TOPIC", "outcomes.v2"),
        ("KAFKA_METRICS_TOPIC", "metrics_v2"),
        ("KAFKA_BATCH_SIZE", "500"),
        ("KAFKA_LINGER_MS", "0"),
        ("KAFKA_COMPRESSION", "ZSTD"),
        ("KAFKA_MAX_RETRIES", "7"),
        ("ENABLE_OUTCOME_LOGGING", "no"),
    ])
    .unwrap();
    assert!(!config.kafka.enabled);
    assert_eq!(
        config.kafka.bootstrap_servers.as_deref(),
        Some("kafka-1:9092, kafka-2:9092")
    );
    assert_eq!(config.topics.outcomes, "outcomes.v2");
    assert_eq!(config.topics.metrics, "metrics_v2");
    assert_eq!(config.kafka.batch_size, 500);
    assert_eq!(config.kafka.linger_ms, 0);
    assert_eq!(config.kafka.compression, Compression::Zstd);
    assert_eq!(config.kafka.max_retries, 7);
    assert!(!config.enable_outcome_logging);
}

#[test]
fn bad_values_name_the_variable_and_the_allowed_values() {
    let cases = [
        ("KAFKA_BATCH_SIZE", "abc", "whole number from 1 to 1000000"),
        ("KAFKA_BATCH_SIZE", "0", "whole number from 1"),
        ("KAFKA_LINGER_MS", "-5", "whole number from 0"),
        ("KAFKA_MAX_RETRIES", "lots", "whole number"),
        (
            "KAFKA_COMPRESSION",
            "brotli",
            "none, gzip, snappy, lz4, zstd",
        ),
        (
            "KAFKA_SECURITY_PROTOCOL",
            "TLS",
            "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        ("ENABLE_KAFKA", "maybe", "true or false"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost", "host:port"),
        ("KAFKA_OUTCOME_TOPIC", "agent outcomes", "Kafka topic name"),
        (
            "KAFKA_SSL_CAFILE",
            "/nonexistent/ca.pem",
            "existing, readable file",
        ),
        ("GRAFANA_URL", "localhost:3000", "http:// or https:// URL"),
    ];
    for (variable, value, expected) in cases {
        let err = config(&[(variable, value)]).unwrap_err();
        let message = err.to_string();
        assert_eq!(err.variable(), variable, "{message}");
        assert!(
            message.starts_with(&format!("{variable}={value}")),
            "{message}"
        );
        assert!(message.contains(expected), "{variable}: {message}");
    }
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let config = config(&[
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", "svc"),
        ("KAFKA_SASL_PASSWORD", "hunter2-very-secret"),
    ])
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));

    let err = VarSource::new([("KAFKA_SASL_PASSWORD", "hunter2")])
        .number::<u32>("KAFKA_SASL_PASSWORD", 0, 1)
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn sasl_and_ssl_settings_pass_through_to_librdkafka() {
    // A real PEM bundle, so librdkafka's own check of the file passes too.
    let ca_path = "/etc/ssl/certs/ca-certificates.crt";
    let config = config(&[
        ("KAFKA_BOOTSTRAP_SERVERS", "broker:9093"),
        ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
        ("KAFKA_SSL_CAFILE", ca_path),
        ("KAFKA_SASL_MECHANISM", "PLAIN"),
        ("KAFKA_SASL_USERNAME", "svc"),
        ("KAFKA_SASL_PASSWORD", "pw"),
        ("KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE", "true"),
    ])
    .unwrap();
    let client = config.kafka.client_config("broker:9093");
    assert_eq!(
        property(&client, "security.protocol").as_deref(),
        Some("SASL_SSL")
    );
    assert_eq!(
        property(&client, "ssl.ca.location").as_deref(),
        Some(ca_path)
    );
    assert_eq!(
        property(&client, "sasl.mechanism").as_deref(),
        Some("PLAIN")
    );
    assert_eq!(property(&client, "sasl.username").as_deref(), Some("svc"));
    assert_eq!(property(&client, "sasl.password").as_deref(), Some("pw"));
    assert_eq!(
        property(&client, "socket.keepalive.enable").as_deref(),
        Some("true")
    );
    // librdkafka itself accepts the properties (this build has SSL support).
    let created: Result<rdkafka::producer::BaseProducer, _> = client.create();
    assert!(created.is_ok(), "{:?}", created.err());
}

#[test]
fn producer_properties_come_from_the_seed_variables() {
    let config = config(&[
        ("KAFKA_BATCH_SIZE", "250"),
        ("KAFKA_LINGER_MS", "20"),
        ("KAFKA_COMPRESSION", "lz4"),
        ("KAFKA_MAX_RETRIES", "5"),
    ])
    .unwrap();
    let producer = config.kafka.producer_config("localhost:9092");
    assert_eq!(
        property(&producer, "batch.num.messages").as_deref(),
        Some("250")
    );
    assert_eq!(property(&producer, "linger.ms").as_deref(), Some("20"));
    assert_eq!(
        property(&producer, "compression.type").as_deref(),
        Some("lz4")
    );
    assert_eq!(property(&producer, "retries").as_deref(), Some("5"));
    assert_eq!(
        property(&producer, "enable.idempotence").as_deref(),
        Some("true")
    );
}

#[test]
fn consumers_refetch_promptly_unless_the_user_says_otherwise() {
    let defaults = config(&[]).unwrap().kafka.consumer_config("localhost:9092");
    assert_eq!(
        property(&defaults, "fetch.queue.backoff.ms").as_deref(),
        Some("10")
    );
    let overridden = config(&[("KAFKA_PROPERTY_FETCH_QUEUE_BACKOFF_MS", "250")])
        .unwrap()
        .kafka
        .consumer_config("localhost:9092");
    assert_eq!(
        property(&overridden, "fetch.queue.backoff.ms").as_deref(),
        Some("250")
    );
    // librdkafka knows the property.
    let created: Result<rdkafka::consumer::BaseConsumer, _> = defaults.create();
    assert!(created.is_ok(), "{:?}", created.err());
}

#[test]
fn inconsistent_security_settings_say_what_to_change() {
    let err = config(&[("KAFKA_SASL_MECHANISM", "PLAIN")]).unwrap_err();
    assert_eq!(err.variable(), "KAFKA_SECURITY_PROTOCOL");
    assert!(err.to_string().contains("SASL_SSL"), "{err}");

    let err = config(&[
        ("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        ("KAFKA_SASL_USERNAME", "svc"),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        "{err}"
    );
}

#[test]
fn misspelt_variables_are_reported() {
    let source = VarSource::new([
        ("KAFKA_BATCHSIZE", "10"),
        ("KAFKA_BATCH_SIZE", "10"),
        ("KAFKA_PROPERTY_ACKS", "all"),
        ("HOME", "/root"),
    ]);
    assert_eq!(
        unknown_variables(&source),
        vec!["KAFKA_BATCHSIZE".to_owned()]
    );
}

#[test]
fn env_example_lists_every_variable_and_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example");
    let published = std::fs::read_to_string(path).expect(".env.example exists");
    assert_eq!(
        published,
        vars::env_example(),
        ".env.example is stale: regenerate it with `cargo run -- config env-example > .env.example`"
    );
    for var in vars::VARIABLES {
        assert!(
            published.contains(&format!("\n{}=", var.name)),
            "{}",
            var.name
        );
    }
    // The file, read as a .env, is a valid configuration.
    let pairs = dotenvy::from_path_iter(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example"),
    )
    .unwrap()
    .map(Result::unwrap);
    assert_eq!(
        Config::from_source(&VarSource::new(pairs)).unwrap(),
        config(&[]).unwrap()
    );
}

/// Runs `feedback-pipeline config check` in `dir` with extra environment variables.
fn config_check(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"))
        .args(["config", "check"])
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_command_reads_dot_env_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "KAFKA_BATCH_SIZE=321\nKAFKA_LINGER_MS=7\n# comment\nKAFKA_COMPRESSION=snappy\n",
    )
    .unwrap();
    let output = config_check(dir.path(), &[("KAFKA_LINGER_MS", "9")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("batch_size: 321"), "{stdout}");
    assert!(stdout.contains("linger_ms: 9"), "{stdout}");
    assert!(stdout.contains("Snappy"), "{stdout}");
}

#[test]
fn the_command_fails_fast_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = config_check(dir.path(), &[("KAFKA_BATCH_SIZE", "abc")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("KAFKA_BATCH_SIZE=abc is not valid"),
        "{stderr}"
    );

    std::fs::write(dir.path().join(".env"), "KAFKA_COMPRESSION=brotli\n").unwrap();
    let output = config_check(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("KAFKA_COMPRESSION=brotli"), "{stderr}");
    assert!(stderr.contains("none, gzip, snappy, lz4, zstd"), "{stderr}");
}

#[test]
fn the_readme_configuration_table_lists_every_variable() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(path).expect("README.md exists");
    for var in vars::VARIABLES {
        let row = format!("| `{}` | ", var.name);
        assert!(
            readme.contains(&row),
            "README's configuration table lacks {}",
            var.name
        );
    }
}

#[test]
fn config_check_prints_no_value_of_a_secret_looking_property() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = [
        "KAFKA_PROPERTY_SASL_OAUTHBEARER_CLIENT_SECRET",
        "KAFKA_PROPERTY_SASL_PASSWORD",
        "KAFKA_PROPERTY_SSL_KEY_PASSWORD",
        "KAFKA_PROPERTY_SSL_KEYSTORE_PASSWORD",
        "KAFKA_PROPERTY_SSL_KEY_PEM",
        "KAFKA_PROPERTY_SASL_JAAS_CONFIG",
        "KAFKA_PROPERTY_SASL_OAUTHBEARER_CONFIG",
        "KAFKA_PROPERTY_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
        "KAFKA_PROPERTY_SSL_CERTIFICATE_PEM_KEY",
        "KAFKA_PROPERTY_My_Api_Secret",
    ];
    let values: Vec<String> = (0..secrets.len())
        .map(|n| format!("s3cr3t-value-{n}"))
        .collect();
    let mut env: Vec<(&str, &str)> = secrets
        .iter()
        .zip(&values)
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    env.push(("KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE", "true"));
    let output = config_check(dir.path(), &env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for value in &values {
        assert!(
            !stdout.contains(value.as_str()),
            "{value} printed:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("<redacted>").count(),
        secrets.len(),
        "{stdout}"
    );
    // An ordinary property is shown as given.
    assert!(stdout.contains("\"socket.keepalive.enable\""), "{stdout}");
    assert!(stdout.contains("\"true\""), "{stdout}");
    // Nor does an error about one.
    let output = config_check(dir.path(), &[("KAFKA_PROPERTY_SASL-PASSWORD", "s3cr3t")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}
