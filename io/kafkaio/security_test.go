package kafkaio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityCheckAndLoad(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKAIO_TEST_PW", "s3cret")
	scram := func(f, env string) *SASL {
		return &SASL{Mechanism: SASLScramSHA256, Username: "alice", PasswordFile: f, PasswordEnv: env}
	}
	for _, tt := range []struct {
		name string
		s    Security
		want string // in the error; "" loads
	}{
		{"plaintext", Security{}, ""},
		{"system roots", Security{TLS: &TLS{}}, ""},
		{"password file", Security{SASL: scram(pw, "")}, ""},
		{"password env", Security{SASL: scram("", "KAFKAIO_TEST_PW")}, ""},
		{"plain", Security{SASL: &SASL{Mechanism: SASLPlain, Username: "alice", PasswordFile: pw}}, ""},
		{"unknown mechanism", Security{SASL: &SASL{Mechanism: "GSSAPI", Username: "alice", PasswordFile: pw}}, `mechanism "GSSAPI"`},
		{"no username", Security{SASL: &SASL{Mechanism: SASLPlain, PasswordFile: pw}}, "no username"},
		{"no password", Security{SASL: scram("", "")}, "password_file"},
		{"two passwords", Security{SASL: scram(pw, "KAFKAIO_TEST_PW")}, "one of them"},
		{"missing password file", Security{SASL: scram(filepath.Join(dir, "nope"), "")}, "reading the password file"},
		{"empty password file", Security{SASL: scram(empty, "")}, "is empty"},
		{"unset env", Security{SASL: scram("", "KAFKAIO_TEST_UNSET")}, "KAFKAIO_TEST_UNSET"},
		{"cert without key", Security{TLS: &TLS{CertFile: pw}}, "both cert_file and key_file"},
		{"missing CA", Security{TLS: &TLS{CAFile: filepath.Join(dir, "nope.pem")}}, "reading the CA file"},
		{"CA not PEM", Security{TLS: &TLS{CAFile: notPEM}}, "holds no PEM certificate"},
		{"bad key pair", Security{TLS: &TLS{CertFile: notPEM, KeyFile: notPEM}}, "client certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, m, err := tt.s.Load()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if (tc != nil) != (tt.s.TLS != nil) || (m != nil) != (tt.s.SASL != nil) {
					t.Errorf("TLS %v, SASL %v for %s", tc, m, tt.s)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrSecurity) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want ErrSecurity saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestSecurityString(t *testing.T) {
	a := &SASL{Mechanism: SASLScramSHA512, Username: "alice", PasswordFile: "/run/secrets/pw"}
	for _, tt := range []struct {
		s    Security
		want string
	}{
		{Security{}, "PLAINTEXT"},
		{Security{TLS: &TLS{}}, "SSL"},
		{Security{SASL: a}, "SASL_PLAINTEXT (SCRAM-SHA-512 as alice)"},
		{Security{TLS: &TLS{}, SASL: a}, "SASL_SSL (SCRAM-SHA-512 as alice)"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}

// A write or read with settings that cannot work fails when the pipeline
// is built, not on the workers.
func TestParamsCheckSecurity(t *testing.T) {
	bad := Security{SASL: &SASL{Mechanism: SASLPlain, Username: "alice"}}
	p := Params{Brokers: []string{"127.0.0.1:9"}, Topics: []string{"t"}, Security: bad}
	if err := p.validate(); !errors.Is(err, ErrSecurity) {
		t.Errorf("Params: %v, want ErrSecurity", err)
	}
	if _, err := NewWriter(WriteParams{Brokers: []string{"127.0.0.1:9"}, Security: bad}); !errors.Is(err, ErrSecurity) {
		t.Errorf("NewWriter: %v, want ErrSecurity", err)
	}
}
