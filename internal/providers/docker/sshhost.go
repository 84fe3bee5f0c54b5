package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"sync"
	"time"

	"github.com/docker/docker/client"
)

// sshProgram is the ssh client run for ssh:// hosts (a variable of the
// provider's tests' choosing, never changed at run time).
const sshProgram = "ssh"

// sshOpts returns the client options for an ssh://[user@]host[:port] engine:
// as the docker CLI does, each connection runs `ssh ... docker system
// dial-stdio` on the host and speaks the API over its stdin and stdout.
// The host's ssh configuration (keys, known_hosts, agent) applies.
func sshOpts(host, program string) ([]client.Opt, error) {
	u, err := url.Parse(host)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("docker.host %q: not an ssh://[user@]host[:port] address", host)
	}
	args := []string{"-o", "ConnectTimeout=30", "-T"}
	if u.User != nil && u.User.Username() != "" {
		args = append(args, "-l", u.User.Username())
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	args = append(args, "--", u.Hostname(), "docker", "system", "dial-stdio")
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return commandConn(ctx, program, args...)
	}
	return []client.Opt{client.WithHost("http://docker.ssh"), client.WithDialContext(dial)}, nil
}

// cmdConn is a net.Conn over a command's stdin and stdout.
type cmdConn struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  io.ReadCloser
	once sync.Once
	err  error
}

func commandConn(ctx context.Context, program string, args ...string) (net.Conn, error) {
	// The command outlives the dial's context: it is the connection.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), program, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("ssh to the docker engine: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("ssh to the docker engine: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ssh to the docker engine: %w", err)
	}
	return &cmdConn{cmd: cmd, in: in, out: out}, nil
}

func (c *cmdConn) Read(p []byte) (int, error)  { return c.out.Read(p) }
func (c *cmdConn) Write(p []byte) (int, error) { return c.in.Write(p) }

// Close ends the command; its exit after the pipes close is expected.
func (c *cmdConn) Close() error {
	c.once.Do(func() {
		errIn := c.in.Close()
		if c.cmd.Process != nil {
			_ = c.cmd.Process.Kill() // the pipes are closed: it is done either way
		}
		waitErr := c.cmd.Wait()
		var exit *exec.ExitError
		if errors.As(waitErr, &exit) {
			waitErr = nil // killed or exited: the connection is over
		}
		c.err = errors.Join(errIn, waitErr)
	})
	return c.err
}

func (c *cmdConn) LocalAddr() net.Addr                { return sshAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr               { return sshAddr{} }
func (c *cmdConn) SetDeadline(time.Time) error        { return nil }
func (c *cmdConn) SetReadDeadline(time.Time) error    { return nil }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return nil }

type sshAddr struct{}

func (sshAddr) Network() string { return "ssh" }
func (sshAddr) String() string  { return "docker-over-ssh" }
