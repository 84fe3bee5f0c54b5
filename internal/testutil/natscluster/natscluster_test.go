package natscluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// publishUntil retries a publish until it is stored or timeout passes
// (while a stream elects a new leader, publishes fail).
func publishUntil(t *testing.T, js jetstream.JetStream, subject string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.Publish(ctx, subject, []byte("x"))
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("publish to %s still failing after %v: %v", subject, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info
}

// A three-node cluster replicates a stream, survives the kill -9 of the
// stream's leader, and the node comes back on the same ports and store
// and catches up.
func TestThreeNodesReplicateAndSurviveLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server processes")
	}
	c := Start(t, 3)
	nc, js := connect(t, c.URL())
	if d := nc.DiscoveredServers(); len(d) != 0 {
		t.Errorf("client discovered %v: no_advertise should keep clients on the URLs they were given", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatalf("creating an R3 stream: %v", err)
	}
	for i := range 50 {
		publishUntil(t, js, fmt.Sprintf("t.%d", i), 10*time.Second)
	}
	info := streamInfo(t, js, "T")
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info = %+v, want a leader and 2 replicas", info.Cluster)
	}
	leader := c.NodeNamed(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("leader %q is not one of the nodes", info.Cluster.Leader)
	}

	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	if leader.Running() {
		t.Fatal("killed node still running")
	}
	took := publishUntil(t, js, "t.after", 30*time.Second)
	t.Logf("first publish stored %v after the kill -9 of leader %s", took.Round(time.Millisecond), leader.Name)
	info = streamInfo(t, js, "T")
	if info.State.Msgs != 51 {
		t.Errorf("after the leader's kill the stream holds %d messages, want 51", info.State.Msgs)
	}
	if info.Cluster.Leader == leader.Name {
		t.Errorf("leader is still the killed node %s", leader.Name)
	}

	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t, 60*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for {
		info = streamInfo(t, js, "T")
		i := slices.IndexFunc(info.Cluster.Replicas, func(p *jetstream.PeerInfo) bool { return p.Name == leader.Name })
		if info.Cluster.Leader == leader.Name || (i >= 0 && info.Cluster.Replicas[i].Current && !info.Cluster.Replicas[i].Offline) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted %s not current after 60s: %+v", leader.Name, info.Cluster)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// One node is a plain JetStream server.
func TestSingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server process")
	}
	c := Start(t, 1)
	_, js := connect(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(0).Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(0).Healthy(); err == nil {
		t.Fatal("stopped node still answers /healthz")
	}
	if err := c.Node(0).Start(); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t, 30*time.Second)
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("after a restart the key reads %v, %v; want v (the store is kept)", e, err)
	}
}
