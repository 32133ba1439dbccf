package search

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// span is a time range [lo, hi) in Unix microseconds; math.MinInt64 and
// math.MaxInt64 stand for an open start or end.
type span struct{ lo, hi int64 }

// dateValue is one date search value: a prefix and the range the value
// names (2019 names the whole year).
type dateValue struct {
	prefix string
	span
}

var dateValuePattern = regexp.MustCompile(`^(eq|ne|gt|lt|ge|le|sa|eb|ap)?` +
	`([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,9})?)?(Z|[+ -][0-9]{2}:[0-9]{2})?)?)?)?$`)

// parseDateValue reads [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.f]][zone]]]].
// A value with no zone is read in UTC. A '+' that the query string turned
// into a space is read as '+'. Errors never quote the value.
func parseDateValue(s string) (dateValue, error) {
	m := dateValuePattern.FindStringSubmatch(s)
	if m == nil {
		return dateValue{}, errors.New("is not a date ([prefix]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]], prefixes eq ne gt lt ge le sa eb ap)")
	}
	d := dateValue{prefix: m[1]}
	if d.prefix == "" {
		d.prefix = "eq"
	}
	atoi := func(s string, def int) int {
		if s == "" {
			return def
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	year, month, day := atoi(m[2], 0), atoi(m[3], 1), atoi(m[4], 1)
	hour, minute, sec := atoi(m[5], 0), atoi(m[6], 0), atoi(m[7], 0)
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return dateValue{}, errors.New("is not a valid date")
	}
	loc := time.UTC
	if z := m[9]; z != "" && z != "Z" {
		h, _ := strconv.Atoi(z[1:3])
		mi, _ := strconv.Atoi(z[4:6])
		off := h*3600 + mi*60
		if z[0] == '-' {
			off = -off
		}
		if h > 14 || mi > 59 {
			return dateValue{}, errors.New("has an invalid time zone")
		}
		loc = time.FixedZone("", off)
	}
	var nanos int
	if f := m[8]; f != "" {
		nanos, _ = strconv.Atoi((f[1:] + "000000000")[:9])
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	if t.Day() != day {
		return dateValue{}, errors.New("is not a valid date")
	}
	var end time.Time
	switch {
	case m[3] == "":
		end = t.AddDate(1, 0, 0)
	case m[4] == "":
		end = t.AddDate(0, 1, 0)
	case m[5] == "":
		end = t.AddDate(0, 0, 1)
	case m[7] == "":
		end = t.Add(time.Minute)
	case m[8] == "":
		end = t.Add(time.Second)
	default:
		step := time.Duration(math.Pow10(9 - min(len(m[8])-1, 9)))
		end = t.Add(max(step, time.Microsecond))
	}
	d.span = span{t.UnixMicro(), end.UnixMicro()}
	return d, nil
}

// match applies the prefix as FHIR R4 defines it on ranges: eq when the
// search range contains the resource's, gt/lt when the resource's reaches
// past it, ge/le either, sa/eb entirely after/before, ap overlapping the
// search range widened by a tenth of its distance from now.
func (d dateValue) match(r span) bool {
	eq := d.lo <= r.lo && r.hi <= d.hi
	switch d.prefix {
	case "eq":
		return eq
	case "ne":
		return !eq
	case "gt":
		return r.hi > d.hi
	case "lt":
		return r.lo < d.lo
	case "ge":
		return eq || r.hi > d.hi
	case "le":
		return eq || r.lo < d.lo
	case "sa":
		return r.lo >= d.hi
	case "eb":
		return r.hi <= d.lo
	case "ap":
		now := time.Now().UnixMicro()
		gap := now - d.lo
		if gap < 0 {
			gap = -gap
		}
		gap = max(gap/10, int64(24*time.Hour/time.Microsecond))
		return r.lo < satAdd(d.hi, gap) && r.hi > satAdd(d.lo, -gap)
	}
	return false
}

func satAdd(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	if b < 0 && s > a {
		return math.MinInt64
	}
	return s
}

// dateRange reads the range a DateTime, Date, Instant or Period holds.
func (l leaf) dateRange() (span, bool) {
	switch l.name() {
	case "Period":
		start, okS := field(l.m, "start")
		end, okE := field(l.m, "end")
		if !okS && !okE {
			return span{}, false
		}
		r := span{math.MinInt64, math.MaxInt64}
		if okS {
			if s, ok := (leaf{start}).dateRange(); ok {
				r.lo = s.lo
			}
		}
		if okE {
			if e, ok := (leaf{end}).dateRange(); ok {
				r.hi = e.hi
			}
		}
		return r, true
	case "DateTime", "Date", "Instant":
		fs := l.m.Descriptor().Fields()
		us := l.m.Get(fs.ByName("value_us")).Int()
		tz := l.m.Get(fs.ByName("timezone")).String()
		prec := ""
		if pf := fs.ByName("precision"); pf != nil {
			if ev := pf.Enum().Values().ByNumber(l.m.Get(pf).Enum()); ev != nil {
				prec = string(ev.Name())
			}
		}
		if l.name() == "Instant" && prec == "PRECISION_UNSPECIFIED" {
			prec = "SECOND"
		}
		t := time.UnixMicro(us).In(location(tz))
		var end time.Time
		switch prec {
		case "YEAR":
			end = t.AddDate(1, 0, 0)
		case "MONTH":
			end = t.AddDate(0, 1, 0)
		case "DAY":
			end = t.AddDate(0, 0, 1)
		case "SECOND":
			end = t.Add(time.Second)
		case "MILLISECOND":
			end = t.Add(time.Millisecond)
		case "MICROSECOND":
			end = t.Add(time.Microsecond)
		default:
			// A date with no precision carries no value (only an
			// extension, such as data-absent-reason).
			return span{}, false
		}
		return span{us, end.UnixMicro()}, true
	}
	return span{}, false
}

func field(m protoreflect.Message, name protoreflect.Name) (protoreflect.Message, bool) {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Message() == nil || !m.Has(fd) {
		return nil, false
	}
	return m.Get(fd).Message(), true
}

// location reads a google/fhir timezone: Z, UTC, ±hh:mm or an IANA name.
func location(tz string) *time.Location {
	switch {
	case tz == "" || tz == "Z" || tz == "UTC":
		return time.UTC
	case len(tz) == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':':
		h, err1 := strconv.Atoi(tz[1:3])
		m, err2 := strconv.Atoi(tz[4:6])
		if err1 != nil || err2 != nil {
			return time.UTC
		}
		off := h*3600 + m*60
		if tz[0] == '-' {
			off = -off
		}
		return time.FixedZone(tz, off)
	}
	if loc, err := time.LoadLocation(strings.TrimSpace(tz)); err == nil {
		return loc
	}
	return time.UTC
}
