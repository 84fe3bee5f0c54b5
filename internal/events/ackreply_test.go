package events

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// metadataSays is what jetstream's Metadata reads from reply (the nats
// package's Metadata runs the same parser on the same subject).
func metadataSays(reply string) (ackMeta, bool) {
	md, err := (&nats.Msg{Reply: reply, Sub: &nats.Subscription{}}).Metadata()
	if err != nil {
		return ackMeta{}, false
	}
	return ackMeta{seq: md.Sequence.Stream, stored: md.Timestamp, pending: md.NumPending}, true
}

func TestParseAckReplyAgreesWithMetadata(t *testing.T) {
	tests := []struct {
		name, reply string
		ok          bool // parseAckReply takes it (else Metadata decides)
	}{
		{"v1", "$JS.ACK.HODEI_JOBS.c1.1.42.7.1764700000123456789.0", true},
		{"v1 pending", "$JS.ACK.HODEI_JOBS.c1.1.42.7.1764700000123456789.999", true},
		{"v2 with token", "$JS.ACK._.ACCHASH.HODEI_JOBS.OC_abc.1.1000000.1000000.1764700000123456789.0.r4nd0m", true},
		{"v2 domain", "$JS.ACK.hub.ACCHASH.HODEI_JOBS.OC_abc.3.17.17.1764700000000000000.12.tok", true},
		{"v2 without token", "$JS.ACK._.ACCHASH.HODEI_JOBS.OC_abc.1.5.5.1764700000000000000.3", true},
		{"v2 more tokens", "$JS.ACK._.H.S.C.1.5.5.1764700000000000000.3.t.u.v", true},
		{"empty tokens", "$JS.ACK.......", true},
		{"not a number", "$JS.ACK.S.C.1.4x2.7.17647.0", true},
		{"non-ASCII digit", "$JS.ACK.S.C.1.٤٢.7.17647.0", true},
		{"max uint64", "$JS.ACK.S.C.1.18446744073709551615.7.1.0", true},
		{"overflow", "$JS.ACK.S.C.1.99999999999999999999999.7.1.0", true},
		{"negative time", "$JS.ACK.S.C.1.5.7.18446744073709551615.0", true},
		{"eight tokens", "$JS.ACK.S.C.1.5.7.17647", false},
		{"ten tokens", "$JS.ACK.D.H.S.C.1.5.7.17647", false},
		{"no prefix", "$JS.NAK.S.C.1.5.7.17647.0", false},
		{"lower-case prefix", "$js.ack.S.C.1.5.7.17647.0", false},
		{"empty", "", false},
		{"inbox", "_INBOX.abc.def", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseAckReply(tt.reply)
			if ok != tt.ok {
				t.Fatalf("parseAckReply(%q) ok = %v, want %v", tt.reply, ok, tt.ok)
			}
			want, wantOK := metadataSays(tt.reply)
			if ok && (!wantOK || got.seq != want.seq || got.pending != want.pending || !got.stored.Equal(want.stored)) {
				t.Fatalf("parseAckReply(%q) = %+v, Metadata %+v (ok %v)", tt.reply, got, want, wantOK)
			}
		})
	}
}

// FuzzParseAckReply: what parseAckReply takes, Metadata takes and reads
// the same.
func FuzzParseAckReply(f *testing.F) {
	f.Add("$JS.ACK.HODEI_JOBS.c1.1.42.7.1764700000123456789.0")
	f.Add("$JS.ACK._.ACCHASH.HODEI_JOBS.OC_abc.1.1000000.1000000.1764700000123456789.0.r4nd0m")
	f.Add("$JS.ACK.D.H.S.C.1.5.7.17647")
	f.Fuzz(func(t *testing.T, reply string) {
		got, ok := parseAckReply(reply)
		if !ok {
			return
		}
		want, wantOK := metadataSays(reply)
		if !wantOK || got.seq != want.seq || got.pending != want.pending || !got.stored.Equal(want.stored) || got.stored.Location() != want.stored.Location() {
			t.Fatalf("parseAckReply(%q) = %+v, Metadata %+v (ok %v)", reply, got, want, wantOK)
		}
	})
}

// TestParseAckReplyAllocatesNothing: the consumer reads each message's
// metadata without an allocation.
func TestParseAckReplyAllocatesNothing(t *testing.T) {
	reply := "$JS.ACK._.ACCHASH.HODEI_JOBS.OC_abc.1.1000000.1000000.1764700000123456789.0.r4nd0m"
	var md ackMeta
	if n := testing.AllocsPerRun(100, func() { md, _ = parseAckReply(reply) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
	if md.seq != 1000000 {
		t.Fatalf("seq %d", md.seq)
	}
}
