#!/usr/bin/env bash
# Makes third_party/beam/sdks, the Beam Go SDK module that go.mod's replace
# directive points at: the released module from the Go module proxy (same
# version as go.mod requires) with the patches beside this script applied.
# Run by make before any go command; does nothing when the copy is current.
#
# prism-local.patch: the in-process runner (prism) binds its job service and
# its worker endpoints to 127.0.0.1 and accepts connections only from this
# process (package util/localonly), so nobody who reaches an edge device can
# submit work to a running muon. Upstream listens on every interface.
#
# bundle-failure.patch: prism no longer commits a bundle as succeeded when a
# progress or split request to the worker fails (as it does when the bundle
# has just failed): it waits for the bundle's own response. Upstream could
# report a job whose write failed as DONE, and drop an SDF's residuals.
#
# register-bundle.patch: register.DoFnNxM no longer instantiates a typed
# caller for every signature StartBundle and FinishBundle could have; Beam
# calls those once per bundle through reflection. Upstream this was most of
# muon's machine code, compile time and binary size.
#
# loopback-tempfile.patch: a LOOPBACK submission (every edge job) removes the
# empty placeholder file it stages; upstream left one in $TMPDIR per job.
#
# side-input-pages.patch: prism sends an iterable or multimap side input in
# pages of about 4 MB with continuation tokens, as the Fn API allows, instead
# of joining it into one message: a train job whose rows (a side input of its
# training stage) are 500 MB no longer holds two more copies of them.
#
# no-google-cloud.patch: the worker harness no longer links Google Cloud
# Profiler and the GCS filesystem (for heap dumps to Cloud Storage), and with
# them cloud.google.com/go/storage and gRPC's xDS: a smaller binary and a
# smaller resident floor for every muon process.
#
# no-docker.patch: prism no longer starts DOCKER environments (muon's edge
# jobs run LOOPBACK workers; Flink runs DOCKER ones), so the Docker client,
# OpenTelemetry and some 60 packages are no longer linked into every muon
# binary, nor initialised when any muon command starts.
#
# timer-only-stage.patch: prism waits for a bundle's timers before it ends
# the bundle when its stage has timers but no data outputs. Upstream ended
# such a bundle on its response alone and dropped timers that arrived
# after it, so a DoFn with no outputs could lose the timer it had just set:
# kafkaio.CommitPositions then committed nothing more for the whole run.
#
# finalize-first.patch: prism finalizes a bundle before it hands the
# bundle's outputs downstream, so that a stage that sees them also sees
# what the finalization did: an unbounded Kafka read notes there how far it
# has read, and kafkaio.CommitPositions arms its commit from those notes.
# Prism keeps its data in memory, so persisting first made nothing more
# durable.
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's#^\s*github.com/apache/beam/sdks/v2 \(v[^ ]*\).*#\1#p' ../../go.mod | head -1)
[ -n "$version" ] || { echo "prepare.sh: no github.com/apache/beam/sdks/v2 version in go.mod" >&2; exit 1; }
stamp="$version $(cat ./*.patch prepare.sh | sha256sum | cut -c1-16)"
if [ -f sdks/.stamp ] && [ "$(cat sdks/.stamp)" = "$stamp" ]; then
	touch sdks/.stamp
	exit 0
fi
# The checksum database has no entry for the Beam SDK (see the README's
# versions table), so the module's hash is pinned here and checked instead.
want_sum="h1:fGTRZ2SVWD2UqHHldcPlrCd94MbSnN1xK0Sg1zxRuMs="
[ "$version" = v2.62.0 ] || { echo "prepare.sh: go.mod wants Beam $version; pin its h1: hash here (go mod download -json) and check the patches still apply" >&2; exit 1; }
info=$(cd / && env -u GOFLAGS GO111MODULE=on GONOSUMDB=github.com/apache/beam go mod download -json "github.com/apache/beam/sdks/v2@$version")
dir=$(sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p' <<<"$info")
sum=$(sed -n 's/^\s*"Sum": "\(.*\)",$/\1/p' <<<"$info")
[ -d "$dir" ] || { echo "prepare.sh: go mod download gave no directory for the Beam SDK $version: $info" >&2; exit 1; }
[ "$sum" = "$want_sum" ] || { echo "prepare.sh: the Beam SDK $version downloaded has hash $sum, want $want_sum" >&2; exit 1; }
rm -rf sdks.tmp
mkdir sdks.tmp
cp -R "$dir/go.mod" "$dir/go.sum" "$dir/LICENSE" "$dir/go" sdks.tmp/
chmod -R u+w sdks.tmp
for p in ./*.patch; do
	patch -s -p1 -d sdks.tmp <"$p"
done
echo "$stamp" >sdks.tmp/.stamp
rm -rf sdks
mv sdks.tmp sdks
echo "third_party/beam: Beam Go SDK $version with $(ls ./*.patch | wc -l) patch(es) in third_party/beam/sdks" >&2
