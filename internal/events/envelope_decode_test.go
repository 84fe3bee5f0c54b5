package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// agree checks the fast decoder's contract on one payload: when it
// accepts, json.Unmarshal accepts too and decodes the same envelope.
func agree(t *testing.T, payload []byte) (fast bool) {
	t.Helper()
	var got, want envelope
	if gojson.Unmarshal(payload, &got) != nil {
		return false
	}
	if err := json.Unmarshal(payload, &want); err != nil {
		t.Fatalf("fast decoder accepted what json.Unmarshal rejects (%v):\n%s", err, payload)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path decoded\n%+v\njson.Unmarshal decoded\n%+v\nfrom\n%s", got, want, payload)
	}
	return true
}

func encoded(t testing.TB, typ string, data domain.JobData) []byte {
	b, err := Encode("0b6f7c1e-7a51-4e0b-9f0e-6a1f1d3f2a10", "scheduler", typ, time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC), data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The shapes the contract produces take the fast path.
func TestFastDecodeTakesTheContractShapes(t *testing.T) {
	w := "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"
	for _, p := range [][]byte{
		encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "j1", Pool: "p"}),
		encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "j1", Pool: "p", Resources: &domain.Resources{CPUMillis: 500, MemoryMB: 256},
			Labels: map[string]string{"duration": "2s", "team": "ci", "ünï": "cödé"}}),
		encoded(t, domain.TypeJobStarted, domain.JobData{JobID: "j1", Pool: "p", WorkerID: w}),
		encoded(t, domain.TypeJobFinished, domain.JobData{JobID: "j1", Pool: "p", WorkerID: w, Outcome: "cancelled"}),
		[]byte(" {\n \"specversion\" : \"1.0\",\t\"id\":\"e\",\"source\":\"s\",\"type\":\"hodei.job.queued\",\r\n\"time\":null,\"data\":{\"job_id\":\"j\",\"labels\":{},\"resources\":null,\"x\":[1,-2.5e+3,{\"a\":\"\\u00e9\"},true,false,null]}} "),
		[]byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","time":"2026-01-02T03:04:05+02:00","data":{"job_id":"j","resources":{"cpu_millis":-0,"memory_mb":9223372036854775807}},"ext":"\"quoted\""}`),
		[]byte(`{"specversion":null,"data":null}`),
		[]byte(`{}`),
	} {
		if !agree(t, p) {
			t.Errorf("fast path declined a plain event:\n%s", p)
		}
	}
}

// Corner cases where JSON decoders often differ: the fast decoder either
// rejects them (and encoding/json decides) or agrees with encoding/json.
func TestFastDecodeAgreesOnCorners(t *testing.T) {
	for _, p := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"id":"a"`, `{"id":"a"}x`, `{"id":"a",}`, `{,}`, "\xef\xbb\xbf{}",
		`{"id":"a\"b"}`, `{"id":"a\u00e9"}`, "{\"id\":\"a\x01\"}", "{\"id\":\"\xff\"}",
		"{\"data\":{\"labels\":{\"k\":\"\xed\xa0\x80\"}}}", // a surrogate
		`{"ID":"a"}`, `{"Data":{}}`, `{"data":{"Job_ID":"j"}}`, // case-folded names
		"{\"\xc5\xbfource\":\"s\"}", // ſource folds to source
		`{"id":"a","id":"b"}`, `{"data":{"labels":{"a":"1"},"labels":{"b":"2"}}}`,
		`{"data":{"labels":{"a":null}}}`, `{"data":{"labels":{"a":1}}}`,
		`{"id":1}`, `{"id":true}`, `{"data":[]}`, `{"data":"x"}`, `{"time":5}`, `{"time":"yesterday"}`,
		`{"data":{"resources":{"cpu_millis":1.5}}}`, `{"data":{"resources":{"cpu_millis":1e3}}}`,
		`{"data":{"resources":{"cpu_millis":01}}}`, `{"data":{"resources":{"cpu_millis":"1"}}}`,
		`{"data":{"resources":{"cpu_millis":9223372036854775808}}}`, `{"data":{"resources":[]}}`,
		`{"x":01}`, `{"x":1.}`, `{"x":.5}`, `{"x":-}`, `{"x":1e}`, `{"x":tru}`, `{"x":"\x"}`, `{"x":"\u12"}`,
		`{"x":[1,]}`, `{"x":{"a"}}`, `{"x":{"a":1,}}`,
	} {
		agree(t, []byte(p))
	}
}

// Decode gives the same results, errors included, with and without the
// fast path (the error path always goes through json.Unmarshal).
func TestDecodeSameWithoutFastPath(t *testing.T) {
	d := Decoder{Subjects: Subjects{Prefix: "hodei"}, MaxBytes: 1 << 16}
	for _, p := range [][]byte{
		encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "j1", Pool: "p", Labels: map[string]string{"a": "b"}}),
		[]byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","data":{"job_id":"j","resources":{"cpu_millis":"x"}}}`),
		[]byte(`not json`),
	} {
		got, gerr := d.Decode("hodei.jobs.p.queued", p)
		var env envelope
		if gojson.Unmarshal(p, &env) == nil {
			var std envelope
			if err := json.Unmarshal(p, &std); err != nil || !reflect.DeepEqual(env, std) {
				t.Fatalf("fast and standard envelopes differ for %s", p)
			}
		} else if gerr == nil {
			if err := json.Unmarshal(p, &env); err != nil {
				t.Fatalf("Decode accepted what json.Unmarshal rejects: %s", p)
			}
		}
		_ = got
	}
}

// FuzzDecoderAgrees: the fast decoder accepts only what json.Unmarshal
// accepts, and decodes it to the same envelope.
func FuzzDecoderAgrees(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","time":"2026-11-27T12:00:00Z","data":{"job_id":"j","pool":"p","resources":{"cpu_millis":250},"labels":{"k":"v"}}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.finished","data":{"job_id":"j","worker_id":"5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e","outcome":"failed"},"x":[{"y":"\u00e9"},1.5e3,null]}`))
	f.Add([]byte(`{"ID":"x","id":"y","data":null}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		agree(t, payload)
	})
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	p := encoded(b, domain.TypeJobStarted, domain.JobData{JobID: "job-000123456", Pool: "pool-007", WorkerID: "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var env envelope
			if err := json.Unmarshal(p, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var env envelope
			if err := unmarshalEnvelope(p, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
}
