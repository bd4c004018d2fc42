package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// lineSignal is an io.Writer that keeps what is written and sends each
// complete line on a channel, so a test can wait for a line without polling.
type lineSignal struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	part  string
	lines chan string
}

func newLineSignal() *lineSignal { return &lineSignal{lines: make(chan string, 1000)} }

func (l *lineSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.part += string(p)
	for {
		i := strings.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		select {
		case l.lines <- l.part[:i]:
		default:
		}
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *lineSignal) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startParticipantCmd runs concord participant in the background and
// returns its base URL, a stop function that returns the exit status, and
// its output.
func startParticipantCmd(t *testing.T, args ...string) (string, func() int, *lineSignal, *lineSignal) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := newLineSignal(), newLineSignal()
	done := make(chan int, 1)
	go func() { done <- runParticipant(ctx, args, out, errb) }()
	var base string
	select {
	case code := <-done:
		cancel()
		t.Fatalf("participant exited with %d before serving:\n%s%s", code, out.String(), errb.String())
	case line := <-waitLineAsync(t, out, "serving on http://"):
		base = strings.Fields(line[strings.Index(line, "serving on ")+len("serving on "):])[0]
	}
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { stop() })
	return base, stop, out, errb
}

func waitLineAsync(t *testing.T, l *lineSignal, s string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		deadline := time.After(30 * time.Second)
		for {
			select {
			case line := <-l.lines:
				if strings.Contains(line, s) {
					ch <- line
					return
				}
			case <-deadline:
				return
			}
		}
	}()
	return ch
}

func TestParticipantCommandBadFlags(t *testing.T) {
	cases := []struct {
		args    []string
		mention string
	}{
		{nil, "--service is required"},
		{[]string{"--service", "trains"}, `--service "trains": want one of flights, hotels, cars`},
		{[]string{"--service", "flights", "--inventory", "FL100"}, "--inventory: bad inventory: entry 1"},
		{[]string{"--service", "flights", "--inventory", "FL100=-4"}, "capacity"},
		{[]string{"--service", "flights", "--coordinator", "localhost:7070"}, "--coordinator"},
		{[]string{"--service", "flights", "--store", "redis://x", "--data", t.TempDir()}, `unknown store "redis://"`},
		{[]string{"--service", "flights", "--in-doubt-after", "0s"}, "--in-doubt-after"},
		{[]string{"--service", "flights", "extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := runParticipant(t.Context(), c.args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.mention) {
			t.Errorf("%v: exit %d, stderr %q; want 2 mentioning %q", c.args, code, errb.String(), c.mention)
		}
	}
}

func TestParticipantCommandCannotStart(t *testing.T) {
	// A port already taken.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errb bytes.Buffer
	code := runParticipant(t.Context(), []string{"--service", "cars", "--listen", ln.Addr().String(), "--data", t.TempDir()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "listen on "+ln.Addr().String()) {
		t.Fatalf("port in use: exit %d, stderr %q", code, errb.String())
	}
	// A data directory that is a file.
	file := t.TempDir() + "/file"
	if err := writeTestFile(file); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	code = runParticipant(t.Context(), []string{"--service", "cars", "--listen", "127.0.0.1:0", "--data", file}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), file) {
		t.Fatalf("data dir is a file: exit %d, stderr %q", code, errb.String())
	}
}

func writeTestFile(name string) error { return os.WriteFile(name, []byte("not a directory"), 0o644) }

// TestParticipantCommandServesAndRestarts runs the command, holds a
// reservation, stops it, checks that a different --inventory is refused,
// and restarts it to find the reservation still prepared.
func TestParticipantCommandServesAndRestarts(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--service", "flights", "--listen", "127.0.0.1:0", "--data", dir, "--inventory", "FL100=5,FL9=1"}
	base, stop, _, _ := startParticipantCmd(t, args...)

	var inv travel.InventoryResponse
	if err := wire.Do(t.Context(), http.DefaultClient, "GET", base+travel.PathInventory, nil, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Service != "flights" || len(inv.Items) != 2 || inv.Items[0] != (travel.Item{SKU: "FL100", Capacity: 5, Available: 5}) {
		t.Fatalf("inventory %+v", inv)
	}
	pc := &wire.ParticipantClient{BaseURL: base}
	votes := map[concord.TxID]concord.Vote{}
	for _, tx := range []wire.PrepareTx{
		{ID: "t1", Payload: travel.Request{SKU: "FL100", Quantity: 2}.Payload()},
		{ID: "t2", Payload: travel.Request{SKU: "FL100", Quantity: 4}.Payload()},
	} {
		resp, err := pc.Prepare(t.Context(), wire.PrepareRequest{Transactions: []wire.PrepareTx{tx}})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range resp.Votes {
			votes[v.ID] = v.Vote
		}
	}
	if votes["t1"] != concord.VoteYes || votes["t2"] != concord.VoteNo {
		t.Fatalf("votes %v", votes)
	}
	if code := stop(); code != 0 {
		t.Fatalf("graceful stop: exit %d", code)
	}

	var out, errb bytes.Buffer
	bad := []string{"--service", "flights", "--listen", "127.0.0.1:0", "--data", dir, "--inventory", "FL100=6"}
	if code := runParticipant(t.Context(), bad, &out, &errb); code != 1 || !strings.Contains(errb.String(), "stored inventory differs") {
		t.Fatalf("changed inventory: exit %d, stderr %q", code, errb.String())
	}

	base, _, out2, _ := startParticipantCmd(t, "--service", "flights", "--listen", "127.0.0.1:0", "--data", dir, "--in-doubt-after", "1h")
	if !strings.Contains(out2.String(), "1 reservations in doubt") {
		t.Fatalf("restart did not recover the prepared reservation:\n%s", out2.String())
	}
	var list travel.ReservationList
	if err := wire.Do(t.Context(), http.DefaultClient, "GET", base+travel.PathReservations+"?state=prepared", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Reservations) != 1 || list.Reservations[0].ID != "t1" || list.Reservations[0].Quantity != 2 {
		t.Fatalf("prepared after restart: %+v", list)
	}
	var st travel.StatusResponse
	if err := wire.Do(t.Context(), http.DefaultClient, "GET", base+travel.PathStatus, nil, &st); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(st); len(st.InDoubt) != 1 || st.InDoubt[0].ID != "t1" {
		t.Fatalf("status %s", b)
	}
}

func TestParticipantCommandMemoryStore(t *testing.T) {
	base, stop, out, _ := startParticipantCmd(t, "--service", "cars", "--listen", "127.0.0.1:0", "--store", "memory", "--inventory", "C-ECON=2")
	if !strings.Contains(out.String(), "memory store: nothing survives this process") {
		t.Fatalf("start line: %s", out.String())
	}
	var inv travel.InventoryResponse
	if err := wire.Do(t.Context(), http.DefaultClient, "GET", base+travel.PathInventory, nil, &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Items) != 1 || inv.Items[0].Capacity != 2 {
		t.Fatalf("inventory %+v", inv)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestRedactStoreURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://user:secret@127.0.0.1:5432/db?sslmode=disable": "postgres://127.0.0.1:5432",
		"mysql://root@127.0.0.1:3306/test":                         "mysql://127.0.0.1:3306",
		"nonsense":                                                 "?",
	} {
		if got := redactStoreURL(in); got != want || strings.Contains(got, "secret") {
			t.Errorf("redactStoreURL(%q) = %q, want %q", in, got, want)
		}
	}
}
