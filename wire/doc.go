// Package wire defines the JSON messages Concord speaks over HTTP: the client
// API of the coordinator and the participant protocol (batched prepare, commit
// and abort). docs/protocol.md specifies the same messages for implementers in
// other languages.
package wire
