# feedback-pipeline: the processor (`serve`) and the other subcommands in one image.
#
#   docker build -t feedback-pipeline .
#   docker run --rm -p 9464:9464 -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 feedback-pipeline
#
# Works with the classic builder too (no BuildKit-only syntax), so docker-compose v1 can build it.

# ---- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# librdkafka is compiled from source by rdkafka-sys: a C toolchain, make, pkg-config, zlib and
# OpenSSL headers (SSL/SASL to the brokers; reqwest's native-tls uses the same OpenSSL).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first, against placeholder sources, so that a change to our code does not
# rebuild librdkafka, DataFusion and the rest. benches/ is copied because Cargo.toml names
# its targets.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin feedback-pipeline \
    && rm -rf src target/release/.fingerprint/feedback-pipeline-* \
       target/release/deps/feedback_pipeline-* target/release/deps/libfeedback_pipeline-*

# The real sources (sql/ is compiled in as the built-in queries).
COPY . .
RUN touch src/lib.rs src/main.rs \
    && cargo build --release --locked --bin feedback-pipeline \
    && cp target/release/feedback-pipeline /usr/local/bin/feedback-pipeline

# ---- runtime ----------------------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 feedback \
    && useradd --system --uid 10001 --gid feedback --home-dir /app --shell /usr/sbin/nologin feedback

COPY --from=builder /usr/local/bin/feedback-pipeline /usr/local/bin/feedback-pipeline
COPY sql /app/sql
COPY alerts /app/alerts

WORKDIR /app
# The working directory holds the producer's disk spool (.feedback-pipeline/spool by default).
RUN mkdir -p /app/.feedback-pipeline && chown -R feedback:feedback /app/.feedback-pipeline

# Listen on every interface inside the container (the default 127.0.0.1 is unreachable from
# outside it); the window queries and alert rules are the files copied above.
ENV METRICS_ADDR=0.0.0.0:9464 \
    PROCESSOR_SQL_DIR=/app/sql \
    ALERT_RULES_FILE=/app/alerts/rules.toml \
    RUST_LOG=info

USER feedback:feedback
EXPOSE 9464

ENTRYPOINT ["feedback-pipeline"]
CMD ["serve"]
