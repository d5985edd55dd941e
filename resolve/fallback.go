package resolve

import (
	"context"
	"errors"
)

// Fallback answers from Primary, and asks Secondary only for names Primary
// does not hold (errors wrapping ErrNotInZone). It lets --zone files be
// checked against the real world: the zone's own names come from the files,
// a provider's exchanges from the network.
type Fallback struct {
	Primary, Secondary Resolver
}

// Lookup implements Resolver.
func (f Fallback) Lookup(ctx context.Context, q Question) (*Answer, error) {
	a, err := f.Primary.Lookup(ctx, q)
	if err != nil && errors.Is(err, ErrNotInZone) {
		return f.Secondary.Lookup(ctx, q)
	}
	return a, err
}
