// Package participant is the SDK for writing a Concord participant: a service
// implements the small Resource interface, and Server speaks the participant
// wire protocol on top of it, owning duplicates, late messages and in-doubt
// resolution so that a service cannot get them wrong.
package participant
