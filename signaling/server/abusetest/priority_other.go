//go:build !linux

package main

import "errors"

// lowestPriority is the nice value the attackers would have.
const lowestPriority = 19

// errNoPriority is lowerPriority's answer where it cannot lower it.
var errNoPriority = errors.New("lowering the priority is implemented on Linux only")

// lowerPriority is not implemented here: the attackers run at the
// priority they were started with.
func lowerPriority() (int, error) { return -1, errNoPriority }
