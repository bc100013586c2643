package storage

import "syscall"

// devNumbers returns the major and minor numbers of the device holding path.
func devNumbers(path string) (major, minor uint64, ok bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, false
	}
	dev := uint64(st.Dev)
	return (dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00), true
}
