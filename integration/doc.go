// Package integration holds muon's integration tests (build tag
// integration). They run against the real services the scripts in
// integration/kafka (Apache Kafka 4.x, KRaft) start, and against the
// embedded broker. `make test` starts and stops the services.
//
//	export "$(integration/kafka/start.sh)"   # KAFKA_BROKERS=127.0.0.1:19092
//	go test -tags integration ./integration/
//	integration/kafka/stop.sh
//
// Without KAFKA_BROKERS the Apache Kafka half is skipped, unless
// MUON_REQUIRE_KAFKA=1 (as in CI), which makes it fail instead.
package integration
