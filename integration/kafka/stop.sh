#!/usr/bin/env bash
# stop.sh [PORT] — stop the broker start.sh PORT started (SIGTERM, then SIGKILL
# after MUON_KAFKA_STOP_TIMEOUT seconds, default 20) and remove its run dir
# ${MUON_CACHE:-$HOME/.cache/muon}/kafka-run-PORT. Safe when nothing runs.
# PORT defaults to MUON_KAFKA_PORT, else 19092.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

port=${1:-${MUON_KAFKA_PORT:-19092}}
kafka_check_port "$port"
run=$(kafka_run_dir "$port")
timeout_s=${MUON_KAFKA_STOP_TIMEOUT:-20}

# Only processes whose command line names this run dir's server.properties
# are signalled, so a pid file naming a reused pid cannot kill a stranger.
mapfile -t pids < <(kafka_broker_pids "$run")

jvm_stop kafka "the broker on port $port" "$timeout_s" "${pids[@]}"

if [[ -d $run && $run == */kafka-run-"$port" ]]; then
	rm -rf "$run"
fi
