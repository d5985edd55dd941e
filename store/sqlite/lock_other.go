//go:build !unix

package sqlite

// lockFile does nothing where there is no flock(2): processes opening one
// new database at the same moment may then see one of them fail its
// migration, and succeed when opened again.
func lockFile(path string) (func(), error) { return func() {}, nil }
