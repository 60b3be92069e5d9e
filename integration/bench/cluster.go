package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/muonml/muon/io/kafkaio"
)

// benchClusterRecovery runs an unbounded infer job on the Flink session
// cluster (process workers, parallelism 2, checkpoints every 5 s) while a
// producer sends digits at 300 records/s, kills one TaskManager with
// SIGKILL mid-stream and starts a replacement, as cluster.sh does; after
// the source ends it reads the predictions topic back:
// flink_cluster.lost (input records without a prediction, goal 0),
// flink_cluster.duplicates (predictions made again after the restart from
// the last checkpoint: ids let a consumer drop them) and
// flink_cluster.recovery_s (the longest pause of the predictions after the
// kill: TaskManager lost → records flowing again).
func benchClusterRecovery(muon, datasets, kafkaAddr string) {
	endpoint, rest := os.Getenv("FLINK_CLUSTER_ENDPOINT"), os.Getenv("FLINK_MASTER")
	if endpoint == "" || rest == "" || kafkaAddr == "" {
		fmt.Fprintln(os.Stderr, "bench: FLINK_CLUSTER_ENDPOINT, FLINK_MASTER or Apache Kafka not set: flink_cluster recovery figures skipped (make bench starts them)")
		return
	}
	self, err := filepath.Abs(muon)
	must(err)
	work, err := os.MkdirTemp("", "muon-bench-cluster-")
	must(err)
	defer os.RemoveAll(work)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	store := "kafka://models.recovery-" + suffix
	cmd := func(args ...string) *exec.Cmd {
		c := exec.Command(self, args...)
		c.Stderr = os.Stderr
		return c
	}
	must(cmd("models", "keygen", "--dir", work, "--name", "rec").Run())
	// The model, trained on the edge runner into the store on Kafka.
	y, err := os.ReadFile("configs/train-digits.yaml")
	must(err)
	train := filepath.Join(work, "train.yaml")
	must(os.WriteFile(train, []byte(strings.ReplaceAll(string(y), "topic: digits-test", "topic: rdigits-test-"+suffix)), 0o600))
	must(cmd("run", "--config", train, "--set", "kafka.brokers=["+kafkaAddr+"]", "--set", "source.topics=[rdigits-"+suffix+"]",
		"--set", "training.test.topics=[rdigits-test-"+suffix+"]", "--set", "snapshot.key="+filepath.Join(work, "rec.key"),
		"--set", "snapshot.store="+store, "--set", "output.dir="+filepath.Join(work, "train")).Run())

	source, preds := "rlive-"+suffix, "rpreds-"+suffix
	ctx := context.Background()
	must(kafkaio.EnsureTopics(ctx, kafkaio.Plain(kafkaAddr), kafkaio.TopicSpec{Name: source, Partitions: 4}))
	infer := cmd("run", "--config", "configs/infer-digits.yaml", "--runner", "flink", "--endpoint", endpoint,
		"--set", "kafka.brokers=["+kafkaAddr+"]", "--set", "source.topics=["+source+"]", "--set", "source.bounded=false",
		"--set", "source.for=80s", "--set", "replay=[]", "--set", "flink.environment=process", "--set", "flink.worker_command="+self,
		"--set", "flink.parallelism=2", "--set", "flink.checkpoint_interval=5s", "--set", "output.dir="+filepath.Join(work, "infer"),
		"--set", "inference=[{name: digits, store: "+store+", trust: ["+filepath.Join(work, "rec.pub")+"], topic: "+preds+"}]")
	must(infer.Start())
	done := make(chan error, 1)
	go func() { done <- infer.Wait() }()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if clusterJobsRunning(rest) > 0 {
			break
		}
		if time.Now().After(deadline) {
			must(fmt.Errorf("the infer job did not start on the cluster"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // the workers up
	const copies = 6            // 10,782 records, 36 s at 300/s
	files := make([]string, copies)
	for i := range files {
		files[i] = filepath.Join(datasets, "optdigits", "optdigits.tes")
	}
	produce := cmd(append([]string{"produce", "--brokers", kafkaAddr, "--topic", source, "--format", "csv", "--device", "rec",
		"--rate", "300", "--period", "3ms", "--quiet"}, files...)...)
	must(produce.Start())
	time.Sleep(12 * time.Second)
	script := filepath.Join("integration", "flink", "cluster.sh")
	_, port, _ := strings.Cut(rest, ":")
	killed := time.Now()
	for n := 1; ; n++ {
		if exec.Command(script, "kill-taskmanager", port, fmt.Sprint(n)).Run() == nil {
			fmt.Fprintf(os.Stderr, "bench: killed TaskManager %d\n", n)
			break
		}
		if n == 20 {
			must(fmt.Errorf("no TaskManager to kill"))
		}
	}
	add := exec.Command(script, "add-taskmanager", port)
	add.Stderr = os.Stderr
	must(add.Run())
	must(produce.Wait())
	select {
	case err := <-done:
		must(err)
	case <-time.After(5 * time.Minute):
		must(fmt.Errorf("the infer job did not end"))
	}

	in, err := kafkaio.EndOffsets(ctx, kafkaio.Plain(kafkaAddr), source)
	must(err)
	var produced int64
	for _, n := range in {
		produced += n
	}
	recs, err := kafkaio.Tail(ctx, kafkaio.Plain(kafkaAddr), preds, 1<<30)
	must(err)
	ids := map[string]bool{}
	var times []time.Time
	for _, r := range recs {
		// When a prediction was made: its reading's event time plus its
		// latency (the records carry the event times).
		var p struct {
			ID        string    `json:"id"`
			Time      time.Time `json:"time"`
			LatencyMs float64   `json:"latency_ms"`
		}
		if json.Unmarshal(r.Value, &p) == nil && strings.HasPrefix(p.ID, source+"/") {
			ids[p.ID] = true
			times = append(times, p.Time.Add(time.Duration(p.LatencyMs*float64(time.Millisecond))))
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var pause time.Duration
	prev := killed
	for _, t := range times {
		if t.Before(killed) {
			continue
		}
		pause = max(pause, t.Sub(prev))
		prev = t
	}
	if len(times) > 0 {
		fmt.Fprintf(os.Stderr, "bench: cluster recovery: predictions written from %s to %s; TaskManager killed at %s\n",
			times[0].Format(time.RFC3339Nano), times[len(times)-1].Format(time.RFC3339Nano), killed.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(os.Stderr, "bench: cluster recovery: %d records in, %d predictions, %d distinct ids\n", produced, len(times), len(ids))
	bench("flink_cluster.recovery_s", pause.Seconds(), "s")
	bench("flink_cluster.lost", float64(produced-int64(len(ids))), "records")
	bench("flink_cluster.duplicates", float64(len(times)-len(ids)), "records")
}

// clusterJobsRunning is how many jobs the Flink cluster at rest runs.
func clusterJobsRunning(rest string) int {
	resp, err := http.Get("http://" + rest + "/overview")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var ov struct {
		Running int `json:"jobs-running"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ov)
	return ov.Running
}
