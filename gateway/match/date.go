package match

import (
	"errors"
	"fmt"
	"strconv"
)

// Date is a birth date as precise as it was recorded: a year, a year and
// month, or a full date. Zero fields are unknown.
type Date struct {
	Year, Month, Day int
}

// ErrDate is returned for a date that is not a FHIR date.
var ErrDate = errors.New("not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")

// ParseDate reads a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD) or the date part
// of a dateTime. The message of an error never quotes the value.
func ParseDate(s string) (Date, error) {
	if len(s) > 10 && s[10] == 'T' {
		s = s[:10]
	}
	var d Date
	switch len(s) {
	case 4, 7, 10:
	default:
		return Date{}, ErrDate
	}
	num := func(part string, lo, hi int) (int, error) {
		for _, r := range part {
			if r < '0' || r > '9' {
				return 0, ErrDate
			}
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < lo || n > hi {
			return 0, ErrDate
		}
		return n, nil
	}
	var err error
	if d.Year, err = num(s[:4], 1, 9999); err != nil {
		return Date{}, err
	}
	if len(s) >= 7 {
		if s[4] != '-' {
			return Date{}, ErrDate
		}
		if d.Month, err = num(s[5:7], 1, 12); err != nil {
			return Date{}, err
		}
	}
	if len(s) == 10 {
		if s[7] != '-' {
			return Date{}, ErrDate
		}
		if d.Day, err = num(s[8:10], 1, daysIn(d.Year, d.Month)); err != nil {
			return Date{}, err
		}
	}
	return d, nil
}

func daysIn(year, month int) int {
	switch month {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// IsZero reports whether nothing of the date is known.
func (d Date) IsZero() bool { return d.Year == 0 }

// Full reports whether year, month and day are known.
func (d Date) Full() bool { return d.Year != 0 && d.Month != 0 && d.Day != 0 }

// String renders the date as FHIR writes it, as precise as it is.
func (d Date) String() string {
	switch {
	case d.Year == 0:
		return ""
	case d.Month == 0:
		return fmt.Sprintf("%04d", d.Year)
	case d.Day == 0:
		return fmt.Sprintf("%04d-%02d", d.Year, d.Month)
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// Year-only conventions: a full date whose month and day are a country's
// convention for "unknown" (1 January in many registration systems) is
// evidence of the year alone.
func (d Date) effective(conventions []monthDay) Date {
	if !d.Full() {
		return d
	}
	for _, c := range conventions {
		if d.Month == c.month && d.Day == c.day {
			return Date{Year: d.Year}
		}
	}
	return d
}

type monthDay struct{ month, day int }

// compareDates grades two birth dates.
func compareDates(a, b Date, ca, cb []monthDay) Level {
	if a.IsZero() || b.IsZero() {
		return Missing
	}
	a, b = a.effective(ca), b.effective(cb)
	if a.Full() && b.Full() {
		switch {
		case a == b:
			return Exact
		case a.Year == b.Year && a.Month == b.Day && a.Day == b.Month:
			// Day and month swapped (US against European order).
			return Near
		case a.Year == b.Year && a.Month == b.Month && oneDigit(a.Day, b.Day):
			return Near
		case a.Year == b.Year && a.Day == b.Day && oneDigit(a.Month, b.Month):
			return Near
		case a.Month == b.Month && a.Day == b.Day && (oneDigit(a.Year, b.Year) || abs(a.Year-b.Year) == 1):
			return Near
		}
		if a.Year == b.Year && a.Month == b.Month {
			// Another day of the same month: they agree as far as a
			// year and month go.
			return Partial
		}
		return Disagree
	}
	// At least one is partial: compare what both know.
	if a.Year != b.Year {
		if abs(a.Year-b.Year) == 1 {
			return Approximate
		}
		return Disagree
	}
	if a.Month != 0 && b.Month != 0 && a.Month != b.Month {
		return Approximate
	}
	return Partial
}

// oneDigit reports whether two numbers differ in exactly one decimal digit
// (a typing error).
func oneDigit(a, b int) bool {
	if a == b {
		return false
	}
	diff := 0
	for a > 0 || b > 0 {
		if a%10 != b%10 {
			diff++
		}
		a, b = a/10, b/10
	}
	return diff == 1
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
