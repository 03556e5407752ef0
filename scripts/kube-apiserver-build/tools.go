//go:build tools

// Package tools pins the commands this module builds; `go mod tidy` keeps their
// dependencies in go.mod/go.sum. Build with: go build k8s.io/kubernetes/cmd/kube-apiserver
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
