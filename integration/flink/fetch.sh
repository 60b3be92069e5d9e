#!/usr/bin/env bash
# fetch.sh — put Beam's Flink job server (the Flink runner
# beam-runners-flink-<flink>, whose FlinkJobServerDriver is the job server,
# with Flink and every other runtime dependency) and a log4j2 backend into
#   ${MUON_CACHE:-$HOME/.cache/muon}/flink-<flink>-beam-<beam>/libs
# with the ordinary Maven client, reading the jar list from pom.xml beside this
# script. Idempotent: when the cache is complete it only checks and returns.
# Prints one summary line on stdout.
#
# Env: MUON_CACHE (cache root), MVN (the Maven command, default mvn;
# MAVEN_OPTS and ~/.m2/settings.xml apply as usual).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

# The job server and the Go SDK must be the same Beam release.
gomod=$flink_dir/../../go.mod
if [[ -f $gomod ]]; then
	go_beam=$(sed -n 's:^[[:space:]]*github.com/apache/beam/sdks/v2 v\([^[:space:]]*\).*:\1:p' "$gomod" | head -n 1)
	if [[ -n $go_beam && $go_beam != "$beam_version" ]]; then
		echo "flink: warning: go.mod has the Beam Go SDK $go_beam but pom.xml pins the job server to Beam $beam_version; they must match" >&2
	fi
fi

stamp=$flink_home/libs.complete
# The stamp names the pom (by hash) and versions the jars came from, then the jars.
key="$(sha256sum <"$flink_pom" | cut -d' ' -f1) beam-$beam_version flink-$flink_version"
runner_jar=beam-runners-flink-$flink_version-$beam_version.jar

# cache_complete: the stamp matches this pom, and every jar it lists is there.
cache_complete() {
	[[ -f $stamp ]] || return 1
	local first jar
	{
		IFS= read -r first || return 1
		[[ $first == "$key" ]] || return 1
		while IFS= read -r jar; do
			[[ -f $flink_libs/$jar ]] || return 1
		done
	} <"$stamp"
}

summary() {
	local n size
	n=$(find "$flink_libs" -maxdepth 1 -name '*.jar' | wc -l)
	size=$(du -sh "$flink_libs" | cut -f1)
	echo "flink: Beam $beam_version Flink $flink_version job server: $n jars, $size in $flink_libs ($1)"
}

if cache_complete; then
	summary cached
	exit 0
fi

mkdir -p "$flink_home"
# Two fetches at once must not both write libs/: the second waits here and
# then finds the cache complete.
exec 9>"$flink_home/fetch.lock"
if command -v flock >/dev/null; then
	flock 9
fi
if cache_complete; then
	summary cached
	exit 0
fi

started=$SECONDS
tmp=$(mktemp -d "$flink_home/libs.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "flink: resolving org.apache.beam:beam-runners-flink-$flink_version:$beam_version and its runtime dependencies with Maven (~150 MB the first time)..." >&2
# Maven 3.8 prints bare colour resets even in batch mode; the sed drops them.
if ! "${MVN:-mvn}" -B -q -f "$flink_pom" \
	dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
	sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
	echo "flink: Maven could not resolve the Beam $beam_version Flink $flink_version runner (see its errors above)." >&2
	echo "flink: check network access to the Maven repository, or your ~/.m2/settings.xml." >&2
	exit 1
fi
if [[ ! -f $tmp/$runner_jar ]]; then
	echo "flink: Maven succeeded but $runner_jar was not copied into $tmp" >&2
	exit 1
fi

rm -rf "$flink_libs"
mv "$tmp" "$flink_libs"
trap - EXIT
{
	echo "$key"
	(cd "$flink_libs" && find . -maxdepth 1 -name '*.jar' -printf '%f\n' | sort)
} >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"

summary "fetched in $((SECONDS - started)) s"
