package fhirapi

import "github.com/gin-gonic/gin"

// Operation is a FHIR operation the gateway serves; the CapabilityStatement
// lists every registered one.
type Operation struct {
	// Name is the operation code without "$".
	Name string
	// Level is "system", "type" or "instance".
	Level string
	// ResourceType is the type of type and instance operations.
	ResourceType string
	// Definition is the canonical URL of its OperationDefinition.
	Definition string
	// Methods are the HTTP methods it accepts.
	Methods []string
	// Handle serves it; id is set for instance operations.
	Handle func(h *Handler, c *gin.Context, resourceType, id string)
}

func (o Operation) key() string { return opKey(o.Level, o.ResourceType, o.Name) }

func opKey(level, typ, name string) string { return level + "/" + typ + "/" + name }
