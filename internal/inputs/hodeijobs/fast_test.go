package hodeijobs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	gojson "github.com/goccy/go-json"
)

// agreeAs checks one type: what goccy/go-json accepts, encoding/json
// accepts and decodes to the same value.
func agreeAs[T any](t *testing.T, data []byte) {
	t.Helper()
	var fast T
	if gojson.Unmarshal(data, &fast) != nil {
		return // encoding/json decides (unmarshal)
	}
	var std T
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("%T: goccy/go-json accepts what encoding/json refuses (%v): %q", std, err, data)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%T: decoded differently from %q:\nfast %#v\nstd  %#v", std, data, fast, std)
	}
}

func agree(t *testing.T, data []byte) {
	t.Helper()
	agreeAs[envelope](t, data)
	agreeAs[map[string]json.RawMessage](t, data)
	agreeAs[jobFields](t, data)
	agreeAs[heartbeatFields](t, data)
}

// seeds are the fixtures' envelopes, their payloads and their variants'
// bodies: the three levels the decoder unmarshals.
func seeds(t testing.TB) [][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("fixtures: %v (%d)", err, len(paths))
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		var env envelope
		if json.Unmarshal(b, &env) != nil || env.Payload == nil {
			continue
		}
		out = append(out, []byte(*env.Payload))
		var tagged map[string]json.RawMessage
		if json.Unmarshal([]byte(*env.Payload), &tagged) != nil {
			continue
		}
		for _, v := range tagged {
			out = append(out, v)
		}
	}
	return out
}

// TestFastAgreesOnCorners: on the fixtures and on ill-formed or oddly
// formed JSON (case-folded and duplicate names, nulls, wrong types, bad
// times and numbers), goccy/go-json either refuses (and encoding/json
// decides) or decodes as encoding/json does.
func TestFastAgreesOnCorners(t *testing.T) {
	corners := []string{
		``, `null`, `[]`, `"x"`, `{`, `{}`, `{"payload":"x"`, `{"payload":"x"}x`, `{"payload":"x",}`, `{,}`, "\xef\xbb\xbf{}",
		`{"payload":"a\"b"}`, `{"payload":"\u00e9"}`, "{\"payload\":\"a\x01\"}", "{\"payload\":\"\xff\"}",
		`{"Payload":"x"}`, `{"PAYLOAD":"x","payload":"y"}`, `{"payload":"x","payload":null}`, `{"payload":null}`,
		`{"payload":1}`, `{"payload":{}}`, `{"created_at":5}`, `{"created_at":"yesterday"}`, `{"created_at":null}`,
		`{"created_at":"2026-01-19T10:00:00Z","created_at":"2026-01-19T11:00:00+02:00"}`,
		`{"JobQueued":{}}`, `{"JobQueued":{},"JobQueued":1}`, `{"A":1,"B":2}`, `{"A":01}`, `{"A":1.}`, `{"A":[1,]}`,
		`{"job_id":"j","JOB_ID":"k"}`, `{"job_id":1}`, `{"job_id":null}`, `{"occurred_at":"2026-01-19T10:00:00.123456789Z"}`,
		`{"job_requirements":{"resources":{"cpu_cores":"2"}}}`, `{"job_requirements":{"resources":{"memory_mb":1.5}}}`,
		`{"job_requirements":{"resources":{"memory_mb":9223372036854775808}}}`, `{"job_requirements":{"resources":{"cpu_cores":1e400}}}`,
		`{"job_requirements":{"preferences":{"required_labels":{"a":null}}}}`, `{"job_requirements":{"preferences":{"required_labels":{"a":1}}}}`,
		`{"job_requirements":{"preferences":{"required_labels":{"a":"1"},"required_labels":{"b":"2"}}}}`,
		`{"spec":null,"job_requirements":[]}`, `{"worker_id":"w","current_job_id":null}`, `{"x":"\x"}`, `{"x":"\u12"}`,
		"{\"\xc5\xbfpec\":{}}", // ſpec folds to spec
	}
	for _, c := range corners {
		agree(t, []byte(c))
	}
	for _, s := range seeds(t) {
		agree(t, s)
	}
}

// FuzzFastAgrees: the fast decoder accepts only what encoding/json
// accepts, and decodes it to the same value, for every type the decoder
// unmarshals.
func FuzzFastAgrees(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree(t, data)
	})
}
