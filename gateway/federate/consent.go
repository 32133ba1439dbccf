package federate

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"

	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/source"
)

// countrySystem marks a Consent actor identifier that names a country
// (ISO 3166-1 alpha-2): a provision addressed to a whole country's
// providers, as MHP cross-border consent does.
const countrySystem = "urn:iso:std:iso:3166"

// consentProvisions fetches a patient's Consent resources from the source
// and normalises their provisions into policy input. Consents are read from
// the source as it holds them (not mapped), because only their provisions
// matter and they never leave the gateway. A source that cannot say is
// treated as holding no consent; the policy decides what that means.
func (s *Service) consentProvisions(ctx context.Context, req Request, src Source, upstreamPatient string) ([]authz.Provision, error) {
	parts := []string{"Consent", upstreamPatient}
	load := func(ctx context.Context) ([]byte, error) {
		found, err := src.Search(ctx, "Consent", url.Values{"patient": {upstreamPatient}})
		if err != nil {
			if errors.Is(err, source.ErrNotFound) {
				return json.Marshal([]authz.Provision{})
			}
			return nil, err
		}
		provs := []authz.Provision{}
		for _, r := range found {
			gw, err := s.opts.IDs.Encode(src.ID(), "Consent", r.ID)
			if err != nil {
				gw = ""
			}
			provs = append(provs, normaliseConsent(r.JSON, gw)...)
		}
		return json.Marshal(provs)
	}
	var b []byte
	var err error
	if s.opts.Cache != nil {
		key := cache.Key{Kind: cache.KindSearch, Source: src.ID(), Version: "consent-1", Parts: parts, Tags: []string{patientTag(src, upstreamPatient)}}
		b, err = s.opts.Cache.Fetch(ctx, key, req.NoCache, load)
	} else {
		b, err = load(ctx)
	}
	if err != nil {
		return nil, err
	}
	provs := []authz.Provision{}
	if err := json.Unmarshal(b, &provs); err != nil {
		return nil, err
	}
	return provs, nil
}

type fhirConsent struct {
	Status    string         `json:"status"`
	Provision *fhirProvision `json:"provision"`
}

type fhirProvision struct {
	Type   string `json:"type"`
	Period *struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"period"`
	Actor []struct {
		Reference struct {
			Reference  string `json:"reference"`
			Identifier *struct {
				System string `json:"system"`
				Value  string `json:"value"`
			} `json:"identifier"`
		} `json:"reference"`
	} `json:"actor"`
	Purpose       []fhirCoding     `json:"purpose"`
	Class         []fhirCoding     `json:"class"`
	SecurityLabel []fhirCoding     `json:"securityLabel"`
	Provision     []*fhirProvision `json:"provision"`
}

type fhirCoding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// normaliseConsent flattens an active Consent's provision tree: the root
// provision, then each nested one (exceptions to it), each with the period
// of its parents when it has none of its own.
func normaliseConsent(b []byte, consentID string) []authz.Provision {
	var c fhirConsent
	if err := json.Unmarshal(b, &c); err != nil || c.Status != "active" || c.Provision == nil {
		return nil
	}
	var out []authz.Provision
	var walk func(p *fhirProvision, start, end string)
	walk = func(p *fhirProvision, start, end string) {
		if p == nil {
			return
		}
		if p.Period != nil {
			if p.Period.Start != "" {
				start = p.Period.Start
			}
			if p.Period.End != "" {
				end = p.Period.End
			}
		}
		if p.Type == "permit" || p.Type == "deny" {
			pr := authz.Provision{
				ConsentID: consentID, Type: p.Type, Start: start, End: end,
				ActorCountries: []string{}, ActorOrgs: []string{},
				Purposes: []string{}, Classes: []string{}, SecurityLabels: []string{},
			}
			for _, a := range p.Actor {
				switch id := a.Reference.Identifier; {
				case id != nil && id.System == countrySystem:
					pr.ActorCountries = append(pr.ActorCountries, id.Value)
				case id != nil && id.Value != "":
					pr.ActorOrgs = append(pr.ActorOrgs, id.Value)
				case a.Reference.Reference != "":
					pr.ActorOrgs = append(pr.ActorOrgs, a.Reference.Reference)
				}
			}
			for _, c := range p.Purpose {
				pr.Purposes = append(pr.Purposes, c.Code)
			}
			for _, c := range p.Class {
				pr.Classes = append(pr.Classes, c.Code)
			}
			for _, c := range p.SecurityLabel {
				pr.SecurityLabels = append(pr.SecurityLabels, c.Code)
			}
			out = append(out, pr)
		}
		for _, child := range p.Provision {
			walk(child, start, end)
		}
	}
	walk(c.Provision, "", "")
	return out
}
