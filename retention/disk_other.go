//go:build !(linux || darwin || freebsd)

package retention

import "errors"

func diskSpace(string) (free, size uint64, err error) {
	return 0, 0, errors.New("free space is not known on this system")
}
