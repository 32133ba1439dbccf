package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/disclosure"
	"github.com/migrant-health/mhg/gateway/stats"
)

// Statistics evaluates measures for the statistics page. The gateway's
// implementation is the evaluation behind Measure/{id}/$evaluate-measure:
// the same policy decisions per source, the same disclosure control and
// the same auditor's check of the released table.
type Statistics interface {
	// Measures lists the measures that can be asked for.
	Measures() []*measures.Measure
	// Evaluate evaluates one measure for req. The Evaluation is never nil:
	// on a refusal or failure it still carries the decisions taken and the
	// sources contacted, for the AuditEvent. Errors are *StatisticsError.
	Evaluate(ctx context.Context, req auth.Requester, q StatisticsQuery) (*Evaluation, error)
}

// StatisticsQuery is one evaluation asked for on the page.
type StatisticsQuery struct {
	// Measure is the Measure id.
	Measure string
	// Start and End are the requested period's first and last days.
	Start, End time.Time
	// Strata are catalogue codes (measures.Strata), at most two.
	Strata []string
}

// Evaluation is what one evaluation released and what decided it.
type Evaluation struct {
	// Report is the released table; nil when refused or failed. Its
	// Release.Rules are the disclosure terms applied, its Period the
	// requested period widened to whole grains of its Grain, its Failed
	// and Refused the sources left out.
	Report *stats.Report
	// Sources are the ids of the sources contacted.
	Sources []string
	// Decisions are every policy decision taken.
	Decisions []audit.Decision
}

// StatisticsError is a refused or failed evaluation: the status the page
// answers with and a message for people that names no patient.
type StatisticsError struct {
	// Status is the HTTP status (400, 403, 404, 502, 504, ...).
	Status int
	// Message says what went wrong.
	Message string
	// Reasons are the policy's reasons for a refusal.
	Reasons []string
}

func (e *StatisticsError) Error() string {
	if len(e.Reasons) > 0 {
		return e.Message + " (" + strings.Join(e.Reasons, ", ") + ")"
	}
	return e.Message
}

// actStatistics is the page's own decision: reading the Measures is what
// GET /fhir/Measure decides, for the aggregate data class.
var (
	actStatistics = authz.Action{Interaction: "search-type", ResourceType: "Measure"}
	actEvaluate   = authz.Action{Interaction: "operation", ResourceType: "Measure", Operation: "evaluate-measure"}
)

// statisticsAllowed asks the policy whether the session may read the
// statistics, in each of its roles, under the statistics purpose of use.
func (c *Console) statisticsAllowed(ctx context.Context, s *Session) (authz.Decision, auth.Requester) {
	as := *s
	as.Purpose = c.opts.StatisticsPurpose
	return c.allowed(ctx, &as, actStatistics)
}

// statisticsForm is the page's form, as asked and as shown again.
type statisticsForm struct {
	Measure, Start, End string
	Strata              [2]string
}

// query returns the form as an evaluation query and the link that asks
// for it again ("" when the form is incomplete), or a message saying
// what is wrong with it.
func (f statisticsForm) query() (StatisticsQuery, string) {
	q := StatisticsQuery{Measure: f.Measure}
	if f.Measure == "" {
		return q, "Choose a measure."
	}
	var err error
	if q.Start, err = time.Parse(time.DateOnly, f.Start); err != nil {
		return q, "Give the first day of the period as a date (YYYY-MM-DD)."
	}
	if q.End, err = time.Parse(time.DateOnly, f.End); err != nil {
		return q, "Give the last day of the period as a date (YYYY-MM-DD)."
	}
	if q.End.Before(q.Start) {
		return q, "The period ends before it starts."
	}
	if q.End.Sub(q.Start) > 20*366*24*time.Hour {
		return q, "The period may cover twenty years at most."
	}
	for _, st := range f.Strata {
		if st == "" {
			continue
		}
		if _, ok := measures.StratifierByCode(st); !ok {
			return q, "Choose the strata from the list."
		}
		if slices.Contains(q.Strata, st) {
			return q, "Choose two different strata, or one."
		}
		q.Strata = append(q.Strata, st)
	}
	return q, ""
}

func (f statisticsForm) values() url.Values {
	v := url.Values{"measure": {f.Measure}, "start": {f.Start}, "end": {f.End}}
	for i, st := range f.Strata {
		if st != "" {
			v.Set("stratum"+strconv.Itoa(i+1), st)
		}
	}
	return v
}

// statisticsView is what the statistics template gets.
type statisticsView struct {
	Form     statisticsForm
	Measures []*measures.Measure
	Strata   []measures.Stratifier
	Message  string
	Reasons  []string
	// Done: an evaluation was released, and the rest is filled in.
	Done        bool
	Title       string
	Requested   measures.Period
	Period      measures.Period
	Widened     bool
	Rules       disclosure.Rules
	Grain       string
	Failed      []string
	Refused     []string
	StrataNames []string
	Populations []string
	Rows        []statisticsRow
	Chart       *barChart
	CSV         string
}

type statisticsRow struct {
	// Labels are the row's category per stratum ("All" for a margin).
	Labels []string
	Values []disclosure.Value
	Total  bool
}

// barChart is the first population by the first stratum's categories
// (the total when there is no stratum), drawn as an SVG.
type barChart struct {
	Population string
	Bars       []bar
	Height     int
}

type bar struct {
	Label        string
	Count        int
	Masked       bool
	Y, Width, TY int
}

const (
	chartWidth = 400
	barHeight  = 22
	barGap     = 8
)

func (c *Console) statisticsPage(w http.ResponseWriter, r *http.Request, s *Session) {
	dec, req := c.statisticsAllowed(r.Context(), s)
	if !dec.Allow {
		c.errorPage(w, r, s, http.StatusForbidden, "The policy does not let you read statistics ("+strings.Join(dec.Reasons, ", ")+").")
		return
	}
	if c.opts.Statistics == nil {
		c.errorPage(w, r, s, http.StatusNotFound, "Statistics are not enabled on this gateway.")
		return
	}
	qv := r.URL.Query()
	v := statisticsView{Measures: c.opts.Statistics.Measures(), Strata: measures.Strata(),
		Form: statisticsForm{Measure: qv.Get("measure"), Start: qv.Get("start"), End: qv.Get("end"),
			Strata: [2]string{qv.Get("stratum1"), qv.Get("stratum2")}}}
	if v.Form.Start == "" && v.Form.End == "" {
		y := c.opts.Now().UTC().Year() - 1
		v.Form.Start, v.Form.End = fmt.Sprintf("%d-01-01", y), fmt.Sprintf("%d-12-31", y)
	}
	const title = "Statistics"
	if !qv.Has("measure") {
		c.render(w, r, s, http.StatusOK, "statistics", title, v)
		return
	}
	if t := c.opts.StatisticsWriteTimeout; t > 0 {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(t))
	}
	q, msg := v.Form.query()
	if msg != "" {
		v.Message = msg
		c.render(w, r, s, http.StatusBadRequest, "statistics", title, v)
		return
	}
	ev, err := c.opts.Statistics.Evaluate(r.Context(), req, q)
	if ev == nil {
		ev = &Evaluation{}
	}
	status := http.StatusOK
	var se *StatisticsError
	if err != nil {
		se = asStatisticsError(err)
		status = se.Status
	}
	if _, aerr := c.recordEvaluation(r.Context(), req, q, ev, status); aerr != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit log is unavailable; no statistics are released without an audit record.")
		return
	}
	if se != nil {
		v.Message, v.Reasons = se.Message, se.Reasons
		c.render(w, r, s, se.Status, "statistics", title, v)
		return
	}
	if qv.Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+q.Measure+`.csv"`)
		_, _ = w.Write(ev.Report.CSV())
		return
	}
	fillStatistics(&v, q, ev.Report)
	c.render(w, r, s, http.StatusOK, "statistics", title, v)
}

func asStatisticsError(err error) *StatisticsError {
	if se, ok := err.(*StatisticsError); ok {
		return se
	}
	return &StatisticsError{Status: http.StatusInternalServerError, Message: "The statistics could not be evaluated."}
}

// recordEvaluation writes the one AuditEvent of an evaluation, as the
// FHIR operation does: the measure, period, strata and sources, whether
// the report is incomplete, every decision; never a patient.
func (c *Console) recordEvaluation(ctx context.Context, req auth.Requester, q StatisticsQuery, ev *Evaluation, status int) (string, error) {
	return c.record(ctx, req, actEvaluate, authz.Decision{}, status, func(e *audit.Entry) {
		e.Decisions, e.Sources = ev.Decisions, ev.Sources
		st := &audit.Statistics{Measure: q.Measure, PeriodStart: q.Start.Format(time.DateOnly), PeriodEnd: q.End.Format(time.DateOnly), Strata: q.Strata}
		if rep := ev.Report; rep != nil && status == http.StatusOK {
			st.PeriodStart, st.PeriodEnd = rep.Period.Start.Format(time.DateOnly), rep.Period.End.Format(time.DateOnly)
			st.Incomplete = len(rep.Failed)+len(rep.Refused) > 0
			e.Released = map[string]int{"MeasureReport": 1}
		}
		e.Statistics = st
	})
}

// fillStatistics lays out a released report for the template.
func fillStatistics(v *statisticsView, q StatisticsQuery, rep *stats.Report) {
	v.Done = true
	v.Title = rep.Measure.Title
	if v.Title == "" {
		v.Title = rep.Measure.ID
	}
	v.Requested = measures.Period{Start: q.Start, End: q.End}
	v.Period = rep.Period
	v.Widened = !rep.Period.Start.Equal(q.Start) || !rep.Period.End.Equal(q.End)
	v.Rules, v.Grain = rep.Release.Rules, rep.Grain
	v.Failed, v.Refused = rep.Failed, rep.Refused
	for _, code := range rep.Strata {
		name := code
		if st, ok := measures.StratifierByCode(code); ok {
			name = st.Display
		}
		v.StrataNames = append(v.StrataNames, name)
	}
	v.Populations = rep.Release.Populations
	rel := rep.Release
	for _, cell := range disclosure.Cells(1, rel.Dims) {
		row := statisticsRow{Total: true}
		for d := range rep.Strata {
			if d >= len(cell.Coord) || cell.Coord[d] == disclosure.All {
				row.Labels = append(row.Labels, "All")
			} else {
				row.Labels = append(row.Labels, rep.Categories[d][cell.Coord[d]])
				row.Total = false
			}
		}
		for p := range rel.Populations {
			row.Values = append(row.Values, rel.Lookup(disclosure.Cell{Population: p, Coord: cell.Coord}))
		}
		v.Rows = append(v.Rows, row)
	}
	v.Chart = chartOf(rep)
	v.CSV = "/console/statistics?" + v.Form.values().Encode() + "&format=csv"
}

// chartOf draws one population by the first stratum's categories, or
// its total alone without strata: the population with the most published
// bars (the first on a tie), so the chart shows what can be shown. Bars
// are scaled to the largest published count; a masked count is drawn as
// an empty outline, labelled.
func chartOf(rep *stats.Report) *barChart {
	rel := rep.Release
	var ch *barChart
	best := -1
	for p, pop := range rel.Populations {
		c := &barChart{Population: pop}
		if len(rep.Strata) == 0 || len(rel.Dims) == 0 {
			v := rel.Lookup(disclosure.Cell{Population: p, Coord: make([]int, len(rel.Dims))})
			c.Bars = append(c.Bars, bar{Label: "All", Count: v.Count, Masked: v.Masked})
		} else {
			for i, cat := range rep.Categories[0] {
				coord := make([]int, len(rel.Dims))
				for d := range coord {
					coord[d] = disclosure.All
				}
				coord[0] = i
				v := rel.Lookup(disclosure.Cell{Population: p, Coord: coord})
				c.Bars = append(c.Bars, bar{Label: cat, Count: v.Count, Masked: v.Masked})
			}
		}
		published := 0
		for _, b := range c.Bars {
			if !b.Masked {
				published++
			}
		}
		if published > best {
			ch, best = c, published
		}
	}
	if ch == nil {
		return nil
	}
	most := 0
	for _, b := range ch.Bars {
		if !b.Masked {
			most = max(most, b.Count)
		}
	}
	for i := range ch.Bars {
		b := &ch.Bars[i]
		b.Y = i * (barHeight + barGap)
		b.TY = b.Y + barHeight - 6
		switch {
		case b.Masked:
			b.Width = chartWidth
		case most > 0 && b.Count > 0:
			b.Width = max(1, b.Count*chartWidth/most)
		}
	}
	ch.Height = len(ch.Bars) * (barHeight + barGap)
	return ch
}
