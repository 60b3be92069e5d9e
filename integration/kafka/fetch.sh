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

# The stamp names the pom (by hash) and version the jars came from, then the jars.
key="$(sha256sum <"$kafka_pom" | cut -d' ' -f1) $kafka_version"
jvm_fetch kafka "$kafka_home" "$kafka_pom" "$key" 'kafka_2.13-*.jar' \
	"Apache Kafka $kafka_version (org.apache.kafka:kafka_2.13)" -Dkafka.version="$kafka_version"
