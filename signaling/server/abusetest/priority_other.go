//go:build !linux

package main

// lowerPriority is not implemented here: the attackers run at the
// priority they were started with.
func lowerPriority() (int, error) { return -1, errNoPriority }
