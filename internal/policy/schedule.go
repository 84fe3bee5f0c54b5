package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Schedule is a recurring window of wall-clock time in a time zone that
// overrides min_workers and the warm buffer while it is active. Of several
// active schedules the last one wins, as in GitLab Runner's autoscaler
// periods.
//
// The window is compared with the wall clock of Location, so it follows
// daylight-saving changes: 08:00-18:00 in Europe/Madrid starts at 07:00 UTC
// in winter and 06:00 UTC in summer. On the day the clocks go forward a
// window lasts an hour less if it spans the skipped hour (and a window
// inside it does not happen); on the day they go back it lasts an hour
// more if it spans the repeated hour.
type Schedule struct {
	Name string
	// Days the window starts on; all false means every day.
	Days [7]bool // indexed by time.Weekday
	// Start and End are wall-clock offsets from midnight (0 to 24h). An End
	// not after Start means the window ends the next day (22:00-06:00).
	Start, End time.Duration
	Location   *time.Location // UTC if nil

	// MinWorkers, when set, replaces min_workers.
	MinWorkers *int
	// IdleWorkers, when set, replaces idle_workers; IdleAuto selects auto.
	IdleWorkers *int
	IdleAuto    bool
}

func (c Schedule) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

func (c Schedule) on(d time.Weekday) bool {
	return c.Days == [7]bool{} || c.Days[d]
}

// Active reports whether the window contains now.
func (c Schedule) Active(now time.Time) bool {
	lt := now.In(c.loc())
	wall := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute +
		time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	day := lt.Weekday()
	if c.Start < c.End {
		return c.on(day) && wall >= c.Start && wall < c.End
	}
	// Crosses midnight (or lasts a whole day when Start == End).
	return (c.on(day) && wall >= c.Start) || (c.on((day+6)%7) && wall < c.End)
}

func (c Schedule) String() string {
	var days []string
	if c.Days != [7]bool{} {
		for d, on := range c.Days {
			if on {
				days = append(days, strings.ToLower(time.Weekday(d).String()[:3]))
			}
		}
	}
	return fmt.Sprintf("%s %s %s-%s %s", c.Name, strings.Join(days, ","), clock(c.Start), clock(c.End), c.loc())
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

// effective are the settings in force at one instant.
type effective struct {
	min      int
	idle     int
	auto     bool
	schedule string
}

func (e effective) from() string {
	if e.schedule == "" {
		return ""
	}
	return fmt.Sprintf(" (schedule %q)", e.schedule)
}

func (s Settings) effective(now time.Time) effective {
	e := effective{min: s.MinWorkers, idle: s.IdleWorkers, auto: s.IdleAuto}
	for i := len(s.Schedules) - 1; i >= 0; i-- {
		c := s.Schedules[i]
		if !c.Active(now) {
			continue
		}
		e.schedule = c.Name
		if c.MinWorkers != nil {
			e.min = *c.MinWorkers
		}
		switch {
		case c.IdleAuto:
			e.auto = true
		case c.IdleWorkers != nil:
			e.idle, e.auto = *c.IdleWorkers, false
		}
		break
	}
	return e
}

// nextScheduleChange is the first instant after now, within eight days,
// at which the effective settings change; zero if none.
//
// Candidates are every window's start and end on the wall clock of each
// day, each of their occurrences when the clocks go back (the same wall
// time twice), and the daylight-saving transitions themselves (where a
// wall time that does not exist takes effect). Days are taken in order
// and the search stops at the first change, so the usual cost is a day or
// two of candidates.
func nextScheduleChange(cs []Schedule, now time.Time) time.Time {
	s := Settings{Schedules: cs}
	cur := s.effective(now)
	var cands []time.Time
	add := func(t time.Time) {
		if t.After(now) {
			cands = append(cands, t)
		}
	}
	done := 0 // candidates already checked
	for off := -1; off <= 8; off++ {
		var horizon time.Time // candidates before it are all known
		for _, c := range cs {
			loc := c.loc()
			y, m, d := now.In(loc).AddDate(0, 0, off).Date()
			if mid := time.Date(y, m, d, 0, 0, 0, 0, loc).Add(-time.Hour); horizon.IsZero() || mid.Before(horizon) {
				horizon = mid
			}
			for _, w := range []time.Duration{c.Start, c.End} {
				h, mi, sec := int(w/time.Hour), int(w/time.Minute)%60, int(w/time.Second)%60
				t := time.Date(y, m, d, h, mi, sec, 0, loc)
				add(t)
				// The same wall time an hour either side (clocks going back).
				for _, alt := range []time.Time{t.Add(-time.Hour), t.Add(time.Hour)} {
					if a := alt.In(loc); a.Hour() == t.Hour() && a.Minute() == t.Minute() && a.Day() == t.Day() {
						add(alt)
					}
				}
			}
			if _, end := time.Date(y, m, d, 12, 0, 0, 0, loc).ZoneBounds(); !end.IsZero() && end.Before(now.AddDate(0, 0, 10)) {
				add(end)
			}
		}
		last := off == 8 // every candidate is known
		slices.SortFunc(cands[done:], func(a, b time.Time) int { return a.Compare(b) })
		for ; done < len(cands) && (last || cands[done].Before(horizon)); done++ {
			if s.effective(cands[done]) != cur {
				return cands[done]
			}
		}
	}
	return time.Time{}
}
