//! librdkafka's client errors (from its error callback) logged with the setting to fix: an
//! authentication failure or an untrusted certificate otherwise reads as a bare librdkafka code.

use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// The variable to fix for a client-level error, when the error says which one it is.
pub fn hint(error: &KafkaError, reason: &str) -> Option<&'static str> {
    let reason = reason.to_ascii_lowercase();
    match error.rdkafka_error_code()? {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => Some(
            "the broker refused the SASL credentials: check KAFKA_SASL_USERNAME and \
             KAFKA_SASL_PASSWORD (and KAFKA_SASL_MECHANISM, which must be one the broker enables)",
        ),
        RDKafkaErrorCode::SSL if reason.contains("certificate verify failed") => Some(
            "the broker's TLS certificate is not trusted: set KAFKA_SSL_CAFILE to the PEM file \
             of the CA that signed it",
        ),
        RDKafkaErrorCode::SSL => Some(
            "the TLS handshake failed: check KAFKA_SECURITY_PROTOCOL (SSL or SASL_SSL only where \
             the listener speaks TLS) and the KAFKA_SSL_* files",
        ),
        _ => None,
    }
}

/// Logs a client-level error: as an error naming the variable to fix where [`hint`] knows one,
/// else as a warning with librdkafka's own text. Neither carries a secret: librdkafka does not
/// quote them.
pub fn log_client_error(error: &KafkaError, reason: &str) {
    match hint(error, reason) {
        Some(fix) => tracing::error!(%error, reason, "Kafka connection failed: {fix}"),
        None => tracing::warn!(%error, reason, "librdkafka client error"),
    }
}

/// A client context that logs client errors with [`log_client_error`] and keeps the first one
/// [`hint`] explains, so a request that then fails can say which variable to fix.
#[derive(Debug, Default)]
pub struct DiagnosingContext {
    explained: Mutex<Option<&'static str>>,
}

impl DiagnosingContext {
    /// The first explained error's hint, if any came.
    pub fn explained(&self) -> Option<&'static str> {
        *self.explained.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for DiagnosingContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
        if let Some(fix) = hint(&error, reason) {
            self.explained
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(fix);
        }
    }
}

impl ConsumerContext for DiagnosingContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_and_trust_failures_name_the_variable() {
        let auth = KafkaError::Global(RDKafkaErrorCode::Authentication);
        let reason = "SASL authentication error: Authentication failed during authentication \
                      due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        assert!(hint(&auth, reason).unwrap().contains("KAFKA_SASL_PASSWORD"));
        let ssl = KafkaError::Global(RDKafkaErrorCode::SSL);
        let reason = "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed";
        assert!(hint(&ssl, reason).unwrap().contains("KAFKA_SSL_CAFILE"));
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(hint(&down, "1/1 brokers are down"), None);
    }
}
