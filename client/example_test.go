package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wal/memfs"
)

// exampleCoordinator starts a coordinator over two fake participants for
// the examples; hotels has no room. It returns its URL and a stop func.
func exampleCoordinator() (string, func()) {
	flights, stopF := testutil.StartParticipant("flights")
	hotels, stopH := testutil.StartParticipant("hotels")
	hotels.SetVote(func(_ concord.TxID, p json.RawMessage) (concord.Vote, string) {
		if string(p) == `{"sku":"HT-FULL","quantity":1}` {
			return concord.VoteNo, "HT-FULL: sold out"
		}
		return concord.VoteYes, ""
	})
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), DecisionDelay: -1,
		Participants: map[string]string{"flights": flights.URL, "hotels": hotels.URL}})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	if err := c.Start(ln); err != nil {
		panic(err)
	}
	return c.URL(), func() { c.Close(); stopF(); stopH() }
}

type Booking struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

func ExampleClient_Run() {
	url, stop := exampleCoordinator()
	defer stop()

	cl, err := client.New(client.Options{URL: url})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, hotel := range []string{"HT-PARIS", "HT-FULL"} {
		res, err := cl.Run(ctx, client.Tx{
			Timeout: 5 * time.Second,
			Branches: []client.Branch{
				{Participant: "flights", Payload: Booking{SKU: "FL100", Quantity: 2}},
				{Participant: "hotels", Payload: Booking{SKU: hotel, Quantity: 1}},
			},
		})
		switch {
		case err == nil:
			fmt.Println(hotel, "booked:", res.Outcome)
		case errors.Is(err, client.ErrAborted):
			fmt.Println(hotel, "not booked:", res.Outcome, "-", res.Reason)
		default:
			fmt.Println(hotel, "failed:", err)
		}
	}
	// Output:
	// HT-PARIS booked: committed
	// HT-FULL not booked: aborted - hotels voted no: HT-FULL: sold out
}

func ExampleClient_List() {
	url, stop := exampleCoordinator()
	defer stop()

	cl, _ := client.New(client.Options{URL: url})
	ctx := context.Background()
	cl.Run(ctx, client.Tx{ID: "trip-1", Branches: []client.Branch{{Participant: "flights", Payload: Booking{SKU: "FL100", Quantity: 1}}}})
	list, err := cl.List(ctx, client.StateCommitted, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range list.Transactions {
		fmt.Println(st.ID, st.State)
	}
	// Output:
	// trip-1 committed
}
