package failpoint

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// recordCrashes replaces the crash function for one test and returns the
// crashes it saw.
func recordCrashes(t *testing.T) *crashLog {
	t.Helper()
	l := &crashLog{}
	old := crash
	crash = func(name string, hit uint64) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.names = append(l.names, name)
		l.hits = append(l.hits, hit)
	}
	t.Cleanup(func() { crash = old; Disarm() })
	return l
}

type crashLog struct {
	mu    sync.Mutex
	names []string
	hits  []uint64
}

func (l *crashLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.names)
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		spec string
		want []Term
	}{
		{"", nil},
		{" , ", nil},
		{"coordinator.after-decision-sync=crash", []Term{{Name: CoordinatorAfterDecisionSync, Nth: 1}}},
		{"participant.after-commit=crash@7", []Term{{Name: ParticipantAfterCommit, Nth: 7}}},
		{"participant.after-prepare-sync=crash%12.5", []Term{{Name: ParticipantAfterPrepareSync, Percent: 12.5}}},
		{" coordinator.after-votes = crash , coordinator.after-begin-log=crash@2 ", []Term{
			{Name: CoordinatorAfterVotes, Nth: 1}, {Name: CoordinatorAfterBeginLog, Nth: 2}}},
	}
	for _, c := range cases {
		got, err := Parse(c.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.spec, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.spec, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Parse(%q)[%d] = %+v, want %+v", c.spec, i, got[i], c.want[i])
			}
		}
	}
}

func TestParseInvalid(t *testing.T) {
	cases := []struct {
		spec    string
		wantErr error
		mention string
	}{
		{"coordinator.after-lunch=crash", ErrUnknown, "coordinator.after-lunch"},
		{"crash", ErrSyntax, "crash"},
		{"=crash", ErrSyntax, "=crash"},
		{"coordinator.after-votes", ErrSyntax, "coordinator.after-votes"},
		{"coordinator.after-votes=explode", ErrSyntax, "explode"},
		{"coordinator.after-votes=crash@0", ErrSyntax, "crash@0"},
		{"coordinator.after-votes=crash@-1", ErrSyntax, "crash@-1"},
		{"coordinator.after-votes=crash@x", ErrSyntax, "crash@x"},
		{"coordinator.after-votes=crash%0", ErrSyntax, "crash%0"},
		{"coordinator.after-votes=crash%101", ErrSyntax, "crash%101"},
		{"coordinator.after-votes=crash%NaN", ErrSyntax, "crash%NaN"},
		{"coordinator.after-votes=crash,coordinator.after-votes=crash@2", ErrSyntax, "armed twice"},
	}
	for _, c := range cases {
		_, err := Parse(c.spec)
		if !errors.Is(err, c.wantErr) {
			t.Errorf("Parse(%q) error %v, want %v", c.spec, err, c.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Parse(%q) error %q does not mention %q", c.spec, err, c.mention)
		}
	}
}

func TestTermStringRoundTrip(t *testing.T) {
	terms := []Term{
		{Name: CoordinatorAfterBeginLog, Nth: 1},
		{Name: CoordinatorAfterCommitSent, Nth: 4},
		{Name: ParticipantAfterCommit, Percent: 0.5},
	}
	got, err := Parse(Format(terms))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(terms) {
		t.Fatalf("round trip %v -> %v", terms, got)
	}
	for i := range terms {
		if got[i] != terms[i] {
			t.Errorf("round trip [%d]: %+v -> %+v", i, terms[i], got[i])
		}
	}
}

func TestEveryPointIsKnownAndDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Points() {
		if !Known(p.Name) || p.Doc == "" || seen[p.Name] {
			t.Errorf("point %+v: known=%v, duplicate=%v", p, Known(p.Name), seen[p.Name])
		}
		seen[p.Name] = true
	}
	for _, name := range []string{
		CoordinatorAfterBeginLog, CoordinatorAfterPrepareSent, CoordinatorAfterVotes,
		CoordinatorAfterDecisionSync, CoordinatorAfterCommitSent,
		ParticipantAfterPrepareSync, ParticipantAfterCommit,
	} {
		if !seen[name] {
			t.Errorf("%s missing from Points", name)
		}
	}
}

func TestCrashOnNthHitOnly(t *testing.T) {
	crashes := recordCrashes(t)
	if err := Arm([]Term{{Name: CoordinatorAfterVotes, Nth: 3}}, 1); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		Hit(CoordinatorAfterVotes)
		Hit(CoordinatorAfterBeginLog) // not armed
		want := 0
		if i >= 3 {
			want = 1
		}
		if got := crashes.count(); got != want {
			t.Fatalf("after %d hits: %d crashes, want %d", i, got, want)
		}
	}
	if crashes.names[0] != CoordinatorAfterVotes || crashes.hits[0] != 3 {
		t.Fatalf("crash %s at hit %d, want %s at hit 3", crashes.names[0], crashes.hits[0], CoordinatorAfterVotes)
	}
	if got := Hits(CoordinatorAfterVotes); got != 5 {
		t.Fatalf("Hits = %d, want 5", got)
	}
}

func TestDisarmedNeverCrashes(t *testing.T) {
	crashes := recordCrashes(t)
	if err := Arm([]Term{{Name: ParticipantAfterCommit, Nth: 1}}, 1); err != nil {
		t.Fatal(err)
	}
	Disarm()
	for _, p := range Points() {
		Hit(p.Name)
	}
	if crashes.count() != 0 || Armed() != nil {
		t.Fatalf("disarmed: %d crashes, armed %v", crashes.count(), Armed())
	}
}

func TestPercentIsSeededAndNearRate(t *testing.T) {
	run := func(seed uint64) []uint64 {
		crashes := recordCrashes(t)
		if err := Arm([]Term{{Name: ParticipantAfterPrepareSync, Percent: 20}}, seed); err != nil {
			t.Fatal(err)
		}
		for range 5000 {
			Hit(ParticipantAfterPrepareSync)
		}
		return crashes.hits
	}
	a, b := run(7), run(7)
	if len(a) < 800 || len(a) > 1200 {
		t.Fatalf("20%% of 5000 hits crashed %d times", len(a))
	}
	if len(a) != len(b) {
		t.Fatalf("same seed, %d vs %d crashes", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, crash %d at hit %d vs %d", i, a[i], b[i])
		}
	}
	if c := run(8); len(c) == len(a) && c[0] == a[0] && c[len(c)-1] == a[len(a)-1] {
		t.Fatalf("different seeds crash at the same hits")
	}
}

func TestConcurrentHitsCrashOnce(t *testing.T) {
	crashes := recordCrashes(t)
	if err := Arm([]Term{{Name: CoordinatorAfterCommitSent, Nth: 500}}, 1); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				Hit(CoordinatorAfterCommitSent)
			}
		}()
	}
	wg.Wait()
	if crashes.count() != 1 || crashes.hits[0] != 500 {
		t.Fatalf("crashes at hits %v, want exactly one at 500", crashes.hits)
	}
}

func TestArmRejectsBadTerms(t *testing.T) {
	recordCrashes(t)
	for _, terms := range [][]Term{
		{{Name: "nope", Nth: 1}},
		{{Name: ParticipantAfterCommit}},
		{{Name: ParticipantAfterCommit, Nth: 1, Percent: 5}},
		{{Name: ParticipantAfterCommit, Percent: 150}},
	} {
		if err := Arm(terms, 1); err == nil {
			t.Errorf("Arm(%+v) accepted", terms)
		}
	}
}

func TestParseFired(t *testing.T) {
	name, ok := ParseFired(FiredLine(CoordinatorAfterDecisionSync, 2))
	if !ok || name != CoordinatorAfterDecisionSync {
		t.Fatalf("ParseFired(FiredLine) = %q, %v", name, ok)
	}
	for _, line := range []string{"", "panic: oops", "concord: failpoint fired: bogus (hit 1)"} {
		if _, ok := ParseFired(line); ok {
			t.Errorf("ParseFired(%q) ok", line)
		}
	}
}
