package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Notification tells that a disclosure happened which a policy says
// someone must hear of: a break-the-glass access, say. It names the
// AuditEvent that records the disclosure, never the patient: whoever is
// notified reads the record through the auditor's search.
type Notification struct {
	// AuditEventID is the id of the AuditEvent of the request.
	AuditEventID string `json:"auditEventId"`
	// Targets are who the policies ask to tell (patient, dpo, ...).
	Targets []string `json:"targets"`
	// Rules are the rule ids that imposed the notification.
	Rules []string `json:"rules"`
	// Time is when the request was received.
	Time time.Time `json:"time"`
	// RequesterOrg, RequesterCountry, Role and Purpose say who disclosed
	// what for which purpose.
	RequesterOrg     string `json:"requesterOrg"`
	RequesterCountry string `json:"requesterCountry"`
	Role             string `json:"role"`
	Purpose          string `json:"purpose"`
	// BreakGlass is set when the requester invoked break-the-glass.
	BreakGlass bool `json:"breakGlass"`
}

// Notifier delivers notifications. The audit record is the durable trace;
// notifications are best effort and must not hold a request up.
type Notifier struct {
	url    string
	client *http.Client
	log    *slog.Logger
}

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	// URL, when set, receives every notification as a JSON POST (a
	// data-protection officer's inbox, a patient portal). Empty: the
	// structured log only.
	URL string
	// Client posts to URL. Nil means a client with a 5s timeout.
	Client *http.Client
	// Logger receives one line per notification (the AuditEvent id, the
	// targets and rules, the requester's country and role: no patient
	// data) and delivery failures. Nil means slog.Default().
	Logger *slog.Logger
}

// NewNotifier returns a Notifier.
func NewNotifier(opts NotifierOptions) *Notifier {
	n := &Notifier{url: opts.URL, client: opts.Client, log: opts.Logger}
	if n.client == nil {
		n.client = &http.Client{Timeout: 5 * time.Second}
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	return n
}

// Notify logs the notification and, when a URL is configured, posts it in
// the background.
func (n *Notifier) Notify(ctx context.Context, note Notification) {
	targets := make([]any, 0, 2*len(note.Targets))
	for _, t := range note.Targets {
		targets = append(targets, string(telemetry.AttrNotifyTarget), t)
	}
	n.log.WarnContext(ctx, "disclosure to notify",
		append([]any{
			string(telemetry.AttrAuditEventID), note.AuditEventID,
			string(telemetry.AttrRuleIDs), note.Rules,
			string(telemetry.AttrRequesterCountry), note.RequesterCountry,
			string(telemetry.AttrRequesterRole), note.Role,
			string(telemetry.AttrPurpose), note.Purpose,
			string(telemetry.AttrBreakGlass), note.BreakGlass,
		}, targets...)...)
	if n.url == "" {
		return
	}
	body, err := json.Marshal(note)
	if err != nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := n.post(ctx, body); err != nil {
			n.log.ErrorContext(ctx, "notification not delivered",
				string(telemetry.AttrAuditEventID), note.AuditEventID, string(telemetry.AttrErrorType), telemetry.ErrorType(err))
		}
	}()
}

func (n *Notifier) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("notify: status %d", resp.StatusCode)
	}
	return nil
}
