// Package chaos runs Concord as separate operating-system processes (a
// coordinator and the travel services) under concurrent bookings while it
// kills them with SIGKILL, arms failpoints and disturbs their traffic, then
// heals everything and checks through the public APIs that every transaction
// ended the same everywhere and that inventories were conserved.
package chaos
