// Package etcdmember runs one embedded etcd member (go.etcd.io/etcd/server
// embed) from etcd's own command-line flags, for development and tests: the
// `concord etcd` subcommand and the tests of package declog/etcdlog run it,
// so that a newcomer needs no other install. Production points the
// coordinators at any etcd 3.5 or later instead.
//
// Unlike a bare etcd, a member started here compacts etcd's key history on
// its own by default (--auto-compaction-mode periodic, retention 1m): every
// chunk a decision log writes and every deletion by its compaction leaves a
// revision behind, and without compaction etcd's history, and its
// database, would grow until the space quota stops every write. (etcd's
// revision mode compacts only every five minutes.)
package etcdmember

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Defaults that differ from a bare etcd's.
const (
	DefaultAutoCompactionMode      = "periodic"
	DefaultAutoCompactionRetention = "1m"
)

// stopTimeout bounds a clean stop after the context ends.
const stopTimeout = 10 * time.Second

// Run parses args (etcd's flag names), starts the member, writes a line to
// stderr once it serves clients, and serves until ctx ends; then it stops
// the member cleanly. It returns the exit status: 0 after a clean stop, 2
// for bad flags, 1 if the member cannot start or fails.
func Run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, code, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "concord etcd: %v\n", err)
		}
		return code
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "concord etcd: start member %q: %v\n", cfg.Name, err)
		return 1
	}
	// e.Close may be called once only: it runs here on every path out.
	stop := sync.OnceFunc(e.Close)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(stderr, "concord etcd: member %s (id %x) ready, serving clients on %s\n",
			cfg.Name, uint64(e.Server.MemberID()), urlList(cfg.AdvertiseClientUrls))
	case err := <-e.Err():
		fmt.Fprintf(stderr, "concord etcd: member %s failed before it was ready: %v\n", cfg.Name, err)
		stop()
		return 1
	case <-ctx.Done():
		// Not ready yet (no quorum, say): stop all the same.
	}
	select {
	case err := <-e.Err():
		fmt.Fprintf(stderr, "concord etcd: member %s failed: %v\n", cfg.Name, err)
		stop()
		return 1
	case <-e.Server.StopNotify():
		fmt.Fprintf(stderr, "concord etcd: member %s stopped by the cluster (removed?)\n", cfg.Name)
		stop()
		return 1
	case <-ctx.Done():
	}
	fmt.Fprintf(stderr, "concord etcd: stopping member %s\n", cfg.Name)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		fmt.Fprintf(stderr, "concord etcd: member %s stopped\n", cfg.Name)
		return 0
	case <-time.After(stopTimeout):
		fmt.Fprintf(stderr, "concord etcd: member %s did not stop within %v\n", cfg.Name, stopTimeout)
		return 1
	}
}

// parse builds the member's configuration from args; on error it returns
// the exit status too.
func parse(args []string, stderr io.Writer) (*embed.Config, int, error) {
	cfg := embed.NewConfig()
	fs := flag.NewFlagSet("concord etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Name, "name", "default", "human-readable `name` of this member")
	fs.StringVar(&cfg.Dir, "data-dir", "", "`directory` of the member's data (default: NAME.etcd)")
	listenClient := fs.String("listen-client-urls", "http://127.0.0.1:2379", "comma-separated `URLs` to serve clients on")
	advertiseClient := fs.String("advertise-client-urls", "", "comma-separated client `URLs` of this member told to the cluster (default: --listen-client-urls)")
	listenPeer := fs.String("listen-peer-urls", "http://127.0.0.1:2380", "comma-separated `URLs` to serve the other members on")
	advertisePeer := fs.String("initial-advertise-peer-urls", "", "comma-separated peer `URLs` of this member told to the cluster (default: --listen-peer-urls)")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "initial cluster configuration for bootstrapping, `name=peerURL,...` (default: NAME=first peer URL)")
	fs.StringVar(&cfg.ClusterState, "initial-cluster-state", embed.ClusterStateFlagNew, "`state` of the cluster: new (bootstrap it) or existing (join it)")
	fs.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", cfg.InitialClusterToken, "`token` of the cluster during bootstrap, distinct per cluster")
	fs.StringVar(&cfg.AutoCompactionMode, "auto-compaction-mode", DefaultAutoCompactionMode, "how to read --auto-compaction-retention: periodic (a duration) or revision (a count)")
	fs.StringVar(&cfg.AutoCompactionRetention, "auto-compaction-retention", DefaultAutoCompactionRetention, "history of the key space to keep: a duration (periodic) or a number of revisions (revision); 0 disables auto compaction")
	fs.Int64Var(&cfg.QuotaBackendBytes, "quota-backend-bytes", 0, "space `bytes` the database may use before etcd refuses writes (0: etcd's default, 2 GiB)")
	fs.UintVar(&cfg.TickMs, "heartbeat-interval", cfg.TickMs, "`milliseconds` between heartbeats")
	fs.UintVar(&cfg.ElectionMs, "election-timeout", cfg.ElectionMs, "`milliseconds` of an election timeout")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "least `level` logged: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "console", "log line `format`: console (for people) or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord etcd --name NAME --data-dir DIR --listen-client-urls URLS --listen-peer-urls URLS --initial-cluster NAME=URL,...")
		fmt.Fprintln(stderr, "Runs one embedded etcd member, for development and tests, until SIGINT or SIGTERM.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0, err
		}
		return nil, 2, err
	}
	if fs.NArg() > 0 {
		return nil, 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.ListenClientUrls, err = parseURLs("--listen-client-urls", *listenClient); err != nil {
		return nil, 2, err
	}
	if cfg.ListenPeerUrls, err = parseURLs("--listen-peer-urls", *listenPeer); err != nil {
		return nil, 2, err
	}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	if *advertiseClient != "" {
		if cfg.AdvertiseClientUrls, err = parseURLs("--advertise-client-urls", *advertiseClient); err != nil {
			return nil, 2, err
		}
	}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	if *advertisePeer != "" {
		if cfg.AdvertisePeerUrls, err = parseURLs("--initial-advertise-peer-urls", *advertisePeer); err != nil {
			return nil, 2, err
		}
	}
	if cfg.Dir == "" {
		cfg.Dir = cfg.Name + ".etcd"
	}
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.Name + "=" + cfg.AdvertisePeerUrls[0].String()
	}
	if cfg.ClusterState != embed.ClusterStateFlagNew && cfg.ClusterState != embed.ClusterStateFlagExisting {
		return nil, 2, fmt.Errorf("--initial-cluster-state %q: want new or existing", cfg.ClusterState)
	}
	switch cfg.LogFormat {
	case "console", "json":
	default:
		return nil, 2, fmt.Errorf("--log-format %q: want console or json", cfg.LogFormat)
	}
	cfg.LogOutputs = []string{"stderr"}
	if err := cfg.Validate(); err != nil {
		return nil, 2, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, 0, nil
}

func parseURLs(name, s string) ([]url.URL, error) {
	var us []url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", name, part, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix" && u.Scheme != "unixs" {
			return nil, fmt.Errorf("%s: %q: want an http:// or https:// URL", name, part)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("%s: %q: no host:port", name, part)
		}
		us = append(us, *u)
	}
	if len(us) == 0 {
		return nil, fmt.Errorf("%s is empty", name)
	}
	return us, nil
}

func urlList(us []url.URL) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}
