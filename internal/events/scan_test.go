package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

var scanSubjects = []string{"hodei.jobs.p.queued", "hodei.jobs.p.started", "hodei.jobs.p.finished", "hodei.jobs.q.queued"}

// scanAgrees holds the fast path to its contract on one payload: when
// scanEnvelope accepts, json.Unmarshal accepts and decodes the same
// envelope, and domain.CheckJSONText (which the fast path skips) accepts;
// and whatever scanEnvelope does, Decode gives the same event, or the same
// error with the same reason, with and without the fast path.
func scanAgrees(t *testing.T, payload []byte) (fast bool) {
	t.Helper()
	var got, again envelope
	workers := NewInterner()
	fast = scanEnvelope(payload, &got, "p", workers)
	// Again with the worker id's string now in the Interner: the same.
	if scanEnvelope(payload, &again, "p", workers) != fast || !reflect.DeepEqual(got, again) {
		t.Fatalf("a second scan with the worker interned differs:\n%+v\n%+v\nfrom\n%q", got, again, payload)
	}
	if got.hasAt { // the scanner's time without a pointer, as json.Unmarshal has it
		at := got.at
		got.Time, got.at, got.hasAt = &at, time.Time{}, false
	}
	if fast {
		var want envelope
		if err := json.Unmarshal(payload, &want); err != nil {
			t.Fatalf("fast path accepted what json.Unmarshal rejects (%v):\n%q", err, payload)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast path decoded\n%+v\njson.Unmarshal decoded\n%+v\nfrom\n%q", got, want, payload)
		}
		if err := domain.CheckJSONText(payload); err != nil {
			t.Fatalf("fast path accepted what CheckJSONText rejects (%v):\n%q", err, payload)
		}
	}
	d := Decoder{Subjects: Subjects{Prefix: "hodei"}, MaxBytes: 1 << 16, Workers: workers}
	for _, subject := range scanSubjects {
		fev, ferr := d.decode(subject, payload, true)
		sev, serr := d.decode(subject, payload, false)
		if !reflect.DeepEqual(fev, sev) {
			t.Fatalf("%s: with the fast path\n%+v\nwithout\n%+v\nfrom\n%q", subject, fev, sev, payload)
		}
		if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
			t.Fatalf("%s: with the fast path error %v, without %v, from\n%q", subject, ferr, serr, payload)
		}
		var fie, sie *domain.InvalidError
		if errors.As(ferr, &fie) != errors.As(serr, &sie) || (fie != nil && fie.Reason != sie.Reason) {
			t.Fatalf("%s: reasons differ: %v and %v", subject, ferr, serr)
		}
	}
	return fast
}

// The contract's own shapes take the fast path, and decode the same.
func TestScanTakesTheContractShapes(t *testing.T) {
	w := "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"
	for name, p := range map[string][]byte{
		"queued":           encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "j1", Pool: "p"}),
		"queued resources": encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "j1", Pool: "p", Resources: &domain.Resources{CPUMillis: 500, MemoryMB: 256}, Labels: map[string]string{"duration": "2s", "team": "ci", "ünï": "cödé"}}),
		"started":          encoded(t, domain.TypeJobStarted, domain.JobData{JobID: "j1", Pool: "p", WorkerID: w}),
		"finished":         encoded(t, domain.TypeJobFinished, domain.JobData{JobID: "j1", Pool: "p", WorkerID: w, Outcome: "cancelled"}),
		"whitespace":       []byte(" {\n \"specversion\" : \"1.0\",\t\"id\":\"e\",\"source\":\"s\",\"type\":\"hodei.job.queued\",\r\n\"time\":null,\"data\":{\"job_id\":\"j\",\"labels\":{},\"resources\":null,\"x\":[1,-2.5e+3,{\"a\":\"\\u00e9\"},true,false,null]}} "),
		"offset time":      []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","time":"2026-01-02T03:04:05+02:00","data":{"job_id":"j","resources":{"cpu_millis":-0,"memory_mb":999999999999999999}},"ext":"\"quoted\""}`),
		"traced":           []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.started","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"a=b","data":{"job_id":"j","worker_id":"` + w + `"}}`),
		"nulls":            []byte(`{"specversion":null,"data":null}`),
		"empty":            []byte(`{}`),
		"bad type":         []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.started","data":{"job_id":"j"}}`),
		"bad outcome":      []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.finished","data":{"job_id":"j","worker_id":"` + w + `","outcome":"maybe"}}`),
		"bad spec":         []byte(`{"specversion":"0.3","id":"e","source":"s","type":"hodei.job.queued","data":{"job_id":"j"}}`),
		"bad job id":       []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","data":{"job_id":" j"}}`),
		"pool mismatch":    []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","data":{"job_id":"j","pool":"z"}}`),
		"negative cpu":     []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","data":{"job_id":"j","resources":{"cpu_millis":-5}}}`),
	} {
		t.Run(name, func(t *testing.T) {
			if !scanAgrees(t, p) {
				t.Errorf("fast path declined a plain event:\n%s", p)
			}
		})
	}
}

// Where the fast path must decline (and the full decoder decides), or
// where JSON decoders often differ: the results are the same either way.
func TestScanAgreesWithFullDecoder(t *testing.T) {
	declined := []string{
		``, `null`, `[]`, `"x"`, `{`, `{"id":"a"`, `{"id":"a"}x`, `{"id":"a",}`, `{,}`, "\xef\xbb\xbf{}",
		`{"id":"a\"b"}`, `{"id":"a\u00e9"}`, "{\"id\":\"a\x01\"}", "{\"id\":\"\xff\"}", "{\"x\":\"\xff\"}",
		"{\"data\":{\"labels\":{\"k\":\"\xed\xa0\x80\"}}}", `{"x":"\ud800"}`, `{"x":"\ud83d\ude00"}`,
		`{"ID":"a"}`, `{"Data":{}}`, `{"data":{"Job_ID":"j"}}`, "{\"\xc5\xbfource\":\"s\"}", "{\"data\":{\"jo\xe2\x84\xaa\":1}}",
		`{"id":"a","id":"b"}`, `{"id":null,"id":"b"}`, `{"data":{},"data":{"job_id":"j"}}`, `{"time":null,"time":"2026-01-02T03:04:05Z"}`,
		`{"data":{"labels":{"a":"1"},"labels":{"b":"2"}}}`, `{"data":{"job_id":"a","job_id":"b"}}`,
		`{"data":{"labels":{"a":null}}}`, `{"data":{"labels":{"a":1}}}`, `{"data":{"labels":{"a\"":"1"}}}`,
		`{"id":1}`, `{"id":true}`, `{"data":[]}`, `{"data":"x"}`, `{"time":5}`, `{"time":"yesterday"}`, `{"time":"2026-01-02T03:04:05"}`,
		`{"data":{"resources":{"cpu_millis":1.5}}}`, `{"data":{"resources":{"cpu_millis":1e3}}}`,
		`{"data":{"resources":{"cpu_millis":01}}}`, `{"data":{"resources":{"cpu_millis":"1"}}}`,
		`{"data":{"resources":{"cpu_millis":9223372036854775808}}}`, `{"data":{"resources":{"cpu_millis":1234567890123456789}}}`,
		`{"data":{"resources":[]}}`, `{"data":{"resources":{"cpu_millis":1,"cpu_millis":2}}}`,
		`{"x":01}`, `{"x":1.}`, `{"x":.5}`, `{"x":-}`, `{"x":1e}`, `{"x":1e+}`, `{"x":tru}`, `{"x":truex}`, `{"x":"\x"}`, `{"x":"\u12"}`, `{"x":"\u12g4"}`,
		`{"x":[1,]}`, `{"x":{"a"}}`, `{"x":{"a":1,}}`, `{"x":[` + deep(40) + `]}`,
	}
	accepted := []string{
		`{"x":[1,2.5,-0.5e-7,1E+2,"\"\\\/\b\f\n\r\t\u00e9",{"Y":{}},[]],"z_-.9":null}`, // unknown members: any value, names inside any
		`{"data":{"resources":{"cpu_millis":null,"other":[true]},"labels":{"":"","a":"1","a":"2"}}}`,
		`{"time":"2026-01-02T03:04:05.999999999Z","data":{"extra":{"job_id":"not this one"}}}`,
		`{"x":[` + deep(30) + `]}`,
	}
	for _, tm := range []string{"2024-02-29T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T10:00:00Z", "2026-04-30T24:00:00Z",
		"2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2026-01-02T03:04:05.1Z",
		"2026-01-02T03:04:05.12345678Z", "2026-01-02T03:04:05.1234567891Z", "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05z",
		"2026-01-02t03:04:05Z", "2026-01-02T03:04:05-00:00", "2026-01-02T3:04:05Z", "2026-01-02T03:04:05,5Z", "+026-01-02T03:04:05Z",
		"2026-01-02T03:04:05.-1Z", "2026-1-02T03:04:05Z", "2026-00-02T03:04:05Z", "2026-01-00T03:04:05Z"} {
		scanAgrees(t, []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","time":"`+tm+`","data":{"job_id":"j"}}`))
	}
	for _, p := range declined {
		if scanAgrees(t, []byte(p)) {
			t.Errorf("fast path accepted %q, which it should leave to the full decoder", p)
		}
	}
	for _, p := range accepted {
		if !scanAgrees(t, []byte(p)) {
			t.Errorf("fast path declined %q", p)
		}
	}
}

func deep(n int) string {
	s := ""
	for range n {
		s += "["
	}
	for range n {
		s += "]"
	}
	return s
}

// FuzzScanAgrees: the fast path (scanEnvelope) decodes what it accepts as
// json.Unmarshal does, accepts nothing that domain.CheckJSONText rejects,
// and Decode's result and refusal reason are the same with and without it.
// Seed corpus in testdata/fuzz/FuzzScanAgrees.
func FuzzScanAgrees(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","time":"2026-11-27T12:00:00Z","data":{"job_id":"j","pool":"p","resources":{"cpu_millis":250},"labels":{"k":"v"}}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.finished","data":{"job_id":"j","worker_id":"5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e","outcome":"failed"},"x":[{"y":"\u00e9"},1.5e3,null]}`))
	f.Add([]byte(`{"ID":"x","id":"y","data":null}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		scanAgrees(t, payload)
	})
}

func BenchmarkScanEnvelope(b *testing.B) {
	p := encoded(b, domain.TypeJobStarted, domain.JobData{JobID: "job-000123456", Pool: "pool-007", WorkerID: "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"})
	b.ReportAllocs()
	for b.Loop() {
		var env envelope
		if !scanEnvelope(p, &env, "pool-007", nil) {
			b.Fatal("declined")
		}
	}
}

// The fast path allocates only the strings an event keeps: the CloudEvent
// id, the job id and the worker id (not the envelope, its time or the
// source, which is only checked).
func TestDecodeAllocations(t *testing.T) {
	w := "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"
	d := Decoder{Subjects: Subjects{Prefix: "hodei"}, MaxBytes: 1 << 16}
	for _, tc := range []struct {
		name, subject string
		payload       []byte
		want          float64
	}{
		{"queued", "hodei.jobs.pool-007.queued", encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "job-000123456", Pool: "pool-007"}), 2},
		{"started", "hodei.jobs.pool-007.started", encoded(t, domain.TypeJobStarted, domain.JobData{JobID: "job-000123456", Pool: "pool-007", WorkerID: w}), 3},
		{"finished", "hodei.jobs.pool-007.finished", encoded(t, domain.TypeJobFinished, domain.JobData{JobID: "job-000123456", Pool: "pool-007", WorkerID: w, Outcome: "succeeded"}), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env envelope
			if !scanEnvelope(tc.payload, &env, "pool-007", nil) {
				t.Fatalf("declined %q", tc.payload)
			}
			got := testing.AllocsPerRun(100, func() {
				if _, err := d.Decode(tc.subject, tc.payload); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%v allocations per Decode", got)
			if got > tc.want {
				t.Errorf("%v allocations per Decode, want at most %v", got, tc.want)
			}
		})
	}
}

// With an Interner (as the consumer of an input has), a worker's started
// and finished events share its id's string: one allocation less each
// than TestDecodeAllocations' 3, and the same string every time.
func TestDecodeAllocationsSharedWorker(t *testing.T) {
	w := "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"
	d := Decoder{Subjects: Subjects{Prefix: "hodei"}, MaxBytes: 1 << 16, Workers: NewInterner()}
	for _, tc := range []struct {
		name, subject string
		payload       []byte
		want          float64
	}{
		{"queued", "hodei.jobs.pool-007.queued", encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "job-000123456", Pool: "pool-007"}), 2},
		{"started", "hodei.jobs.pool-007.started", encoded(t, domain.TypeJobStarted, domain.JobData{JobID: "job-000123456", Pool: "pool-007", WorkerID: w}), 2},
		{"finished", "hodei.jobs.pool-007.finished", encoded(t, domain.TypeJobFinished, domain.JobData{JobID: "job-000123456", Pool: "pool-007", WorkerID: w, Outcome: "succeeded"}), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := d.Decode(tc.subject, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			got := testing.AllocsPerRun(100, func() {
				ev, err := d.Decode(tc.subject, tc.payload)
				if err != nil {
					t.Fatal(err)
				}
				if ev.WorkerID != first.WorkerID || unsafe.StringData(string(ev.WorkerID)) != unsafe.StringData(string(first.WorkerID)) {
					t.Fatalf("worker %q at %p, first %q at %p: not shared", ev.WorkerID, unsafe.StringData(string(ev.WorkerID)), first.WorkerID, unsafe.StringData(string(first.WorkerID)))
				}
			})
			t.Logf("%v allocations per Decode", got)
			if got > tc.want {
				t.Errorf("%v allocations per Decode, want at most %v", got, tc.want)
			}
		})
	}
}

// An Interner's strings are always equal to the bytes asked for, also
// when far more values than its slots evict each other, and a value asked
// for again right away is the same string.
func TestInternerStrings(t *testing.T) {
	in := NewInterner()
	for i := range 4 * internSlots {
		b := []byte(fmt.Sprintf("worker-%07d", i))
		s := in.String(b)
		if s != string(b) {
			t.Fatalf("%q interned as %q", b, s)
		}
		b[0] = 'W' // the string must not share the caller's bytes
		if s[0] != 'w' {
			t.Fatalf("interned string changed with its bytes: %q", s)
		}
		b[0] = 'w'
		if again := in.String(b); unsafe.StringData(again) != unsafe.StringData(s) {
			t.Fatalf("%q asked again: another string", b)
		}
	}
	var none *Interner
	if s := none.String([]byte("x")); s != "x" {
		t.Fatalf("nil Interner: %q", s)
	}
}
