// Package faultproxy is an HTTP-aware TCP proxy on the loopback interface
// that cuts, delays, duplicates and resets the requests it forwards, so that
// tests can disturb the traffic between real processes.
package faultproxy
