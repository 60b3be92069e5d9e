//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The dashboard in a real browser: muon serve runs the digits train job,
// then headless Chromium (Debian's, driven through ChromeDriver) opens
// the page, is refused a wrong token, signs in with a read token, and
// shows the run's loss curve and the model version it published.
// MUON_SCREENSHOTS=DIR keeps its screenshots (the README's).
func TestDashboardInChromium(t *testing.T) {
	driver := os.Getenv("CHROMEDRIVER")
	if driver == "" {
		if os.Getenv("MUON_REQUIRE_BROWSER") == "1" {
			t.Fatal("MUON_REQUIRE_BROWSER=1 but CHROMEDRIVER is not set: export \"$(integration/browser/install.sh)\"")
		}
		t.Skip("no CHROMEDRIVER: export \"$(integration/browser/install.sh)\"")
	}
	bin := muonBinary(t)
	root, _ := filepath.Abs("..")
	dir := t.TempDir()
	const readTok, writeTok = "dashboard-read-0123456789", "dashboard-write-0123456789"
	tokens := filepath.Join(dir, "tokens")
	writeTokenFile := filepath.Join(dir, "write-token")
	must(t, os.WriteFile(tokens, []byte("read "+readTok+"\nwrite "+writeTok+"\n"), 0o600))
	must(t, os.WriteFile(writeTokenFile, []byte(writeTok+"\n"), 0o600))
	if out, err := exec.Command(bin, "models", "keygen", "--dir", dir, "--name", "dash").CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}

	// muon serve, on a free loopback port it reports.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--state", filepath.Join(dir, "state"), "--tokens", tokens)
	serve.Dir = root
	serve.Stderr = os.Stderr
	stdout, err := serve.StdoutPipe()
	must(t, err)
	must(t, serve.Start())
	defer func() {
		_ = serve.Process.Signal(os.Interrupt)
		_ = serve.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	must(t, err)
	m := regexp.MustCompile(`https?://[0-9.:]+`).FindString(line)
	if m == "" {
		t.Fatalf("muon serve said %q, no address", line)
	}
	server := m

	// The train job, through the command-line client.
	store := filepath.Join(dir, "models")
	submit := exec.Command(bin, "jobs", "submit", "--server", server, "--token-file", writeTokenFile,
		"--config", "configs/train-digits.yaml", "--set", "snapshot.key="+filepath.Join(dir, "dash.key"),
		"--set", "snapshot.store="+store, "--set", "output.dir="+filepath.Join(dir, "out"), "--set", "training.epochs=12", "--set", "training.shards=1")
	submit.Dir = root
	out, err := submit.CombinedOutput()
	if err != nil {
		t.Fatalf("muon jobs submit: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`r-[0-9TZ.]+-[0-9a-f]+`).FindString(string(out))
	if id == "" {
		t.Fatalf("muon jobs submit said %q, no run id", out)
	}
	sched := exec.Command(bin, "schedule", "add", "nightly-digits", "--cron", "0 2 * * *", "--tz", "Europe/Berlin",
		"--server", server, "--token-file", writeTokenFile, "--config", "configs/train-digits.yaml",
		"--set", "snapshot.key="+filepath.Join(dir, "dash.key"), "--set", "snapshot.store="+store, "--set", "output.dir="+filepath.Join(dir, "out"))
	sched.Dir = root
	if out, err := sched.CombinedOutput(); err != nil {
		t.Fatalf("muon schedule add: %v\n%s", err, out)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := exec.Command(bin, "jobs", "status", id, "--server", server, "--token-file", writeTokenFile)
		out, _ := st.CombinedOutput()
		if regexp.MustCompile(`state +succeeded`).Match(out) {
			break
		}
		if regexp.MustCompile(`state +(failed|cancelled|interrupted)`).Match(out) || time.Now().After(deadline) {
			t.Fatalf("the train run did not succeed:\n%s", out)
		}
		time.Sleep(time.Second)
	}

	// Chromium, through ChromeDriver on a free loopback port.
	port := freeLoopbackPort(t)
	cd := exec.CommandContext(ctx, driver, fmt.Sprintf("--port=%d", port))
	must(t, cd.Start())
	defer func() {
		_ = cd.Process.Kill()
		_ = cd.Wait()
	}()
	wd := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	wd.waitReady()
	wd.newSession()
	defer wd.quit()

	wd.navigate(server + "/")
	shots := os.Getenv("MUON_SCREENSHOTS")
	if shots == "" {
		shots = dir
	}
	// A wrong token is refused, with the server's reason.
	wd.typeInto("#token", "not-the-token-000000000")
	wd.click("#signin")
	if msg := wd.waitText("#login-error", "refused"); !strings.Contains(msg, "unknown token") && !strings.Contains(msg, "token") {
		t.Errorf("wrong token: %q", msg)
	}
	wd.clear("#token")
	wd.typeInto("#token", readTok)
	wd.click("#signin")
	// The run's loss curve: a line per series, a point per epoch.
	wd.waitFor(`document.querySelector('#curve[data-points="12"] path[data-series="train loss"]') !== null`)
	wd.waitFor(`document.querySelector('#curve path[data-series="validation accuracy"]') !== null`)
	d := wd.eval(`return document.querySelector('#curve path[data-series="train loss"]').getAttribute('d')`)
	if n := strings.Count(d.(string), "L"); n != 11 {
		t.Errorf("the loss curve has %d segments, want 11 (12 epochs): %v", n, d)
	}
	// The model version the run published, with its gate outcome.
	wd.waitFor(`document.querySelector('tr[data-version="train-digits@1"]') !== null`)
	row := wd.eval(`return document.querySelector('tr[data-version="train-digits@1"]').innerText`).(string)
	for _, want := range []string{"train-digits@1", "published", "latest", "×", "int8"} {
		if !strings.Contains(row, want) {
			t.Errorf("the model version's row %q lacks %q", row, want)
		}
	}
	runs := wd.eval(`return document.querySelector('#runs').innerText`).(string)
	if !strings.Contains(runs, id) || !strings.Contains(runs, "succeeded") {
		t.Errorf("the runs table %q lacks %s succeeded", runs, id)
	}
	scheds := wd.eval(`return document.querySelector('#schedules').innerText`).(string)
	if !strings.Contains(scheds, "nightly-digits") || !strings.Contains(scheds, "0 2 * * *") {
		t.Errorf("the schedules table %q lacks nightly-digits", scheds)
	}
	logs := wd.eval(`return document.querySelector('#run-log').textContent`).(string)
	if !strings.Contains(logs, "epoch") {
		t.Errorf("the run's log shows no epochs: %q", logs)
	}
	wd.screenshot(filepath.Join(shots, "dashboard.png"))
	t.Logf("screenshot in %s", filepath.Join(shots, "dashboard.png"))

	// A streaming infer job on Apache Kafka, scoring with the model the
	// train run published while a producer sends digits: the page shows
	// its throughput and latency live, and the version it serves.
	kafka := os.Getenv("KAFKA_BROKERS")
	if kafka == "" {
		if os.Getenv("MUON_REQUIRE_KAFKA") == "1" {
			t.Fatal("MUON_REQUIRE_KAFKA=1 but KAFKA_BROKERS is not set")
		}
		t.Skip("KAFKA_BROKERS not set: the streaming half is skipped (integration/kafka/start.sh starts Kafka)")
	}
	topic := fmt.Sprintf("dash-digits-%d", time.Now().UnixNano())
	spec, err := os.ReadFile(filepath.Join(root, "configs", "infer-digits.yaml"))
	must(t, err)
	text := strings.ReplaceAll(string(spec), "store: out/train-digits/store", "store: "+store)
	text = strings.ReplaceAll(text, "keys/muon.pub", filepath.Join(dir, "dash.pub"))
	specFile := filepath.Join(dir, "infer.yaml")
	must(t, os.WriteFile(specFile, []byte(text), 0o600))
	submit = exec.Command(bin, "jobs", "submit", "--server", server, "--token-file", writeTokenFile, "--config", specFile,
		"--set", "kafka.brokers=["+kafka+"]", "--set", "source.topics=["+topic+"]", "--set", "source.bounded=false",
		"--set", "source.for=90s", "--set", "replay=[]", "--set", "output.dir="+filepath.Join(dir, "infer-out"))
	submit.Dir = root
	out, err = submit.CombinedOutput()
	if err != nil {
		t.Fatalf("muon jobs submit (infer): %v\n%s", err, out)
	}
	inferID := regexp.MustCompile(`r-[0-9TZ.]+-[0-9a-f]+`).FindString(string(out))
	wd.click(fmt.Sprintf("tr[data-run=%q]", inferID))
	wd.waitFor(`document.querySelector('#run-state .running') !== null`)
	produce := exec.CommandContext(ctx, bin, "produce", "--brokers", kafka, "--topic", topic, "--format", "csv", "--device", "optdigits-test",
		"--rate", "200", "--period", "5ms", "--quiet", filepath.Join(root, "..", "shared", "datasets", "optdigits", "optdigits.tes"))
	must(t, produce.Start())
	defer func() { _ = produce.Wait() }()
	wd.waitFor(`!document.querySelector('#live-box').hidden && document.querySelector('#live path[data-series="records read / s"]') !== null && document.querySelector('#live path[data-series="p99 latency (ms)"]') !== null`)
	wd.waitFor(`document.querySelector('tr[data-version="train-digits@1"] .mark:nth-of-type(2)') !== null`)
	row = wd.eval(`return document.querySelector('tr[data-version="train-digits@1"]').innerText`).(string)
	if !strings.Contains(row, "serving") {
		t.Errorf("the version the infer job serves is not marked serving: %q", row)
	}
	time.Sleep(4 * time.Second) // a few more seconds of the live chart
	wd.screenshot(filepath.Join(shots, "dashboard-live.png"))
	if out, err := exec.Command(bin, "jobs", "cancel", inferID, "--server", server, "--token-file", writeTokenFile).CombinedOutput(); err != nil {
		t.Fatalf("muon jobs cancel: %v\n%s", err, out)
	}
	wd.waitFor(`document.querySelector('#run-state .cancelled') !== null`)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// webDriver speaks the W3C WebDriver protocol to ChromeDriver.
type webDriver struct {
	t       *testing.T
	base    string
	session string
}

func (w *webDriver) call(method, path string, body any) map[string]any {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		w.t.Fatalf("webdriver %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode != 200 {
		w.t.Fatalf("webdriver %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return out
}

func (w *webDriver) waitReady() {
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(w.base + "/status"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.t.Fatal("chromedriver did not start")
}

func (w *webDriver) newSession() {
	out := w.call("POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": "/usr/bin/chromium",
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1800", "--user-data-dir=" + w.t.TempDir()}},
	}}})
	w.session = out["value"].(map[string]any)["sessionId"].(string)
}

func (w *webDriver) quit() { w.call("DELETE", "/session/"+w.session, nil) }

func (w *webDriver) path(p string) string { return "/session/" + w.session + p }

func (w *webDriver) navigate(url string) { w.call("POST", w.path("/url"), map[string]any{"url": url}) }

func (w *webDriver) element(css string) string {
	w.t.Helper()
	w.waitFor(fmt.Sprintf("document.querySelector(%q) !== null", css))
	out := w.call("POST", w.path("/element"), map[string]any{"using": "css selector", "value": css})
	for _, v := range out["value"].(map[string]any) {
		return v.(string)
	}
	w.t.Fatalf("no element %s", css)
	return ""
}

func (w *webDriver) typeInto(css, text string) {
	w.call("POST", w.path("/element/"+w.element(css)+"/value"), map[string]any{"text": text})
}

func (w *webDriver) clear(css string) {
	w.call("POST", w.path("/element/"+w.element(css)+"/clear"), map[string]any{})
}

func (w *webDriver) click(css string) {
	w.call("POST", w.path("/element/"+w.element(css)+"/click"), map[string]any{})
}

func (w *webDriver) eval(script string) any {
	return w.call("POST", w.path("/execute/sync"), map[string]any{"script": script, "args": []any{}})["value"]
}

// waitFor waits up to a minute for a JavaScript condition to hold.
func (w *webDriver) waitFor(cond string) {
	w.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if v, ok := w.eval("return " + cond).(bool); ok && v {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the page never got to %s; it shows:\n%v", cond, w.eval("return document.body.innerText"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitText waits for an element's text to contain want and returns it.
func (w *webDriver) waitText(css, want string) string {
	w.t.Helper()
	w.waitFor(fmt.Sprintf("document.querySelector(%q) && document.querySelector(%q).textContent.includes(%q)", css, css, want))
	return w.eval(fmt.Sprintf("return document.querySelector(%q).textContent", css)).(string)
}

func (w *webDriver) screenshot(path string) {
	w.t.Helper()
	png, err := base64.StdEncoding.DecodeString(w.call("GET", w.path("/screenshot"), nil)["value"].(string))
	must(w.t, err)
	must(w.t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(w.t, os.WriteFile(path, png, 0o644))
}
