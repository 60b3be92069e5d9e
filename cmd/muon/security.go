package main

import (
	"flag"
	"fmt"

	"github.com/muonml/muon/io/kafkaio"
)

// kafkaSecurityFlags adds the flags that secure a command's Kafka
// connections, as kafka.tls and kafka.sasl do in a spec, and returns what
// reads them once the flags are parsed. Passwords come from a file or an
// environment variable, never from the command line (which other users of
// the machine can read).
func kafkaSecurityFlags(fs *flag.FlagSet) func() (kafkaio.Security, error) {
	useTLS := fs.Bool("tls", false, "connect with TLS, trusting the system's roots (implied by the other --tls-* flags)")
	ca := fs.String("tls-ca", "", "PEM `file` of the authorities that sign the brokers' certificates (default: the system's roots)")
	cert := fs.String("tls-cert", "", "client certificate PEM `file`, for brokers that require one (with --tls-key)")
	key := fs.String("tls-key", "", "client key PEM `file` (with --tls-cert)")
	server := fs.String("tls-server-name", "", "`name` the brokers' certificates must carry (default: each broker's host)")
	mech := fs.String("sasl-mechanism", "", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)")
	user := fs.String("sasl-username", "", "SASL `user` name")
	pwFile := fs.String("sasl-password-file", "", "`file` holding the SASL password")
	pwEnv := fs.String("sasl-password-env", "", "environment `variable` holding the SASL password")
	return func() (kafkaio.Security, error) {
		var s kafkaio.Security
		if *useTLS || *ca != "" || *cert != "" || *key != "" || *server != "" {
			s.TLS = &kafkaio.TLS{CAFile: *ca, CertFile: *cert, KeyFile: *key, ServerName: *server}
		}
		if *mech != "" || *user != "" || *pwFile != "" || *pwEnv != "" {
			s.SASL = &kafkaio.SASL{Mechanism: *mech, Username: *user, PasswordFile: *pwFile, PasswordEnv: *pwEnv}
		}
		if err := s.Check(); err != nil {
			return s, fmt.Errorf("%w: %v (flags --tls-* and --sasl-*)", errUsage, err)
		}
		// Read what the flags name now, so a wrong path fails before any work.
		if _, _, err := s.Load(); err != nil {
			return s, err
		}
		return s, nil
	}
}
