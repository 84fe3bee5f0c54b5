package events

import (
	"strings"
	"time"
)

// ackMeta is the part of a JetStream message's metadata the consumer
// uses: its stream sequence, when the stream stored it, and how many
// messages follow it.
type ackMeta struct {
	seq     uint64
	stored  time.Time
	pending uint64
}

// parseAckReply reads ackMeta from a message's reply subject, as
// jetstream.Msg.Metadata does, without the struct Metadata allocates
// for every message (a tenth of the consumer's allocations when folding
// the stream). It reports false on anything but the two forms the
// server writes,
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//	$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>...]
//
// and then the consumer asks Metadata, which decides.
// TestParseAckReplyAgreesWithMetadata and FuzzParseAckReply hold it to
// Metadata's result.
func parseAckReply(reply string) (ackMeta, bool) {
	const prefix = "$JS.ACK."
	rest, ok := strings.CutPrefix(reply, prefix)
	if !ok {
		return ackMeta{}, false
	}
	// The tokens after $JS.ACK: 7 in the first form, 9 or more in the
	// second, of which the numbers are the last 5 of the first 9.
	var tok [9]string
	n := 0
	for n < len(tok) {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tok[n] = rest
			n++
			rest = ""
			break
		}
		tok[n], rest = rest[:i], rest[i+1:]
		n++
	}
	var nums []string
	switch {
	case n == 7 && rest == "":
		nums = tok[2:7]
	case n == 9:
		nums = tok[4:9]
	default:
		return ackMeta{}, false
	}
	// nums: delivered, sseq, cseq, tm, pending.
	return ackMeta{
		seq:     ackNum(nums[1]),
		stored:  time.Unix(0, int64(ackNum(nums[3]))),
		pending: ackNum(nums[4]),
	}, true
}

// ackNum is a decimal token of the reply subject; 0 for any other text
// (as Metadata reads it, overflow unchecked).
func ackNum(s string) uint64 {
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
