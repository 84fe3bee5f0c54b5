package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"go.yaml.in/yaml/v3"
)

const (
	secretPassword = "pa55-SECRET-word"
	secretToken    = "tok-SECRET-en"
)

func configWithSecrets() config.Config {
	c := config.Defaults()
	c.NATS.URL = "nats://h:4222"
	c.NATS.Auth.User = "svc"
	c.NATS.Auth.Password = secretPassword
	c.NATS.Auth.Token = secretToken
	p := config.PoolDefaults()
	p.Name, p.Docker.Image = "a", "img"
	c.Pools = []config.Pool{p}
	return c
}

func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{secretPassword, secretToken, "SECRET"} {
		if strings.Contains(out, s) {
			t.Errorf("%s shows a secret (%q):\n%s", what, s, out)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c := configWithSecrets()
	values := map[string]any{
		"Config":   c,
		"*Config":  &c,
		"NATS":     c.NATS,
		"Auth":     c.NATS.Auth,
		"*Auth":    &c.NATS.Auth,
		"Password": c.NATS.Auth.Password,
		"Token":    c.NATS.Auth.Token,
		"[]any":    []any{c.NATS.Auth.Password},
		"map":      map[string]config.Secret{"p": c.NATS.Auth.Password},
	}
	// Verbs held in a variable: vet would rightly flag %d of a struct, and
	// that is the point, as a careless log line might use any of them.
	verbs := []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%t", "%c", "%10.3s", "%-20v"}
	for name, v := range values {
		for _, verb := range verbs {
			t.Run(name+" "+verb, func(t *testing.T) {
				assertNoSecret(t, fmt.Sprintf("fmt %s of %s", verb, name), fmt.Sprintf(verb, v))
			})
		}
		t.Run(name+" Sprint", func(t *testing.T) {
			assertNoSecret(t, "fmt.Sprint of "+name, fmt.Sprint(v)+fmt.Sprintln(v))
		})
		t.Run(name+" json", func(t *testing.T) {
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			assertNoSecret(t, "json.Marshal of "+name, string(out))
		})
		t.Run(name+" yaml", func(t *testing.T) {
			out, err := yaml.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			assertNoSecret(t, "yaml.Marshal of "+name, string(out))
		})
	}
	t.Run("wrapped in an error", func(t *testing.T) {
		err := fmt.Errorf("connecting with %v: %w", c.NATS.Auth, errors.New("refused"))
		assertNoSecret(t, "error", err.Error())
	})
	t.Run("redacted, not empty", func(t *testing.T) {
		if got := fmt.Sprintf("%v|%q", c.NATS.Auth.Password, c.NATS.Auth.Password); got != `[redacted]|"[redacted]"` {
			t.Errorf("password prints as %s", got)
		}
		if got := fmt.Sprint(config.Secret("")); got != "" {
			t.Errorf("an empty secret prints as %q, want nothing", got)
		}
		if c.NATS.Auth.Password.Value() != secretPassword {
			t.Errorf("Value() = %q", c.NATS.Auth.Password.Value())
		}
	})
}

// Problems with secrets in them name the key, never the secret.
func TestProblemsDoNotShowSecrets(t *testing.T) {
	cases := []struct {
		name string
		yml  string
		env  []string
	}{
		{"credentials in nats.url", top("nats: {url: 'nats://svc:" + secretPassword + "@h:4222'}"), nil},
		{"credentials in a url that does not parse", top("nats: {url: 'nats://svc:" + secretPassword + "@h:port'}"), nil},
		{"credentials in a url without scheme", top("nats: {url: 'svc:" + secretPassword + "@h'}"), nil},
		{"credentials in one url of a list", top("nats: {url: 'nats://a:4222,http://svc:" + secretPassword + "@b'}"), nil},
		{"password and password_file", top("nats: {url: nats://h:4222, auth: {user: u, password: " + secretPassword + ", password_file: f}}"), nil},
		{"password on the embedded server", top("nats: {auth: {password: " + secretPassword + "}}"), nil},
		{"token and user", top("nats: {url: nats://h:4222, auth: {user: u, token: " + secretToken + "}}"), nil},
		{"password by env on the embedded server", minimal, []string{"AUTOSCALER_NATS_AUTH_PASSWORD=" + secretPassword}},
		{"password in the url by env", minimal, []string{"AUTOSCALER_NATS_URL=nats://svc:" + secretPassword + "@h:4222"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.yml), c.env)
			if err == nil {
				t.Fatal("want an error")
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}
