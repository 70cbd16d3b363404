package main

import "testing"

// The client each image version runs against a server major, from the images' sources
// (pgclient.go), and pg_dump's rule: a client older than the server refuses.
func TestDumpClient(t *testing.T) {
	for _, c := range []struct {
		flavour, version string
		server, client   int
		refused          bool
	}{
		{flavourOmnibus, "18.5.7", 17, 16, true}, // the audit's finding 1: the old approach fails
		{flavourOmnibus, "18.5.7", 16, 16, false},
		{flavourOmnibus, "18.10.0", 17, 16, true}, // 17 ships, but only by postgresql['version']
		{flavourOmnibus, "18.11.11", 17, 17, false},
		{flavourOmnibus, "17.3.7", 16, 14, true},
		{flavourOmnibus, "17.11.7", 16, 16, false},
		{flavourOmnibus, "16.7.10", 13, 14, false},
		{flavourOmnibus, "19.2.4", 17, 17, false},
		{flavourSameersbn, "18.5.7", 17, 17, false},
		{flavourSameersbn, "17.3.7", 16, 15, true}, // the audit's finding 2
		{flavourSameersbn, "17.5.5", 16, 16, false},
		{flavourSameersbn, "17.5.5", 17, 16, true},
		{flavourSameersbn, "17.8.7", 17, 17, false},
		{flavourSameersbn, "16.11.10", 13, 13, false},
		{flavourSameersbn, "19.2.0", 18, 18, false},
	} {
		client, _, err := dumpClient(c.flavour, c.version, c.server)
		if err != nil {
			t.Fatalf("%s %s: %v", c.flavour, c.version, err)
		}
		if client != c.client || (client < c.server) != c.refused {
			t.Errorf("%s %s against PostgreSQL %d: pg_dump %d (refused %v), want %d (refused %v)", c.flavour, c.version, c.server, client, client < c.server, c.client, c.refused)
		}
	}
	if _, _, err := dumpClient(flavourSameersbn, "15.11.0", 12); err == nil {
		t.Error("a version before the table is not refused")
	}
}
