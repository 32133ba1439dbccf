package server

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/migrant-health/mhg/gateway/auth"
)

// demoIdentifier is the passport of the sample cross-border patient, held
// by the DE, NL and UA sample sources.
const demoIdentifier = "http://hl7.org/fhir/sid/passport-UKR|FT482913"

// banner prints where the gateway listens and, in the development default,
// a ready-to-paste curl with a fresh token.
func (s *Server) banner(addr string) {
	base := s.cfg.BaseURL()
	w := s.stdout
	fmt.Fprintf(w, "mhg %s serving FHIR R4 at %s (listening on %s; traces: %s)\n", Version, base, addr, s.telemetry.Exporter())
	if s.console != nil {
		if link := s.console.OneTimeLink(bannerTokenTTL); link != "" {
			fmt.Fprintf(w, "\nThe console for legal teams and auditors: open this one-time sign-in link (valid 1h, once):\n\n  %s\n", link)
		}
	}
	if !s.cfg.Auth.Dev {
		return
	}
	tok, err := auth.Mint(AuthOptions(s.cfg.Auth), auth.MintOptions{
		Org: "demo-hospital-berlin", Country: "DE", Role: "clinician", Purpose: "TREAT",
		Scopes: []string{"system/*.rs"}, TTL: bannerTokenTTL,
	})
	if err != nil {
		s.log.Warn("no demo token in the banner", "error", err)
		return
	}
	q := url.Values{"identifier": {demoIdentifier}}
	fmt.Fprintf(w, "\nA DE clinician's token for treatment (valid 1h; mint more with ./bin/mhg token):\n\n")
	fmt.Fprintf(w, "  TOKEN=%s\n\n", tok)
	fmt.Fprintf(w, "Find the sample migrant in every source the policy lets a DE clinician ask:\n\n")
	fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $TOKEN\" '%s/Patient?%s'\n\n", base, q.Encode())
	fmt.Fprintf(w, "The server's capabilities need no token:\n\n  curl -s %s/metadata\n\n", base)
	fmt.Fprintln(w, strings.Repeat("-", 72))
}
