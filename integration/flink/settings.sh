# shellcheck shell=bash disable=SC2034 # the variables are for the sourcing scripts
# Settings and small helpers shared by fetch.sh, start.sh and stop.sh.
# Sourced, never run. Every path a script uses is decided here, so the three
# scripts always agree on where the jars and a job server's run dir are.

flink_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
flink_pom=$flink_dir/pom.xml

# The Beam and Flink versions pinned in pom.xml. No environment override for
# Beam: it must be the Go SDK's version in go.mod (fetch.sh warns otherwise).
beam_version=$(sed -n 's:.*<beam.version>\(.*\)</beam.version>.*:\1:p' "$flink_pom")
flink_version=$(sed -n 's:.*<flink.version>\(.*\)</flink.version>.*:\1:p' "$flink_pom")
if [[ -z $beam_version || -z $flink_version ]]; then
	echo "flink: no <beam.version> or <flink.version> in $flink_pom" >&2
	exit 1
fi

muon_cache=${MUON_CACHE:-$HOME/.cache/muon}
flink_home=$muon_cache/flink-$flink_version-beam-$beam_version
flink_libs=$flink_home/libs

java_bin=${JAVA_HOME:+$JAVA_HOME/bin/}java

# The job server's main class, in beam-runners-flink-<flink.version>.
flink_driver=org.apache.beam.runners.flink.FlinkJobServerDriver

# flink_check_port PORT: exits unless PORT can be the job port (the artifact
# service takes PORT-1, the expansion service PORT-2).
flink_check_port() {
	if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 3 || $1 > 65535)); then
		echo "flink: bad port '$1': want a number from 3 to 65535 (the artifact service takes PORT-1, the expansion service PORT-2)" >&2
		exit 2
	fi
}

# flink_run_dir PORT: the job server's logs, staged artifacts, temp files and
# pid file live here.
flink_run_dir() {
	printf '%s/flink-run-%s' "$muon_cache" "$1"
}

# flink_server_pids RUN_DIR: pids of job servers started with
# --artifacts-dir RUN_DIR/artifacts. Matching on the run dir, not on a process
# name, means a job server of another port or another user's is never touched.
flink_server_pids() {
	local want="--artifacts-dir $1/artifacts" f pid line
	local -a args
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		# A builtin read, no fork per process: this runs in wait loops.
		mapfile -d '' args 2>/dev/null <"$f" || continue
		line=" ${args[*]} "
		if [[ $line == *" $flink_driver "* && $line == *" $want "* ]]; then
			echo "$pid"
		fi
	done
}

# flink_any_alive PID...: true if any PID is still running (a zombie, dead but
# not yet reaped by whoever inherited it, does not count).
flink_any_alive() {
	local pid state
	for pid in "$@"; do
		state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null) || continue
		if [[ -n $state && $state != Z && $state != X ]]; then
			return 0
		fi
	done
	return 1
}

# flink_port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
flink_port_open() {
	# shellcheck disable=SC2016 # $0 is expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}
