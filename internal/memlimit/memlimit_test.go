package memlimit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestChoose(t *testing.T) {
	const mi = 1 << 20
	tests := []struct {
		name       string
		configured int64
		env        string
		cgroup     int64
		want       Choice
	}{
		{"nothing set: the constant", 0, "", 0, Choice{Limit: Default, Source: FromConst}},
		{"config wins over everything", 300 * mi, "1GiB", 512 * mi, Choice{Limit: 300 * mi, Source: FromConfig, Cgroup: 512 * mi}},
		{"GOMEMLIMIT kept", 0, "400MiB", 512 * mi, Choice{Source: FromEnv, Cgroup: 512 * mi}},
		{"GOMEMLIMIT=off kept (no limit)", 0, "off", 0, Choice{Source: FromEnv}},
		{"blank GOMEMLIMIT is unset", 0, "  ", 0, Choice{Limit: Default, Source: FromConst}},
		{"cgroup: 90 percent", 0, "", 1000 * mi, Choice{Limit: 1000 * mi / 100 * 90, Source: FromCgroup, Cgroup: 1000 * mi}},
		{"cgroup below the constant still wins", 0, "", 100 * mi, Choice{Limit: 100 * mi / 100 * 90, Source: FromCgroup, Cgroup: 100 * mi}},
		{"tiny cgroup: floor", 0, "", 20 * mi, Choice{Limit: minLimit, Source: FromCgroup, Cgroup: 20 * mi}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Choose(tt.configured, tt.env, tt.cgroup); got != tt.want {
				t.Errorf("Choose(%d, %q, %d) = %+v, want %+v", tt.configured, tt.env, tt.cgroup, got, tt.want)
			}
		})
	}
}

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"max\n", 0, false},
		{"", 0, false},
		{"268435456\n", 256 << 20, false},
		{"9223372036854771712\n", 0, false}, // v1: no limit
		{"0", 0, false},
		{"lots", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCgroup(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseCgroup(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReadCgroup(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v2max := write("v2-max", "max\n")
	v2 := write("v2", "536870912\n")
	v1none := write("v1-none", "9223372036854771712\n")
	v1 := write("v1", "268435456\n")
	bad := write("bad", "x\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		files   []string
		want    int64
		wantErr bool
	}{
		{"v2 limit", []string{v2, v1}, 512 << 20, false},
		{"v2 max, then v1", []string{v2max, v1}, 256 << 20, false},
		{"missing files skipped", []string{missing, v1}, 256 << 20, false},
		{"no limit anywhere", []string{v2max, v1none, missing}, 0, false},
		{"unreadable content named", []string{bad}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadCgroup(tt.files)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ReadCgroup = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
