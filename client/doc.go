// Package client is the Go SDK for applications that run transactions on a
// Concord coordinator: submit one, read its state, list them, and ask an
// outcome.
package client
