package source

import (
	"errors"
	"fmt"
)

// PartialError is what Search returns, beside the resources of the pages
// it read, when it stopped before the source's last page: at the page
// bound (Cause ErrTruncated). errors.Is sees the cause.
type PartialError struct {
	// Pages is how many pages were read.
	Pages int
	// Cause says why the search stopped: ErrTruncated.
	Cause error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("stopped after %d pages: %v", e.Pages, e.Cause)
}

// Unwrap returns the cause.
func (e *PartialError) Unwrap() error { return e.Cause }

// AsPartial returns the PartialError in err's chain, if any.
func AsPartial(err error) (*PartialError, bool) {
	var pe *PartialError
	ok := errors.As(err, &pe)
	return pe, ok
}
