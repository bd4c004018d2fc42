package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// PprofEnvVar names an address (loopback, e.g. 127.0.0.1:6060) on which any
// concord process serves net/http/pprof, for profiling a coordinator or a
// service under load; concord bench --pprof sets it for the processes it
// starts. Unset, nothing is served. The profiles are served without
// authentication (they show memory and stacks), so an address that is not
// loopback is refused unless PprofAnyEnvVar is 1.
const PprofEnvVar = "CONCORD_PPROF"

// PprofAnyEnvVar, set to 1, lets PprofEnvVar name an address other than a
// loopback one.
const PprofAnyEnvVar = "CONCORD_PPROF_ANY_ADDRESS"

func init() {
	if ln := pprofListener(os.Getenv(PprofEnvVar), os.Getenv(PprofAnyEnvVar) == "1", os.Stderr); ln != nil {
		go http.Serve(ln, pprofMux())
	}
}

// pprofListener listens on addr for pprof, or returns nil (saying why on
// stderr): addr empty, not a loopback address without any, or not
// listenable.
func pprofListener(addr string, anyAddr bool, stderr io.Writer) net.Listener {
	if addr == "" {
		return nil
	}
	if !anyAddr && !loopbackAddr(addr) {
		fmt.Fprintf(stderr, "concord: %s=%s: not a loopback address; pprof is unauthenticated, so it serves on 127.0.0.1 or ::1 only unless %s=1 (profiling off)\n",
			PprofEnvVar, addr, PprofAnyEnvVar)
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "concord: %s=%s: %v (profiling off)\n", PprofEnvVar, addr, err)
		return nil
	}
	return ln
}

// loopbackAddr reports whether host:port names a loopback IP address (or
// localhost). An empty host (all interfaces) is not one.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
