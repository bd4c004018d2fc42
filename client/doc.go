// Package client is the Go SDK for applications that run transactions on a
// Concord coordinator: run one, read its state, list them, ask an outcome.
//
// A Client is made once with New and shared: it is safe for concurrent use
// and keeps its connections. Run takes Go values: each Branch's payload is
// marshalled with encoding/json, the timeout is a time.Duration. Its error
// tells the outcomes apart:
//
//	cl, err := client.New(client.Options{URL: "https://127.0.0.1:7070", Token: token, TLS: tlsConfig})
//	if err != nil {
//		return err
//	}
//	res, err := cl.Run(ctx, client.Tx{
//		ID:      "trip-1842", // the idempotency key; empty chooses one
//		Timeout: 5 * time.Second,
//		Branches: []client.Branch{
//			{Participant: "flights", Payload: Booking{SKU: "FL100", Quantity: 2}},
//			{Participant: "hotels", Payload: Booking{SKU: "HT-PARIS", Quantity: 1}},
//		},
//	})
//	switch {
//	case err == nil:
//		// committed at every participant (res.Committed())
//	case errors.Is(err, client.ErrAborted):
//		// aborted: nothing was applied anywhere; res.Reason says why
//	case errors.Is(err, client.ErrPending):
//		// not decided yet: ask cl.Get(ctx, res.ID) later
//	default:
//		// not known to have run: running it again with ID res.ID is safe
//	}
//
// Failures are *APIError values matching ErrBadRequest, ErrNotFound,
// ErrForgotten, ErrConflict, ErrUnavailable, ErrUnauthorized or
// ErrForbidden, input refused before sending matches ErrInvalidInput, and
// anything else is a transport error. Options.URLs lists further
// coordinators, tried in order when one cannot be reached.
//
// Submit is the same call on the wire types (package wire) for callers that
// hold JSON already.
package client
