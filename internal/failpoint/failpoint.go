package failpoint

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Environment variables read when the process starts.
const (
	// EnvVar holds the comma-separated name=action terms to arm.
	EnvVar = "CONCORD_FAILPOINTS"
	// SeedEnvVar seeds the random source of crash%P terms (an unsigned
	// integer); without it the seed is random.
	SeedEnvVar = "CONCORD_FAILPOINTS_SEED"
)

// ErrSyntax is returned for a term that is not name=crash, name=crash@N or
// name=crash%P.
var ErrSyntax = errors.New("bad failpoint syntax")

// ErrUnknown is returned for a term naming a failpoint that does not exist.
var ErrUnknown = errors.New("unknown failpoint")

// Term arms one failpoint. Exactly one of Nth and Percent is set.
type Term struct {
	Name string
	// Nth crashes on the Nth hit (1 is the first).
	Nth uint64
	// Percent crashes on each hit with this probability, in (0, 100].
	Percent float64
}

// String formats t in the syntax Parse reads.
func (t Term) String() string {
	switch {
	case t.Percent > 0:
		return t.Name + "=crash%" + strconv.FormatFloat(t.Percent, 'g', -1, 64)
	case t.Nth > 1:
		return t.Name + "=crash@" + strconv.FormatUint(t.Nth, 10)
	default:
		return t.Name + "=crash"
	}
}

// Format joins terms in the syntax of EnvVar.
func Format(terms []Term) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

// Parse reads the value of EnvVar. An empty value arms nothing. Every
// failpoint may appear once.
func Parse(spec string) ([]Term, error) {
	var terms []Term
	seen := map[string]bool{}
	for _, raw := range strings.Split(spec, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		t, err := parseTerm(raw)
		if err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("%w: %q is armed twice", ErrSyntax, t.Name)
		}
		seen[t.Name] = true
		terms = append(terms, t)
	}
	return terms, nil
}

func parseTerm(raw string) (Term, error) {
	name, action, ok := strings.Cut(raw, "=")
	name, action = strings.TrimSpace(name), strings.TrimSpace(action)
	if !ok || name == "" {
		return Term{}, fmt.Errorf("%w: %q: want name=crash, name=crash@N or name=crash%%P", ErrSyntax, raw)
	}
	if !Known(name) {
		return Term{}, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, knownList())
	}
	t := Term{Name: name}
	switch {
	case action == "crash":
		t.Nth = 1
	case strings.HasPrefix(action, "crash@"):
		n, err := strconv.ParseUint(action[len("crash@"):], 10, 64)
		if err != nil || n == 0 {
			return Term{}, fmt.Errorf("%w: %q: N in crash@N must be a whole number from 1", ErrSyntax, raw)
		}
		t.Nth = n
	case strings.HasPrefix(action, "crash%"):
		p, err := strconv.ParseFloat(action[len("crash%"):], 64)
		if err != nil || !(p > 0 && p <= 100) {
			return Term{}, fmt.Errorf("%w: %q: P in crash%%P must be a percentage in (0, 100]", ErrSyntax, raw)
		}
		t.Percent = p
	default:
		return Term{}, fmt.Errorf("%w: %q: unknown action %q, want crash, crash@N or crash%%P", ErrSyntax, raw, action)
	}
	return t, nil
}

func knownList() string {
	names := make([]string, len(points))
	for i, p := range points {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// armedPoint is one armed failpoint: its term and how often it was hit.
type armedPoint struct {
	term Term
	hits atomic.Uint64
	mu   sync.Mutex // guards rng
	rng  *rand.Rand
}

// armedSet is the immutable set of armed failpoints; only hit counters and
// random sources change.
type armedSet map[string]*armedPoint

// active is nil while nothing is armed, so a disarmed Hit is one load.
var active atomic.Pointer[armedSet]

// crash kills the process; tests replace it.
var crash = crashProcess

// Hit is placed in the code at a failpoint. Disarmed it does nothing; armed,
// it may kill the process here.
func Hit(name string) {
	if s := active.Load(); s != nil {
		s.hit(name)
	}
}

func (s *armedSet) hit(name string) {
	p := (*s)[name]
	if p == nil {
		return
	}
	n := p.hits.Add(1)
	if p.term.Percent > 0 {
		p.mu.Lock()
		fire := p.rng.Float64()*100 < p.term.Percent
		p.mu.Unlock()
		if fire {
			crash(name, n)
		}
		return
	}
	if n == p.term.Nth {
		crash(name, n)
	}
}

// Arm replaces the armed failpoints with terms; seed drives crash%P terms.
// An empty terms disarms everything. Every term must name a known failpoint
// (as Parse guarantees).
func Arm(terms []Term, seed uint64) error {
	if len(terms) == 0 {
		active.Store(nil)
		return nil
	}
	s := armedSet{}
	for _, t := range terms {
		if !Known(t.Name) {
			return fmt.Errorf("%w %q", ErrUnknown, t.Name)
		}
		if (t.Nth == 0) == (t.Percent == 0) || t.Percent < 0 || t.Percent > 100 {
			return fmt.Errorf("%w: %s: set exactly one of Nth and Percent", ErrSyntax, t.Name)
		}
		h := fnv.New64a()
		h.Write([]byte(t.Name))
		s[t.Name] = &armedPoint{term: t, rng: rand.New(rand.NewPCG(seed, h.Sum64()))}
	}
	active.Store(&s)
	return nil
}

// Disarm disarms every failpoint.
func Disarm() { active.Store(nil) }

// Armed returns the armed terms, sorted as Points lists them.
func Armed() []Term {
	s := active.Load()
	if s == nil {
		return nil
	}
	var out []Term
	for _, p := range points {
		if a := (*s)[p.Name]; a != nil {
			out = append(out, a.term)
		}
	}
	return out
}

// Hits reports how often an armed failpoint has been hit (0 if disarmed).
func Hits(name string) uint64 {
	if s := active.Load(); s != nil {
		if p := (*s)[name]; p != nil {
			return p.hits.Load()
		}
	}
	return 0
}

// ArmFromEnv arms the failpoints named by the environment (EnvVar and
// SeedEnvVar). It is called when the package is initialised.
func ArmFromEnv() error {
	spec, ok := os.LookupEnv(EnvVar)
	if !ok {
		return nil
	}
	terms, err := Parse(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvVar, err)
	}
	seed := rand.Uint64()
	if s, ok := os.LookupEnv(SeedEnvVar); ok {
		seed, err = strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w: %q is not an unsigned integer", SeedEnvVar, ErrSyntax, s)
		}
	}
	return Arm(terms, seed)
}

func init() {
	if err := ArmFromEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "concord: refusing to start: %v\n", err)
		os.Exit(2)
	}
}
