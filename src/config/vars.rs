//! Every environment variable the program reads: name, default and meaning.
//!
//! This table is the single source of `.env.example` (see [`env_example`]) and of the README's
//! configuration table, so documentation cannot drift from the code.

/// One environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// Its default, as text; empty when unset means "not configured".
    pub default: &'static str,
    /// What it controls and which values it takes.
    pub meaning: &'static str,
    /// Whether its value is a secret that is never printed.
    pub secret: bool,
}

const fn var(name: &'static str, default: &'static str, meaning: &'static str) -> EnvVar {
    EnvVar {
        name,
        default,
        meaning,
        secret: false,
    }
}

const fn secret(name: &'static str, meaning: &'static str) -> EnvVar {
    EnvVar {
        name,
        default: "",
        meaning,
        secret: true,
    }
}

/// Prefix of pass-through librdkafka properties: `KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE=true`
/// sets `socket.keepalive.enable=true`.
pub const KAFKA_PROPERTY_PREFIX: &str = "KAFKA_PROPERTY_";

/// The variables, grouped as in `.env.example`.
pub const VARIABLES: &[EnvVar] = &[
    var(
        "ENABLE_KAFKA",
        "true",
        "Publish and consume through Kafka (true/false). false keeps events in memory and logs.",
    ),
    var(
        "KAFKA_BOOTSTRAP_SERVERS",
        "",
        "Comma-separated host:port list. Empty: the main command starts an in-process Kafka mock cluster.",
    ),
    var(
        "KAFKA_CLIENT_ID",
        "feedback-pipeline",
        "client.id reported to the brokers.",
    ),
    var(
        "KAFKA_OUTCOME_TOPIC",
        "agent-outcomes",
        "Topic of outcome events (keyed by agent_name).",
    ),
    var(
        "KAFKA_METRICS_TOPIC",
        "agent-metrics",
        "Topic of window query results.",
    ),
    var(
        "KAFKA_ALERTS_TOPIC",
        "agent-alerts",
        "Topic of alert records.",
    ),
    var(
        "KAFKA_DLQ_TOPIC",
        "agent-outcomes-dlq",
        "Dead-letter topic for rejected input, with the reason.",
    ),
    var(
        "KAFKA_CONSUMER_GROUP",
        "feedback-pipeline-processor",
        "Consumer group of the processor service.",
    ),
    var(
        "KAFKA_BATCH_SIZE",
        "100",
        "Most events in one producer batch (librdkafka batch.num.messages), 1 to 1000000.",
    ),
    var(
        "KAFKA_LINGER_MS",
        "100",
        "Longest wait to fill a producer batch, in ms (librdkafka linger.ms), 0 to 900000.",
    ),
    var(
        "KAFKA_COMPRESSION",
        "gzip",
        "Producer compression: none, gzip, snappy, lz4 or zstd.",
    ),
    var(
        "KAFKA_MAX_RETRIES",
        "3",
        "Producer retries of a failed send (librdkafka retries), 0 to 2147483647.",
    ),
    var(
        "KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    ),
    var(
        "KAFKA_SSL_CAFILE",
        "",
        "CA certificate file (PEM) to verify the brokers (ssl.ca.location).",
    ),
    var(
        "KAFKA_SSL_CERTFILE",
        "",
        "Client certificate file (PEM) for mutual TLS (ssl.certificate.location).",
    ),
    var(
        "KAFKA_SSL_KEYFILE",
        "",
        "Client private key file (PEM) for mutual TLS (ssl.key.location).",
    ),
    secret(
        "KAFKA_SSL_KEY_PASSWORD",
        "Password of the client private key (ssl.key.password).",
    ),
    var(
        "KAFKA_SASL_MECHANISM",
        "",
        "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER; requires a SASL_* protocol.",
    ),
    var("KAFKA_SASL_USERNAME", "", "SASL user name (sasl.username)."),
    secret("KAFKA_SASL_PASSWORD", "SASL password (sasl.password)."),
    var(
        "KAFKA_MESSAGE_TIMEOUT_MS",
        "30000",
        "How long the producer retries one event before it goes to the disk spool, in ms (message.timeout.ms).",
    ),
    var(
        "PIPELINE_QUEUE_CAPACITY",
        "65536",
        "Events queued between record_outcome and the publisher thread; when full, callers wait up to PIPELINE_ENQUEUE_TIMEOUT_MS, then spool.",
    ),
    var(
        "PIPELINE_ENQUEUE_TIMEOUT_MS",
        "5",
        "How long record_outcome may wait for room in a full queue before it spools the event itself, in ms, 0 to 250 (like Kafka's max.block.ms; the wait blocks the calling thread); 0 never waits.",
    ),
    var(
        "RECENT_EVENTS_CAPACITY",
        "1000",
        "Events kept in memory for get_recent_events.",
    ),
    var(
        "SPOOL_DIR",
        "",
        "Disk spool for events the broker cannot take, replayed in order later; empty: the user's state directory ($XDG_STATE_HOME or ~/.local/state, then feedback-pipeline/spool); off disables it.",
    ),
    var(
        "SPOOL_MAX_BYTES",
        "1073741824",
        "Most bytes the spool may use; past it events are dropped and counted.",
    ),
    var(
        "PIPELINE_DROP_FLUSH_MS",
        "1000",
        "How long dropping a pipeline without shutdown waits for deliveries before spooling the rest, in ms.",
    ),
    var(
        "PROCESSOR_SQL_DIR",
        "sql",
        "Directory of the window queries (*.sql, ksqlDB window clause over DataFusion SQL).",
    ),
    var(
        "WINDOW_OUT_OF_ORDER_MS",
        "5000",
        "Allowed out-of-orderness: the watermark trails the slowest partition's newest event time by this, in ms.",
    ),
    var(
        "WINDOW_GRACE_MS",
        "2000",
        "Grace after a window's end (by watermark) before it closes, in ms; a query's GRACE PERIOD overrides it.",
    ),
    var(
        "WINDOW_IDLE_CLOSE_MS",
        "10000",
        "A partition quiet this long stops holding the watermark; with all quiet, windows close by the clock, in ms.",
    ),
    var(
        "WINDOW_ALLOWED_LATENESS_MS",
        "300000",
        "How long after its close (by event time) an emitted window still takes events: each update emits the window's rows again under the same key; past it, events are late, in ms.",
    ),
    var(
        "WINDOW_MAX_FUTURE_MS",
        "300000",
        "Events dated more than this ahead of the processor's clock go to the dead-letter topic as future_timestamp and never move event time, in ms.",
    ),
    var(
        "PROCESSOR_MAX_GROUPS_PER_WINDOW",
        "10000",
        "Most groups a query holds per window slice (pane); events that would open more go to the dead-letter topic as too_many_groups.",
    ),
    var(
        "PROCESSOR_TICK_MS",
        "200",
        "How often the processor closes windows and emits results, in ms.",
    ),
    var(
        "PROCESSOR_COMMIT_INTERVAL_MS",
        "1000",
        "How often the processor commits offsets (once every result sent so far is acknowledged), in ms.",
    ),
    var(
        "PROCESSOR_STALL_TIMEOUT_MS",
        "60000",
        "/healthz fails once the processing loop has not turned for this long, in ms (0: never).",
    ),
    var(
        "METRICS_ADDR",
        "127.0.0.1:9464",
        "Address of the processor's HTTP server (/metrics, /healthz, /readyz).",
    ),
    var(
        "METRICS_MAX_SERIES",
        "1000",
        "Most label sets per metric family on /metrics (agents, error types, window groups); the rest fold into \"other\" or are dropped and counted.",
    ),
    var(
        "GRAFANA_URL",
        "",
        "Base URL of the Grafana with the bundled dashboards (docker-compose: http://localhost:3000); set: serve and run print links to them.",
    ),
    var(
        "ALERT_RULES_FILE",
        "alerts/rules.toml",
        "Alert rules (TOML) evaluated on closed windows; when the default is absent the shipped rules are built in.",
    ),
    var(
        "ALERT_FORWARDER_GROUP",
        "feedback-pipeline-alert-forwarder",
        "Prefix of the consumer groups of `alerts forward` on the alert topic: one per receiver (<group>.pagerduty, <group>.slack).",
    ),
    secret(
        "PAGERDUTY_ROUTING_KEY",
        "PagerDuty Events API v2 integration key; unset: alerts are not sent to PagerDuty.",
    ),
    var(
        "PAGERDUTY_EVENTS_URL",
        "https://events.pagerduty.com/v2/enqueue",
        "PagerDuty Events API v2 endpoint.",
    ),
    secret(
        "SLACK_WEBHOOK_URL",
        "Slack incoming webhook URL; unset: alerts are not sent to Slack.",
    ),
    var(
        "ALERT_MAX_BACKOFF_MS",
        "30000",
        "Longest wait between two attempts to deliver an alert, in ms (a receiver outage is retried until it ends).",
    ),
    var(
        "ENABLE_OUTCOME_LOGGING",
        "true",
        "Log every recorded outcome through tracing (true/false).",
    ),
    var(
        "RUST_LOG",
        "info",
        "Log filter (tracing EnvFilter syntax), e.g. feedback_pipeline=debug.",
    ),
];

/// Looks a variable up by name.
pub fn find(name: &str) -> Option<&'static EnvVar> {
    VARIABLES.iter().find(|var| var.name == name)
}

/// Words in a `KAFKA_PROPERTY_*` name that mark its value as a credential (`sasl.jaas.config`
/// and `sasl.oauthbearer.config` carry them inline).
const SECRET_PROPERTY_WORDS: [&str; 6] = [
    "PASSWORD",
    "SECRET",
    "TOKEN",
    "KEY",
    "JAAS_CONFIG",
    "OAUTHBEARER_CONFIG",
];

/// Whether the value of variable `name` is never printed: a secret variable of the table, or a
/// `KAFKA_PROPERTY_*` whose name holds one of [`SECRET_PROPERTY_WORDS`].
pub fn is_secret(name: &str) -> bool {
    if let Some(var) = find(name) {
        return var.secret;
    }
    name.strip_prefix(KAFKA_PROPERTY_PREFIX)
        .is_some_and(|property| {
            let property = property.to_ascii_uppercase();
            SECRET_PROPERTY_WORDS
                .iter()
                .any(|word| property.contains(word))
        })
}

/// The text of `.env.example`: every variable, commented with its meaning, set to its default.
pub fn env_example() -> String {
    let mut text = String::from(
        "# feedback-pipeline configuration. Copy to .env and edit; real environment variables win.\n\
         # Generated from src/config/vars.rs by `feedback-pipeline config env-example`.\n",
    );
    for var in VARIABLES {
        text.push_str(&format!(
            "\n# {}\n{}={}\n",
            var.meaning, var.name, var.default
        ));
    }
    text.push_str(&format!(
        "\n# Any librdkafka property: {KAFKA_PROPERTY_PREFIX}<NAME> with dots as underscores.\n\
         # {KAFKA_PROPERTY_PREFIX}SOCKET_KEEPALIVE_ENABLE=true\n"
    ));
    text
}
