package domain

import "testing"

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
