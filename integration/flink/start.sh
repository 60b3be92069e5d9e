#!/usr/bin/env bash
# start.sh [PORT] — start Beam's Flink job server on 127.0.0.1 (job service on
# PORT, artifact staging on PORT-1, Java expansion service on PORT-2) against
# a Flink mini cluster inside the same JVM (--flink-master [local]), in a
# fresh run dir ${MUON_CACHE:-$HOME/.cache/muon}/flink-run-PORT, and wait
# until it accepts jobs.
#
# Progress goes to stderr; the only stdout line, printed last, is
#   FLINK_ENDPOINT=127.0.0.1:PORT
# so `export "$(integration/flink/start.sh)"` works. A job server left running
# on PORT by an earlier start.sh is stopped first. Stop with stop.sh PORT.
#
# Env: MUON_FLINK_PORT (default 18099; the argument wins), MUON_FLINK_MASTER
# (default [local]; host:port of a Flink JobManager's REST endpoint to submit
# to a cluster instead), MUON_FLINK_CONF_DIR (a directory with Flink's
# config.yaml for every job), MUON_FLINK_START_TIMEOUT (seconds, default 90),
# MUON_FLINK_HEAP_OPTS (default "-Xms256m -Xmx2g"), MUON_FLINK_JVM_OPTS
# (extra JVM flags), JAVA_HOME, and those of fetch.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

port=${1:-${MUON_FLINK_PORT:-18099}}
flink_check_port "$port"
artifact_port=$((port - 1))
expansion_port=$((port - 2))
run=$(flink_run_dir "$port")
master=${MUON_FLINK_MASTER:-[local]}
timeout_s=${MUON_FLINK_START_TIMEOUT:-90}

"$flink_dir/fetch.sh" >&2

if ! command -v "$java_bin" >/dev/null; then
	echo "flink: no java found ($java_bin): install Java 11 or 17, or set JAVA_HOME" >&2
	exit 1
fi
# "17.0.15", "11.0.2", "1.8.0_402" → 17, 11, 1
java_major=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
if [[ -z $java_major ]] || ((java_major < 11)); then
	echo "flink: $java_bin is Java ${java_major:-of an unknown version}; the job server needs Java 11 or newer (17 is tested)" >&2
	exit 1
fi

if [[ -f $run/jobserver.pid || -n $(flink_server_pids "$run") ]]; then
	echo "flink: stopping the job server an earlier start.sh left on port $port" >&2
	"$flink_dir/stop.sh" "$port" >&2
fi
for p in "$port" "$artifact_port" "$expansion_port"; do
	if jvm_port_open "$p"; then
		echo "flink: port $p on 127.0.0.1 is taken by another process; choose another PORT (the job server uses PORT, PORT-1 and PORT-2)" >&2
		exit 1
	fi
done

rm -rf "$run"
mkdir -p "$run/logs" "$run/artifacts" "$run/tmp"
log=$run/logs/jobserver.log

# java.io.tmpdir in the run dir: the mini cluster's blobs, the RPC system jar
# Flink unpacks at every start, and web uploads go there and are removed with
# it, not left in /tmp.
jvm_opts=(
	-XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
	-Djava.io.tmpdir="$run/tmp"
	-Dmuon.flink.logs.dir="$run/logs" -Dlog4j2.configurationFile="$flink_dir/log4j2.properties"
	"${flink_jvm_opens[@]}"
)
read -r -a heap_opts <<<"${MUON_FLINK_HEAP_OPTS:--Xms256m -Xmx2g}"
read -r -a extra_opts <<<"${MUON_FLINK_JVM_OPTS:-}"
server_args=(
	--flink-master "$master"
	--job-host 127.0.0.1
	--job-port "$port"
	--artifact-port "$artifact_port"
	--expansion-port "$expansion_port"
	--artifacts-dir "$run/artifacts"
	# Beam 2.62 cannot remove what a Go LOOPBACK job stages (an empty
	# placeholder for the worker binary): it logs a warning with a stack
	# trace per job. The run dir goes with stop.sh anyway.
	--clean-artifacts-per-job false
)
if [[ -n ${MUON_FLINK_CONF_DIR:-} ]]; then
	server_args+=(--flink-conf-dir "$MUON_FLINK_CONF_DIR")
fi

started=$SECONDS
# Beam 2.62 binds the job and artifact services on every interface whatever
# --job-host says: loopback.c binds them to 127.0.0.1.
loopback=$(flink_loopback_lib)
jvm_detach "$run/jobserver.pid" "$run/logs/jobserver.out" env LD_PRELOAD="$loopback" \
	"$java_bin" "${heap_opts[@]}" "${jvm_opts[@]}" "${extra_opts[@]}" \
	-cp "$flink_libs/*" "$flink_driver" "${server_args[@]}"

ready=false
fail_start() {
	jvm_fail_start flink "$run" "$run/jobserver.pid" flink_server_pids "$1" "$run/logs/jobserver.out" "$log"
}
trap '$ready || fail_start "start.sh was interrupted"' INT TERM

# Ready: JobServerDriver has logged "Job server now running", which it does
# after the artifact, expansion and job services all listen, and the job port
# accepts connections.
server_ready() { grep -q 'Job server now running' "$log" 2>/dev/null && jvm_port_open "$port"; }
server_broken() {
	if grep -q 'Exception during job server creation' "$log" 2>/dev/null; then
		echo "the job server could not start its services"
	fi
}
jvm_wait_ready "$timeout_s" "$run/jobserver.pid" "the job server" server_ready server_broken \
	"the job server was not ready on 127.0.0.1:$port within ${timeout_s} s (MUON_FLINK_START_TIMEOUT)"
ready=true
trap - INT TERM

echo "flink: Beam $beam_version Flink $flink_version job server (--flink-master $master) ready on 127.0.0.1:$port in $((SECONDS - started)) s (pid $(cat "$run/jobserver.pid"), logs in $run/logs)" >&2
echo "FLINK_ENDPOINT=127.0.0.1:$port"
