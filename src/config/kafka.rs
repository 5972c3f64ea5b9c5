//! Kafka connection and producer settings, and their translation to librdkafka properties.

use std::fmt;

use rdkafka::ClientConfig;

use super::error::ConfigError;
use super::parse::{VarSource, invalid};
use super::vars::KAFKA_PROPERTY_PREFIX;

/// Producer compression codec (`KAFKA_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (the design documents' default).
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    const CHOICES: [(&'static str, Compression); 5] = [
        ("none", Self::None),
        ("gzip", Self::Gzip),
        ("snappy", Self::Snappy),
        ("lz4", Self::Lz4),
        ("zstd", Self::Zstd),
    ];

    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, codec)| *codec == self)
            .map_or("none", |(name, _)| name)
    }
}

/// Transport security (`KAFKA_SECURITY_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    const CHOICES: [(&'static str, SecurityProtocol); 4] = [
        ("PLAINTEXT", Self::Plaintext),
        ("SSL", Self::Ssl),
        ("SASL_PLAINTEXT", Self::SaslPlaintext),
        ("SASL_SSL", Self::SaslSsl),
    ];

    /// The librdkafka `security.protocol` value.
    pub fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, protocol)| *protocol == self)
            .map_or("PLAINTEXT", |(name, _)| name)
    }

    fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// A secret value: usable, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for handing to the client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The value of a `KAFKA_PROPERTY_*` variable: `Debug` shows it unless the variable's name
/// marks it a credential ([`super::vars::is_secret`]).
#[derive(Clone, PartialEq, Eq)]
pub struct PropertyValue {
    value: String,
    secret: bool,
}

impl PropertyValue {
    /// The value of variable `variable`.
    pub fn new(variable: &str, value: String) -> Self {
        Self {
            secret: super::vars::is_secret(variable),
            value,
        }
    }

    /// The value itself, for handing to the client library.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str("<redacted>")
        } else {
            fmt::Debug::fmt(&self.value, f)
        }
    }
}

/// TLS and SASL settings, passed through to librdkafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// `ssl.ca.location`.
    pub ssl_ca_file: Option<String>,
    /// `ssl.certificate.location`.
    pub ssl_cert_file: Option<String>,
    /// `ssl.key.location`.
    pub ssl_key_file: Option<String>,
    /// `ssl.key.password`.
    pub ssl_key_password: Option<Secret>,
    /// `sasl.mechanism`.
    pub sasl_mechanism: Option<String>,
    /// `sasl.username`.
    pub sasl_username: Option<String>,
    /// `sasl.password`.
    pub sasl_password: Option<Secret>,
}

/// Everything needed to talk to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Whether Kafka is used at all (`ENABLE_KAFKA`).
    pub enabled: bool,
    /// Brokers; `None` means the embedded mock cluster.
    pub bootstrap_servers: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// Most messages per producer batch (`batch.num.messages`).
    pub batch_size: u32,
    /// Producer linger, in milliseconds (`linger.ms`).
    pub linger_ms: u32,
    /// Producer compression.
    pub compression: Compression,
    /// Producer retries (`retries`).
    pub max_retries: u32,
    /// The processor's consumer group.
    pub consumer_group: String,
    /// TLS and SASL.
    pub security: SecurityConfig,
    /// Extra librdkafka properties from `KAFKA_PROPERTY_*`, sorted by name.
    pub extra_properties: Vec<(String, PropertyValue)>,
}

const SASL_MECHANISMS: [(&str, &str); 4] = [
    ("PLAIN", "PLAIN"),
    ("SCRAM-SHA-256", "SCRAM-SHA-256"),
    ("SCRAM-SHA-512", "SCRAM-SHA-512"),
    ("OAUTHBEARER", "OAUTHBEARER"),
];

impl KafkaConfig {
    /// Reads the Kafka settings from `source`.
    pub fn from_source(source: &VarSource) -> Result<Self, ConfigError> {
        let security = SecurityConfig {
            protocol: source.choice("KAFKA_SECURITY_PROTOCOL", &SecurityProtocol::CHOICES)?,
            ssl_ca_file: source.existing_file("KAFKA_SSL_CAFILE")?,
            ssl_cert_file: source.existing_file("KAFKA_SSL_CERTFILE")?,
            ssl_key_file: source.existing_file("KAFKA_SSL_KEYFILE")?,
            ssl_key_password: source
                .get("KAFKA_SSL_KEY_PASSWORD")
                .map(|v| Secret(v.to_owned())),
            sasl_mechanism: match source.get("KAFKA_SASL_MECHANISM") {
                None => None,
                Some(_) => Some(
                    source
                        .choice("KAFKA_SASL_MECHANISM", &SASL_MECHANISMS)?
                        .to_owned(),
                ),
            },
            sasl_username: source.get("KAFKA_SASL_USERNAME").map(str::to_owned),
            sasl_password: source
                .get("KAFKA_SASL_PASSWORD")
                .map(|v| Secret(v.to_owned())),
        };
        check_security(&security)?;
        let config = Self {
            enabled: source.bool("ENABLE_KAFKA")?,
            bootstrap_servers: source.get("KAFKA_BOOTSTRAP_SERVERS").map(str::to_owned),
            client_id: source.get_or_default("KAFKA_CLIENT_ID").to_owned(),
            batch_size: source.number("KAFKA_BATCH_SIZE", 1, 1_000_000)?,
            linger_ms: source.number("KAFKA_LINGER_MS", 0, 900_000)?,
            compression: source.choice("KAFKA_COMPRESSION", &Compression::CHOICES)?,
            max_retries: source.number("KAFKA_MAX_RETRIES", 0, i32::MAX as u32)?,
            consumer_group: source.get_or_default("KAFKA_CONSUMER_GROUP").to_owned(),
            security,
            extra_properties: extra_properties(source)?,
        };
        if let Some(servers) = &config.bootstrap_servers {
            check_servers(servers)?;
        }
        Ok(config)
    }

    /// Connection properties shared by producers, consumers and admin clients.
    ///
    /// `bootstrap_servers` is the address to use (the configured one, or the mock cluster's).
    pub fn client_config(&self, bootstrap_servers: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("security.protocol", self.security.protocol.as_str());
        let security = &self.security;
        let optional = [
            ("ssl.ca.location", security.ssl_ca_file.as_deref()),
            (
                "ssl.certificate.location",
                security.ssl_cert_file.as_deref(),
            ),
            ("ssl.key.location", security.ssl_key_file.as_deref()),
            (
                "ssl.key.password",
                security.ssl_key_password.as_ref().map(Secret::expose),
            ),
            ("sasl.mechanism", security.sasl_mechanism.as_deref()),
            ("sasl.username", security.sasl_username.as_deref()),
            (
                "sasl.password",
                security.sasl_password.as_ref().map(Secret::expose),
            ),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                config.set(key, value);
            }
        }
        self.apply_extra_properties(&mut config);
        config
    }

    /// Sets the `KAFKA_PROPERTY_*` properties on `config` (over what is set already).
    fn apply_extra_properties(&self, config: &mut ClientConfig) {
        for (key, value) in &self.extra_properties {
            config.set(key, value.expose());
        }
    }

    /// Consumer properties. When the pre-fetch queue is full librdkafka pauses fetching for
    /// `fetch.queue.backoff.ms` (1 s by default); a consumer that drains the queue faster than
    /// that (the processor reading a backlog) then sits idle, which was most of its read time.
    pub fn consumer_config(&self, bootstrap_servers: &str) -> ClientConfig {
        let mut config = self.client_config(bootstrap_servers);
        config.set("fetch.queue.backoff.ms", "10");
        // As for the producer: a user override wins over our defaults.
        self.apply_extra_properties(&mut config);
        config
    }

    /// Producer properties: batching, linger, compression, retries, idempotence.
    pub fn producer_config(&self, bootstrap_servers: &str) -> ClientConfig {
        let mut config = self.client_config(bootstrap_servers);
        config
            .set("enable.idempotence", "true")
            .set("batch.num.messages", self.batch_size.to_string())
            .set("linger.ms", self.linger_ms.to_string())
            .set("compression.type", self.compression.as_str())
            .set("retries", self.max_retries.to_string());
        // Extra properties were applied first; re-apply so a user override wins over our defaults.
        self.apply_extra_properties(&mut config);
        config
    }
}

fn check_security(security: &SecurityConfig) -> Result<(), ConfigError> {
    let sasl = security.protocol.uses_sasl();
    if security.sasl_mechanism.is_some() && !sasl {
        return Err(ConfigError::Inconsistent {
            variable: "KAFKA_SECURITY_PROTOCOL".into(),
            problem: "KAFKA_SASL_MECHANISM is set, so set KAFKA_SECURITY_PROTOCOL to SASL_SSL or SASL_PLAINTEXT".into(),
        });
    }
    if sasl && security.sasl_username.is_some() != security.sasl_password.is_some() {
        return Err(ConfigError::Inconsistent {
            variable: "KAFKA_SASL_PASSWORD".into(),
            problem: "set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD together".into(),
        });
    }
    Ok(())
}

fn check_servers(servers: &str) -> Result<(), ConfigError> {
    let well_formed = servers.split(',').map(str::trim).all(|server| {
        server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    });
    if well_formed {
        Ok(())
    } else {
        Err(invalid(
            "KAFKA_BOOTSTRAP_SERVERS",
            servers,
            "a comma-separated list of host:port, e.g. localhost:9092",
        ))
    }
}

fn extra_properties(source: &VarSource) -> Result<Vec<(String, PropertyValue)>, ConfigError> {
    let mut properties = Vec::new();
    for (name, value) in source.iter() {
        let Some(suffix) = name.strip_prefix(KAFKA_PROPERTY_PREFIX) else {
            continue;
        };
        if suffix.is_empty()
            || !suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid(
                name,
                value,
                "a librdkafka property name after KAFKA_PROPERTY_, dots written as underscores",
            ));
        }
        properties.push((
            suffix.to_ascii_lowercase().replace('_', "."),
            PropertyValue::new(name, value.to_owned()),
        ));
    }
    properties.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(properties)
}
