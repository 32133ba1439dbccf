package measures

import (
	"strconv"
	"time"
)

// date is a FHIR date or dateTime cut to the precision it was written with
// (year, month or day; times are read to the day: statistics never need
// them).
type date struct {
	y, m, d int
	prec    int // 1 year, 2 month, 3 day
}

// parseDate reads YYYY, YYYY-MM, YYYY-MM-DD and dateTimes (their date part).
func parseDate(s string) (date, bool) {
	if len(s) < 4 {
		return date{}, false
	}
	y, err := strconv.Atoi(s[:4])
	if err != nil || y < 1 {
		return date{}, false
	}
	if len(s) == 4 {
		return date{y: y, prec: 1}, true
	}
	if len(s) < 7 || s[4] != '-' {
		return date{}, false
	}
	m, err := strconv.Atoi(s[5:7])
	if err != nil || m < 1 || m > 12 {
		return date{}, false
	}
	if len(s) == 7 {
		return date{y: y, m: m, prec: 2}, true
	}
	if len(s) < 10 || s[7] != '-' {
		return date{}, false
	}
	d, err := strconv.Atoi(s[8:10])
	if err != nil || d < 1 || d > daysIn(y, m) {
		return date{}, false
	}
	if len(s) > 10 && s[10] != 'T' {
		return date{}, false
	}
	return date{y: y, m: m, d: d, prec: 3}, true
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// DateOf returns the date of t (UTC) at day precision.
func dateOf(t time.Time) date {
	t = t.UTC()
	return date{y: t.Year(), m: int(t.Month()), d: t.Day(), prec: 3}
}

// compare orders two dates at their common precision: -1, 0 or 1. Equal at
// the common precision counts as equal (a diagnosis in "2025-03" is within
// a period ending 2025-03-31): README.md says so, where FHIRPath would
// answer empty.
func (a date) compare(b date) int {
	p := min(a.prec, b.prec)
	av := [3]int{a.y, a.m, a.d}
	bv := [3]int{b.y, b.m, b.d}
	for i := 0; i < p; i++ {
		switch {
		case av[i] < bv[i]:
			return -1
		case av[i] > bv[i]:
			return 1
		}
	}
	return 0
}

// add moves a date by a calendar duration, keeping its precision. A day
// that does not exist in the target month is clamped to its last day.
func (a date) add(q quantity, sign int) date {
	n := q.n * sign
	switch q.unit {
	case "year":
		a.y += n
	case "month":
		if a.prec < 2 {
			a.y += n / 12
			return a
		}
		t := a.m - 1 + n
		a.y += floorDiv(t, 12)
		a.m = t - floorDiv(t, 12)*12 + 1
	case "week", "day":
		if q.unit == "week" {
			n *= 7
		}
		if a.prec < 3 {
			return a
		}
		t := time.Date(a.y, time.Month(a.m), a.d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n)
		a.y, a.m, a.d = t.Year(), int(t.Month()), t.Day()
		return a
	}
	if a.prec == 3 && a.d > daysIn(a.y, a.m) {
		a.d = daysIn(a.y, a.m)
	}
	return a
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// YearsBetween is the age in whole years at `at` of someone born on b
// (false when b is not precise enough to say).
func yearsBetween(b, at date) (int, bool) {
	if b.prec < 1 {
		return 0, false
	}
	years := at.y - b.y
	switch {
	case b.prec == 1:
		// Born some time in the year: the age is one of two values; the
		// lower one is used only when the day cannot change it.
		if at.m == 12 && at.d == 31 {
			return years, true
		}
		return years - 1, true
	case b.prec == 2:
		if at.m < b.m || (at.m == b.m && at.d < daysIn(b.y, b.m)) {
			years--
		}
	default:
		if at.m < b.m || (at.m == b.m && at.d < b.d) {
			years--
		}
	}
	return years, true
}
