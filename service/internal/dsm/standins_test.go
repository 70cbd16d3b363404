package dsm

import (
	"testing"

	"github.com/forgebox/forgebox/service/internal/dsm/dsmstandins"
)

func writeStandins(t testing.TB, dir string) map[string]string { return dsmstandins.Write(t, dir) }

func memInfo(t testing.TB, dir string, gib float64) string { return dsmstandins.MemInfo(t, dir, gib) }
