package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func init() {
	register("version", "print the version, commit and Go version of this binary", runVersion)
}

// versionInfo is what concord version prints: where this binary came from,
// as the Go toolchain recorded it at build time.
type versionInfo struct {
	Module    string `json:"module"`
	Version   string `json:"version"`          // "(devel)" when built from a checkout
	Commit    string `json:"commit,omitempty"` // VCS revision, when built in a checkout
	CommitAt  string `json:"commit_time,omitempty"`
	Dirty     bool   `json:"dirty"` // built with uncommitted changes
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// readBuildInfo reads the binary's build information; readBuildInfo is the
// seam the tests replace.
var readBuildInfo = debug.ReadBuildInfo

func currentVersion() versionInfo {
	v := versionInfo{Version: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := readBuildInfo()
	if !ok {
		return v
	}
	v.Module, v.Version = bi.Main.Path, bi.Main.Version
	if v.Version == "" {
		v.Version = "unknown"
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitAt = s.Value
		case "vcs.modified":
			v.Dirty = s.Value == "true"
		}
	}
	return v
}

// String is the one line concord --version prints.
func (v versionInfo) String() string {
	s := "concord " + v.Version
	if v.Commit != "" {
		s += " commit " + v.Commit
		if v.Dirty {
			s += " (dirty)"
		}
	}
	return s + " " + v.GoVersion + " " + v.Platform
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	v := currentVersion()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "concord version: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stdout, v)
	return 0
}
