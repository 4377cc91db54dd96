// Package check renders deploy/kubernetes with the kustomize Go library
// and checks every object against the Kubernetes API types. It is its own
// module (deploy/check/go.mod) so the remora module carries no Kubernetes
// dependency; `make check-deploy` (and `make test`) run it.
package check
