// Package natscluster runs a real NATS JetStream cluster for tests: one
// nats-server process per node (the binary `make tools` builds, found
// through internal/testutil/realtools), on loopback ports, with routes
// between every pair of nodes, JetStream on, and each node's store in the
// test's temporary folder. A node can be stopped (SIGTERM), killed
// (SIGKILL) and started again on the same ports and store, which is what
// failover tests need.
//
//	c := natscluster.Start(t, 3)
//	nc, _ := nats.Connect(c.URL())
//	c.Node(1).Kill()
//
// The cluster is started with no_advertise, so clients only ever use the
// URLs they were given: a test that puts a TCP proxy in front of each node
// can cut a client off from the whole cluster.
package natscluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/testutil/realtools"
)

// ClusterName is the name of every test cluster (nodes only join their own
// cluster's routes, so the name does not need to differ between tests).
const ClusterName = "hodei-test"

// Cluster is a running set of nodes.
type Cluster struct {
	t     testing.TB
	bin   string
	Nodes []*Node
}

// Node is one nats-server process and the files it keeps between runs.
type Node struct {
	Name        string
	Port        int // client port
	ClusterPort int // route port
	MonitorPort int // HTTP monitoring (/healthz)
	Dir         string
	bin         string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the running process has exited
}

// Start launches an n-node cluster and waits until every node reports
// JetStream healthy; it is torn down (processes killed) at test end, and
// each node's log is printed if the test failed.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natscluster: %d nodes", n)
	}
	c := &Cluster{t: t, bin: realtools.Path(t, realtools.NATSServer)}
	ports, err := freePorts(3 * n)
	if err != nil {
		t.Fatalf("natscluster: %v", err)
	}
	root := t.TempDir()
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{
			Name: fmt.Sprintf("n%d", i+1), Port: ports[3*i], ClusterPort: ports[3*i+1], MonitorPort: ports[3*i+2],
			Dir: filepath.Join(root, fmt.Sprintf("n%d", i+1)), bin: c.bin,
		})
	}
	for _, node := range c.Nodes {
		if err := node.writeConfig(c.Nodes); err != nil {
			t.Fatalf("natscluster: %v", err)
		}
	}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			_ = node.Kill()
		}
		if t.Failed() {
			for _, node := range c.Nodes {
				t.Logf("natscluster: last lines of %s's log:\n%s", node.Name, node.LogTail(40))
			}
		}
	})
	for _, node := range c.Nodes {
		if err := node.Start(); err != nil {
			t.Fatalf("natscluster: %v", err)
		}
	}
	c.WaitHealthy(t, 60*time.Second)
	return c
}

// Node returns node i, counted from 0.
func (c *Cluster) Node(i int) *Node { return c.Nodes[i] }

// NodeNamed returns the node with that server name (as JetStream reports
// stream leaders), or nil.
func (c *Cluster) NodeNamed(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// URLs are the nodes' client URLs.
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.ClientURL())
	}
	return out
}

// URL is every node's client URL, comma-separated, as nats.Connect takes them.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// WaitHealthy waits until every running node answers /healthz with 200
// (JetStream enabled, meta leader known, its streams current).
func (c *Cluster) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		for {
			err := n.Healthy()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("natscluster: %s not healthy after %v: %v\n%s", n.Name, timeout, err, n.LogTail(20))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ClientURL is the node's client URL.
func (n *Node) ClientURL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.Port) }

// Addr is the node's client address (host:port), for a TCP proxy.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

func (n *Node) confPath() string { return filepath.Join(n.Dir, "nats.conf") }
func (n *Node) logPath() string  { return filepath.Join(n.Dir, "nats.log") }

func (n *Node) writeConfig(all []*Node) error {
	if err := os.MkdirAll(filepath.Join(n.Dir, "store"), 0o755); err != nil {
		return err
	}
	var routes []string
	for _, o := range all {
		if o != n {
			routes = append(routes, fmt.Sprintf("%q", "nats-route://127.0.0.1:"+strconv.Itoa(o.ClusterPort)))
		}
	}
	conf := fmt.Sprintf(`server_name: %q
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
log_file: %q
logtime: true
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 2GB
}
`, n.Name, n.Port, n.MonitorPort, n.logPath(), filepath.Join(n.Dir, "store"))
	if len(all) > 1 { // a single node is not a cluster
		conf += fmt.Sprintf(`cluster {
  name: %q
  listen: "127.0.0.1:%d"
  no_advertise: true
  routes: [%s]
}
`, ClusterName, n.ClusterPort, strings.Join(routes, ", "))
	}
	return os.WriteFile(n.confPath(), []byte(conf), 0o644)
}

// Start runs the node's process (again, after Stop or Kill), on the same
// ports and store. It does not wait for JetStream: see Healthy and
// Cluster.WaitHealthy.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s is already running", n.Name)
	}
	cmd := exec.Command(n.bin, "-c", n.confPath())
	// The node must not outlive a test binary that crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := os.OpenFile(filepath.Join(n.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", n.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(exited)
	}()
	n.cmd, n.exited = cmd, exited
	// Listening on the client port is the first sign of life.
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", n.Addr(), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			n.cmd = nil
			return fmt.Errorf("%s exited at start:\n%s", n.Name, n.LogTail(20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s after 20s:\n%s", n.Name, n.Addr(), n.LogTail(20))
		}
	}
}

// Kill ends the node with SIGKILL (nothing flushed, no goodbye to its
// peers) and waits for it to exit. Killing a stopped node does nothing.
func (n *Node) Kill() error { return n.signal(syscall.SIGKILL) }

// Stop ends the node with SIGTERM (a clean shutdown) and waits for it.
func (n *Node) Stop() error { return n.signal(syscall.SIGTERM) }

// Restart is Kill then Start.
func (n *Node) Restart() error {
	if err := n.Kill(); err != nil {
		return err
	}
	return n.Start()
}

func (n *Node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	if err := n.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", n.Name, err)
	}
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
	n.cmd = nil
	return nil
}

// Running reports whether the node's process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// PID is the running process's id, or 0.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Healthy asks the node's /healthz; nil means JetStream is ready on it.
func (n *Node) Healthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(n.MonitorPort)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			body.WriteString(sc.Text())
		}
		return fmt.Errorf("healthz %d: %s", resp.StatusCode, body.String())
	}
	return nil
}

// LogTail returns the last lines of the node's log.
func (n *Node) LogTail(lines int) string {
	data, err := os.ReadFile(n.logPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// freePorts finds n distinct loopback ports that are free now, below the
// kernel's ephemeral range: a node keeps its ports across restarts, and a
// port in the ephemeral range could meanwhile become the local end of
// some outgoing connection.
func freePorts(n int) ([]int, error) {
	low := ephemeralLow()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 5000; tries++ {
		p := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found only %d free ports below %d", len(ports), low)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 11000 {
		return 32768
	}
	return low
}
