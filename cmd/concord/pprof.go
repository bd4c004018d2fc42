package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// PprofEnvVar names an address (loopback, e.g. 127.0.0.1:6060) on which any
// concord process serves net/http/pprof, for profiling a coordinator or a
// service under load; concord bench --pprof sets it for the processes it
// starts. Unset, nothing is served.
const PprofEnvVar = "CONCORD_PPROF"

func init() {
	addr := os.Getenv(PprofEnvVar)
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "concord: %s=%s: %v (profiling off)\n", PprofEnvVar, addr, err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go http.Serve(ln, mux)
}
