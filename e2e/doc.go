// Package e2e holds remora's end-to-end tests: a real `remora iptables`
// and `remora run` inside a network namespace the test creates, with real
// backends and clients in that namespace. The tests need root and skip
// with a message otherwise. The package has no non-test code.
package e2e
