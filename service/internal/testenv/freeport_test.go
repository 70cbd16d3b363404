package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Ports handed out are distinct while their tests run, below the ephemeral range, and reserved
// against other processes: a child process asking for ports never gets one held here.
func TestFreePortReservesAcrossProcesses(t *testing.T) {
	if os.Getenv("FORGEBOX_FREEPORT_CHILD") == "1" {
		for range 200 {
			os.Stdout.WriteString(strconv.Itoa(FreePort(t)) + "\n")
		}
		return
	}
	held := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if p < portRangeLow || p >= portRangeHigh || held[p] {
			t.Fatalf("port %d: out of range or handed out twice", p)
		}
		held[p] = true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortReservesAcrossProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FORGEBOX_FREEPORT_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		var p int
		if _, err := fmt.Sscan(line, &p); err != nil {
			continue
		}
		n++
		if held[p] {
			t.Errorf("the child process got port %d, held by this one", p)
		}
	}
	if n != 200 {
		t.Fatalf("the child handed out %d ports, want 200:\n%s", n, out)
	}
}
