package domain

import (
	"testing"

	"github.com/google/uuid"
)

func TestValidatePoolName(t *testing.T) {
	for name, ok := range map[string]bool{
		"default": true, "linux-small": true, "gpu_2": true, "A": true, "a1-b2_c3": true,
		"": false, "-a": false, "a-": false, "_a": false, "a_": false, "a.b": false, "a b": false,
		"a*": false, "a>": false, "ñ": false,
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123":  true,
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234": false,
	} {
		if err := ValidatePoolName(name); (err == nil) != ok {
			t.Errorf("ValidatePoolName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

func TestParseWorkerID(t *testing.T) {
	id := NewWorkerID()
	if got, err := ParseWorkerID(string(id)); err != nil || got != id {
		t.Fatalf("ParseWorkerID(%s) = %s, %v", id, got, err)
	}
	for _, bad := range []string{"", "x", "6F202991-7F6F-4A15-ACA0-64246043ED42", "{6f202991-7f6f-4a15-aca0-64246043ed42}", "urn:uuid:6f202991-7f6f-4a15-aca0-64246043ed42"} {
		if _, err := ParseWorkerID(bad); err == nil {
			t.Errorf("ParseWorkerID(%q) accepted", bad)
		}
	}
	if WorkerName(id) != "hodei-worker-"+string(id) {
		t.Errorf("WorkerName = %s", WorkerName(id))
	}
}

// canonicalByUUID is the rule as the uuid package states it: what parses
// and prints back unchanged.
func canonicalByUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

func TestParseWorkerIDAgreesWithUUID(t *testing.T) {
	good := "6f202991-7f6f-4a15-aca0-64246043ed42"
	cases := []string{good, "", good[:35], good + "0", "6f202991x7f6f-4a15-aca0-64246043ed42",
		"6f2029917f6f-4a15-aca0-64246043ed42-", "00000000-0000-0000-0000-000000000000",
		"6f202991-7f6f-4a15-aca0-64246043ed4g", "6f202991-7f6f-4a15-aca0-64246043ed4G",
		"6F202991-7f6f-4a15-aca0-64246043ed42", "6f202991-7f6f-4a15-aca0-64246043ed\xff2"}
	// Every byte in every position of a canonical id.
	for i := range len(good) {
		for c := range 256 {
			b := []byte(good)
			b[i] = byte(c)
			cases = append(cases, string(b))
		}
	}
	for _, s := range cases {
		_, err := ParseWorkerID(s)
		if want := canonicalByUUID(s); (err == nil) != want {
			t.Errorf("ParseWorkerID(%q) err %v, the uuid package says canonical %v", s, err, want)
		}
	}
}

func FuzzParseWorkerIDAgreesWithUUID(f *testing.F) {
	f.Add("6f202991-7f6f-4a15-aca0-64246043ed42")
	f.Add("urn:uuid:6f202991-7f6f-4a15-aca0-64246043ed42")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ParseWorkerID(s); (err == nil) != canonicalByUUID(s) {
			t.Errorf("ParseWorkerID(%q) err %v, the uuid package disagrees", s, err)
		}
	})
}

func BenchmarkParseWorkerID(b *testing.B) {
	id := string(NewWorkerID())
	for b.Loop() {
		if _, err := ParseWorkerID(id); err != nil {
			b.Fatal(err)
		}
	}
}
