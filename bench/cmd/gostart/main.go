// Command gostart does nothing: a start of it is what the Go runtime alone costs, the floor
// under any Go index.cgi (bench/cmd/frontbench, "-gostart"). Not a test.
package main

func main() {}
