// Package newerengine runs other packages' real-engine suites (engine, stack, download) on a
// newer Docker Engine than the machine's: Debian trixie's docker.io (testimages/newer-engine.sh,
// Docker 26, API 1.45), as a private dockerd in its own network namespace. Each suite runs twice:
// with the client negotiating (it speaks the engine's newest API) and with it pinned to API 1.41
// (DOCKER_API_VERSION, the DSM floor), and the engine's own request log shows which API version
// every call used. Tests only; `./build.sh test` runs it as a step of its own.
package newerengine
