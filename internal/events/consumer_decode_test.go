package events

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// fakeMsg is a jetstream.Msg with a subject, data and an ack reply
// subject (the other methods are not called by Consumer.decode).
type fakeMsg struct {
	jetstream.Msg
	subject, reply string
	data           []byte
}

func (m fakeMsg) Subject() string                           { return m.subject }
func (m fakeMsg) Reply() string                             { return m.reply }
func (m fakeMsg) Data() []byte                              { return m.data }
func (m fakeMsg) Headers() nats.Header                      { return nil }
func (m fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return nil, jetstream.ErrNotJSMessage }

// A delivery's type is the subject's, whether the event decodes (taken
// from the event's kind, which validate holds to the subject's) or not
// (parsed from the subject), and "unknown" on a subject that is not a
// job subject.
func TestConsumerDeliveryType(t *testing.T) {
	w := "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"
	c := &Consumer{Decoder: Decoder{Subjects: Subjects{Prefix: "hodei"}, MaxBytes: 1 << 16, Workers: NewInterner()}}
	reply := "$JS.ACK.HODEI_JOBS.c.1.7.7.1764700000000000000.0"
	for _, tc := range []struct {
		name, subject string
		data          []byte
		typ           string
		ok            bool
	}{
		{"queued", "hodei.jobs.p.queued", encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "j1", Pool: "p"}), domain.TypeJobQueued, true},
		{"started", "hodei.jobs.p.started", encoded(t, domain.TypeJobStarted, domain.JobData{JobID: "j1", Pool: "p", WorkerID: w}), domain.TypeJobStarted, true},
		{"finished", "hodei.jobs.p.finished", encoded(t, domain.TypeJobFinished, domain.JobData{JobID: "j1", Pool: "p", WorkerID: w, Outcome: "failed"}), domain.TypeJobFinished, true},
		{"wrong type for the subject", "hodei.jobs.p.finished", encoded(t, domain.TypeJobQueued, domain.JobData{JobID: "j1", Pool: "p"}), domain.TypeJobFinished, false},
		{"not JSON", "hodei.jobs.p.started", []byte("{"), domain.TypeJobStarted, false},
		{"not a job subject", "hodei.other.p.started", encoded(t, domain.TypeJobStarted, domain.JobData{JobID: "j1", Pool: "p", WorkerID: w}), "unknown", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := c.decode(fakeMsg{subject: tc.subject, reply: reply, data: tc.data})
			if d.Type != tc.typ {
				t.Errorf("type %q, want %q", d.Type, tc.typ)
			}
			if (d.Err == nil) != tc.ok {
				t.Errorf("error %v, want ok %v", d.Err, tc.ok)
			}
			if tc.ok && (d.Event.Kind.Type() != tc.typ || d.Seq != 7) {
				t.Errorf("event %+v seq %d", d.Event, d.Seq)
			}
		})
	}
}
