package travel

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Service names: each travel service is one participant with its own inventory.
const (
	Flights = "flights"
	Hotels  = "hotels"
	Cars    = "cars"
)

// Limits on what an inventory may hold.
const (
	MaxSKULen   = 32        // bytes in a SKU
	MaxItems    = 1000      // SKUs in one inventory
	MaxCapacity = 1_000_000 // units of one SKU
)

// ErrBadInventory is returned for an inventory specification that cannot be
// used: malformed, a bad SKU, a bad capacity, a duplicate SKU or too many items.
var ErrBadInventory = errors.New("bad inventory")

// ErrUnknownService is returned for a service name other than flights, hotels
// and cars.
var ErrUnknownService = errors.New("unknown service")

// Stock is the capacity of one SKU: how many units it offers in all.
type Stock struct {
	SKU      string `json:"sku"`
	Capacity int64  `json:"capacity"`
}

// ServiceNames lists the travel services in booking order.
func ServiceNames() []string { return []string{Flights, Hotels, Cars} }

// DefaultInventory is the stock a service offers when none is configured.
func DefaultInventory(service string) ([]Stock, error) {
	switch service {
	case Flights:
		return []Stock{{"FL100", 120}, {"FL200", 40}, {"FL300", 8}}, nil
	case Hotels:
		return []Stock{{"H-PARIS", 60}, {"H-ROME", 40}, {"H-OSLO", 10}}, nil
	case Cars:
		return []Stock{{"C-ECON", 50}, {"C-SUV", 20}, {"C-VAN", 5}}, nil
	}
	return nil, fmt.Errorf("%w %q: want %s", ErrUnknownService, service, strings.Join(ServiceNames(), ", "))
}

// ValidateSKU reports whether s may name a stock-keeping unit: 1 to MaxSKULen
// bytes of letters, digits and . _ -.
func ValidateSKU(s string) error {
	if s == "" {
		return errors.New("empty SKU")
	}
	if len(s) > MaxSKULen {
		return fmt.Errorf("SKU of %d bytes, at most %d", len(s), MaxSKULen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("SKU %q: byte %d is %q; allowed are letters, digits and . _ -", s, i, c)
		}
	}
	return nil
}

// ParseInventory parses a specification such as "FL100=120,FL200=40": comma
// separated SKU=CAPACITY entries, spaces around entries allowed, each SKU at
// most once, capacities from 0 to MaxCapacity.
func ParseInventory(spec string) ([]Stock, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("%w: empty; want SKU=CAPACITY[,SKU=CAPACITY...]", ErrBadInventory)
	}
	entries := strings.Split(spec, ",")
	if len(entries) > MaxItems {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrBadInventory, len(entries), MaxItems)
	}
	out := make([]Stock, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		e = strings.TrimSpace(e)
		sku, capText, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("%w: entry %d %q: want SKU=CAPACITY", ErrBadInventory, i+1, e)
		}
		sku, capText = strings.TrimSpace(sku), strings.TrimSpace(capText)
		if err := ValidateSKU(sku); err != nil {
			return nil, fmt.Errorf("%w: entry %d %q: %v", ErrBadInventory, i+1, e, err)
		}
		if seen[sku] {
			return nil, fmt.Errorf("%w: entry %d: SKU %q given twice", ErrBadInventory, i+1, sku)
		}
		seen[sku] = true
		capacity, err := strconv.ParseInt(capText, 10, 64)
		if err != nil || capacity < 0 || capacity > MaxCapacity {
			return nil, fmt.Errorf("%w: entry %d %q: capacity %q is not a whole number from 0 to %d", ErrBadInventory, i+1, e, capText, MaxCapacity)
		}
		out = append(out, Stock{SKU: sku, Capacity: capacity})
	}
	return out, nil
}

// FormatInventory is the inverse of ParseInventory.
func FormatInventory(stock []Stock) string {
	parts := make([]string, len(stock))
	for i, s := range stock {
		parts[i] = s.SKU + "=" + strconv.FormatInt(s.Capacity, 10)
	}
	return strings.Join(parts, ",")
}

// validateStock checks a stock list as ParseInventory would have produced it.
func validateStock(stock []Stock) error {
	if len(stock) == 0 {
		return fmt.Errorf("%w: no SKUs", ErrBadInventory)
	}
	if len(stock) > MaxItems {
		return fmt.Errorf("%w: %d SKUs, at most %d", ErrBadInventory, len(stock), MaxItems)
	}
	seen := make(map[string]bool, len(stock))
	for _, s := range stock {
		if err := ValidateSKU(s.SKU); err != nil {
			return fmt.Errorf("%w: %v", ErrBadInventory, err)
		}
		if seen[s.SKU] {
			return fmt.Errorf("%w: SKU %q given twice", ErrBadInventory, s.SKU)
		}
		seen[s.SKU] = true
		if s.Capacity < 0 || s.Capacity > MaxCapacity {
			return fmt.Errorf("%w: SKU %q: capacity %d outside 0..%d", ErrBadInventory, s.SKU, s.Capacity, MaxCapacity)
		}
	}
	return nil
}
