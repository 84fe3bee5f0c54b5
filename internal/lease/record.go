package lease

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Session is the value of a replica's session key: who it is, and a
// renewal counter that changes the key's revision on every renewal. Other
// replicas judge a session alive by seeing its revision change.
type Session struct {
	Replica string    `json:"replica"`
	ID      string    `json:"session"` // new for every session, so a restarted replica's old holdings are void
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	PIDNS   string    `json:"pidns,omitempty"` // the pid namespace, so "pid not running" is only trusted in the same one
	Since   time.Time `json:"since"`
	TTLms   int64     `json:"ttl_ms"`
	Renewal uint64    `json:"renewal"`
	Ready   bool      `json:"ready"`
	// Pools is a fingerprint of the pool names the replica serves: pools
	// are only balanced between replicas that serve the same ones.
	Pools string `json:"pools"`
	// Exclusive marks the one daemon of its name with HA off.
	Exclusive bool `json:"exclusive,omitempty"`
}

// TTL is the lease TTL the holder works with.
func (s Session) TTL() time.Duration { return time.Duration(s.TTLms) * time.Millisecond }

// Describe names the holder for an operator: host, pid and since when.
func (s Session) Describe() string {
	since := s.Since.UTC().Format(time.RFC3339)
	if s.Exclusive {
		return fmt.Sprintf("host %q, pid %d, since %s", s.Host, s.PID, since)
	}
	return fmt.Sprintf("replica %q on host %q, pid %d, since %s", s.Replica, s.Host, s.PID, since)
}

// Holding is the value of a pool's lease key: the session that holds it.
// It is valid exactly as long as that session is. A holder giving a pool
// up to rebalance writes a Holding with no session and For naming the
// replica the pool goes to: nobody holds it, and for a renew interval only
// that replica takes it, so replicas whose views of the members differ for
// a moment do not grab it on the way.
type Holding struct {
	Replica string    `json:"replica,omitempty"`
	Session string    `json:"session,omitempty"`
	For     string    `json:"for,omitempty"`
	Since   time.Time `json:"since"`
}

func decodeSession(b []byte) (Session, error) {
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return Session{}, fmt.Errorf("decoding session: %w", err)
	}
	if s.Replica == "" || s.ID == "" {
		return Session{}, fmt.Errorf("decoding session: replica or session id missing")
	}
	return s, nil
}

func decodeHolding(b []byte) (Holding, error) {
	var h Holding
	if err := json.Unmarshal(b, &h); err != nil {
		return Holding{}, fmt.Errorf("decoding pool lease: %w", err)
	}
	if (h.Replica == "" || h.Session == "") && h.For == "" {
		return Holding{}, fmt.Errorf("decoding pool lease: replica or session id missing")
	}
	return h, nil
}

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil { // only a time outside years 0-9999 can do this
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return b, nil
}

// Keys names the bucket's keys for one autoscaler name:
//
//	<name>.replicas.<replica>   a replica's session (HA on)
//	<name>.exclusive            the session of the one daemon with HA off
//	<name>.pools.<pool>         a pool's lease
//
// Names and replica ids are escaped (=XX for any byte but letters, digits,
// '-' and '_'), so a dot in a host name does not make a new subject token.
type Keys struct{ prefix string }

// NewKeys returns the keys of one autoscaler name.
func NewKeys(name string) (Keys, error) {
	if name == "" {
		return Keys{}, fmt.Errorf("lease keys: the autoscaler name is empty")
	}
	return Keys{prefix: escape(name) + "."}, nil
}

// All matches every key of this name, for a watch.
func (k Keys) All() string { return k.prefix + ">" }

// Session is a replica's session key.
func (k Keys) Session(replica string) string { return k.prefix + "replicas." + escape(replica) }

// Exclusive is the HA-off daemon's session key.
func (k Keys) Exclusive() string { return k.prefix + "exclusive" }

// Pool is a pool's lease key (pool names are already subject tokens).
func (k Keys) Pool(p domain.PoolName) string { return k.prefix + "pools." + string(p) }

// keyKind is what a key names.
type keyKind int

const (
	keyOther keyKind = iota
	keySession
	keyExclusive
	keyPool
)

// parse says what a key names: a replica id, a pool, or the exclusive key.
func (k Keys) parse(key string) (keyKind, string) {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return keyOther, ""
	}
	switch {
	case rest == "exclusive":
		return keyExclusive, ""
	case strings.HasPrefix(rest, "replicas."):
		id, err := unescape(strings.TrimPrefix(rest, "replicas."))
		if err != nil || id == "" {
			return keyOther, ""
		}
		return keySession, id
	case strings.HasPrefix(rest, "pools."):
		p := strings.TrimPrefix(rest, "pools.")
		if domain.ValidatePoolName(p) != nil {
			return keyOther, ""
		}
		return keyPool, p
	}
	return keyOther, ""
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q: %w", s, err)
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), nil
}
