#!/usr/bin/env bash
# Starts an Apache Kafka KRaft cluster on free loopback ports, in the background: every node is a
# combined broker and controller. Prints the addresses and pids as KEY=VALUE lines:
#
#   scripts/start-kafka.sh [--brokers 1|3] [--dir DIR] [--watch-pid PID] [--client-port P]
#                          [--sasl-ssl PEM --scram-user NAME]   (password in $KAFKA_SCRAM_PASSWORD)
#   scripts/start-kafka.sh --dir DIR --restart N                 start node N again (after a kill)
#   scripts/start-kafka.sh --dir DIR --stop                      stop every node (SIGTERM, then KILL)
#
# Output: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:P1,...  KAFKA_PIDS=...  KAFKA_DIR=...  and, with
# --sasl-ssl, KAFKA_SASL_SSL_SERVERS=... (a SASL_SSL listener with SCRAM-SHA-512, its key and
# certificate chain in PEM). With 3 brokers topics default to replication factor 3 and
# min.insync.replicas 2. --watch-pid stops the cluster when that process ends (the tests pass
# their own pid, so no broker outlives a test binary). Each node logs to DIR/node-N/server.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

brokers=1 dir="" watch_pid="" restart="" stop=0 pem="" scram_user="" fixed_client_port=""
while (($#)); do
    case "$1" in
        --brokers) brokers="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --watch-pid) watch_pid="$2"; shift 2 ;;
        --client-port) fixed_client_port="$2"; shift 2 ;;
        --restart) restart="$2"; shift 2 ;;
        --stop) stop=1; shift ;;
        --sasl-ssl) pem="$2"; shift 2 ;;
        --scram-user) scram_user="$2"; shift 2 ;;
        *) echo "start-kafka.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
    esac
done
[[ "$brokers" == 1 || "$brokers" == 3 ]] || { echo "start-kafka.sh: --brokers is 1 or 3, not '$brokers'" >&2; exit 2; }

pids_of() { cat "$dir"/node-*/pid 2>/dev/null | tr '\n' ' '; }

stop_cluster() {
    local pids; pids="$(pids_of)"
    [[ -n "$pids" ]] || return 0
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 $pids 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL $pids 2>/dev/null || true
}

if ((stop)); then
    [[ -n "$dir" ]] || { echo "start-kafka.sh: --stop needs --dir" >&2; exit 2; }
    stop_cluster
    exit 0
fi

kafka_home="$(bash "$here/install-kafka.sh")"

# Starts node $1's JVM in the background from its server.properties; its pid goes to node-N/pid.
spawn_node() {
    local node="$dir/node-$1"
    nohup java -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$kafka_home/log4j2.properties" -Dkafka.logs.dir="$node" \
        -cp "$kafka_home/libs/*" kafka.Kafka "$node/server.properties" \
        >>"$node/stdout.log" 2>&1 </dev/null &
    echo $! >"$node/pid"
}

# Waits until node $1 has logged "Kafka Server started" more than $2 times.
started_since() {
    local node="$dir/node-$1" pid; pid="$(cat "$dir/node-$1/pid")"
    for _ in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "start-kafka.sh: node $1 exited; its logs:" >&2
            tail -n 40 "$node/stdout.log" "$node/server.log" >&2 || true
            return 1
        fi
        local now; now="$(grep -c 'Kafka Server started' "$node/server.log" 2>/dev/null || true)"
        ((${now:-0} > $2)) && return 0
        sleep 0.1
    done
    echo "start-kafka.sh: node $1 did not start within 60s; log: $node/server.log" >&2
    return 1
}

if [[ -n "$restart" ]]; then
    [[ -n "$dir" && -f "$dir/node-$restart/server.properties" ]] || { echo "start-kafka.sh: no node $restart under --dir '$dir'" >&2; exit 2; }
    before="$(grep -c 'Kafka Server started' "$dir/node-$restart/server.log" 2>/dev/null || true)"
    spawn_node "$restart"
    started_since "$restart" "${before:-0}"
    echo "KAFKA_PID=$(cat "$dir/node-$restart/pid")"
    exit 0
fi

[[ -n "$dir" ]] || dir="$(mktemp -d "${TMPDIR:-/tmp}/kafka-cluster.XXXXXX")"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [[ -n "$pem" ]]; then
    [[ -n "$scram_user" && -n "${KAFKA_SCRAM_PASSWORD:-}" ]] || { echo "start-kafka.sh: --sasl-ssl needs --scram-user and KAFKA_SCRAM_PASSWORD" >&2; exit 2; }
    pem="$(realpath "$pem")"
fi

# Three ports per node (clients, controller, SASL_SSL), all bound at once so none repeats.
read -r -a ports <<<"$(python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(3 * int(sys.argv[1]))]
for s in sockets: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))' "$brokers")"
# --client-port: the first node's client port is that one (e.g. 9092, which examples name).
[[ -z "$fixed_client_port" ]] || ports[0]="$fixed_client_port"
client_port() { echo "${ports[$((3 * ($1 - 1)))]}"; }
controller_port() { echo "${ports[$((3 * ($1 - 1) + 1))]}"; }
sasl_port() { echo "${ports[$((3 * ($1 - 1) + 2))]}"; }

voters="" servers="" sasl_servers=""
for n in $(seq 1 "$brokers"); do
    voters+="${voters:+,}$n@127.0.0.1:$(controller_port "$n")"
    servers+="${servers:+,}127.0.0.1:$(client_port "$n")"
    sasl_servers+="${sasl_servers:+,}127.0.0.1:$(sasl_port "$n")"
done
replicas="$brokers" min_isr=$((brokers > 1 ? 2 : 1))

write_properties() {
    local n="$1" node="$dir/node-$1"
    local listeners="PLAINTEXT://127.0.0.1:$(client_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")"
    local advertised="PLAINTEXT://127.0.0.1:$(client_port "$n")"
    if [[ -n "$pem" ]]; then
        listeners+=",SASL_SSL://127.0.0.1:$(sasl_port "$n")"
        advertised+=",SASL_SSL://127.0.0.1:$(sasl_port "$n")"
    fi
    mkdir -p "$node/data"
    cat >"$node/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$node/data
num.partitions=1
default.replication.factor=$replicas
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
# A test cluster: groups form at once, a killed node is noticed within seconds.
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
PROPERTIES
    if [[ -n "$pem" ]]; then
        cat >>"$node/server.properties" <<PROPERTIES
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$pem
PROPERTIES
    fi
}

# A random cluster id (base64 of a UUID) that does not start with '-', which the storage tool's
# argument parser would read as an option.
cluster_id="$(python3 -c '
import base64, uuid
while (text := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(text)')"
scram=()
[[ -n "$pem" ]] && scram=(--add-scram "SCRAM-SHA-512=[name=$scram_user,password=$KAFKA_SCRAM_PASSWORD]")
for n in $(seq 1 "$brokers"); do
    write_properties "$n"
    java -Dlog4j2.configurationFile="$kafka_home/log4j2.properties" -Dkafka.logs.dir="$dir/node-$n" \
        -cp "$kafka_home/libs/*" kafka.tools.StorageTool format --ignore-formatted \
        -t "$cluster_id" -c "$dir/node-$n/server.properties" "${scram[@]}" >"$dir/node-$n/format.log" 2>&1 || {
        echo "start-kafka.sh: formatting node $n failed:" >&2; cat "$dir/node-$n/format.log" >&2; exit 1; }
done
# The nodes start together: a controller quorum needs a majority before any broker is ready.
for n in $(seq 1 "$brokers"); do spawn_node "$n"; done
for n in $(seq 1 "$brokers"); do
    started_since "$n" 0 || { stop_cluster; exit 1; }
done
if [[ -n "$watch_pid" ]]; then
    nohup bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec bash "$2" --dir "$3" --stop' \
        _ "$watch_pid" "$here/start-kafka.sh" "$dir" >/dev/null 2>&1 </dev/null &
fi
echo "KAFKA_BOOTSTRAP_SERVERS=$servers"
[[ -n "$pem" ]] && echo "KAFKA_SASL_SSL_SERVERS=$sasl_servers"
echo "KAFKA_PIDS=$(pids_of)"
echo "KAFKA_DIR=$dir"
