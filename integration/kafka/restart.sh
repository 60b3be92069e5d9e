#!/usr/bin/env bash
# restart.sh PORT [kill|term] [PAUSE] — stop the broker start.sh PORT started
# (SIGKILL with kill, the default, as a crash would; SIGTERM with term, as
# an operator would), wait PAUSE seconds (default 2), and start it again on
# the same data, waiting until it answers. For fault tests (make chaos):
# what the broker acknowledged before must still be there.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

port=${1:?usage: restart.sh PORT [kill|term] [PAUSE]}
how=${2:-kill}
pause=${3:-2}
kafka_check_port "$port"
run=$(kafka_run_dir "$port")
[[ -f $run/server.properties ]] || { echo "kafka: no broker was started on port $port (no $run/server.properties): use start.sh first" >&2; exit 1; }

mapfile -t pids < <(kafka_broker_pids "$run")
case $how in
kill)
	kill -KILL "${pids[@]}" 2>/dev/null || true
	while jvm_any_alive "${pids[@]}"; do sleep 0.1; done
	echo "kafka: killed the broker on port $port (SIGKILL)" >&2
	;;
term) jvm_stop kafka "the broker on port $port" "${MUON_KAFKA_STOP_TIMEOUT:-20}" "${pids[@]}" ;;
*) echo "kafka: restart.sh: unknown way to stop $how: use kill or term" >&2; exit 2 ;;
esac
rm -f "$run/kafka.pid"
sleep "$pause"
started=$SECONDS
kafka_launch "$port" "$run" "${MUON_KAFKA_START_TIMEOUT:-60}"
echo "kafka: restarted on 127.0.0.1:$port in $((SECONDS - started)) s (pid $(cat "$run/kafka.pid"))" >&2
