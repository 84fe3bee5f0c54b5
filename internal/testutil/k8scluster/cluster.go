// Package k8scluster starts a real Kubernetes control plane for tests:
// etcd, kube-apiserver and kube-scheduler (v1.36.3, built from Go modules by
// tools/k8s/build.sh) plus kwok, which plays the kubelet of fake nodes so
// that scheduled pods go Running. Everything listens on free 127.0.0.1
// ports, so several clusters can run at once (parallel test packages).
//
// There is no kube-controller-manager: bare Pods work, but nothing runs the
// controllers of Deployments, ReplicaSets, Jobs, garbage collection,
// namespace deletion (a deleted namespace stays Terminating) or the
// "default" ServiceAccount of namespaces (create ServiceAccounts yourself;
// the ServiceAccount admission plugin is disabled, so pods need none).
//
// Use Start(t) for a cluster per test, or SharedMain + Shared(t) for one
// cluster per test package:
//
//	func TestMain(m *testing.M) { k8scluster.SharedMain(m) }
//
//	func TestScaleUp(t *testing.T) {
//		c := k8scluster.Shared(t) // or k8scluster.Start(t) for a private one
//		cs := c.Clientset()       // admin (system:masters)
//		...
//	}
//
// Startup takes about 4-8 s with warm binaries. The binaries come from
// `make k8s-tools` (tools/k8s/build.sh) in <repo root>/.cache/k8s/v1.36.3;
// when they are missing tests skip, unless REQUIRE_K8S=1, which builds them
// (about 10 minutes the first time: give go test a -timeout of 30m).
package k8scluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configures New. The zero value is usable.
type Options struct {
	// Paths of the binaries; nil means EnsureBinaries(BuildOutput).
	Paths *Paths
	// BuildOutput receives tools/k8s/build.sh's output when REQUIRE_K8S=1
	// makes the harness build missing binaries (nil: os.Stderr).
	BuildOutput io.Writer
	// Nodes is the number of kwok nodes to create (default 1), named
	// kwok-node-0, kwok-node-1, ...
	Nodes int
	// StartTimeout bounds the whole startup (default 3 minutes).
	StartTimeout time.Duration
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

// Cluster is a running control plane.
type Cluster struct {
	dir        string
	paths      Paths
	server     string // https://127.0.0.1:port
	caPEM      []byte
	adminToken string
	kubeconfig string
	adminCfg   *rest.Config
	clientset  *kubernetes.Clientset
	nodes      []string
	logf       func(format string, args ...any)

	mu    sync.Mutex
	procs []*process // in start order

	stopOnce sync.Once
	kfMu     sync.Mutex
	kfSeq    int
}

const (
	adminUser = "admin"
	// ServiceAccountIssuer is the issuer of service account tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// NodeNamePrefix prefixes the names of the kwok nodes the harness creates.
	NodeNamePrefix = "kwok-node-"
)

// New starts a control plane. The caller must call Stop.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	var paths Paths
	if opts.Paths != nil {
		paths = *opts.Paths
		if len(paths.missing()) > 0 {
			return nil, paths.missingError()
		}
	} else {
		var err error
		if paths, err = EnsureBinaries(opts.BuildOutput); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	// Free ports are picked by binding :0 and closing; another process may
	// grab one before our child binds it. Retry on such a clash.
	const attempts = 3
	var lastErr error
	for i := 1; i <= attempts; i++ {
		c := &Cluster{paths: paths, logf: opts.Logf}
		err := c.start(ctx, opts)
		if err == nil {
			return c, nil
		}
		lastErr = fmt.Errorf("k8scluster: start failed: %w\n%s", err, c.LogTails(30))
		portClash := c.logsContain("address already in use")
		c.Stop()
		if !portClash || ctx.Err() != nil {
			break
		}
		opts.Logf("k8scluster: port clash on attempt %d, retrying with new ports", i)
	}
	return nil, lastErr
}

func (c *Cluster) start(ctx context.Context, opts Options) error {
	t0 := time.Now()
	sweepStaleDirs()
	var err error
	if c.dir, err = os.MkdirTemp("", dirPrefix); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	for _, d := range []string{"logs", "pki", "etcd", "home"} {
		if err := os.Mkdir(filepath.Join(c.dir, d), 0o700); err != nil {
			return err
		}
	}
	pki, err := writePKI(filepath.Join(c.dir, "pki"))
	if err != nil {
		return fmt.Errorf("generate certificates: %w", err)
	}
	c.caPEM = pki.caPEM
	c.adminToken = randomToken(24)
	tokenFile := filepath.Join(c.dir, "pki", "tokens.csv")
	if err := os.WriteFile(tokenFile,
		fmt.Appendf(nil, "%s,%s,%s,\"system:masters\"\n", c.adminToken, adminUser, adminUser), 0o600); err != nil {
		return err
	}

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	c.server = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	// etcd
	if _, err := c.run("etcd",
		"--name=k8scluster",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-url="+etcdURL,
		"--listen-peer-url=http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--unsafe-no-fsync",
		"--log-level=warn",
	); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "etcd health", func(ctx context.Context) (bool, error) {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health", "", `"health":"true"`), nil
	}); err != nil {
		return err
	}
	opts.Logf("k8scluster: etcd ready on %s after %s", etcdURL, since(t0))

	// kube-apiserver
	if _, err := c.run("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+pki.servingCert,
		"--tls-private-key-file="+pki.servingKey,
		"--cert-dir="+filepath.Join(c.dir, "pki"),
		"--token-auth-file="+tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer="+ServiceAccountIssuer,
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
		"--allow-privileged=true",
		"--profiling=false",
		"--endpoint-reconciler-type=none",
	); err != nil {
		return err
	}
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(c.caPEM)}}}
	defer tlsClient.CloseIdleConnections()
	if err := c.waitFor(ctx, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		return httpOK(ctx, tlsClient, c.server+"/readyz", c.adminToken, "ok"), nil
	}); err != nil {
		return err
	}
	opts.Logf("k8scluster: kube-apiserver ready on %s after %s", c.server, since(t0))

	// Admin access.
	c.adminCfg = &rest.Config{
		Host:            c.server,
		BearerToken:     c.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
	if c.clientset, err = kubernetes.NewForConfig(c.adminCfg); err != nil {
		return err
	}
	c.kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	if err := c.writeKubeconfig(c.kubeconfig, adminUser, c.adminToken); err != nil {
		return err
	}

	// kube-scheduler and kwok.
	if _, err := c.run("kube-scheduler",
		"--kubeconfig="+c.kubeconfig,
		"--leader-elect=false",
		"--secure-port=0", // no health endpoint needed; one port fewer to clash
	); err != nil {
		return err
	}
	kwokArgs := []string{
		"--kubeconfig=" + c.kubeconfig,
		"--manage-all-nodes=true",
		"--cidr=10.0.0.1/24",
		"--node-ip=10.0.0.1",
	}
	for _, s := range c.paths.stageFiles() {
		kwokArgs = append(kwokArgs, "--config="+s)
	}
	if _, err := c.run("kwok", kwokArgs...); err != nil {
		return err
	}

	// Nodes, then a probe pod that must be scheduled and go Running.
	for i := 0; i < opts.Nodes; i++ {
		name := NodeNamePrefix + strconv.Itoa(i)
		if err := c.AddNode(ctx, name, nil); err != nil {
			return err
		}
		c.nodes = append(c.nodes, name)
	}
	for _, name := range c.nodes {
		if err := c.waitFor(ctx, "node "+name+" Ready", func(ctx context.Context) (bool, error) {
			n, err := c.clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			return nodeReady(n), nil
		}); err != nil {
			return err
		}
	}
	opts.Logf("k8scluster: %d node(s) Ready after %s", len(c.nodes), since(t0))
	if err := c.probe(ctx); err != nil {
		return err
	}
	opts.Logf("k8scluster: control plane up (probe pod ran) in %s; logs in %s", since(t0), filepath.Join(c.dir, "logs"))
	return nil
}

const (
	dirPrefix = "k8scluster-"
	ownerFile = "owner.pid"
)

// sweepStaleDirs removes the temporary folders of clusters whose test
// process was killed before it could clean up (the processes themselves die
// with it, see setProcAttrs; etcd's WAL alone takes 64 MB per folder).
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // not ours, or still being set up
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// AddNode creates a kwok-managed fake Node. allocatable nil means cpu 32,
// memory 256Gi, pods 1000. kwok marks it Ready within about a second.
func (c *Cluster) AddNode(ctx context.Context, name string, allocatable corev1.ResourceList) error {
	if allocatable == nil {
		allocatable = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("32"),
			corev1.ResourceMemory: resource.MustParse("256Gi"),
			corev1.ResourcePods:   resource.MustParse("1000"),
		}
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			// kwok runs with --manage-all-nodes; the annotation and label
			// are the ones kwok's own examples use, for selectors in tests.
			Annotations: map[string]string{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		Status: corev1.NodeStatus{
			Allocatable: allocatable,
			Capacity:    allocatable.DeepCopy(),
			Phase:       corev1.NodeRunning,
		},
	}
	return retry(ctx, func() error {
		_, err := c.clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// probe runs a pod to the Running phase and deletes it: proof that the
// scheduler binds and kwok plays the kubelet.
func (c *Cluster) probe(ctx context.Context) error {
	pods := c.clientset.CoreV1().Pods(metav1.NamespaceDefault)
	name := "k8scluster-probe-" + randomToken(3)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "probe", Image: "k8scluster.invalid/probe:v1"}},
		},
	}
	// The "default" namespace appears shortly after /readyz.
	if err := retry(ctx, func() error {
		_, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}); err != nil {
		return fmt.Errorf("create probe pod: %w", err)
	}
	if err := c.waitFor(ctx, "probe pod Running", func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return p.Status.Phase == corev1.PodRunning, nil
	}); err != nil {
		return err
	}
	// A graceful delete: kwok's pod-delete stage finishes it.
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete probe pod: %w", err)
	}
	return c.waitFor(ctx, "probe pod deleted", func(ctx context.Context) (bool, error) {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// run starts one of the binaries with its log in logs/<name>.log.
func (c *Cluster) run(name string, args ...string) (*process, error) {
	env := os.Environ()
	// kwok reads ~/.kwok/kwok.yaml when it exists: keep the user's out.
	env = append(env, "HOME="+filepath.Join(c.dir, "home"), "KUBECONFIG="+filepath.Join(c.dir, "admin.kubeconfig"))
	p, err := startProcess(name, filepath.Join(c.dir, "logs", name+".log"), c.dir, env, c.paths.bin(name), args...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// waitFor polls cond until it is true, a process dies, or ctx ends.
func (c *Cluster) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.checkAlive(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// checkAlive returns an error if a control plane process has exited.
func (c *Cluster) checkAlive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.exited() {
			return fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, p.logPath)
		}
	}
	return nil
}

// Healthy returns an error if one of the control plane processes has died.
func (c *Cluster) Healthy() error { return c.checkAlive() }

// Stop kills the processes and removes the temporary folder (kept when
// HODEI_K8S_KEEP=1). It is safe to call more than once.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		procs := append([]*process(nil), c.procs...)
		c.mu.Unlock()
		// Reverse start order: kwok, scheduler, apiserver, etcd. The
		// state is thrown away, so a short grace period is enough.
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop(5 * time.Second)
		}
		if c.dir == "" {
			return
		}
		if os.Getenv(EnvKeep) == "1" {
			_ = os.Remove(filepath.Join(c.dir, ownerFile)) // never swept
			c.logf("k8scluster: %s=1, keeping %s", EnvKeep, c.dir)
			return
		}
		_ = os.RemoveAll(c.dir)
	})
}

// LogTails returns the last n lines of each process's log, for failure
// reports.
func (c *Cluster) LogTails(n int) string {
	c.mu.Lock()
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "----- last %d lines of %s -----\n%s\n", n, p.logPath, p.tail(n))
	}
	return b.String()
}

func (c *Cluster) logsContain(s string) bool {
	c.mu.Lock()
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		if strings.Contains(p.tail(200), s) {
			return true
		}
	}
	return false
}

// AdminConfig returns a copy of a rest.Config for a system:masters user.
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.adminCfg) }

// Clientset returns an admin clientset.
func (c *Cluster) Clientset() kubernetes.Interface { return c.clientset }

// KubeconfigPath is the admin kubeconfig file.
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// Server is the apiserver URL (https://127.0.0.1:port).
func (c *Cluster) Server() string { return c.server }

// CAData is the PEM CA certificate that signed the apiserver's certificate.
func (c *Cluster) CAData() []byte { return append([]byte(nil), c.caPEM...) }

// Dir is the cluster's temporary folder (logs/, pki/, etcd/).
func (c *Cluster) Dir() string { return c.dir }

// NodeNames are the kwok nodes created at startup.
func (c *Cluster) NodeNames() []string { return append([]string(nil), c.nodes...) }

// ConfigForToken returns a rest.Config that authenticates with a bearer
// token, e.g. one from ServiceAccountToken.
func (c *Cluster) ConfigForToken(token string) *rest.Config {
	return &rest.Config{
		Host:            c.server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
}

// ServiceAccountToken returns a token for the ServiceAccount namespace/name
// (which must exist) from the TokenRequest API, valid for an hour.
func (c *Cluster) ServiceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	exp := int64(3600)
	tr, err := c.clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// WriteKubeconfigForToken writes a kubeconfig that authenticates with token
// (for running code as a ServiceAccount) and returns its path, in a
// temporary folder of t.
func (c *Cluster) WriteKubeconfigForToken(t testing.TB, token string) string {
	t.Helper()
	c.kfMu.Lock()
	c.kfSeq++
	seq := c.kfSeq
	c.kfMu.Unlock()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("token-%d.kubeconfig", seq))
	if err := c.writeKubeconfig(path, "token-user", token); err != nil {
		t.Fatalf("k8scluster: write kubeconfig: %v", err)
	}
	return path
}

func (c *Cluster) writeKubeconfig(path, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["k8scluster"] = &clientcmdapi.Cluster{Server: c.server, CertificateAuthorityData: c.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["k8scluster"] = &clientcmdapi.Context{Cluster: "k8scluster", AuthInfo: user, Namespace: metav1.NamespaceDefault}
	cfg.CurrentContext = "k8scluster"
	return clientcmd.WriteToFile(*cfg, path)
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func certPool(caPEM []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(caPEM)
	return p
}

// httpOK reports whether GET url answers 200 with a body containing want.
func httpOK(ctx context.Context, client *http.Client, url, token, want string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), want)
}

// retry calls f every 200ms until it succeeds or ctx ends.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
