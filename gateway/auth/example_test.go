package auth_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/migrant-health/mhg/gateway/auth"
)

func ExampleParseScope() {
	for _, s := range []string{"system/Patient.rs", "system/*.read", "user/Patient.rs", "system/Observation.rs?category=laboratory", "system/Patient.sr"} {
		sc, err := auth.ParseScope(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: context %s, type %s, read %v, search %v, query %q\n", s, sc.Context, sc.ResourceType,
			sc.Perms&auth.PermRead != 0, sc.Perms&auth.PermSearch != 0, sc.Query)
	}
	// Output:
	// system/Patient.rs: context system, type Patient, read true, search true, query ""
	// system/*.read: context system, type *, read true, search true, query ""
	// user/Patient.rs: context user, type Patient, read true, search true, query ""
	// system/Observation.rs?category=laboratory: context system, type Observation, read true, search true, query "category=laboratory"
	// not a SMART resource scope: permissions are not a subset of cruds in that order
}

func ExampleBearerToken() {
	tok, err := auth.BearerToken("bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
	fmt.Println(tok, err)
	_, err = auth.BearerToken("Basic dXNlcjpwYXNz")
	fmt.Println(err)
	// Output:
	// eyJhbGciOiJFUzI1NiJ9.e30.c2ln <nil>
	// no bearer token: Authorization scheme is not Bearer
}

// The development round trip `mhg token` and `mhg serve` make between
// them: one mints with the development key, the other verifies.
func ExampleMint() {
	dir, err := os.MkdirTemp("", "mhg-auth-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	opts := auth.VerifierOptions{
		Issuer:     "https://dev.mhg.invalid/issuer",
		Audience:   "http://127.0.0.1:8080/fhir",
		DevKeyFile: filepath.Join(dir, "dev-signing-key.pem"),
	}
	tok, err := auth.Mint(opts, auth.MintOptions{
		Org: "example-hospital", Country: "DE", Role: "clinician", Purpose: "TREAT",
		Scopes: []string{"system/*.rs"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	v, err := auth.NewVerifier(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	r, err := v.Verify(context.Background(), tok)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.ClientID, r.Org, r.Country, r.Role, r.PurposeOfUse, r.Scopes)

	opts.DevKeyFile, opts.JWKSFile = "", "issuer-keys.json"
	_, err = auth.Mint(opts, auth.MintOptions{})
	fmt.Println(err)
	// Output:
	// mhg-dev-client example-hospital DE clinician TREAT [system/*.rs]
	// tokens can only be minted with the development key (auth.dev: true)
}
