// Package fault is forgebox's fault suite: tests only, on the real engine with the local test
// images (GitLab and GitLab Runner are contract stand-ins), each of which hurts a running or
// converging stack and checks that it ends converged, or with a clear error and no data lost.
//
//   - kill -9 of `forgebox up` at seeded random points, then `up` again (kill_test.go);
//   - the Docker daemon restarted under a running stack (dockerd_test.go), on a private dockerd
//     in its own network namespace, so the shared engine other tests use is never restarted;
//   - a component container killed, and a component's process crashing (container_test.go);
//   - the data dir made read-only by a read-only bind mount (readonly_test.go);
//   - a full disk: a small tmpfs as the data dir, filled up (diskfull_test.go).
//
// The tests mount file systems and start a dockerd, so they need root; under
// FORGEBOX_REQUIRE_ENGINE=1 (./build.sh test) a missing requirement fails them instead of
// skipping them. They run the forgebox binary itself (built once per run), as a user would.
package fault
