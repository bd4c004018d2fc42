package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/concordtx/concord/internal/etcdmember"
)

func init() {
	register("etcd", "run one embedded etcd member (development and tests)", func(args []string, stdout, stderr io.Writer) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return etcdmember.Run(ctx, args, stderr)
	})
}
