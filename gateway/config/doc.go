// Package config holds mhg's one typed configuration: defaults that give the
// embedded demo, a YAML file on top, MHG_* environment variables on top of
// that, and one Validate step that reports every problem at once, naming the
// field and the file. Each section validates itself, and Validate reports
// the problems in a documented, stable order: the sections in the order of
// Config's fields, each section's problems in the order of its fields.
//
// It does not open files other than the config file, dial anything or build
// components, and no component imports it: the server package translates
// each section into the Options of the component it configures
// (gateway/server/options.go) and turns a validated Config into a gateway.
package config
