# shellcheck shell=bash disable=SC2034 # the variables are for the sourcing scripts
# Settings and small helpers shared by fetch.sh, start.sh and stop.sh.
# Sourced, never run. Every path a script uses is decided here, so the three
# scripts always agree on where the jars and a job server's run dir are.

flink_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../jvm.sh
source "$flink_dir/../jvm.sh"
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
	jvm_pids "$flink_driver" "--artifacts-dir $1/artifacts"
}

# What Flink's own config.yaml (env.java.opts.all) opens on Java 11+, for
# Kryo and Flink's reflection on JDK classes (less the jdk.compiler exports,
# which only Flink SQL's code generation needs): the job server's and the
# cluster's JVMs take them.
flink_jvm_opens=(
	--add-exports=java.base/sun.net.util=ALL-UNNAMED
	--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
	--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
	--add-opens=java.base/java.lang=ALL-UNNAMED
	--add-opens=java.base/java.lang.reflect=ALL-UNNAMED
	--add-opens=java.base/java.net=ALL-UNNAMED
	--add-opens=java.base/java.io=ALL-UNNAMED
	--add-opens=java.base/java.nio=ALL-UNNAMED
	--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
	--add-opens=java.base/java.text=ALL-UNNAMED
	--add-opens=java.base/java.time=ALL-UNNAMED
	--add-opens=java.base/java.util=ALL-UNNAMED
	--add-opens=java.base/java.util.concurrent=ALL-UNNAMED
	--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
	--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)

# flink_loopback_lib: prints the path of the LD_PRELOAD library built from
# loopback.c (in the muon cache, rebuilt when the source
# changes) that makes a JVM's binds to the wildcard address bind to
# loopback. Needs a C compiler (cc, gcc from Debian's packages).
flink_loopback_lib() {
	local src cache sum lib cc
	src=$flink_dir/loopback.c
	cache=$muon_cache
	sum=$(sha256sum "$src" | cut -c1-16)
	lib=$cache/loopback-$sum.so
	if [[ ! -f $lib ]]; then
		cc=${CC:-cc}
		if ! command -v "$cc" >/dev/null; then
			echo "flink: no C compiler ($cc) to build $src, which keeps the job server on 127.0.0.1: install gcc (apt-get install gcc) or set CC" >&2
			return 1
		fi
		mkdir -p "$cache"
		"$cc" -O2 -Wall -Werror -shared -fPIC -o "$lib.tmp" "$src" -ldl >&2 && mv "$lib.tmp" "$lib"
	fi
	echo "$lib"
}
