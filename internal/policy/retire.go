package policy

import "fmt"

// Retire reports whether a worker that has run jobsRun jobs and just
// became idle should be stopped (max_jobs_per_worker), with the reason.
// The policy replaces it on the next decision if demand needs it.
func Retire(s Settings, jobsRun int) (bool, string) {
	if s.MaxJobsPerWorker <= 0 || jobsRun < s.MaxJobsPerWorker {
		return false, ""
	}
	return true, fmt.Sprintf("retired after %d job(s): max_jobs_per_worker %d", jobsRun, s.MaxJobsPerWorker)
}
