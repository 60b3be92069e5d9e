#!/usr/bin/env bash
# start.sh [PORT] — start one real Apache Kafka node (KRaft, broker and
# controller in one JVM) on 127.0.0.1:PORT, its controller on PORT+1, in a
# fresh run dir ${MUON_CACHE:-$HOME/.cache/muon}/kafka-run-PORT, and wait
# until it answers a Metadata request listing itself.
#
# Progress goes to stderr; the only stdout line, printed last, is
#   KAFKA_BROKERS=127.0.0.1:PORT
# so `export "$(integration/kafka/start.sh)"` works. A broker left running
# on PORT by an earlier start.sh is stopped first. Stop with stop.sh PORT.
#
# Env: MUON_KAFKA_PORT (default 19092; the argument wins),
# MUON_KAFKA_START_TIMEOUT (seconds, default 60), MUON_KAFKA_HEAP_OPTS
# (default "-Xms256m -Xmx1g"), MUON_KAFKA_JVM_OPTS (extra JVM flags),
# JAVA_HOME, and those of fetch.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

port=${1:-${MUON_KAFKA_PORT:-19092}}
kafka_check_port "$port"
controller_port=$((port + 1))
run=$(kafka_run_dir "$port")
timeout_s=${MUON_KAFKA_START_TIMEOUT:-60}

"$kafka_dir/fetch.sh" >&2

if ! command -v "$java_bin" >/dev/null; then
	echo "kafka: no java found ($java_bin): install Java 17 or newer, or set JAVA_HOME" >&2
	exit 1
fi

if [[ -f $run/kafka.pid || -n $(kafka_broker_pids "$run") ]]; then
	echo "kafka: stopping the broker an earlier start.sh left on port $port" >&2
	"$kafka_dir/stop.sh" "$port" >&2
fi
for p in "$port" "$controller_port"; do
	if jvm_port_open "$p"; then
		echo "kafka: port $p on 127.0.0.1 is taken by another process; choose another PORT (the controller uses PORT+1)" >&2
		exit 1
	fi
done

rm -rf "$run"
mkdir -p "$run/data" "$run/logs"

cat >"$run/server.properties" <<EOF
# Written by integration/kafka/start.sh: one KRaft node, broker and controller.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
# A dynamic quorum (KIP-853) of one voter, set up by "format --standalone".
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
log.dirs=$run/data

num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0

# No time retention: the tests and benchmarks replay recordings with their
# historical event times (2024) as record timestamps, and Kafka's default
# retention (7 days, by record timestamp, checked every 5 minutes) deletes
# such records minutes after they are produced, whenever the check happens
# to run between a test's replay and its read.
log.retention.ms=-1

# One node: every internal topic has one replica. Fewer partitions than the
# defaults (50) so the first consumer group or transaction does not wait for
# fifty partitions to be created.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF

log_opts=(-Dkafka.logs.dir="$run/logs" -Dlog4j2.configurationFile="$kafka_dir/log4j2.properties")

# A Kafka cluster id is 16 random bytes in unpadded URL-safe base64. It may
# start with "-", so it goes after "=": as a separate argument the parser
# would take it for an option.
cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')

started=$SECONDS
if ! "$java_bin" -Xmx256m -XX:TieredStopAtLevel=1 "${log_opts[@]}" -cp "$kafka_libs/*" \
	kafka.tools.StorageTool format --standalone --cluster-id="$cluster_id" -c "$run/server.properties" \
	</dev/null >"$run/logs/format.out" 2>&1; then
	echo "kafka: formatting the storage in $run/data failed:" >&2
	cat "$run/logs/format.out" >&2
	exit 1
fi

kafka_launch "$port" "$run" "$timeout_s"

echo "kafka: Kafka $kafka_version ready on 127.0.0.1:$port in $((SECONDS - started)) s (pid $(cat "$run/kafka.pid"), logs in $run/logs)" >&2
echo "KAFKA_BROKERS=127.0.0.1:$port"
