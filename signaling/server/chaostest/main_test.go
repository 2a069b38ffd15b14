package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/dialtone-dev/dialtone/internal/testenv"
)

// The test binary is also the nodes' binary: started with -node it runs
// a node, as the program does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-node" {
		os.Exit(run(context.Background(), os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// Every chaos scenario, small: no call lost.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis cluster of two node processes")
	}
	bin := testenv.Program(t, "redis-server")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := runChaos(ctx, chaosConfig{redisBin: bin, pairs: 2, presenceTTL: 30 * time.Second,
		ringTimeout: 6 * time.Second, traffic: 6 * time.Second}, &out)
	t.Log("\n" + out.String())
	assert.NoError(t, err)
}
