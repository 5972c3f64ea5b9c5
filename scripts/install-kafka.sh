#!/usr/bin/env bash
# Installs Apache Kafka's server jars from Maven Central (scripts/kafka/pom.xml) into the cache
# outside the clone, ~/.cache/feedback-pipeline/kafka-<version>/, and prints that directory.
# An install that is already complete is reused; nothing is downloaded by hand.
#
#   scripts/install-kafka.sh            prints e.g. /root/.cache/feedback-pipeline/kafka-4.4.0
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
KAFKA_VERSION=4.4.0
CACHE_ROOT="${FEEDBACK_PIPELINE_CACHE:-$HOME/.cache/feedback-pipeline}"
HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
# The stamp holds the pom's checksum, so a changed pom reinstalls.
stamp="$(sha256sum "$here/kafka/pom.xml" "$here/kafka/log4j2.properties" | sha256sum | cut -c1-16)"

if [[ -f "$HOME_DIR/.installed" && "$(cat "$HOME_DIR/.installed")" == "$stamp" ]]; then
    echo "$HOME_DIR"
    exit 0
fi
for tool in java mvn; do
    if ! command -v "$tool" >/dev/null; then
        echo "install-kafka.sh: '$tool' is not on PATH; Kafka $KAFKA_VERSION needs a JDK 17+ (java) and Maven (mvn): apt-get install openjdk-17-jdk-headless maven" >&2
        exit 1
    fi
done

echo "installing Apache Kafka $KAFKA_VERSION jars into $HOME_DIR" >&2
mkdir -p "$CACHE_ROOT"
staging="$(mktemp -d "$CACHE_ROOT/kafka-install.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
mvn -B -q -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$staging/libs" >&2
cp "$here/kafka/log4j2.properties" "$staging/log4j2.properties"
java -cp "$staging/libs/*" kafka.Kafka --version >/dev/null 2>&1 || {
    echo "install-kafka.sh: the jars in $staging/libs do not start kafka.Kafka" >&2
    exit 1
}
echo "$stamp" >"$staging/.installed"
rm -rf "$HOME_DIR"
mv "$staging" "$HOME_DIR"
trap - EXIT
echo "$HOME_DIR"
