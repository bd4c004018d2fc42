package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/concordtx/concord/wal"
)

func crashFSRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCrashFSDropsUnsyncedWrites(t *testing.T) {
	dir := t.TempDir()
	c := newCrashFS()
	durable := filepath.Join(dir, "durable")
	f, err := c.Create(durable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := c.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("def")); err != nil {
		t.Fatal(err)
	}
	// A file created and synced, but whose directory entry never was.
	fresh := filepath.Join(dir, "fresh")
	g, err := c.Create(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	lock, err := c.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = lock
	if _, err := c.Lock(dir); !errors.Is(err, wal.ErrLocked) {
		t.Fatalf("second lock before the crash: %v, want wal.ErrLocked", err)
	}
	if got := crashFSRead(t, durable); got != "abcdef" {
		t.Fatalf("before crash: %q", got)
	}

	if err := c.crash(); err != nil {
		t.Fatal(err)
	}
	if got := crashFSRead(t, durable); got != "abc" {
		t.Fatalf("after crash: %q, want the synced part only", got)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file whose creation was never synced survived: %v", err)
	}
	if _, err := f.Write([]byte("late")); !errors.Is(err, errCrashed) {
		t.Fatalf("write through a handle from before the crash: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, errCrashed) {
		t.Fatalf("sync through a handle from before the crash: %v", err)
	}
	if b, n := c.dropped(); b != 6 || n != 1 {
		t.Fatalf("dropped %d bytes, %d files; want 6, 1", b, n)
	}
	// The crashed process can do nothing more.
	if _, err := c.Create(filepath.Join(dir, "late")); !errors.Is(err, errCrashed) {
		t.Fatalf("create after the crash: %v", err)
	}
	if _, err := c.Lock(dir); !errors.Is(err, errCrashed) {
		t.Fatalf("lock after the crash: %v", err)
	}
	c.revive()
	// The lock died with the crash: the directory can be locked again.
	l2, err := c.Lock(dir)
	if err != nil {
		t.Fatalf("lock after crash: %v", err)
	}
	l2.Close()
	// Reopened files work normally.
	h, err := c.OpenFile(durable, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write([]byte("gh")); err != nil {
		t.Fatal(err)
	}
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.crash(); err != nil {
		t.Fatal(err)
	}
	c.revive()
	if got := crashFSRead(t, durable); got != "abcgh" {
		t.Fatalf("after second crash: %q", got)
	}
}

func TestCrashFSRenameCarriesDurability(t *testing.T) {
	dir := t.TempDir()
	c := newCrashFS()
	tmp, final := filepath.Join(dir, "snap.tmp"), filepath.Join(dir, "snap")
	f, err := c.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("snapshot")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if err := c.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.crash(); err != nil {
		t.Fatal(err)
	}
	c.revive()
	if got := crashFSRead(t, final); got != "snapshot" {
		t.Fatalf("renamed, synced file after crash: %q", got)
	}
}

func TestCrashFSUndoesUnsyncedWritesInPlace(t *testing.T) {
	dir := t.TempDir()
	c := newCrashFS()
	name := filepath.Join(dir, "seg")
	f, err := c.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	// Data, then zeros written ahead of it, synced.
	if _, err := f.WriteAt([]byte("abc\x00\x00\x00\x00\x00"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := c.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	// Synced in place: stays.
	if _, err := f.WriteAt([]byte("de"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Not synced: over the zeros, then past the end.
	if _, err := f.WriteAt([]byte("fg"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hijk"), 6); err != nil {
		t.Fatal(err)
	}
	if got := crashFSRead(t, name); got != "abcdefhijk" {
		t.Fatalf("before crash: %q", got)
	}
	if err := c.crash(); err != nil {
		t.Fatal(err)
	}
	c.revive()
	if got := crashFSRead(t, name); got != "abcde\x00\x00\x00" {
		t.Fatalf("after crash: %q, want the synced content", got)
	}
	// Overwritten: 2 + 2 bytes; appended: 2 more.
	if b, _ := c.dropped(); b != 6 {
		t.Fatalf("dropped %d bytes, want 6", b)
	}
}
