//go:build !linux

package docs

import "testing"

// These entries of errors.md are made to happen with Linux system calls
// (capabilities, resource limits, a listener with a backlog of 0, the
// kernel's socket table). Elsewhere they skip and say so.

func TestCatalogueEACCES(t *testing.T)       { skipNotLinux(t) }
func TestCatalogueEPERM(t *testing.T)        { skipNotLinux(t) }
func TestCatalogueEAFNOSUPPORT(t *testing.T) { skipNotLinux(t) }
func TestCatalogueEMFILE(t *testing.T)       { skipNotLinux(t) }
func TestCatalogueDialTimeout(t *testing.T)  { skipNotLinux(t) }
func TestCatalogueETIMEDOUT(t *testing.T)    { skipNotLinux(t) }
func TestCatalogueTIMEWAIT(t *testing.T)     { skipNotLinux(t) }

func skipNotLinux(t *testing.T) {
	t.Skip("this entry is reproduced with Linux system calls; on this system it is described in errors.md but not run")
}
