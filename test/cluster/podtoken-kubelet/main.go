// Command podtoken-kubelet does, for one Pod, what the kubelet does for a projected
// ServiceAccount token volume, with the kubelet's own code from the Kubernetes source tree:
// the token manager (k8s.io/kubernetes/pkg/kubelet/token) requests and caches the token
// through the TokenRequest API, and the AtomicWriter (k8s.io/kubernetes/pkg/volume/util)
// writes the volume. The Pod is created through the API and never scheduled (there is no
// container runtime): this program plays the kubelet's part for its volume only.
//
// It must be built inside the Kubernetes tree in GOPATH mode so that it uses the tree's
// vendored packages (see test/cluster/build.sh). It reads commands on stdin, one a line:
//
//	sync     what the kubelet's periodic volume remount does: ask the token manager (which
//	         answers from its cache until 80 % of the requested lifetime) and write the volume
//	         (the writer swaps nothing when the payload is unchanged)
//	rotate   drop the manager's cache for the Pod (as DeleteServiceAccountToken does), wait
//	         for the next wall-clock second when the last token was minted in this one (two
//	         tokens minted in the same second are byte-identical), then sync: a fresh token
//	quit     exit (so does end of input)
//
// and answers each on stdout with one JSON object a line (the first, "ready", after the
// initial mount). No output ever holds a token: only its claims that are not secret.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/kubernetes/pkg/kubelet/token"
	volumeutil "k8s.io/kubernetes/pkg/volume/util"
)

type options struct {
	server            string
	caFile            string
	credentialFile    string
	namespace         string
	serviceAccount    string
	pod               string
	audience          string
	expirationSeconds int64
	dir               string
	file              string
	caCrt             string
	writeNamespace    bool
	syncPeriod        time.Duration
}

// event is one line of output. Times are Unix milliseconds with a fractional part (µs).
type event struct {
	Event   string `json:"event"`
	Command string `json:"command,omitempty"`
	Error   string `json:"error,omitempty"`
	PodUID  string `json:"podUID,omitempty"`

	// What the writer did.
	Swapped    bool    `json:"swapped"`
	Folder     string  `json:"folder,omitempty"`
	WriteStart float64 `json:"writeStart,omitempty"`
	WriteEnd   float64 `json:"writeEnd,omitempty"`

	// What the token manager handed out: the TokenRequest's status and the token's public claims.
	Minted              bool      `json:"minted"`
	ExpirationTimestamp int64     `json:"expirationTimestamp,omitempty"`
	Claims              *claimSet `json:"claims,omitempty"`
}

type claimSet struct {
	Iss       string   `json:"iss"`
	Sub       string   `json:"sub"`
	Aud       []string `json:"aud"`
	Iat       int64    `json:"iat"`
	Nbf       int64    `json:"nbf"`
	Exp       int64    `json:"exp"`
	Jti       string   `json:"jti,omitempty"`
	WarnAfter int64    `json:"warnafter,omitempty"`
	PodName   string   `json:"podName,omitempty"`
	PodUID    string   `json:"podUID,omitempty"`
	NodeName  string   `json:"nodeName,omitempty"`
}

func main() {
	o := options{}
	flag.StringVar(&o.server, "server", "", "the API server's URL, e.g. https://127.0.0.1:6443")
	flag.StringVar(&o.caFile, "ca-file", "", "CA bundle to verify the API server with")
	flag.StringVar(&o.credentialFile, "credential-file", "", "file holding the bearer token this program (the node) authenticates with")
	flag.StringVar(&o.namespace, "namespace", "default", "the Pod's namespace")
	flag.StringVar(&o.serviceAccount, "service-account", "default", "the Pod's ServiceAccount (must match the Pod's spec.serviceAccountName)")
	flag.StringVar(&o.pod, "pod", "", "the Pod's name")
	flag.StringVar(&o.audience, "audience", "", "the projection's audience (empty: the API server's default audiences)")
	flag.Int64Var(&o.expirationSeconds, "expiration-seconds", 3607, "the projection's expirationSeconds")
	flag.StringVar(&o.dir, "dir", "", "the volume's folder (created when missing)")
	flag.StringVar(&o.file, "file", "token", "the token's path in the volume")
	flag.StringVar(&o.caCrt, "ca-crt", "", "a file whose content is also written as ca.crt (as the default volume's kube-root-ca.crt ConfigMap item)")
	flag.BoolVar(&o.writeNamespace, "write-namespace", false, "also write the Pod's namespace as namespace (as the default volume's downward API item)")
	flag.DurationVar(&o.syncPeriod, "sync-period", time.Minute, "how often to sync on its own, as the kubelet remounts volumes (0: only on command)")
	flag.Parse()
	if o.server == "" || o.credentialFile == "" || o.pod == "" || o.dir == "" {
		fmt.Fprintln(os.Stderr, "podtoken-kubelet: -server, -credential-file, -pod and -dir are required")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		emit(event{Event: "fatal", Error: err.Error()})
		os.Exit(1)
	}
}

func run(o options) error {
	client, err := clientset.NewForConfig(&restclient.Config{
		Host:            o.server,
		BearerTokenFile: o.credentialFile,
		TLSClientConfig: restclient.TLSClientConfig{CAFile: o.caFile},
		UserAgent:       "podtoken-kubelet",
	})
	if err != nil {
		return fmt.Errorf("client: %v", err)
	}
	pod, err := client.CoreV1().Pods(o.namespace).Get(context.TODO(), o.pod, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get pod %s/%s: %v", o.namespace, o.pod, err)
	}
	if pod.Spec.ServiceAccountName != o.serviceAccount {
		return fmt.Errorf("pod %s/%s runs as ServiceAccount %q, not %q", o.namespace, o.pod, pod.Spec.ServiceAccountName, o.serviceAccount)
	}
	var caCrt []byte
	if o.caCrt != "" {
		if caCrt, err = ioutil.ReadFile(o.caCrt); err != nil {
			return fmt.Errorf("read -ca-crt: %v", err)
		}
	}
	// The kubelet mounts an emptyDir (tmpfs) here first; a plain folder does for the writer.
	if err := os.MkdirAll(o.dir, 0755); err != nil {
		return err
	}
	writer, err := volumeutil.NewAtomicWriter(o.dir, "podtoken-kubelet "+o.namespace+"/"+o.pod)
	if err != nil {
		return err
	}
	k := &kubelet{o: o, pod: pod, manager: token.NewManager(client), writer: writer, caCrt: caCrt}

	first := k.sync("mount")
	first.Event = "ready"
	first.PodUID = string(pod.UID)
	emit(first)
	if first.Error != "" {
		return errors.New("the first mount failed")
	}

	lines := make(chan string)
	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			lines <- strings.TrimSpace(scanner.Text())
		}
		close(lines)
	}()
	var tick <-chan time.Time
	if o.syncPeriod > 0 {
		ticker := time.NewTicker(o.syncPeriod)
		defer ticker.Stop()
		tick = ticker.C
	}
	// One goroutine writes the volume, as the kubelet's volume manager does for one volume.
	for {
		select {
		case <-tick:
			if e := k.sync("periodic"); e.Swapped || e.Error != "" {
				emit(e)
			}
		case line, open := <-lines:
			switch {
			case !open || line == "quit":
				return nil
			case line == "sync":
				emit(k.sync("sync"))
			case line == "rotate":
				k.manager.DeleteServiceAccountToken(pod.UID)
				if wait := time.Unix(k.lastIat+1, 0).Sub(time.Now()); wait > 0 {
					time.Sleep(wait)
				}
				emit(k.sync("rotate"))
			case line == "":
			default:
				emit(event{Event: "error", Command: line, Error: "unknown command (sync, rotate, quit)"})
			}
		}
	}
}

type kubelet struct {
	o       options
	pod     *v1.Pod
	manager *token.Manager
	writer  *volumeutil.AtomicWriter
	caCrt   []byte
	lastIat int64
	last    string
}

// sync is the projected volume plugin's SetUp for this volume: collect the payload (the
// token through the manager, like collectData in pkg/volume/projected), then write it.
func (k *kubelet) sync(command string) event {
	o := k.o
	e := event{Event: command, Command: command}
	var audiences []string
	if o.audience != "" {
		audiences = []string{o.audience}
	}
	expirationSeconds := o.expirationSeconds
	tr, err := k.manager.GetServiceAccountToken(k.pod.Namespace, k.pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         audiences,
			ExpirationSeconds: &expirationSeconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				APIVersion: "v1",
				Kind:       "Pod",
				Name:       k.pod.Name,
				UID:        k.pod.UID,
			},
		},
	})
	if err != nil {
		e.Event = "error"
		e.Error = err.Error()
		return e
	}
	e.Minted = tr.Status.Token != k.last
	k.last = tr.Status.Token
	e.ExpirationTimestamp = tr.Status.ExpirationTimestamp.Unix()
	e.Claims = publicClaims(tr.Status.Token)
	if e.Claims != nil {
		k.lastIat = e.Claims.Iat
	}

	payload := map[string]volumeutil.FileProjection{
		o.file: {Data: []byte(tr.Status.Token), Mode: v1.ProjectedVolumeSourceDefaultMode},
	}
	if k.caCrt != nil {
		payload["ca.crt"] = volumeutil.FileProjection{Data: k.caCrt, Mode: v1.ProjectedVolumeSourceDefaultMode}
	}
	if o.writeNamespace {
		payload["namespace"] = volumeutil.FileProjection{Data: []byte(k.pod.Namespace), Mode: v1.ProjectedVolumeSourceDefaultMode}
	}
	before, _ := os.Readlink(filepath.Join(o.dir, "..data"))
	start := time.Now()
	err = k.writer.Write(payload)
	end := time.Now()
	after, _ := os.Readlink(filepath.Join(o.dir, "..data"))
	e.WriteStart = unixMillis(start)
	e.WriteEnd = unixMillis(end)
	e.Folder = after
	e.Swapped = after != before
	if err != nil {
		e.Event = "error"
		e.Error = err.Error()
	}
	return e
}

func unixMillis(t time.Time) float64 {
	return float64(t.UnixNano()/1000) / 1000
}

// publicClaims decodes the JWT's payload (no signature check: the API server just signed it).
func publicClaims(jwt string) *claimSet {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Iat int64           `json:"iat"`
		Nbf int64           `json:"nbf"`
		Exp int64           `json:"exp"`
		Jti string          `json:"jti"`
		K8s struct {
			WarnAfter int64 `json:"warnafter"`
			Pod       struct {
				Name string `json:"name"`
				UID  string `json:"uid"`
			} `json:"pod"`
			Node struct {
				Name string `json:"name"`
			} `json:"node"`
		} `json:"kubernetes.io"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	out := &claimSet{Iss: c.Iss, Sub: c.Sub, Iat: c.Iat, Nbf: c.Nbf, Exp: c.Exp, Jti: c.Jti, WarnAfter: c.K8s.WarnAfter,
		PodName: c.K8s.Pod.Name, PodUID: c.K8s.Pod.UID, NodeName: c.K8s.Node.Name}
	if json.Unmarshal(c.Aud, &out.Aud) != nil {
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			out.Aud = []string{one}
		}
	}
	return out
}

func emit(e event) {
	line, _ := json.Marshal(e)
	os.Stdout.Write(append(line, '\n'))
}
