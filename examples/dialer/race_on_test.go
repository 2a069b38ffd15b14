//go:build race

package main

// raceBuild makes the test build the dialer with -race too, so the build
// reuses the packages this test binary was compiled from.
const raceBuild = true
