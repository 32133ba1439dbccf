package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Code systems a purpose-of-use Coding may name. The OID is ActReason's,
// as IHE XUA and IUA deployments often write it.
const (
	SystemActReason    = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemPurposeOfUse = "http://terminology.hl7.org/CodeSystem/v3-PurposeOfUse"
	SystemActReasonOID = "urn:oid:2.16.840.1.113883.5.8"
)

// tokenClaims is the JSON payload the gateway reads and Mint writes.
// purpose_of_use has several accepted shapes, so it is kept raw and
// decoded only after the signature has been checked.
type tokenClaims struct {
	jwt.RegisteredClaims
	Org          string          `json:"org,omitempty"`
	Country      string          `json:"country,omitempty"`
	Role         string          `json:"role,omitempty"`
	Scope        string          `json:"scope,omitempty"`
	BreakGlass   bool            `json:"break_glass,omitempty"`
	PurposeOfUse json.RawMessage `json:"purpose_of_use,omitempty"`
	Extensions   *tokenExt       `json:"extensions,omitempty"`
}

// UnmarshalJSON refuses exp, nbf and iat that are not JSON numbers. RFC
// 7519 NumericDate is a number; jwt's NumericDate would also take a string
// holding one, which no conforming issuer writes.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &dates); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", dates.Exp}, {"nbf", dates.Nbf}, {"iat", dates.Iat}} {
		if len(d.raw) > 0 && string(d.raw) != "null" && d.raw[0] != '-' && (d.raw[0] < '0' || d.raw[0] > '9') {
			return errors.New(d.name + " is not a NumericDate (a JSON number)")
		}
	}
	type plain tokenClaims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// tokenExt is the IHE IUA "extensions" claim; only ihe_iua.purpose_of_use
// is read.
type tokenExt struct {
	IHEIUA *struct {
		PurposeOfUse json.RawMessage `json:"purpose_of_use,omitempty"`
	} `json:"ihe_iua,omitempty"`
}

// coding is the FHIR Coding shape of a purpose of use.
type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

var errNotCode = errors.New("purpose_of_use code is not an upper-case HL7 v3 code")

// parsePurpose decodes a purpose_of_use claim value: a bare code, a
// Coding of an accepted system, or an array holding exactly one of these.
// Empty input (claim absent) yields "".
func parsePurpose(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return "", errors.New("purpose_of_use array is malformed")
		}
		if len(items) != 1 {
			return "", errors.New("purpose_of_use array must hold exactly one purpose")
		}
		raw = bytes.TrimSpace(items[0])
		if len(raw) == 0 || raw[0] == '[' {
			return "", errors.New("purpose_of_use array must hold a code or a Coding")
		}
	}
	switch raw[0] {
	case '"':
		var code string
		if err := json.Unmarshal(raw, &code); err != nil {
			return "", errors.New("purpose_of_use string is malformed")
		}
		if !isPurposeCode(code) {
			return "", errNotCode
		}
		return code, nil
	case '{':
		var c coding
		if err := json.Unmarshal(raw, &c); err != nil {
			return "", errors.New("purpose_of_use Coding is malformed")
		}
		switch c.System {
		case SystemActReason, SystemPurposeOfUse, SystemActReasonOID:
		default:
			return "", errors.New("purpose_of_use Coding system is not v3-ActReason or v3-PurposeOfUse")
		}
		if !isPurposeCode(c.Code) {
			return "", errNotCode
		}
		return c.Code, nil
	default:
		return "", errors.New("purpose_of_use is neither a code, a Coding nor a one-item array")
	}
}

// isPurposeCode checks the shape of an HL7 v3 ActReason code (TREAT,
// ETREAT, PUBHLTH, HRESCH, ...): an upper-case letter, then upper-case
// letters or digits, at most 32 in all. Abstract codes ("_ActReason...")
// are not purposes one can assert, so the underscore is refused.
func isPurposeCode(s string) bool {
	if len(s) < 2 || len(s) > 32 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// isCountry checks the shape of an ISO 3166-1 alpha-2 code: two
// upper-case ASCII letters. Whether the code is assigned is not checked;
// the policy compares it with configured source countries, so an
// unassigned code simply matches nothing.
func isCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// requester turns verified claims into a Requester, refusing malformed
// gateway claims.
func (c *tokenClaims) requester() (Requester, *TokenError) {
	if c.Subject == "" {
		return Requester{}, refuse(ReasonMissingSubject, "no sub (client id)")
	}
	if c.Country != "" && !isCountry(c.Country) {
		return Requester{}, refuse(ReasonClaim, "country is not an upper-case ISO 3166-1 alpha-2 code")
	}
	purpose, err := parsePurpose(c.PurposeOfUse)
	if err != nil {
		return Requester{}, refuse(ReasonClaim, err.Error())
	}
	if c.Extensions != nil && c.Extensions.IHEIUA != nil {
		nested, err := parsePurpose(c.Extensions.IHEIUA.PurposeOfUse)
		if err != nil {
			return Requester{}, refuse(ReasonClaim, "extensions.ihe_iua."+err.Error())
		}
		switch {
		case purpose == "":
			purpose = nested
		case nested != "" && nested != purpose:
			return Requester{}, refuse(ReasonClaim, "purpose_of_use and extensions.ihe_iua.purpose_of_use disagree")
		}
	}
	return Requester{
		ClientID:     c.Subject,
		Org:          c.Org,
		Country:      c.Country,
		Role:         c.Role,
		PurposeOfUse: purpose,
		Scopes:       strings.Fields(c.Scope),
		BreakGlass:   c.BreakGlass,
		TokenID:      c.ID,
	}, nil
}
