//go:build integration

package integration

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/transforms/infer"
)

// secureKafka is Apache Kafka whose client listener is SASL_SSL, started by
// integration/kafka/start.sh for the tests of this file, with certificates
// these tests made.
type secureKafka struct {
	addr     string
	dir      string // ca.pem, client.pem, client.key, rogue-ca.pem, password
	user     string
	password string
}

func (k *secureKafka) file(name string) string { return filepath.Join(k.dir, name) }

// security is the client side with mech, trusting ca (a file of k.dir).
func (k *secureKafka) security(mech, ca string) kafkaio.Security {
	return kafkaio.Security{
		TLS:  &kafkaio.TLS{CAFile: k.file(ca), CertFile: k.file("client.pem"), KeyFile: k.file("client.key")},
		SASL: &kafkaio.SASL{Mechanism: mech, Username: k.user, PasswordFile: k.file("password")},
	}
}

func (k *secureKafka) cluster() kafkaio.Cluster {
	return kafkaio.Cluster{Brokers: []string{k.addr}, Security: k.security(kafkaio.SASLScramSHA512, "ca.pem")}
}

// specKafka is the kafka section of a spec for k, as --set overrides.
func (k *secureKafka) specKafka(extra ...string) []string {
	return append([]string{
		"kafka.brokers=[" + k.addr + "]",
		fmt.Sprintf("kafka.tls={ca_file: %s, cert_file: %s, key_file: %s}", k.file("ca.pem"), k.file("client.pem"), k.file("client.key")),
		fmt.Sprintf("kafka.sasl={mechanism: SCRAM-SHA-512, username: %s, password_file: %s}", k.user, k.file("password")),
	}, extra...)
}

func startSecureKafka(t *testing.T) *secureKafka {
	t.Helper()
	if os.Getenv("KAFKA_BROKERS") == "" {
		if os.Getenv("MUON_REQUIRE_KAFKA") == "1" {
			t.Fatal("MUON_REQUIRE_KAFKA=1 but KAFKA_BROKERS is not set: start Apache Kafka with integration/kafka/start.sh")
		}
		t.Skip("KAFKA_BROKERS not set: Apache Kafka (and its jars) not available")
	}
	dir := t.TempDir()
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		t.Fatal(err)
	}
	k := &secureKafka{dir: dir, user: "alice", password: hex.EncodeToString(pw)}
	writeCertificates(t, dir)
	for name, content := range map[string]string{"users": k.user + " " + k.password + "\n", "password": k.password + "\n"} {
		if err := os.WriteFile(k.file(name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := freePortRun(t, 3)
	cmd := exec.Command("kafka/start.sh", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MUON_KAFKA_SECURITY_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() {
		if out, err := exec.Command("kafka/stop.sh", strconv.Itoa(port)).CombinedOutput(); err != nil {
			t.Logf("stopping the SASL_SSL broker: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("starting Kafka with a SASL_SSL listener: %v\n%s", err, out)
	}
	k.addr = fmt.Sprintf("127.0.0.1:%d", port)
	return k
}

// freePortRun returns a port p such that p … p+n-1 are free on 127.0.0.1.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := p+n <= 65535
		for i := 1; ok && i < n; i++ {
			li, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
			if err != nil {
				ok = false
				break
			}
			li.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("no %d free consecutive ports on 127.0.0.1", n)
	return 0
}

// writeCertificates makes a CA, a broker certificate for 127.0.0.1 and
// localhost, a client certificate, all signed by the CA, and a second
// ("rogue") CA that signed neither: ca.pem, broker.pem (PKCS#8 key and
// chain, as Kafka's PEM key store wants), client.pem, client.key and
// rogue-ca.pem in dir.
func writeCertificates(t *testing.T, dir string) {
	t.Helper()
	newKey := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	sign := func(tmpl, parent *x509.Certificate, pub *rsa.PublicKey, signer *rsa.PrivateKey) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyPEM := func(k *rsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ca := func(name string) (*x509.Certificate, *rsa.PrivateKey, []byte) {
		k := newKey()
		c, p := sign(&x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil, &k.PublicKey, k)
		return c, k, p
	}
	caCert, caKey, caPEM := ca("muon integration CA")
	_, _, roguePEM := ca("muon integration rogue CA")
	bk := newKey()
	_, brokerPEM := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "kafka"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, caCert, &bk.PublicKey, caKey)
	ck := newKey()
	_, clientPEM := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "muon"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, caCert, &ck.PublicKey, caKey)
	files := map[string][]byte{
		"ca.pem":       caPEM,
		"rogue-ca.pem": roguePEM,
		"broker.pem":   append(append(keyPEM(bk), brokerPEM...), caPEM...),
		"client.pem":   clientPEM,
		"client.key":   keyPEM(ck),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// muonBinary builds cmd/muon for the tests that run it as users do.
func muonBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "muon")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/muon").CombinedOutput()
	if err != nil {
		t.Fatalf("building muon: %v\n%s", err, out)
	}
	return bin
}

// Every Kafka connection muon makes works over SASL_SSL: muon produce,
// an ingest job (its replay, reads, dead letters and counts) and an infer
// job (reads, predictions); each mechanism authenticates; and a wrong
// password, an untrusted certificate and a plaintext client each fail at
// once with an error naming the cause.
func TestKafkaOverSASLSSL(t *testing.T) {
	k := startSecureKafka(t)
	ctx := context.Background()
	digits := filepath.Join("..", "..", "shared", "datasets", "optdigits", "optdigits.tes")

	t.Run("mechanisms", func(t *testing.T) {
		for _, mech := range []string{kafkaio.SASLPlain, kafkaio.SASLScramSHA256, kafkaio.SASLScramSHA512} {
			if err := kafkaio.Probe(ctx, kafkaio.Cluster{Brokers: []string{k.addr}, Security: k.security(mech, "ca.pem")}); err != nil {
				t.Errorf("%s: %v", mech, err)
			}
		}
	})

	topic := "secure-digits"
	t.Run("produce", func(t *testing.T) {
		cmd := exec.Command(muonBinary(t), "produce", "--brokers", k.addr, "--topic", topic, "--format", "csv", "--device", "optdigits",
			"--tls-ca", k.file("ca.pem"), "--tls-cert", k.file("client.pem"), "--tls-key", k.file("client.key"),
			"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", k.user, "--sasl-password-env", "IT_KAFKA_PASSWORD", "--quiet", digits)
		cmd.Env = append(os.Environ(), "IT_KAFKA_PASSWORD="+k.password)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("muon produce: %v\n%s", err, out)
		}
		if strings.Contains(string(out), k.password) {
			t.Errorf("muon produce printed the password:\n%s", out)
		}
		ends, err := kafkaio.EndOffsets(ctx, k.cluster(), topic)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, e := range ends {
			n += e
		}
		if n != 1797 {
			t.Errorf("%d records on %s, want 1797 (%s)", n, topic, out)
		}
	})

	t.Run("ingest", func(t *testing.T) {
		spec, err := configs.Load(filepath.Join("..", "configs", "ingest.yaml"), k.specKafka("name=secure-ingest", "source.topics=[secure-sensors]",
			"output.dir="+t.TempDir(), "replay=[{path: ../configs/testdata/malformed.jsonl}]")...)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := jobs.Run(ctx, spec, jobs.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Read != 7 || sum.Decoded != 1 || sum.DeadLetters != 6 || sum.Security != "SASL_SSL (SCRAM-SHA-512 as alice)" {
			t.Errorf("read %d, decoded %d, dead letters %d over %q; want 7, 1, 6 over SASL_SSL (SCRAM-SHA-512 as alice)", sum.Read, sum.Decoded, sum.DeadLetters, sum.Security)
		}
		dlq, err := kafkaio.Tail(ctx, k.cluster(), "secure-sensors.dlq", 100)
		if err != nil || len(dlq) != 6 {
			t.Errorf("%d dead letters on secure-sensors.dlq (%v), want 6", len(dlq), err)
		}
	})

	t.Run("infer", func(t *testing.T) {
		bs := brokers(t)
		d := trainDigits(t, bs[0], t.TempDir()) // trained on the embedded broker
		spec, err := configs.Load(filepath.Join("..", "configs", "infer-digits.yaml"), k.specKafka("name=secure-infer", "source.topics=["+topic+"]",
			"output.dir="+t.TempDir(), "replay=[]",
			fmt.Sprintf("inference=[{name: digits, store: %s, trust: [%s], topic: secure-predictions}]", d.store, d.pub))...)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := jobs.Run(ctx, spec, jobs.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Read != 1797 || len(sum.Inference) != 1 || sum.Inference[0].Predictions != 1797 {
			t.Errorf("read %d, inference %+v; want 1797 predictions", sum.Read, sum.Inference)
		}
		recs, err := kafkaio.Tail(ctx, k.cluster(), "secure-predictions", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1797 {
			t.Errorf("%d predictions on the topic, want 1797", len(recs))
		}
		if len(recs) > 0 {
			if _, err := infer.ParsePrediction(recs[0].Value); err != nil {
				t.Error(err)
			}
		}
	})

	// Each refusal comes from the first connection, within the call
	// deadline rather than after reconnecting: the context only stops a
	// hang from hanging the suite.
	refused := []struct {
		name  string
		sec   kafkaio.Security
		wants []string
	}{
		{"wrong password", func() kafkaio.Security {
			s := k.security(kafkaio.SASLScramSHA512, "ca.pem")
			s.SASL.PasswordFile = ""
			s.SASL.PasswordEnv = "IT_WRONG_PASSWORD"
			return s
		}(), []string{"SASL Authentication failed", "check the username and password"}},
		{"untrusted certificate", k.security(kafkaio.SASLScramSHA512, "rogue-ca.pem"), []string{"certificate signed by unknown authority", "kafka.tls.ca_file"}},
		{"plaintext client", kafkaio.Security{}, []string{"closed the connection without an answer", "set kafka.tls"}},
	}
	t.Setenv("IT_WRONG_PASSWORD", "not-"+k.password)
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			began := time.Now()
			err := kafkaio.EnsureTopics(cctx, kafkaio.Cluster{Brokers: []string{k.addr}, Security: r.sec}, kafkaio.TopicSpec{Name: "refused"})
			t.Logf("refused in %v: %v", time.Since(began).Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("connected")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("hung until the test's deadline: %v", err)
			}
			for _, w := range r.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), k.password) {
				t.Errorf("the error shows the password")
			}
		})
	}

	t.Run("job with a wrong password fails before it starts", func(t *testing.T) {
		spec, err := configs.Load(filepath.Join("..", "configs", "ingest.yaml"), k.specKafka("name=secure-refused", "source.topics=[secure-sensors]",
			"output.dir="+t.TempDir(), "replay=[]", "kafka.sasl.password_file=", "kafka.sasl.password_env=IT_WRONG_PASSWORD")...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = jobs.Run(ctx, spec, jobs.RunOptions{})
		if err == nil || !strings.Contains(err.Error(), "SASL Authentication failed") {
			t.Fatalf("error %v, want the SASL failure", err)
		}
	})
}
