//go:build !linux

package peers

import "errors"

// enterNetns fails: network namespaces are Linux's.
func enterNetns(string) (func() error, error) {
	return nil, errors.New("network namespaces need Linux")
}
