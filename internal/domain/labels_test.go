package domain

import "testing"

func TestOwnedWorker(t *testing.T) {
	id := NewWorkerID()
	ours := WorkerLabels("me", "p", id)
	with := func(k, v string) map[string]string {
		l := map[string]string{}
		for a, b := range ours {
			l[a] = b
		}
		if v == "" {
			delete(l, k)
		} else {
			l[k] = v
		}
		return l
	}
	cases := []struct {
		name   string
		labels map[string]string
		ok     bool
	}{
		{"ours", ours, true},
		{"another owner", with(LabelOwner, "other"), false},
		{"another pool", with(LabelWorkerPool, "q"), false},
		{"not a worker", with(LabelWorker, "false"), false},
		{"no id", with(LabelWorkerID, ""), false},
		{"no labels", nil, false},
	}
	for _, c := range cases {
		got, ok := OwnedWorker(c.labels, "me", "p")
		if ok != c.ok || (ok && got != id) {
			t.Errorf("%s: OwnedWorker = %q, %v", c.name, got, ok)
		}
	}
}
