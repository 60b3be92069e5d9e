#!/usr/bin/env bash
# stop.sh [PORT] — stop the job server start.sh PORT started (SIGTERM, then
# SIGKILL after MUON_FLINK_STOP_TIMEOUT seconds, default 20) and remove its
# run dir ${MUON_CACHE:-$HOME/.cache/muon}/flink-run-PORT. Safe when nothing
# runs. PORT defaults to MUON_FLINK_PORT, else 18099.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

port=${1:-${MUON_FLINK_PORT:-18099}}
flink_check_port "$port"
run=$(flink_run_dir "$port")
timeout_s=${MUON_FLINK_STOP_TIMEOUT:-20}

# Only processes whose command line names this run dir's artifacts dir are
# signalled, so a pid file naming a reused pid cannot kill a stranger.
mapfile -t pids < <(flink_server_pids "$run")

jvm_stop flink "the job server on port $port" "$timeout_s" "${pids[@]}"

if [[ -d $run && $run == */flink-run-"$port" ]]; then
	# Keep the last run's job server log beside the run folder, for
	# diagnosing a failed job after the server is gone.
	if [[ -f $run/logs/jobserver.log ]]; then
		cp "$run/logs/jobserver.log" "$run.last.log" || true
	fi
	rm -rf "$run"
fi
