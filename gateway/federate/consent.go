package federate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/source"
)

// consentProvisions fetches a patient's Consent resources from the source
// and normalises their provisions into policy input (authz.ProvisionsOf).
// Consents are read from the source as it holds them (not mapped), because
// only their provisions matter and they never leave the gateway. A source that cannot say is
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
			cr, err := r4.Parse(r.JSON)
			if err != nil {
				// A Consent the gateway cannot read could be a refusal:
				// no answer is safer than a wrong one.
				return nil, fmt.Errorf("%w: consent: %w", source.ErrInvalidResponse, err)
			}
			p, err := authz.ProvisionsOf(cr, gw)
			if err != nil {
				return nil, fmt.Errorf("%w: consent: %w", source.ErrInvalidResponse, err)
			}
			provs = append(provs, p...)
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
