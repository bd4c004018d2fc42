package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord/wal"
)

// fanOutChildEnv makes the test binary a fan-out child: it serves on a
// loopback port, printing the address, and answers every byte it reads
// with one byte, after a durable append to a log in the directory the
// variable names unless that is "-".
const fanOutChildEnv = "CONCORD_FANOUT_CHILD"

// TestFanOutChild is the child's body; it does nothing in a normal run.
func TestFanOutChild(t *testing.T) {
	dir := os.Getenv(fanOutChildEnv)
	if dir == "" {
		t.Skip("run by BenchmarkFanOutFloor as a child process")
	}
	var log *wal.Log
	if dir != "-" {
		l, err := wal.Open(wal.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		log = l
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	rec := make([]byte, 128)
	for {
		if _, err := r.ReadByte(); err != nil {
			return // the benchmark is done
		}
		if log != nil {
			if _, err := log.Append(1, rec); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkFanOutFloor measures what no transaction manager built of
// separate processes can go below on this machine: one byte sent over raw
// loopback TCP to 1 or 3 other processes at once (one processor each, as
// concord bench starts the services), each answering after an append with
// fdatasync (sync=true) or at once. With a pause between rounds
// the processes sleep as they do between the messages of a lone client's
// transaction, and every round pays for waking them. It reports the median
// round in us/round.
func BenchmarkFanOutFloor(b *testing.B) {
	for _, procs := range []int{1, 3} {
		for _, sync := range []bool{true, false} {
			for _, pause := range []time.Duration{0, 300 * time.Microsecond} {
				name := fmt.Sprintf("procs=%d/sync=%t/pause=%s", procs, sync, pause)
				b.Run(name, func(b *testing.B) { fanOut(b, procs, sync, pause) })
			}
		}
	}
}

func fanOut(b *testing.B, procs int, durable bool, pause time.Duration) {
	conns := make([]net.Conn, procs)
	for i := range conns {
		dir := "-"
		if durable {
			dir = filepath.Join(b.TempDir(), "wal")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestFanOutChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), fanOutChildEnv+"="+dir, "GOMAXPROCS=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addr, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			b.Fatalf("child: %v", err)
		}
		if conns[i], err = net.Dial("tcp", strings.TrimSpace(addr)); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conns[i].Close() })
	}
	var ds []time.Duration
	var wg sync.WaitGroup
	for b.Loop() {
		t0 := time.Now()
		for _, c := range conns {
			wg.Go(func() {
				var one [1]byte
				if _, err := c.Write(one[:]); err != nil {
					b.Error(err)
				} else if _, err := c.Read(one[:]); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		ds = append(ds, time.Since(t0))
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	b.ReportMetric(float64(median(ds).Nanoseconds())/1e3, "us/round")
}
