package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd, args string
	line      int
}

// stage is one FROM ... block.
type stage struct {
	from  string
	insts []instruction
}

// parseDockerfile splits a Dockerfile into stages; comments and blank
// lines are dropped, backslash continuations are joined with a space.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		stages  []stage
		pending strings.Builder
		start   int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			pending.WriteString(strings.TrimSpace(body) + " ")
			continue
		}
		pending.WriteString(line)
		text := pending.String()
		pending.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start}
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in.args})
			continue
		}
		if len(stages) == 0 {
			continue // global ARGs
		}
		stages[len(stages)-1].insts = append(stages[len(stages)-1].insts, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.insts {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// scriptBuildStage returns the lines of build-stage.sh between its markers.
func scriptBuildStage(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("docker/build-stage.sh")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "# BEGIN build stage\n")
	body, _, ok2 := strings.Cut(rest, "# END build stage\n")
	if !ok || !ok2 {
		t.Fatal("build-stage.sh: no BEGIN/END build stage markers")
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestBuildStageMatchesScript: the Dockerfile's build-stage RUN commands
// are exactly the lines build-stage.sh runs, so checking the script
// checks the image build.
func TestBuildStageMatchesScript(t *testing.T) {
	stages := parseDockerfile(t, "docker/Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("%d stages; want 2 (build, final)", len(stages))
	}
	build := stages[0]
	if !strings.HasPrefix(build.from, "golang:") || !strings.HasSuffix(build.from, " AS build") {
		t.Errorf("build stage FROM %q; want golang:... AS build", build.from)
	}
	if got, want := build.all("RUN"), scriptBuildStage(t); !slices.Equal(got, want) {
		t.Errorf("Dockerfile build-stage RUN lines and build-stage.sh differ:\nDockerfile: %q\nscript:     %q", got, want)
	}
	env := strings.Join(build.all("ENV"), " ")
	script, _ := os.ReadFile("docker/build-stage.sh")
	for _, kv := range strings.Fields(env) {
		if !strings.Contains(string(script), "\n"+kv+"\n") {
			t.Errorf("Dockerfile ENV %s is not set by build-stage.sh", kv)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0"} {
		if !strings.Contains(env, want) {
			t.Errorf("build stage ENV %q lacks %s", env, want)
		}
	}
	for _, want := range []string{"-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}"} {
		if !strings.Contains(strings.Join(build.all("RUN"), "\n"), want) {
			t.Errorf("build stage RUN lacks %s", want)
		}
	}
}

// TestFinalStage: the runtime image carries iptables and iproute2, holds
// the binary at /usr/local/bin/remora, runs as 1337 and exposes Istio's
// ports.
func TestFinalStage(t *testing.T) {
	stages := parseDockerfile(t, "docker/Dockerfile")
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "debian:") || !strings.Contains(final.from, "-slim") {
		t.Errorf("final FROM %q; want debian:...-slim", final.from)
	}
	run := strings.Join(final.all("RUN"), "\n")
	for _, pkg := range []string{" iptables ", " iproute2 ", "--uid 1337"} {
		if !strings.Contains(run, pkg) {
			t.Errorf("final stage RUN lacks %q", pkg)
		}
	}
	checks := []struct{ cmd, want string }{
		{"COPY", "--from=build /out/remora /usr/local/bin/remora"},
		{"USER", "1337:1337"},
		{"EXPOSE", "15001 15006 15021 15090"},
		{"ENTRYPOINT", `["/usr/local/bin/remora"]`},
	}
	for _, c := range checks {
		if got := final.all(c.cmd); !slices.Contains(got, c.want) {
			t.Errorf("final stage %s = %q; want %q", c.cmd, got, c.want)
		}
	}
}

// TestBuildStageScript runs build-stage.sh, the Docker build stage
// without Docker, and checks the binary it makes is static and stamped.
func TestBuildStageScript(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary")
	}
	out := t.TempDir()
	cmd := exec.Command("sh", "docker/build-stage.sh")
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-buildstage", "COMMIT=feedbee", "OUT="+out)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build-stage.sh: %v\n%s", err, got)
	}
	if want := "remora v0.0.0-buildstage (commit feedbee,"; !strings.Contains(string(got), want) {
		t.Errorf("build-stage.sh output:\n%s\nwant a line containing %q", got, want)
	}
	checkStatic(t, filepath.Join(out, "remora"))
}
