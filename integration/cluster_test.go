//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/jobs"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/train"
)

// flinkCluster is the job server in front of the Flink session cluster
// (integration/flink/cluster.sh) and the cluster's REST address, or skips
// (fails under MUON_REQUIRE_FLINK_CLUSTER=1).
func flinkCluster(t *testing.T) (endpoint, rest string) {
	t.Helper()
	endpoint, rest = os.Getenv("FLINK_CLUSTER_ENDPOINT"), os.Getenv("FLINK_MASTER")
	if endpoint == "" || rest == "" {
		if os.Getenv("MUON_REQUIRE_FLINK_CLUSTER") == "1" {
			t.Fatal("MUON_REQUIRE_FLINK_CLUSTER=1 but FLINK_CLUSTER_ENDPOINT or FLINK_MASTER is not set: see the Makefile's integration target")
		}
		t.Skip("no Flink cluster: export \"$(integration/flink/cluster.sh start)\" and a job server on it (integration/flink/README.md)")
	}
	return endpoint, rest
}

// clusterKafka is the Apache Kafka the cluster's workers reach (the
// embedded broker lives in the test process), or skips.
func clusterKafka(t *testing.T) broker {
	t.Helper()
	bs := brokers(t)
	b := bs[len(bs)-1]
	if b.name != "kafka" {
		t.Skip("the cluster's workers need a broker outside the test process: set KAFKA_BROKERS")
	}
	return b
}

// clusterKeys makes a signing key pair NAME.key and NAME.pub in a new
// folder with bin, and returns the folder.
func clusterKeys(t *testing.T, bin, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(bin, "models", "keygen", "--dir", dir, "--name", name).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	return dir
}

// The ingest job on the Flink session cluster with process workers: muon
// run --detach submits it and exits; the TaskManagers start muon workers
// themselves (in working directories and HOMEs of their own); muon jobs
// status --endpoint follows it to the end from the job server's metrics,
// which give the edge runner's counts; with parallelism 2 both
// TaskManagers process records.
func TestIngestOnFlinkCluster(t *testing.T) {
	endpoint, rest := flinkCluster(t)
	b := clusterKafka(t)
	topic := topicName(t, b, "cluster-ingest")
	ensure(t, b, topic, topic+".dlq")
	for _, f := range []string{
		filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts"),
		filepath.Join("..", "configs", "testdata", "malformed.jsonl"),
	} {
		if _, err := replay.Replay(context.Background(), []string{f}, replay.Options{Brokers: b.addrs, Topic: topic,
			Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
	}
	bin := muonBinary(t)
	dir := t.TempDir()
	name := fmt.Sprintf("cluster-ingest-%d", time.Now().UnixNano())
	spec := filepath.Join(dir, "ingest.yaml")
	must(t, os.WriteFile(spec, []byte(fmt.Sprintf(`name: %s
runner: flink
endpoint: %s
flink: {environment: process, worker_command: %s, parallelism: 2}
kafka: {brokers: [%s]}
source: {topics: [%s], format: sensor}
output: {dir: %s}
`, name, endpoint, bin, strings.Join(b.addrs, ","), topic, filepath.Join(dir, "out"))), 0o600))

	start := time.Now()
	out, err := exec.Command(bin, "run", "--config", spec, "--detach").CombinedOutput()
	if err != nil {
		t.Fatalf("muon run --detach: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:]))
	t.Logf("submitted %s in %s:\n%s", id, time.Since(start).Round(time.Millisecond), out)
	var status string
	deadline := time.Now().Add(5 * time.Minute)
	for {
		o, err := exec.Command(bin, "jobs", "status", id, "--endpoint", endpoint).CombinedOutput()
		if err != nil {
			t.Fatalf("muon jobs status: %v\n%s", err, o)
		}
		status = string(o)
		if regexp.MustCompile(`state +(done|failed|cancelled)`).MatchString(status) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("muon jobs status:\n%s", status)
	// The edge runner's figures (TestIngestSameOnEdgeAndFlink): 4007
	// read, 4001 decoded, 6 dead letters.
	for _, want := range []string{"state      done", "so far     4007 records read"} {
		if !strings.Contains(status, want) {
			t.Errorf("the job's status lacks %q", want)
		}
	}
	if !strings.Contains(status, "6 dead letters") {
		t.Errorf("the job's status does not count the 6 dead letters")
	}

	// Both TaskManagers did work: per vertex, Flink's REST API lists the
	// TaskManagers that ran its subtasks and the records they read.
	tms := map[string]int64{}
	jobsOverview := restGet[struct {
		Jobs []struct {
			JID  string `json:"jid"`
			Name string `json:"name"`
		} `json:"jobs"`
	}](t, rest, "/jobs/overview")
	var jid string
	for _, j := range jobsOverview.Jobs {
		if strings.HasPrefix(id, j.Name) { // the Beam job id is the Flink job's name and a suffix
			jid = j.JID
		}
	}
	if jid == "" {
		t.Fatalf("no Flink job for %s in %+v", id, jobsOverview.Jobs)
	}
	job := restGet[struct {
		Vertices []struct {
			ID string `json:"id"`
		} `json:"vertices"`
	}](t, rest, "/jobs/"+jid)
	for _, v := range job.Vertices {
		per := restGet[struct {
			TaskManagers []struct {
				ID      string `json:"taskmanager-id"`
				Metrics struct {
					ReadRecords int64 `json:"read-records"`
				} `json:"metrics"`
			} `json:"taskmanagers"`
		}](t, rest, "/jobs/"+jid+"/vertices/"+v.ID+"/taskmanagers")
		for _, tm := range per.TaskManagers {
			tms[tm.ID] += tm.Metrics.ReadRecords
		}
	}
	busy := 0
	for _, n := range tms {
		if n > 0 {
			busy++
		}
	}
	t.Logf("records read per TaskManager: %v", tms)
	if busy < 2 {
		t.Errorf("%d TaskManager(s) processed records, want both: %v", busy, tms)
	}
}

// The features job on the cluster's process workers archives the rows,
// and computes the preprocessing spec, that the edge runner does. The
// workers write both to absolute paths, as they would to the shared
// filesystem every worker mounts (a cluster's archives need one; see the
// README); their working directories hold nothing the test reads, and
// the summary comes from the job server's metrics.
func TestFeaturesOnFlinkCluster(t *testing.T) {
	endpoint, _ := flinkCluster(t)
	b := clusterKafka(t)
	topic := topicName(t, b, "cluster-features")
	ensure(t, b, topic, topic+".dlq")
	if _, err := replay.Replay(context.Background(), []string{filepath.Join("..", "..", "shared", "datasets", "basicmotions", "BasicMotions_TRAIN.ts")}, replay.Options{
		Brokers: b.addrs, Topic: topic, Recording: recording.Options{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Period: 100 * time.Millisecond},
	}); err != nil {
		t.Fatal(err)
	}
	edgeSpec := featuresSpec(t, "it", topic, t.TempDir(), "")
	p, s := beam.NewPipelineWithRoot()
	build(s, edgeSpec, jobs.Options{Brokers: b.addrs})
	if _, err := runners.Run(context.Background(), p, runners.Options{Kind: runners.Edge}); err != nil {
		t.Fatal(err)
	}
	edgePre, err := os.ReadFile(jobs.PreprocessFile(edgeSpec))
	must(t, err)

	bin := muonBinary(t)
	shared := t.TempDir()
	name := fmt.Sprintf("cluster-features-%d", time.Now().UnixNano())
	text := featuresYAML(name, topic, shared, fmt.Sprintf("runner: flink\nendpoint: %s\nflink: {environment: process, worker_command: %s, parallelism: 2}\nkafka: {brokers: [%s]}\n",
		endpoint, bin, strings.Join(b.addrs, ",")))
	file := filepath.Join(shared, "features.yaml")
	must(t, os.WriteFile(file, []byte(text), 0o600))
	out, err := exec.Command(bin, "run", "--config", file).CombinedOutput()
	if err != nil {
		t.Fatalf("muon run: %v\n%s", err, out)
	}
	t.Logf("muon run:\n%s", out[max(0, len(out)-1500):])
	var sum struct {
		Runner   string `json:"runner"`
		Features struct {
			Rows    int64 `json:"rows"`
			Batches int64 `json:"batches"`
		} `json:"features"`
	}
	sb, err := os.ReadFile(filepath.Join(shared, "summary.json"))
	must(t, err)
	must(t, json.Unmarshal(sb, &sum))
	if sum.Runner != "flink" || sum.Features.Rows != 320 || sum.Features.Batches == 0 {
		t.Errorf("summary: runner %s, %d rows in %d batches, want flink and 320 rows", sum.Runner, sum.Features.Rows, sum.Features.Batches)
	}
	spec, err := configs.Parse("features.yaml", []byte(text))
	must(t, err)
	pre, err := os.ReadFile(jobs.PreprocessFile(spec))
	must(t, err)
	sameFeatures(t, "the Flink cluster", readFeatureArchive(t, jobs.FeaturesArchive(edgeSpec)), string(edgePre), readFeatureArchive(t, jobs.FeaturesArchive(spec)), string(pre))
}

// The train job on the cluster's process workers, at parallelism 2, trains
// the model the edge runner trains (TestTrainSameOnEdgeAndFlink's spec:
// one shard, so serial minibatch SGD over rows in id order): the same
// validation and test sets, the same test accuracy, and the same loss
// every epoch to the rounding of the standardization statistics. The
// submitter reads both from the job's summary: the job server's metrics.
func TestTrainSameOnFlinkCluster(t *testing.T) {
	endpoint, _ := flinkCluster(t)
	b := clusterKafka(t)
	topic, test := basicMotionsTopics(t, b, "cluster-train")
	bin := muonBinary(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "train.yaml")
	must(t, os.WriteFile(spec, []byte(fmt.Sprintf(`name: cluster-train-%d
job: train
kafka: {brokers: [%s]}
source: {topics: [%s], format: sensor}
features: {kind: cases, channels: [dim0, dim1, dim2, dim3, dim4, dim5], bands: 4}
model: {kind: mlp, hidden: [16], activation: tanh, labels: [Badminton, Running, Standing, Walking]}
training: {epochs: 8, batch_size: 4, shards: 1, validation: 0.25, learning_rate: 0.01, test: {topics: [%s]}}
output: {dir: out}
`, time.Now().UnixNano(), strings.Join(b.addrs, ","), topic, test)), 0o600))
	type summary struct {
		Runner   string `json:"runner"`
		Training struct {
			train.Final
			Curve []train.Point `json:"curve"`
		} `json:"training"`
	}
	run := func(runner string, args ...string) summary {
		sub := filepath.Join(dir, runner) // the submitter's working directory
		must(t, os.MkdirAll(sub, 0o755))
		cmd := exec.Command(bin, append([]string{"run", "--config", spec, "--runner", runner}, args...)...)
		cmd.Dir = sub
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("muon run --runner %s: %v\n%s", runner, err, out)
		}
		var sum summary
		b, err := os.ReadFile(filepath.Join(sub, "out", "summary.json"))
		must(t, err)
		must(t, json.Unmarshal(b, &sum))
		if _, err := os.Stat(filepath.Join(sub, "out", "model.json")); (runner == "flink") == (err == nil) {
			t.Errorf("%s: model.json in the submitter's folder: %v (the cluster's workers write theirs in their own)", runner, err)
		}
		f := sum.Training.Final
		t.Logf("%s: %d epochs, train loss %.6f, validation %d rows, test accuracy %v", runner, f.Trained, f.TrainLoss, f.Validation.N, f.Test)
		return sum
	}
	edge := run("edge")
	cl := run("flink", "--endpoint", endpoint, "--set", "flink.environment=process", "--set", "flink.worker_command="+bin, "--set", "flink.parallelism=2")
	e, c := edge.Training.Final, cl.Training.Final
	if e.Test == nil || c.Test == nil || e.Test.N != 40 || c.Test.N != 40 || e.Validation.N != c.Validation.N || e.Trained != 8 || c.Trained != 8 {
		t.Fatalf("edge: %d epochs, test %+v, validation %d rows; cluster: %d epochs, test %+v, validation %d rows", e.Trained, e.Test, e.Validation.N, c.Trained, c.Test, c.Validation.N)
	}
	if e.Test.Accuracy != c.Test.Accuracy {
		t.Errorf("test accuracy %v on the cluster, %v on the edge runner", c.Test.Accuracy, e.Test.Accuracy)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(a)) }
	nearP := func(a, b *float64) bool { return a != nil && b != nil && near(*a, *b) }
	if !near(e.TrainLoss, c.TrainLoss) || len(edge.Training.Curve) != 8 || len(cl.Training.Curve) != 8 {
		t.Fatalf("train loss %v on the cluster, %v on the edge runner; curves of %d and %d points", c.TrainLoss, e.TrainLoss, len(cl.Training.Curve), len(edge.Training.Curve))
	}
	for i, p := range edge.Training.Curve {
		if q := cl.Training.Curve[i]; !near(p.TrainLoss, q.TrainLoss) || !nearP(p.ValidationLoss, q.ValidationLoss) {
			t.Errorf("epoch %d: train loss %v on the cluster, %v on the edge runner (validation %v, %v)", i+1, q.TrainLoss, p.TrainLoss, q.ValidationLoss, p.ValidationLoss)
		}
	}
}

func restGet[T any](t *testing.T, rest, path string) T {
	t.Helper()
	var out T
	resp, err := http.Get("http://" + rest + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return out
}

// The quick start on the Flink session cluster with process workers and no
// shared folder: the train job trains on the TaskManagers (two shards at
// parallelism 2) and publishes its signed snapshot to a model store on
// Kafka; the infer job, on the cluster too, serves it from there. The
// specs' output folders are relative, so workers write in their own
// working directories; the submitter learns everything from the job
// server's metrics and the store on Kafka. The edge runner, serving the
// same snapshot, makes the same predictions.
func TestTrainAndInferOnFlinkCluster(t *testing.T) {
	endpoint, _ := flinkCluster(t)
	b := clusterKafka(t)
	bin := muonBinary(t)
	root, _ := filepath.Abs("..")
	dir := clusterKeys(t, bin, "cl")
	suffix := fmt.Sprint(time.Now().UnixNano())
	store := "kafka://models.cluster-" + suffix
	rewrite := func(file string) string {
		y, err := os.ReadFile(filepath.Join(root, "configs", file))
		must(t, err)
		text := strings.NewReplacer("[digits]", "[digits-"+suffix+"]", "topic: digits-test", "topic: digits-test-"+suffix, "[digits-test]", "[digits-test-"+suffix+"]",
			"[digits-live]", "[digits-live-"+suffix+"]", "store: out/train-digits/store", "store: "+store, "keys/muon.pub", filepath.Join(dir, "cl.pub")).Replace(string(y))
		f := filepath.Join(dir, file)
		must(t, os.WriteFile(f, []byte(text), 0o600))
		return f
	}
	run := func(spec, runner string, sets ...string) map[string]any {
		out := filepath.Join("out", filepath.Base(spec)+"-"+runner+"-"+suffix)
		defer os.RemoveAll(filepath.Join(root, out))
		args := []string{"run", "--config", spec, "--runner", runner,
			"--set", "kafka.brokers=[" + strings.Join(b.addrs, ",") + "]", "--set", "output.dir=" + out}
		if runner == "flink" {
			args = append(args, "--endpoint", endpoint, "--set", "flink.environment=process", "--set", "flink.worker_command="+bin, "--set", "flink.parallelism=2")
		}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		cmd := exec.Command(bin, args...)
		cmd.Dir = root
		log, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("muon run %s --runner %s: %v\n%s", filepath.Base(spec), runner, err, log)
		}
		t.Logf("muon run %s --runner %s:\n%s", filepath.Base(spec), runner, log[max(0, len(log)-1500):])
		var sum map[string]any
		b, err := os.ReadFile(filepath.Join(root, out, "summary.json"))
		must(t, err)
		must(t, json.Unmarshal(b, &sum))
		return sum
	}
	train := run(rewrite("train-digits.yaml"), "flink", "snapshot.key="+filepath.Join(dir, "cl.key"), "snapshot.store="+store,
		"training.epochs=12", "snapshot.gate.min=0.9")
	snap, _ := train["training"].(map[string]any)["snapshot"].(map[string]any)
	if snap == nil || snap["published"] != true || snap["version"] != "train-digits@1" || !strings.HasPrefix(fmt.Sprint(snap["path"]), store) {
		t.Fatalf("the train job's snapshot: %v", snap)
	}
	br := run(rewrite("infer-digits.yaml"), "flink")["inference"].([]any)[0].(map[string]any)
	if br["model"] != "train-digits@1" || br["predictions"].(float64) != 1797 || br["accuracy"].(float64) < 0.9 {
		t.Errorf("the infer job's branch: model %v, %v predictions, accuracy %v", br["model"], br["predictions"], br["accuracy"])
	}
	// The edge runner, serving the same snapshot from the same store to
	// the same records (the cluster's run replayed them already), scores
	// them as the cluster did.
	eb := run(rewrite("infer-digits.yaml"), "edge", "replay=[]")["inference"].([]any)[0].(map[string]any)
	if eb["model"] != br["model"] || eb["predictions"] != br["predictions"] || eb["accuracy"] != br["accuracy"] {
		t.Errorf("edge runner: model %v, %v predictions, accuracy %v; the cluster: %v, %v, %v",
			eb["model"], eb["predictions"], eb["accuracy"], br["model"], br["predictions"], br["accuracy"])
	}
}

// A bounded train job on the cluster whose TaskManager is killed with
// SIGKILL mid-training completes once the cluster's restart strategy has
// rerun what was lost on a replacement TaskManager, and publishes exactly
// one snapshot version.
func TestTrainSurvivesLostTaskManager(t *testing.T) {
	endpoint, rest := flinkCluster(t)
	b := clusterKafka(t)
	_, port, _ := strings.Cut(rest, ":")
	bin := muonBinary(t)
	root, _ := filepath.Abs("..")
	dir := clusterKeys(t, bin, "kill")
	suffix := fmt.Sprint(time.Now().UnixNano())
	store := "kafka://models.kill-" + suffix
	y, err := os.ReadFile(filepath.Join(root, "configs", "train-digits.yaml"))
	must(t, err)
	spec := filepath.Join(dir, "train.yaml")
	must(t, os.WriteFile(spec, []byte(strings.NewReplacer("[digits]", "[kdigits-"+suffix+"]", "topic: digits-test", "topic: kdigits-test-"+suffix,
		"[digits-test]", "[kdigits-test-"+suffix+"]").Replace(string(y))), 0o600))
	cmd := exec.Command(bin, "run", "--config", spec, "--runner", "flink", "--endpoint", endpoint,
		"--set", "kafka.brokers=["+strings.Join(b.addrs, ",")+"]", "--set", "flink.environment=process", "--set", "flink.worker_command="+bin,
		"--set", "flink.parallelism=2", "--set", "output.dir=out/kill-"+suffix, "--set", "snapshot.key="+filepath.Join(dir, "kill.key"),
		"--set", "snapshot.store="+store, "--set", "training.epochs=30", "--set", "snapshot.gate.min=0.9")
	cmd.Dir = root
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	defer os.RemoveAll(filepath.Join(root, "out", "kill-"+suffix))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Kill a TaskManager once the job's tasks run on the cluster, and
	// start a replacement as an operator (or Kubernetes) would.
	script := filepath.Join(root, "integration", "flink", "cluster.sh")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ov := restGet[struct {
			Running int `json:"jobs-running"`
		}](t, rest, "/overview")
		if ov.Running > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the job ended before a TaskManager could be killed: %v\n%s", err, out.String())
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no job ran on the cluster")
		}
	}
	time.Sleep(8 * time.Second) // into the training
	killed := time.Now()
	// The first TaskManager still running (an earlier test may have
	// replaced some).
	for n := 1; ; n++ {
		o, err := exec.Command(script, "kill-taskmanager", port, fmt.Sprint(n)).CombinedOutput()
		if err == nil {
			t.Logf("%s", o)
			break
		}
		if n == 20 {
			t.Fatalf("no TaskManager to kill: %s", o)
		}
	}
	if o, err := exec.Command(script, "add-taskmanager", port).CombinedOutput(); err != nil {
		t.Fatalf("add-taskmanager: %v\n%s", err, o)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the train job failed after a TaskManager was killed: %v\n%s", err, out.String())
		}
	case <-time.After(8 * time.Minute):
		t.Fatalf("the train job did not end within 8 minutes of the kill\n%s", out.String())
	}
	t.Logf("the job ended %s after the kill:\n%s", time.Since(killed).Round(time.Second), out.String()[max(0, out.Len()-800):])
	list, err := exec.Command(bin, "models", "list", "--store", store, "--brokers", strings.Join(b.addrs, ",")).CombinedOutput()
	if err != nil {
		t.Fatalf("muon models list: %v\n%s", err, list)
	}
	if n := strings.Count(string(list), "train-digits@"); n != 1 || !strings.Contains(string(list), "train-digits@1") {
		t.Errorf("the store holds %d versions, want exactly train-digits@1:\n%s", n, list)
	}
}

// An unbounded infer job on the cluster (checkpoints every 5 s) whose
// TaskManager is killed with SIGKILL mid-stream, a replacement started:
// after the source ends every input record has a prediction (none lost;
// those made again after the restart from the last checkpoint are counted,
// and their ids let a consumer drop them). The scenario is the bench's
// cluster group, which reports the figures.
func TestInferSurvivesLostTaskManager(t *testing.T) {
	flinkCluster(t)
	b := clusterKafka(t)
	bin := muonBinary(t)
	root, _ := filepath.Abs("..")
	cmd := exec.Command("go", "run", "./integration/bench", "--muon", bin, "--groups", "cluster", "--kafka", b.addrs[0])
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the cluster scenario: %v\n%s", err, out)
	}
	figures := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "BENCH" {
			figures[f[1]] = f[2]
		}
	}
	t.Logf("%s", regexp.MustCompile(`(?m)^(BENCH|bench: (killed|cluster)).*$`).FindAllString(string(out), -1))
	if figures["flink_cluster.lost"] != "0" {
		t.Errorf("%s input records without a prediction after the TaskManager was killed, want 0", figures["flink_cluster.lost"])
	}
	if figures["flink_cluster.duplicates"] == "" || figures["flink_cluster.recovery_s"] == "" {
		t.Errorf("the scenario reported no duplicates or recovery time: %v", figures)
	}
}
