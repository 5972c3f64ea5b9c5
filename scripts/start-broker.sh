#!/usr/bin/env bash
# Starts a tansu broker on a free loopback port, in the background, and prints its address.
#
#   scripts/start-broker.sh [STORAGE]      STORAGE: memory (default) or a sqlite file path
#
# Prints `BOOTSTRAP=127.0.0.1:PORT` and `PID=...`; stop it with `kill PID`. Logs go to
# ${TMPDIR:-/tmp}/tansu-PORT.log. The integration tests start their own brokers instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tansu="${TANSU_BIN:-$(bash "$here/install-broker.sh")}"

storage="${1:-memory}"
if [[ "$storage" == "memory" ]]; then
    engine="memory://tansu/"
else
    engine="sqlite://$(realpath -m "$storage")"
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="tcp://127.0.0.1:$port"
log="${TMPDIR:-/tmp}/tansu-$port.log"
nohup "$tansu" broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine "$engine" >"$log" 2>&1 &
pid=$!

for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "tansu exited; log follows" >&2
        cat "$log" >&2
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "BOOTSTRAP=127.0.0.1:$port"
        echo "PID=$pid"
        exit 0
    fi
    sleep 0.2
done
echo "tansu did not open port $port within 30s; log: $log" >&2
kill "$pid" 2>/dev/null || true
exit 1
