package spkbuild

import (
	"debug/elf"
	"fmt"
	"io"
)

// ELFMachine reads an ELF file's machine ("EM_X86_64", "EM_AARCH64"); not-ELF is an error.
func ELFMachine(r io.ReaderAt) (string, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return "", err
	}
	return f.Machine.String(), nil
}

// checkBinary refuses a binary built for another machine: a DSM box of the wrong family would
// install the package and then fail to run anything.
func checkBinary(path string, arch Arch) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("forgebox binary %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine.String() != arch.ELF {
		return fmt.Errorf("forgebox binary %s is %s, not %s (DSM arch %s)", path, f.Machine, arch.ELF, arch.DSM)
	}
	if f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("forgebox binary %s is not 64-bit", path)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("forgebox binary %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}
