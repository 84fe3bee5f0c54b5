package lease

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestKeys(t *testing.T) {
	k, err := NewKeys("hodei.prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		kind keyKind
		id   string
	}{
		{k.Session("node-1.example.com"), keySession, "node-1.example.com"},
		{k.Session("a=b"), keySession, "a=b"},
		{k.Exclusive(), keyExclusive, ""},
		{k.Pool("linux-x64"), keyPool, "linux-x64"},
		{"hodei=2Eprod.pools.bad.name", keyOther, ""},
		{"hodei=2Eprod.replicas.=Z", keyOther, ""},
		{"other.pools.linux", keyOther, ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			// A dot in the name or a replica id does not add a subject token.
			if tc.kind != keyOther && !strings.HasPrefix(tc.key, "hodei=2Eprod.") || strings.Contains(tc.key, "..") {
				t.Errorf("key %q: the name is not one escaped token", tc.key)
			}
			kind, id := k.parse(tc.key)
			if kind != tc.kind || id != tc.id {
				t.Errorf("parse = %v %q, want %v %q", kind, id, tc.kind, tc.id)
			}
		})
	}
	if k.All() != "hodei=2Eprod.>" {
		t.Errorf("All = %q", k.All())
	}
	if _, err := NewKeys(""); err == nil {
		t.Error("empty name accepted")
	}
}

func TestDecodeRefusesIncompleteValues(t *testing.T) {
	for _, v := range []string{"", "{", `{"replica":"a"}`, `{"session":"s"}`} {
		if _, err := decodeSession([]byte(v)); err == nil {
			t.Errorf("session %q decoded", v)
		}
		if _, err := decodeHolding([]byte(v)); err == nil {
			t.Errorf("holding %q decoded", v)
		}
	}
}

func TestConflictErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{jetstream.ErrKeyExists, true},
		{jetstream.ErrKeyRevisionMismatch, true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}, true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamNotFound}, false},
		{jetstream.ErrNoStreamResponse, false},
	} {
		if got := isConflict(tc.err); got != tc.want {
			t.Errorf("isConflict(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestProcessSucceeds(t *testing.T) {
	me := Process{Host: "h", PID: 10, PIDNS: "pid:[1]"}
	dead := func(int) bool { return false }
	alive := func(int) bool { return true }
	for _, tc := range []struct {
		name    string
		s       Session
		running func(int) bool
		want    bool
	}{
		{"my own pid in my namespace: an earlier run", Session{Host: "h", PID: 10, PIDNS: "pid:[1]"}, alive, true},
		{"a pid nobody has in my namespace", Session{Host: "h", PID: 11, PIDNS: "pid:[1]"}, dead, true},
		{"a running pid", Session{Host: "h", PID: 11, PIDNS: "pid:[1]"}, alive, false},
		{"another pid namespace (a restarted container)", Session{Host: "h", PID: 10, PIDNS: "pid:[2]"}, dead, false},
		{"another host", Session{Host: "g", PID: 10, PIDNS: "pid:[1]"}, dead, false},
		{"no namespace recorded", Session{Host: "h", PID: 10}, dead, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := me.succeeds(tc.s, tc.running); got != tc.want {
				t.Errorf("succeeds = %v, want %v", got, tc.want)
			}
		})
	}
	if (Process{Host: "h", PID: 1}).succeeds(Session{Host: "h", PID: 1}, dead) {
		t.Error("a process whose namespace is unknown trusts a pid check")
	}
	if !pidRunning(ThisProcess().PID) {
		t.Error("this process does not look running")
	}
}
