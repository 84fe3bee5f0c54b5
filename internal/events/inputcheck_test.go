package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

// rawQueued is a queued event whose job_id is written as is (raw bytes or
// JSON escapes), without encoding/json touching it.
func rawQueued(jobID string) []byte {
	return []byte(`{"specversion":"1.0","id":"e1","source":"s","type":"hodei.job.queued","time":"` + decTime + `","data":{"job_id":"` + jobID + `"}}`)
}

// TestDecodeJobIDText: invalid UTF-8, in raw bytes or as an escaped lone
// surrogate, is refused with its own reason and never rewritten to
// U+FFFD; control characters are refused; what is valid keeps every byte.
func TestDecodeJobIDText(t *testing.T) {
	cases := []struct {
		name   string
		jobID  string // as written inside the JSON string
		reason string // "" when accepted
		want   string // the decoded id, when accepted
	}{
		{"raw 0xff", "bad-\xff", domain.ReasonInvalidUTF8, ""},
		{"raw 0xfe", "bad-\xfe", domain.ReasonInvalidUTF8, ""},
		{"truncated sequence", "bad-\xe2\x82", domain.ReasonInvalidUTF8, ""},
		{"overlong encoding", "bad-\xc0\xaf", domain.ReasonInvalidUTF8, ""},
		{"lone low surrogate escape", `bad-\udcff`, domain.ReasonInvalidUTF8, ""},
		{"lone high surrogate escape", `bad-\ud800x`, domain.ReasonInvalidUTF8, ""},
		{"high then non-low escape", `bad-\ud800\u0041`, domain.ReasonInvalidUTF8, ""},
		{"control character escape", `bad-\u0007`, domain.ReasonBadJobID, ""},
		{"newline escape", `bad\n`, domain.ReasonBadJobID, ""},
		{"C1 control", "bad-\u0085", domain.ReasonBadJobID, ""},
		{"257 bytes", strings.Repeat("j", 257), domain.ReasonMissingJobID, ""},
		{"valid surrogate pair", `ok-\ud83d\ude00`, "", "ok-\U0001F600"},
		{"escaped backslash then u", `ok-\\udcff`, "", `ok-\udcff`},
		{"literal U+FFFD is a character like any", "ok-\uFFFD", "", "ok-\uFFFD"},
		{"multibyte", "ok-ñ-日本", "", "ok-ñ-日本"},
		{"256 bytes of multibyte", strings.Repeat("ñ", 128), "", strings.Repeat("ñ", 128)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := decoderUnderTest.Decode("hodei.jobs.a.queued", rawQueued(c.jobID))
			if got := domain.ReasonOf(err); got != c.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, c.reason)
			}
			if c.reason == "" && string(ev.JobID) != c.want {
				t.Fatalf("job id %q, want %q", ev.JobID, c.want)
			}
		})
	}
	// Two ids that encoding/json would both turn into "bad-\ufffd".
	_, e1 := decoderUnderTest.Decode("hodei.jobs.a.queued", rawQueued("bad-\xff"))
	_, e2 := decoderUnderTest.Decode("hodei.jobs.a.queued", rawQueued("bad-\xfe"))
	if e1 == nil || e2 == nil {
		t.Fatal("an invalid UTF-8 job id was accepted")
	}
}

// TestValidateJobIDIsTheDecodersRule: the decoder refuses exactly the ids
// that domain.ValidateJobID refuses (the rule the example worker uses).
func TestValidateJobIDIsTheDecodersRule(t *testing.T) {
	for _, id := range []string{"j", "", strings.Repeat("x", 256), strings.Repeat("x", 257), "a\tb", "a\x7fb", "é", "a\u2028b"} {
		want := domain.ReasonOf(domain.ValidateJobID(id))
		_, err := decoderUnderTest.Decode("hodei.jobs.a.queued", decJSON(t, decEvent("hodei.job.queued", map[string]any{"job_id": id})))
		if got := domain.ReasonOf(err); got != want {
			t.Errorf("job id %q: decoder reason %q, ValidateJobID %q", id, got, want)
		}
	}
}

// TestCheckTime: an event time further ahead of the stream's clock than
// the allowance is refused with future_time; within it, or with the
// check off, it passes.
func TestCheckTime(t *testing.T) {
	stored := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		skew   time.Duration
		ahead  time.Duration
		reason string
	}{
		{"ten years ahead", 5 * time.Minute, 10 * 365 * 24 * time.Hour, domain.ReasonFutureTime},
		{"just past the allowance", 5 * time.Minute, 5*time.Minute + time.Millisecond, domain.ReasonFutureTime},
		{"at the allowance", 5 * time.Minute, 5 * time.Minute, ""},
		{"in the past", 5 * time.Minute, -time.Hour, ""},
		{"check off", 0, 10 * 365 * 24 * time.Hour, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := events.Decoder{MaxClockSkew: c.skew}
			err := d.CheckTime(domain.JobEvent{Time: stored.Add(c.ahead), Stored: stored})
			if got := domain.ReasonOf(err); got != c.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, c.reason)
			}
		})
	}
	if err := (events.Decoder{MaxClockSkew: time.Minute}).CheckTime(domain.JobEvent{Stored: stored}); err != nil {
		t.Fatalf("an event without a time: %v", err)
	}
}
