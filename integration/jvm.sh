# shellcheck shell=bash
# Helpers shared by the scripts that fetch, start and stop the JVM services
# of the integration tests (kafka/, flink/). Sourced, never run.

# jvm_pids SUBSTRING...: pids of processes whose command line (arguments
# joined by spaces) contains every SUBSTRING. Matching on a run dir in the
# command line, not on a process name, means a service of another port or
# another user's is never touched.
jvm_pids() {
	local f pid line want ok
	local -a args
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		# A builtin read, no fork per process: this runs in wait loops.
		mapfile -d '' args 2>/dev/null <"$f" || continue
		line=" ${args[*]} "
		ok=1
		for want in "$@"; do
			[[ $line == *" $want "* ]] || ok=0
		done
		if ((ok)); then
			echo "$pid"
		fi
	done
}

# jvm_any_alive PID...: true if any PID is still running (a zombie, dead but
# not yet reaped by whoever inherited it, does not count).
jvm_any_alive() {
	local pid state
	for pid in "$@"; do
		state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null) || continue
		if [[ -n $state && $state != Z && $state != X ]]; then
			return 0
		fi
	done
	return 1
}

# jvm_port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
jvm_port_open() {
	# shellcheck disable=SC2016 # $0 is expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# jvm_stop LABEL WHAT TIMEOUT PID...: SIGTERM to the PIDs, SIGKILL after
# TIMEOUT seconds; LABEL and WHAT name them in messages ("kafka" "the broker
# on port 19092").
jvm_stop() {
	local label=$1 what=$2 timeout_s=$3 deadline
	shift 3
	(($# > 0)) || return 0
	kill -TERM "$@" 2>/dev/null || true
	deadline=$((SECONDS + timeout_s))
	while jvm_any_alive "$@"; do
		if ((SECONDS >= deadline)); then
			echo "$label: $what still running after ${timeout_s} s; killing it" >&2
			kill -KILL "$@" 2>/dev/null || true
			sleep 0.5
			break
		fi
		sleep 0.2
	done
	echo "$label: stopped $what" >&2
}

# jvm_fetch LABEL HOME POM KEY MUST_JAR DESC [MAVEN_ARG...]: copies the
# runtime dependencies of POM into HOME/libs with the ordinary Maven client,
# unless HOME/libs.complete already names KEY and jars that are all there.
# The stamp is written last, so a half-finished fetch is never taken for a
# complete one; a lock makes a second fetch wait and then find the cache
# complete. MUST_JAR (a glob) must be among the jars. Prints one summary line.
jvm_fetch() {
	local label=$1 home=$2 pom=$3 key=$4 must=$5 desc=$6
	shift 6
	local libs=$home/libs stamp=$home/libs.complete started tmp
	if jvm_cache_complete "$stamp" "$key" "$libs"; then
		jvm_fetch_summary "$label" "$libs" cached
		return 0
	fi
	mkdir -p "$home"
	exec 9>"$home/fetch.lock"
	if command -v flock >/dev/null; then
		flock 9
	fi
	if jvm_cache_complete "$stamp" "$key" "$libs"; then
		jvm_fetch_summary "$label" "$libs" cached
		return 0
	fi
	started=$SECONDS
	tmp=$(mktemp -d "$home/libs.tmp.XXXXXX")
	# shellcheck disable=SC2064 # tmp is expanded now, on purpose
	trap "rm -rf '$tmp'" EXIT
	echo "$label: resolving $desc and its runtime dependencies with Maven..." >&2
	# Maven 3.8 prints bare colour resets even in batch mode; the sed drops them.
	if ! "${MVN:-mvn}" -B -q -f "$pom" "$@" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
		sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
		echo "$label: Maven could not resolve $desc (see its errors above)." >&2
		echo "$label: check network access to the Maven repository and ~/.m2/settings.xml." >&2
		return 1
	fi
	if ! compgen -G "$tmp/$must" >/dev/null; then
		echo "$label: Maven succeeded but no $must was copied into $tmp" >&2
		return 1
	fi
	rm -rf "$libs"
	mv "$tmp" "$libs"
	trap - EXIT
	{
		echo "$key"
		(cd "$libs" && find . -maxdepth 1 -name '*.jar' -printf '%f\n' | sort)
	} >"$stamp.tmp"
	mv "$stamp.tmp" "$stamp"
	jvm_fetch_summary "$label" "$libs" "fetched in $((SECONDS - started)) s"
}

# jvm_cache_complete STAMP KEY LIBS: the stamp names KEY and every jar it
# lists is in LIBS.
jvm_cache_complete() {
	local stamp=$1 key=$2 libs=$3 first jar
	[[ -f $stamp ]] || return 1
	{
		IFS= read -r first || return 1
		[[ $first == "$key" ]] || return 1
		while IFS= read -r jar; do
			[[ -f $libs/$jar ]] || return 1
		done
	} <"$stamp"
}

jvm_fetch_summary() {
	local n size
	n=$(find "$2" -maxdepth 1 -name '*.jar' | wc -l)
	size=$(du -sh "$2" | cut -f1)
	echo "$1: $n jars, $size in $2 ($3)"
}

# jvm_detach PIDFILE OUT CMD...: runs CMD in the background in its own
# session (setsid), detached from this script's stdin/stdout/stderr (OUT
# takes both), so that it outlives the script, a Ctrl-C in the terminal that
# ran it, and a caller reading the script's output through a pipe. The inner
# bash writes its own pid, closes every inherited descriptor above 2 (a
# caller's pipe held open by the service would make that caller wait for
# it), then becomes CMD: the pid file is CMD's.
jvm_detach() {
	local pidfile=$1 out=$2
	shift 2
	local -a setsid_cmd=()
	if command -v setsid >/dev/null; then
		setsid_cmd=(setsid)
	fi
	# shellcheck disable=SC2016 # $$, $0 and $@ are the inner bash's
	"${setsid_cmd[@]}" bash -c '
	echo $$ >"$0"
	for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
	done
	exec "$@"' "$pidfile" "$@" </dev/null >"$out" 2>&1 &
}

# jvm_fail_start LABEL RUN PIDFILE PIDS_FN MESSAGE LOG...: says why a start
# failed, shows the last lines of each LOG, kills every process PIDS_FN RUN
# lists, and exits 1, keeping the run dir for inspection.
jvm_fail_start() {
	local label=$1 run=$2 pidfile=$3 pids_fn=$4 msg=$5 f pid
	shift 5
	echo "$label: $msg" >&2
	for f in "$@"; do
		if [[ -s $f ]]; then
			echo "---- last lines of $f" >&2
			tail -n 40 "$f" >&2
		fi
	done
	for pid in $("$pids_fn" "$run"); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -f "$pidfile"
	echo "$label: logs kept in $run/logs" >&2
	exit 1
}

# jvm_wait_ready TIMEOUT_S PIDFILE WHAT READY_FN BROKEN_FN TIMEOUT_MSG:
# polls every 0.5 s until READY_FN succeeds. It calls the sourcing script's
# fail_start with the reason when BROKEN_FN prints one, when the process in
# PIDFILE (WHAT, e.g. "the broker") exits, or after TIMEOUT_S seconds.
jvm_wait_ready() {
	local timeout_s=$1 pidfile=$2 what=$3 ready_fn=$4 broken_fn=$5 timeout_msg=$6
	local deadline=$((SECONDS + timeout_s)) pid why
	while :; do
		if "$ready_fn"; then
			return 0
		fi
		why=$("$broken_fn")
		if [[ -n $why ]]; then
			fail_start "$why"
		fi
		pid=$(cat "$pidfile" 2>/dev/null || true)
		if [[ -n $pid ]] && ! jvm_any_alive "$pid"; then
			fail_start "$what exited during startup"
		fi
		if ((SECONDS >= deadline)); then
			fail_start "$timeout_msg"
		fi
		sleep 0.5
	done
}
