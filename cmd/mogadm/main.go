package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/mogilefs-go/mogilefs-go/core/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	home, _ := os.UserHomeDir()
	code := admin.Run(ctx, os.Args[0], os.Args[1:], admin.Env{
		Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin,
		Interactive: term.IsTerminal(int(os.Stderr.Fd())),
		Home:        home,
	})
	stop()
	os.Exit(code)
}
