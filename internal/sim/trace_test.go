package sim

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

var update = flag.Bool("update", false, "rewrite the committed standard traces in testdata/traces")

func TestReadCSV(t *testing.T) {
	t.Run("seconds from the start", func(t *testing.T) {
		tr, err := ReadCSV(strings.NewReader("job_id,pool,queued_at,duration\nb,p,12.5,60\na,p,0,1.5\nc,q,12.5,2m\n"), DefaultStart)
		if err != nil {
			t.Fatal(err)
		}
		want := []Job{{ID: "a", Pool: "p", Duration: 1500 * time.Millisecond}, {ID: "b", Pool: "p", Queued: 12500 * time.Millisecond, Duration: time.Minute}, {ID: "c", Pool: "q", Queued: 12500 * time.Millisecond, Duration: 2 * time.Minute}}
		if fmt.Sprint(tr.Jobs) != fmt.Sprint(want) || !tr.Start.Equal(DefaultStart) {
			t.Errorf("jobs %v start %v", tr.Jobs, tr.Start)
		}
		if p := tr.Pools(); len(p) != 2 || p[0] != "p" {
			t.Errorf("pools %v", p)
		}
	})
	t.Run("RFC 3339 times start at the earliest", func(t *testing.T) {
		tr, err := ReadCSV(strings.NewReader("queued_at,job_id,duration,pool\n2026-03-02T09:00:30Z,b,10,p\n2026-03-02T09:00:00Z,a,10,p\n"), DefaultStart)
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Start.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) || tr.Jobs[1].Queued != 30*time.Second || tr.Jobs[0].ID != "a" {
			t.Errorf("start %v jobs %v", tr.Start, tr.Jobs)
		}
	})
	t.Run("routing columns, no pool column", func(t *testing.T) {
		tr, err := ReadCSV(strings.NewReader("job_id,queued_at,duration,labels,provider,image,cpu_millis,memory_mb,gpu\n"+
			"a,1,10,arch=arm64; team = x,k8s,rust:1,500,1024,true\nb,2,10,,,,,,\n"), DefaultStart)
		if err != nil {
			t.Fatal(err)
		}
		a := tr.Jobs[0].Attrs
		if tr.Jobs[0].Pool != "" || a.Labels["arch"] != "arm64" || a.Labels["team"] != "x" || a.Provider != "k8s" || a.Image != "rust:1" ||
			a.CPUMillis != 500 || a.MemoryMB != 1024 || !a.GPU || !attrsEmpty(tr.Jobs[1].Attrs) {
			t.Errorf("jobs %+v", tr.Jobs)
		}
		var b bytes.Buffer
		if err := WriteCSV(&b, tr); err != nil {
			t.Fatal(err)
		}
		back, err := ReadCSV(&b, DefaultStart)
		if err != nil || fmt.Sprint(back.Jobs) != fmt.Sprint(tr.Jobs) {
			t.Errorf("round trip: %v %v, want %v", err, back, tr.Jobs)
		}
	})
	for _, bad := range []struct{ name, in, want string }{
		{"missing column", "job_id,pool,queued_at\n", "lacks column \"duration\""},
		{"no pool and no routing column", "job_id,queued_at,duration\na,1,1\n", "lacks column \"pool\""},
		{"bad labels", "job_id,queued_at,duration,labels\na,1,1,arch\n", "line 2: labels"},
		{"bad cpu", "job_id,queued_at,duration,cpu_millis\na,1,1,-5\n", "line 2: cpu_millis"},
		{"bad gpu", "job_id,queued_at,duration,gpu\na,1,1,maybe\n", "line 2: gpu"},
		{"bad time", "job_id,pool,queued_at,duration\na,p,yesterday,1\n", "line 2: queued_at"},
		{"negative duration", "job_id,pool,queued_at,duration\na,p,1,-1\n", "line 2: duration"},
		{"mixed time forms", "job_id,pool,queued_at,duration\na,p,1,1\nb,p,2026-01-01T00:00:00Z,1\n", "mixes"},
		{"no pool", "job_id,pool,queued_at,duration\na,,1,1\n", "required"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(bad.in), DefaultStart)
			if err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("error %v, want one mentioning %q", err, bad.want)
			}
		})
	}
}

func TestWriteCSVRoundTrip(t *testing.T) {
	tr, err := Generate(GenOptions{Kind: Burst, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, tr); err != nil {
		t.Fatal(err)
	}
	back, err := ReadCSV(&b, tr.Start)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back.Jobs) != fmt.Sprint(tr.Jobs) {
		t.Errorf("round trip changed the trace")
	}
}

func ce(typ string, at time.Time, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"%d","source":"s","type":"%s","time":"%s","data":%s}`, at.UnixNano(), typ, at.UTC().Format(time.RFC3339Nano), data)
}

// How durations are derived from events (FromEvents' doc): started to
// finished; else labels.duration; else queued to finished; else skipped.
func TestReadNDJSON(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	lines := []string{
		ce(domain.TypeJobQueued, at(0), `{"job_id":"full","pool":"p"}`),
		ce(domain.TypeJobQueued, at(5), `{"job_id":"label","pool":"p","labels":{"duration":"90"}}`),
		ce(domain.TypeJobQueued, at(6), `{"job_id":"nostart","pool":"p"}`),
		ce(domain.TypeJobQueued, at(7), `{"job_id":"open","pool":"p"}`),
		ce(domain.TypeJobQueued, at(8), `{"job_id":"gostyle","pool":"q","labels":{"duration":"2m"}}`),
		ce(domain.TypeJobStarted, at(20), `{"job_id":"full","pool":"p","worker_id":"`+string(domain.NewWorkerID())+`"}`),
		ce(domain.TypeJobFinished, at(80), `{"job_id":"full","pool":"p","outcome":"succeeded"}`),
		ce(domain.TypeJobFinished, at(46), `{"job_id":"nostart","pool":"p","outcome":"failed"}`),
		ce(domain.TypeJobStarted, at(30), `{"job_id":"startonly","pool":"p","worker_id":"x"}`),
		ce(domain.TypeJobFinished, at(40), `{"job_id":"startonly","pool":"p","outcome":"succeeded"}`),
		ce(domain.TypeDecision, at(50), `{"pool":"p"}`), // not a job event: ignored
		`{"specversion":"1.0","type":"hodei.job.queued","time":"` + at(9).Format(time.RFC3339) + `","subject":"hodei.jobs.r.queued","data":{"job_id":"bysubject","labels":{"duration":"1"}}}`,
		"",
	}
	tr, err := ReadNDJSON(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Job{}
	for _, j := range tr.Jobs {
		got[j.ID] = j
	}
	type timing struct {
		ID, Pool         string
		Queued, Duration time.Duration
	}
	want := map[string]timing{
		"full":      {"full", "p", 0, 60 * time.Second},                // started 20 → finished 80
		"label":     {"label", "p", 5 * time.Second, 90 * time.Second}, // labels.duration
		"nostart":   {"nostart", "p", 6 * time.Second, 40 * time.Second},
		"gostyle":   {"gostyle", "q", 8 * time.Second, 2 * time.Minute},
		"startonly": {"startonly", "p", 30 * time.Second, 10 * time.Second}, // queued at its start
		"bysubject": {"bysubject", "r", 9 * time.Second, time.Second},
	}
	if len(got) != len(want) {
		t.Errorf("jobs %v", tr.Jobs)
	}
	for id, w := range want {
		if g := got[id]; (timing{g.ID, g.Pool, g.Queued, g.Duration}) != w {
			t.Errorf("%s = %+v, want %+v", id, got[id], w)
		}
	}
	if got["gostyle"].Attrs.Labels["duration"] != "2m" { // the queued event's labels, for routing rules
		t.Errorf("gostyle attrs %+v", got["gostyle"].Attrs)
	}
	if !tr.Start.Equal(t0) || tr.Skipped["no finished event and no labels.duration"] != 1 {
		t.Errorf("start %v skipped %v", tr.Start, tr.Skipped)
	}
	if _, err := ReadNDJSON(strings.NewReader("{not json\n")); err == nil {
		t.Errorf("bad JSON accepted")
	}
	if _, err := ReadNDJSON(strings.NewReader(ce(domain.TypeJobQueued, at(0), `{"job_id":"x"}`))); err == nil {
		t.Errorf("an event without a pool accepted")
	}
}

func TestReadTraceSniffsTheFormat(t *testing.T) {
	nd := ce(domain.TypeJobQueued, DefaultStart, `{"job_id":"a","pool":"p","labels":{"duration":"3"}}`)
	for _, c := range []struct{ name, body string }{
		{"x.ndjson", nd}, {"x.csv", "job_id,pool,queued_at,duration\na,p,0,3\n"}, {"-", "\n  " + nd}, {"-", "job_id,pool,queued_at,duration\na,p,0,3\n"},
	} {
		tr, err := ReadTrace(strings.NewReader(c.body), c.name, DefaultStart)
		if err != nil || len(tr.Jobs) != 1 || tr.Jobs[0].Duration != 3*time.Second {
			t.Errorf("%s %q: %v %+v", c.name, c.body, err, tr)
		}
	}
}

func TestGenerate(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			a, err := Generate(GenOptions{Kind: kind, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Generate(GenOptions{Kind: kind, Seed: 7})
			c, _ := Generate(GenOptions{Kind: kind, Seed: 8})
			if fmt.Sprint(a.Jobs) != fmt.Sprint(b.Jobs) {
				t.Errorf("same seed, different traces")
			}
			if fmt.Sprint(a.Jobs) == fmt.Sprint(c.Jobs) {
				t.Errorf("different seeds, same trace")
			}
			o, _ := StandardGen(kind, 7)
			perHour := float64(len(a.Jobs)) / o.Span.Hours()
			switch kind {
			case Steady, Diurnal, HeavyTail: // 60 jobs/h on average
				if perHour < 50 || perHour > 70 {
					t.Errorf("%.1f jobs/h", perHour)
				}
			case Burst: // 6/h for 6 h, and 300 within a minute at 09:00
				inBurst := 0
				for _, j := range a.Jobs {
					if j.Queued >= 3*time.Hour && j.Queued < 3*time.Hour+time.Minute {
						inBurst++
					}
				}
				if inBurst < 300 || inBurst > 305 || a.Start.Weekday() != time.Monday || a.Start.Hour() != 6 {
					t.Errorf("%d jobs in the burst minute, start %v", inBurst, a.Start)
				}
			}
			if kind == Diurnal { // noon is busier than midnight
				var night, noon int
				for _, j := range a.Jobs {
					switch h := int(j.Queued.Hours()) % 24; {
					case h < 2 || h >= 22:
						night++
					case h >= 10 && h < 14:
						noon++
					}
				}
				if noon < 3*night {
					t.Errorf("noon %d vs night %d: no daily cycle", noon, night)
				}
			}
		})
	}
	if _, err := Generate(GenOptions{Kind: "weekly"}); err == nil || !strings.Contains(err.Error(), "ciweek") {
		t.Errorf("unknown kind: %v", err)
	}
}

// The shapes the standard ones lack: spikes nobody announced,
// heavy-tailed running times, a CI week with nights and weekends.
func TestGenerateNewShapes(t *testing.T) {
	gen := func(kind string) *Trace {
		t.Helper()
		tr, err := Generate(GenOptions{Kind: kind, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	t.Run("spikes", func(t *testing.T) {
		// Six minutes hold 10 to 40 jobs each above a 40/h baseline
		// (under 3 jobs in a typical minute).
		perMinute := map[time.Duration]int{}
		for _, j := range gen(Spikes).Jobs {
			perMinute[j.Queued.Truncate(time.Minute)]++
		}
		busy := 0
		for _, n := range perMinute {
			if n >= 10 {
				busy++
			}
		}
		if busy < 5 || busy > 12 { // a spike may straddle two minutes
			t.Errorf("%d minutes with 10 jobs or more, want the 6 spikes", busy)
		}
	})
	t.Run("heavytail", func(t *testing.T) {
		tr := gen(HeavyTail)
		var ds []time.Duration
		for _, j := range tr.Jobs {
			ds = append(ds, j.Duration)
		}
		slices.Sort(ds)
		med, p99, top := ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
		if med < 45*time.Second || med > 75*time.Second || p99 < 20*med || top > 4*time.Hour {
			t.Errorf("median %v, p99 %v, max %v: want a 1-minute median, a tail beyond 20 medians, capped at 4h", med, p99, top)
		}
	})
	t.Run("ciweek", func(t *testing.T) {
		tr := gen(CIWeek)
		var weekdayNoon, weekdayNight, weekend, nightly, batched int
		for i, j := range tr.Jobs {
			at := tr.Start.Add(j.Queued)
			switch wd, h := at.Weekday(), at.Hour(); {
			case wd == time.Saturday || wd == time.Sunday:
				weekend++
			case at.Hour() == 2 && at.Minute() == 0 && at.Second() == 0:
				nightly++
			case h >= 10 && h < 11:
				weekdayNoon++
			case h >= 3 && h < 4:
				weekdayNight++
			}
			if i > 0 && j.Queued == tr.Jobs[i-1].Queued {
				batched++
			}
		}
		// Per hour: 10-11h on five weekdays against 03-04h, and against
		// the 48 weekend hours.
		if weekdayNoon < 20*weekdayNight || float64(weekend)/48 > float64(weekdayNoon)/5/10 {
			t.Errorf("weekday 10-11h %d, 03-04h %d, weekend %d: no nights or weekends", weekdayNoon, weekdayNight, weekend)
		}
		if nightly != 5*20 {
			t.Errorf("%d jobs queued at 02:00:00 on weekdays, want 5 nightly runs of 20", nightly)
		}
		if batched < len(tr.Jobs)/2 {
			t.Errorf("%d of %d jobs queued at the same instant as the one before: pipelines should queue several at once", batched, len(tr.Jobs))
		}
	})
}

// The committed standard traces are what the generator gives for their
// seeds (go test ./internal/sim -run TestStandardTraces -update rewrites
// them).
func TestStandardTraces(t *testing.T) {
	for _, kind := range Kinds {
		tr, err := Generate(GenOptions{Kind: kind, Seed: StandardSeed})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteCSV(&b, tr); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "testdata", "traces", kind+".csv")
		if *update {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		if !bytes.Equal(committed, b.Bytes()) {
			t.Errorf("%s differs from the generator's output for seed %d", path, StandardSeed)
		}
	}
}

// --from-stream reads what a deployment retained, from a real JetStream.
func TestReadStream(t *testing.T) {
	srv := bustest.StartServer(t)
	_, js := bustest.Connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamJobs, Subjects: []string{"acme.jobs.>"}}); err != nil {
		t.Fatal(err)
	}
	jobs := &bustest.Jobs{T: t, JS: js, Subjects: events.Subjects{Prefix: "acme"}}
	t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	publish := func(kind domain.JobKind, at time.Time, d domain.JobData) {
		t.Helper()
		id := fmt.Sprint(at.UnixNano(), d.JobID, kind)
		payload, err := events.Encode(id, "scheduler", kind.Type(), at, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishAsync(jobs.Subjects.Job(domain.PoolName(d.Pool), kind), payload, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	w := domain.NewWorkerID()
	for i := range 1500 { // more than one fetch
		id := fmt.Sprintf("j%04d", i)
		q := t0.Add(time.Duration(i) * time.Second)
		publish(domain.JobQueued, q, domain.JobData{JobID: id, Pool: "linux"})
		publish(domain.JobStarted, q.Add(5*time.Second), domain.JobData{JobID: id, Pool: "linux", WorkerID: string(w)})
		publish(domain.JobFinished, q.Add(65*time.Second), domain.JobData{JobID: id, Pool: "linux", Outcome: "succeeded"})
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing timed out")
	}
	jobs.Raw("acme.jobs.linux.queued", []byte("not json"), "") // counted, not fatal
	tr, err := ReadStream(ctx, StreamOptions{URL: srv.ClientURL(), SubjectPrefix: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Jobs) != 1500 || !tr.Start.Equal(t0) || tr.Skipped["invalid events in the stream"] != 1 {
		t.Fatalf("%d jobs from %v, skipped %v", len(tr.Jobs), tr.Start, tr.Skipped)
	}
	for _, j := range tr.Jobs {
		if j.Duration != time.Minute || j.Pool != "linux" {
			t.Fatalf("job %+v: want 60 s (started to finished) in pool linux", j)
		}
	}
	if tr.Jobs[1499].Queued != 1499*time.Second {
		t.Errorf("last job queued at %v", tr.Jobs[1499].Queued)
	}
	if _, err := ReadStream(ctx, StreamOptions{URL: srv.ClientURL(), SubjectPrefix: "other"}); err == nil {
		t.Errorf("a prefix with no events: no error")
	}
}

// The committed example traces, in both formats, hold the same three jobs.
func TestExampleTraces(t *testing.T) {
	var got []string
	for _, name := range []string{"three-jobs.csv", "three-jobs.ndjson"} {
		f, err := os.Open(filepath.Join("..", "..", "testdata", "traces", name))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := ReadTrace(f, name, DefaultStart)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var b strings.Builder
		for _, j := range tr.Jobs {
			fmt.Fprintf(&b, "%s %s +%v %v; ", j.ID, j.Pool, j.Queued-tr.Jobs[0].Queued, j.Duration)
		}
		got = append(got, b.String())
	}
	want := "A default +0s 50s; B default +20s 10s; C default +55s 20s; "
	if got[0] != want || got[1] != want {
		t.Errorf("csv: %s\nndjson: %s\nwant: %s", got[0], got[1], want)
	}
}
