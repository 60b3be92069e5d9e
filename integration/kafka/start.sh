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
# With MUON_KAFKA_SECURITY_DIR=DIR the client listener on PORT is SASL_SSL
# instead of PLAINTEXT: TLS with DIR/broker.pem (its PKCS#8 key and
# certificate chain), client certificates signed by DIR/ca.pem required, and
# SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for each "user password" line
# of DIR/users (the SCRAM credentials are added when the storage is
# formatted). The broker then also listens in PLAINTEXT on 127.0.0.1:PORT+2
# for itself (inter-broker traffic and the readiness check).
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
secure_dir=${MUON_KAFKA_SECURITY_DIR:-}
internal_port=$((port + 2))
ports=("$port" "$controller_port")
if [[ -n $secure_dir ]]; then
	for f in broker.pem ca.pem users; do
		[[ -r $secure_dir/$f ]] || { echo "kafka: MUON_KAFKA_SECURITY_DIR=$secure_dir has no readable $f" >&2; exit 2; }
	done
	ports+=("$internal_port")
fi
for p in "${ports[@]}"; do
	if jvm_port_open "$p"; then
		echo "kafka: port $p on 127.0.0.1 is taken by another process; choose another PORT (the controller uses PORT+1)" >&2
		exit 1
	fi
done

rm -rf "$run"
mkdir -p "$run/data" "$run/logs"

scram_args=()
if [[ -z $secure_dir ]]; then
	listeners="listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT"
else
	secure_dir=$(cd "$secure_dir" && pwd)
	plain_users=""
	while read -r user password; do
		[[ -n $user ]] || continue
		plain_users+=" user_$user=\"$password\""
		scram_args+=(--add-scram "SCRAM-SHA-256=[name=$user,password=$password]" --add-scram "SCRAM-SHA-512=[name=$user,password=$password]")
	done <"$secure_dir/users"
	listeners="listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port,INTERNAL://127.0.0.1:$internal_port
advertised.listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port,INTERNAL://127.0.0.1:$internal_port
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$secure_dir/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$secure_dir/ca.pem
ssl.client.auth=required"
	# The readiness check speaks plaintext: it asks the internal listener.
	echo "$internal_port" >"$run/ready.port"
fi

cat >"$run/server.properties" <<EOF
# Written by integration/kafka/start.sh: one KRaft node, broker and controller.
process.roles=broker,controller
node.id=1
$listeners
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
	kafka.tools.StorageTool format --standalone --cluster-id="$cluster_id" -c "$run/server.properties" "${scram_args[@]}" \
	</dev/null >"$run/logs/format.out" 2>&1; then
	echo "kafka: formatting the storage in $run/data failed:" >&2
	cat "$run/logs/format.out" >&2
	exit 1
fi

kafka_launch "$port" "$run" "$timeout_s"

echo "kafka: Kafka $kafka_version ready on 127.0.0.1:$port in $((SECONDS - started)) s (pid $(cat "$run/kafka.pid"), logs in $run/logs)" >&2
echo "KAFKA_BROKERS=127.0.0.1:$port"
