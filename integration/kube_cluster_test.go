//go:build integration

package integration

// A single-node Kubernetes cluster for the kube tests, built from real
// parts: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// here, and containerd with a kubelet in kube_node_test.go. Everything
// listens on loopback on ports picked free, keeps its data under the
// cluster's own directory and is stopped by its pid (t.Cleanup, also on
// failure). The certificates are made here, in Go, for this run only.
//
// The binaries come from `make kube-deps` (integration/kube/*.sh), which
// builds them into a cache outside the repository: CAPSHIM_KUBE_BIN names
// the directory of kube-apiserver, kubelet, kube-controller-manager,
// kube-scheduler and kubectl, CAPSHIM_ETCD the etcd binary. Without them
// the kube tests are skipped; `make test` sets both.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kubeCluster is a running control plane and, once startNode has run, its
// one node.
type kubeCluster struct {
	dir        string // certificates, kubeconfigs, etcd data, logs
	bin        string // directory of the Kubernetes binaries
	kubeconfig string // the admin's (system:masters)
	apiURL     string
	pki        *kubePKI
	node       *kubeNode
}

// requireKube returns the directories of the Kubernetes binaries and etcd,
// skipping the test when make kube-deps has not provided them.
func requireKube(t *testing.T) (bin, etcd string) {
	t.Helper()
	requireContainerd(t)
	bin, etcd = os.Getenv("CAPSHIM_KUBE_BIN"), os.Getenv("CAPSHIM_ETCD")
	if bin == "" || etcd == "" {
		t.Skip("CAPSHIM_KUBE_BIN and CAPSHIM_ETCD are not set (make kube-deps builds Kubernetes and etcd; make test sets them)")
	}
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("CAPSHIM_KUBE_BIN=%s: %v (run make kube-deps)", bin, err)
		}
	}
	if _, err := os.Stat(etcd); err != nil {
		t.Fatalf("CAPSHIM_ETCD: %v (run make kube-deps)", err)
	}
	return bin, etcd
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startControlPlane starts etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler and waits until the apiserver is ready and the default
// namespace has its service account.
func startControlPlane(t *testing.T) *kubeCluster {
	t.Helper()
	bin, etcd := requireKube(t)
	c := &kubeCluster{dir: shortTempDir(t, "capshim-kube-"), bin: bin}
	c.pki = newKubePKI(t, filepath.Join(c.dir, "pki"))
	start := time.Now()

	etcdPort, peerPort, apiPort := freePort(t), freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	startDaemon(t, filepath.Join(c.dir, "etcd.log"), os.Environ(), etcd,
		"--name", "capshim-kube", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "capshim-kube="+peerURL, "--log-level", "warn")

	c.apiURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	p := c.pki
	api := startDaemon(t, filepath.Join(c.dir, "kube-apiserver.log"), os.Environ(), filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", filepath.Join(c.dir, "apiserver-certs"),
		"--tls-cert-file", p.file("apiserver.crt"), "--tls-private-key-file", p.file("apiserver.key"),
		"--client-ca-file", p.file("ca.crt"),
		"--kubelet-client-certificate", p.file("admin.crt"), "--kubelet-client-key", p.file("admin.key"),
		// The node is named 127.0.0.1 and has that InternalIP; the
		// kubelet listens there alone.
		"--kubelet-preferred-address-types", "InternalIP,Hostname",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", p.file("sa.pub"), "--service-account-signing-key-file", p.file("sa.key"),
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--authorization-mode", "Node,RBAC",
		// A loopback address is no valid endpoint of the kubernetes
		// service; nothing here uses that service.
		"--endpoint-reconciler-type", "none",
		"--enable-priority-and-fairness=false", "--profiling=false")
	c.kubeconfig = p.kubeconfig(t, filepath.Join(c.dir, "admin.kubeconfig"), c.apiURL, "admin")
	c.waitReady(t, api, start)

	startDaemon(t, filepath.Join(c.dir, "kube-controller-manager.log"), os.Environ(), filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig", c.kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--service-account-private-key-file", p.file("sa.key"), "--root-ca-file", p.file("ca.crt"),
		"--profiling=false")
	startDaemon(t, filepath.Join(c.dir, "kube-scheduler.log"), os.Environ(), filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig", c.kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", "0", "--profiling=false")
	c.waitServiceAccount(t, "default")
	t.Logf("control plane ready in %v (apiserver %s)", time.Since(start).Round(time.Millisecond), c.apiURL)
	return c
}

// waitReady waits for the apiserver's /readyz.
func (c *kubeCluster) waitReady(t *testing.T, api *daemonProc, start time.Time) {
	t.Helper()
	var r cmdResult
	for time.Since(start) < 90*time.Second {
		if api.exited() {
			t.Fatalf("kube-apiserver exited:\n%s", api.tail(40))
		}
		if r = c.kubectl("get", "--raw", "/readyz"); r.err == nil && strings.TrimSpace(r.stdout) == "ok" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready after 90s:\n%v\n%s", r, api.tail(40))
}

// waitServiceAccount waits until namespace ns has its default service
// account: until then the apiserver refuses pods there.
func (c *kubeCluster) waitServiceAccount(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.kubectl("-n", ns, "get", "serviceaccount", "default", "-o", "name")
		if r.err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s has no default service account after 60s:\n%v\ncontroller-manager log:\n%s", ns, r, tailFile(filepath.Join(c.dir, "kube-controller-manager.log"), 20))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// kubectl runs kubectl as the admin; it never fails the test.
func (c *kubeCluster) kubectl(args ...string) cmdResult {
	return runCmd(cmdOpts{timeout: 2 * time.Minute}, filepath.Join(c.bin, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
}

// mustKubectl runs kubectl and fails the test when it does not succeed.
func (c *kubeCluster) mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	r := c.kubectl(args...)
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	return r.stdout
}

// apply writes manifest to a file and applies it.
func (c *kubeCluster) apply(t *testing.T, manifest string) string {
	t.Helper()
	f, err := os.CreateTemp(c.dir, "manifest-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(manifest); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return c.mustKubectl(t, "apply", "-f", f.Name())
}

// kubePKI is the cluster's certificate authority and the keys and
// certificates made from it, as PEM files in dir.
type kubePKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newKubePKI(t *testing.T, dir string) *kubePKI {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := &kubePKI{dir: dir, serial: 1}
	key := p.key(t, "ca")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: "capshim-kube-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.writePEM(t, "ca.crt", "CERTIFICATE", der)
	p.cert(t, "apiserver", pkix.Name{CommonName: "kube-apiserver"}, true,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")})
	p.cert(t, "admin", pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}}, false, nil, nil)
	p.cert(t, "kubelet", pkix.Name{CommonName: "system:node:" + kubeNodeName, Organization: []string{"system:nodes"}}, false, nil, nil)
	sa := p.key(t, "sa")
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p.writePEM(t, "sa.pub", "PUBLIC KEY", pub)
	return p
}

func (p *kubePKI) file(name string) string { return filepath.Join(p.dir, name) }

func (p *kubePKI) writePEM(t *testing.T, name, typ string, der []byte) {
	t.Helper()
	writeFile(t, p.file(name), string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})), 0o600)
}

// key makes an ECDSA P-256 key and writes it as NAME.key.
func (p *kubePKI) key(t *testing.T, name string) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.writePEM(t, name+".key", "EC PRIVATE KEY", der)
	return key
}

// cert makes NAME.key and NAME.crt signed by the CA, for a server (with
// the names and addresses given) or a client.
func (p *kubePKI) cert(t *testing.T, name string, subject pkix.Name, server bool, dns []string, ips []net.IP) {
	t.Helper()
	key := p.key(t, name)
	p.serial++
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if server {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: usage, DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.writePEM(t, name+".crt", "CERTIFICATE", der)
}

// kubeconfig writes a kubeconfig for the client certificate NAME.crt and
// returns its path.
func (p *kubePKI) kubeconfig(t *testing.T, path, server, name string) string {
	t.Helper()
	writeFile(t, path, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: capshim-kube
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: capshim-kube
  context:
    cluster: capshim-kube
    user: %s
current-context: capshim-kube
`, server, p.file("ca.crt"), name, p.file(name+".crt"), p.file(name+".key"), name), 0o600)
	return path
}
