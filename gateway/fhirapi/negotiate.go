package fhirapi

import (
	"mime"
	"net/http"
	"strings"
)

// contentType is the only representation the gateway produces.
const contentType = "application/fhir+json; charset=utf-8"

// jsonTypes are the media types (and _format shorthands) that mean FHIR
// JSON.
var jsonTypes = map[string]bool{
	"json": true, "application/json": true, "application/fhir+json": true, "application/json+fhir": true,
	"text/json": true,
}

// negotiate checks _format and Accept: the gateway speaks FHIR R4 JSON
// only, so anything that excludes it is 406.
func negotiate(r *http.Request) *Error {
	if csvAllowed(r) || attachmentRoute(r) {
		return nil
	}
	if f := r.URL.Query().Get("_format"); f != "" {
		mt, params, err := mime.ParseMediaType(f)
		if err != nil && !jsonTypes[f] {
			return errorf(http.StatusNotAcceptable, "not-supported", "_format must be json or application/fhir+json")
		}
		if err != nil {
			mt = f
		}
		if !jsonTypes[mt] || !fhirVersionOK(params) {
			return errorf(http.StatusNotAcceptable, "not-supported", "_format must be json or application/fhir+json (FHIR 4.0)")
		}
		// An explicit _format overrides Accept.
		return nil
	}
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return nil
	}
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if params["q"] == "0" || params["q"] == "0.0" || params["q"] == "0.00" || params["q"] == "0.000" {
				continue
			}
			if (mt == "*/*" || mt == "application/*" || jsonTypes[mt]) && fhirVersionOK(params) {
				return nil
			}
		}
	}
	return errorf(http.StatusNotAcceptable, "not-supported", "this server produces application/fhir+json (FHIR 4.0.1) only")
}

func fhirVersionOK(params map[string]string) bool {
	v, ok := params["fhirversion"]
	return !ok || v == "4.0" || v == "4.0.1"
}
