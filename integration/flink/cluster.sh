#!/usr/bin/env bash
# cluster.sh start|stop|add-taskmanager|kill-taskmanager [ARGS] — a Flink
# session cluster on 127.0.0.1 from the jars fetch.sh caches: a JobManager
# (StandaloneSessionClusterEntrypoint) and TaskManagers (TaskManagerRunner),
# each a JVM of its own, sharing one config.yaml in the run dir
# ${MUON_CACHE:-$HOME/.cache/muon}/flink-cluster-PORT.
#
#   cluster.sh start [PORT]            JobManager with its REST API on PORT
#                                      (default 18081; RPC on PORT+1) and
#                                      MUON_FLINK_TASKMANAGERS (default 2)
#                                      TaskManagers; waits until the REST API
#                                      reports them all with their slots, then
#                                      prints FLINK_MASTER=127.0.0.1:PORT
#   cluster.sh add-taskmanager PORT    starts one more TaskManager (as a
#                                      replacement after a kill), prints its pid
#   cluster.sh kill-taskmanager PORT N SIGKILLs the Nth TaskManager (1-based,
#                                      in start order), as a crash would
#   cluster.sh stop [PORT]             stops them all, removes the run dir
#
# Every process binds to 127.0.0.1. A TaskManager has
# MUON_FLINK_SLOTS (default 2) slots, 1 CPU core and explicit memory sizes
# (TaskManagerRunner, started without Flink's scripts, derives none). The
# cluster restarts a failed job (fixed delay, 20 attempts, 2 s apart) from
# its latest checkpoint. Each TaskManager has a working directory and HOME of
# its own under the run dir, so workers it starts share no disk with the
# submitter by accident. MUON_FLINK_CLUSTER_ENV may name a file of KEY=VALUE
# lines for the TaskManagers' environment (e.g. the PATH of the muon binary
# their workers run).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

cmd=${1:-}
port=${2:-${MUON_FLINK_CLUSTER_PORT:-18081}}
flink_check_port "$port"
run=$muon_cache/flink-cluster-$port
conf=$run/conf
rpc_port=$((port + 1))
jm_main=org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint
tm_main=org.apache.flink.runtime.taskexecutor.TaskManagerRunner

cluster_pids() { jvm_pids "-Dmuon.flink.cluster=$run"; }
tm_pids() { jvm_pids "-Dmuon.flink.cluster=$run" "$tm_main"; }

jvm_opts=(
	-XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
	-Dmuon.flink.cluster="$run"
	-Dlog4j2.configurationFile="$flink_dir/log4j2.properties"
	"${flink_jvm_opens[@]}"
)

rest() { curl -sf --max-time 3 "http://127.0.0.1:$port$1"; }

write_conf() {
	local slots=${MUON_FLINK_SLOTS:-2}
	mkdir -p "$conf" "$run/logs" "$run/tmp" "$run/checkpoints"
	cat >"$conf/config.yaml" <<EOF
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: $rpc_port
jobmanager.bind-host: 127.0.0.1
jobmanager.memory.process.size: 800m
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $port
taskmanager.bind-host: 127.0.0.1
taskmanager.host: 127.0.0.1
taskmanager.numberOfTaskSlots: $slots
taskmanager.cpu.cores: 1
# -Xmx below is framework + task heap: Beam's batch operators hold a
# bundle's elements on the heap.
taskmanager.memory.framework.heap.size: 128m
taskmanager.memory.task.heap.size: 1408m
taskmanager.memory.managed.size: 320m
taskmanager.memory.framework.off-heap.size: 128m
# The gRPC buffers to the SDK workers are direct memory: task off-heap.
# -XX:MaxDirectMemorySize below is framework + task off-heap + network.
taskmanager.memory.task.off-heap.size: 384m
taskmanager.memory.network.min: 192m
taskmanager.memory.network.max: 192m
taskmanager.memory.jvm-metaspace.size: 256m
taskmanager.memory.jvm-overhead.min: 192m
taskmanager.memory.jvm-overhead.max: 192m
blob.server.port: 0
taskmanager.rpc.port: 0
taskmanager.data.port: 0
io.tmp.dirs: $run/tmp
state.checkpoints.dir: file://$run/checkpoints
restart-strategy.type: fixed-delay
restart-strategy.fixed-delay.attempts: 20
restart-strategy.fixed-delay.delay: 2 s
# Batch jobs shuffle by sort: 512 buffers per result partition by
# default, which a muon pipeline's many stages soon run out of.
taskmanager.network.sort-shuffle.min-buffers: 64
heartbeat.interval: 2000
heartbeat.timeout: 8000
taskmanager.registration.timeout: 60 s
# Subtasks spread over the TaskManagers rather than filling one first.
cluster.evenly-spread-out-slots: true
web.submit.enable: false
web.cancel.enable: true
EOF
}

start_jm() {
	jvm_detach "$run/jobmanager.pid" "$run/logs/jobmanager.out" env LD_PRELOAD="$loopback" \
		"$java_bin" -Xms256m -Xmx512m "${jvm_opts[@]}" -Dmuon.flink.logs.dir="$run/logs/jobmanager" \
		-cp "$flink_libs/*" "$jm_main" --configDir "$conf"
}

# start_tm: a TaskManager with a working directory and HOME of its own.
start_tm() {
	local n dir env_file=${MUON_FLINK_CLUSTER_ENV:-}
	n=$(($(cat "$run/taskmanagers" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$run/taskmanagers"
	dir=$run/tm$n
	mkdir -p "$dir/home" "$dir/work" "$run/logs/tm$n"
	local -a env_args=(HOME="$dir/home" LD_PRELOAD="$loopback")
	if [[ -n $env_file ]]; then
		while IFS= read -r line; do
			[[ -z $line || $line == \#* ]] || env_args+=("$line")
		done <"$env_file"
	fi
	(
		cd "$dir/work"
		jvm_detach "$run/tm$n.pid" "$run/logs/tm$n.out" env "${env_args[@]}" \
			"$java_bin" -Xms256m -Xmx1536m -XX:MaxDirectMemorySize=704m "${jvm_opts[@]}" \
			-Dmuon.flink.logs.dir="$run/logs/tm$n" -Dmuon.flink.tm="$n" \
			-cp "$flink_libs/*" "$tm_main" --configDir "$conf"
	)
	# The pid file is written by the detached bash: wait for it.
	for _ in $(seq 1 50); do
		[[ -s $run/tm$n.pid ]] && break
		sleep 0.1
	done
	echo "$n"
}

registered() { rest /taskmanagers | grep -o '"id"' | wc -l; }

wait_taskmanagers() {
	local want=$1 deadline=$((SECONDS + ${MUON_FLINK_START_TIMEOUT:-120})) slots
	while :; do
		if rest /overview >/dev/null 2>&1; then
			slots=$(rest /overview | sed -n 's/.*"slots-total":\([0-9]*\).*/\1/p')
			if (($(registered) >= want)) && [[ -n $slots ]] && ((slots >= want * ${MUON_FLINK_SLOTS:-2})); then
				return 0
			fi
		fi
		if ! jvm_any_alive "$(cat "$run/jobmanager.pid" 2>/dev/null || echo 0)"; then
			fail "the JobManager exited during startup"
		fi
		if ((SECONDS >= deadline)); then
			fail "the cluster did not report $want TaskManagers within ${MUON_FLINK_START_TIMEOUT:-120} s (MUON_FLINK_START_TIMEOUT)"
		fi
		sleep 0.5
	done
}

fail() {
	echo "flink cluster: $1" >&2
	for f in "$run"/logs/*/*.log "$run"/logs/*.out; do
		if [[ -s $f ]]; then
			echo "---- last lines of $f" >&2
			tail -n 30 "$f" >&2
		fi
	done
	for pid in $(cluster_pids); do kill -KILL "$pid" 2>/dev/null || true; done
	echo "flink cluster: logs kept in $run/logs" >&2
	exit 1
}

case $cmd in
start)
	"$flink_dir/fetch.sh" >&2
	loopback=$(flink_loopback_lib)
	if [[ -n $(cluster_pids) ]]; then
		echo "flink cluster: stopping the cluster an earlier start left on port $port" >&2
		"$0" stop "$port" >&2
	fi
	for p in "$port" "$rpc_port"; do
		if jvm_port_open "$p"; then
			echo "flink cluster: port $p on 127.0.0.1 is taken by another process; choose another PORT (the cluster uses PORT and PORT+1)" >&2
			exit 1
		fi
	done
	rm -rf "$run"
	write_conf
	started=$SECONDS
	start_jm
	tms=${MUON_FLINK_TASKMANAGERS:-2}
	for _ in $(seq 1 "$tms"); do start_tm >/dev/null; done
	trap 'fail "cluster.sh was interrupted"' INT TERM
	wait_taskmanagers "$tms"
	trap - INT TERM
	echo "flink cluster: Flink $flink_version JobManager on 127.0.0.1:$port (REST) and $tms TaskManagers, $(registered) registered, ready in $((SECONDS - started)) s (logs in $run/logs)" >&2
	echo "FLINK_MASTER=127.0.0.1:$port"
	;;
add-taskmanager)
	[[ -f $conf/config.yaml ]] || { echo "flink cluster: no cluster on port $port (cluster.sh start $port)" >&2; exit 1; }
	loopback=$(flink_loopback_lib)
	n=$(start_tm)
	echo "flink cluster: TaskManager $n started (pid $(cat "$run/tm$n.pid"))" >&2
	cat "$run/tm$n.pid"
	;;
kill-taskmanager)
	n=${3:?which TaskManager: cluster.sh kill-taskmanager PORT N}
	pid=$(cat "$run/tm$n.pid" 2>/dev/null || true)
	if [[ -z $pid ]] || [[ -z $(jvm_pids "-Dmuon.flink.cluster=$run" "-Dmuon.flink.tm=$n") ]]; then
		echo "flink cluster: TaskManager $n on port $port is not running" >&2
		exit 1
	fi
	kill -KILL "$pid"
	echo "flink cluster: TaskManager $n (pid $pid) killed" >&2
	;;
stop)
	mapfile -t pids < <(cluster_pids)
	jvm_stop "flink cluster" "the cluster on port $port" "${MUON_FLINK_STOP_TIMEOUT:-20}" "${pids[@]}"
	if [[ -d $run && $run == */flink-cluster-"$port" ]]; then
		rm -rf "$run"
	fi
	;;
*)
	echo "usage: cluster.sh start|stop|add-taskmanager|kill-taskmanager [PORT] [N]" >&2
	exit 2
	;;
esac
