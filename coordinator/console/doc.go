// Package console serves the coordinator's browser console: plain HTML,
// CSS and JavaScript embedded in the binary, reading the coordinator's JSON
// API.
package console
