// Command etcd is a minimal single-member etcd server built on
// go.etcd.io/etcd/server/v3/embed, used as the storage backend of the test
// Kubernetes control plane (see internal/testutil/k8scluster).
//
// It listens on the client and peer URLs given on the command line so that
// tests can pick free ports, and exits cleanly on SIGINT/SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	var (
		name       = flag.String("name", "default", "member name")
		dataDir    = flag.String("data-dir", "", "data directory (required)")
		clientURL  = flag.String("listen-client-url", "http://127.0.0.1:2379", "client URL to listen on and advertise")
		peerURL    = flag.String("listen-peer-url", "http://127.0.0.1:2380", "peer URL to listen on and advertise")
		logLevel   = flag.String("log-level", "warn", "log level: debug, info, warn, error")
		noFsync    = flag.Bool("unsafe-no-fsync", false, "disable fsync (faster; data may be lost on a crash, fine for tests)")
		quotaBytes = flag.Int64("quota-backend-bytes", 0, "backend quota in bytes (0 = etcd default)")
		startWait  = flag.Duration("start-timeout", time.Minute, "how long to wait for the server to become ready")
	)
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("etcd: --data-dir is required")
	}

	cu, err := url.Parse(*clientURL)
	if err != nil {
		log.Fatalf("etcd: bad --listen-client-url: %v", err)
	}
	pu, err := url.Parse(*peerURL)
	if err != nil {
		log.Fatalf("etcd: bad --listen-peer-url: %v", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = *logLevel
	cfg.UnsafeNoFsync = *noFsync
	// embed.NewConfig leaves this at 0 (only etcd's own flag parsing sets the
	// 300ms default), which logs every single request as "expensive".
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	if *quotaBytes > 0 {
		cfg.QuotaBackendBytes = *quotaBytes
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("etcd: start: %v", err)
	}
	defer e.Close()

	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd: ready, serving clients on %s\n", cu.String())
	case <-time.After(*startWait):
		e.Server.Stop()
		log.Fatalf("etcd: not ready after %s", *startWait)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "etcd: got %s, shutting down\n", s)
	case err := <-e.Err():
		log.Fatalf("etcd: server error: %v", err)
	}
}
