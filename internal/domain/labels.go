package domain

// Labels every worker carries (Docker container labels, Kubernetes pod
// labels). They are part of the public contract.
const (
	LabelWorker     = "hodei.worker"      // always "true"
	LabelWorkerID   = "hodei.worker.id"   // the WorkerID
	LabelWorkerPool = "hodei.worker.pool" // the PoolName
	LabelOwner      = "hodei.autoscaler"  // the autoscaler's configured name
	// LabelWorkerTier names the pool's provider tier a worker runs on
	// (only on workers of pools with tiers).
	LabelWorkerTier = "hodei.worker.tier"
)

// OwnedTierWorker is OwnedWorker for the provider of one tier of a pool:
// with tier set, only workers labelled with it are the provider's.
func OwnedTierWorker(labels map[string]string, owner string, pool PoolName, tier string) (WorkerID, bool) {
	id, ok := OwnedWorker(labels, owner, pool)
	if !ok || (tier != "" && labels[LabelWorkerTier] != tier) {
		return "", false
	}
	return id, true
}

// TierWorkerLabels are WorkerLabels plus the tier label when tier is set.
func TierWorkerLabels(owner string, pool PoolName, id WorkerID, tier string) map[string]string {
	l := WorkerLabels(owner, pool, id)
	if tier != "" {
		l[LabelWorkerTier] = tier
	}
	return l
}

// Environment variables every worker gets.
const (
	EnvWorkerID    = "HODEI_WORKER_ID"
	EnvWorkerPool  = "HODEI_WORKER_POOL"
	EnvWorkerSlots = "HODEI_WORKER_SLOTS" // jobs the worker may run at once (jobs_per_worker)
)

// WorkerLabels returns the ownership labels for a worker.
func WorkerLabels(owner string, pool PoolName, id WorkerID) map[string]string {
	return map[string]string{
		LabelWorker:     "true",
		LabelWorkerID:   string(id),
		LabelWorkerPool: string(pool),
		LabelOwner:      owner,
	}
}

// OwnedWorker reports whether labels mark a worker of owner and pool, and
// returns its id: the ownership test every provider applies before it
// lists, stops or deletes anything.
func OwnedWorker(labels map[string]string, owner string, pool PoolName) (WorkerID, bool) {
	if labels[LabelWorker] != "true" || labels[LabelOwner] != owner || labels[LabelWorkerPool] != string(pool) {
		return "", false
	}
	id := labels[LabelWorkerID]
	if id == "" {
		return "", false
	}
	return WorkerID(id), true
}
