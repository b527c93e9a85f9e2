// Package integration starts real containers through capshim with real
// engines (runc, crun, dockerd, containerd, podman) and reads the
// capabilities the container really got from its /proc/self/status.
//
// The tests need root and the real engines, so they carry the build tag
// "integration": `go test ./...` leaves them out, and `make test` runs them
// with `go test -tags integration ./integration/`.
//
// Each test file covers one behaviour and is named after it (runc_exec,
// failclosed, readme_docker, ...). What several of them use lives in the
// helpers_*_test.go files, one kind each; helpers_test.go lists them.
package integration
