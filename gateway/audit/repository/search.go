package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/migrant-health/mhg/gateway/audit"
)

// Search answers an auditor's search over every replica's records, as the
// local log's index does: the AuditEvents that match q, newest first (ties
// in instance and seq order), one page, and the total number of matches.
func (r *Repository) Search(ctx context.Context, q audit.Query) ([]json.RawMessage, int, error) {
	if q.Count < 0 || q.Offset < 0 {
		return nil, 0, errors.New("audit repository: search: negative count or offset")
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Patient != "" {
		where = append(where, "patient = "+arg(strings.TrimPrefix(q.Patient, "Patient/")))
	}
	if q.Agent != "" {
		a := arg(q.Agent)
		where = append(where, "(agent_client = "+a+" OR agent_org = "+a+")")
	}
	if q.Purpose != "" {
		where = append(where, "purposes @> ARRAY["+arg(q.Purpose)+"::text]")
	}
	if q.Outcome != "" {
		where = append(where, "outcome = "+arg(audit.OutcomeCode(q.Outcome)))
	}
	if q.Country != "" {
		where = append(where, "country = "+arg(q.Country))
	}
	if q.BreakGlass {
		where = append(where, "break_glass")
	}
	if q.Operation != "" {
		where = append(where, "operation = "+arg(q.Operation))
	}
	if !q.DateFrom.IsZero() {
		where = append(where, "recorded >= "+arg(q.DateFrom))
	}
	if !q.DateTo.IsZero() {
		where = append(where, "recorded < "+arg(q.DateTo))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := r.pool.QueryRow(ctx, "SELECT count(*) FROM audit_records"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("%w: search: %w", ErrUnavailable, err)
	}
	if total == 0 || q.Offset >= total {
		return []json.RawMessage{}, total, nil
	}
	page := "SELECT event FROM audit_records" + cond + " ORDER BY recorded DESC, instance, seq DESC"
	if q.Count > 0 {
		page += " LIMIT " + arg(q.Count)
	}
	if q.Offset > 0 {
		page += " OFFSET " + arg(q.Offset)
	}
	rows, err := r.pool.Query(ctx, page, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: search: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	out := make([]json.RawMessage, 0, min(max(q.Count, 0), total))
	for rows.Next() {
		var ev string
		if err := rows.Scan(&ev); err != nil {
			return nil, 0, fmt.Errorf("%w: search: %w", ErrUnavailable, err)
		}
		out = append(out, json.RawMessage(ev))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("%w: search: %w", ErrUnavailable, err)
	}
	return out, total, nil
}

// arrayLiteral renders a PostgreSQL text[] literal: every element quoted,
// quotes and backslashes escaped.
func arrayLiteral(vs []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, c := range []byte(v) {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
