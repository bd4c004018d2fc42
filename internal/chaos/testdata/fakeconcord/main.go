// Command fakeconcord is a small stand-in for the concord binary that the
// chaos package's own tests drive: a two-phase-commit coordinator and
// inventory participants with the same command lines and HTTP APIs, durable
// through fsynced JSON-lines logs, with the same failpoints. Its --bug flag
// switches on deliberately broken behaviour, to show that the chaos checker
// notices it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fakeconcord coordinator|participant [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "coordinator":
		err = coordinatorMain(os.Args[2:])
	case "participant":
		err = participantMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeconcord:", err)
		os.Exit(1)
	}
}

// logEntry is one line of either process's log.
type logEntry struct {
	T     string   `json:"t"`
	ID    string   `json:"id"`
	Parts []string `json:"parts,omitempty"`
	SKU   string   `json:"sku,omitempty"`
	Qty   int64    `json:"qty,omitempty"`
}

// jlog is an append-only JSON-lines file; sync forces it to disk.
type jlog struct {
	mu sync.Mutex
	f  *os.File
}

func openLog(dir, name string) (*jlog, []logEntry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	var entries []logEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			break // torn tail
		}
		entries = append(entries, e)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return &jlog{f: f}, entries, nil
}

func (l *jlog) write(e logEntry, sync bool) {
	b, _ := json.Marshal(e)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		panic(err)
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			panic(err)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func postJSON(hc *http.Client, url string, in, out any) error {
	b, _ := json.Marshal(in)
	resp, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("http %d: %s", resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
