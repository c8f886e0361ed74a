// The pod sandbox ("pause") container's program, as Kubernetes's build/pause/linux/pause.c does
// it: sleep until SIGINT or SIGTERM, and reap zombies (it is PID 1 when a pod shares its
// process namespace). Upstream's is C and built by a Docker-based Makefile; a static Go program
// of our own is what this machine can build (docs/cluster.md). Image: promshard.local/pause.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (promshard)")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
