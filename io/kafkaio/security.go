package kafkaio

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Security is how muon's connections to Kafka are secured: TLS, SASL, both
// (Kafka's SASL_SSL) or neither (PLAINTEXT, the zero value). It names files
// and environment variables, never secrets: it travels inside pipelines to
// every worker, which reads them when a read or an admin call connects (a
// rotated certificate or password is picked up then) and the first time a
// process writes. On a cluster the files and variables must exist where the
// workers run.
type Security struct {
	TLS  *TLS  `json:",omitempty"`
	SASL *SASL `json:",omitempty"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	// CAFile is a PEM file of the certificate authorities that sign the
	// brokers' certificates. Default: the system's roots.
	CAFile string `json:",omitempty"`
	// CertFile and KeyFile are the client's certificate chain and private
	// key, PEM, for brokers that ask for client certificates. Both or
	// neither.
	CertFile string `json:",omitempty"`
	KeyFile  string `json:",omitempty"`
	// ServerName is the name the brokers' certificates must carry. Default:
	// the host of the address connected to.
	ServerName string `json:",omitempty"`
}

// SASL mechanisms muon speaks.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL configures SASL authentication. Over a connection without TLS the
// password (PLAIN) or its proof (SCRAM) crosses the network in the clear.
type SASL struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	Mechanism string
	// Username to authenticate as.
	Username string
	// PasswordFile is a file whose content, trailing newline removed, is the
	// password. Exactly one of PasswordFile and PasswordEnv.
	PasswordFile string `json:",omitempty"`
	// PasswordEnv is the environment variable that holds the password.
	PasswordEnv string `json:",omitempty"`
}

// ErrSecurity means a TLS or SASL setting is wrong, or what it names
// cannot be read.
var ErrSecurity = errors.New("kafka security")

// Plaintext reports whether s secures nothing.
func (s Security) Plaintext() bool { return s.TLS == nil && s.SASL == nil }

// String describes s without secrets: "SASL_SSL (SCRAM-SHA-512 as alice)".
func (s Security) String() string {
	switch {
	case s.TLS != nil && s.SASL != nil:
		return fmt.Sprintf("SASL_SSL (%s as %s)", s.SASL.Mechanism, s.SASL.Username)
	case s.SASL != nil:
		return fmt.Sprintf("SASL_PLAINTEXT (%s as %s)", s.SASL.Mechanism, s.SASL.Username)
	case s.TLS != nil:
		return "SSL"
	}
	return "PLAINTEXT"
}

// Check validates s without reading what it names.
func (s Security) Check() error {
	if t := s.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%w: tls: a client certificate needs both cert_file and key_file", ErrSecurity)
	}
	if a := s.SASL; a != nil {
		switch a.Mechanism {
		case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		default:
			return fmt.Errorf("%w: sasl: mechanism %q: want %s, %s or %s", ErrSecurity, a.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
		if a.Username == "" {
			return fmt.Errorf("%w: sasl: no username", ErrSecurity)
		}
		if (a.PasswordFile == "") == (a.PasswordEnv == "") {
			return fmt.Errorf("%w: sasl: name the password's file (password_file) or its environment variable (password_env), one of them", ErrSecurity)
		}
	}
	return nil
}

// Load reads what s names: the TLS configuration (nil without TLS) and the
// SASL mechanism (nil without SASL). Errors name the file or variable.
func (s Security) Load() (*tls.Config, sasl.Mechanism, error) {
	if err := s.Check(); err != nil {
		return nil, nil, err
	}
	var tc *tls.Config
	if t := s.TLS; t != nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: tls: reading the CA file: %v", ErrSecurity, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("%w: tls: the CA file %s holds no PEM certificate", ErrSecurity, t.CAFile)
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: tls: the client certificate %s and key %s: %v", ErrSecurity, t.CertFile, t.KeyFile, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
	}
	var m sasl.Mechanism
	if a := s.SASL; a != nil {
		pw, err := a.password()
		if err != nil {
			return nil, nil, err
		}
		switch a.Mechanism {
		case SASLPlain:
			m = plain.Mechanism{Username: a.Username, Password: pw}
		case SASLScramSHA256, SASLScramSHA512:
			algo := scram.SHA256
			if a.Mechanism == SASLScramSHA512 {
				algo = scram.SHA512
			}
			if m, err = scram.Mechanism(algo, a.Username, pw); err != nil {
				return nil, nil, fmt.Errorf("%w: sasl: %s for %s: %v", ErrSecurity, a.Mechanism, a.Username, err)
			}
		}
	}
	return tc, m, nil
}

func (a *SASL) password() (string, error) {
	if a.PasswordEnv != "" {
		pw, ok := os.LookupEnv(a.PasswordEnv)
		if !ok || pw == "" {
			return "", fmt.Errorf("%w: sasl: the environment variable %s that should hold the password is unset or empty", ErrSecurity, a.PasswordEnv)
		}
		return pw, nil
	}
	b, err := os.ReadFile(a.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("%w: sasl: reading the password file: %v", ErrSecurity, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%w: sasl: the password file %s is empty", ErrSecurity, a.PasswordFile)
	}
	return pw, nil
}

// Cluster is where muon reaches Kafka and how.
type Cluster struct {
	// Brokers are bootstrap addresses, host:port.
	Brokers  []string
	Security Security
}

// Plain is a cluster reached in plaintext.
func Plain(brokers ...string) Cluster { return Cluster{Brokers: brokers} }

// link is a way to a cluster's brokers: their addresses and a dialer with
// the cluster's TLS and SASL, loaded once.
type link struct {
	brokers []string
	sec     Security
	d       *kafka.Dialer
}

// link loads c's security into a dialer that connects within timeout.
func (c Cluster) link(timeout time.Duration) (*link, error) {
	tc, m, err := c.Security.Load()
	if err != nil {
		return nil, err
	}
	return &link{brokers: c.Brokers, sec: c.Security, d: &kafka.Dialer{Timeout: timeout, DualStack: true, TLS: tc, SASLMechanism: m}}, nil
}

// transport returns a kafka-go transport (for Client) with the link's TLS
// and SASL.
func (l *link) transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: l.d.Timeout, TLS: l.d.TLS, SASL: l.d.SASLMechanism}
}

// writerTransports holds one transport per security configuration for the
// writers: kafka-go's Writer.Close leaves a transport it was given open, so
// writers share them, as plaintext writers share kafka.DefaultTransport.
var writerTransports sync.Map // JSON of a Security → *kafka.Transport

// writerTransport returns the transport writers with s use: nil (kafka-go's
// default) for plaintext. It loads what s names the first time this
// process writes with s.
func (s Security) writerTransport() (kafka.RoundTripper, error) {
	if s.Plaintext() {
		return nil, nil
	}
	key, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if tr, ok := writerTransports.Load(string(key)); ok {
		return tr.(*kafka.Transport), nil
	}
	l, err := Cluster{Security: s}.link(DefaultDialTimeout)
	if err != nil {
		return nil, err
	}
	tr, _ := writerTransports.LoadOrStore(string(key), l.transport())
	return tr.(*kafka.Transport), nil
}

// securityHint adds to a connection error what the security settings
// probably have wrong: a TLS listener reached in plaintext closes the
// connection without an answer, and a plaintext one reached with TLS
// answers with something that is not a TLS handshake.
func (s Security) securityHint(err error) error {
	if err == nil {
		return nil
	}
	var (
		rec   tls.RecordHeaderError
		unkCA x509.UnknownAuthorityError
		host  x509.HostnameError
		inv   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &rec):
		return fmt.Errorf("%w (the broker did not answer TLS: is this a PLAINTEXT or SASL_PLAINTEXT listener? drop kafka.tls, or use the broker's TLS port)", err)
	case errors.As(err, &unkCA):
		return fmt.Errorf("%w (the broker's certificate is signed by an authority muon does not trust: set kafka.tls.ca_file to the CA that signed it)", err)
	case errors.As(err, &host):
		return fmt.Errorf("%w (the broker's certificate is for other names: connect by one of them, or set kafka.tls.server_name)", err)
	case errors.As(err, &inv):
		return fmt.Errorf("%w (the broker's certificate is not valid: expired, or not for servers)", err)
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("%w (check the username and password, and that the broker has SCRAM credentials for the mechanism)", err)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Errorf("%w (the listener does not offer this SASL mechanism: see its sasl.enabled.mechanisms)", err)
	case errors.Is(err, kafka.IllegalSASLState):
		return fmt.Errorf("%w (the listener may not use SASL: drop kafka.sasl, or use the broker's SASL port)", err)
	case s.TLS == nil && plaintextRefused(err):
		return fmt.Errorf("%w (the broker closed the connection without an answer: if this listener uses TLS (SSL or SASL_SSL), set kafka.tls)", err)
	case s.SASL == nil && plaintextRefused(err):
		return fmt.Errorf("%w (the broker closed the connection without an answer: if this listener needs SASL, set kafka.sasl)", err)
	}
	return err
}

// plaintextRefused reports whether err is a connection the broker closed
// before answering.
func plaintextRefused(err error) bool {
	msg := err.Error()
	return errors.Is(err, net.ErrClosed) || strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "broken pipe")
}
