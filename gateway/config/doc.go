// Package config holds mhg's one typed configuration: defaults that give the
// embedded demo, a YAML file on top, MHG_* environment variables on top of
// that, and one Validate step that reports every problem at once, naming the
// field and the file.
//
// It does not open files other than the config file, dial anything or build
// components; the server package turns a validated Config into a gateway.
package config
