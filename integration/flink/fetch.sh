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

# The stamp names the pom (by hash) and versions the jars came from, then the jars.
key="$(sha256sum <"$flink_pom" | cut -d' ' -f1) beam-$beam_version flink-$flink_version"
jvm_fetch flink "$flink_home" "$flink_pom" "$key" "beam-runners-flink-$flink_version-$beam_version.jar" \
	"Beam $beam_version's Flink $flink_version runner (~150 MB the first time)"
