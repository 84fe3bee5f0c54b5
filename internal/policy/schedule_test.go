package policy

import (
	"testing"
	"time"
	_ "time/tzdata"
)

func madrid(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func intp(n int) *int { return &n }

func weekdaysOnly() [7]bool {
	var d [7]bool
	for x := time.Monday; x <= time.Friday; x++ {
		d[x] = true
	}
	return d
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScheduleActive(t *testing.T) {
	loc := madrid(t)
	office := Schedule{Name: "office", Days: weekdaysOnly(), Start: 8 * time.Hour, End: 18 * time.Hour, Location: loc}
	night := Schedule{Name: "night", Start: 22 * time.Hour, End: 6 * time.Hour, Location: loc}
	fridayNight := Schedule{Name: "friday-night", Days: [7]bool{time.Friday: true}, Start: 22 * time.Hour, End: 2 * time.Hour, Location: loc}
	// 2026: clocks go forward on Sunday 29 March at 02:00 CET (to 03:00
	// CEST) and back on Sunday 25 October at 03:00 CEST (to 02:00 CET).
	skipped := Schedule{Name: "skipped-hour", Start: 2 * time.Hour, End: 3 * time.Hour, Location: loc}
	acrossGap := Schedule{Name: "across-gap", Start: 1 * time.Hour, End: 4 * time.Hour, Location: loc}
	repeated := Schedule{Name: "repeated-hour", Start: 2 * time.Hour, End: 3 * time.Hour, Location: loc}
	inUTC := Schedule{Name: "utc", Start: 9 * time.Hour, End: 10 * time.Hour}

	tests := []struct {
		name string
		c    Schedule
		at   string
		want bool
	}{
		{"winter: 08:00 CET is 07:00 UTC", office, "2026-03-27T07:00:00Z", true},
		{"winter: 06:59 UTC is before opening", office, "2026-03-27T06:59:59Z", false},
		{"summer: 08:00 CEST is 06:00 UTC", office, "2026-03-30T06:00:00Z", true},
		{"summer: 05:59 UTC is 07:59 CEST", office, "2026-03-30T05:59:00Z", false},
		{"summer: 18:00 CEST is 16:00 UTC, closed", office, "2026-03-30T16:00:00Z", false},
		{"summer: 15:59 UTC open", office, "2026-03-30T15:59:00Z", true},
		{"saturday closed", office, "2026-03-28T10:00:00Z", false},
		{"night window before midnight", night, "2026-01-10T22:30:00Z", true},
		{"night window after midnight", night, "2026-01-11T04:00:00Z", true},
		{"night window over by day", night, "2026-01-11T06:00:00Z", false},
		{"a day-restricted window spills into the next day", fridayNight, "2026-01-10T00:30:00Z", true}, // Saturday 01:30 CET
		{"but does not start on the next day", fridayNight, "2026-01-10T22:30:00Z", false},              // Saturday 23:30
		{"spring forward: 02:00-03:00 does not exist", skipped, "2026-03-29T01:00:00Z", false},          // 03:00 CEST
		{"spring forward: 01:30 CET is before it", skipped, "2026-03-29T00:30:00Z", false},
		{"spring forward: across the gap at 01:30 CET", acrossGap, "2026-03-29T00:30:00Z", true},
		{"spring forward: across the gap at 03:30 CEST", acrossGap, "2026-03-29T01:30:00Z", true},
		{"spring forward: across the gap ends at 04:00 CEST = 02:00 UTC", acrossGap, "2026-03-29T02:00:00Z", false},
		{"fall back: first 02:30 (CEST)", repeated, "2026-10-25T00:30:00Z", true},
		{"fall back: second 02:30 (CET)", repeated, "2026-10-25T01:30:00Z", true},
		{"fall back: 03:00 CET is after it", repeated, "2026-10-25T02:00:00Z", false},
		{"fall back: 01:59 CEST is before it", repeated, "2026-10-24T23:59:00Z", false},
		{"no zone means UTC", inUTC, "2026-10-25T09:30:00Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Active(utc(tt.at)); got != tt.want {
				t.Errorf("%s at %s (%s local): Active = %v, want %v", tt.c, tt.at, utc(tt.at).In(tt.c.loc()).Format("Mon 15:04 MST"), got, tt.want)
			}
		})
	}
}

// Real-time length of windows on the DST days: found by scanning minute by
// minute, so it checks Active and the zone rules together.
func TestScheduleDurationOnDSTDays(t *testing.T) {
	loc := madrid(t)
	tests := []struct {
		name string
		c    Schedule
		day  string
		want time.Duration
	}{
		{"spring forward: 01:00-04:00 lasts two hours", Schedule{Start: time.Hour, End: 4 * time.Hour, Location: loc}, "2026-03-29", 2 * time.Hour},
		{"spring forward: 02:00-03:00 never happens", Schedule{Start: 2 * time.Hour, End: 3 * time.Hour, Location: loc}, "2026-03-29", 0},
		{"fall back: 01:00-04:00 lasts four hours", Schedule{Start: time.Hour, End: 4 * time.Hour, Location: loc}, "2026-10-25", 4 * time.Hour},
		{"fall back: 02:00-03:00 happens twice", Schedule{Start: 2 * time.Hour, End: 3 * time.Hour, Location: loc}, "2026-10-25", 2 * time.Hour},
		{"an ordinary day: 08:00-18:00 lasts ten hours", Schedule{Start: 8 * time.Hour, End: 18 * time.Hour, Location: loc}, "2026-06-10", 10 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			day, _ := time.ParseInLocation(time.DateOnly, tt.day, loc)
			var got time.Duration
			for m := day; m.Before(day.AddDate(0, 0, 1)); m = m.Add(time.Minute) {
				if tt.c.Active(m) {
					got += time.Minute
				}
			}
			if got != tt.want {
				t.Errorf("active for %s, want %s", got, tt.want)
			}
		})
	}
}

func TestScheduleOverridesAndLastMatchWins(t *testing.T) {
	loc := madrid(t)
	s := Settings{MinWorkers: 0, MaxWorkers: 20, JobsPerWorker: 1, IdleWorkers: 1, Schedules: []Schedule{
		{Name: "office", Days: weekdaysOnly(), Start: 8 * time.Hour, End: 18 * time.Hour, Location: loc, MinWorkers: intp(4), IdleWorkers: intp(2)},
		{Name: "monday-rush", Days: [7]bool{time.Monday: true}, Start: 8 * time.Hour, End: 10 * time.Hour, Location: loc, MinWorkers: intp(10)},
		{Name: "lunch", Start: 13 * time.Hour, End: 14 * time.Hour, Location: loc, IdleAuto: true},
	}}
	tests := []struct {
		name      string
		at        string
		st        State
		want      int
		wantSched string
		wantWarm  int
		reason    string
	}{
		{name: "outside every window: the pool's own", at: "2026-03-28T10:00:00Z", st: State{Pending: 1}, want: 2, wantWarm: 1,
			reason: "desired 2 = pending 1 + running 0 + warm 1"},
		{name: "office hours: min 4 and warm 2", at: "2026-03-27T09:00:00Z", st: State{Pending: 1}, want: 4, wantSched: "office", wantWarm: 2,
			reason: `desired 4 = pending 1 + running 0 + warm 2 = 3, raised to min_workers 4 (schedule "office")`},
		{name: "office hours with demand above the minimum", at: "2026-03-27T09:00:00Z", st: State{Pending: 5}, want: 7, wantSched: "office", wantWarm: 2,
			reason: `desired 7 = pending 5 + running 0 + warm 2; schedule "office" active`},
		{name: "monday rush wins over office (listed later); warm stays the pool's", at: "2026-03-30T07:00:00Z", want: 10, wantSched: "monday-rush", wantWarm: 1},
		{name: "lunch switches to auto (nothing measured: warm 0)", at: "2026-03-27T12:30:00Z", want: 0, wantSched: "lunch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.st, s, utc(tt.at))
			if d.Desired != tt.want || d.Schedule != tt.wantSched || d.Warm != tt.wantWarm {
				t.Errorf("Desired %d schedule %q warm %d (reason %q), want %d %q %d", d.Desired, d.Schedule, d.Warm, d.Reason, tt.want, tt.wantSched, tt.wantWarm)
			}
			if tt.reason != "" && d.Reason != tt.reason {
				t.Errorf("Reason = %q\nwant     %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestScheduleRecheckAtNextBoundary(t *testing.T) {
	loc := madrid(t)
	office := []Schedule{{Name: "office", Days: weekdaysOnly(), Start: 8 * time.Hour, End: 18 * time.Hour, Location: loc, MinWorkers: intp(3)}}
	tests := []struct {
		name string
		cs   []Schedule
		now  string
		want string
	}{
		{"friday evening: the next change is monday 08:00 CEST, across the spring-forward weekend", office, "2026-03-27T18:00:00Z", "2026-03-30T06:00:00Z"},
		{"monday morning: closing at 18:00 CEST", office, "2026-03-30T06:00:00Z", "2026-03-30T16:00:00Z"},
		{"friday before fall back: monday 08:00 CET", office, "2026-10-23T17:00:00Z", "2026-10-26T07:00:00Z"},
		{"a window in the skipped hour: its effect begins at the jump, 03:00 CEST",
			[]Schedule{{Name: "w", Start: 2*time.Hour + 30*time.Minute, End: 5 * time.Hour, Location: loc, MinWorkers: intp(1)}},
			"2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z"},
		{"a window ending in the repeated hour ends at its first occurrence",
			[]Schedule{{Name: "w", Start: time.Hour, End: 2*time.Hour + 30*time.Minute, Location: loc, MinWorkers: intp(1)}},
			"2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z"},
		{"and starts again when the clock goes back to 02:00 (inside the window again)",
			[]Schedule{{Name: "w", Start: time.Hour, End: 2*time.Hour + 30*time.Minute, Location: loc, MinWorkers: intp(1)}},
			"2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z"},
		{"and ends at the second 02:30",
			[]Schedule{{Name: "w", Start: time.Hour, End: 2*time.Hour + 30*time.Minute, Location: loc, MinWorkers: intp(1)}},
			"2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Settings{MaxWorkers: 10, JobsPerWorker: 1, Schedules: tt.cs}
			d := Decide(State{}, s, utc(tt.now))
			if want := utc(tt.want); !d.RecheckAt.Equal(want) {
				t.Errorf("RecheckAt = %s, want %s", d.RecheckAt.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}
