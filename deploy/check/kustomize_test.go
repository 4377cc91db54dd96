package check

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// root is deploy/kubernetes, relative to this package.
const root = "../kubernetes"

// object is one rendered resource, decoded strictly into its API type.
type object struct {
	kind, name string
	value      any
}

// newTyped returns a pointer to the Go type of apiVersion/kind, or nil
// when the check does not know the kind (which is an error: every kind
// deploy/ ships must be checked).
func newTyped(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Namespace":
		return &corev1.Namespace{}
	}
	return nil
}

// render builds the kustomization in dir and decodes every object with
// unknown fields as errors.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []object
	for _, r := range rm.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		typed := newTyped(r.GetApiVersion(), r.GetKind())
		if typed == nil {
			t.Errorf("%s: %s/%s %s: kind not checked by this test", dir, r.GetApiVersion(), r.GetKind(), r.GetName())
			continue
		}
		if err := yaml.UnmarshalStrict(data, typed); err != nil {
			t.Errorf("%s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
			continue
		}
		objs = append(objs, object{r.GetKind(), r.GetName(), typed})
	}
	return objs
}

// kustomizations lists the directories under root holding a Kustomization
// (components are rendered through the examples that use them).
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal(data, &head); err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
		if head.Kind != "Component" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 4 {
		t.Fatalf("found %d kustomizations under %s: %v; want the examples", len(dirs), root, dirs)
	}
	return dirs
}

// TestRenderAll renders every kustomization and checks each object
// against the API types and the cross references kubectl would not catch
// until the pod fails: mounts without volumes, selectors without pods,
// ConfigMaps that do not exist.
func TestRenderAll(t *testing.T) {
	for _, dir := range kustomizations(t) {
		rel, _ := filepath.Rel(root, dir)
		t.Run(rel, func(t *testing.T) {
			objs := render(t, dir)
			if len(objs) == 0 {
				t.Fatal("rendered nothing")
			}
			checkReferences(t, objs)
		})
	}
}

func checkReferences(t *testing.T, objs []object) {
	t.Helper()
	configMaps := map[string]bool{}
	var pods []map[string]string
	for _, o := range objs {
		switch v := o.value.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = true
		case *appsv1.Deployment:
			pods = append(pods, v.Spec.Template.Labels)
		}
	}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *appsv1.Deployment:
			checkDeployment(t, v, configMaps)
		case *corev1.Service:
			if !slices.ContainsFunc(pods, func(l map[string]string) bool { return matches(v.Spec.Selector, l) }) {
				t.Errorf("Service %s: selector %v matches no Deployment's pods", v.Name, v.Spec.Selector)
			}
		}
	}
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, configMaps map[string]bool) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if d.Spec.Selector == nil || !matches(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("Deployment %s: selector does not match the template's labels", d.Name)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		if _, dup := volumes[v.Name]; dup {
			t.Errorf("Deployment %s: volume %s twice", d.Name, v.Name)
		}
		volumes[v.Name] = v
		if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] {
			t.Errorf("Deployment %s: volume %s: ConfigMap %s is not rendered", d.Name, v.Name, v.ConfigMap.Name)
		}
	}
	names := map[string]bool{}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if names[c.Name] {
			t.Errorf("Deployment %s: container %s twice", d.Name, c.Name)
		}
		names[c.Name] = true
		if c.Image == "" {
			t.Errorf("Deployment %s: container %s has no image", d.Name, c.Name)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("Deployment %s: container %s mounts %s: no such volume", d.Name, c.Name, m.Name)
			}
		}
	}
}

// meshed finds the remora containers of a rendered Deployment.
type meshed struct {
	init, proxy *corev1.Container
	proxyIndex  int  // index in Containers, or in InitContainers if native
	native      bool // proxy is an init container with restartPolicy Always
}

func findRemora(t *testing.T, d *appsv1.Deployment) meshed {
	t.Helper()
	var m meshed
	spec := d.Spec.Template.Spec
	for i := range spec.InitContainers {
		switch c := &spec.InitContainers[i]; c.Name {
		case "remora-init":
			m.init = c
		case "remora-proxy":
			m.proxy, m.proxyIndex, m.native = c, i, true
		}
	}
	for i := range spec.Containers {
		if c := &spec.Containers[i]; c.Name == "remora-proxy" {
			if m.proxy != nil {
				t.Fatalf("Deployment %s: remora-proxy twice", d.Name)
			}
			m.proxy, m.proxyIndex = c, i
		}
	}
	if m.init == nil || m.proxy == nil {
		t.Fatalf("Deployment %s: init %v, proxy %v: not meshed", d.Name, m.init != nil, m.proxy != nil)
	}
	return m
}

// plain is a Deployment as a user brings it, with its own lifecycle,
// volume and init container that the component must keep.
const plain = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector:
    matchLabels: {app: web, version: v1}
  template:
    metadata:
      labels: {app: web, version: v1}
    spec:
      initContainers:
      - name: migrate
        image: web
        args: [migrate]
      containers:
      - name: web
        image: web
        ports:
        - containerPort: 8080
        lifecycle:
          preStop:
            exec:
              command: [sleep, "1"]
        volumeMounts:
        - {name: data, mountPath: /data}
      volumes:
      - {name: data, emptyDir: {}}
`

// renderPlain applies a component to the plain Deployment plus a
// remora-config ConfigMap.
func renderPlain(t *testing.T, component string) *appsv1.Deployment {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(filepath.Join(root, "components", component))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs) // kustomize takes no absolute roots
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"deployment.yaml": plain,
		"kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml]
components: [` + rel + `]
configMapGenerator:
- name: remora-config
  files: [mesh.yaml]
`,
		"mesh.yaml": "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default}\nspec: {}\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs := render(t, dir)
	checkReferences(t, objs)
	for _, o := range objs {
		if d, ok := o.value.(*appsv1.Deployment); ok {
			return d
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

func TestComponents(t *testing.T) {
	for _, tt := range []struct {
		component string
		native    bool
	}{
		{"sidecar", false},
		{"native-sidecar", true},
	} {
		t.Run(tt.component, func(t *testing.T) {
			d := renderPlain(t, tt.component)
			m := findRemora(t, d)
			spec := d.Spec.Template.Spec
			checkInit(t, m.init)
			checkProxy(t, m.proxy)
			if m.native != tt.native {
				t.Fatalf("remora-proxy is an init container: %v; want %v", m.native, tt.native)
			}
			// The user's own containers, init container and volume survive.
			app := &spec.Containers[0]
			if !tt.native {
				if m.proxyIndex != 0 || len(spec.Containers) != 2 {
					t.Fatalf("containers %v: want remora-proxy first, then web", containerNames(spec.Containers))
				}
				app = &spec.Containers[1]
			}
			if app.Name != "web" || app.Lifecycle == nil || app.Lifecycle.PreStop == nil || len(app.VolumeMounts) != 1 {
				t.Errorf("app container changed: %+v", app)
			}
			if !slices.Contains(containerNames(spec.InitContainers), "migrate") {
				t.Errorf("init containers %v: the app's migrate is gone", containerNames(spec.InitContainers))
			}
			if want := []string{"data", "remora-config"}; !sameSet(volumeNames(spec.Volumes), want) {
				t.Errorf("volumes %v; want %v", volumeNames(spec.Volumes), want)
			}
			if i := slices.Index(containerNames(spec.InitContainers), "remora-init"); tt.native && m.proxyIndex <= i {
				t.Errorf("init containers %v: remora-proxy must start after remora-init", containerNames(spec.InitContainers))
			}
			if got := d.Spec.Template.Annotations["prometheus.io/port"]; got != "15090" {
				t.Errorf("prometheus.io/port = %q; want 15090", got)
			}
			if tt.native {
				p := m.proxy
				if p.RestartPolicy == nil || *p.RestartPolicy != corev1.ContainerRestartPolicyAlways {
					t.Errorf("native remora-proxy restartPolicy = %v; want Always", p.RestartPolicy)
				}
				checkHealthProbe(t, "startupProbe", p.StartupProbe)
			} else {
				l := m.proxy.Lifecycle
				if l == nil || l.PostStart == nil || l.PostStart.Exec == nil || !slices.Contains(l.PostStart.Exec.Command, "wait") {
					t.Errorf("remora-proxy postStart = %+v; want exec remora wait", l)
				}
				if l == nil || l.PreStop == nil || l.PreStop.Exec == nil || l.PreStop.Exec.Command[0] != "sleep" {
					t.Errorf("remora-proxy preStop = %+v; want exec sleep", l)
				}
			}
		})
	}
}

// TestInitContainersAgree: the two components install the same rules.
func TestInitContainersAgree(t *testing.T) {
	a := findRemora(t, renderPlain(t, "sidecar")).init
	b := findRemora(t, renderPlain(t, "native-sidecar")).init
	if !reflect.DeepEqual(a, b) {
		t.Errorf("remora-init differs between components:\nsidecar:        %+v\nnative-sidecar: %+v", a, b)
	}
}

// TestExamplesMeshed: every Deployment of the bookinfo overlays is
// meshed and mounts the rendered remora-config ConfigMap.
func TestExamplesMeshed(t *testing.T) {
	for _, overlay := range []string{"sidecar", "native-sidecar"} {
		t.Run(overlay, func(t *testing.T) {
			objs := render(t, filepath.Join(root, "examples/bookinfo", overlay))
			var deployments int
			for _, o := range objs {
				switch v := o.value.(type) {
				case *appsv1.Deployment:
					deployments++
					m := findRemora(t, v)
					if m.native != (overlay == "native-sidecar") {
						t.Errorf("Deployment %s: native = %v", v.Name, m.native)
					}
					if v.Namespace != "bookinfo" {
						t.Errorf("Deployment %s: namespace %q; want bookinfo", v.Name, v.Namespace)
					}
					if got := m.proxy.Image; !strings.HasPrefix(got, "registry.example.com/remora:") {
						t.Errorf("Deployment %s: image %q: the images transformer did not apply", v.Name, got)
					}
				case *corev1.ConfigMap:
					if v.Name != "remora-config" || len(v.Data) != 3 {
						t.Errorf("ConfigMap %s with %d files; want remora-config with 3", v.Name, len(v.Data))
					}
				}
			}
			if deployments != 6 {
				t.Errorf("%d Deployments; want bookinfo's 6", deployments)
			}
		})
	}
}

func checkInit(t *testing.T, c *corev1.Container) {
	t.Helper()
	if len(c.Args) == 0 || c.Args[0] != "iptables" {
		t.Errorf("remora-init args %v; want iptables ...", c.Args)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("remora-init has no securityContext.capabilities")
	}
	if got, want := capNames(sc.Capabilities.Add), []string{"NET_ADMIN", "NET_RAW"}; !sameSet(got, want) {
		t.Errorf("remora-init adds capabilities %v; want only %v", got, want)
	}
	if got := capNames(sc.Capabilities.Drop); !sameSet(got, []string{"ALL"}) {
		t.Errorf("remora-init drops %v; want ALL", got)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot {
		t.Errorf("remora-init runAsUser %v runAsNonRoot %v; want 0 and false", sc.RunAsUser, sc.RunAsNonRoot)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("remora-init is privileged")
	}
}

func checkProxy(t *testing.T, c *corev1.Container) {
	t.Helper()
	if !slices.Equal(c.Args, []string{"run", "--config", "/etc/remora"}) {
		t.Errorf("remora-proxy args %v; want run --config /etc/remora", c.Args)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1337 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("remora-proxy securityContext %+v; want runAsUser 1337, runAsNonRoot", sc)
	}
	if sc != nil && (sc.Capabilities == nil || len(sc.Capabilities.Add) != 0) {
		t.Errorf("remora-proxy capabilities %+v; want none added", sc.Capabilities)
	}
	checkHealthProbe(t, "readinessProbe", c.ReadinessProbe)
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "remora-config" && m.MountPath == "/etc/remora" && m.ReadOnly
	}) {
		t.Errorf("remora-proxy mounts %+v; want remora-config read-only at /etc/remora", c.VolumeMounts)
	}
	req := c.Resources.Requests
	if req.Cpu().IsZero() || req.Memory().IsZero() {
		t.Errorf("remora-proxy requests %v; want cpu and memory", req)
	}
	envs := map[string]bool{}
	for _, e := range c.Env {
		envs[e.Name] = true
	}
	for _, name := range []string{"REMORA_NAMESPACE", "REMORA_LABELS"} {
		if !envs[name] {
			t.Errorf("remora-proxy has no %s", name)
		}
	}
}

func checkHealthProbe(t *testing.T, name string, p *corev1.Probe) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz/ready" || p.HTTPGet.Port.IntValue() != 15021 {
		t.Errorf("remora-proxy %s = %+v; want httpGet :15021/healthz/ready", name, p)
	}
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func volumeNames(vs []corev1.Volume) []string {
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return names
}

func capNames(cs []corev1.Capability) []string {
	var names []string
	for _, c := range cs {
		names = append(names, string(c))
	}
	return names
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
