package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ClaimsBucket is the JetStream key-value bucket where a worker claims a
// job before it runs it (docs/operations.md, no job run twice).
const ClaimsBucket = "HODEI_CLAIMS"

// claimTTL is how long a claim is kept: longer than any redelivery of the
// job can come (the job stream keeps messages 7 days by default).
const claimTTL = 8 * 24 * time.Hour

// errClaimed reports a job that has already run.
var errClaimed = errors.New("job already claimed")

// claimKey is the key of a job's claim: job ids are any UTF-8 (up to 256
// bytes) and keys are not, so the key is a digest of the id.
func claimKey(pool, jobID string) string {
	sum := sha256.Sum256([]byte(jobID))
	return pool + "." + hex.EncodeToString(sum[:16])
}

// claims opens (or creates) the bucket.
func (w *worker) claims(ctx context.Context) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := w.js.KeyValue(cctx, ClaimsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = w.js.CreateKeyValue(cctx, jetstream.KeyValueConfig{
			Bucket: ClaimsBucket, Description: "hodei jobs claimed by a worker before they run",
			TTL: claimTTL, History: 1, Storage: jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another worker won
			kv, err = w.js.KeyValue(cctx, ClaimsBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening claims bucket %s: %w", ClaimsBucket, err)
	}
	return kv, nil
}

// A claim's value is "run:<worker>" while the job runs, refreshed with
// every ack-deadline extension, then "done:<worker>". A redelivery finds
// "done" (not run again: acknowledged), a fresh "run" (another worker runs
// it: handed back for later), or a "run" not refreshed for staleClaim (its
// worker died mid-job: taken over with a compare-and-set, and run).

// staleAfter is how long an unrefreshed running claim is believed.
func (w *worker) staleAfter() time.Duration { return 2 * w.s.AckWait }

// errBusyElsewhere reports a job another live worker runs.
var errBusyElsewhere = errors.New("job runs on another worker")

// claim takes job jobID for this worker and returns the claim's revision.
func (w *worker) claim(jobID string) (uint64, error) {
	kv, err := w.claimsBucket()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := claimKey(w.s.Pool, jobID)
	mine := []byte("run:" + w.s.WorkerID)
	rev, err := kv.Create(ctx, key, mine)
	if !errors.Is(err, jetstream.ErrKeyExists) {
		if err != nil {
			return 0, fmt.Errorf("claiming job %s: %w", jobID, err)
		}
		return rev, nil
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("reading the claim of job %s: %w", jobID, err)
	}
	v := string(e.Value())
	switch {
	case strings.HasPrefix(v, "done:"):
		return 0, fmt.Errorf("%w (it ran on worker %s)", errClaimed, strings.TrimPrefix(v, "done:"))
	case v == string(mine) && !w.run.has(jobID):
		// Our own claim of a run that never began (its create answered
		// after a timeout, say): ours to take at once.
	case time.Since(e.Created()) < w.staleAfter():
		return 0, fmt.Errorf("%w: %s", errBusyElsewhere, strings.TrimPrefix(v, "run:"))
	}
	rev, err = kv.Update(ctx, key, mine, e.Revision())
	if err != nil {
		return 0, fmt.Errorf("%w: taking over the claim lost the race: %v", errBusyElsewhere, err)
	}
	if v != string(mine) {
		w.log.Printf("job %s: claim of %s not refreshed for %s: taken over", jobID, v, w.staleAfter())
	}
	return rev, nil
}

// release gives up a claim whose run never began (its started could not
// be published), so the job's next delivery runs at once on any worker
// rather than after staleAfter. It deletes only the revision we wrote.
func (w *worker) release(jobID string, rev uint64) {
	kv, err := w.claimsBucket()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := kv.Delete(ctx, claimKey(w.s.Pool, jobID), jetstream.LastRevision(rev)); err != nil {
		w.log.Printf("job %s: releasing the claim: %v (another worker takes it over after %s)", jobID, err, w.staleAfter())
	}
}

// claimsBucket opens the bucket at the first claim (slots claim at once).
func (w *worker) claimsBucket() (jetstream.KeyValue, error) {
	w.kvMu.Lock()
	defer w.kvMu.Unlock()
	if w.kv == nil {
		kv, err := w.claims(context.Background())
		if err != nil {
			return nil, err
		}
		w.kv = kv
	}
	return w.kv, nil
}

// refresh renews a running claim; it returns the new revision.
func (w *worker) refresh(jobID string, rev uint64) uint64 {
	kv, err := w.claimsBucket()
	if err != nil {
		return rev
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := kv.Update(ctx, claimKey(w.s.Pool, jobID), []byte("run:"+w.s.WorkerID), rev)
	if err != nil {
		w.log.Printf("job %s: refreshing the claim: %v", jobID, err)
		return rev
	}
	return n
}

// done marks the claim of a job that has run.
func (w *worker) done(jobID string) {
	kv, err := w.claimsBucket()
	if err != nil {
		w.log.Printf("job %s: marking the claim done: %v", jobID, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kv.Put(ctx, claimKey(w.s.Pool, jobID), []byte("done:"+w.s.WorkerID)); err != nil {
		w.log.Printf("job %s: marking the claim done: %v", jobID, err)
	}
}
