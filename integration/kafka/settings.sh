# shellcheck shell=bash disable=SC2034 # the variables are for the sourcing scripts
# Settings and small helpers shared by fetch.sh, start.sh and stop.sh.
# Sourced, never run. Every path a script uses is decided here, so the three
# scripts always agree on where the jars and a broker's run dir are.

kafka_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../jvm.sh
source "$kafka_dir/../jvm.sh"
kafka_pom=$kafka_dir/pom.xml

# The Kafka version: MUON_KAFKA_VERSION, else the one pinned in pom.xml.
kafka_version=${MUON_KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$kafka_pom")}
if [[ -z $kafka_version ]]; then
	echo "kafka: no <kafka.version> in $kafka_pom and MUON_KAFKA_VERSION is unset" >&2
	exit 1
fi

muon_cache=${MUON_CACHE:-$HOME/.cache/muon}
kafka_home=$muon_cache/kafka-$kafka_version
kafka_libs=$kafka_home/libs

java_bin=${JAVA_HOME:+$JAVA_HOME/bin/}java

# kafka_check_port PORT: exits unless PORT can be the broker port (PORT+1 is the controller's).
kafka_check_port() {
	if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > 65534)); then
		echo "kafka: bad port '$1': want a number from 1 to 65534 (the controller takes PORT+1)" >&2
		exit 2
	fi
}

# kafka_run_dir PORT: the broker's config, data, logs and pid file live here.
kafka_run_dir() {
	printf '%s/kafka-run-%s' "$muon_cache" "$1"
}

# kafka_broker_pids RUN_DIR: pids of kafka.Kafka processes started with
# RUN_DIR/server.properties. Matching on the config path, not on a process
# name, means a broker of another port or another user's Kafka is never touched.
kafka_broker_pids() {
	jvm_pids "kafka.Kafka $1/server.properties"
}

# kafka_live_brokers PORT: sends a Metadata request (v12, all topics, no
# auto-creation) to 127.0.0.1:PORT and succeeds if the answer lists at least
# one live broker. A KRaft broker lists itself only once it has caught up with
# the metadata log and been unfenced, so this means "ready for clients", which
# an open port alone does not.
kafka_live_brokers() {
	local bytes
	# Request: int32 size 19 | api_key 3 | api_version 12 | correlation_id 1 |
	# client_id "muon" | no tagged fields | topics null | allow_auto_topic_creation
	# false | include_topic_authorized_operations false | no tagged fields.
	# shellcheck disable=SC2016 # $0 is expanded by the inner bash
	bytes=$(timeout 2 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
		printf "\x00\x00\x00\x13\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x04muon\x00\x00\x00\x00\x00" >&3
		head -c 14 <&3 | od -An -v -tu1
	' "$1" 2>/dev/null) || return 1
	# Response: int32 size | correlation_id | no tagged fields | throttle_time_ms |
	# brokers as a compact array, whose first byte is count+1 (a varint).
	local -a b
	read -r -a b <<<"$bytes"
	((${#b[@]} == 14)) || return 1
	[[ "${b[4]} ${b[5]} ${b[6]} ${b[7]}" == "0 0 0 1" ]] || return 1
	((b[13] >= 2))
}

# kafka_launch PORT RUN TIMEOUT — start the broker of the formatted run dir
# RUN in the background and wait until it answers on 127.0.0.1:PORT; used
# by start.sh, and by restart.sh on the same data.
kafka_launch() {
	local port=$1 run=$2 timeout_s=$3
	local log_opts=(-Dkafka.logs.dir="$run/logs" -Dlog4j2.configurationFile="$kafka_dir/log4j2.properties")
	local heap_opts extra_opts
	read -r -a heap_opts <<<"${MUON_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
	read -r -a extra_opts <<<"${MUON_KAFKA_JVM_OPTS:-}"
	jvm_detach "$run/kafka.pid" "$run/logs/kafka.out" \
		"$java_bin" "${heap_opts[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "${log_opts[@]}" "${extra_opts[@]}" \
		-cp "$kafka_libs/*" kafka.Kafka "$run/server.properties"

	ready=false
	fail_start() {
		jvm_fail_start kafka "$run" "$run/kafka.pid" kafka_broker_pids "$1" "$run/logs/kafka.out" "$run/logs/server.log"
	}
	trap '$ready || fail_start "the start was interrupted"' INT TERM
	# Ready: the broker answers a Metadata request listing itself (on its
	# plaintext listener: start.sh names it in ready.port when the client
	# listener is SASL_SSL).
	local ready_port=$port
	[[ -f $run/ready.port ]] && ready_port=$(cat "$run/ready.port")
	broker_ready() { kafka_live_brokers "$ready_port"; }
	no_reason() { :; }
	jvm_wait_ready "$timeout_s" "$run/kafka.pid" "the broker" broker_ready no_reason \
		"the broker did not answer a Metadata request on 127.0.0.1:$port within ${timeout_s} s (MUON_KAFKA_START_TIMEOUT)"
	ready=true
	trap - INT TERM
}
