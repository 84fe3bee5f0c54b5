package lease

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// KV is the part of a JetStream key-value bucket the lease layer uses:
// create-if-absent, revision-checked update and delete, read, and watch.
// jetstream.KeyValue satisfies it.
type KV interface {
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

var _ KV = jetstream.KeyValue(nil)

// DefaultBucket is the bucket's name unless configured otherwise.
const DefaultBucket = "hodei_autoscaler_leases"

// OpenBucket creates the lease bucket (one value per key, file storage,
// replicated over replicas servers, no expiry: a lease ends when its
// session does, never by the server's clock) or binds to the one that
// exists, whatever its settings.
func OpenBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "hodei-autoscaler replica sessions and per-pool leases",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("opening lease bucket %s: %w", name, err)
	}
	return kv, nil
}

// isConflict reports whether a bucket call failed its revision check (or
// found the key already there), as opposed to failing to get an answer.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSequence(err)
}

// isWrongLastSequence catches a revision check refused by the server in
// any of its spellings (a Delete with LastRevision is not mapped to
// ErrKeyRevisionMismatch by the client).
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// entryOf turns a bucket entry into the view's Entry.
func entryOf(e jetstream.KeyValueEntry) Entry {
	return Entry{Key: e.Key(), Revision: e.Revision(), Value: e.Value(),
		Deleted: e.Operation() == jetstream.KeyValueDelete || e.Operation() == jetstream.KeyValuePurge}
}
