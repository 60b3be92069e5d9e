#!/usr/bin/env bash
# fetch.sh — put Apache Kafka (broker, KRaft controller, storage tool, a log4j2
# backend) and all its runtime dependencies into
#   ${MUON_CACHE:-$HOME/.cache/muon}/kafka-<version>/libs
# with the ordinary Maven client, reading the jar list from pom.xml beside this
# script. Idempotent: when the cache is complete it only checks and returns.
# Prints one summary line on stdout.
#
# Env: MUON_CACHE (cache root), MUON_KAFKA_VERSION (overrides pom.xml's
# kafka.version), MVN (the Maven command, default mvn; MAVEN_OPTS and
# ~/.m2/settings.xml apply as usual).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

stamp=$kafka_home/libs.complete
# The stamp names the pom (by hash) and version the jars came from, then the jars.
key="$(sha256sum <"$kafka_pom" | cut -d' ' -f1) $kafka_version"

# cache_complete: the stamp matches this pom and version, and every jar it lists is there.
cache_complete() {
	[[ -f $stamp ]] || return 1
	local first jar
	{
		IFS= read -r first || return 1
		[[ $first == "$key" ]] || return 1
		while IFS= read -r jar; do
			[[ -f $kafka_libs/$jar ]] || return 1
		done
	} <"$stamp"
}

summary() {
	local n size
	n=$(find "$kafka_libs" -maxdepth 1 -name '*.jar' | wc -l)
	size=$(du -sh "$kafka_libs" | cut -f1)
	echo "kafka $kafka_version: $n jars, $size in $kafka_libs ($1)"
}

if cache_complete; then
	summary cached
	exit 0
fi

mkdir -p "$kafka_home"
# Two fetches at once (make test and make bench in parallel) must not both
# write libs/: the second waits here and then finds the cache complete.
exec 9>"$kafka_home/fetch.lock"
if command -v flock >/dev/null; then
	flock 9
fi
if cache_complete; then
	summary cached
	exit 0
fi

started=$SECONDS
tmp=$(mktemp -d "$kafka_home/libs.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "kafka: resolving org.apache.kafka:kafka_2.13:$kafka_version and its runtime dependencies with Maven..." >&2
# Maven 3.8 prints bare colour resets even in batch mode; the sed drops them.
if ! "${MVN:-mvn}" -B -q -f "$kafka_pom" -Dkafka.version="$kafka_version" \
	dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
	sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
	echo "kafka: Maven could not resolve Kafka $kafka_version (see its errors above)." >&2
	echo "kafka: check network access to the Maven repository, or set MUON_KAFKA_VERSION to a version that exists." >&2
	exit 1
fi
if ! compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null; then
	echo "kafka: Maven succeeded but no kafka_2.13 jar was copied into $tmp" >&2
	exit 1
fi

rm -rf "$kafka_libs"
mv "$tmp" "$kafka_libs"
trap - EXIT
{
	echo "$key"
	(cd "$kafka_libs" && find . -maxdepth 1 -name '*.jar' -printf '%f\n' | sort)
} >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"

summary "fetched in $((SECONDS - started)) s"
