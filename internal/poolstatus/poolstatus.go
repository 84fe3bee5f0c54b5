// Package poolstatus is the client side of the daemon's /v1/pools: it
// fetches the pools' status and renders it as a table like kubectl get,
// or as JSON, once or whenever it changes (autoscaler status).
package poolstatus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
)

// Pool is one pool as /v1/pools serves it.
type Pool = reconciler.PoolStatus

// Addr is the address to reach a daemon listening on listen (its
// http.listen): a wildcard host (":9090", "0.0.0.0:9090", "[::]:9090")
// is reached on loopback.
func Addr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.listen %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// Client reads a daemon's /v1/pools.
type Client struct {
	Addr string // host:port
	HTTP *http.Client
}

// Fetch returns every pool's status, in the daemon's order.
func (c Client) Fetch(ctx context.Context) ([]Pool, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	url := "http://" + c.Addr + "/v1/pools"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the daemon at %s (is it running? is that its http.listen?): %w", c.Addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	var v struct {
		Pools []Pool `json:"pools"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("GET %s: not the daemon's /v1/pools: %w", url, err)
	}
	return v.Pools, nil
}

// Columns of the table, in order.
var Columns = []string{"POOL", "PROVIDER", "STATUS", "DESIRED", "PROVISIONING", "IDLE", "BUSY", "DRAINING", "FAILED",
	"PENDING", "RUNNING", "AGE", "DECIDED", "REASON"}

// Table writes the pools as a table: one row a pool, workers by state,
// AGE since the daemon started running the pool, DECIDED how long ago
// the last decision was taken, and its reason.
func Table(w io.Writer, pools []Pool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(Columns, "\t"))
	for _, p := range pools {
		decided, reason := "-", "-"
		if d := p.LastDecision; d != nil {
			decided, reason = Age(now.Sub(d.At)), d.Reason
		}
		age := "-"
		if !p.Since.IsZero() {
			age = Age(now.Sub(p.Since))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n",
			p.Pool, p.Provider, State(p), p.Desired,
			p.Workers[string(domain.StateProvisioning)], p.Workers[string(domain.StateIdle)], p.Workers[string(domain.StateBusy)],
			p.Workers[string(domain.StateDraining)], p.Workers[string(domain.StateFailed)],
			p.Pending, p.Running, age, decided, reason)
	}
	return tw.Flush()
}

// State is a pool's STATUS column: removing, breaker-open, blocked,
// dry-run or ok, the first that applies.
func State(p Pool) string {
	switch {
	case p.Removing:
		return "removing"
	case !p.ProviderUp:
		return "breaker-open"
	case p.Blocked != "":
		return "blocked"
	case p.DryRun:
		return "dry-run"
	}
	return "ok"
}

// JSON writes the pools as /v1/pools serves them; compact writes them on
// one line (for --watch: one document per line).
func JSON(w io.Writer, pools []Pool, compact bool) error {
	enc := json.NewEncoder(w)
	if !compact {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(map[string]any{"pools": pools})
}

// Age is a duration as kubectl shows ages: 45s, 4m30s, 25m, 5h10m, 30h, 12d.
func Age(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute:
		m := int(d.Minutes())
		if s := int(d.Seconds()) % 60; s != 0 {
			return fmt.Sprintf("%dm%ds", m, s)
		}
		return fmt.Sprintf("%dm", m)
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 8*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%dh%dm", h, m)
		}
		return fmt.Sprintf("%dh", h)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Options say how Show renders.
type Options struct {
	JSON bool
	// Watch renders again each time the figures change (checked every
	// Interval) until ctx ends; the ages alone changing is no change.
	Watch    bool
	Interval time.Duration
	Now      func() time.Time // time.Now if nil
}

// Show renders the daemon's pools on out, once or (Watch) whenever they
// change. While watching, a daemon that does not answer is reported on
// errOut once and watched again until it does.
func Show(ctx context.Context, c Client, out, errOut io.Writer, opt Options) error {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	render := func(pools []Pool) error {
		if opt.JSON {
			return JSON(out, pools, opt.Watch)
		}
		return Table(out, pools, now())
	}
	pools, err := c.Fetch(ctx)
	if err != nil || !opt.Watch {
		if err != nil {
			return err
		}
		return render(pools)
	}
	if err := render(pools); err != nil {
		return err
	}
	last, failing := figures(pools), false
	tick := time.NewTicker(max(opt.Interval, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pools, err := c.Fetch(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				fmt.Fprintf(errOut, "%v; still watching\n", err)
			}
			failing = true
			continue
		}
		failing = false
		if f := figures(pools); f != last {
			last = f
			if !opt.JSON {
				fmt.Fprintln(out)
			}
			if err := render(pools); err != nil {
				return err
			}
		}
	}
}

// figures is what a watch compares: everything but the times.
func figures(pools []Pool) string {
	var b strings.Builder
	for _, p := range pools {
		p.Since = time.Time{}
		var d reconciler.DecisionInfo
		if p.LastDecision != nil {
			d = *p.LastDecision
			d.At = time.Time{}
		}
		p.LastDecision = nil
		var l reconciler.LeaseStatus // a pointer would print as its address
		if p.Lease != nil {
			l = *p.Lease
			l.Since = time.Time{}
		}
		p.Lease = nil
		fmt.Fprintf(&b, "%+v %+v %+v\n", p, d, l) // fmt prints maps sorted
	}
	return b.String()
}
