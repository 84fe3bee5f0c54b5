package hodeijobs

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

var scanRouter = routing.Router{
	Rules: []routing.Rule{
		{Pool: "rust", Match: routing.Match{Image: "docker.io/library/rust:*", MinCPUMillis: 2000}},
		{Pool: "labelled", Match: routing.Match{Labels: map[string]string{"pool": "l"}}},
	},
	Default: "small",
}

// pair is a decoder with the fast path and one without, fed the same
// messages (the decoder is stateful: routing and the jobs it remembers).
type pair struct{ fast, full *Decoder }

func newPair() pair { return pair{New(scanRouter, 1<<16), New(scanRouter, 1<<16)} }

// agrees holds the scanner to the full decoder on one message: when
// scanMessage accepts, parse accepts, and reads the same message, and
// domain.CheckJSONText (which the fast path skips) accepts the envelope;
// whatever the scanner does, Decode's result, error and refusal reason
// are the same with and without the fast path.
func (p pair) agrees(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	fast = p.fast.scanMessage(data)
	if fast {
		got := p.fast.scratch.m
		var want parsed
		if r, ok := p.full.parse(data, &want); !ok {
			t.Fatalf("scanner accepted what the full decoder refuses (%v):\n%q", r.Err, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanner read\n%s\nthe full decoder\n%s\nfrom\n%q", dump(got), dump(want), data)
		}
		if err := domain.CheckJSONText(data); err != nil {
			t.Fatalf("scanner accepted what CheckJSONText refuses (%v):\n%q", err, data)
		}
	}
	fr, sr := p.fast.decode(data, true), p.full.decode(data, false)
	ferr, serr := fr.Err, sr.Err
	fr.Err, sr.Err = nil, nil
	if !reflect.DeepEqual(fr, sr) {
		t.Fatalf("with the fast path\n%+v\nwithout\n%+v\nfrom\n%q", fr, sr, data)
	}
	if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
		t.Fatalf("with the fast path error %v, without %v, from\n%q", ferr, serr, data)
	}
	var fie, sie *domain.InvalidError
	if errors.As(ferr, &fie) != errors.As(serr, &sie) || (fie != nil && fie.Reason != sie.Reason) {
		t.Fatalf("reasons differ: %v and %v", ferr, serr)
	}
	return fast
}

func dump(m parsed) string {
	b, _ := json.Marshal(struct {
		CreatedAt     time.Time
		CorrelationID *string
		Variant       string
		Job           jobFields
		HB            heartbeatFields
	}{m.createdAt, m.correlationID, m.variant, m.job, m.hb})
	return string(b)
}

// msg wraps a payload (the DomainEvent's JSON) in Hodei's envelope, as
// its server writes it.
func msg(t testing.TB, payload string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"payload": payload, "event_type": "X", "correlation_id": "c-1", "created_at": "2026-01-19T10:00:00.5Z"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	tJob    = "0b6e2f4a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
	tWorker = "3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b"
)

func queuedPayload(extra string) string {
	return `{"JobQueued":{"job_id":"` + tJob + `","preferred_provider":null,"job_requirements":{"command":{"Shell":{"cmd":"make","args":["test"]}},"env":{"CI":"true"},"inputs":[],"resources":{"cpu_cores":2.0,"memory_mb":4096,"storage_mb":1024,"gpu_required":false,"architecture":"x86_64"},"timeout_ms":600000,"image":"docker.io/library/rust:1.80","working_dir":null,"preferences":{"preferred_provider":null,"priority":"Normal","required_labels":{"arch":"amd64"},"required_annotations":{}}},"queued_at":"2026-01-19T10:00:00.123456789Z","correlation_id":null,"actor":null` + extra + `}}`
}

// The shapes Hodei's server writes take the fast path and decode the same,
// in a lifecycle (the decoders keep their state across the cases).
func TestScanTakesHodeiShapes(t *testing.T) {
	p := newPair()
	for _, f := range seedsOf(t) {
		t.Run(f.name, func(t *testing.T) {
			if !p.agrees(t, f.body) {
				t.Errorf("scanner declined a fixture:\n%s", f.body)
			}
		})
	}
	for name, body := range map[string][]byte{
		"queued":                msg(t, queuedPayload("")),
		"created":               msg(t, `{"JobCreated":{"job_id":"j2","spec":{"resources":{"cpu_cores":0.25,"memory_mb":1},"image":"x","preferences":{"required_labels":{"pool":"l"}}},"occurred_at":"2026-01-19T10:00:00+02:00"}}`),
		"assigned":              msg(t, `{"JobAssigned":{"job_id":"`+tJob+`","worker_id":"`+tWorker+`","occurred_at":"2026-01-19T10:00:01Z"}}`),
		"heartbeat":             msg(t, `{"WorkerHeartbeat":{"worker_id":"`+tWorker+`","state":"Busy","load_average":0.5,"memory_usage_mb":128,"current_job_id":"`+tJob+`","occurred_at":null}}`),
		"running":               msg(t, `{"JobStatusChanged":{"job_id":"`+tJob+`","old_state":"Assigned","new_state":"Running","occurred_at":"2026-01-19T10:00:02.1Z"}}`),
		"ignored variant":       msg(t, `{"WorkerRegistered":{"worker_id":"w","anything":[1,{"A":"\u00e9"},null]}}`),
		"unknown state":         msg(t, `{"JobStatusChanged":{"job_id":"j9","old_state":"Running","new_state":"Sleeping"}}`),
		"no job id":             msg(t, `{"JobCancelled":{"reason":"x"}}`),
		"empty job id":          msg(t, `{"JobCancelled":{"job_id":""}}`),
		"bad job id":            msg(t, `{"JobCancelled":{"job_id":"`+strings.Repeat("j", 300)+`"}}`),
		"bad worker":            msg(t, `{"JobAssigned":{"job_id":"j3","worker_id":"W"}}`),
		"negative cpu":          msg(t, `{"JobQueued":{"job_id":"j4","job_requirements":{"resources":{"cpu_cores":-1.5}}}}`),
		"no new state":          msg(t, `{"JobStatusChanged":{"job_id":"j5"}}`),
		"unicode":               msg(t, `{"JobQueued":{"job_id":"jöb-ü","job_requirements":{"image":"ímage","preferences":{"required_labels":{"ünï":"cödé"}}}}}`),
		"escaped inside skip":   msg(t, `{"JobQueued":{"job_id":"j6","actor":"a\"b\\c\u00e9\n","job_requirements":{"env":{"K":"v\"w"}}}}`),
		"whitespace":            []byte(" {\n \"payload\" :\t\"{ \\\"JobCancelled\\\" :\\n{\\\"job_id\\\":\\t\\\"j7\\\"} }\" ,\r\n\"created_at\":null } "),
		"nulls":                 []byte(`{"payload":"{\"JobCancelled\":{\"job_id\":\"j8\",\"occurred_at\":null,\"spec\":null,\"job_requirements\":null}}","event_type":null,"correlation_id":null,"created_at":null}`),
		"missing envelope keys": []byte(`{"payload":"{\"JobCancelled\":{\"job_id\":\"j10\"}}"}`),
		"resources nulls":       msg(t, `{"JobQueued":{"job_id":"j11","job_requirements":{"resources":{"cpu_cores":null,"memory_mb":null,"gpu_required":null},"preferences":{"required_labels":null,"preferred_provider":"prov"}}}}`),
		"preferences null":      msg(t, `{"JobQueued":{"job_id":"j12","preferred_provider":"p","job_requirements":{"resources":null,"preferences":null,"image":null}}}`),
		"empty labels":          msg(t, `{"JobQueued":{"job_id":"j13","job_requirements":{"preferences":{"required_labels":{}}}}}`),
		"labels repeated key":   msg(t, `{"JobQueued":{"job_id":"j14","job_requirements":{"preferences":{"required_labels":{"a":"1","a":"2"}}}}}`),
		"numbers":               msg(t, `{"JobQueued":{"job_id":"j15","job_requirements":{"resources":{"cpu_cores":123456789.012345,"memory_mb":999999999999999999,"gpu_required":true},"x":[-0.5e-7,1E+2]}}}`),
		"negative zero":         msg(t, `{"JobQueued":{"job_id":"j16","job_requirements":{"resources":{"cpu_cores":-0.0,"memory_mb":-0}}}}`),
		"spec and requirements": msg(t, `{"JobCreated":{"job_id":"j17","spec":{"image":"a"},"job_requirements":{"image":"b"}}}`),
		"deep skip":             msg(t, `{"JobQueued":{"job_id":"j18","x":`+deep(30)+`}}`),
		"offset time":           msg(t, `{"JobQueued":{"job_id":"j19","queued_at":"2026-01-19T10:00:00.5-07:00"}}`),
		"finished":              msg(t, `{"JobStatusChanged":{"job_id":"`+tJob+`","old_state":"Running","new_state":"Succeeded"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			if !p.agrees(t, body) {
				t.Errorf("scanner declined a plain message:\n%s", body)
			}
		})
	}
}

// Where the scanner must decline (and the full decoder decides), or where
// JSON decoders often differ: the results are the same either way.
func TestScanAgrees(t *testing.T) {
	declined := []string{
		``, `null`, `[]`, `"x"`, `{`, `{}`, `{"payload":"x"`, `{"payload":"x"}x`, `{"payload":"x",}`, `{,}`, "\xef\xbb\xbf{}",
		`{"payload":null}`, `{"payload":1}`, `{"payload":{}}`, `{"payload":"{}"}`, `{"payload":"[]"}`, `{"payload":"\"JobQueued\""}`,
		`{"Payload":"{\"JobCancelled\":{\"job_id\":\"j\"}}"}`, "{\"p\xc3\xa1yload\":1}",
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","payload":"{\"JobCancelled\":{\"job_id\":\"b\"}}"}`,
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","created_at":null,"created_at":"2026-01-19T10:00:00Z"}`,
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","correlation_id":"a","correlation_id":null}`,
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","event_type":1}`, `{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","correlation_id":5}`,
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","created_at":5}`, `{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","created_at":"yesterday"}`,
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","correlation_id":"c\"d"}`, `{"payload":"{\"JobCancelled\":{\"job_id\":\"a\"}}","x":"\ud800"}`,
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"\\ud83d\\ude00\"}}"}`, `{"payload":"{\"JobCancelled\":{\"job_id\":\"\\ud800\"}}"}`,
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"\ud83d\ude00\"}}"}`, `{"payload":"{\"JobCancelled\":{\"job_id\":\"\ud800\"}}"}`,
		"{\"payload\":\"{\\\"JobCancelled\\\":{\\\"job_id\\\":\\\"\xff\\\"}}\"}", "{\"payload\":\"a\x01\"}",
		`{"payload":"{\"JobCancelled\":{\"job_id\":\"\\u0001\"}}"}`, `{"payload":"{\"JobCancelled\":{\"job_id\":\"a\\\"b\"}}"}`,
	}
	payloads := []string{
		`{"JobQueued":{},"JobQueued":1}`, `{"JobQueued":{"job_id":"a"},"JobCancelled":{"job_id":"a"}}`, `{"NoSuchVariant":{}}`, `{"jobqueued":{}}`,
		`{"JobCancelled":null}`, `{"JobCancelled":[]}`, `{"JobCancelled":1}`, `{"JobCancelled":{"job_id":1}}`, `{"JobCancelled":{"job_id":null,"job_id":"b"}}`,
		`{"JobCancelled":{"Job_ID":"j"}}`, `{"JobCancelled":{"JOB_ID":"k","job_id":"j"}}`, "{\"JobCancelled\":{\"jo\\u0062_id\":\"j\"}}",
		"{\"JobQueued\":{\"job_id\":\"j\",\"\xc5\xbfpec\":{}}}", "{\"JobQueued\":{\"job_id\":\"j\",\"job_requirements\":{\"image\":\"a\",\"imag\xe2\x84\xaa\":\"b\"}}}",
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":"2"}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":1e400}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":2e0}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":1234567890123456}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":0.1234567890123456789}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":01}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":1.}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"memory_mb":1.5}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"memory_mb":1e3}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"memory_mb":9223372036854775808}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"memory_mb":1234567890123456789}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"memory_mb":-9223372036854775809}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"gpu_required":"true"}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"gpu_required":1}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":[]}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":1},"resources":{"memory_mb":2}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"preferences":{"required_labels":{"a":null}}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"preferences":{"required_labels":{"a":1}}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"preferences":{"required_labels":{"a\"":"1"}}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"preferences":{"required_labels":{"a":"1"},"required_labels":{"b":"2"}}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"preferences":{"required_labels":[]}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":[]}}`, `{"JobQueued":{"job_id":"j","spec":"x"}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"image":5}}}`, `{"JobQueued":{"job_id":"j","queued_at":"2026-01-19 10:00:00Z"}}`,
		`{"JobQueued":{"job_id":"j","queued_at":5}}`, `{"JobQueued":{"job_id":"j","x":` + deep(40) + `}}`,
		`{"JobStatusChanged":{"job_id":"j","new_state":1}}`, `{"JobStatusChanged":{"job_id":"j","new_state":"Running","new_state":"Failed"}}`,
		`{"WorkerHeartbeat":{"worker_id":1}}`, `{"WorkerHeartbeat":{"worker_id":"a","worker_id":"b"}}`, `{"WorkerHeartbeat":{"current_job_id":[]}}`,
		`{"JobCancelled":{"x":01}}`, `{"JobCancelled":{"x":tru}}`, `{"JobCancelled":{"x":"\x"}}`, `{"JobCancelled":{"x":"\u12"}}`, `{"JobCancelled":{"x":[1,]}}`,
		`{"JobCancelled":{"job_id":"j"}} x`, `{"JobCancelled":{"job_id":"j"}`,
	}
	accepted := []string{
		`{"JobCancelled":{"job_id":"j"}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":999999999999999}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":0.00000000000001}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":3.3333333333333}}}}`,
		`{"JobQueued":{"job_id":"j","job_requirements":{"resources":{"cpu_cores":2147483.648}}}}`,
		`{"WorkerRegistered":{"x":[` + deep(30) + `]}}`,
		`{"WorkerHeartbeat":{"worker_id":"` + tWorker + `","current_job_id":null}}`,
		`{"WorkerHeartbeat":{"worker_id":"nope"}}`,
	}
	times := []string{"2024-02-29T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T10:00:00Z", "2026-04-30T24:00:00Z",
		"2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2026-01-02T03:04:05.1234567891Z",
		"2026-01-02T03:04:05.Z", "2026-01-02T03:04:05z", "2026-01-02T03:04:05-00:00", "2026-01-02T03:04:05+14:00", "2026-01-02T3:04:05Z"}
	for _, tm := range times {
		declined = append(declined, `{"payload":"{\"JobCancelled\":{\"job_id\":\"t\"}}","created_at":"`+tm+`"}`)
		payloads = append(payloads, `{"JobCancelled":{"job_id":"t","occurred_at":"`+tm+`"}}`)
	}
	p := newPair()
	for _, c := range declined {
		p.agrees(t, []byte(c)) // some of the times are accepted: either way, the same
	}
	for _, c := range payloads {
		p.agrees(t, msg(t, c))
	}
	for _, c := range accepted {
		if !p.agrees(t, msg(t, c)) {
			t.Errorf("scanner declined %s", c)
		}
	}
	for _, c := range declined[:len(declined)-len(times)] {
		if p.fast.scanMessage([]byte(c)) {
			t.Errorf("scanner accepted %q, which it should leave to the full decoder", c)
		}
	}
	for _, c := range payloads[:len(payloads)-len(times)] {
		if p.fast.scanMessage(msg(t, c)) {
			t.Errorf("scanner accepted the payload %s, which it should leave to the full decoder", c)
		}
	}
}

func deep(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

type seed struct {
	name string
	body []byte
}

func seedsOf(t testing.TB) []seed {
	t.Helper()
	var out []seed
	for i, b := range seeds(t) {
		var env envelope
		if json.Unmarshal(b, &env) == nil && env.Payload != nil {
			out = append(out, seed{name: "fixture-" + string(rune('a'+i)), body: b})
		}
	}
	return out
}

// FuzzScanAgrees: the scanner reads what it accepts as the full decoder
// does, accepts nothing domain.CheckJSONText refuses, and Decode's result
// and refusal reason are the same with and without it; the decoders keep
// their state across the inputs, as over a stream. The input is the
// envelope, or (its first byte odd) a payload wrapped in one, so that the
// fuzzer reaches the payload's JSON without having to escape it.
func FuzzScanAgrees(f *testing.F) {
	for _, s := range seedsOf(f) {
		f.Add(s.body)
	}
	f.Add([]byte("\x01" + queuedPayload(`,"x":[1,-2.5e+3,{"a":"\u00e9"},true,null]`)))
	f.Add([]byte("\x01" + `{"WorkerHeartbeat":{"worker_id":"` + tWorker + `","current_job_id":"` + tJob + `"}}`))
	f.Add([]byte("\x01" + `{"JobStatusChanged":{"job_id":"` + tJob + `","old_state":"Running","new_state":"Failed","occurred_at":"2026-01-19T10:00:00Z"}}`))
	p := newPair()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0]&1 == 1 {
			data = msg(t, string(data[1:]))
		}
		p.agrees(t, data)
	})
}

// The scanner allocates only what the result keeps and does not repeat
// from job to job: the job id, the correlation id and the label map (two
// allocations); images, label keys and values, workers and states are
// interned, the payload unescaped into a reused buffer.
func TestScanAllocs(t *testing.T) {
	d := New(scanRouter, 1<<16)
	for name, c := range map[string]struct {
		body []byte
		max  float64
	}{
		"queued":   {msg(t, queuedPayload("")), 4},
		"assigned": {msg(t, `{"JobAssigned":{"job_id":"`+tJob+`","worker_id":"`+tWorker+`","occurred_at":"2026-01-19T10:00:01Z"}}`), 2},
		"changed":  {msg(t, `{"JobStatusChanged":{"job_id":"`+tJob+`","old_state":"Running","new_state":"Succeeded","occurred_at":"2026-01-19T10:00:01Z"}}`), 2},
	} {
		t.Run(name, func(t *testing.T) {
			if !d.scanMessage(c.body) {
				t.Fatal("declined")
			}
			if n := testing.AllocsPerRun(100, func() { d.scanMessage(c.body) }); n > c.max {
				t.Errorf("%v allocations per message, want at most %v", n, c.max)
			}
		})
	}
}

func BenchmarkScanMessage(b *testing.B) {
	d := New(scanRouter, 1<<16)
	body := msg(b, queuedPayload(""))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !d.scanMessage(body) {
			b.Fatal("declined")
		}
	}
}

// BenchmarkDecode: the whole Decode of row 1h's mix (a JobQueued with a
// job spec, a JobAssigned, a JobStatusChanged), with the fast path and
// with the full decoder alone.
func BenchmarkDecode(b *testing.B) {
	bodies := [][]byte{
		msg(b, queuedPayload("")),
		msg(b, `{"JobAssigned":{"job_id":"`+tJob+`","worker_id":"`+tWorker+`","occurred_at":"2026-01-19T10:00:01Z"}}`),
		msg(b, `{"JobStatusChanged":{"job_id":"`+tJob+`","old_state":"Running","new_state":"Succeeded","occurred_at":"2026-01-19T10:00:01Z"}}`),
	}
	for _, fast := range []bool{true, false} {
		name := "full"
		if fast {
			name = "fast"
		}
		b.Run(name, func(b *testing.B) {
			d := New(scanRouter, 1<<16)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if r := d.decode(bodies[i%3], fast); r.Err != nil {
					b.Fatal(r.Err)
				}
				i++
			}
		})
	}
}
