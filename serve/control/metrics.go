package control

import (
	"encoding/json"
	"net/http"

	"github.com/muonml/muon/jobs"
	"github.com/prometheus/client_golang/prometheus"
)

// collector reads the runs and schedules when Prometheus scrapes: counts
// that cannot drift from what the API answers. Labels are bounded: run
// states and job kinds are fixed sets; schedules are what their users
// add.
type collector struct{ s *Server }

var (
	runsDesc = prometheus.NewDesc("muon_runs", "Runs of muon serve, by state.", []string{"state"}, nil)
	// From the summaries of ended runs, by job kind.
	recordsReadDesc    = prometheus.NewDesc("muon_job_records_read_total", "Records the ended runs read, by job kind.", []string{"job"}, nil)
	deadLettersDesc    = prometheus.NewDesc("muon_job_dead_letters_total", "Dead letters the ended runs wrote, by job kind.", []string{"job"}, nil)
	predictionsDesc    = prometheus.NewDesc("muon_job_predictions_total", "Predictions the ended infer runs wrote.", nil, nil)
	snapshotsDesc      = prometheus.NewDesc("muon_snapshots_total", "Snapshots the ended train runs made, by gate outcome.", []string{"outcome"}, nil)
	runSecondsDesc     = prometheus.NewDesc("muon_run_duration_seconds_total", "Wall time of the ended runs, by job kind.", []string{"job"}, nil)
	scheduleLagDesc    = prometheus.NewDesc("muon_schedule_lag_seconds", "How far a schedule's next tick is overdue (0 when it is not).", []string{"schedule"}, nil)
	scheduleNextDesc   = prometheus.NewDesc("muon_schedule_next_fire_timestamp_seconds", "When a schedule fires next, Unix seconds (absent when paused).", []string{"schedule"}, nil)
	scheduleSkipDesc   = prometheus.NewDesc("muon_schedule_ticks_skipped_total", "Ticks a schedule skipped (overlap or beyond the catch-up window).", []string{"schedule"}, nil)
	schedulePausedDesc = prometheus.NewDesc("muon_schedule_paused", "1 when a schedule is paused.", []string{"schedule"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{runsDesc, recordsReadDesc, deadLettersDesc, predictionsDesc, snapshotsDesc, runSecondsDesc,
		scheduleLagDesc, scheduleNextDesc, scheduleSkipDesc, schedulePausedDesc} {
		ch <- d
	}
}

// summaryFigures are the fields of a job summary the metrics read.
type summaryFigures struct {
	Read        int64 `json:"records_read"`
	DeadLetters int64 `json:"dead_letters"`
	Inference   []struct {
		Predictions int64 `json:"predictions"`
	} `json:"inference"`
	Training *struct {
		Snapshot *struct {
			Published bool `json:"published"`
		} `json:"snapshot"`
	} `json:"training"`
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	runs, err := c.s.store.list(0)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(runsDesc, err)
		return
	}
	states := map[string]float64{Queued: 0, Running: 0, Succeeded: 0, Failed: 0, Cancelled: 0, Interrupted: 0}
	read, dead, secs := map[string]float64{}, map[string]float64{}, map[string]float64{}
	var preds float64
	snaps := map[string]float64{"published": 0, "rejected": 0}
	for _, r := range runs {
		states[r.State]++
		if !r.Done() || len(r.Summary) == 0 {
			continue
		}
		var f summaryFigures
		if json.Unmarshal(r.Summary, &f) != nil {
			continue
		}
		read[r.Job] += float64(f.Read)
		dead[r.Job] += float64(f.DeadLetters)
		if !r.Started.IsZero() && !r.Ended.IsZero() {
			secs[r.Job] += r.Ended.Sub(r.Started).Seconds()
		}
		for _, b := range f.Inference {
			preds += float64(b.Predictions)
		}
		if f.Training != nil && f.Training.Snapshot != nil {
			if f.Training.Snapshot.Published {
				snaps["published"]++
			} else {
				snaps["rejected"]++
			}
		}
	}
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, n, st)
	}
	for job, n := range read {
		ch <- prometheus.MustNewConstMetric(recordsReadDesc, prometheus.CounterValue, n, job)
		ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.CounterValue, dead[job], job)
		ch <- prometheus.MustNewConstMetric(runSecondsDesc, prometheus.CounterValue, secs[job], job)
	}
	ch <- prometheus.MustNewConstMetric(predictionsDesc, prometheus.CounterValue, preds)
	for o, n := range snaps {
		ch <- prometheus.MustNewConstMetric(snapshotsDesc, prometheus.CounterValue, n, o)
	}
	scs, err := c.s.store.schedules()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(scheduleLagDesc, err)
		return
	}
	now := c.s.now()
	for _, sc := range scs {
		c.s.withNext(sc)
		paused := 0.0
		if sc.Paused {
			paused = 1
		} else if !sc.Next.IsZero() {
			ch <- prometheus.MustNewConstMetric(scheduleNextDesc, prometheus.GaugeValue, float64(sc.Next.UnixMilli())/1000, sc.Name)
		}
		lag := 0.0
		if !sc.Paused && !sc.Next.IsZero() && now.After(sc.Next) {
			lag = now.Sub(sc.Next).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(scheduleLagDesc, prometheus.GaugeValue, lag, sc.Name)
		ch <- prometheus.MustNewConstMetric(scheduleSkipDesc, prometheus.CounterValue, float64(sc.Skipped), sc.Name)
		ch <- prometheus.MustNewConstMetric(schedulePausedDesc, prometheus.GaugeValue, paused, sc.Name)
	}
}

// metricsHandler serves /metrics in Prometheus' text format: the server's
// own collector, the running job's (jobs.LiveCollector) and the Go
// runtime's.
func (s *Server) metricsHandler() http.Handler {
	return jobs.MetricsHandler(collector{s}, jobs.LiveCollector{Jobs: s.running})
}
